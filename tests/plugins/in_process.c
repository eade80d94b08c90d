/* A small working in-process provider in plain C, written against provider.h alone: publish
 * hands the event straight back through deliver_event. Built as:
 *   - "canary" (LEAVE_MARK): its ELF constructor, run by dlopen before the entry point, creates
 *     the file named by ATHOMIC_TEST_CANARY, so tests that must refuse a file before opening it
 *     can check that none of its code ran;
 *   - "abi_1_0": compiled against the frozen ABI 1.0 header (tests/plugins/abi_1_0), as a
 *     third party built it then. It uses only what 1.0 defined;
 *   - MARK_PUBLISH: publish creates the file named by ATHOMIC_TEST_PUBLISH_MARK, so tests can
 *     tell whether the host called it (it need not for ATHOMIC_CAP_LOOPBACK). */
#include <athomic/sdk/provider.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef LEAVE_MARK
__attribute__((constructor)) static void leave_mark(void) {
  const char* mark = getenv("ATHOMIC_TEST_CANARY");
  if (mark && *mark) {
    FILE* f = fopen(mark, "w");
    if (f) fclose(f);
  }
}
#endif

typedef struct in_process {
  const athomic_host_api* host;
  athomic_host_ctx* ctx;
} in_process;

static athomic_status create(const athomic_host_api* host, athomic_host_ctx* ctx,
                             athomic_str config, athomic_provider** out, athomic_error_sink* err) {
  (void)config;
  in_process* self = (in_process*)malloc(sizeof(in_process));
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
static athomic_status start(athomic_provider* p, athomic_error_sink* e) {
  (void)p;
  (void)e;
  return ATHOMIC_OK;
}
static void stop(athomic_provider* p) { (void)p; }
static athomic_status publish(athomic_provider* p, const athomic_message* m,
                              athomic_error_sink* e) {
  (void)e;
  in_process* self = (in_process*)p;
#ifdef MARK_PUBLISH
  const char* mark = getenv("ATHOMIC_TEST_PUBLISH_MARK");
  if (mark && *mark) {
    FILE* f = fopen(mark, "w");
    if (f) fclose(f);
  }
#endif
  return self->host->deliver_event(self->ctx, m->event);
}
static athomic_status add(athomic_provider* p, athomic_str t, athomic_interest_kind k,
                          athomic_error_sink* e) {
  (void)p;
  (void)t;
  (void)k;
  (void)e;
  return ATHOMIC_OK;
}
static void rem(athomic_provider* p, athomic_str t, athomic_interest_kind k) {
  (void)p;
  (void)t;
  (void)k;
}

#ifndef EXTRA_CAPABILITIES
#define EXTRA_CAPABILITIES 0
#endif
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
                                           .abi_major = ATHOMIC_ABI_VERSION_MAJOR,
                                           .abi_minor = ATHOMIC_ABI_VERSION_MINOR,
                                           .name = PROVIDER_NAME,
                                           .version = "0.0.1",
                                           .capabilities =
                                               ATHOMIC_CAP_IN_PROCESS | EXTRA_CAPABILITIES,
                                           .vtable = &vtable};

ATHOMIC_PLUGIN_EXPORT const athomic_provider_info* athomic_provider_entry(
    const athomic_host_api* h) {
  (void)h;
  return &info;
}
