// Wildcard subscriptions: which patterns an event name matches.
//
// Syntax, as NATS users know it, on dot-separated names: `*` matches exactly one segment, `>`
// (last segment only) one or more. A PatternSet is an immutable snapshot of every pattern
// subscription of a bus, arranged as a trie by segment; publishers read it without locks
// (protected by a hazard slot, like a topic state) and the registry replaces it whole when a
// pattern subscription comes or goes. Matching walks the name's segments once, following the
// literal child and the `*` child at each level: its cost grows with the name's length and the
// number of patterns that could match, not with the number of patterns registered.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace athomic::detail {

struct Subscriber;

// True when @p name is a pattern (has a `*` or `>` segment).
bool is_pattern(std::string_view name) noexcept;
// Validates a pattern: non-empty segments, wildcards as whole segments, `>` last, at most 255
// bytes. @throws EventBusError naming the problem.
void validate_pattern(std::string_view pattern);
// Whether @p name matches @p pattern (both valid): the reference the trie is tested against.
bool pattern_matches(std::string_view pattern, std::string_view name) noexcept;
// Whether a name a transport delivered for @p pattern (valid) is an event name (the rules of
// validate_event_name) that matches it. Transports match by their own rules — a Redis glob's
// `*` crosses dots — so the host checks before a pattern's handlers see the event. No
// allocation: it runs on every message received for a pattern.
bool received_name_matches(std::string_view pattern, std::string_view name) noexcept;

class PatternSet {
 public:
  // One pattern and its subscribers, in subscription order.
  struct Entry {
    std::string pattern;
    std::vector<Subscriber*> subscribers;
  };
  explicit PatternSet(std::vector<Entry> entries);
  // Live PatternSet objects (test hook).
  static uint64_t live() noexcept;
  ~PatternSet();

  // Calls @p f(Subscriber*) for every subscriber of every pattern @p name matches, each
  // pattern's subscribers in subscription order.
  template <class F>
  void match(std::string_view name, F&& f) const {
    walk(0, name, f);
  }
  // The subscribers of exactly @p pattern (nullptr when none).
  const std::vector<Subscriber*>* subscribers_of(std::string_view pattern) const noexcept;
  const std::vector<Entry>& entries() const noexcept { return entries_; }
  std::size_t subscriber_count() const noexcept { return subscriber_count_; }

 private:
  struct Node {
    std::vector<std::pair<std::string, uint32_t>> literals;  // sorted by segment
    int32_t star = -1;
    std::vector<uint32_t> ends_here;  // entries whose pattern ends at this node
    std::vector<uint32_t> ends_gt;    // entries ending with `>` after this node
  };

  int32_t literal(const Node& node, std::string_view segment) const noexcept;
  // @p rest: the parts of the name not matched yet (empty once all are).
  template <class F>
  void walk(uint32_t at, std::string_view rest, F& f) const {
    const Node& node = nodes_[at];
    if (rest.empty()) {
      for (uint32_t e : node.ends_here) {
        for (Subscriber* s : entries_[e].subscribers) f(s);
      }
      return;
    }
    for (uint32_t e : node.ends_gt) {
      for (Subscriber* s : entries_[e].subscribers) f(s);
    }
    if (node.literals.empty() && node.star < 0) return;
    const std::size_t dot = rest.find('.');
    const std::string_view segment = rest.substr(0, dot);
    // An empty remainder after a trailing dot cannot occur: names have no empty parts.
    const std::string_view next_rest =
        dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
    if (const int32_t next = literal(node, segment); next >= 0) {
      walk(static_cast<uint32_t>(next), next_rest, f);
    }
    if (node.star >= 0) walk(static_cast<uint32_t>(node.star), next_rest, f);
  }

  std::vector<Entry> entries_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string_view, uint32_t> by_pattern_;
  std::size_t subscriber_count_ = 0;
};

}  // namespace athomic::detail
