// The Python framework's example, in C++: an AuditService reacts to "user.created" events that
// a UserService publishes, without either knowing the other. The audit handler runs inside the
// publisher's execution context, so its log line carries the request's trace id.
//
//   athomic-demo                         both services in this process (default)
//   athomic-demo --role audit -n 3       only the audit side: wait for 3 events, then exit
//   athomic-demo --role users -n 3       only the user side: publish 3 events
// The two roles in two processes share one bus over a remote backend (redis, nats).
#include <athomic/athomic.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

namespace {

class AuditService {
 public:
  explicit AuditService(athomic::EventBus& bus) : log_(athomic::get_logger("audit_service")) {
    bus.subscribe("user.created", [this](const athomic::Event& e) { on_user_created(e); });
  }

  void on_user_created(const athomic::Event& event) {
    const std::string user_id = event.payload().value("id", "<no id>");
    log_->info("Auditing creation of user {}", user_id);
    {
      std::lock_guard lock(mutex_);
      ++seen_;
    }
    cv_.notify_all();
  }

  bool wait_for(int count, std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return seen_ >= count; });
  }

 private:
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int seen_ = 0;
};

class UserService {
 public:
  explicit UserService(athomic::EventBus& bus) : bus_(bus) {}

  nlohmann::json create_user(const std::string& id, const std::string& name) {
    nlohmann::json user = {{"id", id}, {"name", name}};
    // ... save the user to the database ...
    bus_.publish("user.created", user).wait();  // like `await event_bus.publish(...)`
    return user;
  }

 private:
  athomic::EventBus& bus_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"athomic demo: UserService publishes user.created, AuditService audits it"};
  std::string role = "both";
  int count = 1;
  int timeout_s = 10;
  app.add_option("--role", role, "both, audit (subscriber only) or users (publisher only)")
      ->check(CLI::IsMember({"both", "audit", "users"}));
  app.add_option("-n,--count", count, "events to publish / wait for")->check(CLI::PositiveNumber);
  app.add_option("--timeout", timeout_s, "seconds the audit side waits")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    athomic::EventBus& bus = athomic::get_event_bus();
    auto log = athomic::get_logger("demo");
    log->info("backend '{}' from {}", bus.provider().name, bus.provider().file);

    std::unique_ptr<AuditService> audit;
    if (role != "users") audit = std::make_unique<AuditService>(bus);
    if (role == "audit") std::cout << "ready" << std::endl;  // lets scripts start the publisher

    if (role != "audit") {
      UserService users(bus);
      for (int i = 0; i < count; ++i) {
        // The request's context, as middleware would set it.
        athomic::ContextScope request(athomic::ExecutionContext::Builder()
                                          .trace_id("trace-" + std::to_string(4711 + i))
                                          .tenant_id("acme")
                                          .request_id("req-" + std::to_string(i + 1))
                                          .user_id("admin-7")
                                          .build());
        users.create_user(count == 1 ? "user-123" : "user-" + std::to_string(123 + i), "Ada");
      }
    }
    int status = EXIT_SUCCESS;
    if (audit && !audit->wait_for(count, std::chrono::seconds(timeout_s))) {
      log->error("timed out waiting for {} user.created events", count);
      status = EXIT_FAILURE;
    }
    bus.close();
    return status;
  } catch (const athomic::EventBusError& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 2;
  }
}
