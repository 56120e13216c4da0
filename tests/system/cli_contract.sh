#!/usr/bin/env bash
# The CLI contract of docs/DESIGN.md: output formats, exit codes (0 ok, 1 not found, 2 usage,
# 3 corruption, 5 other), one-line errors on stderr, and bad input that changes nothing.
set -uo pipefail
helios=$(realpath "$1")
t=$(mktemp -d); trap '[ -n "$lockpid" ] && { touch "$t/unlock"; wait $lockpid; }; rm -rf "$t"' EXIT
lockpid=
cd "$t"
export HELIOS_STORE=$t/store
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
# expect CODE CMD... : runs CMD, checks the exit code; stdout in $out, stderr in $err
expect() {
  local want=$1; shift
  out=$("$@" 2>"$t/err"); local rc=$?; err=$(cat "$t/err")
  [ "$rc" = "$want" ] && ok || bad "'$*' exited $rc, wanted $want (stderr: $err)"
}
# one line on stderr that mentions $1
says() { [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && grep -q -- "$1" <<<"$err" && ok || bad "stderr '$err' should be one line with '$1'"; }
objects() { "$helios" --json stats | sed 's/.*"objects": \([0-9]*\).*/\1/'; }
flip_byte() { # file offset: inverts one byte in place
  local b; b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

head -c 100000 /dev/urandom > a.bin; seq 1 50000 > b.txt; printf '' > empty
ida=$(b3sum --no-names a.bin); idb=$(b3sum --no-names b.txt)
zero=0000000000000000000000000000000000000000000000000000000000000000

# --- read commands on a missing store say so
expect 1 "$helios" get "$ida"; says "no store"
expect 1 "$helios" stats; says "no store"
expect 1 "$helios" verify; says "no store"
[ ! -e store ] && ok || bad "a read command created the store"

# --- put / get / has
expect 0 "$helios" put a.bin b.txt empty
[ "$out" = "$(b3sum a.bin b.txt empty)" ] && ok || bad "put output is not b3sum's: $out"
expect 0 "$helios" get "$ida" -o got.bin; cmp -s <("$helios" get "$ida") a.bin && ok || bad "get bytes differ"
expect 0 "$helios" get "$idb" -o out.txt; cmp -s out.txt b.txt && ok || bad "get -o bytes differ"
expect 0 "$helios" put - < b.txt; [ "$out" = "$idb  -" ] && ok || bad "put - printed '$out'"
expect 0 "$helios" has "$ida" "$idb"; [ -z "$out" ] && ok || bad "has printed '$out'"
expect 1 "$helios" has "$ida" "$zero"; [ "$out" = "$zero" ] && ok || bad "has should print the missing id"
expect 1 "$helios" get "$zero"; says "not found"
[ "$(objects)" = 3 ] && ok || bad "expected 3 objects"
expect 0 "$helios" --json put a.bin; grep -q '"created": false' <<<"$out" && ok || bad "re-put not reported as existing"

# --- usage errors: exit 2, nothing changes
for id in abc "${ida^^}" "${ida:0:63}" "${ida}0" "${ida:0:63}g" "../../etc/passwd"; do
  expect 2 "$helios" get "$id"; says "not an object id"
  expect 2 "$helios" has "$ida" "$id"
done
expect 2 "$helios"; expect 2 "$helios" frobnicate; says "unknown command"
expect 2 "$helios" put; expect 2 "$helios" put --sync sometimes a.bin; expect 2 "$helios" get
expect 2 "$helios" --store; expect 2 "$helios" put --bogus a.bin; says "unknown option"
expect 2 "$helios" verify --threads lots
expect 0 "$helios" --help; grep -q "exit codes" <<<"$out" && ok || bad "--help"

# --- unreadable inputs: exit 5, one line naming the file, nothing stored
n=$(objects)
head -c 5000 /dev/urandom > fresh.bin
expect 5 "$helios" put fresh.bin missing.bin; says "missing.bin: No such file or directory"
expect 5 "$helios" put fresh.bin .; says "Is a directory"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  chmod 000 fresh.bin; chmod 777 "$t"
  out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$helios" --store "$t/other" put fresh.bin 2>&1); rc=$?
  [ $rc = 5 ] && grep -q "Permission denied" <<<"$out" && ok || bad "unreadable file: exit $rc: $out"
  chmod 644 fresh.bin
fi
[ "$(objects)" = "$n" ] && ok || bad "a failed put stored something"

# --- a store locked by another writer: writes refused clearly, reads still work
# (the holder says when it has the lock and keeps it until told: a fixed sleep raced a loaded machine)
flock "$t/store/LOCK" sh -c 'touch "$1/locked"; while [ ! -e "$1/unlock" ]; do sleep 0.05; done' sh "$t" & lockpid=$!
for _ in $(seq 600); do [ -e "$t/locked" ] && break; sleep 0.05; done
expect 5 "$helios" put fresh.bin; says "open read-write by another process"
expect 0 "$helios" get "$idb"
touch "$t/unlock"; wait $lockpid; lockpid=

# --- a directory that is not a store is never taken over
mkdir notastore; echo mine > notastore/file
expect 5 "$helios" --store notastore put a.bin
[ "$(ls notastore)" = file ] && ok || bad "foreign directory was modified"

# --- corruption: exit 3, verify names the object
seg=store/segments/00000001.seg
off=$("$helios" --json stats >/dev/null; echo 200)   # inside the first record's payload (a.bin)
flip_byte "$seg" "$off"
expect 3 "$helios" get "$ida"; says "$ida: stored data is corrupt"
cmp -s <("$helios" get "$ida" 2>/dev/null) /dev/null && ok || bad "corrupt get wrote bytes to stdout"
expect 3 "$helios" verify; grep -q "^$ida  corrupt$" <<<"$out" && ok || bad "verify did not list $ida: $out"
expect 0 "$helios" get "$idb"
expect 0 "$helios" put a.bin                      # putting the content again repairs it
expect 0 "$helios" verify; expect 0 "$helios" get "$ida" -o got.bin

# --- a truncated segment tail: the cut object reads as corrupt, the store keeps working
head -c 30000 /dev/urandom > last.bin; idl=$(b3sum --no-names last.bin)
expect 0 "$helios" put last.bin
size=$(stat -c %s "$seg"); truncate -s $((size - 100)) "$seg"
expect 3 "$helios" get "$idl"
expect 3 "$helios" verify; grep -q "$idl" <<<"$out" && ok || bad "verify missed the truncated object"
expect 0 "$helios" get "$idb"
expect 0 "$helios" put fresh.bin
expect 0 "$helios" get "$(b3sum --no-names fresh.bin)" -o got.bin

# --- progress bar: on a terminal only (script(1) gives the command a pty)
for i in $(seq 1 70); do head -c 20000 /dev/urandom > "p$i.bin"; done
HELIOS_PROGRESS_AFTER_MS=0 "$helios" put p*.bin >/dev/null 2>err.txt
grep -q 'put \[' err.txt && bad "progress bar drawn when stderr is not a terminal" || ok
if command -v script >/dev/null; then
  out=$(HELIOS_PROGRESS_AFTER_MS=0 script -qec "'$helios' --store '$HELIOS_STORE' put $t/p*.bin" /dev/null)
  grep -q 'put \[' <<<"$out" && ok || bad "no progress bar on a terminal: $out"
  out=$(HELIOS_PROGRESS_AFTER_MS=0 script -qec "'$helios' -q --store '$HELIOS_STORE' put $t/p*.bin" /dev/null)
  grep -q 'put \[' <<<"$out" && bad "progress bar drawn with -q" || ok
fi

# --- stats
expect 0 "$helios" stats; grep -q "^objects" <<<"$out" && ok || bad "stats output"
expect 0 "$helios" --json stats; grep -q '"logical_bytes"' <<<"$out" && ok || bad "stats --json"
python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["health"]["score"] == 100 and "l1" in d and "admission" in d' <<<"$out" \
  && ok || bad "stats --json is not JSON with health, l1, admission: $out"
"$helios" stats | grep -q "^health *100 (ok)" && ok || bad "stats shows no health line"
# the Prometheus exposition parses with the reference parser, histograms are cumulative
expect 0 "$helios" stats --prometheus
/usr/bin/python3 - "$out" "$(objects)" <<'PY' && ok || bad "stats --prometheus is not valid Prometheus text"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(sys.argv[1] + "\n")}
for need in ("helios_objects", "helios_ops", "helios_op_duration_seconds", "helios_health_score",
             "helios_l1_hits", "helios_inflight_limit"):
    assert need in fams, need
h = fams["helios_op_duration_seconds"]
assert h.type == "histogram"
last = {}
for s in h.samples:
    if s.name.endswith("_bucket"):
        key = (s.labels["op"], s.labels["at"])
        assert s.value >= last.get(key, 0), s
        last[key] = s.value
assert fams["helios_objects"].samples[0].value == int(sys.argv[2]), sys.argv[2]
PY
expect 2 "$helios" stats --bogus; says "unexpected argument"

# --- refs: compare-and-swap, exit 4 when it loses, names validated
expect 1 "$helios" ref get agents/1/main; says "not found"
expect 0 "$helios" ref set agents/1/main "$ida" --create
expect 4 "$helios" ref set agents/1/main "$idb" --create; says "already exists"
expect 4 "$helios" ref set agents/1/main "$idb" --expect "$idb"; says "expected"
expect 0 "$helios" ref set agents/1/main "$idb" --expect "$ida"
expect 0 "$helios" ref get agents/1/main; [ "$out" = "$idb  agents/1/main" ] && ok || bad "ref get printed '$out'"
expect 5 "$helios" ref set agents/2/main "$zero"; says "not stored"
expect 2 "$helios" ref set ../etc "$ida"; says "not a ref name"
expect 2 "$helios" ref set agents/3 NOTANID; says "not an id"
expect 0 "$helios" ref set other "$ida"
expect 0 "$helios" ref list agents/; [ "$out" = "$idb  agents/1/main" ] && ok || bad "ref list printed '$out'"
expect 0 "$helios" --json ref list; grep -q '"name": "other"' <<<"$out" && ok || bad "ref list --json: $out"
expect 4 "$helios" ref delete other --expect "$idb"
expect 0 "$helios" ref delete other --expect "$ida"
expect 1 "$helios" ref delete other
expect 2 "$helios" ref frob; says "unknown subcommand"

# --- serve: its own help, and bad options refused before anything starts
expect 0 "$helios" serve --help; grep -q -- "--token-file" <<<"$out" && ok || bad "serve --help lacks --token-file"
expect 2 "$helios" serve --listen nowhere; says "listen"
expect 2 "$helios" serve --listen 0.0.0.0:0; says "token-file"
expect 2 "$helios" serve --threads 0; says "bad value"
expect 2 "$helios" serve --max-body 12Q; says "bad value"
expect 2 "$helios" serve --gc-every soon; says "bad value"
expect 2 "$helios" serve --index-memory maybe; says "bad value"
expect 2 "$helios" serve --gc-repack 23 --gc-every 1h; says "bad value"
expect 2 "$helios" serve --gc-repack 19; says "needs --gc-every"
expect 2 "$helios" serve --frob 1; says "unknown option"

# --- a directory prepared with only helios.conf becomes a store on first use (the README's
# deployment); one holding anything else is refused with a message that says why
mkdir cfg1 cfg2 cfg3; printf '[store]\nsync = always   # comments after a value: #\nl1-bytes = 64M ; or ;\nindex-memory = off\n' |
  tee cfg1/helios.conf cfg2/helios.conf > /dev/null
expect 0 "$helios" --store cfg1 init; [ -e cfg1/HELIOS ] && [ -e cfg1/helios.conf ] && ok || bad "init beside helios.conf"
expect 0 "$helios" --store cfg2 put b.txt; [ "$out" = "$idb  b.txt" ] && ok || bad "put beside helios.conf: $out"
touch cfg3/notes; expect 5 "$helios" --store cfg3 put b.txt; says "not a helios store, and not empty"
[ "$(ls cfg3)" = notes ] && ok || bad "a refused directory was changed"

# --- put of a file over 1 MiB stores content-defined chunks: a one-byte insert in the middle of
# 8 MiB stores well under 1 MiB more
stored() { "$helios" --store big --json stats | sed 's/.*"stored_bytes": \([0-9]*\).*/\1/'; }
head -c 8388608 /dev/urandom > big1; { head -c 4194304 big1; printf x; tail -c 4194304 big1; } > big2
expect 0 "$helios" --store big put big1; s1=$(stored)
expect 0 "$helios" --store big put big2 b.txt; s2=$(stored)
[ $((s2 - s1)) -lt 1048576 ] && ok || bad "one-byte insert into 8 MiB stored $((s2 - s1)) bytes"
cmp -s <("$helios" --store big get "$(b3sum --no-names big2)") big2 && ok || bad "chunked put reads back"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
