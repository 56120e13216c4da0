#!/usr/bin/env bash
# The call-circle check must fail on a circle (two files calling each other) and pass on one-way
# calls.
set -uo pipefail
check=$1
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mkdir -p "$t/src/x"
printf 'int b(void);\nint a(void) { return b(); }\n' >"$t/a.c"
printf 'int a(void);\nint b(void) { return a(); }\n' >"$t/b.c"
printf 'int b(void) { return 1; }\n' >"$t/c.c"
cc -c "$t/a.c" -o "$t/src/x/a.o" && cc -c "$t/b.c" -o "$t/src/x/b.o" || { echo "0 passed, 1 failed"; exit 1; }
out=$("$check" "$t" x 2>&1); rc=$?
pass=0 fail=0
if [ "$rc" = 1 ] && grep -q "call circle in src/x: a -> b -> a" <<<"$out"; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "FAIL: the check did not find the circle (exit $rc): $out"; fi
cc -c "$t/c.c" -o "$t/src/x/b.o"
out=$("$check" "$t" x 2>&1); rc=$?
if [ "$rc" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: one-way calls refused: $out"; fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
