/* alloc.c — the hook that lets a test fail any allocation of the library (base/alloc.h). */
#include "base/alloc.h"

_Atomic(hl_alloc_fail_fn) hl_alloc_fail;
