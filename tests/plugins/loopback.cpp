// A remote provider without a server: publish hands the encoded message straight back to the
// host on the publishing thread, as a transport that delivers synchronously would. It exercises
// the host's remote paths (encoding, decoding, limits, backpressure) and publishes made from
// handlers while an outer publish is still inside the provider.
//
// Built a second time with LOOPBACK_PATTERNS as `loopback_patterns`: it then declares
// ATHOMIC_CAP_PATTERN and, like a broker with native wildcards, delivers each message once per
// matching subscription — to an exact interest with deliver_message, to a pattern with
// deliver_message_to.
//
// Built a third time with LOOPBACK_HEADERS as `loopback_headers` (ABI 1.3): it declares
// ATHOMIC_CAP_HEADERS and carries each publish's headers to the receivers (deliver_received).
// Two more settings then stand in for the world outside athomic: add_headers — header lines
// "name: value" (one per line) added to every message it publishes, as a client of another
// kind could send them; log_headers — every publish's headers are logged (info), as a
// consumer of another kind would see them.
//
// Settings (events.provider.*): group — buses whose loopback names the same non-empty group
// share one in-process "server": each publish is delivered to every started member, the
// publisher included, in the order they started. Two buses with different settings then talk
// to each other as two services on one Redis bus would (a publisher's envelope read by a
// receiver configured otherwise).
#include <athomic/sdk/provider.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using athomic::sdk::setting;

constexpr athomic_setting kGroup =
    setting("group", ATHOMIC_SETTING_STRING, "\"\"", "buses that share one in-process server");
#ifdef LOOPBACK_HEADERS
constexpr athomic_setting kAddHeaders = setting("add_headers", ATHOMIC_SETTING_STRING, "\"\"",
                                                "header lines added to every publish");
constexpr athomic_setting kLogHeaders =
    setting("log_headers", ATHOMIC_SETTING_BOOL, "false", "log every publish's headers");
const athomic_setting* const kSettings[] = {&kGroup, &kAddHeaders, &kLogHeaders, nullptr};

// A message's headers, owned: what a transport keeps of them.
struct OwnedHeaders {
  std::vector<std::pair<std::string, std::string>> lines;
  std::vector<athomic_header> views;  // into lines, for the host
  void add(std::string_view name, std::string_view value) {
    lines.emplace_back(std::string(name), std::string(value));
  }
  athomic::sdk::Headers view() {
    views.clear();
    for (const auto& [n, v] : lines) {
      views.push_back(athomic_header{{n.data(), n.size()}, {v.data(), v.size()}});
    }
    return athomic::sdk::Headers{views.data(), views.size()};
  }
};

// "name: value" lines.
OwnedHeaders parse_header_lines(std::string_view text) {
  OwnedHeaders out;
  while (!text.empty()) {
    const auto end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      out.add(line.substr(0, colon), value);
    }
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return out;
}
#else
const athomic_setting* const kSettings[] = {&kGroup, nullptr};
#endif

#ifdef LOOPBACK_PATTERNS
// NATS-style subject matching: `*` one part, a final `>` one or more.
bool matches(std::string_view pattern, std::string_view name) {
  for (;;) {
    const auto pd = pattern.find('.');
    const auto nd = name.find('.');
    const std::string_view p = pattern.substr(0, pd);
    const std::string_view n = name.substr(0, nd);
    if (p == ">") return !name.empty();
    if (p != "*" && p != n) return false;
    if (pd == std::string_view::npos || nd == std::string_view::npos) {
      return pd == std::string_view::npos && nd == std::string_view::npos;
    }
    pattern.remove_prefix(pd + 1);
    name.remove_prefix(nd + 1);
  }
}
#endif

// One bus in a group. Deliveries to it count themselves in `inside`, so that stop() can wait
// for those under way: after stop returns, nothing calls that bus's host any more.
struct Member {
  explicit Member(athomic::sdk::Host h) : host(h) {}
  athomic::sdk::Host host;
  std::atomic<bool> running{false};
  std::atomic<int> inside{0};
  std::mutex mutex;
  std::set<std::pair<std::string, bool>> interests;  // (topic, is a pattern)

#ifdef LOOPBACK_HEADERS
  // The message as it came: the headers go with it. (Built against an older SDK, the other
  // variants never name what ABI 1.3 added.)
  using Headers = athomic::sdk::Headers;
  athomic_status deliver(std::string_view name, const std::string& body, Headers headers) {
    return host.deliver_received(name, body, headers);
  }
#else
  struct Headers {};
  athomic_status deliver(std::string_view name, const std::string& body, Headers) {
    return deliver(name, body);
  }
#endif

  // Hands @p body to this member's host as the build's broker would.
  athomic_status deliver(std::string_view name, const std::string& body) {
#if defined(LOOPBACK_PATTERNS)
    bool exact = false;
    std::vector<std::string> patterns;
    {
      std::lock_guard lock(mutex);
      for (const auto& i : interests) {
        if (i.second && matches(i.first, name)) patterns.push_back(i.first);
        if (!i.second && i.first == name) exact = true;
      }
    }
    athomic_status st = ATHOMIC_OK;
    if (exact && host.deliver_message(name, body) == ATHOMIC_ERR_BACKPRESSURE) {
      st = ATHOMIC_ERR_BACKPRESSURE;
    }
    for (const auto& p : patterns) {
      if (host.deliver_message_to(name, body, p) == ATHOMIC_ERR_BACKPRESSURE) {
        st = ATHOMIC_ERR_BACKPRESSURE;
      }
    }
    return st;
#else
    return host.deliver_message(name, body);
#endif
  }
};

class Groups {
 public:
  void join(const std::string& group, std::shared_ptr<Member> m) {
    std::lock_guard lock(mutex_);
    groups_[group].push_back(std::move(m));
  }
  void leave(const std::string& group, const Member* m) {
    std::lock_guard lock(mutex_);
    auto& members = groups_[group];
    members.erase(
        std::remove_if(members.begin(), members.end(), [m](const auto& p) { return p.get() == m; }),
        members.end());
  }
  // A copy: no lock is held while a host is called (it may run a handler that publishes).
  std::vector<std::shared_ptr<Member>> members(const std::string& group) {
    std::lock_guard lock(mutex_);
    return groups_[group];
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::vector<std::shared_ptr<Member>>> groups_;
};

Groups& groups() {
  static Groups* g = new Groups();  // the plugin is never unloaded: never destroyed either
  return *g;
}

class Loopback final : public athomic::sdk::Provider {
 public:
  Loopback(athomic::sdk::Host host, std::string_view)
      : self_(std::make_shared<Member>(host)), group_(host.setting<std::string>("group")) {
#ifdef LOOPBACK_HEADERS
    add_headers_ = host.setting<std::string>("add_headers");
    log_headers_ = host.setting<bool>("log_headers");
#endif
  }
  void start() override {
    self_->running = true;
    if (!group_.empty()) groups().join(group_, self_);
  }
  void stop() noexcept override {
    self_->running = false;
    if (!group_.empty()) groups().leave(group_, self_.get());
    while (self_->inside.load() > 0) std::this_thread::yield();
  }
  void publish(const athomic::sdk::Message& m) override {
    if (!self_->running) {
      throw athomic::sdk::Error(ATHOMIC_ERR_STATE, "the loopback provider is stopped");
    }
    // The host may reuse its buffer once publish returns: a copy is what a transport would keep.
    const std::string body(m.body);
    Member::Headers headers;
#ifdef LOOPBACK_HEADERS
    OwnedHeaders owned;
    std::string shown;
    for (const athomic_header& h : m.headers) {
      owned.add(athomic::sdk::view(h.name), athomic::sdk::view(h.value));
      shown += (shown.empty() ? "" : "\n") + owned.lines.back().first + ": " +
               owned.lines.back().second;
    }
    if (log_headers_) self_->host.info("publish '" + std::string(m.event_name) + "' headers:\n" + shown);
    for (auto& line : parse_header_lines(add_headers_).lines) owned.add(line.first, line.second);
    headers = owned.view();
#endif
    athomic_status st = ATHOMIC_OK;
    if (group_.empty()) {
      st = self_->deliver(m.event_name, body, headers);
    } else {
      for (const auto& member : groups().members(group_)) {
        member->inside.fetch_add(1);
        if (member->running.load() &&
            member->deliver(m.event_name, body, headers) == ATHOMIC_ERR_BACKPRESSURE) {
          st = ATHOMIC_ERR_BACKPRESSURE;
        }
        member->inside.fetch_sub(1);
      }
    }
    if (st == ATHOMIC_ERR_BACKPRESSURE) {
      throw athomic::sdk::Error(st, "the receiving side's queue is full");
    }
    // The host checks what arrives against its view of the body it sent: a body changed under
    // the provider during delivery shows up as a mismatch here.
    if (std::string_view(body) != m.body) {
      throw athomic::sdk::Error(ATHOMIC_ERR_INTERNAL, "the message body changed during delivery");
    }
  }
  void interest_add(std::string_view topic, athomic_interest_kind kind) override {
    std::lock_guard lock(self_->mutex);
    self_->interests.insert({std::string(topic), kind == ATHOMIC_INTEREST_PATTERN});
  }
  void interest_remove(std::string_view topic, athomic_interest_kind kind) noexcept override {
    std::lock_guard lock(self_->mutex);
    self_->interests.erase({std::string(topic), kind == ATHOMIC_INTEREST_PATTERN});
  }

 private:
  const std::shared_ptr<Member> self_;
  const std::string group_;
#ifdef LOOPBACK_HEADERS
  std::string add_headers_;
  bool log_headers_ = false;
#endif
};

}  // namespace

#if defined(LOOPBACK_HEADERS)
ATHOMIC_PROVIDER_WITH_SETTINGS(Loopback, "loopback_headers", "0.0.1",
                               ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED | ATHOMIC_CAP_HEADERS,
                               kSettings);
#elif defined(LOOPBACK_PATTERNS)
ATHOMIC_PROVIDER_WITH_SETTINGS(Loopback, "loopback_patterns", "0.0.1",
                               ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED | ATHOMIC_CAP_PATTERN,
                               kSettings);
#else
#ifndef LOOPBACK_NAME
#define LOOPBACK_NAME "loopback"
#endif
ATHOMIC_PROVIDER_WITH_SETTINGS(Loopback, LOOPBACK_NAME, "0.0.1",
                               ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED, kSettings);
#endif
