#include "redis_cluster.h"

#include "cluster_map.h"
#include "publish_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <vector>

namespace athomic::redis {
namespace {

using cluster::Node;

// Asks the node at @p at for CLUSTER NODES: true with @p nodes, or false with @p why.
bool ask_nodes(const Endpoint& at, std::vector<Node>& nodes, std::string& why,
               const Connection::Cancel* cancel) {
  Connection c;
  if (!c.open(at, why, cancel)) return false;
  std::string command;
  resp::append_command(command, "CLUSTER", "NODES");
  bool ok = false;
  if (!c.call(command, why, cancel, [&](const resp::Reply& r) {
        if (!r.is_array && r.value.type == '-') {
          why = "answered " + std::string(r.value.text);
          if (r.value.text.find("cluster support disabled") != std::string_view::npos) {
            why += " (not a cluster node: for one server, set uri or host instead of "
                   "cluster_nodes)";
          }
          return;
        }
        if (r.is_array || r.value.type != '$' || r.value.null) {
          why = "answered CLUSTER NODES with a reply that is not the list of nodes";
          return;
        }
        try {
          nodes = cluster::parse_nodes(r.value.text);
          ok = !nodes.empty();
          if (!ok) why = "answered an empty list of nodes";
        } catch (const std::invalid_argument& e) {
          why = std::string("answered a list of nodes that cannot be read: ") + e.what();
        }
      })) {
    return false;
  }
  return ok;
}

std::string address_of(const Endpoint& ep) { return ep.host + ":" + std::to_string(ep.port); }

// "MOVED 3999 127.0.0.1:6381" (or ASK): the slot and the node's host:port.
bool parse_redirection(std::string_view why, int& slot, std::string& address) {
  const auto first = why.find(' ');
  const auto second = why.find(' ', first + 1);
  if (first == std::string_view::npos || second == std::string_view::npos) return false;
  const std::string_view number = why.substr(first + 1, second - first - 1);
  if (std::from_chars(number.data(), number.data() + number.size(), slot).ptr !=
          number.data() + number.size() ||
      slot < 0 || slot >= cluster::kSlots) {
    return false;
  }
  address = std::string(why.substr(second + 1));
  return !address.empty();
}

class ClusterProvider final : public sdk::Provider {
 public:
  ClusterProvider(sdk::Host host, const Config& config)
      : host_(host), config_(config) {
    stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stop_fd_ < 0) throw sdk::Error(ATHOMIC_ERR_INTERNAL, "eventfd failed");
    for (auto& slot : slots_) slot.store(nullptr, std::memory_order_relaxed);
    for (const Endpoint& seed : cluster_.seeds) known_.push_back(seed);
  }

  ~ClusterProvider() override {
    stop();
    ::close(stop_fd_);
  }

  void start() override {
    std::lock_guard life(lifecycle_);
    if (running_) return;
    std::vector<Node> nodes;
    std::string error;
    Endpoint answered;
    if (!ask_cluster(nodes, error, nullptr, &answered)) {
      host_.report_state(ATHOMIC_CONNECTION_DOWN, error);
      throw sdk::Error(ATHOMIC_ERR_CONNECT, error);
    }
    std::vector<std::pair<Shard*, Endpoint>> to_start;  // and where each is, read under mutex_
    {
      std::lock_guard lock(mutex_);
      stopping_ = false;
      if (cluster_.sharded) {
        apply_map(nodes);
        for (const auto& shard : shards_) {
          if (shard->serves) to_start.emplace_back(shard.get(), shard->master);
        }
        if (to_start.empty()) {
          error = "no master of the " + cluster_.display() + " serves any slot";
        }
      } else {
        learn(nodes);
        if (shards_.empty()) {
          shards_.push_back(std::make_unique<Shard>(*this));
          shards_.front()->bus = make_shard_bus(host_, config_, answered, *shards_.front());
        }
        Shard& only = *shards_.front();
        only.master = answered;  // the first seed that works: the user's order
        only.serves = true;
        to_start.emplace_back(&only, only.master);
      }
    }
    if (!error.empty()) {
      host_.report_state(ATHOMIC_CONNECTION_DOWN, error);
      throw sdk::Error(ATHOMIC_ERR_CONNECT, error);
    }
    std::vector<Shard*> started;
    try {
      for (auto& [shard, master] : to_start) {
        shard->bus->move_to(master);  // a restart: where the shard is now
        shard->bus->start();
        started.push_back(shard);
      }
    } catch (...) {
      for (Shard* shard : started) shard->bus->stop();
      throw;
    }
    running_ = true;
    {
      std::lock_guard lock(mutex_);
      accepting_ = true;
    }
    uint64_t drained;
    while (::read(stop_fd_, &drained, sizeof drained) > 0) {
    }
    worker_ = std::thread([this] { work(); });
    host_.info("connected to the " + cluster_.display() + ": " + std::to_string(to_start.size()) +
               (cluster_.sharded ? " shard(s)" : " node") + "; channels " + config_.key_prefix +
               config_.separator + "<event>");
    report_aggregate();
  }

  void stop() noexcept override {
    std::lock_guard life(lifecycle_);
    if (!running_) return;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    // The servers first: what they redirect while flushing is still sent (or failed) by the
    // worker; then the worker, which fails what is left.
    std::vector<Shard*> shards;
    {
      std::lock_guard lock(mutex_);
      for (const auto& shard : shards_) {
        if (shard->bus) shards.push_back(shard.get());
      }
    }
    // Together: each may take up to flush_timeout to hand its last publishes to its shard.
    std::vector<std::thread> stoppers;
    for (std::size_t i = 1; i < shards.size(); ++i) {
      try {
        stoppers.emplace_back([shard = shards[i]] { shard->bus->stop(); });
      } catch (const std::system_error&) {
        shards[i]->bus->stop();
      }
    }
    if (!shards.empty()) shards.front()->bus->stop();
    for (auto& t : stoppers) t.join();
    {
      std::lock_guard lock(mutex_);
      accepting_ = false;
    }
    tasks_cv_.notify_all();
    const uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(stop_fd_, &one, sizeof one);  // cancels a refresh
    worker_.join();
    for (Task& task : tasks_) {
      if (!task.topic.empty()) continue;
      host_.publish_done(task.token, ATHOMIC_ERR_CONNECT, -1,
                         "stopped before it was sent to the node that serves its slot (" +
                             task.why + ")");
    }
    tasks_.clear();
    running_ = false;
    host_.report_state(ATHOMIC_CONNECTION_DOWN, "stopped");
  }

  void publish(const sdk::Message& m) override { shard_of(m.event_name).bus->publish(m); }

  void interest_add(std::string_view topic, athomic_interest_kind kind) override {
    if (!cluster_.sharded) return only().bus->interest_add(topic, kind);
    if (kind == ATHOMIC_INTEREST_PATTERN) {
      throw sdk::Error(ATHOMIC_ERR_UNSUPPORTED,
                       "pattern subscriptions need cluster_pubsub = \"classic\" (the " +
                           cluster_.display() +
                           " uses sharded Pub/Sub, and Redis has no sharded PSUBSCRIBE)");
    }
    Shard& shard = shard_of(topic);
    {
      std::lock_guard lock(mutex_);
      subscribed_[std::string(topic)] = &shard;
    }
    try {
      shard.bus->interest_add(topic, kind);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (auto it = subscribed_.find(topic); it != subscribed_.end() && it->second == &shard) {
        subscribed_.erase(it);
      }
      throw;
    }
  }

  void interest_remove(std::string_view topic, athomic_interest_kind kind) noexcept override {
    if (!cluster_.sharded) return only().bus->interest_remove(topic, kind);
    Shard* shard = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (auto it = subscribed_.find(topic); it != subscribed_.end()) {
        shard = it->second;
        subscribed_.erase(it);
      }
    }
    if (shard) shard->bus->interest_remove(topic, kind);
  }

 private:
  // A shard (sharded Pub/Sub), or the one node used (classic): its server's connections, and
  // how the cluster knows it.
  struct Shard final : ShardOwner {
    explicit Shard(ClusterProvider& c) : cluster(c) {}
    ClusterProvider& cluster;
    std::unique_ptr<ServerBus> bus;
    // Under cluster.mutex_:
    Endpoint master;                // where its server was first, or last, seen
    std::set<std::string> ids;      // its master's and replicas' node ids, as last seen
    bool serves = false;            // owns slots in the last map
    athomic_connection_state connection = ATHOMIC_CONNECTION_DOWN;
    std::string detail = "not connected";

    bool locate(Endpoint& node, std::string& error, const Connection::Cancel& cancel) override {
      return cluster.locate(*this, node, error, cancel);
    }
    void redirected(uint64_t token, std::string_view command, std::string_view why) override {
      cluster.post(Task{token, std::string(command), std::string(why), {}, 0, {}});
    }
    void channel_moved(std::string topic, std::string_view why) override {
      std::string from;
      {
        std::lock_guard lock(cluster.mutex_);
        from = address_of(master);
      }
      cluster.post(Task{0, {}, std::string(why), std::move(topic), 0, std::move(from)});
    }
    void state(athomic_connection_state s, std::string_view d) override {
      cluster.shard_state(*this, s, d);
    }
  };

  // Work for the worker thread, so that no server's I/O thread waits on another's: a publish
  // to send again where its slot lives now (topic empty), or a channel to subscribe there.
  struct Task {
    uint64_t token = 0;
    std::string command;
    std::string why;
    std::string topic;
    int redirections = 0;
    std::string from;  // a channel to subscribe: the server that dropped it
  };

  // A publish redirected this often in a row fails: the cluster does not settle.
  static constexpr int kMaxRedirections = 5;
  // How long a channel the server dropped waits for the slot map to show where it went.
  static constexpr std::chrono::seconds kStaleMapWait{3};

  Shard& only() {
    if (shards_.empty()) throw sdk::Error(ATHOMIC_ERR_STATE, "the redis provider is stopped");
    return *shards_.front();
  }

  // The shard that serves @p event_name's channel now.
  Shard& shard_of(std::string_view event_name) {
    if (!cluster_.sharded) return only();
    thread_local std::string channel;
    channel.assign(config_.key_prefix).append(config_.separator).append(event_name);
    const int slot = cluster::key_slot(channel);
    Shard* shard = slots_[slot].load(std::memory_order_acquire);
    if (!shard) {
      if (!running_) throw sdk::Error(ATHOMIC_ERR_STATE, "the redis provider is stopped");
      throw sdk::Error(ATHOMIC_ERR_STATE,
                       "no node of the " + cluster_.display() + " serves slot " +
                           std::to_string(slot) + " of the channel " + channel +
                           " (the cluster does not cover every slot: check CLUSTER SHARDS)");
    }
    return *shard;
  }

  // Asks the nodes known (the seeds first, then those learned) in turn for CLUSTER NODES; the
  // node that answered in @p answered, when given.
  bool ask_cluster(std::vector<Node>& nodes, std::string& error, const Connection::Cancel* cancel,
                   Endpoint* answered = nullptr) {
    std::vector<Endpoint> candidates;
    std::string last;
    {
      std::lock_guard lock(mutex_);
      candidates = known_;
      last = last_answered_;
    }
    // The node that answered last first: a dead seed costs every later lookup nothing.
    std::stable_partition(candidates.begin(), candidates.end(),
                          [&](const Endpoint& e) { return address_of(e) == last; });
    std::string asked;
    for (const Endpoint& at : candidates) {
      std::string why;
      if (ask_nodes(at, nodes, why, cancel)) {
        if (answered) *answered = at;
        std::lock_guard lock(mutex_);
        last_answered_ = address_of(at);
        return true;
      }
      if (cancel && cancel->requested()) {
        error = "asking the cluster for its nodes was cancelled";
        return false;
      }
      asked += (asked.empty() ? "" : "; ") + address_of(at) + ": " + why;
    }
    error = "no node of the " + cluster_.display() + " answered CLUSTER NODES (" + asked + ")";
    return false;
  }

  Endpoint endpoint_of(const Node& n) const {
    Endpoint ep = config_.endpoint;
    ep.host = n.host;
    ep.port = n.port;
    ep.db = 0;
    ep.must_be_master = cluster_.sharded;
    return ep;
  }

  // With mutex_: every usable node's address joins the nodes asked next time.
  void learn(const std::vector<Node>& nodes) {
    for (const Node& n : nodes) {
      if (n.failed) continue;
      const std::string address = n.address();
      if (std::none_of(known_.begin(), known_.end(),
                       [&](const Endpoint& e) { return address_of(e) == address; })) {
        Endpoint ep = endpoint_of(n);
        ep.must_be_master = false;  // any node answers CLUSTER NODES
        known_.push_back(std::move(ep));
      }
    }
  }

  // Classic Pub/Sub: any node that is not failing (a master first).
  Endpoint first_usable(const std::vector<Node>& nodes) const {
    for (const bool master : {true, false}) {
      for (const Node& n : nodes) {
        if (!n.failed && n.master == master) return endpoint_of(n);
      }
    }
    return endpoint_of(nodes.front());
  }

  static std::set<std::string> ids_of(const Node& master, const std::vector<Node>& nodes) {
    std::set<std::string> ids{master.id};
    for (const Node& n : nodes) {
      if (n.master_id == master.id) ids.insert(n.id);
    }
    return ids;
  }

  // With mutex_: the shard each master with slots belongs to (found by the node ids it had: a
  // promoted replica is its old master's shard), made when new, and the slot table.
  std::vector<Shard*> apply_map(const std::vector<Node>& nodes) {
    learn(nodes);
    std::vector<Shard*> added;
    std::array<Shard*, cluster::kSlots> table{};
    for (const auto& shard : shards_) shard->serves = false;
    for (const Node& n : nodes) {
      if (!n.master || n.slots.empty()) continue;
      Shard* shard = nullptr;
      for (const auto& s : shards_) {
        if (s->ids.count(n.id)) shard = s.get();
      }
      if (shard && shard->serves) {
        // Two masters of one shard claim slots (a failover the map has half seen): the one
        // not failing keeps the shard.
        if (n.failed) continue;
      }
      if (!shard) {
        shards_.push_back(std::make_unique<Shard>(*this));
        shard = shards_.back().get();
        added.push_back(shard);
      }
      if (!n.failed || !shard->serves) {
        shard->master = endpoint_of(n);
        shard->ids = ids_of(n, nodes);
      }
      // Made before its slots point to it (publishers read it without a lock); started by the
      // caller: until then a publish there fails as "stopped".
      if (!shard->bus) shard->bus = make_shard_bus(host_, config_, shard->master, *shard);
      shard->serves = true;
      for (const auto& [first, last] : n.slots) {
        for (int slot = first; slot <= last; ++slot) table[slot] = shard;
      }
    }
    for (int slot = 0; slot < cluster::kSlots; ++slot) {
      slots_[slot].store(table[slot], std::memory_order_release);
    }
    return added;
  }

  // A shard's server lost its node: where the shard's master is now.
  bool locate(Shard& shard, Endpoint& node, std::string& error, const Connection::Cancel& cancel) {
    std::vector<Node> nodes;
    if (!ask_cluster(nodes, error, &cancel)) return false;
    std::lock_guard lock(mutex_);
    learn(nodes);
    if (!cluster_.sharded) {
      // Any node: the one lost first if the cluster sees it working, else another.
      const std::string lost = address_of(shard.master);
      const auto same = std::find_if(nodes.begin(), nodes.end(), [&](const Node& n) {
        return !n.failed && n.address() == lost;
      });
      shard.master = same != nodes.end() ? endpoint_of(*same) : first_usable(nodes);
      node = shard.master;
      return true;
    }
    std::string failing;
    for (const Node& n : nodes) {
      if (!n.master || !shard.ids.count(n.id)) continue;
      if (n.failed) {
        failing = n.address();
        continue;
      }
      shard.ids = ids_of(n, nodes);
      shard.master = endpoint_of(n);
      node = shard.master;
      return true;
    }
    error = "the shard of " + address_of(shard.master) + " has no working master yet" +
            (failing.empty() ? std::string() : " (" + failing + " is failing)") +
            ": waiting for one of its replicas to take over";
    return false;
  }

  void post(Task task) {
    {
      std::lock_guard lock(mutex_);
      if (accepting_) {
        tasks_.push_back(std::move(task));
        tasks_cv_.notify_one();
        return;
      }
    }
    if (task.topic.empty()) {
      host_.publish_done(task.token, ATHOMIC_ERR_CONNECT, -1,
                         "stopped before it was sent to the node that serves its slot");
    }
  }

  void work() {
    // Sharded: the slot map is read again every keepalive_interval, for what no server tells
    // (a demoted master that keeps a publish-only bus's connection; a slot served again).
    const bool periodic = cluster_.sharded && config_.keepalive_interval_s > 0;
    const auto every = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(config_.keepalive_interval_s));
    auto next = std::chrono::steady_clock::now() + every;
    std::unique_lock lock(mutex_);
    for (;;) {
      const auto ready = [&] { return !accepting_ || !tasks_.empty(); };
      if (!periodic) {
        tasks_cv_.wait(lock, ready);
      } else if (!tasks_cv_.wait_until(lock, next, ready)) {
        lock.unlock();
        refresh_periodically();
        next = std::chrono::steady_clock::now() + every;
        lock.lock();
        continue;
      }
      if (!accepting_) return;
      Task task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      if (task.topic.empty()) {
        send_again(std::move(task));
      } else {
        subscribe_again(std::move(task));
      }
      lock.lock();
    }
  }

  // The periodic refresh; then the channels whose slot no master served are subscribed again
  // where one does now.
  void refresh_periodically() {
    refresh(false);
    std::vector<std::string> orphans;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [topic, shard] : subscribed_) {
        if (!shard && slots_[cluster::key_slot(config_.channel(topic))].load()) {
          orphans.push_back(topic);
        }
      }
    }
    for (auto& topic : orphans) {
      subscribe_again(Task{0, {}, "its slot is served again", std::move(topic), 0, {}});
    }
  }

  // Re-reads the slot map and starts the servers of new shards; @p loud: a failure is logged.
  void refresh(bool loud = true) {
    std::vector<Node> nodes;
    std::string error;
    const Connection::Cancel cancel{stop_fd_, [this] {
                                      std::lock_guard lock(mutex_);
                                      return !accepting_;
                                    }};
    if (!ask_cluster(nodes, error, &cancel)) {
      if (loud && !cancel.requested()) host_.warn("could not refresh the cluster's slot map: " + error);
      return;
    }
    std::vector<std::pair<Shard*, std::string>> added;  // and its address, read under mutex_
    std::vector<std::pair<Shard*, Endpoint>> serving;
    {
      std::lock_guard lock(mutex_);
      for (Shard* shard : apply_map(nodes)) added.emplace_back(shard, address_of(shard->master));
      for (const auto& shard : shards_) {
        if (shard->serves && shard->bus) serving.emplace_back(shard.get(), shard->master);
      }
    }
    // A shard whose master changed while its connections stayed open (CLUSTER FAILOVER, or a
    // paused master that came back a replica): they move.
    for (auto& [shard, master] : serving) shard->bus->follow(master);
    for (auto& [shard, at] : added) {
      host_.info("the cluster has a new shard at " + at);
      try {
        shard->bus->start();
      } catch (const std::exception& e) {
        host_.error("could not connect to the new shard at " + at + ": " + e.what());
        std::lock_guard lock(mutex_);
        for (auto& slot : slots_) {
          if (slot.load(std::memory_order_relaxed) == shard) slot.store(nullptr);
        }
      }
    }
  }

  void send_again(Task task) {
    int slot = -1;
    std::string address;
    if (!parse_redirection(task.why, slot, address)) {
      host_.publish_done(task.token, ATHOMIC_ERR_STATE, -1,
                         "the cluster answered a publish with '" + task.why + "'");
      return;
    }
    if (++task.redirections > kMaxRedirections) {
      host_.publish_done(task.token, ATHOMIC_ERR_STATE, -1,
                         "redirected " + std::to_string(kMaxRedirections) +
                             " times without settling on a node (last: " + task.why + ")");
      return;
    }
    Shard* target = nullptr;
    if (task.why.starts_with("MOVED ")) {
      std::lock_guard lock(mutex_);
      for (const auto& shard : shards_) {
        if (shard->bus && address_of(shard->master) == address) target = shard.get();
      }
      if (target && slots_[slot].exchange(target, std::memory_order_acq_rel) != target) {
        host_.info("slot " + std::to_string(slot) + " (" +
                   std::string(PublishQueue::channel_of(task.command)) + ") is served at " +
                   address + " now (" + task.why + "); its publishes go there");
      }
    } else {
      // ASK: the slot is moving; once it has, MOVED names its node.
      std::this_thread::sleep_for(std::chrono::milliseconds(10) * task.redirections);
    }
    if (!target) {
      refresh();
      target = slots_[slot].load(std::memory_order_acquire);
    }
    if (!target || !target->bus) {
      host_.publish_done(task.token, ATHOMIC_ERR_STATE, -1,
                         "no node of the cluster serves slot " + std::to_string(slot) + " (" +
                             task.why + ")");
      return;
    }
    target->bus->publish_command(task.command, task.token);
  }

  void subscribe_again(Task task) {
    // The node asked for the map may not know yet what the node that dropped the channel knew
    // (a demoted master, a slot given away): while the map still names the shard and server
    // that dropped it, it is asked again, for up to kStaleMapWait.
    const int slot = cluster::key_slot(config_.key_prefix + config_.separator + task.topic);
    const auto where = [&] {
      std::lock_guard lock(mutex_);
      const Shard* s = slots_[slot].load(std::memory_order_acquire);
      return s ? address_of(s->master) : std::string();
    };
    const std::string& dropped_by = task.from;
    // One wait per node and occasion: the channels it dropped together share its deadline.
    const auto now = std::chrono::steady_clock::now();
    auto& until = stale_wait_[dropped_by];
    if (until + kStaleMapWait < now) until = now + kStaleMapWait;
    const auto give_up = until;
    for (;;) {
      refresh();
      if (where() != dropped_by || std::chrono::steady_clock::now() >= give_up) break;
      std::unique_lock lock(mutex_);
      if (tasks_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return !accepting_; })) {
        return;  // stopping
      }
    }
    Shard* target = nullptr;
    std::string at;  // the target's address: its I/O thread rewrites it under mutex_ on reconnect
    {
      std::lock_guard lock(mutex_);
      const auto it = subscribed_.find(task.topic);
      if (it == subscribed_.end() || stopping_) return;  // unsubscribed meanwhile
      thread_local std::string channel;
      channel.assign(config_.key_prefix).append(config_.separator).append(task.topic);
      target = slots_[cluster::key_slot(channel)].load(std::memory_order_acquire);
      if (!target || !target->bus) {
        host_.error("no node of the cluster serves the channel of " + task.topic +
                    " any more (" + task.why + "): its subscription is lost until one does");
        it->second = nullptr;  // subscribed again by refresh_periodically
        return;
      }
      it->second = target;
      at = address_of(target->master);
    }
    host_.info("subscribing " + task.topic + " again at " + at + " (" + task.why + ")");
    try {
      target->bus->interest_add(task.topic, ATHOMIC_INTEREST_EXACT);
    } catch (const std::exception& e) {
      host_.error("could not subscribe " + task.topic + " again at " + at + ": " + e.what());
    }
  }

  void shard_state(Shard& shard, athomic_connection_state state, std::string_view detail) {
    {
      std::lock_guard lock(mutex_);
      shard.connection = state;
      shard.detail = std::string(detail);
      if (!running_ || stopping_) return;
    }
    report_aggregate();
  }

  // Up once every shard is; otherwise the first shard that is not, with its detail.
  void report_aggregate() {
    // One report at a time, each of the states as they are then: the last one the host gets
    // is the latest.
    std::lock_guard reporting(report_mutex_);
    athomic_connection_state state = ATHOMIC_CONNECTION_UP;
    std::string detail;
    std::size_t up = 0;
    {
      std::lock_guard lock(mutex_);
      for (const auto& shard : shards_) {
        if (!shard->bus || !shard->serves) continue;
        if (shard->connection == ATHOMIC_CONNECTION_UP) {
          ++up;
        } else if (state == ATHOMIC_CONNECTION_UP) {
          state = shard->connection == ATHOMIC_CONNECTION_DOWN ? ATHOMIC_CONNECTION_RECONNECTING
                                                          : shard->connection;
          detail = shard->detail;
        }
      }
    }
    if (state == ATHOMIC_CONNECTION_UP) {
      detail = "connected to the " + cluster_.display() + " (" + std::to_string(up) +
               (cluster_.sharded ? " shard(s))" : " node)");
    }
    host_.report_state(state, detail);
  }

  sdk::Host host_;
  const Config config_;
  const ClusterConfig& cluster_ = *config_.cluster;
  std::mutex lifecycle_;
  std::atomic<bool> running_{false};  // written under lifecycle_
  std::mutex report_mutex_;

  std::mutex mutex_;
  std::vector<std::unique_ptr<Shard>> shards_;  // never shrinks: slots_ points into it
  std::array<std::atomic<Shard*>, cluster::kSlots> slots_;
  std::vector<Endpoint> known_;                          // nodes to ask for the map
  std::string last_answered_;                            // host:port of the last that did
  std::map<std::string, Shard*, std::less<>> subscribed_;  // channels and their shard
  bool stopping_ = false;
  std::deque<Task> tasks_;
  std::condition_variable tasks_cv_;
  bool accepting_ = false;  // the worker runs and takes tasks
  int stop_fd_ = -1;        // readable once stop() wants the worker's map reads given up
  std::thread worker_;
  // The worker's: until when a channel dropped by the node (host:port) waits for the map.
  std::map<std::string, std::chrono::steady_clock::time_point> stale_wait_;
};

}  // namespace

std::unique_ptr<sdk::Provider> make_cluster_provider(sdk::Host host, const Config& config) {
  return std::make_unique<ClusterProvider>(host, config);
}

}  // namespace athomic::redis
