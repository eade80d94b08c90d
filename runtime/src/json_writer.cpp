#include "json_writer.h"

#include "json_text.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>

namespace athomic::detail {

namespace {

using nlohmann::json;

void write_reference(const json& value, std::string& out) {
  nlohmann::detail::serializer<json> serializer(
      nlohmann::detail::output_adapter<char, std::string>(out), ' ',
      json::error_handler_t::replace);
  serializer.dump(value, false, false, 0);
}

// False (and @p out unchanged) when @p s is not valid UTF-8.
bool write_string(const std::string& s, std::string& out) {
  const std::size_t start = out.size();
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  const auto* run = p;
  while (p < end) {
    if (kJsonPlainByte[*p]) {
      ++p;
      continue;
    }
    if (*p >= 0x80) {
      const std::size_t n = utf8_sequence(p, end);
      if (n == 0) {
        out.resize(start);
        return false;
      }
      p += n;
      continue;
    }
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    switch (*p) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        const char escaped[6] = {'\\', 'u', '0', '0', kHex[*p >> 4], kHex[*p & 0xF]};
        out.append(escaped, 6);
      }
    }
    run = ++p;
  }
  out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
  out += '"';
  return true;
}

template <typename Int>
void write_integer(Int v, std::string& out) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

// RFC 6901: '~' and '/' in a key become "~0" and "~1".
std::string json_pointer_escape(const std::string& key) {
  std::string out;
  for (const char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// What the checked writer refuses, and where it found it (a JSON pointer, built while the
// recursion unwinds).
struct Limits {
  int max_depth;
  std::string error;
  std::string where;
};

// False when @p limits refuses the value (then @p out holds a partial text).
bool write_value(const json& value, std::string& out, Limits* limits, int depth) {
  switch (value.type()) {
    case json::value_t::null:
      out += "null";
      return true;
    case json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      return true;
    case json::value_t::number_integer:
      write_integer(value.get<json::number_integer_t>(), out);
      return true;
    case json::value_t::number_unsigned:
      write_integer(value.get<json::number_unsigned_t>(), out);
      return true;
    case json::value_t::string:
      if (!write_string(value.get_ref<const std::string&>(), out)) write_reference(value, out);
      return true;
    case json::value_t::object: {
      if (limits && depth >= limits->max_depth) {
        limits->error = fmt::format("JSON nested deeper than {} levels", limits->max_depth);
        return false;
      }
      out += '{';
      bool first = true;
      for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
        if (!first) out += ',';
        first = false;
        if (!write_string(key, out)) write_reference(json(key), out);
        out += ':';
        if (!write_value(member, out, limits, depth + 1)) {
          limits->where.insert(0, "/" + json_pointer_escape(key));
          return false;
        }
      }
      out += '}';
      return true;
    }
    case json::value_t::array: {
      if (limits && depth >= limits->max_depth) {
        limits->error = fmt::format("JSON nested deeper than {} levels", limits->max_depth);
        return false;
      }
      out += '[';
      std::size_t i = 0;
      for (const auto& item : value.get_ref<const json::array_t&>()) {
        if (i > 0) out += ',';
        if (!write_value(item, out, limits, depth + 1)) {
          limits->where.insert(0, "/" + std::to_string(i));
          return false;
        }
        ++i;
      }
      out += ']';
      return true;
    }
    case json::value_t::number_float:
      if (limits && !std::isfinite(value.get<json::number_float_t>())) {
        limits->error = fmt::format("{} is not a JSON number (only finite numbers travel)",
                                    value.get<json::number_float_t>());
        return false;
      }
      write_reference(value, out);
      return true;
    default:  // binary, discarded: rare on this path
      write_reference(value, out);
      return true;
  }
}

}  // namespace

void write_json(const nlohmann::json& value, std::string& out) {
  write_value(value, out, nullptr, 0);
}

bool write_json_checked(const nlohmann::json& value, int max_depth, std::string& out,
                        std::string& error) {
  Limits limits{max_depth, {}, {}};
  if (write_value(value, out, &limits, 0)) return true;
  error = limits.where.empty() ? limits.error
                               : fmt::format("{} at {}", limits.error, limits.where);
  return false;
}

}  // namespace athomic::detail
