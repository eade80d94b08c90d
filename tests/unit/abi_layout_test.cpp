// The ABI is a promise: its structs may only grow at the end, and every change bumps the
// version. These expectations are ABI 1.5's layout; a change to provider.h that moves or
// resizes anything fails here until the version and this file are updated together.
#include <athomic/sdk/provider.h>

#include <gtest/gtest.h>

#include <cstddef>

namespace {

TEST(AbiLayout, VersionIsTheOneTheseExpectationsDescribe) {
  EXPECT_EQ(ATHOMIC_ABI_VERSION_MAJOR, 1);
  EXPECT_EQ(ATHOMIC_ABI_VERSION_MINOR, 5);
}

TEST(AbiLayout, HostApi) {
  EXPECT_EQ(offsetof(athomic_host_api, struct_size), 0u);
  EXPECT_EQ(offsetof(athomic_host_api, abi_major), 4u);
  EXPECT_EQ(offsetof(athomic_host_api, abi_minor), 6u);
  EXPECT_EQ(offsetof(athomic_host_api, error_set), 8u);
  EXPECT_EQ(offsetof(athomic_host_api, log), 16u);
  EXPECT_EQ(offsetof(athomic_host_api, deliver_event), 24u);
  EXPECT_EQ(offsetof(athomic_host_api, deliver_message), 32u);
  EXPECT_EQ(offsetof(athomic_host_api, clock_now_ns), 40u);
  EXPECT_EQ(offsetof(athomic_host_api, host_version), 48u);  // 1.1
  EXPECT_EQ(offsetof(athomic_host_api, publish_done), 56u);  // 1.2
  EXPECT_EQ(offsetof(athomic_host_api, report_state), 64u);
  EXPECT_EQ(offsetof(athomic_host_api, report_dropped), 72u);
  EXPECT_EQ(offsetof(athomic_host_api, setting), 80u);
  EXPECT_EQ(offsetof(athomic_host_api, deliver_message_to), 88u);
  EXPECT_EQ(offsetof(athomic_host_api, deliver_received), 96u);  // 1.3
  EXPECT_EQ(sizeof(athomic_host_api), 104u);
}

TEST(AbiLayout, ProviderVtable) {
  EXPECT_EQ(offsetof(athomic_provider_vtable, create), 8u);
  EXPECT_EQ(offsetof(athomic_provider_vtable, destroy), 16u);
  EXPECT_EQ(offsetof(athomic_provider_vtable, start), 24u);
  EXPECT_EQ(offsetof(athomic_provider_vtable, stop), 32u);
  EXPECT_EQ(offsetof(athomic_provider_vtable, publish), 40u);
  EXPECT_EQ(offsetof(athomic_provider_vtable, interest_add), 48u);
  EXPECT_EQ(offsetof(athomic_provider_vtable, interest_remove), 56u);
  EXPECT_EQ(offsetof(athomic_provider_vtable, instance_capabilities), 64u);  // 1.4
  EXPECT_EQ(sizeof(athomic_provider_vtable), 72u);
}

TEST(AbiLayout, InfoAndMessage) {
  EXPECT_EQ(offsetof(athomic_provider_info, abi_major), 4u);
  EXPECT_EQ(offsetof(athomic_provider_info, abi_minor), 6u);
  EXPECT_EQ(offsetof(athomic_provider_info, name), 8u);
  EXPECT_EQ(offsetof(athomic_provider_info, version), 16u);
  EXPECT_EQ(offsetof(athomic_provider_info, capabilities), 24u);
  EXPECT_EQ(offsetof(athomic_provider_info, vtable), 32u);
  EXPECT_EQ(offsetof(athomic_provider_info, settings), 40u);  // 1.2
  EXPECT_EQ(sizeof(athomic_provider_info), 48u);
  EXPECT_EQ(offsetof(athomic_message, event_name), 8u);
  EXPECT_EQ(offsetof(athomic_message, body), 24u);
  EXPECT_EQ(offsetof(athomic_message, event), 40u);
  EXPECT_EQ(offsetof(athomic_message, publish_token), 48u);  // 1.2
  EXPECT_EQ(offsetof(athomic_message, headers), 56u);  // 1.3
  EXPECT_EQ(offsetof(athomic_message, header_count), 64u);
  EXPECT_EQ(sizeof(athomic_message), 72u);
  EXPECT_EQ(sizeof(athomic_str), 16u);
}

TEST(AbiLayout, SettingsAddedIn1_2) {
  EXPECT_EQ(offsetof(athomic_setting, path), 8u);
  EXPECT_EQ(offsetof(athomic_setting, type), 16u);
  EXPECT_EQ(offsetof(athomic_setting, flags), 20u);
  EXPECT_EQ(offsetof(athomic_setting, default_json), 24u);
  EXPECT_EQ(offsetof(athomic_setting, description), 32u);
  EXPECT_EQ(offsetof(athomic_setting, min), 40u);
  EXPECT_EQ(offsetof(athomic_setting, max), 48u);
  EXPECT_EQ(offsetof(athomic_setting, choices), 56u);
  EXPECT_EQ(sizeof(athomic_setting), 64u);
  EXPECT_EQ(offsetof(athomic_setting_value, type), 4u);
  EXPECT_EQ(offsetof(athomic_setting_value, boolean), 8u);
  EXPECT_EQ(offsetof(athomic_setting_value, integer), 16u);
  EXPECT_EQ(offsetof(athomic_setting_value, number), 24u);
  EXPECT_EQ(offsetof(athomic_setting_value, text), 32u);
  EXPECT_EQ(sizeof(athomic_setting_value), 48u);
}

TEST(AbiLayout, HeadersAddedIn1_3) {
  EXPECT_EQ(offsetof(athomic_header, name), 0u);
  EXPECT_EQ(offsetof(athomic_header, value), 16u);
  EXPECT_EQ(sizeof(athomic_header), 32u);
  EXPECT_EQ(offsetof(athomic_received, event_name), 8u);
  EXPECT_EQ(offsetof(athomic_received, body), 24u);
  EXPECT_EQ(offsetof(athomic_received, interest), 40u);
  EXPECT_EQ(offsetof(athomic_received, kind), 56u);
  EXPECT_EQ(offsetof(athomic_received, headers), 64u);
  EXPECT_EQ(offsetof(athomic_received, header_count), 72u);
  EXPECT_EQ(sizeof(athomic_received), 80u);
}

TEST(AbiLayout, StatusCodesAndCapabilitiesKeepTheirValues) {
  EXPECT_EQ(ATHOMIC_OK, 0);
  EXPECT_EQ(ATHOMIC_ERR_INTERNAL, 7);
  EXPECT_EQ(ATHOMIC_CAP_IN_PROCESS, 1u);
  EXPECT_EQ(ATHOMIC_CAP_REMOTE, 2u);
  EXPECT_EQ(ATHOMIC_CAP_PATTERN, 4u);
  EXPECT_EQ(ATHOMIC_CAP_HEADERS, 8u);  // the bit ABI 1.0 declared for it
  EXPECT_EQ(ATHOMIC_CAP_ORDERED, 32u);
  EXPECT_EQ(ATHOMIC_CAP_ACKNOWLEDGE, 64u);
  EXPECT_EQ(ATHOMIC_CAP_LOOPBACK, 128u);
  EXPECT_EQ(ATHOMIC_CONNECTION_UP, 0);
  EXPECT_EQ(ATHOMIC_CONNECTION_DOWN, 2);
  EXPECT_EQ(ATHOMIC_SETTING_TABLE, 5);
  EXPECT_EQ(ATHOMIC_INTEREST_PATTERN, 1);
}

}  // namespace
