// The pieces of the `athomic` tool: one command per file; athomic_cli.cpp parses the command
// line, loads the settings and turns errors into the documented exit codes.
#pragma once

#include <athomic/athomic.h>

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::cli {

// The exit codes `athomic --help` and the README document.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed =
    1;  // the bus did not do it: refused, not delivered, no connection
inline constexpr int kExitUsage = 2;  // the command line, its input or the settings are wrong

/// A mistake in what the user gave (a bad event name, JSON that does not parse); main() prints
/// it and exits with kExitUsage.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PublishOptions {
  std::string name;
  std::optional<std::string> payload;  // the JSON argument; absent: stdin lines, or {} on a tty
  std::map<ContextField, std::string> context;
  int count = 1;
  bool count_given = false;
  int interval_ms = 0;
};

struct ConfigOptions {
  std::string env_origin;  // where the environment name came from
  bool json = false;       // a JSON array instead of aligned lines
};

struct StatsOptions {
  std::string endpoint;  // HOST:PORT of a running service; empty: events.metrics.listen, else a run
  int count = 100;       // events of the short run
};

struct BenchOptions {
  int count = 10000;
  int size = 100;  // bytes of each payload's JSON
  int rate = 0;    // events per second; 0: as fast as publish returns
  std::vector<std::string> global_args;  // --settings and --env, for the receiving process
  int receiver_fd = -1;  // >= 0: this process is the receiver and reports on this descriptor
  std::string event;     // the receiver's event name
};

struct ListenOptions {
  std::vector<std::string> names;  // names and patterns
  bool raw = false;
  int count = 0;                    // 0: no limit
  std::optional<double> timeout_s;  // absent: until interrupted
};

int cmd_backends(const Settings& settings);
int cmd_config(const Settings& settings, const ConfigOptions& options);
int cmd_publish(const Settings& settings, const PublishOptions& options);
/// Expects SIGINT and SIGTERM blocked in every thread (block_stop_signals, before any thread
/// starts): it waits for them with sigtimedwait.
int cmd_listen(const Settings& settings, const ListenOptions& options);
int cmd_stats(const Settings& settings, const StatsOptions& options);
int cmd_bench(const Settings& settings, BenchOptions options);
int cmd_doctor(const Settings::LoadOptions& load, bool color);

/// Blocks SIGINT and SIGTERM in the calling thread and so in every thread it starts later.
void block_stop_signals();

/// A started bus; its errors propagate (ConfigError, PluginError, EventBusError).
std::shared_ptr<EventBus> start_bus(const Settings& settings);
/// True for a provider that keeps events in this process (backend `local`).
bool in_process_only(const EventBus& bus);
/// Says on stderr that @p command's events never leave this process, when the backend is
/// in-process only.
void note_in_process(const EventBus& bus, std::string_view command);
/// Parses @p text as an event payload (a JSON object); @p what names it in the error.
/// @throws UsageError naming what is wrong.
nlohmann::json parse_payload(std::string_view text, const std::string& what);
/// @throws UsageError for a name the bus would refuse.
void check_event_name(const std::string& name);

}  // namespace athomic::cli
