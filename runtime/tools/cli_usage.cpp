#include "cli_usage.h"

#include <algorithm>
#include <cctype>

namespace athomic::cli {
namespace {

// Lower case, `_` as `-`, leading dashes dropped: `--Trace_ID` and `trace-id` are one word.
std::string normalised(std::string_view word) {
  while (!word.empty() && word.front() == '-') word.remove_prefix(1);
  std::string out;
  for (const char c : word) {
    out.push_back(c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
// neighbours ("lsiten") each cost one.
std::size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

bool looks_like_option(const std::string& arg) {
  // "-" is stdin by convention and "-1" a negative number, not options.
  return arg.size() > 1 && arg[0] == '-' && !std::isdigit(static_cast<unsigned char>(arg[1]));
}

// "--count=3" -> "--count", "-n3" -> "-n".
std::string option_name(const std::string& arg) {
  if (arg.starts_with("--")) return arg.substr(0, arg.find('='));
  return arg.substr(0, 2);
}

const CLI::Option* find_option(const CLI::App& app, const std::string& name) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->nonpositional() && o->check_name(name)) return o;
  }
  return nullptr;
}

std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* o : app.get_options()) {
    for (const auto& l : o->get_lnames()) names.push_back("--" + l);
    for (const auto& s : o->get_snames()) names.push_back("-" + s);
  }
  return names;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

}  // namespace

std::optional<std::string> closest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
  const std::string w = normalised(word);
  // A one- or two-letter word is too short to guess from, unless only case or `_` differ.
  const std::size_t allowed = w.size() <= 2 ? 0 : std::max<std::size_t>(1, w.size() / 3);
  std::optional<std::string> best;
  std::size_t best_distance = allowed + 1;
  for (const auto& c : candidates) {
    const std::size_t d = distance(w, normalised(c));
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

std::string explain_parse_error(CLI::App& app, const std::vector<std::string>& args,
                                const CLI::ParseError& error) {
  // Walk the words as the parser does: global options, the command, then its options (global
  // ones are accepted after it too) and positionals; stop at the first word nothing knows.
  CLI::App* command = nullptr;
  const std::vector<CLI::App*> all = app.get_subcommands([](CLI::App*) { return true; });
  std::vector<std::string> commands;
  for (const CLI::App* s : all) commands.push_back(s->get_name());
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (looks_like_option(arg)) {
      const std::string name = option_name(arg);
      const CLI::Option* o = command ? find_option(*command, name) : nullptr;
      if (!o) o = find_option(app, name);
      if (!o) {
        const std::string where = command ? "athomic " + command->get_name() : "athomic";
        std::vector<std::string> known = option_names(command ? *command : app);
        if (command) {
          for (auto& n : option_names(app)) known.push_back(std::move(n));
        }
        std::string message = where + ": unknown option " + name + ".";
        if (const auto guess = closest(name, known)) message += " Did you mean " + *guess + "?";
        return message + " See '" + where + " --help'.";
      }
      if (arg.find('=') == std::string::npos && !(arg.size() > 2 && arg[1] != '-') &&
          o->get_items_expected_min() > 0) {
        ++i;  // its value
      }
      continue;
    }
    if (!command) {
      for (CLI::App* s : all) {
        if (s->check_name(arg)) command = s;
      }
      if (!command) {
        std::string message = "athomic: unknown command '" + arg + "'.";
        if (const auto guess = closest(arg, commands)) message += " Did you mean '" + *guess + "'?";
        return message + " Commands: " + join(commands) + ". See 'athomic --help'.";
      }
    }
  }
  if (!command && error.get_name() == "RequiredError") {
    return "athomic: a command is required: " + join(commands) + ". See 'athomic --help'.";
  }
  if (!command) return std::string("athomic: ") + error.what() + ". See 'athomic --help'.";
  const std::string where = "athomic " + command->get_name();
  return where + ": " + error.what() + ". See '" + where + " --help'.";
}

}  // namespace athomic::cli
