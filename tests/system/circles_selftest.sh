#!/usr/bin/env bash
# The include-circle check must fail on a circle: two modules that include each other's header.
set -uo pipefail
check=$1
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mkdir -p "$t/src/a" "$t/src/b"
printf '#include "b/y.h"\n' > "$t/src/a/x.c"; : > "$t/src/a/x.h"
printf '#include "a/x.h"\n' > "$t/src/b/y.c"; : > "$t/src/b/y.h"
out=$("$check" "$t" 2>&1); rc=$?
if [ "$rc" = 1 ] && grep -q "include circle: src/a/x.h <-> src/b/y.h" <<<"$out"; then
  echo "1 passed, 0 failed"
else
  echo "FAIL: the check did not find the circle (exit $rc): $out"; echo "0 passed, 1 failed"; exit 1
fi
