// The redis provider's pattern subscriptions, without a server: the PSUBSCRIBE glob an athomic
// pattern becomes, and the part-by-part check of the channels the glob lets through — checked
// against the host's own matcher on random names (tests/integration/redis_patterns_test.cpp
// runs the globs through a real server).
#include "channel_pattern.h"

#include <gtest/gtest.h>

#include <random>

#include "pattern_index.h"

namespace athomic::redis {
namespace {

TEST(ChannelGlob, WildcardsBecomeGlobsAndTheRestIsLiteral) {
  EXPECT_EQ(channel_glob("events:", "orders.*.created"), "events:orders.*.created");
  EXPECT_EQ(channel_glob("events:", "orders.>"), "events:orders.?*");
  EXPECT_EQ(channel_glob("events:", ">"), "events:?*");
  EXPECT_EQ(channel_glob("events:", "*"), "events:*");
  EXPECT_EQ(channel_glob("events:", "*.*.>"), "events:*.*.?*");
}

TEST(ChannelGlob, GlobCharactersInNamesPrefixAndSeparatorAreEscaped) {
  EXPECT_EQ(channel_glob("events:", "a?b.*"), "events:a\\?b.*");
  EXPECT_EQ(channel_glob("events:", "[x].>"), "events:\\[x\\].?*");
  EXPECT_EQ(channel_glob("events:", "a\\b.*"), "events:a\\\\b.*");
  EXPECT_EQ(channel_glob("app[1]*?\\|", "x.*"), "app\\[1\\]\\*\\?\\\\|x.*");
  std::string glob;
  append_glob_literal(glob, "^-!{}");  // special only inside brackets, which are escaped
  EXPECT_EQ(glob, "^-!{}");
}

TEST(ChannelPatternMatch, PartByPart) {
  EXPECT_TRUE(pattern_matches("orders.*.created", "orders.eu.created"));
  EXPECT_FALSE(pattern_matches("orders.*.created", "orders.eu.x.created"));
  EXPECT_FALSE(pattern_matches("orders.*.created", "orders.created"));
  EXPECT_TRUE(pattern_matches("orders.>", "orders.a"));
  EXPECT_TRUE(pattern_matches("orders.>", "orders.a.b.c"));
  EXPECT_FALSE(pattern_matches("orders.>", "orders"));
  EXPECT_FALSE(pattern_matches("orders.>", "ordersx.a"));
  EXPECT_TRUE(pattern_matches("*", "a"));
  EXPECT_FALSE(pattern_matches("*", "a.b"));
  EXPECT_TRUE(pattern_matches(">", "a.b"));
  EXPECT_TRUE(pattern_matches("a?.*", "a?.b"));
  EXPECT_FALSE(pattern_matches("a?.*", "ab.b"));
  EXPECT_FALSE(pattern_matches("a.b", "a.b.c"));
  EXPECT_FALSE(pattern_matches("a.b.c", "a.b"));
}

TEST(ChannelPatternMatch, ANameWithAnEmptyPartMatchesNothing) {
  for (const char* name : {"", ".", "a.", ".a", "a..b", "a.b.", "a.b..c"}) {
    for (const char* pattern : {"*", ">", "a.*", "a.>", "*.*", "*.>", "a.*.b", "a.b.>", "*.*.*"}) {
      EXPECT_FALSE(pattern_matches(pattern, name)) << pattern << " matched '" << name << "'";
    }
  }
}

TEST(ChannelPatternMatch, AgreesWithTheHostOnEveryEventName) {
  std::mt19937 rng(11);
  const char* parts[] = {"a", "b", "eu", "a?b", "[x]", "x\\y", "*z", "c]"};
  constexpr std::size_t kParts = sizeof parts / sizeof *parts;
  auto random_name = [&](int max_parts) {
    std::string name;
    const int n = 1 + static_cast<int>(rng() % max_parts);
    for (int i = 0; i < n; ++i) {
      std::string part = parts[rng() % kParts];
      if (part.front() == '*') part = "zz";  // '*' is not allowed in a name
      name += (i ? "." : "") + part;
    }
    return name;
  };
  for (int round = 0; round < 20000; ++round) {
    std::string pattern;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      const int roll = static_cast<int>(rng() % 5);
      std::string part = roll == 0 ? "*" : roll == 1 && i == n - 1 ? ">" : parts[rng() % kParts];
      if (part == "*z") part = "z";
      pattern += (i ? "." : "") + part;
    }
    const std::string name = random_name(5);
    ASSERT_EQ(pattern_matches(pattern, name), detail::pattern_matches(pattern, name))
        << "pattern " << pattern << ", name " << name;
  }
}

}  // namespace
}  // namespace athomic::redis
