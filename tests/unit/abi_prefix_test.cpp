// ABI 1.x is append-only: the frozen ABI 1.0 and 1.2 headers (tests/plugins/abi_1_0, abi_1_2)
// must describe a prefix of today's structs — every field at the same offset with the same
// size — and the loader must ask of a plugin no more than the 1.0 layout.
#include <athomic/sdk/provider.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>

#include "plugin_loader.h"

// The frozen header declares the same names: read it into a namespace of its own.
#undef ATHOMIC_SDK_PROVIDER_H
#undef ATHOMIC_ABI_VERSION_MAJOR
#undef ATHOMIC_ABI_VERSION_MINOR
#undef ATHOMIC_PROVIDER_ENTRY_SYMBOL
#undef ATHOMIC_PLUGIN_EXPORT
// Its one function has C linkage too: renamed, so it does not clash with today's.
#define athomic_status_text abi_1_0_athomic_status_text
namespace abi_1_0 {
#include ATHOMIC_ABI_1_0_HEADER
constexpr int kMajor = ATHOMIC_ABI_VERSION_MAJOR;
constexpr int kMinor = ATHOMIC_ABI_VERSION_MINOR;
}  // namespace abi_1_0
#undef athomic_status_text

#undef ATHOMIC_SDK_PROVIDER_H
#undef ATHOMIC_ABI_VERSION_MAJOR
#undef ATHOMIC_ABI_VERSION_MINOR
#undef ATHOMIC_PROVIDER_ENTRY_SYMBOL
#undef ATHOMIC_PLUGIN_EXPORT
#define athomic_status_text abi_1_2_athomic_status_text
namespace abi_1_2 {
#include ATHOMIC_ABI_1_2_HEADER
constexpr int kMajor = ATHOMIC_ABI_VERSION_MAJOR;
constexpr int kMinor = ATHOMIC_ABI_VERSION_MINOR;
}  // namespace abi_1_2
#undef athomic_status_text

namespace {

// Same offset and same size, checked at compile time.
#define SAME_FIELD(type, field)                                            \
  static_assert(offsetof(abi_1_0::type, field) == offsetof(::type, field), \
                #type "." #field " moved since ABI 1.0");                  \
  static_assert(sizeof(abi_1_0::type::field) == sizeof(::type::field),     \
                #type "." #field " changed size since ABI 1.0")

SAME_FIELD(athomic_str, data);
SAME_FIELD(athomic_str, size);

SAME_FIELD(athomic_host_api, struct_size);
SAME_FIELD(athomic_host_api, abi_major);
SAME_FIELD(athomic_host_api, abi_minor);
SAME_FIELD(athomic_host_api, error_set);
SAME_FIELD(athomic_host_api, log);
SAME_FIELD(athomic_host_api, deliver_event);
SAME_FIELD(athomic_host_api, deliver_message);
SAME_FIELD(athomic_host_api, clock_now_ns);

SAME_FIELD(athomic_message, struct_size);
SAME_FIELD(athomic_message, event_name);
SAME_FIELD(athomic_message, body);
SAME_FIELD(athomic_message, event);

SAME_FIELD(athomic_provider_vtable, struct_size);
SAME_FIELD(athomic_provider_vtable, create);
SAME_FIELD(athomic_provider_vtable, destroy);
SAME_FIELD(athomic_provider_vtable, start);
SAME_FIELD(athomic_provider_vtable, stop);
SAME_FIELD(athomic_provider_vtable, publish);
SAME_FIELD(athomic_provider_vtable, interest_add);
SAME_FIELD(athomic_provider_vtable, interest_remove);

SAME_FIELD(athomic_provider_info, struct_size);
SAME_FIELD(athomic_provider_info, abi_major);
SAME_FIELD(athomic_provider_info, abi_minor);
SAME_FIELD(athomic_provider_info, name);
SAME_FIELD(athomic_provider_info, version);
SAME_FIELD(athomic_provider_info, capabilities);
SAME_FIELD(athomic_provider_info, vtable);

// The same against the frozen 1.2 header, for what 1.1 and 1.2 appended.
#define SAME_FIELD_1_2(type, field)                                        \
  static_assert(offsetof(abi_1_2::type, field) == offsetof(::type, field), \
                #type "." #field " moved since ABI 1.2");                  \
  static_assert(sizeof(abi_1_2::type::field) == sizeof(::type::field),     \
                #type "." #field " changed size since ABI 1.2")

SAME_FIELD_1_2(athomic_host_api, clock_now_ns);
SAME_FIELD_1_2(athomic_host_api, host_version);
SAME_FIELD_1_2(athomic_host_api, publish_done);
SAME_FIELD_1_2(athomic_host_api, report_state);
SAME_FIELD_1_2(athomic_host_api, report_dropped);
SAME_FIELD_1_2(athomic_host_api, setting);
SAME_FIELD_1_2(athomic_host_api, deliver_message_to);
SAME_FIELD_1_2(athomic_message, event);
SAME_FIELD_1_2(athomic_message, publish_token);
SAME_FIELD_1_2(athomic_provider_info, vtable);
SAME_FIELD_1_2(athomic_provider_info, settings);
SAME_FIELD_1_2(athomic_setting, struct_size);
SAME_FIELD_1_2(athomic_setting, path);
SAME_FIELD_1_2(athomic_setting, type);
SAME_FIELD_1_2(athomic_setting, flags);
SAME_FIELD_1_2(athomic_setting, default_json);
SAME_FIELD_1_2(athomic_setting, description);
SAME_FIELD_1_2(athomic_setting, min);
SAME_FIELD_1_2(athomic_setting, max);
SAME_FIELD_1_2(athomic_setting, choices);
SAME_FIELD_1_2(athomic_setting_value, struct_size);
SAME_FIELD_1_2(athomic_setting_value, type);
SAME_FIELD_1_2(athomic_setting_value, boolean);
SAME_FIELD_1_2(athomic_setting_value, integer);
SAME_FIELD_1_2(athomic_setting_value, number);
SAME_FIELD_1_2(athomic_setting_value, text);

TEST(AbiPrefix, TheFrozenHeaderIs12) {
  EXPECT_EQ(abi_1_2::kMajor, 1);
  EXPECT_EQ(abi_1_2::kMinor, 2);
  EXPECT_EQ(sizeof(abi_1_2::athomic_host_api), 96u);
  EXPECT_EQ(sizeof(abi_1_2::athomic_message), 56u);
  EXPECT_GE(sizeof(athomic_host_api), sizeof(abi_1_2::athomic_host_api));
  EXPECT_GE(sizeof(athomic_message), sizeof(abi_1_2::athomic_message));
  EXPECT_EQ(sizeof(athomic_provider_info), sizeof(abi_1_2::athomic_provider_info));
  // Its capability bits keep their meaning; the one it reserved is today's headers bit.
  EXPECT_EQ(abi_1_2::ATHOMIC_CAP_ACKNOWLEDGE, ATHOMIC_CAP_ACKNOWLEDGE);
  EXPECT_EQ(abi_1_2::ATHOMIC_CAP_PATTERN, ATHOMIC_CAP_PATTERN);
}

TEST(AbiPrefix, TheFrozenHeaderIsAbi10) {
  EXPECT_EQ(abi_1_0::kMajor, 1);
  EXPECT_EQ(abi_1_0::kMinor, 0);
  EXPECT_EQ(sizeof(abi_1_0::athomic_host_api), 48u);
}

TEST(AbiPrefix, EveryStructOfTodayStartsWithIts10Layout) {
  // The static_asserts above hold field by field; a struct may only have grown.
  EXPECT_GE(sizeof(athomic_host_api), sizeof(abi_1_0::athomic_host_api));
  EXPECT_GE(sizeof(athomic_message), sizeof(abi_1_0::athomic_message));
  EXPECT_GE(sizeof(athomic_provider_vtable), sizeof(abi_1_0::athomic_provider_vtable));
  EXPECT_GE(sizeof(athomic_provider_info), sizeof(abi_1_0::athomic_provider_info));
}

TEST(AbiPrefix, TheLoaderAsksNoMoreThanThe10Layout) {
  EXPECT_EQ(athomic::detail::kProviderInfoSize_1_0, sizeof(abi_1_0::athomic_provider_info));
  EXPECT_EQ(athomic::detail::kProviderVtableSize_1_0, sizeof(abi_1_0::athomic_provider_vtable));
}

TEST(AbiPrefix, AFieldAppendedAfter10IsReadOnlyWhenTheStructHoldsIt) {
  athomic_host_api as_1_0{};
  as_1_0.struct_size = sizeof(abi_1_0::athomic_host_api);
  EXPECT_TRUE(ATHOMIC_STRUCT_HOLDS(as_1_0, athomic_host_api, clock_now_ns));
  EXPECT_FALSE(ATHOMIC_STRUCT_HOLDS(as_1_0, athomic_host_api, host_version));
  athomic_host_api as_1_1{};
  as_1_1.struct_size = sizeof(athomic_host_api);
  EXPECT_TRUE(ATHOMIC_STRUCT_HOLDS(as_1_1, athomic_host_api, host_version));
}

}  // namespace
