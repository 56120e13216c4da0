#!/usr/bin/env bash
# `helios hash` prints byte-for-byte what Debian's b3sum prints: edge sizes around BLAKE3's 1 KiB
# chunks and 64 KiB SIMD batches, random files, awkward names, standard input.
set -euo pipefail
helios=$1
command -v b3sum >/dev/null || { echo "b3sum is not installed (scripts/install-deps.sh installs it)"; exit 1; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cd "$t"
files=()
for n in 0 1 63 64 65 1023 1024 1025 2047 2048 2049 65535 65536 65537 1048575 1048576 1048577 3000001; do
  head -c "$n" /dev/urandom > "size-$n"; files+=("size-$n")
done
for i in 1 2 3 4 5; do head -c $((RANDOM * 37 + i)) /dev/urandom > "rand-$i"; files+=("rand-$i"); done
printf 'x' > 'with space'; printf 'y' > 'back\slash'; printf 'z' > $'new\nline'
files+=('with space' 'back\slash' $'new\nline')
fail=0
diff <(b3sum "${files[@]}") <("$helios" hash "${files[@]}") || { echo "FAIL: files differ from b3sum"; fail=1; }
diff <(b3sum < size-1048577) <("$helios" hash < size-1048577) || { echo "FAIL: stdin (no args)"; fail=1; }
diff <(b3sum - < rand-1) <("$helios" hash - < rand-1) || { echo "FAIL: stdin (-)"; fail=1; }
diff <(cat size-65537 | b3sum) <(cat size-65537 | "$helios" hash) || { echo "FAIL: pipe"; fail=1; }
# a missing file: error on stderr, the others still hashed, non-zero exit
set +e
out=$("$helios" hash size-1 missing-file size-0 2>err); rc=$?
set -e
[ "$rc" = 5 ] || { echo "FAIL: missing file exit $rc"; fail=1; }
[ "$(echo "$out" | wc -l)" = 2 ] || { echo "FAIL: other files not hashed"; fail=1; }
grep -q "missing-file: No such file or directory" err || { echo "FAIL: message: $(cat err)"; fail=1; }
[ $fail = 0 ] && echo "1 passed, 0 failed" || { echo "0 passed, 1 failed"; exit 1; }
