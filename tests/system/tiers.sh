#!/usr/bin/env bash
# tiers.sh — helios nodes on one S3-compatible bucket, end to end through the CLI and `helios
# serve`: a config file (and its errors, named by file and line), two CLI nodes sharing objects
# and refs (compare-and-swap across nodes: exit 4 for the loser), two servers sharing the bucket
# over HTTP (blobs, refs with If-Match / If-None-Match, 412 to the stale writer), the bucket
# stopped mid-run (cached reads still 200, writes 503 with a JSON body, reads of uncached objects
# 503, never 404) and restarted (writes resume). The bucket is s3rver from npm (tests/s3).
# usage: tiers.sh HELIOS_BINARY
set -uo pipefail
helios=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/testlib.sh" tiers
s3pid= pida= pidb=
stop_all() {
  for p in $pida $pidb $s3pid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  cleanup
}
trap stop_all EXIT

# start_s3 [PORT]: the S3 test server on the bucket directory; sets $s3pid and $s3port
start_s3() {
  start_bg s3 listening node "$here/../s3/server.js" "$t/bucket" "${1:-0}"
  s3pid=$bg_pid
  s3port=$(awk '/listening/ {print $2}' "$t/s3.out")
  [ -n "$s3port" ] || { echo "S3 test server did not start: $(cat "$t/s3.err")"; echo "0 passed, 1 failed"; exit 1; }
}
# serve_node NAME: `helios serve` for node NAME on a free port; sets $spid and $surl
serve_node() {
  start_bg "$1" serving "$helios" --store "$t/$1" --config "$t/helios.conf" serve
  spid=$bg_pid
  surl=http://$(sed -n 's|.*http://\([^ ]*\).*|\1|p' "$t/$1.out")
  [ "$surl" != http:// ] || { echo "node $1 did not start: $(cat "$t/$1.err")"; echo "0 passed, 1 failed"; exit 1; }
}
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# flip FILE OFFSET: inverts bits of one byte
flip() { python3 -c 'import sys; f = open(sys.argv[1], "r+b"); o = int(sys.argv[2]); f.seek(o); b = f.read(1); f.seek(o); f.write(bytes([b[0] ^ 0x55]))' "$1" "$2"; }

start_s3
cat >"$t/helios.conf" <<EOF
# two nodes, one bucket
[tier]
backend = s3
l2-bytes = 32M
remote-timeout = 5s
remote-retries = 1
[s3]
endpoint = http://127.0.0.1:$s3port
bucket = helios
prefix = fleet
access-key = helios-test
secret-key = helios-secret   ; a comment after the value
[serve]
listen = 127.0.0.1:0
EOF
chmod 600 "$t/helios.conf"

# config errors: file and line named, exit 2, nothing opened
printf '[tier]\nbackend = s3\nl2-byte = 1M\n' >"$t/bad.conf"
"$helios" --store "$t/x" --config "$t/bad.conf" stats 2>"$t/err"; expect "unknown key exit" 2 $?
grep -q "bad.conf:3: unknown key 'l2-byte' in \[tier\]" "$t/err" && ok || bad "unknown key message: $(cat "$t/err")"
printf '[tier]\nbackend = ftp\n' >"$t/bad.conf"
"$helios" --store "$t/x" --config "$t/bad.conf" stats 2>"$t/err"; expect "bad backend exit" 2 $?
grep -q "bad.conf:2: bad value 'ftp' for backend" "$t/err" && ok || bad "bad value message: $(cat "$t/err")"
printf '[tierz]\nx = 1\n' >"$t/bad.conf"
"$helios" --store "$t/x" --config "$t/bad.conf" stats 2>"$t/err"; expect "unknown section exit" 2 $?
printf 'just words\n' >"$t/bad.conf"
"$helios" --store "$t/x" --config "$t/bad.conf" stats 2>"$t/err"; expect "malformed line exit" 2 $?
grep -q "bad.conf:1: not a \[section\]" "$t/err" && ok || bad "malformed line message: $(cat "$t/err")"
"$helios" --store "$t/x" --config "$t/missing.conf" stats 2>/dev/null; expect "missing config exit" 2 $?
"$helios" --store "$t/x" serve --s3-secret-key s 2>"$t/err"; expect "secret key flag exit" 2 $?
grep -q "AWS_SECRET_ACCESS_KEY" "$t/err" && ok || bad "secret key flag message: $(cat "$t/err")"
[ ! -e "$t/x" ] && ok || bad "a bad config created the store"
sed 's/helios-secret/wrong-secret/' "$t/helios.conf" >"$t/wrong.conf"
echo hi >"$t/f0"
"$helios" --store "$t/x" --config "$t/wrong.conf" put "$t/f0" 2>"$t/err" >/dev/null; expect "wrong secret exit" 5 $?
grep -q "Permission denied" "$t/err" && ok || bad "wrong secret message: $(cat "$t/err")"

# two CLI nodes: what one stores the other reads; refs are the bucket's
for i in 1 2 3; do head -c $((i * 5000)) /dev/urandom >"$t/f$i"; done
"$helios" --store "$t/cli-a" --config "$t/helios.conf" put "$t/f1" "$t/f2" "$t/f3" >"$t/ids" || bad "put on node a"
id1=$(sed -n 1p "$t/ids" | cut -c1-64); id2=$(sed -n 2p "$t/ids" | cut -c1-64)
"$helios" --store "$t/cli-b" --config "$t/helios.conf" get "$id1" >"$t/got1" && cmp -s "$t/f1" "$t/got1" && ok || bad "node b reads node a's object"
"$helios" --store "$t/cli-b" --config "$t/helios.conf" has $(cut -c1-64 "$t/ids") && ok || bad "node b has node a's objects"
"$helios" --store "$t/cli-a" --config "$t/helios.conf" ref set agents/7/main "$id1" --create && ok || bad "ref create on a"
[ "$("$helios" --store "$t/cli-b" --config "$t/helios.conf" ref get agents/7/main | cut -c1-64)" = "$id1" ] && ok || bad "node b sees node a's ref"
"$helios" --store "$t/cli-b" --config "$t/helios.conf" ref set agents/7/main "$id2" --expect "$id1" && ok || bad "CAS on b"
"$helios" --store "$t/cli-a" --config "$t/helios.conf" ref set agents/7/main "$id2" --expect "$id1" 2>/dev/null; expect "stale CAS on a" 4 $?
"$helios" --store "$t/cli-a" --config "$t/helios.conf" ref list agents/ | grep -q "$id2" && ok || bad "ref list on a"
"$helios" --store "$t/cli-a" --config "$t/helios.conf" gc >/dev/null 2>"$t/err"; expect "gc on a shared bucket" 0 $?
"$helios" --store "$t/cli-b" --config "$t/helios.conf" get "$id2" >/dev/null && ok || bad "a ref's object reads after gc"

# two servers on the bucket
serve_node srv-a; pida=$spid urla=$surl
serve_node srv-b; pidb=$spid urlb=$surl
head -c 20000 /dev/urandom >"$t/blob"; bid=$(b3sum --no-names "$t/blob")
expect "PUT on server a" 201 "$(status -X PUT --data-binary @"$t/blob" "$urla/v1/blobs/$bid")"
curl -s -o "$t/blob.b" "$urlb/v1/blobs/$bid"; cmp -s "$t/blob" "$t/blob.b" && ok || bad "server b serves server a's blob"
expect "PUT again on server b: present" 200 "$(status -X PUT --data-binary @"$t/blob" "$urlb/v1/blobs/$bid")"
expect "ref create on a" 201 "$(status -X PUT -H 'If-None-Match: *' -d "{\"id\":\"$bid\"}" "$urla/v1/refs/shared")"
expect "ref create again on b" 412 "$(status -X PUT -H 'If-None-Match: *' -d "{\"id\":\"$bid\"}" "$urlb/v1/refs/shared")"
expect "ref move on b" 200 "$(status -X PUT -H "If-Match: \"$bid\"" -d "{\"id\":\"$id1\"}" "$urlb/v1/refs/shared")"
expect "stale ref move on a" 412 "$(status -X PUT -H "If-Match: \"$bid\"" -d "{\"id\":\"$id2\"}" "$urla/v1/refs/shared")"
curl -s "$urla/v1/refs/shared" | grep -q "$id1" && ok || bad "server a reads the ref server b moved"

# a node whose durable tier is server a (L1 -> L2 -> helios -> bucket)
printf '[tier]\nbackend = helios\nremote-url = %s\nremote-timeout = 5s\nremote-retries = 1\n' "$urla" >"$t/chain.conf"
head -c 7000 /dev/urandom >"$t/f4"
for i in 5 6 7; do head -c $((i * 1000)) /dev/urandom >"$t/f$i"; done
id4=$("$helios" --store "$t/cli-c" --config "$t/chain.conf" put "$t/f4" "$t/f5" "$t/f6" "$t/f7" | head -1 | cut -c1-64)
[ -n "$id4" ] && ok || bad "put through a helios backend"
curl -s -o "$t/got4" "$urlb/v1/blobs/$id4"; cmp -s "$t/f4" "$t/got4" && ok || bad "server b serves what went through server a"
"$helios" --store "$t/cli-d" --config "$t/chain.conf" get "$bid" >"$t/got5" && cmp -s "$t/blob" "$t/got5" && ok || bad "get through a helios backend"
"$helios" --store "$t/cli-c" --config "$t/chain.conf" ref set chain/main "$id4" --create && ok || bad "ref create through a helios backend"
"$helios" --store "$t/cli-c" --config "$t/chain.conf" ref set chain/main "$id4" --create 2>/dev/null; expect "ref create again through a helios backend" 4 $?
[ "$("$helios" --store "$t/cli-a" --config "$t/helios.conf" ref get chain/main | cut -c1-64)" = "$id4" ] && ok || bad "the bucket holds the ref set through server a"
"$helios" --store "$t/cli-c" --config "$t/chain.conf" ref list chain/ | grep -q "$id4" && ok || bad "ref list through a helios backend"
"$helios" --store "$t/cli-c" --config "$t/chain.conf" ref delete chain/main --expect "$id4" && ok || bad "ref delete through a helios backend"
"$helios" --store "$t/cli-e" --config "$t/chain.conf" get 0000000000000000000000000000000000000000000000000000000000000000 >/dev/null 2>&1; expect "a missing object through a helios backend" 1 $?

# a helios backend that answers with bytes that do not hash to the id: refused, exit 3
python3 - "$t/liar.port" <<'EOF' &
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"refs": [], "truncated": false}' if self.path.startswith("/v1/refs") else b"fake"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = socketserver.TCPServer(("127.0.0.1", 0), H)
s.timeout = 20
open(sys.argv[1], "w").write(str(s.server_address[1]))
for _ in range(2): s.handle_request()
EOF
liar=$!
wait_for 30 test -s "$t/liar.port"
printf '[tier]\nbackend = helios\nremote-url = http://127.0.0.1:%s\n' "$(cat "$t/liar.port")" >"$t/liar.conf"
"$helios" --store "$t/cli-f" --config "$t/liar.conf" get "$id1" >"$t/lie" 2>"$t/err"; expect "a lying helios backend" 3 $?
[ ! -s "$t/lie" ] && ok || bad "bytes from a lying backend were written out"
wait "$liar" 2>/dev/null

# verify --repair on a local store, the copies on server a (which keeps them in the bucket)
head -c 100000 /dev/urandom >"$t/r1"; rid=$(b3sum --no-names "$t/r1")
"$helios" --store "$t/loc" -q put "$t/r1" >/dev/null
expect "the replica on server a" 201 "$(status -X PUT --data-binary @"$t/r1" "$urla/v1/blobs/$rid")"
seg=$(ls "$t/loc/segments/"*.seg | head -1)
flip "$seg" 50000
"$helios" --store "$t/loc" verify >"$t/v.out" 2>/dev/null; expect "verify finds the corruption" 3 $?
"$helios" --store "$t/loc" verify --repair --repair-from "$urla" >"$t/v.out" 2>"$t/v.err"; expect "verify --repair" 0 $?
grep -q "^$rid  repaired from helios" "$t/v.out" && ok || bad "repair report: $(cat "$t/v.out" "$t/v.err")"
"$helios" --store "$t/loc" get "$rid" | cmp -s - "$t/r1" && ok || bad "the repaired object's bytes"
grep -q "$rid corrupt repaired-from=helios" "$t/loc/corruption.log" && ok || bad "corruption log: $(cat "$t/loc/corruption.log")"
head -c 100000 /dev/urandom >"$t/r2"; rid2=$(b3sum --no-names "$t/r2")
"$helios" --store "$t/loc2" -q put "$t/r2" >/dev/null
seg=$(ls "$t/loc2/segments/"*.seg | head -1)
flip "$seg" 50000
"$helios" --store "$t/loc2" verify --repair --repair-from "$urla" >"$t/v.out" 2>/dev/null; expect "verify --repair, no copy anywhere" 3 $?
grep -q "^$rid2  unrepairable" "$t/v.out" && ok || bad "unrepairable report: $(cat "$t/v.out")"
"$helios" --store "$t/loc2" get "$rid2" >/dev/null 2>&1; expect "an unrepairable object is never served" 3 $?

# the bucket stops: cached reads go on, writes and uncached reads are 503 (never 404)
stop_within "$s3pid" 30; s3pid= # with a deadline: a stop that hangs says so and is killed
expect "cached GET with the bucket down" 200 "$(status "$urla/v1/blobs/$bid")"
head -c 3000 /dev/urandom >"$t/blob2"; bid2=$(b3sum --no-names "$t/blob2")
code=$(curl -s -o "$t/put.json" -w '%{http_code}' -X PUT --data-binary @"$t/blob2" "$urla/v1/blobs/$bid2")
expect "PUT with the bucket down" 503 "$code"
grep -q '"unavailable"' "$t/put.json" && ok || bad "503 body: $(cat "$t/put.json")"
expect "uncached GET with the bucket down" 503 "$(status "$urlb/v1/blobs/$id2")"
kill -0 "$pida" && kill -0 "$pidb" && ok || bad "a server died with the bucket"
start_s3 "$(sed -n 's|.*127.0.0.1:\([0-9]*\).*|\1|p' "$t/helios.conf" | head -1)"
code=503
for _ in $(seq 150); do
  code=$(status -X PUT --data-binary @"$t/blob2" "$urla/v1/blobs/$bid2"); [ "$code" = 201 ] && break; sleep 0.2
done
expect "PUT once the bucket is back" 201 "$code"
expect "uncached GET once the bucket is back" 200 "$(status "$urlb/v1/blobs/$id2")"
stop_within "$pida"; expect "server a stops cleanly" 0 $?; stop_within "$pidb"; pida= pidb=
finish
