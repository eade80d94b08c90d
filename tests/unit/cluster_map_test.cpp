// Redis Cluster's key hash and CLUSTER NODES, without a server: the figures Redis documents
// (tests/integration/redis_cluster_test.cpp checks the slots against a real cluster's
// CLUSTER KEYSLOT).
#include "cluster_map.h"

#include <gtest/gtest.h>

namespace athomic::redis::cluster {
namespace {

TEST(ClusterSlot, Crc16IsTheXmodemVariantOfTheSpecification) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);
  EXPECT_EQ(crc16(""), 0);
}

TEST(ClusterSlot, SlotsAreTheOnesRedisDocuments) {
  EXPECT_EQ(key_slot("somekey"), 11058);
  EXPECT_EQ(key_slot("foo{hash_tag}"), 2515);
  EXPECT_EQ(key_slot("bar{hash_tag}"), 2515);
}

TEST(ClusterSlot, OnlyTheFirstNonEmptyHashTagCounts) {
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("foo{}{bar}"), crc16("foo{}{bar}") % kSlots);  // empty tag: whole key
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  EXPECT_EQ(key_slot("events:{orders}.created"), key_slot("events:{orders}.paid"));
  EXPECT_EQ(key_slot("no closing {brace"), crc16("no closing {brace") % kSlots);
}

TEST(ClusterNodes, ParsesRolesAddressesAndSlots) {
  const auto nodes = parse_nodes(
      "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host-4 slave "
      "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected\n"
      "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 "
      "connected 5461-10922\n"
      "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 "
      "connected 0-5460 16383 [5461->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]\n"
      "6ec23923021cf3ffec47632106199cb7f496ce01 ::1:30005@31005 master,fail - 1426238316232 "
      "1426238316232 5 disconnected\n"
      "824fe116063bc5fcf9f4ffd895bc17aee7731ac3 :0@0 master,noaddr - 0 0 0 disconnected\r\n");
  ASSERT_EQ(nodes.size(), 5u);
  EXPECT_FALSE(nodes[0].master);
  EXPECT_EQ(nodes[0].master_id, "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca");
  EXPECT_EQ(nodes[0].address(), "127.0.0.1:30004");
  EXPECT_TRUE(nodes[1].master);
  EXPECT_EQ(nodes[1].slots, (std::vector<std::pair<int, int>>{{5461, 10922}}));
  EXPECT_EQ(nodes[2].slots, (std::vector<std::pair<int, int>>{{0, 5460}, {16383, 16383}}));
  EXPECT_FALSE(nodes[2].failed);
  EXPECT_EQ(nodes[3].host, "::1");
  EXPECT_EQ(nodes[3].port, 30005);
  EXPECT_TRUE(nodes[3].failed);
  EXPECT_TRUE(nodes[4].failed);
}

TEST(ClusterNodes, AMalformedLineIsNamed) {
  EXPECT_THROW(parse_nodes("abc 127.0.0.1:1@2 master"), std::invalid_argument);
  try {
    parse_nodes("id 127.0.0.1:x@2 master - 0 0 1 connected");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no ip:port"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_nodes("id 127.0.0.1:1@2 master - 0 0 1 connected 0-99999"),
               std::invalid_argument);
}

}  // namespace
}  // namespace athomic::redis::cluster
