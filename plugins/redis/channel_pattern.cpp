#include "channel_pattern.h"

namespace athomic::redis {

void append_glob_literal(std::string& glob, std::string_view literal) {
  for (const char c : literal) {
    if (c == '[' || c == ']' || c == '?' || c == '*' || c == '\\') glob.push_back('\\');
    glob.push_back(c);
  }
}

std::string channel_glob(std::string_view channel_prefix, std::string_view pattern) {
  std::string glob;
  glob.reserve(channel_prefix.size() + 2 * pattern.size());
  append_glob_literal(glob, channel_prefix);
  for (std::size_t start = 0;;) {
    const std::size_t dot = pattern.find('.', start);
    const std::string_view part =
        pattern.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (part == "*") {
      glob.push_back('*');
    } else if (part == ">") {
      glob.append("?*");
    } else {
      append_glob_literal(glob, part);
    }
    if (dot == std::string_view::npos) return glob;
    glob.push_back('.');
    start = dot + 1;
  }
}

bool pattern_matches(std::string_view pattern, std::string_view name) noexcept {
  for (;;) {
    const std::size_t pd = pattern.find('.');
    const std::size_t nd = name.find('.');
    const std::string_view p = pattern.substr(0, pd);
    const std::string_view n = name.substr(0, nd);
    if (n.empty()) return false;
    if (p == ">") {
      // The rest of the name, every part of it non-empty.
      for (std::size_t at = nd; at != std::string_view::npos;) {
        const std::size_t next = name.find('.', at + 1);
        if (next == at + 1 || at + 1 == name.size()) return false;
        at = next;
      }
      return true;
    }
    if (p != "*" && p != n) return false;
    if (pd == std::string_view::npos || nd == std::string_view::npos) {
      return pd == std::string_view::npos && nd == std::string_view::npos;
    }
    pattern.remove_prefix(pd + 1);
    name.remove_prefix(nd + 1);
  }
}

}  // namespace athomic::redis
