// Publishing: publish() only queues, into a buffer bounded by reconnect_buffer_bytes, and never
// waits for the network; one writer thread hands the queue to the client library in batches and
// completes each publish once the server has confirmed it (a PING round trip after the batch),
// or fails it. A server that is slow, frozen or gone fills the buffer, and publish() then fails
// at once with ATHOMIC_ERR_BACKPRESSURE.
#pragma once

#include <athomic/sdk/provider.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "nats_session.h"

namespace athomic_nats {

class Outbox {
 public:
  Outbox() = default;
  ~Outbox() { stop(); }
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  /// Starts the writer on @p conn (the publishing connection).
  void start(std::shared_ptr<Session> session, natsConnection* conn);
  /// Gives what is queued until the session's drain_timeout to be sent and confirmed, fails
  /// the rest, and joins the writer. Every publish accepted is completed when it returns.
  void stop() noexcept;
  /// Queues one message, with its headers (sent as NATS headers). @throws athomic::sdk::Error:
  /// ATHOMIC_ERR_BACKPRESSURE when the buffer is full, ATHOMIC_ERR_STATE when stopped,
  /// ATHOMIC_ERR_CONNECT when the client gave up, ATHOMIC_ERR_INVALID_ARGUMENT for a header
  /// that NATS cannot carry.
  void put(std::string_view event_name, std::string_view body, uint64_t token,
           athomic::sdk::Headers headers = {});
  /// Waits until every message put before the call has been completed (the server read it, or
  /// it failed), or @p limit passes. A subscription made after it cannot see those messages:
  /// the two connections are served in no particular order.
  void fence(std::chrono::milliseconds limit);

 private:
  // A queued message: this header, then the subject and a NUL, then the body, then its
  // headers as NUL-terminated name and value pairs (headers_size bytes; usually none).
  struct Header {
    uint64_t token;
    uint32_t subject_size;
    uint32_t body_size;
    uint32_t headers_size;
  };
  static std::size_t record_size(const Header& h) {
    return sizeof h + h.subject_size + 1 + h.body_size + h.headers_size;
  }
  // Hands one record's message to the client.
  natsStatus publish(const Header& h, const char* subject, const char* body);

  void run();
  // Sends @p batch and completes every message in it; what it could not hand to the client
  // (the connection dropped) goes back to the front of the queue.
  void send(std::string& batch);
  bool wait_until_connected();
  bool past_drain_deadline() const;
  void complete(const std::string& batch, std::size_t from, std::size_t to, athomic_status status,
                const std::string& error);
  // Every message of @p batch was completed: its bytes leave the buffer.
  void finish(const std::string& batch);
  uint64_t reconnects() const;

  std::shared_ptr<Session> session_;
  natsConnection* conn_ = nullptr;
  natsStatistics* stats_ = nullptr;
  std::thread writer_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;
  bool running_ = false;
  bool writer_idle_ = false;
  std::string queued_;           // records, in publish order
  uint64_t held_ = 0;            // bytes queued or sent and not yet confirmed
  uint64_t accepted_ = 0;        // messages put, ever
  uint64_t finished_count_ = 0;  // of those, completed (in publish order)
  std::atomic<int64_t> drain_deadline_ns_{INT64_MAX};
};

}  // namespace athomic_nats
