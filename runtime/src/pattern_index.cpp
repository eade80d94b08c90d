#include "pattern_index.h"

#include "text_util.h"

#include <athomic/bus.h>
#include <athomic/errors.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>

namespace athomic::detail {

namespace {
std::atomic<uint64_t> g_live_sets{0};
}  // namespace

bool is_pattern(std::string_view name) noexcept {
  // A segment that is exactly "*" or ">": one pass, no allocation (subscribe calls this).
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = name.find('.', start);
    const std::string_view segment =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (segment == "*" || segment == ">") return true;
    if (dot == std::string_view::npos) return false;
    start = dot + 1;
  }
}

void validate_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern.size() > 255) {
    validate_event_name(pattern);  // says what is wrong with the length
  }
  const auto segments = split(pattern, '.');
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const std::string_view s = segments[i];
    if (s.empty()) {
      throw EventBusError(fmt::format(
          "invalid pattern \"{}\": dot-separated parts must not be empty (e.g. orders.*.created)",
          pattern));
    }
    if (s == "*" || s == ">") {
      if (s == ">" && i + 1 != segments.size()) {
        throw EventBusError(fmt::format(
            "invalid pattern \"{}\": '>' matches the rest of a name, so it must be the last "
            "part (e.g. orders.>)",
            pattern));
      }
      continue;
    }
    if (s.find_first_of("*>") != std::string_view::npos) {
      throw EventBusError(fmt::format(
          "invalid pattern \"{}\": '*' and '>' stand for whole parts (\"{}\" mixes them with "
          "text; e.g. orders.*.created)",
          pattern, s));
    }
    // Each literal part must be a valid name part: no spaces, no control characters.
    validate_event_name(s);
  }
}

bool pattern_matches(std::string_view pattern, std::string_view name) noexcept {
  const auto p = split(pattern, '.');
  const auto n = split(name, '.');
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return n.size() > i;
    if (i >= n.size()) return false;
    if (p[i] != "*" && p[i] != n[i]) return false;
  }
  return p.size() == n.size();
}

bool received_name_matches(std::string_view pattern, std::string_view name) noexcept {
  if (name.empty() || name.size() > 255) return false;
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || c == '*' || c == '>') return false;
  }
  for (;;) {
    const std::size_t pd = pattern.find('.');
    const std::size_t nd = name.find('.');
    const std::string_view p = pattern.substr(0, pd);
    const std::string_view n = name.substr(0, nd);
    if (n.empty()) return false;
    if (p == ">") {
      // One or more parts remain: none of them may be empty.
      return name.back() != '.' && name.find("..") == std::string_view::npos;
    }
    if (p != "*" && p != n) return false;
    if (pd == std::string_view::npos || nd == std::string_view::npos) {
      return pd == std::string_view::npos && nd == std::string_view::npos;
    }
    pattern.remove_prefix(pd + 1);
    name.remove_prefix(nd + 1);
  }
}

PatternSet::PatternSet(std::vector<Entry> entries) : entries_(std::move(entries)) {
  g_live_sets.fetch_add(1, std::memory_order_relaxed);
  nodes_.emplace_back();
  for (uint32_t e = 0; e < entries_.size(); ++e) {
    subscriber_count_ += entries_[e].subscribers.size();
    by_pattern_.emplace(entries_[e].pattern, e);
    uint32_t at = 0;
    const auto segments = split(entries_[e].pattern, '.');
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const std::string_view s = segments[i];
      if (s == ">") {
        nodes_[at].ends_gt.push_back(e);
        at = UINT32_MAX;
        break;
      }
      int32_t next;
      if (s == "*") {
        next = nodes_[at].star;
        if (next < 0) {
          next = static_cast<int32_t>(nodes_.size());
          nodes_[at].star = next;
          nodes_.emplace_back();
        }
      } else {
        next = literal(nodes_[at], s);
        if (next < 0) {
          next = static_cast<int32_t>(nodes_.size());
          auto& lits = nodes_[at].literals;
          lits.insert(std::lower_bound(lits.begin(), lits.end(), s,
                                       [](const auto& l, std::string_view v) { return l.first < v; }),
                      {std::string(s), static_cast<uint32_t>(next)});
          nodes_.emplace_back();
        }
      }
      at = static_cast<uint32_t>(next);
    }
    if (at != UINT32_MAX) nodes_[at].ends_here.push_back(e);
  }
}

PatternSet::~PatternSet() { g_live_sets.fetch_sub(1, std::memory_order_relaxed); }

uint64_t PatternSet::live() noexcept { return g_live_sets.load(std::memory_order_relaxed); }

int32_t PatternSet::literal(const Node& node, std::string_view segment) const noexcept {
  const auto& lits = node.literals;
  auto it = std::lower_bound(lits.begin(), lits.end(), segment,
                             [](const auto& l, std::string_view v) { return l.first < v; });
  return it != lits.end() && it->first == segment ? static_cast<int32_t>(it->second) : -1;
}

const std::vector<Subscriber*>* PatternSet::subscribers_of(std::string_view pattern) const noexcept {
  auto it = by_pattern_.find(pattern);
  return it == by_pattern_.end() ? nullptr : &entries_[it->second].subscribers;
}

}  // namespace athomic::detail
