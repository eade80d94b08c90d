#include "nats_outbox.h"

#include <cstring>

namespace athomic_nats {

using athomic::sdk::Error;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// How long one wait for the server's PONG lasts before the writer looks at the connection and
// the drain deadline again.
constexpr int64_t kFlushSliceMs = 200;

// What the NATS protocol can carry as a header line "name: value": a name of printable ASCII
// without ':' or spaces, a value without line breaks (nor a NUL, which ends it in the client).
const char* header_problem(const athomic_header& h) {
  const std::string_view name = athomic::sdk::view(h.name);
  const std::string_view value = athomic::sdk::view(h.value);
  if (name.empty()) return "an empty header name";
  for (char c : name) {
    if (c <= ' ' || c > '~' || c == ':') return "a header name NATS cannot carry";
  }
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    return "a header value with a line break or NUL";
  }
  return nullptr;
}

}  // namespace

void Outbox::start(std::shared_ptr<Session> session, natsConnection* conn) {
  if (!stats_ && natsStatistics_Create(&stats_) != NATS_OK) {
    throw Error(ATHOMIC_ERR_INTERNAL, "out of memory");
  }
  std::lock_guard lock(mutex_);
  session_ = std::move(session);
  conn_ = conn;
  running_ = true;
  drain_deadline_ns_ = INT64_MAX;
  writer_ = std::thread([this] { run(); });
}

void Outbox::stop() noexcept {
  {
    std::lock_guard lock(mutex_);
    if (!running_) return;
    running_ = false;
    drain_deadline_ns_ = now_ns() + session_->config.drain_timeout_ms * 1'000'000;
    wake_.notify_all();
  }
  writer_.join();
  std::lock_guard lock(mutex_);
  session_.reset();
  conn_ = nullptr;
  if (stats_) natsStatistics_Destroy(stats_);
  stats_ = nullptr;
}

void Outbox::put(std::string_view event_name, std::string_view body, uint64_t token,
                 athomic::sdk::Headers headers) {
  std::size_t headers_size = 0;
  for (const athomic_header& h : headers) {
    if (const char* why = header_problem(h)) {
      throw Error(ATHOMIC_ERR_INVALID_ARGUMENT,
                  std::string(why) + ": '" + std::string(athomic::sdk::view(h.name)).substr(0, 64) +
                      "' (" + std::string(event_name) + ")");
    }
    headers_size += h.name.size + 1 + h.value.size + 1;
  }
  std::lock_guard lock(mutex_);
  if (!running_) throw Error(ATHOMIC_ERR_STATE, "the nats provider is stopped");
  const Config& config = session_->config;
  if (session_->publishing_closed()) {
    throw Error(ATHOMIC_ERR_CONNECT,
                "the connection to " + masked(config.url) +
                    " is closed: the client gave up after " + std::to_string(config.max_reconnect) +
                    " reconnect attempt(s) (events.provider.max_reconnect); restart the bus");
  }
  const std::size_t size = sizeof(Header) + config.subject_prefix.size() + 1 + event_name.size() +
                           1 + body.size() + headers_size;
  if (size > static_cast<uint64_t>(config.buffer_bytes)) {
    throw Error(ATHOMIC_ERR_INVALID_ARGUMENT,
                "the message takes " + std::to_string(size) +
                    " bytes; events.provider.reconnect_buffer_bytes = " +
                    std::to_string(config.buffer_bytes) + " cannot hold it");
  }
  if (held_ + size > static_cast<uint64_t>(config.buffer_bytes)) {
    throw Error(ATHOMIC_ERR_BACKPRESSURE,
                std::to_string(held_) + " bytes of publishes wait for " + masked(config.url) +
                    " to take or confirm them; events.provider.reconnect_buffer_bytes = " +
                    std::to_string(config.buffer_bytes) + " has no room for " +
                    std::to_string(size) + " more");
  }
  const Header h{token, static_cast<uint32_t>(config.subject_prefix.size() + 1 + event_name.size()),
                 static_cast<uint32_t>(body.size()), static_cast<uint32_t>(headers_size)};
  queued_.append(reinterpret_cast<const char*>(&h), sizeof h);
  queued_.append(config.subject_prefix).append(1, '.').append(event_name).append(1, '\0');
  queued_.append(body);
  for (const athomic_header& hd : headers) {
    queued_.append(athomic::sdk::view(hd.name)).append(1, '\0');
    queued_.append(athomic::sdk::view(hd.value)).append(1, '\0');
  }
  held_ += size;
  ++accepted_;
  if (writer_idle_) {
    writer_idle_ = false;  // one wake-up is enough until it sleeps again
    wake_.notify_one();
  }
}

void Outbox::fence(std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  const uint64_t target = accepted_;
  finished_.wait_for(lock, limit, [&] { return finished_count_ >= target || !running_; });
}

void Outbox::run() {
  std::string batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    writer_idle_ = true;
    wake_.wait(lock, [&] { return !queued_.empty() || !running_; });
    writer_idle_ = false;
    if (queued_.empty()) return;  // stopped, and everything was completed
    batch.swap(queued_);
    queued_.clear();
    lock.unlock();
    send(batch);
    batch.clear();
    lock.lock();
  }
}

void Outbox::send(std::string& batch) {
  const std::string url = masked(session_->config.url);
  if (!wait_until_connected()) {
    complete(batch, 0, batch.size(), ATHOMIC_ERR_CONNECT,
             session_->publishing_closed() ? "not sent: the connection to " + url +
                                                 " is closed (events.provider.max_reconnect)"
                                           : "not sent: stopped while reconnecting to " + url);
    finish(batch);
    return;
  }
  const uint64_t reconnects_before = reconnects();
  std::size_t pos = 0;
  std::size_t written = 0;  // records [0, written) are in the client's hands
  while (pos < batch.size()) {
    Header h;
    std::memcpy(&h, batch.data() + pos, sizeof h);
    const char* subject = batch.data() + pos + sizeof h;
    const char* body = subject + h.subject_size + 1;
    const std::size_t next = pos + record_size(h);
    const natsStatus s = publish(h, subject, body);
    if (s == NATS_OK) {
      // Unsent records before this one (refused below) were completed already.
      written = next;
    } else if (natsConnection_Status(conn_) != NATS_CONN_STATUS_CONNECTED) {
      // The connection dropped under the batch (a message cut in half is discarded with the
      // client's buffer): the rest waits for the next batch, in order.
      std::lock_guard lock(mutex_);
      queued_.insert(0, batch, pos, std::string::npos);
      batch.resize(pos);
      break;
    } else {
      // This one message (e.g. over the server's max_payload); the others go on.
      complete(batch, pos, next,
               s == NATS_MAX_PAYLOAD ? ATHOMIC_ERR_INVALID_ARGUMENT : ATHOMIC_ERR_CONNECT,
               "the client refused it: " + status_text(s));
      std::memset(batch.data() + pos, 0, sizeof(uint64_t));  // completed: token 0
    }
    pos = next;
  }
  if (written == 0) {
    finish(batch);
    return;
  }
  // Confirmed once the server answered a PING sent after the batch — on the same connection:
  // a reconnection in between leaves the batch uncertain.
  natsStatus s;
  for (;;) {
    s = natsConnection_FlushTimeout(conn_, kFlushSliceMs);
    if (s != NATS_TIMEOUT || past_drain_deadline() ||
        natsConnection_Status(conn_) != NATS_CONN_STATUS_CONNECTED) {
      break;
    }
  }
  if (s == NATS_OK && reconnects() == reconnects_before) {
    complete(batch, 0, written, ATHOMIC_OK, {});
  } else if (s == NATS_TIMEOUT && past_drain_deadline()) {
    complete(batch, 0, written, ATHOMIC_ERR_CONNECT,
             "stopped before " + url + " confirmed it (events.provider.drain_timeout)");
  } else {
    complete(batch, 0, written, ATHOMIC_ERR_CONNECT,
             "the connection to " + url +
                 " was lost before the server confirmed it; it may or may not have been delivered");
  }
  finish(batch);
}

natsStatus Outbox::publish(const Header& h, const char* subject, const char* body) {
  if (h.headers_size == 0) {
    return natsConnection_Publish(conn_, subject, body, static_cast<int>(h.body_size));
  }
  natsMsg* msg = nullptr;
  natsStatus s = natsMsg_Create(&msg, subject, nullptr, body, static_cast<int>(h.body_size));
  const char* pair = body + h.body_size;
  const char* const end = pair + h.headers_size;
  while (s == NATS_OK && pair < end) {
    const char* value = pair + std::strlen(pair) + 1;
    // Add, not Set: a name given twice is sent twice, as given.
    s = natsMsgHeader_Add(msg, pair, value);
    pair = value + std::strlen(value) + 1;
  }
  if (s == NATS_OK) s = natsConnection_PublishMsg(conn_, msg);
  natsMsg_Destroy(msg);
  return s;
}

bool Outbox::wait_until_connected() {
  for (;;) {
    const natsConnStatus st = natsConnection_Status(conn_);
    if (st == NATS_CONN_STATUS_CONNECTED) return true;
    if (st == NATS_CONN_STATUS_CLOSED || session_->publishing_closed() || past_drain_deadline()) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool Outbox::past_drain_deadline() const { return now_ns() > drain_deadline_ns_.load(); }

void Outbox::complete(const std::string& batch, std::size_t from, std::size_t to,
                      athomic_status status, const std::string& error) {
  for (std::size_t pos = from; pos < to;) {
    Header h;
    std::memcpy(&h, batch.data() + pos, sizeof h);
    if (h.token != 0) session_->host.publish_done(h.token, status, -1, error);
    pos += record_size(h);
  }
}

void Outbox::finish(const std::string& batch) {
  uint64_t count = 0;
  for (std::size_t pos = 0; pos < batch.size(); ++count) {
    Header h;
    std::memcpy(&h, batch.data() + pos, sizeof h);
    pos += record_size(h);
  }
  std::lock_guard lock(mutex_);
  held_ -= batch.size();
  finished_count_ += count;
  finished_.notify_all();
}

uint64_t Outbox::reconnects() const {
  uint64_t in_msgs = 0, in_bytes = 0, out_msgs = 0, out_bytes = 0, count = 0;
  if (natsConnection_GetStats(conn_, stats_) == NATS_OK) {
    natsStatistics_GetCounts(stats_, &in_msgs, &in_bytes, &out_msgs, &out_bytes, &count);
  }
  return count;
}

}  // namespace athomic_nats
