// RESP2, the Redis wire protocol, as far as this provider needs it: commands are written as
// arrays of bulk strings; replies are read in place from the receive buffer, without copying
// or allocating (the subscriber reads one for every event, the publisher one for every PUBLISH).
// Replies are scalars or arrays of scalars, which is all that PUBLISH and Pub/Sub produce; an
// array nested in an array (ROLE's list of replicas) is read past, its elements not kept.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace athomic::redis::resp {

// Appends "<kind><n>\r\n": an array ('*') or bulk string ('$') header.
inline void append_header(std::string& out, char kind, std::size_t n) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.push_back(kind);
  out.append(digits, static_cast<std::size_t>(end - digits));
  out.append("\r\n", 2);
}

// Appends the command made of @p args to @p out.
template <typename... Args>
void append_command(std::string& out, const Args&... args) {
  append_header(out, '*', sizeof...(args));
  ((append_header(out, '$', std::string_view(args).size()), out.append(std::string_view(args)),
    out.append("\r\n", 2)),
   ...);
}

struct Value {
  char type = 0;          // '+' status, '-' error, ':' integer, '$' bulk string, '*' array
                          // (nested: integer is its length, its elements are not kept)
  bool null = false;      // a nil bulk string ($-1)
  std::string_view text;  // status, error or bulk bytes (a view into the receive buffer)
  int64_t integer = 0;
};

struct Reply {
  Value value;  // a scalar reply; for arrays, type '*'
  bool is_array = false;
  std::size_t count = 0;  // array elements (the first kMaxKept are in items)
  static constexpr std::size_t kMaxKept = 4;
  Value items[kMaxKept];
};

// Largest bulk string accepted: Redis's own limit (proto-max-bulk-len's default).
inline constexpr int64_t kMaxBulkBytes = int64_t{512} << 20;

enum class Parse { complete, incomplete, error };

// Parses the reply at the front of @p in. On complete, @p used is its length in bytes; on error,
// @p error says what was wrong (the connection cannot be trusted after it).
Parse parse_reply(std::string_view in, Reply& out, std::size_t& used, std::string& error);

}  // namespace athomic::redis::resp
