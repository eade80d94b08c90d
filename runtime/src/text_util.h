// Small text helpers shared by settings and plugin errors.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::detail {

std::vector<std::string_view> split(std::string_view s, char sep);

// Edit distance (insertions, deletions, substitutions).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to @p word, if it is close enough to be a plausible misspelling.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

}  // namespace athomic::detail
