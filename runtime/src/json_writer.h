// Compact JSON text of a nlohmann::json value, for the wire.
//
// The output is byte for byte what value.dump(-1, ' ', false, error_handler_t::replace) gives
// (tests compare them on random documents); it exists because the publish path spent most of
// its time in that serializer, which decodes every byte of every string. This one copies runs of
// plain bytes at once and hands the rare cases (floating-point numbers, strings that are not
// valid UTF-8, binary values) to the reference serializer.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace athomic::detail {

// Appends the compact JSON text of @p value to @p out.
void write_json(const nlohmann::json& value, std::string& out);

// The same, refusing what a receiver refuses: containers nested deeper than @p max_depth
// levels, and numbers JSON cannot carry (NaN, infinities — the plain writer turns them into
// null). On refusal returns false and says what and where (a JSON pointer) in @p error.
bool write_json_checked(const nlohmann::json& value, int max_depth, std::string& out,
                        std::string& error);

}  // namespace athomic::detail
