// The publisher's execution context reaches every handler, on whatever thread runs it.
#include "test_support.h"

namespace athomic::test {
namespace {

class ContextPropagation : public testing::TestWithParam<DispatchMode> {};

ContextPtr full_context() {
  return ExecutionContext::Builder()
      .tenant_id("acme")
      .request_id("req-1")
      .trace_id("trace-1")
      .span_id("span-1")
      .user_id("user-1")
      .role("admin")
      .locale("de-DE")
      .source_ip("192.0.2.10")
      .session_id("sess-1")
      .correlation_id("corr-1")
      .feature_flags({{"beta", true}, {"legacy", false}})
      .build();
}

TEST_P(ContextPropagation, HandlerRunsInThePublishersPropagatedContext) {
  auto bus = started(local_settings(GetParam()));
  ContextPtr seen_current, seen_event;
  bus->subscribe("ctx", [&](const Event& e) {
    seen_current = ExecutionContext::current_ptr();
    seen_event = ExecutionContext::Builder(e.context()).build();
  });
  {
    ContextScope scope(full_context());
    bus->publish("ctx", {}).wait();
  }
  ASSERT_TRUE(seen_current);
  EXPECT_EQ(*seen_current, *seen_event);
  EXPECT_EQ(seen_current->tenant_id(), "acme");
  EXPECT_EQ(seen_current->trace_id(), "trace-1");
  EXPECT_EQ(seen_current->correlation_id(), "corr-1");
  EXPECT_EQ(seen_current->feature_flags().at("beta"), true);
  // Not propagated by default.
  EXPECT_FALSE(seen_current->source_ip().has_value());
  EXPECT_FALSE(seen_current->session_id().has_value());
  EXPECT_EQ(seen_current->fields(), kDefaultPropagatedFields);
}

TEST_P(ContextPropagation, FieldsThatWereNotSetAreNotInvented) {
  auto bus = started(local_settings(GetParam()));
  ContextFieldMask fields = ~0u;
  bus->subscribe("ctx", [&](const Event& e) { fields = e.context().fields(); });
  {
    ContextScope scope(ExecutionContext::Builder().trace_id("only-trace").build());
    bus->publish("ctx", {}).wait();
  }
  EXPECT_EQ(fields, field_bit(ContextField::trace_id));
  bus->publish("ctx", {}).wait();  // no context at all
  EXPECT_EQ(fields, 0u);
}

TEST_P(ContextPropagation, PropagatedFieldsAreConfigurable) {
  auto settings = local_settings(GetParam());
  settings.propagated_fields = field_bit(ContextField::tenant_id) | field_bit(ContextField::source_ip);
  auto bus = started(settings);
  ContextPtr seen;
  bus->subscribe("ctx", [&](const Event&) { seen = ExecutionContext::current_ptr(); });
  {
    ContextScope scope(full_context());
    bus->publish("ctx", {}).wait();
  }
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->fields(), settings.propagated_fields);
  EXPECT_EQ(seen->source_ip(), "192.0.2.10");
}

TEST_P(ContextPropagation, ThePreviousContextIsRestoredAfterTheHandler) {
  auto bus = started(local_settings(GetParam(), 1));  // one worker: every event on one thread
  ContextPtr before_second;
  std::vector<std::optional<std::string>> traces;
  std::mutex m;
  bus->subscribe("ctx", [&](const Event& e) {
    std::lock_guard lock(m);
    auto t = ExecutionContext::current().trace_id();
    traces.emplace_back(t ? std::optional<std::string>(std::string(*t)) : std::nullopt);
  });
  {
    ContextScope scope(ExecutionContext::Builder().trace_id("first").source_ip("1.2.3.4").build());
    bus->publish("ctx", {}).wait();
    // The publisher's own context is untouched, including the fields not propagated.
    EXPECT_EQ(ExecutionContext::current().source_ip(), "1.2.3.4");
  }
  bus->publish("ctx", {}).wait();  // published without context: must not see "first"
  ASSERT_EQ(traces.size(), 2u);
  EXPECT_EQ(traces[0], "first");
  EXPECT_EQ(traces[1], std::nullopt);
  EXPECT_TRUE(ExecutionContext::current().is_empty());
}

TEST_P(ContextPropagation, AHandlersOwnScopeDoesNotLeak) {
  auto bus = started(local_settings(GetParam(), 1));
  std::vector<std::string> seen;
  std::mutex m;
  bus->subscribe("a", [&](const Event&) {
    ContextScope inner(ExecutionContext::Builder().trace_id("inner").build());
    bus->publish("b", {});  // carries "inner"
  });
  bus->subscribe("b", [&](const Event& e) {
    std::lock_guard lock(m);
    seen.emplace_back(e.context().trace_id().value_or("none"));
  });
  {
    ContextScope scope(ExecutionContext::Builder().trace_id("outer").build());
    bus->publish("a", {}).wait();
    EXPECT_EQ(ExecutionContext::current().trace_id(), "outer");
  }
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return seen.size() == 1;
  }));
  EXPECT_EQ(seen[0], "inner");
}

TEST(ContextPropagationPool, HandlerSeesTheContextOnAWorkerThread) {
  auto bus = started(local_settings(DispatchMode::pool, 2));
  std::thread::id worker;
  std::string trace;
  bus->subscribe("ctx", [&](const Event&) {
    worker = std::this_thread::get_id();
    trace = std::string(ExecutionContext::current().trace_id().value_or(""));
  });
  ContextScope scope(ExecutionContext::Builder().trace_id("t-worker").build());
  bus->publish("ctx", {}).wait();
  EXPECT_NE(worker, std::this_thread::get_id());
  EXPECT_EQ(trace, "t-worker");
}

INSTANTIATE_TEST_SUITE_P(Modes, ContextPropagation,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
