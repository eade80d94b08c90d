// Redis Cluster's slot map as this provider needs it: which slot a channel hashes to (the
// cluster specification's CRC16 and {hash tag} rule, which sharded Pub/Sub applies to channels
// as to keys), and the nodes, their roles and their slots as `CLUSTER NODES` describes them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace athomic::redis::cluster {

inline constexpr int kSlots = 16384;

// CRC16-CCITT (XModem), the cluster's key hash.
uint16_t crc16(std::string_view bytes) noexcept;

// The slot of @p key: of the part between the first '{' and the first '}' after it when that
// part is not empty, else of the whole key.
int key_slot(std::string_view key) noexcept;

struct Node {
  std::string id;
  std::string host;  // empty when the node has no address yet (noaddr)
  int port = 0;
  bool master = false;
  bool failed = false;     // flagged fail or fail? (or handshake / noaddr: not usable)
  std::string master_id;   // a replica's master
  std::vector<std::pair<int, int>> slots;  // ranges, inclusive, as served (no migration marks)
  std::string address() const { return host + ":" + std::to_string(port); }
};

// Parses the text of CLUSTER NODES (one node per line). @throws std::invalid_argument naming
// the line that is malformed.
std::vector<Node> parse_nodes(std::string_view text);

}  // namespace athomic::redis::cluster
