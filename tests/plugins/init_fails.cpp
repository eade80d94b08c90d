// A provider written with the C++ helper whose constructor (or start) throws: the helper must
// turn the exception into a status and a message the host reports.
#include <athomic/sdk/provider.hpp>

namespace {
class Failing final : public athomic::sdk::Provider {
 public:
  Failing(athomic::sdk::Host, std::string_view config) {
#ifndef FAIL_AT_START
    throw athomic::sdk::Error(ATHOMIC_ERR_INVALID_ARGUMENT,
                              "setting 'shards' is required (config was " + std::string(config) + ")");
#endif
  }
  void start() override {
#ifdef FAIL_AT_START
    throw std::runtime_error("cannot reach broker at 127.0.0.1:1: connection refused");
#endif
  }
  void stop() noexcept override {}
  void publish(const athomic::sdk::Message&) override {}
  void interest_add(std::string_view, athomic_interest_kind) override {}
  void interest_remove(std::string_view, athomic_interest_kind) noexcept override {}
};
}  // namespace

ATHOMIC_PROVIDER(Failing, "init_fails", "0.0.1", ATHOMIC_CAP_IN_PROCESS);
