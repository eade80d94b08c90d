// The nats provider's settings: declared to the host (ABI 1.2), which validates them and hands
// them back through Host::setting<T>().
#pragma once

#include <nats/nats.h>

#include <athomic/sdk/provider.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace athomic_nats {

struct Config {
  std::string url;                   // as configured: one URL, or several separated by commas
  std::vector<std::string> servers;  // the URLs of `url`, in order
  bool randomize;                    // try the servers in random order
  std::string user, password, token;  // empty: not set
  std::string subject_prefix;
  int64_t connect_timeout_ms;
  int max_reconnect;  // -1: forever
  int64_t reconnect_wait_ms;
  int64_t buffer_bytes;  // reconnect_buffer_bytes: publishes kept until the server confirms them
  int pending_messages;  // per subscription, in the client library
  int pending_bytes;
  int64_t write_deadline_ms;
  int64_t drain_timeout_ms;

  std::string subject_of(std::string_view event_name) const {
    return subject_prefix + "." + std::string(event_name);
  }
};

/// The settings the provider declares, NULL-terminated (ATHOMIC_PROVIDER_WITH_SETTINGS).
extern const athomic_setting* const kSettings[];

/// Reads the validated settings. @throws athomic::sdk::Error for a subject prefix NATS would not
/// accept (the one check the host cannot make).
Config read_config(const athomic::sdk::Host& host);

/// @p url with a password in it replaced by "***", for messages; each URL of a comma-separated
/// list.
std::string masked(const std::string& url);

/// The client library's text for @p s, with its last error's detail when there is one.
std::string status_text(natsStatus s);

}  // namespace athomic_nats
