#!/usr/bin/env bash
# valgrind.sh — the store works under valgrind's memcheck, which refuses the index's 1 TiB map of
# address space (EINVAL, as a ulimit -v gives ENOMEM): the open retries with smaller maps. Then a
# store's first uses (init, put, get, a snapshot and its restore, verify) run with no memcheck
# error. Skipped (77) where valgrind is missing.
helios=$1
command -v valgrind >/dev/null || { echo "valgrind not installed: skipped"; exit 77; }
. "$(dirname "$0")/testlib.sh" valgrind
export HELIOS_STORE=$t/store
vg() { HELIOS_LOG=info valgrind -q --error-exitcode=99 --leak-check=no "$helios" "$@"; }

vg init >"$t/init.out" 2>"$t/init.err"; expect "init under memcheck" 0 $?
grep -q "index map: retrying" "$t/init.err" && ok || bad "no smaller map tried: $(cat "$t/init.err")"
head -c 100000 /dev/urandom >"$t/blob"
id=$(vg put "$t/blob" 2>"$t/put.err" | cut -c1-64)
expect "put under memcheck" "$(b3sum --no-names "$t/blob")" "$id"
vg get "$id" 2>"$t/get.err" | cmp -s - "$t/blob" && ok || bad "get under memcheck: $(cat "$t/get.err")"
mkdir -p "$t/w/d"; printf 'one\n' >"$t/w/a"; cp "$t/blob" "$t/w/d/b"
root=$(vg snapshot -q "$t/w" 2>"$t/snap.err"); expect "snapshot under memcheck" 0 $?
vg restore "$root" "$t/back" 2>"$t/restore.err"; expect "restore under memcheck" 0 $?
diff -r "$t/w" "$t/back" >/dev/null && ok || bad "restored tree differs"
vg verify >/dev/null 2>"$t/verify.err"; expect "verify under memcheck" 0 $?
finish
