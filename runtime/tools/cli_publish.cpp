// `athomic publish NAME [JSON]`: one event (or --count of them), or one per JSON line of stdin;
// one line per event on stdout saying how far it got.
#include "cli.h"

#include <athomic/sdk/provider.h>

#include <unistd.h>

#include <chrono>
#include <deque>
#include <optional>
#include <iostream>
#include <thread>

namespace athomic::cli {
namespace {

std::string plural(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Prints each publish's outcome once it is known, in publishing order, so that a long stdin
// stream reports as it goes.
class Outcomes {
 public:
  Outcomes(const EventBus& bus, std::string name)
      : name_(std::move(name)), caps_(bus.provider().capabilities) {}

  void add(Completion c) {
    pending_.push_back({std::move(c), {}});
    print_done();
  }
  // A publish the bus refused at once (it threw): nothing was sent.
  void refused(std::string why) {
    pending_.push_back({std::nullopt, std::move(why)});
    print_done();
  }
  void print_done() {
    while (!pending_.empty() &&
           (!pending_.front().completion || pending_.front().completion->done())) {
      pop();
    }
  }
  // After the bus is closed every publish is done; one that is not was never sent.
  void print_all() {
    while (!pending_.empty()) pop();
  }
  int published() const { return published_; }
  int undelivered() const { return undelivered_; }
  const std::string& first_error() const { return first_error_; }

 private:
  struct Entry {
    std::optional<Completion> completion;
    std::string refused;
  };

  void pop() {
    std::cout << name_ << ": " << describe(pending_.front()) << std::endl;
    pending_.pop_front();
  }
  std::string failed(const std::string& why) {
    if (undelivered_++ == 0) first_error_ = why;
    return "not delivered: " + why;
  }
  std::string describe(const Entry& e) {
    ++published_;
    if (!e.completion) return failed(e.refused);
    const Completion& c = *e.completion;
    if (!c.done()) return failed("not completed when the bus closed");
    if (!c.delivered()) return failed(c.error());
    if (caps_ & ATHOMIC_CAP_IN_PROCESS) {
      std::string s = plural(c.receivers(), "handler", "handlers") + " in this process";
      if (c.failed_handlers() > 0) s += " (" + std::to_string(c.failed_handlers()) + " threw)";
      return s;
    }
    if (c.receivers() >= 0) return plural(c.receivers(), "receiver", "receivers");
    // The transport confirmed it took the event but not how many it reached (NATS).
    if (caps_ & ATHOMIC_CAP_ACKNOWLEDGE) return "acknowledged";
    return "sent (the transport does not acknowledge)";
  }

  std::string name_;
  uint64_t caps_;
  std::deque<Entry> pending_;
  int published_ = 0;
  int undelivered_ = 0;
  std::string first_error_;
};

}  // namespace

int cmd_publish(const Settings& settings, const PublishOptions& o) {
  check_event_name(o.name);
  const bool from_stdin = !o.payload && !isatty(STDIN_FILENO);
  if (from_stdin && o.count_given) {
    throw UsageError(
        "--count repeats the JSON argument; with events on stdin each line is one event");
  }
  // Checked before connecting: a mistake in the argument sends nothing.
  const nlohmann::json argument =
      o.payload ? parse_payload(*o.payload, "the payload") : nlohmann::json::object();

  auto bus = start_bus(settings);
  if (!bus->enabled()) {
    std::cerr << "athomic publish: events.enabled is false ("
              << settings.events().origin_of("events.enabled") << "): the bus sends nothing"
              << std::endl;
    return kExitFailed;
  }
  note_in_process(*bus, "publish");
  ExecutionContext::Builder b;
  for (const auto& [f, v] : o.context) b.set(f, v);
  ContextScope scope(std::move(b).build());

  Outcomes outcomes(*bus, o.name);
  const auto send = [&](nlohmann::json payload) {
    try {
      outcomes.add(bus->publish(o.name, std::move(payload)));
    } catch (const EventBusError& e) {
      outcomes.refused(e.what());  // e.g. over max_payload_bytes, or the transport's buffer full
    }
    if (o.interval_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.interval_ms));
  };
  std::string bad_line;  // the error of the line that stopped reading stdin
  if (!from_stdin) {
    for (int i = 0; i < o.count; ++i) {
      nlohmann::json p = argument;
      if (o.count > 1) p["seq"] = i;
      send(std::move(p));
    }
  } else {
    // Stops at the first bad line: the lines before it are published already (a stream cannot
    // be taken back), nothing after it is read.
    std::string line;
    for (std::size_t number = 1; std::getline(std::cin, line); ++number) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json p;
      try {
        p = parse_payload(line, "stdin line " + std::to_string(number));
      } catch (const UsageError& e) {
        bad_line = e.what();
        break;
      }
      send(std::move(p));
    }
  }
  bus->close();  // sends what is buffered; a provider fails what it could not send
  outcomes.print_all();

  if (outcomes.undelivered() > 0) {
    std::cerr << "athomic publish: " << outcomes.undelivered() << " of " << outcomes.published()
              << " event(s) were not delivered: " << outcomes.first_error() << std::endl;
  }
  if (!bad_line.empty()) {
    std::cerr << "athomic publish: " << bad_line << "; published the "
              << plural(outcomes.published(), "event", "events")
              << " before it, read nothing after it" << std::endl;
    return kExitUsage;
  }
  if (from_stdin && outcomes.published() == 0) {
    std::cerr << "athomic publish: no JSON line on stdin, nothing published (give the payload as "
                 "an argument, e.g. '{}', to publish without reading stdin)"
              << std::endl;
    return kExitUsage;
  }
  return outcomes.undelivered() > 0 ? kExitFailed : kExitOk;
}

}  // namespace athomic::cli
