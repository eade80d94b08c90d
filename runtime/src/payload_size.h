// An estimate of the memory a payload holds, for the pool's byte bound: in-process events share
// the publisher's payload instead of serialising it, so what they keep alive is its tree.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>

namespace athomic::detail {

// Bytes: each value's node plus the characters of its strings and keys.
std::size_t approximate_size(const nlohmann::json& value) noexcept;

}  // namespace athomic::detail
