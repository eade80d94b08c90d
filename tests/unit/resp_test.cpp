// The redis provider's RESP reader: what the server sends for PUBLISH and Pub/Sub, whole, split
// at every byte, and broken.
#include "resp.h"

#include <gtest/gtest.h>

#include <vector>

namespace athomic::redis::resp {
namespace {

// What a subscriber connection receives: a confirmation, a message whose body holds CRLF and
// binary bytes, an empty body, a PUBLISH reply, an error, a status, a nil.
const std::string kStream = std::string("*3\r\n$9\r\nsubscribe\r\n$6\r\nev:one\r\n:1\r\n") +
                            "*3\r\n$7\r\nmessage\r\n$6\r\nev:one\r\n$9\r\n{\"a\":\r\n1}\r\n" +
                            "*3\r\n$7\r\nmessage\r\n$6\r\nev:one\r\n$0\r\n\r\n" + ":42\r\n" +
                            "-ERR wrong\r\n" + "+OK\r\n" + "$-1\r\n" +
                            std::string("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\n\0\xff\r\n", 32);

std::vector<std::string> describe_all(std::string_view in, std::size_t& consumed) {
  std::vector<std::string> out;
  consumed = 0;
  for (;;) {
    Reply r;
    std::size_t used = 0;
    std::string error;
    const Parse p = parse_reply(in.substr(consumed), r, used, error);
    if (p == Parse::incomplete) return out;
    EXPECT_EQ(p, Parse::complete) << error;
    if (p != Parse::complete) return out;
    consumed += used;
    std::string d;
    auto scalar = [&d](const Value& v) {
      d += v.type;
      d += v.null          ? std::string("nil")
           : v.type == ':' ? std::to_string(v.integer)
                           : std::string(v.text);
      d += '|';
    };
    if (r.is_array) {
      d = "[";
      d += std::to_string(r.count);
      d += "]";
      for (std::size_t i = 0; i < r.count; ++i) scalar(r.items[i]);
    } else {
      scalar(r.value);
    }
    out.push_back(d);
  }
}

TEST(Resp, ReadsWhatPublishAndPubSubSend) {
  std::size_t consumed;
  const auto replies = describe_all(kStream, consumed);
  EXPECT_EQ(consumed, kStream.size());
  const std::vector<std::string> expected = {"[3]$subscribe|$ev:one|:1|",
                                             "[3]$message|$ev:one|${\"a\":\r\n1}|",
                                             "[3]$message|$ev:one|$|",
                                             ":42|",
                                             "-ERR wrong|",
                                             "+OK|",
                                             "$nil|",
                                             std::string("[3]$message|$c|$\0\xff|", 19)};
  EXPECT_EQ(replies, expected);
}

TEST(Resp, AReplySplitAtAnyByteWaitsForTheRest) {
  std::size_t whole;
  const auto expected = describe_all(kStream, whole);
  for (std::size_t cut = 0; cut <= kStream.size(); ++cut) {
    // What arrives first is read as far as it is complete; the rest follows.
    std::size_t consumed;
    auto first = describe_all(std::string_view(kStream).substr(0, cut), consumed);
    std::size_t rest_used;
    const auto rest = describe_all(std::string_view(kStream).substr(consumed), rest_used);
    first.insert(first.end(), rest.begin(), rest.end());
    ASSERT_EQ(first, expected) << "cut at byte " << cut;
  }
}

TEST(Resp, BrokenRepliesAreErrorsThatSayWhat) {
  const std::pair<std::string, std::string> cases[] = {
      {"?what\r\n", "unknown reply type"},
      {":12x\r\n", "not a number"},
      {"$-2\r\n", "bulk string length out of range"},
      {"$999999999999\r\n", "bulk string length out of range"},
      {"$3\r\nabcXY", "not ended by CRLF"},
      {"+OK\rX", "not ended by CRLF"},
      {[] {
         std::string deep;
         for (int i = 0; i < 10; ++i) deep += "*1\r\n";
         return deep + ":1\r\n";
       }(),
       "nested more than 8 levels"},
      {"*x\r\n", "array length out of range"},
  };
  for (const auto& [in, why] : cases) {
    Reply r;
    std::size_t used = 0;
    std::string error;
    EXPECT_EQ(parse_reply(in, r, used, error), Parse::error) << in;
    EXPECT_NE(error.find(why), std::string::npos) << in << " -> " << error;
  }
}

TEST(Resp, ArraysLongerThanKeptAreStillReadWhole) {
  const std::string in = "*6\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n+next\r\n";
  Reply r;
  std::size_t used = 0;
  std::string error;
  ASSERT_EQ(parse_reply(in, r, used, error), Parse::complete);
  EXPECT_EQ(r.count, 6u);
  EXPECT_EQ(r.items[3].integer, 4);
  EXPECT_EQ(in.substr(used), "+next\r\n");
}

TEST(Resp, NestedArraysAreReadPast) {
  // ROLE on a master: its role, replication offset and the list of its replicas.
  const std::string in =
      "*3\r\n$6\r\nmaster\r\n:42\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n$"
      "2\r\n42\r\n+next\r\n";
  Reply r;
  std::size_t used = 0;
  std::string error;
  ASSERT_EQ(parse_reply(in, r, used, error), Parse::complete) << error;
  EXPECT_EQ(r.count, 3u);
  EXPECT_EQ(r.items[0].text, "master");
  EXPECT_EQ(r.items[2].type, '*');
  EXPECT_EQ(r.items[2].integer, 1);
  EXPECT_EQ(in.substr(used), "+next\r\n");
  for (std::size_t cut = 0; cut < used; ++cut) {
    EXPECT_EQ(parse_reply(std::string_view(in).substr(0, cut), r, used, error), Parse::incomplete)
        << "cut at byte " << cut;
  }
}

TEST(Resp, CommandsAreArraysOfBulkStrings) {
  std::string out;
  append_command(out, "SUBSCRIBE", std::string("ev:one"));
  append_command(out, "PING");
  EXPECT_EQ(out, "*2\r\n$9\r\nSUBSCRIBE\r\n$6\r\nev:one\r\n*1\r\n$4\r\nPING\r\n");
}

}  // namespace
}  // namespace athomic::redis::resp
