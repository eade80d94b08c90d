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

}  // namespace athomic::detail
