// Thread-locals on the publish path are read on every event: in the initial-exec model an
// access is one load relative to the thread pointer, not a call to __tls_get_addr as a shared
// library's thread-locals otherwise are (4 % of the pool path's time). libathomic is linked by
// applications, not loaded with dlopen, so its few bytes of such storage are always available.
#pragma once

#if defined(__GNUC__)
#define ATHOMIC_FAST_TLS __attribute__((tls_model("initial-exec")))
#else
#define ATHOMIC_FAST_TLS
#endif
