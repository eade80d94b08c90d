// Host name resolution that a caller can give up on. getaddrinfo() blocks for as long as the
// system's resolver likes (a DNS server that never answers costs tens of seconds), so a name is
// resolved on a short-lived helper thread while the caller waits on an eventfd with its own
// deadline and cancellation. A caller that gives up just drops its handle: the thread finishes
// alone, holding the shared state, and frees it. (The host never unloads a plugin, so the
// thread's code outlives it.)
#pragma once

#include <sys/socket.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace athomic::redis {

struct Address {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = 0;
};

class Resolution {
 public:
  // Starts resolving @p host (a name or a numeric address) for TCP port @p port. Numeric
  // addresses are done at once, without a thread.
  Resolution(const std::string& host, int port);

  // Readable once done() (never drained: level-triggered for poll()).
  int fd() const noexcept;
  bool done() const;
  // After done(): the addresses in the resolver's order, or (when empty) why there are none.
  std::vector<Address> addresses() const;
  std::string error() const;

 private:
  struct State {
    ~State();
    int event_fd = -1;
    mutable std::mutex mutex;
    bool done = false;
    std::vector<Address> addresses;
    std::string error;
    void finish(std::vector<Address> found, std::string why);
  };
  std::shared_ptr<State> state_;
};

}  // namespace athomic::redis
