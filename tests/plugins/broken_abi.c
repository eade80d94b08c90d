/* A provider that says it was compiled for ABI BROKEN_ABI_MAJOR.BROKEN_ABI_MINOR (a newer or
 * older version than the host's), with the function table of the current one. */
#include <athomic/sdk/provider.h>

static athomic_status create(const athomic_host_api* h, athomic_host_ctx* c, athomic_str cfg,
                             athomic_provider** out, athomic_error_sink* err) {
  (void)h; (void)c; (void)cfg; (void)err;
  *out = (athomic_provider*)1;
  return ATHOMIC_OK;
}
static void destroy(athomic_provider* p) { (void)p; }
static athomic_status start(athomic_provider* p, athomic_error_sink* e) { (void)p; (void)e; return ATHOMIC_OK; }
static void stop(athomic_provider* p) { (void)p; }
static athomic_status publish(athomic_provider* p, const athomic_message* m, athomic_error_sink* e) {
  (void)p; (void)m; (void)e; return ATHOMIC_OK;
}
static athomic_status add(athomic_provider* p, athomic_str t, athomic_interest_kind k, athomic_error_sink* e) {
  (void)p; (void)t; (void)k; (void)e; return ATHOMIC_OK;
}
static void rem(athomic_provider* p, athomic_str t, athomic_interest_kind k) { (void)p; (void)t; (void)k; }

/* Designated: the same source builds against the frozen 1.0 header and the current one. */
static const athomic_provider_vtable vtable = {.struct_size = sizeof(athomic_provider_vtable),
                                               .create = create,
                                               .destroy = destroy,
                                               .start = start,
                                               .stop = stop,
                                               .publish = publish,
                                               .interest_add = add,
                                               .interest_remove = rem};
static const athomic_provider_info info = {.struct_size = sizeof(athomic_provider_info),
                                           .abi_major = BROKEN_ABI_MAJOR,
                                           .abi_minor = BROKEN_ABI_MINOR,
                                           .name = "broken_abi",
                                           .version = "0.0.1",
                                           .capabilities = ATHOMIC_CAP_IN_PROCESS,
                                           .vtable = &vtable};

ATHOMIC_PLUGIN_EXPORT const athomic_provider_info* athomic_provider_entry(const athomic_host_api* h) {
  (void)h;
  return &info;
}
