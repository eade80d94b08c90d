// A strict JSON reader that builds nlohmann::json values, for messages from the wire.
//
// It accepts exactly what nlohmann::json::parse accepts (RFC 8259, UTF-8 validated, an optional
// leading byte-order mark, the last of duplicate keys wins, integers as unsigned when not
// negative, non-finite numbers refused) and builds the same values; tests check both against
// each other on mutated input. It exists because the received-message path spends most of its
// time in that parser's character-at-a-time lexer: this one scans runs of plain bytes at once.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace athomic::detail {

// A member of the top-level object read apart from it (the wire's "_nala_context", and with
// events.context.traceparent its "traceparent" and "tracestate").
struct JsonSideMember {
  std::string_view key;
  // Text of an object this member held before. When the member's value is exactly this text
  // it was valid then and is not read again: `was_known` is set and `value` left alone.
  std::string_view known;

  // When set, a string value is read into this buffer (which keeps its capacity from one
  // message to the next) instead of into `value`, and `is_string` is set.
  std::string* string_value = nullptr;

  // Results, for the last occurrence of the key (the last one wins, as in the object).
  bool seen = false;
  bool was_known = false;
  bool is_string = false;  // the value went to *string_value; `value` is null
  nlohmann::json value;    // the member's value, unless was_known or is_string
  std::string_view text;   // the member's value as text (a view into the document)
};

struct JsonReadOptions {
  int max_depth = 64;                 // arrays and objects nested deeper are refused
  // Read these members of the top-level object apart: `side_count` of them from `side`.
  JsonSideMember* side = nullptr;
  std::size_t side_count = 1;
};

// Reads one JSON text (surrounding whitespace allowed) into @p out. On failure returns false
// and says what and where (byte offset) in @p error; never throws except std::bad_alloc.
bool read_json(std::string_view text, nlohmann::json& out, std::string& error,
               const JsonReadOptions& options = {});

}  // namespace athomic::detail
