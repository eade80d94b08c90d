#include <athomic/context.h>
#include <athomic/errors.h>

#include <gtest/gtest.h>

#include <thread>

namespace athomic {
namespace {

TEST(ExecutionContext, UnsetFieldsAreAbsent) {
  auto ctx = ExecutionContext::Builder().trace_id("t-1").build();
  EXPECT_TRUE(ctx->has(ContextField::trace_id));
  EXPECT_EQ(ctx->trace_id(), "t-1");
  EXPECT_FALSE(ctx->tenant_id().has_value());
  EXPECT_FALSE(ctx->has(ContextField::feature_flags));
  EXPECT_EQ(ctx->fields(), field_bit(ContextField::trace_id));
}

TEST(ExecutionContext, EmptyStringIsSetNotAbsent) {
  auto ctx = ExecutionContext::Builder().tenant_id("").build();
  EXPECT_TRUE(ctx->has(ContextField::tenant_id));
  EXPECT_EQ(ctx->tenant_id(), "");
}

TEST(ExecutionContext, NoCurrentContextByDefault) {
  std::thread([] {
    EXPECT_TRUE(ExecutionContext::current().is_empty());
    EXPECT_EQ(ExecutionContext::current_ptr(), nullptr);
  }).join();
}

TEST(ExecutionContext, ScopesNestAndRestore) {
  auto outer = ExecutionContext::Builder().trace_id("outer").build();
  auto inner = ExecutionContext::Builder().trace_id("inner").tenant_id("acme").build();
  {
    ContextScope a(outer);
    EXPECT_EQ(ExecutionContext::current().trace_id(), "outer");
    {
      ContextScope b(inner);
      EXPECT_EQ(ExecutionContext::current().trace_id(), "inner");
      EXPECT_EQ(ExecutionContext::current_ptr(), inner);
    }
    EXPECT_EQ(ExecutionContext::current().trace_id(), "outer");
    EXPECT_FALSE(ExecutionContext::current().tenant_id().has_value());
  }
  EXPECT_TRUE(ExecutionContext::current().is_empty());
}

TEST(ExecutionContext, CurrentIsPerThread) {
  ContextScope scope(ExecutionContext::Builder().trace_id("main").build());
  std::thread([] { EXPECT_TRUE(ExecutionContext::current().is_empty()); }).join();
  EXPECT_EQ(ExecutionContext::current().trace_id(), "main");
}

TEST(ExecutionContext, RestrictSharesWhenNothingIsRemoved) {
  auto ctx = ExecutionContext::Builder().trace_id("t").tenant_id("x").build();
  auto r = ExecutionContext::restrict(ctx, kDefaultPropagatedFields);
  EXPECT_EQ(r.get(), ctx.get());
}

TEST(ExecutionContext, RestrictDropsFieldsAndCachesTheResult) {
  auto ctx = ExecutionContext::Builder()
                 .trace_id("t")
                 .source_ip("10.0.0.1")
                 .session_id("s")
                 .feature_flag("beta", true)
                 .build();
  auto r1 = ExecutionContext::restrict(ctx, kDefaultPropagatedFields);
  auto r2 = ExecutionContext::restrict(ctx, kDefaultPropagatedFields);
  EXPECT_NE(r1.get(), ctx.get());
  EXPECT_EQ(r1.get(), r2.get());
  EXPECT_EQ(r1->trace_id(), "t");
  EXPECT_FALSE(r1->source_ip().has_value());
  EXPECT_FALSE(r1->session_id().has_value());
  EXPECT_EQ(r1->feature_flags().at("beta"), true);
  // A second mask cannot use the cache slot but must still be right.
  auto only_trace = ExecutionContext::restrict(ctx, field_bit(ContextField::trace_id));
  EXPECT_EQ(only_trace->fields(), field_bit(ContextField::trace_id));
  // The restricted view lives as long as the caller holds it, even after the parent is dropped.
  ctx.reset();
  EXPECT_EQ(r1->trace_id(), "t");
}

TEST(ExecutionContext, RefusesOversizedValues) {
  EXPECT_NO_THROW(ExecutionContext::Builder().trace_id(std::string(kMaxContextValueBytes, 'x')));
  try {
    ExecutionContext::Builder().trace_id(std::string(kMaxContextValueBytes + 1, 'x'));
    FAIL() << "expected EventBusError";
  } catch (const EventBusError& e) {
    EXPECT_NE(std::string(e.what()).find("trace_id"), std::string::npos) << e.what();
  }
}

TEST(ExecutionContext, TraceFlagsAndStateGoWhereTheContextGoes) {
  auto plain = ExecutionContext::Builder().trace_id("t").build();
  EXPECT_EQ(plain->trace_flags(), kDefaultTraceFlags);
  EXPECT_EQ(plain->trace_state(), std::nullopt);

  auto ctx = ExecutionContext::Builder()
                 .trace_id("t")
                 .session_id("s")
                 .trace_flags(0x00)
                 .trace_state("rojo=00f067aa0ba902b7")
                 .build();
  EXPECT_EQ(ctx->trace_flags(), 0x00);
  EXPECT_EQ(ctx->trace_state(), "rojo=00f067aa0ba902b7");
  // Not fields: the mask and emptiness are about the Python framework's fields only.
  EXPECT_EQ(ctx->fields(), field_bit(ContextField::trace_id) | field_bit(ContextField::session_id));
  EXPECT_TRUE(ExecutionContext::Builder().trace_state("a=b").build()->is_empty());
  // They count for equality, and survive a restriction (cached or built) and a copy.
  EXPECT_FALSE(*ctx == *ExecutionContext::Builder().trace_id("t").session_id("s").build());
  const auto restricted = ExecutionContext::restrict(ctx, kDefaultPropagatedFields);
  EXPECT_FALSE(restricted->has(ContextField::session_id));
  EXPECT_EQ(restricted->trace_flags(), 0x00);
  EXPECT_EQ(restricted->trace_state(), "rojo=00f067aa0ba902b7");
  const auto other = ExecutionContext::restrict(ctx, field_bit(ContextField::trace_id));
  EXPECT_EQ(other->trace_state(), "rojo=00f067aa0ba902b7");
  EXPECT_EQ(*ExecutionContext::Builder(*ctx).build(), *ctx);
}

TEST(ExecutionContext, FieldNamesRoundTrip) {
  for (std::size_t i = 0; i < kContextFieldCount; ++i) {
    const auto f = static_cast<ContextField>(i);
    EXPECT_EQ(context_field_from_name(context_field_name(f)), f);
  }
  EXPECT_FALSE(context_field_from_name("traceid").has_value());
}

}  // namespace
}  // namespace athomic
