// The wire's JSON writer against nlohmann::json::dump (compact, non-ASCII kept, invalid UTF-8
// replaced), the reference it must match byte for byte: on edge cases and random documents
// with every value type, control characters and broken UTF-8 in keys and strings.
#include "json_writer.h"
#include "random_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace athomic::detail {
namespace {

using nlohmann::json;

std::string reference(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string ours(const json& j) {
  std::string out = "prefix:";  // appends, never rewrites what was there
  write_json(j, out);
  EXPECT_EQ(out.rfind("prefix:", 0), 0u);
  return out.substr(7);
}

TEST(JsonWriter, MatchesTheReferenceOnEdgeCases) {
  const json cases[] = {
      nullptr, true, false, 0, -0, 1, -1, std::numeric_limits<int64_t>::min(),
      std::numeric_limits<int64_t>::max(), std::numeric_limits<uint64_t>::max(), 0.0, -0.0, 1.0,
      1.5, 1e300, -1e-300, 5e-324, 0.1, 123456789.125, std::nan(""), INFINITY, "", "plain",
      "\"quoted\" \\back\\ /slash/", std::string("\0\x01\x1f\x7f\b\t\n\f\r", 10), "caf\xc3\xa9",
      "\xf0\x9f\x98\x80", "bad \xc3 end", "\xff\xfe", "trunc \xe2\x82", "\xed\xa0\x80 surrogate",
      "\xc0\x80", json::array(), json::object(), json::binary({1, 2, 3}),
      json{{"b", 1}, {"a", {1, 2.5, "x"}}, {"\xff key", "v"}, {"", nullptr}},
  };
  for (const auto& c : cases) EXPECT_EQ(ours(c), reference(c)) << reference(c);
}

std::string random_bytes(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {
      "a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\x01", "\x1f", "\x7f", "\xc3\xa9",
      "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3", "\xe2\x82", "\xff", "\x80", "\xed\xa0\x80",
      "\xf4\x90\x80\x80", std::string(1, '\0'), "long run of plain text "};
  std::string s;
  for (unsigned n = rng() % 8; n > 0; --n) s += pieces[rng() % pieces.size()];
  return s;
}

TEST(JsonWriter, MatchesTheReferenceOnRandomDocuments) {
  std::mt19937 rng(20261126);
  for (int i = 0; i < 20000; ++i) {
    const json doc = test::random_json(rng, random_bytes);
    ASSERT_EQ(ours(doc), reference(doc)) << reference(doc);
  }
}

}  // namespace
}  // namespace athomic::detail
