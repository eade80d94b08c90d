// Wildcard patterns: the syntax, and the trie that matches names against many patterns at once,
// checked against the one-pattern reference on random names and patterns.
#include "pattern_index.h"

#include <athomic/errors.h>

#include <gmock/gmock.h>

#include <random>
#include <set>

namespace athomic::detail {
namespace {

using testing::HasSubstr;

TEST(Patterns, OneSegmentStarAndTrailingGreaterThan) {
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
  EXPECT_TRUE(pattern_matches("*.*", "a.b"));
  EXPECT_TRUE(is_pattern("a.*"));
  EXPECT_TRUE(is_pattern(">"));
  EXPECT_FALSE(is_pattern("a.b"));
  EXPECT_FALSE(is_pattern("a*.b"));  // not a wildcard part: an invalid name, said elsewhere
  EXPECT_TRUE(is_pattern("*.created"));
  EXPECT_TRUE(is_pattern("a.>.b"));  // a pattern, refused by validate_pattern
  EXPECT_FALSE(is_pattern(""));
  EXPECT_FALSE(is_pattern("**.>>"));
  EXPECT_FALSE(is_pattern("a.b."));
}

std::string refusal(std::string_view pattern) {
  try {
    validate_pattern(pattern);
  } catch (const EventBusError& e) {
    return e.what();
  }
  return "";
}

TEST(Patterns, InvalidPatternsAreRefusedWithTheReason) {
  EXPECT_THAT(refusal("orders.>.created"), HasSubstr("'>' matches the rest of a name"));
  EXPECT_THAT(refusal("orders..*"), HasSubstr("parts must not be empty"));
  EXPECT_THAT(refusal(".*"), HasSubstr("parts must not be empty"));
  EXPECT_THAT(refusal("*."), HasSubstr("parts must not be empty"));
  EXPECT_THAT(refusal("ord*.created"), HasSubstr("stand for whole parts"));
  EXPECT_THAT(refusal("orders.*x"), HasSubstr("stand for whole parts"));
  EXPECT_THAT(refusal("orders.a b.*"), HasSubstr("a space"));
  EXPECT_THAT(refusal(std::string(254, 'a') + ".*"), HasSubstr("256 bytes"));
  EXPECT_EQ(refusal("orders.*.created"), "");
  EXPECT_EQ(refusal("orders.>"), "");
  EXPECT_EQ(refusal("*"), "");
}

TEST(Patterns, NamesHoldingRedisGlobCharactersAreLiteral) {
  // '?', '[', ']' and '\' mean nothing to athomic's patterns: they match themselves.
  EXPECT_TRUE(pattern_matches("a?.*", "a?.b"));
  EXPECT_FALSE(pattern_matches("a?.*", "ab.b"));
  EXPECT_TRUE(pattern_matches("[x].>", "[x].y"));
  EXPECT_FALSE(pattern_matches("[x].>", "x.y"));
  EXPECT_TRUE(pattern_matches("a\\b.*", "a\\b.c"));
}

TEST(ReceivedNameMatches, AgreesWithPatternMatchesOnEventNames) {
  std::mt19937 rng(3);
  const char* parts[] = {"a", "b", "eu", "a?b", "[x]", "x\\y"};
  auto random_name = [&](int max_parts) {
    std::string name;
    const int n = 1 + static_cast<int>(rng() % max_parts);
    for (int i = 0; i < n; ++i) name += (i ? "." : "") + std::string(parts[rng() % 6]);
    return name;
  };
  int matched = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string pattern;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) {
      const int roll = static_cast<int>(rng() % 4);
      pattern += (k ? "." : "") + std::string(roll == 0                 ? "*"
                                              : roll == 1 && k == n - 1 ? ">"
                                                                        : parts[rng() % 6]);
    }
    const std::string name = random_name(5);
    const bool want = pattern_matches(pattern, name);
    matched += want;
    ASSERT_EQ(received_name_matches(pattern, name), want) << pattern << " / " << name;
  }
  EXPECT_GT(matched, 1000);  // the random names do exercise matches
}

TEST(ReceivedNameMatches, NamesNoPublisherCouldUseMatchNothing) {
  // What a transport's wider matching (a Redis glob's `*` crosses dots and matches nothing)
  // or another client's publish can bring: empty parts, spaces, control bytes, wildcards.
  const std::string long_name = "a." + std::string(254, 'x');
  for (const std::string name : {"", ".", "a.", ".a", "a..b", "a.b.", "a.b..c", "a. b", "a.\x01",
                                 "a.*", "a.>", "a.\x7f", long_name.c_str()}) {
    for (const char* pattern : {"*", ">", "a.*", "a.>", "*.*", "*.>", "a.*.b", "a.b.>", "*.*.*"}) {
      EXPECT_FALSE(received_name_matches(pattern, name)) << pattern << " matched '" << name << "'";
    }
  }
  EXPECT_TRUE(received_name_matches("a.>", "a." + std::string(253, 'x')));
}

TEST(PatternSet, MatchesWhatEveryPatternWouldAndNothingElse) {
  std::mt19937 rng(7);
  const char* parts[] = {"a", "b", "c", "orders", "eu"};
  auto random_name = [&](int max_parts) {
    std::string name;
    const int n = 1 + static_cast<int>(rng() % max_parts);
    for (int i = 0; i < n; ++i) name += (i ? "." : "") + std::string(parts[rng() % 5]);
    return name;
  };
  std::vector<PatternSet::Entry> entries;
  std::set<std::string> seen;
  // Fake subscriber identities: the entry's index, as a pointer.
  for (int i = 0; entries.size() < 200; ++i) {
    std::string p = random_name(4);
    auto segments = std::vector<std::string>{};
    std::string out;
    std::size_t start = 0;
    for (;;) {
      const auto dot = p.find('.', start);
      std::string seg = p.substr(start, dot == std::string::npos ? dot : dot - start);
      const int roll = static_cast<int>(rng() % 6);
      if (roll == 0) seg = "*";
      if (roll == 1 && dot == std::string::npos) seg = ">";
      out += (out.empty() ? "" : ".") + seg;
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (!seen.insert(out).second) continue;
    entries.push_back({out, {reinterpret_cast<Subscriber*>(entries.size() + 1)}});
  }
  const PatternSet set(entries);
  for (int i = 0; i < 5000; ++i) {
    const std::string name = random_name(5);
    std::multiset<uintptr_t> got, want;
    set.match(name, [&](Subscriber* s) { got.insert(reinterpret_cast<uintptr_t>(s)); });
    for (std::size_t e = 0; e < entries.size(); ++e) {
      if (pattern_matches(entries[e].pattern, name)) want.insert(e + 1);
    }
    ASSERT_EQ(got, want) << "name " << name;
  }
  EXPECT_EQ(set.subscribers_of(entries[3].pattern)->front(),
            reinterpret_cast<Subscriber*>(uintptr_t{4}));
  EXPECT_EQ(set.subscribers_of("no.such.pattern"), nullptr);
}

}  // namespace
}  // namespace athomic::detail
