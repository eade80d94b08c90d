// The publishes the I/O thread has taken and the server has not answered yet, as the bytes of
// their PUBLISH commands, oldest first: which bytes are written on the current connection,
// which are answered, and what to write again when the connection is lost. I/O thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::redis {

class PublishQueue {
 public:
  // Appends PUBLISH <channel[0]><channel[1]><channel[2]> <body> to @p out, formatted in place
  // (the channel is never built as a string of its own).
  static void format(std::string& out, const std::string_view (&channel)[3], std::string_view body);
  // The channel of a command made by format().
  static std::string_view channel_of(std::string_view command);

  // Takes the commands publishers formatted (@p bytes, the length of each in @p lengths) and
  // leaves both empty (when the queue was empty, by swapping buffers: no copy).
  void take(std::string& bytes, std::vector<uint32_t>& lengths);

  // Publishes answered since the provider was made, or given up by clear().
  uint64_t answered() const noexcept { return answered_; }
  std::size_t unanswered() const noexcept { return lengths_.size(); }
  // The @p index-th unanswered command.
  std::string_view command(std::size_t index) const;

  // End of the bytes that may be written when only publishes numbered below @p before may go.
  std::size_t limit(uint64_t before) const;
  // The bytes not yet written, up to @p limit.
  std::string_view unwritten(std::size_t limit) const noexcept {
    return sent_ >= limit ? std::string_view()
                          : std::string_view(bytes_).substr(sent_, limit - sent_);
  }
  void wrote(std::size_t n) noexcept { sent_ += n; }
  bool all_written() const noexcept { return sent_ == bytes_.size(); }
  bool reply_due() const noexcept { return sent_ > head_; }

  // The oldest @p n were answered: drops them; returns their size in bytes.
  std::size_t pop_answered(std::size_t n);
  // The connection was lost: what was not answered is written again on the next one.
  void rewind() noexcept { sent_ = head_; }
  // stop(): everything is given up; @p published publishes were made in all.
  void clear(uint64_t published);

 private:
  std::string bytes_;             // from head_: the unanswered commands
  std::deque<uint32_t> lengths_;  // the length of each
  std::size_t head_ = 0;          // start of the oldest unanswered command in bytes_
  std::size_t sent_ = 0;          // bytes of bytes_ written on the current connection
  uint64_t answered_ = 0;
};

}  // namespace athomic::redis
