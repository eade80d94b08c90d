// The publishes the I/O thread has taken and the server has not answered yet, as the bytes of
// their PUBLISH commands, oldest first, each with the host's token that completes it: which
// bytes are written on the current connection, which are answered, and what to write again when
// the connection is lost. I/O thread only.
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
  // One command of the bytes: its length, and the token the host gave its publish.
  struct Entry {
    uint32_t length;
    uint64_t token;
  };

  // Appends PUBLISH (SPUBLISH when @p sharded) <channel[0]><channel[1]><channel[2]> <body> to
  // @p out, formatted in place (the channel is never built as a string of its own).
  static void format(std::string& out, const std::string_view (&channel)[3], std::string_view body,
                     bool sharded = false);
  // The channel of a command made by format().
  static std::string_view channel_of(std::string_view command);

  // Takes the commands publishers formatted (@p bytes, one entry each in @p entries) and leaves
  // both empty (when the queue was empty, by swapping buffers: no copy).
  void take(std::string& bytes, std::vector<Entry>& entries);

  // Publishes answered since the provider was made, or given up by give_up().
  uint64_t answered() const noexcept { return answered_; }
  std::size_t unanswered() const noexcept { return entries_.size(); }
  // The @p index-th unanswered command, which starts @p offset bytes after the oldest one (the
  // sum of the lengths before it: callers walking the queue keep it), and its token.
  std::string_view command(std::size_t index, std::size_t offset) const noexcept {
    return std::string_view(bytes_).substr(head_ + offset, entries_[index].length);
  }
  uint32_t length(std::size_t index) const noexcept { return entries_[index].length; }
  uint64_t token(std::size_t index) const noexcept { return entries_[index].token; }

  // End of the bytes that may be written when only publishes numbered below @p before may go.
  std::size_t limit(uint64_t before) const;
  // The bytes not yet written, up to @p limit.
  std::string_view unwritten(std::size_t limit) const noexcept {
    return sent_ >= limit ? std::string_view()
                          : std::string_view(bytes_).substr(sent_, limit - sent_);
  }
  void wrote(std::size_t n) noexcept {
    sent_ += n;
    if (sent_ > ever_sent_) ever_sent_ = sent_;
  }
  bool all_written() const noexcept { return sent_ == bytes_.size(); }
  bool reply_due() const noexcept { return sent_ > head_; }

  // The oldest @p n were answered: drops them; returns their size in bytes.
  std::size_t pop_answered(std::size_t n);
  // The connection was lost: what was not answered is written again on the next one.
  void rewind() noexcept { sent_ = head_; }
  // The server the unanswered publishes were written to is gone for good (Sentinel: another
  // master now): each whose command went out whole is given up, passed to @p f(token), and
  // dropped, as the server may have run it; the rest is written on the next connection.
  // Returns how many were given up, and adds their size in bytes to @p bytes.
  template <typename F>
  std::size_t abandon_written(std::size_t& bytes, F&& f) {
    std::size_t n = 0, end = head_;
    for (const Entry& e : entries_) {
      if (end + e.length > ever_sent_) break;
      end += e.length;
      f(e.token);
      ++n;
    }
    if (sent_ < end) sent_ = end;  // before pop_answered moves head_ past them
    bytes += pop_answered(n);
    return n;
  }
  // stop(): every unanswered publish is given up, each passed to @p f(token, written) — written:
  // all of its command went out on some connection, so the server may have run it. Afterwards
  // the queue is empty and counts @p published publishes made in all.
  template <typename F>
  void give_up(uint64_t published, F&& f) {
    std::size_t end = head_;
    for (const Entry& e : entries_) {
      end += e.length;
      f(e.token, end <= ever_sent_);
    }
    clear(published);
  }

 private:
  void clear(uint64_t published);

  std::string bytes_;          // from head_: the unanswered commands
  std::deque<Entry> entries_;  // one for each
  std::size_t head_ = 0;       // start of the oldest unanswered command in bytes_
  std::size_t sent_ = 0;       // bytes of bytes_ written on the current connection
  std::size_t ever_sent_ = 0;  // bytes of bytes_ written on this or a lost connection
  uint64_t answered_ = 0;
};

}  // namespace athomic::redis
