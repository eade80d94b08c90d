// Symbol visibility for the athomic runtime library (built with hidden visibility by default).
#pragma once

#if defined(ATHOMIC_RUNTIME_BUILDING)
#define ATHOMIC_API __attribute__((visibility("default")))
#else
#define ATHOMIC_API
#endif
