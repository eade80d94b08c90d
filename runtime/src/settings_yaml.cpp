#include "settings_yaml.h"

#include <athomic/errors.h>
#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <string_view>
#include <vector>

namespace athomic::detail {

namespace {

bool all_of(std::string_view s, int (*pred)(int)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
    return pred(static_cast<unsigned char>(c)) != 0;
  });
}

int is_octal(int c) { return c >= '0' && c <= '7'; }

// [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool is_core_float(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  const auto digits = [&] {
    std::size_t n = 0;
    while (n < s.size() && std::isdigit(static_cast<unsigned char>(s[n]))) ++n;
    return n;
  };
  const std::size_t whole = digits();
  s.remove_prefix(whole);
  std::size_t fraction = 0;
  if (!s.empty() && s[0] == '.') {
    s.remove_prefix(1);
    fraction = digits();
    s.remove_prefix(fraction);
  }
  if (whole == 0 && fraction == 0) return false;
  if (!s.empty() && (s[0] == 'e' || s[0] == 'E')) {
    s.remove_prefix(1);
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
    const std::size_t exponent = digits();
    if (exponent == 0) return false;
    s.remove_prefix(exponent);
  }
  return s.empty();
}

// A plain scalar resolved by the YAML 1.2 core schema, so that ".nan" and ".inf" are numbers
// (and then refused as such) and "1.2.3" or "0x" stay text.
nlohmann::json yaml_scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  // Quoted ("!") or explicitly tagged !!str: always text.
  if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return s;
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  const std::string_view v(s);
  const std::string_view unsigned_part = (v[0] == '-' || v[0] == '+') ? v.substr(1) : v;
  try {
    if (all_of(unsigned_part, [](int c) { return std::isdigit(c); })) return std::stoll(s);
    if (v.starts_with("0o") && all_of(v.substr(2), is_octal))
      return std::stoll(s.substr(2), nullptr, 8);
    if (v.starts_with("0x") && all_of(v.substr(2), [](int c) { return std::isxdigit(c); })) {
      return std::stoll(s.substr(2), nullptr, 16);
    }
  } catch (const std::out_of_range&) {
    // Too large for a 64-bit integer: kept as a floating-point number, as JSON readers do.
    if (all_of(unsigned_part, [](int c) { return std::isdigit(c); })) return std::stod(s);
    return s;
  }
  if (unsigned_part == ".inf" || unsigned_part == ".Inf" || unsigned_part == ".INF") {
    return v[0] == '-' ? -std::numeric_limits<double>::infinity()
                       : std::numeric_limits<double>::infinity();
  }
  if (v == ".nan" || v == ".NaN" || v == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  if (is_core_float(v)) {
    try {
      return std::stod(s);
    } catch (const std::out_of_range&) {
      return s;
    }
  }
  return s;
}

const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Null:
      return "empty";
    default:
      return "a scalar";
  }
}

std::string line_of(const std::string& file, const YAML::Mark& mark) {
  return mark.is_null() ? file : fmt::format("{}:{}", file, mark.line + 1);
}

// Long paths (deep nesting) cut in the middle for messages.
std::string short_path(const std::string& path) {
  return path.size() <= 80 ? path : path.substr(0, 40) + "..." + path.substr(path.size() - 30);
}

// Converts a parsed document, counting every value it produces: an alias is expanded each time
// it is used, so the count is what the document stands for, not what its text holds.
class Converter {
 public:
  Converter(const std::string& file, std::map<std::string, std::string>& origin)
      : file_(file), origin_(origin) {}

  nlohmann::json value(const YAML::Node& n, const std::string& path, std::size_t depth) {
    marks_.push_back(n.Mark());
    struct Pop {
      std::vector<YAML::Mark>& marks;
      ~Pop() { marks.pop_back(); }
    } pop{marks_};
    if (++values_ > kMaxYamlValues) {
      throw ConfigError(fmt::format(
          "{}: {}: the document stands for more than {} values once its aliases are expanded "
          "(an alias bomb?). Fix: write the values out, or use fewer nested aliases",
          line_of(file_, alias_use()), short_path(path), kMaxYamlValues));
    }
    if (depth > kMaxYamlDepth) {
      throw ConfigError(
          fmt::format("{}: {}: values nested more than {} levels deep. Fix: flatten "
                      "the structure",
                      line_of(file_, n.Mark()), short_path(path), kMaxYamlDepth));
    }
    origin_[path] = line_of(file_, n.Mark());
    switch (n.Type()) {
      case YAML::NodeType::Map: {
        nlohmann::json obj = nlohmann::json::object();
        for (const auto& kv : n) {
          const std::string k = key(kv.first, path);
          obj[k] = value(kv.second, join(path, k), depth + 1);
        }
        return obj;
      }
      case YAML::NodeType::Sequence: {
        nlohmann::json arr = nlohmann::json::array();
        std::size_t i = 0;
        for (const auto& v : n)
          arr.push_back(value(v, fmt::format("{}[{}]", path, i++), depth + 1));
        return arr;
      }
      case YAML::NodeType::Scalar:
        return yaml_scalar(n);
      default:
        return nullptr;
    }
  }

  // Keys become parts of dotted paths and names of environment variables: text only.
  std::string key(const YAML::Node& k, const std::string& path) const {
    if (!k.IsScalar()) {
      throw ConfigError(fmt::format(
          "{}: malformed settings: in {}, a key must be text, not {}. "
          "Fix: use a plain key",
          line_of(file_, k.Mark()), path.empty() ? "the top level" : path, node_kind(k)));
    }
    return k.Scalar();
  }

 private:
  static std::string join(const std::string& path, const std::string& k) {
    return path.empty() ? k : path + "." + k;
  }

  // yaml-cpp shares an aliased node with its anchor, so the place of an alias is not known;
  // the first node on the current path that lies after its own child (which must then be an
  // anchor defined earlier) is the collection holding the alias: report that place.
  YAML::Mark alias_use() const {
    for (std::size_t i = 0; i + 1 < marks_.size(); ++i) {
      if (marks_[i + 1].pos < marks_[i].pos) return marks_[i];
    }
    return marks_.back();
  }

  const std::string& file_;
  std::map<std::string, std::string>& origin_;
  std::size_t values_ = 0;
  std::vector<YAML::Mark> marks_;
};

}  // namespace

ParsedDocument parse_yaml_settings(const std::string& text, const std::string& file) {
  ParsedDocument doc;
  try {
    const YAML::Node root = YAML::Load(text);
    if (!root.IsMap() && !root.IsNull()) {
      throw ConfigError(fmt::format("{}: the top level must be a mapping of environments, not {}",
                                    line_of(file, root.Mark()), node_kind(root)));
    }
    if (root.IsMap()) {
      Converter convert(file, doc.origin);
      for (const auto& kv : root) {
        const std::string k = convert.key(kv.first, "");
        doc.whole[k] = convert.value(kv.second, k, 1);
      }
    }
  } catch (const YAML::DeepRecursion& e) {
    throw ConfigError(
        fmt::format("{}: values nested more than {} levels deep. Fix: flatten the "
                    "structure",
                    line_of(file, e.mark), kMaxYamlDepth));
  } catch (const YAML::Exception& e) {
    // Anything yaml-cpp raises, at parse time or while the nodes are read, names its place.
    throw ConfigError(fmt::format("{}{}: malformed YAML: {}", file,
                                  e.mark.is_null()
                                      ? std::string()
                                      : fmt::format(":{}:{}", e.mark.line + 1, e.mark.column + 1),
                                  e.msg));
  }
  return doc;
}

}  // namespace athomic::detail
