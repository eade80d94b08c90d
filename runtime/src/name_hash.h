// Hashing and comparing event names on the publish path. Names are short (at most 255 bytes,
// mostly under 32): eight bytes at a time, inline, instead of a call to the standard library's
// byte-at-a-time-mixing hash and to memcmp — together they were half of an inline publish.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace athomic::detail {

// Murmur3's finaliser: every input bit reaches every output bit, the top ones included (the
// topic table keeps 16 of them as a tag).
inline uint64_t mix64(uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

inline uint64_t load64(const char* p) noexcept {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);  // one unaligned load
  return w;
}

inline std::size_t hash_name(std::string_view s) noexcept {
  const char* p = s.data();
  std::size_t n = s.size();
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0x2545f4914f6cdd1dull);
  if (n >= 8) {
    // One multiply per word (the finaliser below does the thorough mixing once).
    for (; n > 8; p += 8, n -= 8) {
      h = (h ^ load64(p)) * 0x9e3779b97f4a7c15ull;
      h ^= h >> 29;
    }
    h ^= load64(p + n - 8);  // the last eight bytes, overlapping the previous word if need be
  } else {
    uint64_t w = 0;
    for (std::size_t i = 0; i < n; ++i) w |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    h ^= w;
  }
  return static_cast<std::size_t>(mix64(h));
}

inline bool same_name(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  const char* p = a.data();
  const char* q = b.data();
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 < n; i += 8) {
      if (load64(p + i) != load64(q + i)) return false;
    }
    return load64(p + n - 8) == load64(q + n - 8);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != q[i]) return false;
  }
  return true;
}

}  // namespace athomic::detail
