/* A provider whose entry point returns NULL: it refuses to work with this host. */
#include <athomic/sdk/provider.h>

ATHOMIC_PLUGIN_EXPORT const athomic_provider_info* athomic_provider_entry(const athomic_host_api* h) {
  (void)h;
  return 0;
}
