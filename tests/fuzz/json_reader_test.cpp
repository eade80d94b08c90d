// The wire's JSON reader against nlohmann::json::parse, the reference it must agree with: on
// every input both accept or both refuse, and what they accept is the same value with the same
// number types. Inputs: hand-picked edge cases, mutations of valid documents, and random
// documents dumped by nlohmann. Deterministic seeds, so a failure reproduces.
#include "json_reader.h"
#include "random_json.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

namespace athomic::detail {
namespace {

using nlohmann::json;

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

// Same value and, recursively, the same value types (unsigned vs signed vs float included).
::testing::AssertionResult same_value(const json& a, const json& b) {
  if (a.type() != b.type()) {
    return ::testing::AssertionFailure() << a.type_name() << " vs " << b.type_name() << " ("
                                         << a.dump() << " vs " << b.dump() << ")";
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return ::testing::AssertionFailure() << "object sizes differ";
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end()) return ::testing::AssertionFailure() << "missing key " << it.key();
      if (auto r = same_value(*it, *other); !r) return r;
    }
    return ::testing::AssertionSuccess();
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return ::testing::AssertionFailure() << "array sizes differ";
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (auto r = same_value(a[i], b[i]); !r) return r;
    }
    return ::testing::AssertionSuccess();
  }
  if (a != b) return ::testing::AssertionFailure() << a.dump() << " vs " << b.dump();
  return ::testing::AssertionSuccess();
}

// Returns whether the text is valid. One deliberate difference: the reference takes a NUL byte
// after a complete value as the end of the text and ignores what follows; we refuse it.
bool expect_agreement(std::string_view text) {
  const json reference = json::parse(text.begin(), text.end(), nullptr, false);
  const bool valid = !reference.is_discarded() && text.find('\0') == std::string_view::npos;
  json ours;
  std::string error;
  JsonReadOptions options;
  options.max_depth = 1 << 20;  // the reference has no depth limit
  const bool ok = read_json(text, ours, error, options);
  EXPECT_EQ(ok, valid)
      << "input: " << printable(text) << "\nour error: " << error;
  if (ok && valid) {
    EXPECT_TRUE(same_value(ours, reference)) << printable(text);
  }
  if (!ok) {
    EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
  }
  return valid;
}

TEST(JsonReader, AgreesWithTheReferenceOnEdgeCases) {
  const char* cases[] = {
      "{}", "[]", " {} ", "\t\r\n[]\n", "", " ", "{", "}", "[", "]", "{]", "[}", "[,]", "[1,]",
      "{\"a\":1,}", "{\"a\"}", "{\"a\" 1}", "{a:1}", "{'a':1}", "{\"a\":1 \"b\":2}",
      "null", "true", "false", "nul", "truex", "True", "NULL", "[true false]",
      "0", "-0", "01", "-01", "00", "1.", ".5", "1.5", "-1.5e3", "1e", "1e+", "1e-5", "1E5",
      "+1", "-", "--1", "0x10", "1.0e+308", "1e309", "-1e309", "1e-400", "4.9e-324",
      "2.2250738585072014e-308", "18446744073709551615", "18446744073709551616",
      "9223372036854775807", "-9223372036854775808", "-9223372036854775809",
      "123456789012345678901234567890", "0.1", "3.141592653589793238462643383279",
      "\"\"", "\"a\"", "\"\\\"\"", "\"\\\\\"", "\"\\/\"", "\"\\b\\f\\n\\r\\t\"", "\"\\x\"",
      "\"\\u0041\"", "\"\\u00e9\"", "\"\\u20AC\"", "\"\\u0000\"", "\"\\uD83D\\uDE00\"",
      "\"\\uD83D\"", "\"\\uDE00\"", "\"\\uD83Dx\"", "\"\\uD83D\\u0041\"", "\"\\u12\"",
      "\"\\u12G4\"", "\"unterminated", "\"tab\there\"", "\"nl\nhere\"", "\"del\x7f\"",
      "\"\xc3\xa9\"", "\"\xe2\x82\xac\"", "\"\xf0\x9f\x98\x80\"", "\"\xc3\"", "\"\xc0\x80\"",
      "\"\xc1\xbf\"", "\"\xe0\x80\x80\"", "\"\xe0\xa0\x80\"", "\"\xed\xa0\x80\"",
      "\"\xed\x9f\xbf\"", "\"\xf0\x80\x80\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xf4\x8f\xbf\xbf\"",
      "\"\xf5\x80\x80\x80\"", "\"\xff\"", "\"\x80\"", "\xef\xbb\xbf{}", "\xef\xbb{}",
      "\xef\xbb\xbf", "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":[1,{\"c\":null}]}}", "[[[[[]]]]]",
      "{} {}", "{}x", "1 2", "[1 2]", "{\"a\":1}\x00", "\x00", "[\"a\",\"b\"]",
      "{\"\":\"\"}", "{\"\\u0000\":1}", "[1e2,1E-2,-0.0,0e0]"};
  for (const char* c : cases) expect_agreement(c);
  // Embedded NUL bytes, which a C string cannot hold.
  expect_agreement(std::string_view("{\"a\":\"x\0y\"}", 11));
  expect_agreement(std::string_view("[1]\0", 4));
}

std::string mutate(std::string s, std::mt19937& rng) {
  static const std::vector<std::string> inserts = {
      "\\u", "\\uD800", "\\uDC00", "\"", "\\", ",", ":", "{", "}", "[", "]", "-", "0", "e",
      ".", "E+", "1e400", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xef\xbb\xbf", " ", "\t",
      "null", "tru", "18446744073709551616", "\x01", "\x7f", "\\n", "\\t", "\\/"};
  std::uniform_int_distribution<int> op(0, 4), byte(0, 255);
  const int rounds = 1 + static_cast<int>(rng() % 3);
  for (int r = 0; r < rounds; ++r) {
    const std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (op(rng)) {
      case 0: if (pos < s.size()) s[pos] = static_cast<char>(byte(rng)); break;
      case 1: s = s.substr(0, pos); break;
      case 2: s.insert(pos, inserts[rng() % inserts.size()]); break;
      case 3: if (pos < s.size()) s.erase(pos, 1 + rng() % 4); break;
      case 4: if (pos < s.size()) s[pos] = "{}[]\",:0-.eE\\u"[rng() % 15]; break;
    }
  }
  return s;
}

std::string sample_text(std::mt19937& rng) {
  static const std::vector<std::string> texts = {
      "", "plain", "with \"quotes\"", "back\\slash", "ctl\x01\x1f", "caf\xc3\xa9",
      "\xe2\x82\xac uro", "\xf0\x9f\x98\x80", "line\nbreak", "_nala_context"};
  return texts[rng() % texts.size()] + std::to_string(rng() % 3);
}

json random_value(std::mt19937& rng) { return test::random_json(rng, sample_text); }

TEST(JsonReader, AgreesWithTheReferenceOnRandomDocuments) {
  std::mt19937 rng(11262026);
  for (int i = 0; i < 5000; ++i) {
    const json doc = random_value(rng);
    const std::string compact = doc.dump();
    ASSERT_TRUE(expect_agreement(compact)) << compact;
    expect_agreement(doc.dump(2));  // with whitespace between tokens
    expect_agreement(doc.dump(-1, ' ', true));  // non-ASCII as \u escapes
  }
}

TEST(JsonReader, AgreesWithTheReferenceOnMutatedDocuments) {
  std::mt19937 rng(7);
  int accepted = 0, refused = 0;
  for (int i = 0; i < 40000; ++i) {
    const json doc = random_value(rng);
    const std::string text = mutate(doc.dump(-1, ' ', i % 2 == 0), rng);
    (expect_agreement(text) ? accepted : refused)++;
    if (HasFailure()) break;
  }
  // Both outcomes must have been exercised, or the mutations are not doing their job.
  EXPECT_GT(accepted, 2000);
  EXPECT_GT(refused, 10000);
}

TEST(JsonReader, RefusesNestingBeyondTheLimitAndNamesIt) {
  json out;
  std::string error;
  JsonReadOptions options;
  options.max_depth = 3;
  EXPECT_TRUE(read_json("[[[1]]]", out, error, options)) << error;
  EXPECT_FALSE(read_json("[[[[1]]]]", out, error, options));
  EXPECT_EQ(error, "JSON nested deeper than 3 levels");
  EXPECT_FALSE(read_json("{\"a\":{\"b\":{\"c\":{}}}}", out, error, options));
  EXPECT_EQ(error, "JSON nested deeper than 3 levels");
}

TEST(JsonReader, SaysWhereTheTextWentWrong) {
  json out;
  std::string error;
  EXPECT_FALSE(read_json("{\"a\":tru}", out, error));
  EXPECT_EQ(error, "not valid JSON: invalid literal at byte 5");
  EXPECT_FALSE(read_json("{\"a\":\"\xc3(\"}", out, error));
  EXPECT_EQ(error, "not valid JSON: invalid UTF-8 in a string at byte 6");
}

TEST(JsonReader, ReadsTheSideMemberOfTheTopObjectApart) {
  json out;
  std::string error;
  JsonSideMember side;
  side.key = "_nala_context";
  JsonReadOptions options;
  options.side = &side;
  const std::string text = R"({"a":1,"_nala_context":{"x":"1"},"b":{"_nala_context":2},)"
                           R"("_nala_context": {"trace_id":"t"} })";
  ASSERT_TRUE(read_json(text, out, error, options)) << error;
  EXPECT_EQ(out, json::parse(R"({"a":1,"b":{"_nala_context":2}})"));  // nested ones stay
  EXPECT_TRUE(side.seen);
  EXPECT_FALSE(side.was_known);
  EXPECT_EQ(side.value, json::parse(R"({"trace_id":"t"})"));  // the last one wins
  EXPECT_EQ(side.text, R"({"trace_id":"t"})");
}

TEST(JsonReader, ReadsSeveralSideMembersApart) {
  json out;
  std::string error;
  JsonSideMember side[3];
  side[0].key = "_nala_context";
  side[1].key = "traceparent";
  side[2].key = "tracestate";
  JsonReadOptions options;
  options.side = side;
  options.side_count = 3;
  const std::string text = R"({"traceparent":"a","n":{"traceparent":"x"},"_nala_context":{},)"
                           R"("traceparent":7,"m":1})";
  ASSERT_TRUE(read_json(text, out, error, options)) << error;
  EXPECT_EQ(out, json::parse(R"({"n":{"traceparent":"x"},"m":1})"));
  EXPECT_TRUE(side[0].seen);
  EXPECT_EQ(side[0].value, json::object());
  EXPECT_TRUE(side[1].seen);
  EXPECT_EQ(side[1].value, 7);  // the last one wins
  EXPECT_EQ(side[1].text, "7");
  EXPECT_FALSE(side[2].seen);
  // Counted from `side`: with one, the others are payload members.
  side[0] = side[1] = side[2] = JsonSideMember{};
  side[0].key = "_nala_context";
  side[1].key = "traceparent";
  options.side_count = 1;
  ASSERT_TRUE(read_json(text, out, error, options)) << error;
  EXPECT_EQ(out, json::parse(R"({"traceparent":7,"n":{"traceparent":"x"},"m":1})"));
  EXPECT_FALSE(side[1].seen);
}

TEST(JsonReader, ASideMembersStringCanGoToABufferOfTheCallers) {
  std::string buffer = "left over";
  JsonSideMember side;
  side.key = "tp";
  side.string_value = &buffer;
  JsonReadOptions options;
  options.side = &side;
  json out;
  std::string error;
  ASSERT_TRUE(read_json(R"({"tp":"a\u0062c\n","n":1})", out, error, options)) << error;
  EXPECT_EQ(out, json::parse(R"({"n":1})"));
  EXPECT_TRUE(side.is_string);
  EXPECT_EQ(buffer, "abc\n");
  EXPECT_TRUE(side.value.is_null());
  // Any other type goes to `value`; the last occurrence wins either way.
  ASSERT_TRUE(read_json(R"({"tp":"x","tp":[1]})", out, error, options)) << error;
  EXPECT_FALSE(side.is_string);
  EXPECT_EQ(side.value, json::parse("[1]"));
  ASSERT_TRUE(read_json(R"({"tp":[1],"tp":"y"})", out, error, options)) << error;
  EXPECT_TRUE(side.is_string);
  EXPECT_EQ(buffer, "y");
  EXPECT_TRUE(side.value.is_null());
  // A broken string is still an error of the document.
  EXPECT_FALSE(read_json("{\"tp\":\"\xff\"}", out, error, options));
  EXPECT_NE(error.find("invalid UTF-8"), std::string::npos) << error;
}

TEST(JsonReader, AKnownSideObjectIsNotReadAgainButAnythingElseIs) {
  JsonSideMember side;
  auto read = [&side](const std::string& text, std::string_view known) {
    json out;
    std::string error;
    side = JsonSideMember{};
    side.key = "ctx";
    side.known = known;
    JsonReadOptions options;
    options.side = &side;
    return read_json(text, out, error, options) ? out.dump() : "error: " + error;
  };
  const std::string known = R"({"t":"1"})";
  const std::string same = R"({"ctx":{"t":"1"},"n":2})";
  EXPECT_EQ(read(same, known), R"({"n":2})");
  EXPECT_TRUE(side.was_known);
  EXPECT_EQ(side.text, known);
  // A different object, even one that starts the same: read in full.
  const std::string longer = R"({"ctx":{"t":"12"},"n":2})";
  EXPECT_EQ(read(longer, known), R"({"n":2})");
  EXPECT_FALSE(side.was_known);
  EXPECT_EQ(side.value, json::parse(R"({"t":"12"})"));
  EXPECT_EQ(read(R"({"ctx":{"t":"1","u":"2"}})", known), "{}");
  EXPECT_FALSE(side.was_known);
  // Only objects are taken as known: a number's text could be the start of a longer one.
  EXPECT_EQ(read(R"({"ctx":123})", "12"), "{}");
  EXPECT_FALSE(side.was_known);
  EXPECT_EQ(side.value, 123);
  // What follows the known object must still be valid.
  EXPECT_NE(read(R"({"ctx":{"t":"1"})", known).find("error"), std::string::npos);
  EXPECT_NE(read(R"({"ctx":{"t":"1"} x})", known).find("error"), std::string::npos);
}

}  // namespace
}  // namespace athomic::detail
