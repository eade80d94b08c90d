// Overload: more than the provider (or the host's dispatch queue) can take is refused, loudly —
// publish throws EventBusError — and never lost silently: every publish the bus accepted
// completes, and arrives, or a counter in stats() accounts for it.
#include <atomic>
#include <thread>

#include "conformance.h"

namespace athomic::conformance {
namespace {

using nlohmann::json;

// Publishes, sorted by outcome.
class Burst {
 public:
  // Publishes event #@p i; false when it was refused.
  bool publish(EventBus& bus, const std::string& ev, int i, json payload) {
    payload["i"] = i;
    try {
      Completion c = bus.publish(ev, std::move(payload));
      std::lock_guard lock(m_);
      accepted_.emplace_back(i, std::move(c));
      return true;
    } catch (const EventBusError& e) {
      std::lock_guard lock(m_);
      if (refused_++ == 0) first_refusal_ = e.what();
      refused_ids_.push_back(i);
    } catch (const std::exception& e) {
      std::lock_guard lock(m_);
      if (other_.empty()) other_ = e.what();
    }
    return false;
  }

  std::size_t refused() const { return refused_; }
  std::size_t accepted() const { return accepted_.size(); }
  const std::string& first_refusal() const { return first_refusal_; }
  const std::string& other() const { return other_; }
  const std::vector<std::pair<int, Completion>>& outcomes() const { return accepted_; }
  const std::vector<int>& refused_ids() const { return refused_ids_; }

 private:
  std::mutex m_;
  std::vector<std::pair<int, Completion>> accepted_;
  std::vector<int> refused_ids_;
  std::size_t refused_ = 0;
  std::string first_refusal_, other_;
};

// Starts the server again when it goes out of scope, whatever happened in between.
class ServerStopped {
 public:
  bool stop(std::string& error) {
    stopped_ = run_server_control("ATHOMIC_CONFORMANCE_SERVER_STOP", error);
    return stopped_;
  }
  bool start(std::string& error) {
    if (!stopped_) return true;
    stopped_ = false;
    return run_server_control("ATHOMIC_CONFORMANCE_SERVER_START", error);
  }
  ~ServerStopped() {
    std::string ignored;
    start(ignored);
  }

 private:
  bool stopped_ = false;
};

// The checks both overload tests end with: every accepted publish completed (delivered, or
// failed with a reason) and every delivered one arrived exactly once — or a loss counter in
// stats() accounts for it; no refused one arrived.
void expect_nothing_lost(const std::string& who, const EventBus& bus, const Burst& burst,
                         const Inbox& got, const BusStats& before,
                         std::chrono::milliseconds quiet) {
  auto completed = [&] {
    std::size_t n = 0;
    for (const auto& [i, c] : burst.outcomes()) n += c.done() ? 1 : 0;
    return n;
  };
  settle([&] { return completed() == burst.accepted(); }, completed, quiet);
  std::vector<int> expected;
  std::size_t vanished = 0, failed_silently = 0;
  for (const auto& [i, c] : burst.outcomes()) {
    if (!c.done()) {
      ++vanished;
    } else if (c.delivered()) {
      expected.push_back(i);
    } else if (c.error().empty()) {
      ++failed_silently;
    }
  }
  EXPECT_EQ(vanished, 0u) << vanished << " of the " << burst.accepted() << " publishes " << who
                          << " accepted never completed";
  EXPECT_EQ(failed_silently, 0u) << failed_silently << " publishes failed without a reason";

  auto arrived = [&] {
    std::size_t n = 0;
    for (int i : expected) n += got.count(std::to_string(i)) > 0 ? 1 : 0;
    return n;
  };
  settle([&] { return arrived() == expected.size(); }, [&] { return got.total(); }, quiet);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // room for duplicates to show
  std::size_t missing = 0, duplicated = 0, refused_arrived = 0;
  for (int i : expected) {
    const int n = got.count(std::to_string(i));
    missing += n == 0 ? 1 : 0;
    duplicated += n > 1 ? 1 : 0;
  }
  for (int i : burst.refused_ids()) refused_arrived += got.count(std::to_string(i)) > 0 ? 1 : 0;
  const BusStats after = bus.stats();
  const uint64_t accounted = (after.dropped_by_transport - before.dropped_by_transport) +
                             (after.dropped_queue_full - before.dropped_queue_full) +
                             (after.malformed_messages - before.malformed_messages);
  EXPECT_LE(missing, accounted)
      << missing << " of the " << expected.size() << " events " << who
      << " accepted and reported delivered never reached the handler, and no counter accounts "
      << "for them: they were lost silently (stats since the burst: receive_refusals "
      << after.receive_refusals - before.receive_refusals << ", dropped_queue_full "
      << after.dropped_queue_full - before.dropped_queue_full << ", dropped_by_transport "
      << after.dropped_by_transport - before.dropped_by_transport << "). When the host refuses "
      << "a received message with ATHOMIC_ERR_BACKPRESSURE (its dispatch queue is full), the "
      << "provider must keep it and deliver it again, in order (ABI 1.2, deliver_message); what "
      << "the transport itself lost must be reported with report_dropped";
  EXPECT_EQ(duplicated, 0u) << duplicated << " events arrived more than once";
  EXPECT_EQ(refused_arrived, 0u)
      << refused_arrived << " publishes that were refused (publish threw) arrived all the same: "
      << "a refused publish must not be kept";
}

TEST_P(Conformance, OverloadIsRefusedNotLost) {
  const bool remote = has(ATHOMIC_CAP_REMOTE);
  if (!remote && !pool()) {
    GTEST_SKIP() << "in-process provider in inline dispatch: handlers run inside publish, so "
                    "nothing is buffered that could overflow";
  }
  auto s = settings();
  if (!remote) {
    // In process the dispatch queue is the buffer: a small one, with its handler held.
    s.max_queued_events = 16;
    s.when_full = WhenFull::fail;
  }
  auto bus = make_bus(s);
  const auto ev = name("overload");
  Inbox got;
  test::Gate gate;
  bus->subscribe(ev, [&](const Event& e) {
    if (!remote) gate.wait();
    got.add(e.payload()["i"].dump());
  });
  const BusStats before = bus->stats();
  Burst burst;
  auto quiet = std::chrono::milliseconds(5000);
  ServerStopped server;
  if (!remote) {
    for (int i = 0; i < 2000; ++i) burst.publish(*bus, ev, i, json::object());
    EXPECT_GT(burst.refused(), 0u) << "2000 publishes into a dispatch queue of 16 events whose "
                                      "handler is held were all accepted";
  } else if (server_control_available()) {
    std::string error;
    ASSERT_TRUE(server.stop(error)) << error;
    const auto give_up = std::chrono::steady_clock::now() + kPatience;
    for (int i = 0; i < 2'000'000 && std::chrono::steady_clock::now() < give_up; ++i) {
      if (!burst.publish(*bus, ev, i, json::object()) && burst.refused() > 0) break;
    }
    ASSERT_GT(burst.refused(), 0u)
        << who() << " accepted " << burst.accepted() << " publishes with its server stopped "
        << "and refused none: its buffer grows without bound. A provider must fail publish "
        << "with ATHOMIC_ERR_BACKPRESSURE once its bounded buffer is full "
        << "(docs/WRITING_A_PROVIDER.md, Faults)";
    ASSERT_TRUE(server.start(error)) << error;
    quiet = std::chrono::milliseconds(15000);  // reconnecting may take a few back-off rounds
  } else {
    // Without a way to stop the server: faster than it drains, with the largest events.
    const json big = {{"pad", std::string(32 * 1024, 'o')}};
    on_threads(4, [&](int t) {
      for (int i = 0; i < 256; ++i) {
        if (!burst.publish(*bus, ev, t * 1000 + i, big)) break;
      }
    });
    std::cout << "note: " << who() << " refused " << burst.refused() << " of "
              << burst.refused() + burst.accepted() << " publishes of a 32 MiB burst; set "
              << "ATHOMIC_CONFORMANCE_SERVER_STOP and _START to overflow its buffer for sure"
              << std::endl;
  }
  gate.open();
  EXPECT_TRUE(burst.other().empty())
      << "publish threw something other than EventBusError: " << burst.other();
  if (burst.refused() > 0) {
    const BusStats now = bus->stats();
    const uint64_t counted = remote ? now.publish_failures - before.publish_failures
                                    : now.queue_full - before.queue_full;
    EXPECT_GE(counted, burst.refused()) << "refused publishes are not all counted in stats() "
                                        << "(first refusal: " << burst.first_refusal() << ")";
  }
  RecordProperty("accepted", static_cast<int>(burst.accepted()));
  RecordProperty("refused", static_cast<int>(burst.refused()));
  expect_nothing_lost(who(), *bus, burst, got, before, quiet);
}

TEST_P(Conformance, ReceivedEventsSurviveAFullDispatchQueue) {
  if (!has(ATHOMIC_CAP_REMOTE)) {
    GTEST_SKIP() << "in-process provider: it receives nothing from a wire; a full dispatch "
                    "queue refuses the publish itself (OverloadIsRefusedNotLost)";
  }
  auto s = settings();
  if (pool()) s.max_queued_events = 16;  // the host soon asks the provider to hold back
  auto bus = make_bus(s);
  const auto ev = name("held");
  Inbox got;
  test::Gate gate;
  // In inline dispatch the held handler holds the provider's delivering thread itself.
  bus->subscribe(ev, [&](const Event& e) {
    gate.wait();
    got.add(e.payload()["i"].dump());
  });
  const BusStats before = bus->stats();
  Burst burst;
  for (int i = 0; i < 3000; ++i) burst.publish(*bus, ev, i, json::object());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the queue is full by now
  const BusStats held = bus->stats();
  gate.open();
  RecordProperty("accepted", static_cast<int>(burst.accepted()));
  RecordProperty("refused", static_cast<int>(burst.refused()));
  RecordProperty("receive_refusals",
                 static_cast<int>(held.receive_refusals - before.receive_refusals));
  EXPECT_TRUE(burst.other().empty())
      << "publish threw something other than EventBusError: " << burst.other();
  expect_nothing_lost(who(), *bus, burst, got, before, std::chrono::milliseconds(5000));
}

}  // namespace
}  // namespace athomic::conformance
