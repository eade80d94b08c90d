#include "cluster_map.h"

#include <charconv>
#include <stdexcept>

namespace athomic::redis::cluster {

namespace {

constexpr uint16_t crc16_of_byte(unsigned byte) noexcept {
  uint16_t crc = static_cast<uint16_t>(byte << 8);
  for (int bit = 0; bit < 8; ++bit) {
    crc = static_cast<uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc;
}

struct Table {
  uint16_t v[256];
  constexpr Table() : v() {
    for (unsigned i = 0; i < 256; ++i) v[i] = crc16_of_byte(i);
  }
};
constexpr Table kTable;

std::vector<std::string_view> split(std::string_view s, char by) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const auto at = s.find(by);
    const std::string_view part = s.substr(0, at);
    if (!part.empty()) out.push_back(part);
    if (at == std::string_view::npos) break;
    s.remove_prefix(at + 1);
  }
  return out;
}

bool to_int(std::string_view s, int& out) {
  return !s.empty() && std::from_chars(s.data(), s.data() + s.size(), out).ptr == s.data() + s.size();
}

[[noreturn]] void malformed(std::string_view line, const char* what) {
  throw std::invalid_argument("CLUSTER NODES line \"" + std::string(line.substr(0, 200)) +
                              "\": " + what);
}

}  // namespace

uint16_t crc16(std::string_view bytes) noexcept {
  uint16_t crc = 0;
  for (const char c : bytes) {
    crc = static_cast<uint16_t>((crc << 8) ^ kTable.v[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xff]);
  }
  return crc;
}

int key_slot(std::string_view key) noexcept {
  if (const auto open = key.find('{'); open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return crc16(key) & (kSlots - 1);
}

std::vector<Node> parse_nodes(std::string_view text) {
  std::vector<Node> nodes;
  for (std::string_view line : split(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const auto fields = split(line, ' ');
    if (fields.size() < 8) malformed(line, "fewer than 8 fields");
    Node n;
    n.id = std::string(fields[0]);
    // ip:port@cport[,hostname]; the ip may be IPv6 (the port follows the last ':').
    std::string_view address = fields[1].substr(0, fields[1].find('@'));
    address = address.substr(0, address.find(','));
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos || !to_int(address.substr(colon + 1), n.port)) {
      malformed(line, "no ip:port in the second field");
    }
    n.host = std::string(address.substr(0, colon));
    for (std::string_view flag : split(fields[2], ',')) {
      if (flag == "master") n.master = true;
      if (flag == "fail" || flag == "fail?" || flag == "handshake" || flag == "noaddr") {
        n.failed = true;
      }
    }
    if (n.host.empty() || n.port == 0) n.failed = true;
    if (fields[3] != "-") n.master_id = std::string(fields[3]);
    for (std::size_t i = 8; i < fields.size(); ++i) {
      const std::string_view range = fields[i];
      if (range.front() == '[') continue;  // a slot being imported or migrated: not served here
      const auto dash = range.find('-');
      int first = 0, last = 0;
      if (!to_int(range.substr(0, dash), first) ||
          (dash != std::string_view::npos && !to_int(range.substr(dash + 1), last))) {
        malformed(line, "a slot range that is not a number or first-last");
      }
      if (dash == std::string_view::npos) last = first;
      if (first < 0 || last >= kSlots || first > last) malformed(line, "a slot out of range");
      n.slots.emplace_back(first, last);
    }
    nodes.push_back(std::move(n));
  }
  return nodes;
}

}  // namespace athomic::redis::cluster
