#!/usr/bin/env bash
# A store on a full filesystem (a small tmpfs in a private mount namespace): `serve` answers 507
# to writes and keeps answering reads; freeing space lets writes resume without a restart; SIGTERM
# exits 0 and says what could not be indexed; the store opens again on the full disk (serve
# answers reads, writes 507); verify checks every acknowledged object; with room again, writes
# resume and the index takes everything.
# Needs root (mount); without it the test is skipped (exit 77), never passed.
set -uo pipefail
helios=$(realpath "$1")
if [ -z "${IN_NS:-}" ]; then
  if ! unshare -m --propagation private true 2>/dev/null; then
    echo "no mount namespace here (not root?): skipped"; exit 77
  fi
  exec env IN_NS=1 unshare -m --propagation private "$0" "$@"
fi
t=$(mktemp -d); mnt=$t/fs; mkdir -p "$mnt"
mount -t tmpfs -o size=6m tmpfs "$mnt" || { echo "tmpfs mount refused: skipped"; exit 77; }
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; umount "$mnt"; rm -rf "$t"' EXIT
store=$mnt/store
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

start() { # serve in the background on a free port; sets pid and url
  : >"$t/out" # emptied here: the child's redirection may come after the wait below has read the last server's line
  "$helios" --store "$store" serve --listen 127.0.0.1:0 > "$t/out" 2> "$t/err" & pid=$!
  local i; for i in $(seq 1 600); do grep -q serving "$t/out" 2>/dev/null && break; sleep 0.05; done
  url=http://$(sed -n 's|.*serving http://||p' "$t/out")
  [ "$url" != http:// ] && ok || bad "serve did not start: $(cat "$t/err")"
}
stop() { kill -TERM "$pid"; wait "$pid"; rc=$?; pid=; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

fill() { # writes 30 kB blobs until the disk refuses $1 of them; the acknowledged ids go to ids
  local i st n507=0
  for i in $(seq 1 400); do
    head -c 30000 /dev/urandom > "$t/blob"
    st=$(curl -s -o "$t/resp" -w '%{http_code}' -X POST --data-binary @"$t/blob" "$url/v1/blobs")
    if [ "$st" = 201 ]; then echo "$(sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$t/resp")" >> "$t/ids"
    elif [ "$st" = 507 ]; then n507=$((n507 + 1)); [ $n507 -ge "$1" ] && return 0
    else bad "PUT answered $st: $(cat "$t/resp")"; return 1; fi
  done
  return 1
}
head -c 1500000 /dev/zero > "$mnt/filler" # room to free later, with the server running
start
: > "$t/ids"
fill 20; filled=$?
acked=$(wc -l < "$t/ids")
[ "$filled" = 0 ] && [ "$acked" -gt 50 ] && ok || bad "disk never filled ($acked stored)"
[ "$(code "$url/v1/blobs/$(head -1 "$t/ids")")" = 200 ] && ok || bad "read on a full disk"
# space freed while it runs: writes resume without a restart
rm -f "$mnt/filler"
before=$(wc -l < "$t/ids")
fill 5
resumed=$(( $(wc -l < "$t/ids") - before ))
[ "$resumed" -gt 10 ] && ok || bad "only $resumed writes after space was freed (no restart)"
acked=$(wc -l < "$t/ids")
missing=0; while read -r id; do [ "$(code "$url/v1/blobs/$id")" = 200 ] || missing=$((missing + 1)); done < "$t/ids"
[ "$missing" = 0 ] && ok || bad "$missing of $acked acknowledged objects unreadable on the full disk"
stop
[ "$rc" = 0 ] && ok || bad "SIGTERM on a full disk exited $rc: $(cat "$t/err")"
grep -q "stopped on SIGTERM" "$t/err" && ok || bad "no stop line: $(cat "$t/err")"

# the store opens on the full disk: reads served, writes refused
start
missing=0; while read -r id; do [ "$(code "$url/v1/blobs/$id")" = 200 ] || missing=$((missing + 1)); done < "$t/ids"
[ "$missing" = 0 ] && ok || bad "$missing of $acked acknowledged objects unreadable after reopen"
head -c 300000 /dev/urandom > "$t/blob"
[ "$(code -X POST --data-binary @"$t/blob" "$url/v1/blobs")" = 507 ] && ok || bad "write on a full disk not 507"
stop
[ "$rc" = 0 ] && ok || bad "second stop exited $rc: $(cat "$t/err")"

out=$("$helios" --store "$store" verify 2>&1); vrc=$?
[ "$vrc" = 0 ] && grep -q "verified $acked objects" <<<"$out" && ok || bad "verify on a full disk: exit $vrc, '$out' ($acked acknowledged)"

# room again: writes resume, and everything gets indexed
mount -o remount,size=64m "$mnt"
start
[ "$(code -X POST --data-binary @"$t/blob" "$url/v1/blobs")" = 201 ] && ok || bad "write with room again"
stop
unindexed=$("$helios" --store "$store" stats --prometheus | sed -n 's/^helios_unindexed_objects //p')
[ "$unindexed" = 0 ] && ok || bad "$unindexed objects still unindexed with room"
out=$("$helios" --store "$store" verify 2>&1)
grep -q "verified $((acked + 1)) objects" <<<"$out" && ok || bad "verify with room: '$out'"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
