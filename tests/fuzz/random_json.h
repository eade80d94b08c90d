// Random JSON documents for the property tests: every value type, nesting a few levels deep,
// integers and doubles across their ranges, text from a generator the test chooses.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>

namespace athomic::test {

// @p text: std::string(std::mt19937&), used for strings and object keys.
template <typename Text>
nlohmann::json random_json(std::mt19937& rng, const Text& text, int depth = 0) {
  using nlohmann::json;
  switch (depth > 3 ? rng() % 7 : rng() % 9) {
    case 0: return nullptr;
    case 1: return static_cast<bool>(rng() % 2);
    case 2: return static_cast<int64_t>(static_cast<uint64_t>(rng()) << 32 | rng());
    case 3: return static_cast<uint64_t>(rng()) << 32 | rng();
    case 4:
      return std::ldexp(static_cast<double>(rng()) - 2147483648.0,
                        static_cast<int>(rng() % 400) - 200);
    case 5: return static_cast<int64_t>(rng() % 2001) - 1000;
    case 6: return text(rng);
    case 7: {
      json a = json::array();
      for (unsigned i = rng() % 5; i > 0; --i) a.push_back(random_json(rng, text, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (unsigned i = rng() % 5; i > 0; --i) o[text(rng)] = random_json(rng, text, depth + 1);
      return o;
    }
  }
}

}  // namespace athomic::test
