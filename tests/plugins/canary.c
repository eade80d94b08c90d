/* A working in-process provider that leaves a mark as soon as any of its code runs: its ELF
 * constructor (run by dlopen, before the entry point) creates the file named by
 * ATHOMIC_TEST_CANARY. Tests that must refuse a file before opening it check the mark is absent. */
#include <athomic/sdk/provider.h>

#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void leave_mark(void) {
  const char* mark = getenv("ATHOMIC_TEST_CANARY");
  if (mark && *mark) {
    FILE* f = fopen(mark, "w");
    if (f) fclose(f);
  }
}

typedef struct canary {
  const athomic_host_api* host;
  athomic_host_ctx* ctx;
} canary;

static athomic_status create(const athomic_host_api* host, athomic_host_ctx* ctx,
                             athomic_str config, athomic_provider** out, athomic_error_sink* err) {
  (void)config;
  canary* self = (canary*)malloc(sizeof(canary));
  if (!self) {
    static const char kMessage[] = "out of memory";
    host->error_set(err, (athomic_str){kMessage, sizeof kMessage - 1});
    return ATHOMIC_ERR_INTERNAL;
  }
  self->host = host;
  self->ctx = ctx;
  *out = (athomic_provider*)self;
  return ATHOMIC_OK;
}
static void destroy(athomic_provider* p) { free(p); }
static athomic_status start(athomic_provider* p, athomic_error_sink* e) { (void)p; (void)e; return ATHOMIC_OK; }
static void stop(athomic_provider* p) { (void)p; }
static athomic_status publish(athomic_provider* p, const athomic_message* m, athomic_error_sink* e) {
  (void)e;
  canary* self = (canary*)p;
  return self->host->deliver_event(self->ctx, m->event);
}
static athomic_status add(athomic_provider* p, athomic_str t, athomic_interest_kind k, athomic_error_sink* e) {
  (void)p; (void)t; (void)k; (void)e; return ATHOMIC_OK;
}
static void rem(athomic_provider* p, athomic_str t, athomic_interest_kind k) { (void)p; (void)t; (void)k; }

static const athomic_provider_vtable vtable = {sizeof(athomic_provider_vtable), create, destroy,
                                               start, stop, publish, add, rem};
static const athomic_provider_info info = {sizeof(athomic_provider_info), ATHOMIC_ABI_VERSION_MAJOR,
                                           ATHOMIC_ABI_VERSION_MINOR, "canary", "0.0.1",
                                           ATHOMIC_CAP_IN_PROCESS, &vtable};

ATHOMIC_PLUGIN_EXPORT const athomic_provider_info* athomic_provider_entry(const athomic_host_api* h) {
  (void)h;
  return &info;
}
