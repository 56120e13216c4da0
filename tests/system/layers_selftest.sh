#!/usr/bin/env bash
# The layer check itself can fail: a fake tree with a sideways include (store → cache), a CLI
# that includes an internal header, a raw LMDB transaction outside store/index.c and <lmdb.h>
# reaching the api through a store header must be rejected, and a clean fake tree accepted.
set -uo pipefail
check=$1
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mkdir -p "$t/src/store" "$t/src/cache" "$t/src/cli" "$t/src/api" "$t/include"
touch "$t/include/helios.h"
echo '#include "base/buf.h"' > "$t/src/cache/l1.h"
echo '#include "store/store.h"' > "$t/src/api/ok.c"
echo '#include "helios.h"' > "$t/src/cli/ok.c"
"$check" "$t" >/dev/null || { echo "clean tree rejected"; echo "0 passed, 1 failed"; exit 1; }
echo '#include "cache/l1.h"' > "$t/src/store/x.c"
"$check" "$t" >/dev/null && { echo "sideways include accepted"; echo "0 passed, 1 failed"; exit 1; }
rm "$t/src/store/x.c"; echo '#include "store/store.h"' > "$t/src/cli/y.c"
"$check" "$t" >/dev/null && { echo "cli including internals accepted"; echo "0 passed, 1 failed"; exit 1; }
rm "$t/src/cli/y.c"; printf 'int f(void) { return mdb_txn_begin(e, 0, 0, &t); }\n' > "$t/src/store/names.c"
"$check" "$t" >/dev/null && { echo "a raw LMDB transaction outside store/index.c accepted"; echo "0 passed, 1 failed"; exit 1; }
rm "$t/src/store/names.c"; echo '#include <lmdb.h>' > "$t/src/store/index.h"; echo '#include "store/index.h"' > "$t/src/store/store.h"
"$check" "$t" >/dev/null && { echo "a store header with LMDB included by the api accepted"; echo "0 passed, 1 failed"; exit 1; }
echo "1 passed, 0 failed"
