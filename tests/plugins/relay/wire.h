// The relay's wire: what the test broker (broker.cpp) and the relay providers
// (relay_provider.cpp) say to each other over one loopback TCP connection. One frame is a
// header line and a body:
//
//   <op> <topic> <body length>\n<body bytes>
//
// client -> broker: 'S' subscribe, 'U' unsubscribe, 'P' publish (body: the message)
// broker -> client: 's' subscribed, 'u' unsubscribed (both in the order asked),
//                   'p' published (body: how many subscribers got it, in publish order),
//                   'm' a message for a topic this connection subscribed to.
//
// Topics are athomic event names: no whitespace. The broker keeps each publisher's order.
#pragma once

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace athomic::relay {

struct Frame {
  char op = 0;
  std::string_view topic;
  std::string_view body;
};

inline void append_frame(std::string& out, char op, std::string_view topic,
                         std::string_view body = {}) {
  out.push_back(op);
  out.push_back(' ');
  out.append(topic);
  out.push_back(' ');
  out.append(std::to_string(body.size()));
  out.push_back('\n');
  out.append(body);
}

// Parses one frame at the start of @p in. Returns its length (the frame's views point into
// @p in), 0 when it is not complete yet, or nullopt when the bytes are not a frame.
inline std::optional<std::size_t> parse_frame(std::string_view in, Frame& f) {
  const auto nl = in.find('\n');
  if (nl == std::string_view::npos)
    return in.size() > 512 ? std::nullopt : std::optional<std::size_t>(0);
  const std::string_view header = in.substr(0, nl);
  const auto sp1 = header.find(' ');
  const auto sp2 = header.rfind(' ');
  if (sp1 != 1 || sp2 == sp1) return std::nullopt;
  std::size_t length = 0;
  const auto [end, ec] =
      std::from_chars(header.data() + sp2 + 1, header.data() + header.size(), length);
  if (ec != std::errc() || end != header.data() + header.size()) return std::nullopt;
  if (in.size() - nl - 1 < length) return 0;
  f.op = header[0];
  f.topic = header.substr(sp1 + 1, sp2 - sp1 - 1);
  f.body = in.substr(nl + 1, length);
  return nl + 1 + length;
}

}  // namespace athomic::relay
