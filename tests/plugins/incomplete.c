/* A provider whose function table misses required functions. */
#include <athomic/sdk/provider.h>

static const athomic_provider_vtable vtable = {sizeof(athomic_provider_vtable), 0, 0, 0, 0, 0, 0, 0, 0};
static const athomic_provider_info info = {.struct_size = sizeof(athomic_provider_info),
                                           .abi_major = ATHOMIC_ABI_VERSION_MAJOR,
                                           .abi_minor = ATHOMIC_ABI_VERSION_MINOR,
                                           .name = "incomplete",
                                           .version = "0.0.1",
                                           .capabilities = ATHOMIC_CAP_IN_PROCESS,
                                           .vtable = &vtable};

ATHOMIC_PLUGIN_EXPORT const athomic_provider_info* athomic_provider_entry(const athomic_host_api* h) {
  (void)h;
  return &info;
}
