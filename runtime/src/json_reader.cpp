#include "json_reader.h"

#include "json_text.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <clocale>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <locale.h>

namespace athomic::detail {

namespace {

using nlohmann::json;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Numbers std::from_chars reports out of range (very small or very large) are read again with
// strtod in the C locale, so that underflow gives 0 or a subnormal as the reference parser does.
double strtod_c_locale(const char* first, const char* last) {
  static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
  const std::string copy(first, last);
  return strtod_l(copy.c_str(), nullptr, c_locale);
}

class Reader {
 public:
  Reader(std::string_view text, std::string& error, const JsonReadOptions& options)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), error_(error),
        options_(options) {}

  bool document(json& out) {
    if (end_ - p_ >= 3 && std::memcmp(p_, "\xEF\xBB\xBF", 3) == 0) p_ += 3;
    if (!value(out, true)) return false;
    skip_space();
    if (p_ != end_) return fail("unexpected content after the value");
    return true;
  }

 private:
  bool fail(std::string_view what) {
    error_ = fmt::format("not valid JSON: {} at byte {}", what, p_ - begin_);
    return false;
  }

  void skip_space() noexcept {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool value(json& out, bool top) {
    skip_space();
    if (p_ == end_) return fail("unexpected end of input");
    switch (*p_) {
      case '{':
        return object(out, top);
      case '[':
        return array(out);
      case '"':
        out = json::value_t::string;
        return string(out.get_ref<std::string&>());
      case 't':
        return literal("true", 4) && (out = true, true);
      case 'f':
        return literal("false", 5) && (out = false, true);
      case 'n':
        return literal("null", 4) && (out = nullptr, true);
      default:
        if (*p_ == '-' || is_digit(*p_)) return number(out);
        return fail("unexpected character");
    }
  }

  bool enter() {
    if (++depth_ > options_.max_depth) {
      error_ = fmt::format("JSON nested deeper than {} levels", options_.max_depth);
      return false;
    }
    ++p_;
    return true;
  }

  bool object(json& out, bool top) {
    if (!enter()) return false;
    out = json::value_t::object;
    auto& members = out.get_ref<json::object_t&>();
    skip_space();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      --depth_;
      return true;
    }
    std::string key;
    for (;;) {
      skip_space();
      if (p_ == end_ || *p_ != '"') return fail("expected a quoted key");
      if (!string(key)) return false;
      skip_space();
      if (p_ == end_ || *p_ != ':') return fail("expected ':' after a key");
      ++p_;
      if (JsonSideMember* side = top ? side_for(key) : nullptr) {
        if (!side_member(*side)) return false;
      } else if (!value(members[std::move(key)], false)) {
        return false;
      }
      skip_space();
      if (p_ == end_) return fail("unexpected end of input in an object");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != '}') return fail("expected ',' or '}' in an object");
      ++p_;
      --depth_;
      return true;
    }
  }

  JsonSideMember* side_for(std::string_view key) const noexcept {
    for (std::size_t i = 0; options_.side && i < options_.side_count; ++i) {
      if (key == options_.side[i].key) return &options_.side[i];
    }
    return nullptr;
  }

  bool side_member(JsonSideMember& side) {
    skip_space();
    const char* start = p_;
    side.seen = true;
    side.was_known = false;
    side.is_string = false;
    // An object's text ends at its own closing brace, so a known object found here is the
    // whole value.
    const std::string_view known = side.known;
    if (!known.empty() && known.front() == '{' &&
        static_cast<std::size_t>(end_ - p_) >= known.size() &&
        std::memcmp(p_, known.data(), known.size()) == 0) {
      p_ += known.size();
      side.was_known = true;
    } else if (side.string_value && p_ < end_ && *p_ == '"') {
      if (!string(*side.string_value)) return false;
      side.is_string = true;
      side.value = nullptr;
    } else if (!value(side.value, false)) {
      return false;
    }
    side.text = std::string_view(start, static_cast<std::size_t>(p_ - start));
    return true;
  }

  bool array(json& out) {
    if (!enter()) return false;
    out = json::value_t::array;
    auto& items = out.get_ref<json::array_t&>();
    skip_space();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      --depth_;
      return true;
    }
    for (;;) {
      items.emplace_back();
      if (!value(items.back(), false)) return false;
      skip_space();
      if (p_ == end_) return fail("unexpected end of input in an array");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != ']') return fail("expected ',' or ']' in an array");
      ++p_;
      --depth_;
      return true;
    }
  }

  bool literal(const char* word, std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) {
      return fail("invalid literal");
    }
    p_ += n;
    return true;
  }

  bool hex4(uint32_t& out) {
    if (end_ - p_ < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex_value(p_[i]);
      if (h < 0) return false;
      out = out * 16 + static_cast<uint32_t>(h);
    }
    p_ += 4;
    return true;
  }

  // At the opening quote. Runs of plain bytes are appended whole.
  bool string(std::string& out) {
    out.clear();
    ++p_;
    const char* run = p_;
    for (;;) {
      while (p_ < end_ && kJsonPlainByte[static_cast<unsigned char>(*p_)]) ++p_;
      if (p_ == end_) return fail("unterminated string");
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out.append(run, p_);
        ++p_;
        return true;
      }
      if (c < 0x20) return fail("control character in a string");
      if (c >= 0x80) {
        const std::size_t n = utf8_sequence(reinterpret_cast<const unsigned char*>(p_),
                                            reinterpret_cast<const unsigned char*>(end_));
        if (n == 0) return fail("invalid UTF-8 in a string");
        p_ += n;
        continue;
      }
      out.append(run, p_);  // a backslash
      if (++p_ == end_) return fail("unterminated string");
      switch (*p_++) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return fail("invalid \\u escape");
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate in a \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
              return fail("high surrogate without its low half");
            }
            p_ += 2;
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) {
              return fail("high surrogate without its low half");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --p_;
          return fail("invalid escape");
      }
      run = p_;
    }
  }

  bool number(json& out) {
    const char* start = p_;
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_ || !is_digit(*p_)) return fail("invalid number");
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    bool fractional = false;
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !is_digit(*p_)) return fail("invalid number");
      while (p_ < end_ && is_digit(*p_)) ++p_;
      fractional = true;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !is_digit(*p_)) return fail("invalid number");
      while (p_ < end_ && is_digit(*p_)) ++p_;
      fractional = true;
    }
    if (!fractional) {
      // Integers keep their exact value when they fit; beyond 64 bits they become doubles.
      if (negative) {
        int64_t v;
        if (std::from_chars(start, p_, v).ec == std::errc()) {
          out = v;
          return true;
        }
      } else {
        uint64_t v;
        if (std::from_chars(start, p_, v).ec == std::errc()) {
          out = v;
          return true;
        }
      }
    }
    double d = 0;
    const auto r = std::from_chars(start, p_, d);
    if (r.ec == std::errc::result_out_of_range) {
      d = strtod_c_locale(start, p_);
    } else if (r.ec != std::errc() || r.ptr != p_) {
      return fail("invalid number");
    }
    if (!std::isfinite(d)) return fail("number out of range");
    out = d;
    return true;
  }

  const char* const begin_;
  const char* p_;
  const char* const end_;
  std::string& error_;
  const JsonReadOptions& options_;
  int depth_ = 0;
};

}  // namespace

bool read_json(std::string_view text, nlohmann::json& out, std::string& error,
               const JsonReadOptions& options) {
  return Reader(text, error, options).document(out);
}

}  // namespace athomic::detail
