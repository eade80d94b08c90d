#include "resp.h"

#include <cstring>

namespace athomic::redis::resp {

namespace {

// Reads "<line>\r\n" at @p pos; @p line excludes the type byte and the terminator.
Parse read_line(std::string_view in, std::size_t& pos, std::string_view& line) {
  const char* start = in.data() + pos + 1;
  const char* end = in.data() + in.size();
  const auto* cr =
      static_cast<const char*>(std::memchr(start, '\r', static_cast<std::size_t>(end - start)));
  if (!cr || cr + 1 >= end) return Parse::incomplete;
  if (cr[1] != '\n') return Parse::error;
  line = std::string_view(start, static_cast<std::size_t>(cr - start));
  pos = static_cast<std::size_t>(cr + 2 - in.data());
  return Parse::complete;
}

bool to_integer(std::string_view s, int64_t& v) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty();
}

Parse scalar(std::string_view in, std::size_t& pos, Value& v, std::string& error) {
  v = Value{};
  v.type = in[pos];
  std::string_view line;
  Parse p = read_line(in, pos, line);
  if (p == Parse::error) error = "a line not ended by CRLF";
  if (p != Parse::complete) return p;
  switch (v.type) {
    case '+':
    case '-':
      v.text = line;
      return Parse::complete;
    case ':':
      if (!to_integer(line, v.integer)) {
        error = "an integer reply that is not a number";
        return Parse::error;
      }
      return Parse::complete;
    case '$': {
      int64_t n;
      if (!to_integer(line, n) || n < -1 || n > kMaxBulkBytes) {
        error = "a bulk string length out of range";
        return Parse::error;
      }
      if (n == -1) {
        v.null = true;
        return Parse::complete;
      }
      const auto len = static_cast<std::size_t>(n);
      if (in.size() - pos < len + 2) return Parse::incomplete;
      if (in[pos + len] != '\r' || in[pos + len + 1] != '\n') {
        error = "a bulk string not ended by CRLF";
        return Parse::error;
      }
      v.text = in.substr(pos, len);
      pos += len + 2;
      return Parse::complete;
    }
    default:
      error = std::string("an unknown reply type byte 0x") +
              "0123456789abcdef"[(v.type >> 4) & 0xF] + "0123456789abcdef"[v.type & 0xF];
      return Parse::error;
  }
}

// Skips the nested array whose header is at @p pos (ROLE answers with one); its elements are
// not kept. Nesting is bounded so that a hostile reply cannot exhaust the stack.
Parse skip_array(std::string_view in, std::size_t& pos, Value& v, std::string& error, int depth) {
  if (depth > 8) {
    error = "arrays nested more than 8 levels deep";
    return Parse::error;
  }
  v = Value{};
  v.type = '*';
  std::string_view line;
  const Parse p = read_line(in, pos, line);
  if (p == Parse::error) error = "a line not ended by CRLF";
  if (p != Parse::complete) return p;
  if (!to_integer(line, v.integer) || v.integer < -1 || v.integer > (int64_t{1} << 20)) {
    error = "an array length out of range";
    return Parse::error;
  }
  v.null = v.integer == -1;
  Value skipped;
  for (int64_t i = 0; i < v.integer; ++i) {
    if (pos >= in.size()) return Parse::incomplete;
    const Parse e = in[pos] == '*' ? skip_array(in, pos, skipped, error, depth + 1)
                                   : scalar(in, pos, skipped, error);
    if (e != Parse::complete) return e;
  }
  return Parse::complete;
}

}  // namespace

Parse parse_reply(std::string_view in, Reply& out, std::size_t& used, std::string& error) {
  if (in.empty()) return Parse::incomplete;
  std::size_t pos = 0;
  out.is_array = false;
  out.count = 0;
  if (in[0] != '*') {
    const Parse p = scalar(in, pos, out.value, error);
    if (p == Parse::complete) used = pos;
    return p;
  }
  std::string_view line;
  const Parse p = read_line(in, pos, line);
  if (p == Parse::error) error = "a line not ended by CRLF";
  if (p != Parse::complete) return p;
  int64_t n;
  if (!to_integer(line, n) || n < -1 || n > (int64_t{1} << 20)) {
    error = "an array length out of range";
    return Parse::error;
  }
  out.is_array = true;
  out.value = Value{};
  out.value.type = '*';
  out.value.null = n == -1;
  out.count = n < 0 ? 0 : static_cast<std::size_t>(n);
  Value skipped;
  for (std::size_t i = 0; i < out.count; ++i) {
    if (pos >= in.size()) return Parse::incomplete;
    Value& item = i < Reply::kMaxKept ? out.items[i] : skipped;
    const Parse e =
        in[pos] == '*' ? skip_array(in, pos, item, error, 1) : scalar(in, pos, item, error);
    if (e != Parse::complete) return e;
  }
  used = pos;
  return Parse::complete;
}

}  // namespace athomic::redis::resp
