#include "redis_resolve.h"

#include <netdb.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <system_error>
#include <thread>

namespace athomic::redis {

namespace {

// getaddrinfo() for TCP; @p flags adds e.g. AI_NUMERICHOST. Returns the gai error code.
int lookup(const std::string& host, int port, int flags, std::vector<Address>& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
  if (rc != 0) return rc;
  for (const addrinfo* a = list; a; a = a->ai_next) {
    Address addr;
    std::memcpy(&addr.addr, a->ai_addr, a->ai_addrlen);
    addr.len = a->ai_addrlen;
    addr.family = a->ai_family;
    out.push_back(addr);
  }
  ::freeaddrinfo(list);
  return 0;
}

std::string gai_text(int rc) {
  return rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
}

}  // namespace

Resolution::State::~State() {
  if (event_fd >= 0) ::close(event_fd);
}

void Resolution::State::finish(std::vector<Address> found, std::string why) {
  {
    std::lock_guard lock(mutex);
    addresses = std::move(found);
    error = std::move(why);
    done = true;
  }
  const uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(event_fd, &one, sizeof one);
}

Resolution::Resolution(const std::string& host, int port) : state_(std::make_shared<State>()) {
  state_->event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (state_->event_fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  std::vector<Address> found;
  const int numeric = lookup(host, port, AI_NUMERICHOST, found);
  if (numeric == 0) {
    state_->finish(std::move(found), "");
    return;
  }
  if (numeric != EAI_NONAME) {
    state_->finish({}, gai_text(numeric));
    return;
  }
  try {
    std::thread([state = state_, host, port] {
      std::vector<Address> addresses;
      const int rc = lookup(host, port, 0, addresses);
      state->finish(std::move(addresses), rc == 0 ? "" : gai_text(rc));
    }).detach();
  } catch (const std::system_error& e) {
    state_->finish({}, std::string("cannot start a thread to resolve it: ") + e.what());
  }
}

int Resolution::fd() const noexcept { return state_->event_fd; }

bool Resolution::done() const {
  std::lock_guard lock(state_->mutex);
  return state_->done;
}

std::vector<Address> Resolution::addresses() const {
  std::lock_guard lock(state_->mutex);
  return state_->addresses;
}

std::string Resolution::error() const {
  std::lock_guard lock(state_->mutex);
  return state_->error;
}

}  // namespace athomic::redis
