#!/usr/bin/env bash
# push_pull.sh — `helios push` and `helios pull` against a running `helios serve` with tokens:
# the first push uploads every object, a push after a small edit uploads only what changed
# (counted), the ref follows by compare-and-swap, a pull into an empty store fetches everything and
# restores byte-identically, a second pull fetches nothing; a missing or read-only token fails
# clearly; a server that sends wrong bytes is refused.
# usage: push_pull.sh HELIOS_BINARY
set -uo pipefail
helios=$(realpath "$1")
. "$(dirname "$0")/testlib.sh" push
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

printf 'wwwwwwwwwwwwwwwwwwww write\nrrrrrrrrrrrrrrrrrrrr read\n' >"$t/tokens"; chmod 600 "$t/tokens"
start_server "$t/server" --token-file "$t/tokens"

mkdir -p "$t/w/src/sub" "$t/w/empty"
for i in $(seq 40); do printf 'file %d\n' "$i" >"$t/w/src/f$i.txt"; done
head -c 3000000 /dev/urandom >"$t/w/big.bin"   # stored as chunks locally
head -c 6000000 /dev/urandom >"$t/w/huge.bin"  # sent on its own (over the batch size)
printf 'same\n' >"$t/w/a"; printf 'same\n' >"$t/w/src/sub/a"  # one content, two places
ln -s src/f1.txt "$t/w/link"

export HELIOS_TOKEN=wwwwwwwwwwwwwwwwwwww
out=$("$helios" --store "$t/local" --json push "$t/w" --remote "$url" --ref agents/1/main) && ok || bad "first push failed"
total=$(field "$out" objects); up=$(field "$out" uploaded); id1=$(field "$out" id)
[ "$up" = "$total" ] && [ "$total" -ge 45 ] && ok || bad "first push uploaded $up of $total"

printf 'edited\n' >"$t/w/src/f7.txt"
out=$("$helios" --store "$t/local" --json push "$t/w" --remote "$url" --ref agents/1/main) && ok || bad "second push failed"
up=$(field "$out" uploaded); id2=$(field "$out" id)
# the edited file, its directory's tree and the root tree
[ "$up" = 3 ] && ok || bad "second push uploaded $up objects, wanted 3"
ref=$(curl -s -H "Authorization: Bearer $HELIOS_TOKEN" "$url/v1/refs/agents/1/main")
[ "$(field "$ref" id)" = "$id2" ] && ok || bad "the ref does not point at the second push: $ref"
out=$("$helios" --store "$t/local" --json push "$t/w" --remote "$url" --ref agents/1/main) && ok || bad "third push failed"
[ "$(field "$out" uploaded)" = 0 ] && ok || bad "an unchanged push uploaded $(field "$out" uploaded)"

# pull with a read token into an empty store, by ref and by id
export HELIOS_TOKEN=rrrrrrrrrrrrrrrrrrrr
out=$("$helios" --store "$t/other" --json pull agents/1/main --remote "$url" "$t/copy") && ok || bad "pull failed"
[ "$(field "$out" fetched)" -ge 45 ] && ok || bad "pull fetched $(field "$out" fetched)"
diff -r --no-dereference "$t/w" "$t/copy" >/dev/null && ok || bad "pulled tree differs"
out=$("$helios" --store "$t/other" --json pull "$id1" --remote "$url" "$t/copy1") && ok || bad "pull by id failed"
# its own: the old f7.txt, the old src tree, the old root tree
[ "$(field "$out" fetched)" = 3 ] && ok || bad "pulling the older snapshot fetched $(field "$out" fetched), wanted 3"
out=$("$helios" --store "$t/other" --json pull agents/1/main --remote "$url" "$t/copy2") && ok || bad "second pull failed"
[ "$(field "$out" fetched)" = 0 ] && ok || bad "a second pull fetched $(field "$out" fetched)"

# failures say why
"$helios" --store "$t/local" push "$t/w" --remote "$url" --ref agents/2/main 2>"$t/err"; rc=$?
[ $rc = 5 ] && grep -q "403" "$t/err" && ok || bad "push with a read token: exit $rc: $(cat "$t/err")"
HELIOS_TOKEN= "$helios" --store "$t/other" pull agents/1/main --remote "$url" "$t/copy3" 2>"$t/err"; rc=$?
[ $rc != 0 ] && grep -q "401" "$t/err" && ok || bad "pull without a token: exit $rc: $(cat "$t/err")"
"$helios" --store "$t/other" pull agents/9/none --remote "$url" "$t/copy4" 2>"$t/err"; rc=$?
[ $rc = 1 ] && ok || bad "pull of a missing ref: exit $rc: $(cat "$t/err")"
"$helios" --store "$t/other" pull agents/1/main --remote "ftp://x" "$t/copy5" 2>"$t/err"; rc=$?
[ $rc = 2 ] && ok || bad "pull from a non-http remote: exit $rc"
"$helios" --store "$t/other" pull agents/1/main --remote "http://127.0.0.1:1" "$t/copy6" 2>"$t/err"; rc=$?
[ $rc = 5 ] && grep -qi "connect" "$t/err" && ok || bad "pull from nowhere: exit $rc: $(cat "$t/err")"

# a server that answers with bytes that do not hash to the id asked for
python3 - "$t/liar.port" <<'EOF' &
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "4"); self.end_headers(); self.wfile.write(b"fake")
    def log_message(self, *a): pass
s = socketserver.TCPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.timeout = 60
for _ in range(8):  # the client's token check, then the objects it asks for
    s.handle_request()
EOF
liar=$!
wait_for 30 test -s "$t/liar.port"
"$helios" --store "$t/fresh" pull "$id2" --remote "http://127.0.0.1:$(cat "$t/liar.port")" "$t/copy7" 2>"$t/err"; rc=$?
[ $rc != 0 ] && grep -q "do not hash" "$t/err" && ok || bad "a lying server: exit $rc: $(cat "$t/err")"
kill "$liar" 2>/dev/null; wait "$liar" 2>/dev/null

finish
