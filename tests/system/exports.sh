#!/usr/bin/env bash
# libhelios.so exports exactly the API of include/helios.h: every dynamic symbol it defines is an
# hl_* name declared there, and every function declared there is exported (the library is built
# with hidden visibility; tests and the CLI link the static library).
set -uo pipefail
lib=$1 header=$2
passed=0 failed=0
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ && $3 !~ /^_/ {print $3}' | sort -u)
declared=$(grep -oE '\bhl_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u)
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
if [ -z "$extra" ]; then passed=$((passed + 1)); else
  echo "FAIL: exported but not in helios.h:"; echo "$extra" | head -20; failed=$((failed + 1)); fi
if [ -z "$missing" ]; then passed=$((passed + 1)); else
  echo "FAIL: declared in helios.h but not exported:"; echo "$missing"; failed=$((failed + 1)); fi
echo "$(echo "$exported" | wc -l) symbols exported"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
