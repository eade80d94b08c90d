#include "text_util.h"

#include <gtest/gtest.h>

namespace athomic::detail {
namespace {

TEST(TextUtil, EditDistance) {
  EXPECT_EQ(edit_distance("redis", "redis"), 0u);
  EXPECT_EQ(edit_distance("reddis", "redis"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("hodl", "hold"), 1u);  // a swap is one slip
  EXPECT_EQ(edit_distance("ab", "ba"), 1u);
}

TEST(TextUtil, ClosestMatchSuggestsOnlyPlausibleMisspellings) {
  const std::vector<std::string> backends{"local", "nats", "redis"};
  EXPECT_EQ(closest_match("reddis", backends), "redis");
  EXPECT_EQ(closest_match("locl", backends), "local");
  EXPECT_FALSE(closest_match("kafka", backends).has_value());
  EXPECT_FALSE(closest_match("redis", backends).has_value());  // exact: nothing to suggest
}

TEST(TextUtil, Split) {
  EXPECT_EQ(split("a:b::c", ':'), (std::vector<std::string_view>{"a", "b", "", "c"}));
  EXPECT_EQ(split("", ':'), (std::vector<std::string_view>{""}));
}

}  // namespace
}  // namespace athomic::detail
