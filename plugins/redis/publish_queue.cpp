#include "publish_queue.h"

#include "resp.h"

#include <algorithm>
#include <charconv>

namespace athomic::redis {

void PublishQueue::format(std::string& out, const std::string_view (&channel)[3],
                          std::string_view body, bool sharded) {
  out.append(sharded ? std::string_view("*3\r\n$8\r\nSPUBLISH\r\n")
                     : std::string_view("*3\r\n$7\r\nPUBLISH\r\n"));
  resp::append_header(out, '$', channel[0].size() + channel[1].size() + channel[2].size());
  for (auto part : channel) out.append(part);
  out.append("\r\n", 2);
  resp::append_header(out, '$', body.size());
  out.append(body);
  out.append("\r\n", 2);
}

std::string_view PublishQueue::channel_of(std::string_view command) {
  constexpr std::string_view kHead = "*3\r\n$7\r\nPUBLISH\r\n$";
  constexpr std::string_view kShardedHead = "*3\r\n$8\r\nSPUBLISH\r\n$";
  const std::size_t head = command.starts_with(kHead)          ? kHead.size()
                           : command.starts_with(kShardedHead) ? kShardedHead.size()
                                                               : 0;
  const std::size_t eol = head ? command.find("\r\n", head) : std::string_view::npos;
  if (eol == std::string_view::npos) return "?";
  std::size_t length = 0;
  std::from_chars(command.data() + head, command.data() + eol, length);
  return command.substr(eol + 2, std::min(length, command.size() - eol - 2));
}

void PublishQueue::take(std::string& bytes, std::vector<Entry>& entries) {
  if (entries.empty()) return;
  if (head_ == bytes_.size()) {
    // Everything before was answered: take the buffer itself, leave ours for next time.
    bytes_.clear();
    head_ = sent_ = ever_sent_ = 0;
    bytes_.swap(bytes);
  } else {
    bytes_.append(bytes);
    bytes.clear();
  }
  entries_.insert(entries_.end(), entries.begin(), entries.end());
  entries.clear();
}

std::size_t PublishQueue::limit(uint64_t before) const {
  if (before >= answered_ + entries_.size()) return bytes_.size();
  std::size_t end = head_;
  for (uint64_t i = answered_; i < before; ++i) end += entries_[i - answered_].length;
  return end;
}

std::size_t PublishQueue::pop_answered(std::size_t n) {
  std::size_t size = 0;
  for (std::size_t i = 0; i < n; ++i) {
    size += entries_.front().length;
    entries_.pop_front();
  }
  head_ += size;
  answered_ += n;
  if (head_ == bytes_.size()) {
    bytes_.clear();
    head_ = sent_ = ever_sent_ = 0;
  } else if (head_ >= (std::size_t{1} << 20)) {
    // Drop answered bytes now and then, not at every reply.
    bytes_.erase(0, head_);
    sent_ -= head_;
    ever_sent_ -= head_;
    head_ = 0;
  }
  return size;
}

void PublishQueue::clear(uint64_t published) {
  bytes_.clear();
  entries_.clear();
  head_ = sent_ = ever_sent_ = 0;
  answered_ = published;  // what was lost is not waited for
}

}  // namespace athomic::redis
