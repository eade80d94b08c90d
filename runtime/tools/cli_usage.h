// Command-line mistakes explained: CLI11 says "A subcommand is required" or "The following
// argument was not expected"; these say which word is wrong and what was probably meant.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::cli {

/// The candidate closest to @p word by edit distance (a swap of two neighbours counts as one
/// edit, `_` counts as `-`, case is ignored), when it is close enough to be a typo.
std::optional<std::string> closest(std::string_view word,
                                   const std::vector<std::string>& candidates);

/// The message for a failed parse of @p args (argv without the program name) by @p app: the
/// unknown command or option with a did-you-mean when one is close, else CLI11's own words,
/// with the command it concerns and where to read its usage.
std::string explain_parse_error(CLI::App& app, const std::vector<std::string>& args,
                                const CLI::ParseError& error);

}  // namespace athomic::cli
