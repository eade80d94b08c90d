// `athomic listen NAME...`: one JSON line per event on stdout and nothing else, so that its
// output pipes into jq; readiness and logs go to stderr.
#include "cli.h"

#include <csignal>
#include <chrono>
#include <ctime>
#include <iostream>
#include <mutex>

namespace athomic::cli {
namespace {

nlohmann::json context_json(const ExecutionContext& ctx) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t i = 0; i < kContextStringFieldCount; ++i) {
    const auto f = static_cast<ContextField>(i);
    if (auto v = ctx.get(f)) j[std::string(context_field_name(f))] = *v;
  }
  if (ctx.has(ContextField::feature_flags)) j["feature_flags"] = ctx.feature_flags();
  return j;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

int cmd_listen(const Settings& settings, const ListenOptions& o) {
  // `listen … | head -1`: a closed stdout ends the command instead of killing it mid-write.
  std::signal(SIGPIPE, SIG_IGN);

  // Declared before the bus, so that they outlive every handler call.
  std::mutex out;
  int printed = 0;
  bool stdout_closed = false;
  auto bus = start_bus(settings);
  note_in_process(*bus, "listen");
  const auto print = [&](const Event& e) {
    const std::string line = o.raw ? e.payload().dump()
                                   : nlohmann::json{{"event", std::string(e.name())},
                                                    {"payload", e.payload()},
                                                    {"context", context_json(e.context())}}
                                         .dump();
    std::lock_guard lock(out);
    if (stdout_closed || (o.count > 0 && printed >= o.count)) return;
    std::cout << line << std::endl;  // flushed: a reader sees each event as it comes
    if (!std::cout) stdout_closed = true;
    ++printed;
  };
  for (const auto& name : o.names) {
    try {
      bus->subscribe(name, print);
    } catch (const EventBusError& e) {
      // The bus checks names and patterns (validate_pattern is not public): a bad one is the
      // user's mistake; a subscription the provider refused is not.
      const std::string_view what = e.what();
      if (what.starts_with("invalid event name") || what.starts_with("invalid pattern")) {
        throw UsageError(e.what());
      }
      throw;
    }
  }
  std::cerr << "athomic listen: ready: " << join(o.names) << " on backend '" << bus->provider().name
            << "'" << std::endl;

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  const auto start = std::chrono::steady_clock::now();
  bool timed_out = false;
  for (;;) {
    {
      std::lock_guard lock(out);
      if (stdout_closed || (o.count > 0 && printed >= o.count)) break;
    }
    if (o.timeout_s &&
        std::chrono::steady_clock::now() - start >= std::chrono::duration<double>(*o.timeout_s)) {
      timed_out = true;
      break;
    }
    // Also the poll interval for the count and the deadline.
    const timespec wait{0, 20'000'000};
    if (sigtimedwait(&stop, nullptr, &wait) > 0) break;  // Ctrl-C or SIGTERM: a normal end
  }
  bus->close();
  std::lock_guard lock(out);
  if (timed_out && o.count > 0 && printed < o.count) {
    std::cerr << "athomic listen: " << printed << " of " << o.count << " event(s) arrived within "
              << *o.timeout_s << " s" << std::endl;
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace athomic::cli
