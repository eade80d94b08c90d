// The session's subscriptions: one client subscription per event name or pattern, its delivery
// into the host, and the messages the client drops for it.
#include <algorithm>
#include <athomic/sdk/provider.hpp>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "nats_session.h"

namespace athomic_nats {

using athomic::sdk::Error;

Subscription::~Subscription() {
  if (handle) natsSubscription_Destroy(handle);
}

void Session::subscribe(natsConnection* conn, std::string_view topic, bool pattern) {
  {
    std::lock_guard lock(subs_mutex_);
    if (subs_.count(topic)) return;
  }
  auto entry = std::make_shared<Subscription>();
  entry->session = shared_from_this();
  entry->event_name = std::string(topic);
  entry->pattern = pattern;
  // A pattern's wildcards are NATS's own: the server matches token by token, as the host does.
  const std::string subject = config.subject_of(topic);
  // The client's closure: one reference, released by on_complete once the subscription's
  // thread has returned from its last on_message.
  auto* closure = new std::shared_ptr<Subscription>(entry);
  natsStatus s = natsConnection_Subscribe(&entry->handle, conn, subject.c_str(),
                                          &Session::on_message, closure);
  if (s == NATS_OK) {
    s = natsSubscription_SetOnCompleteCB(entry->handle, &Session::on_complete, closure);
    // Refused only when the subscription is already closed (the connection closed for good):
    // its thread may still be using the closure, so it is left to the process.
    if (s != NATS_OK) closure = nullptr;
  } else {
    delete closure;  // no thread was started
    closure = nullptr;
  }
  if (s == NATS_OK) {
    s = natsSubscription_SetPendingLimits(entry->handle, config.pending_messages,
                                          config.pending_bytes);
  }
  if (s != NATS_OK) {
    const std::string why = status_text(s);
    if (entry->handle) natsSubscription_Unsubscribe(entry->handle);
    throw Error(ATHOMIC_ERR_CONNECT,
                "cannot subscribe to " + subject + " on " + masked(config.url) + ": " + why);
  }
  {
    std::lock_guard lock(subs_mutex_);
    subs_[entry->event_name] = entry;
  }
  // The server has the subscription once it answered a PING sent after it, so an event
  // published right after subscribe() returns is received. Not fatal while reconnecting: the
  // client subscribes again once reconnected.
  natsConnection_FlushTimeout(conn, config.connect_timeout_ms);
}

void Session::unsubscribe(std::string_view topic) noexcept {
  std::shared_ptr<Subscription> entry;
  {
    std::lock_guard lock(subs_mutex_);
    auto it = subs_.find(topic);
    if (it == subs_.end()) return;
    entry = std::move(it->second);
    subs_.erase(it);
  }
  // No delivery starts after this; one under way may finish (the host drops it). The client
  // closes the subscription once the thread returns — this may be that very thread.
  entry->removed.store(true, std::memory_order_seq_cst);
  account_drops(*entry);  // the client forgets the count once unsubscribed
  natsSubscription_Unsubscribe(entry->handle);
}

void Session::unsubscribe_all() noexcept {
  std::vector<std::string> names;
  {
    std::lock_guard lock(subs_mutex_);
    for (const auto& [name, entry] : subs_) names.push_back(name);
  }
  for (const auto& name : names) unsubscribe(name);
}

namespace {

// A received message's NATS headers, as the host takes them: views into the message, which
// outlives the delivery. The arrays are reused by the subscription's thread. @p status is the
// client's verdict on the header block: NATS_NOT_FOUND when there is none (the usual case),
// another error when it cannot parse it (then there are no headers either).
athomic::sdk::Headers headers_of(natsMsg* msg, natsStatus& status) {
  thread_local std::vector<athomic_header> headers;
  headers.clear();
  const char** keys = nullptr;
  int key_count = 0;
  status = natsMsgHeader_Keys(msg, &keys, &key_count);
  if (status != NATS_OK) return {};
  for (int k = 0; k < key_count; ++k) {
    const char** values = nullptr;
    int value_count = 0;
    if (natsMsgHeader_Values(msg, keys[k], &values, &value_count) != NATS_OK) continue;
    for (int v = 0; v < value_count; ++v) {
      headers.push_back(athomic_header{athomic::sdk::str(keys[k]),
                                       athomic::sdk::str(values[v] ? values[v] : "")});
    }
    free(static_cast<void*>(values));
  }
  free(static_cast<void*>(keys));
  return athomic::sdk::Headers{headers.data(), headers.size()};
}

}  // namespace

void Session::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  Subscription& s = **static_cast<std::shared_ptr<Subscription>*>(closure);
  Session& self = *s.session;
  const std::string_view body(natsMsg_GetData(msg),
                              static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  // A pattern's message names its event in its subject, {subject_prefix}.{name}; the server
  // matched it to the subscription, so the prefix is there (a subject without it is dropped).
  std::string_view name = s.event_name;
  if (s.pattern) {
    const char* subject = natsMsg_GetSubject(msg);
    name = subject ? std::string_view(subject) : std::string_view();
    const std::size_t prefix = self.config.subject_prefix.size() + 1;
    if (name.size() > prefix && name.substr(0, prefix - 1) == self.config.subject_prefix &&
        name[prefix - 1] == '.') {
      name.remove_prefix(prefix);
    } else {
      name = {};
    }
  }
  natsStatus header_status = NATS_OK;
  const athomic::sdk::Headers headers = headers_of(msg, header_status);
  if (header_status != NATS_OK && header_status != NATS_NOT_FOUND) {
    // A trace in them is lost: say so, at most once a second (a broken client sends many).
    const uint64_t unparsed = self.unparsed_headers_.fetch_add(1) + 1;
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t last = self.last_header_log_ms_.load();
    if (now - last >= 1000 && self.last_header_log_ms_.compare_exchange_strong(last, now)) {
      const char* subject = natsMsg_GetSubject(msg);
      self.host.warn(std::string("ignored the headers of a message on '") +
                     (subject ? subject : "") + "': the NATS client cannot parse them (" +
                     natsStatus_GetText(header_status) + "); delivered without them (" +
                     std::to_string(unparsed) + " such message(s) so far)");
    }
  }
  auto deliver = [&] {
    return self.host.deliver_received(name, body, headers,
                                      s.pattern ? std::string_view(s.event_name) : std::string_view());
  };
  if (!name.empty() && !s.removed.load(std::memory_order_seq_cst) && self.enter()) {
    // A full dispatch queue: the message is kept and offered again. Only this subscription's
    // thread waits; the client keeps what arrives meanwhile, up to its pending limits.
    while (deliver() == ATHOMIC_ERR_BACKPRESSURE && !s.removed.load(std::memory_order_relaxed) &&
           !self.closing()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    self.leave();
  }
  natsMsg_Destroy(msg);
}

void Session::on_complete(void* closure) {
  delete static_cast<std::shared_ptr<Subscription>*>(closure);
}

// ---- messages the client dropped

void Session::slow_consumer(natsSubscription* handle) noexcept {
  std::shared_ptr<Subscription> entry;
  {
    std::lock_guard lock(subs_mutex_);
    for (const auto& [name, s] : subs_) {
      if (s->handle == handle) entry = s;
    }
    if (!entry) return;  // removed meanwhile: its drops were counted then
    if (std::find(watched_.begin(), watched_.end(), entry) == watched_.end()) {
      watched_.push_back(entry);
      watch_cv_.notify_all();
    }
  }
  account_drops(*entry);
}

void Session::account_drops(Subscription& s) noexcept {
  uint64_t delta = 0;
  {
    std::lock_guard lock(s.drops_mutex);
    int64_t total = 0;
    if (natsSubscription_GetDropped(s.handle, &total) != NATS_OK || total <= s.drops_reported) {
      return;
    }
    delta = static_cast<uint64_t>(total - s.drops_reported);
    s.drops_reported = total;
  }
  if (!enter()) return;
  // A pattern's lost messages were for names nobody saw; the reason names the subject.
  host.report_dropped(
      s.pattern ? std::string_view() : std::string_view(s.event_name), delta,
      "slow consumer: handlers did not keep up and the client's pending limit for " +
          config.subject_of(s.event_name) + " (" + std::to_string(config.pending_messages) +
          " messages or " + std::to_string(config.pending_bytes) +
          " bytes, events.provider.pending_limit_*) was reached");
  leave();
}

void Session::start_drop_watch() {
  {
    std::lock_guard lock(subs_mutex_);
    watch_stop_ = false;
  }
  watcher_ = std::thread([this] { drop_watch_loop(); });
}

void Session::stop_drop_watch() noexcept {
  {
    std::lock_guard lock(subs_mutex_);
    watch_stop_ = true;
    watch_cv_.notify_all();
  }
  if (watcher_.joinable()) watcher_.join();
}

// The client reports a slow consumer once, when it starts dropping; it drops on as long as the
// subscription's queue stays full, whether or not its thread is stuck in a handler. So a
// watched subscription is counted again every 100 ms until its queue has room: from then on a
// new drop is a new report.
void Session::drop_watch_loop() {
  std::unique_lock lock(subs_mutex_);
  while (!watch_stop_) {
    if (watched_.empty()) {
      watch_cv_.wait(lock, [&] { return watch_stop_ || !watched_.empty(); });
      continue;
    }
    watch_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return watch_stop_; });
    std::vector<std::shared_ptr<Subscription>> now = watched_;
    lock.unlock();
    std::vector<std::shared_ptr<Subscription>> done;
    for (const auto& s : now) {
      int msgs = 0, bytes = 0;
      const bool room = natsSubscription_GetPending(s->handle, &msgs, &bytes) != NATS_OK ||
                        (msgs < config.pending_messages && bytes < config.pending_bytes);
      account_drops(*s);
      if (room) done.push_back(s);
    }
    lock.lock();
    for (const auto& s : done) watched_.erase(std::find(watched_.begin(), watched_.end(), s));
  }
  watched_.clear();
}

}  // namespace athomic_nats
