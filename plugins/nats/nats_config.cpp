#include "nats_config.h"

#include <chrono>

namespace athomic_nats {

namespace {

using athomic::sdk::setting;

constexpr double kMaxSeconds = 3600;
constexpr double kGiB = 1024.0 * 1024 * 1024;

// A cluster is given as NATS's own tools take it (`nats --server`, NATS_URL): URLs separated by
// commas, which one NALA_ variable can hold as well as a settings file.
constexpr athomic_setting kUrl = setting(
    "url", ATHOMIC_SETTING_STRING, "\"nats://127.0.0.1:4222\"",
    "server URL, or a cluster's URLs separated by commas (the servers the cluster announces are "
    "added); a password in it is masked");
constexpr athomic_setting kRandomize =
    setting("randomize", ATHOMIC_SETTING_BOOL, "true",
            "try a cluster's servers in random order, spreading clients (false: in the order of "
            "url)");
constexpr athomic_setting kUser = setting("user", ATHOMIC_SETTING_STRING, nullptr, "user name");
constexpr athomic_setting kPassword = setting("password", ATHOMIC_SETTING_STRING, nullptr,
                                              "password of user", 0, 0, ATHOMIC_SETTING_SECRET);
constexpr athomic_setting kToken = setting("token", ATHOMIC_SETTING_STRING, nullptr,
                                           "token authentication", 0, 0, ATHOMIC_SETTING_SECRET);
constexpr athomic_setting kSubjectPrefix =
    setting("subject_prefix", ATHOMIC_SETTING_STRING, "\"events\"",
            "subject = {subject_prefix}.{event name}");
constexpr athomic_setting kConnectTimeout =
    setting("connect_timeout", ATHOMIC_SETTING_SECONDS, "5",
            "how long start() tries to reach the server", 0.001, kMaxSeconds);
constexpr athomic_setting kMaxReconnect =
    setting("max_reconnect", ATHOMIC_SETTING_INT, "-1",
            "reconnect attempts after a lost connection, per server of a cluster (-1: forever)",
            -1, 1000000);
constexpr athomic_setting kReconnectWait =
    setting("reconnect_wait", ATHOMIC_SETTING_SECONDS, "0.1", "wait between reconnect attempts",
            0.001, kMaxSeconds);
constexpr athomic_setting kBufferBytes =
    setting("reconnect_buffer_bytes", ATHOMIC_SETTING_INT, "8388608",
            "publishes kept until the server confirms them (while reconnecting, too); "
            "beyond it publish fails with backpressure",
            1024, kGiB);
constexpr athomic_setting kPendingMessages =
    setting("pending_limit_messages", ATHOMIC_SETTING_INT, "65536",
            "received messages the client keeps per event for slow handlers; beyond it they are "
            "dropped and reported",
            1, kGiB);
constexpr athomic_setting kPendingBytes = setting(
    "pending_limit_bytes", ATHOMIC_SETTING_INT, "67108864", "bytes of those messages", 1024, kGiB);
constexpr athomic_setting kWriteDeadline =
    setting("write_deadline", ATHOMIC_SETTING_SECONDS, "5",
            "a write the server does not take for this long drops the connection (it reconnects)",
            0.01, kMaxSeconds);
constexpr athomic_setting kDrainTimeout =
    setting("drain_timeout", ATHOMIC_SETTING_SECONDS, "2",
            "at close, how long unconfirmed publishes may still take; then they fail", 0, 60);

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return std::string(text.substr(first, last - first + 1));
}

// The URLs of a comma-separated list. The client library would skip an empty one silently, or
// take "nats://a:4222 nats://b:4222" for one host: both are mistakes worth naming.
std::vector<std::string> split_servers(const std::string& list) {
  std::vector<std::string> out;
  std::size_t from = 0;
  while (true) {
    const auto comma = list.find(',', from);
    std::string url = trimmed(std::string_view(list).substr(
        from, comma == std::string::npos ? std::string::npos : comma - from));
    if (url.empty() || url.find_first_of(" \t") != std::string::npos) {
      throw athomic::sdk::Error(
          ATHOMIC_ERR_INVALID_ARGUMENT,
          "events.provider.url = \"" + masked(list) + "\" is invalid: URL " +
              std::to_string(out.size() + 1) + (url.empty() ? " is empty" : " contains a space") +
              "; expected one server URL, or several separated by commas");
    }
    out.push_back(std::move(url));
    if (comma == std::string::npos) return out;
    from = comma + 1;
  }
}

int64_t millis(const athomic::sdk::Host& host, const char* path) {
  return host.setting<std::chrono::milliseconds>(path).count();
}

std::string optional_text(const athomic::sdk::Host& host, const char* path) {
  return host.has_setting(path) ? host.setting<std::string>(path) : std::string();
}

}  // namespace

const athomic_setting* const kSettings[] = {&kUrl,           &kRandomize,     &kUser,
                                            &kPassword,      &kToken,
                                            &kSubjectPrefix, &kConnectTimeout,
                                            &kMaxReconnect,  &kReconnectWait,
                                            &kBufferBytes,   &kPendingMessages,
                                            &kPendingBytes,  &kWriteDeadline,
                                            &kDrainTimeout,  nullptr};

Config read_config(const athomic::sdk::Host& host) {
  Config c;
  c.url = host.setting<std::string>("url");
  c.servers = split_servers(c.url);
  c.randomize = host.setting<bool>("randomize");
  c.user = optional_text(host, "user");
  c.password = optional_text(host, "password");
  c.token = optional_text(host, "token");
  c.subject_prefix = host.setting<std::string>("subject_prefix");
  c.connect_timeout_ms = millis(host, "connect_timeout");
  c.max_reconnect = host.setting<int>("max_reconnect");
  c.reconnect_wait_ms = millis(host, "reconnect_wait");
  c.buffer_bytes = host.setting<int64_t>("reconnect_buffer_bytes");
  c.pending_messages = host.setting<int>("pending_limit_messages");
  c.pending_bytes = host.setting<int>("pending_limit_bytes");
  c.write_deadline_ms = millis(host, "write_deadline");
  c.drain_timeout_ms = millis(host, "drain_timeout");
  if (c.subject_prefix.empty() ||
      c.subject_prefix.find_first_of(" \t\r\n*>") != std::string::npos ||
      c.subject_prefix.front() == '.' || c.subject_prefix.back() == '.') {
    throw athomic::sdk::Error(ATHOMIC_ERR_INVALID_ARGUMENT,
                              "events.provider.subject_prefix = \"" + c.subject_prefix +
                                  "\" is invalid: expected a NATS subject without spaces or "
                                  "wildcards, not starting or ending with '.'");
  }
  return c;
}

namespace {

std::string masked_one(const std::string& url) {
  const auto scheme = url.find("://");
  const auto at = url.rfind('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

}  // namespace

std::string masked(const std::string& url) {
  std::string out;
  std::size_t from = 0;
  while (true) {
    const auto comma = url.find(',', from);
    out += masked_one(url.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
    if (comma == std::string::npos) return out;
    out += ',';
    from = comma + 1;
  }
}

std::string status_text(natsStatus s) {
  std::string text = natsStatus_GetText(s);
  natsStatus ignored;
  if (const char* detail = nats_GetLastError(&ignored); detail && *detail && text != detail) {
    text += std::string(": ") + detail;
  }
  return text;
}

}  // namespace athomic_nats
