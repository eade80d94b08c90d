// A strict JSON reader that builds nlohmann::json values, for messages from the wire.
//
// It accepts exactly what nlohmann::json::parse accepts (RFC 8259, UTF-8 validated, an optional
// leading byte-order mark, the last of duplicate keys wins, integers as unsigned when not
// negative, non-finite numbers refused) and builds the same values; tests check both against
// each other on mutated input. It exists because the received-message path spends most of its
// time in that parser's character-at-a-time lexer: this one scans runs of plain bytes at once.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace athomic::detail {

struct JsonReadOptions {
  int max_depth = 64;  // arrays and objects nested deeper are refused
  // When set, the value of this key in the top-level object is read into *side_value instead of
  // the object (the wire's "_nala_context"); the last occurrence wins.
  std::string_view side_key;
  nlohmann::json* side_value = nullptr;
};

// Reads one JSON text (surrounding whitespace allowed) into @p out. On failure returns false
// and says what and where (byte offset) in @p error; never throws except std::bad_alloc.
bool read_json(std::string_view text, nlohmann::json& out, std::string& error,
               const JsonReadOptions& options = {});

}  // namespace athomic::detail
