#!/usr/bin/env bash
# fleet_bench.sh — three `helios serve` nodes on one S3 bucket (the S3 test server of tests/s3 on
# loopback) against one local node, all measured in this run:
#  - density: the seed-1 agent corpus of ../shared/bench/make_corpus.py, agent i pushed through
#    node i mod 3 (`helios push`, each agent with a store of its own), against the same corpus
#    snapshotted into one local store: the bucket's bytes over the local store's (stored bytes,
#    compressed) and over its unique logical bytes (what deduplication alone keeps);
#  - build cache: ccache builds a 40-file project through node A, its local cache wiped, and
#    rebuilds through node B: remote hits on the rebuild;
#  - hot get: GET of 64 objects of 4 KiB (L1 hits) through a bucket node and through the local
#    node with the same load generator (bench/httpload.c), REPS alternating runs: medians, ranges.
# usage: fleet_bench.sh HELIOS HTTPLOAD   (env: FLEET_AGENTS=10, FLEET_SECS=3, FLEET_REPS=3)
set -uo pipefail
helios=$(realpath "$1") load=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
shared=${HELIOS_SHARED:-$here/../../shared}
agents=${FLEET_AGENTS:-10} secs=${FLEET_SECS:-3} reps=${FLEET_REPS:-3}
t=$(mktemp -d "${TMPDIR:-/tmp}/helios-fleetbench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$t"; }
trap cleanup EXIT
[ -f "$shared/bench/make_corpus.py" ] || { echo "fleet bench: $shared/bench/make_corpus.py not found; skipped"; exit 0; }
command -v node >/dev/null || { echo "fleet bench: node (for the S3 test server) not found; skipped"; exit 0; }

node "$here/../tests/s3/server.js" "$t/bucket" 0 >"$t/s3.out" 2>"$t/s3.err" &
pids+=($!)
for _ in $(seq 300); do grep -q listening "$t/s3.out" 2>/dev/null && break; sleep 0.1; done
s3port=$(awk '/listening/ {print $2}' "$t/s3.out")
[ -n "$s3port" ] || { echo "fleet bench: the S3 test server did not start: $(cat "$t/s3.err")"; exit 1; }
cat >"$t/fleet.conf" <<EOF
[tier]
backend = s3
l2-bytes = 256M
[s3]
endpoint = http://127.0.0.1:$s3port
bucket = helios
prefix = bench
access-key = helios-test
secret-key = helios-secret
EOF
chmod 600 "$t/fleet.conf"

# serve NAME [ARGS…]: a node on a free port; sets $url (not in a subshell: its pid must reach
# pids, or the cleanup would leave the node running)
serve() {
  local name=$1; shift
  "$helios" --store "$t/$name" "$@" serve --listen 127.0.0.1:0 --sync batch >"$t/$name.out" 2>"$t/$name.err" &
  pids+=($!)
  for _ in $(seq 300); do grep -q serving "$t/$name.out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's|.*\(http://[^ ]*\).*|\1|p' "$t/$name.out")
}
urls=()
for n in node-a node-b node-c; do serve "$n" --config "$t/fleet.conf"; [ -n "$url" ] && urls+=("$url"); done
serve local; local_url=$url
[ ${#urls[@]} = 3 ] && [ -n "$local_url" ] || { echo "fleet bench: a node did not start"; exit 1; }

# ---- density ----
python3 "$shared/bench/make_corpus.py" --seed 1 --agents "$agents" --out "$t/corpus" >"$t/corpus.log" 2>&1 ||
  { echo "fleet bench: corpus generation failed: $(tail -3 "$t/corpus.log")"; exit 1; }
i=0 t0=$(date +%s.%N)
for u in "$t"/corpus/agent-*; do
  "$helios" --store "$t/agents/$(basename "$u")" push "$u" --remote "${urls[$((i % 3))]}" --ref "units/$(basename "$u")" -q >/dev/null ||
    { echo "fleet bench: push of $u failed"; exit 1; }
  i=$((i + 1))
done
t1=$(date +%s.%N)
for u in "$t"/corpus/agent-*; do
  "$helios" --store "$t/single" snapshot -q --sync batch --ref "units/$(basename "$u")" "$u" >/dev/null ||
    { echo "fleet bench: local snapshot of $u failed"; exit 1; }
done
t2=$(date +%s.%N)
"$helios" --store "$t/probe" --config "$t/fleet.conf" init >/dev/null 2>&1
bucket_json=$(HELIOS_LOG=${FLEET_LOG:-warn} "$helios" --store "$t/probe" --config "$t/fleet.conf" --json stats --backend)
local_json=$("$helios" --store "$t/single" --json stats)

# ---- build cache across nodes ----
mkdir -p "$t/proj"
printf '#ifndef COMMON_H\n#define COMMON_H\nstatic inline unsigned long mix(unsigned long x) { return x * 2654435761u ^ (x >> 7); }\n#endif\n' >"$t/proj/common.h"
for f in $(seq -w 1 40); do
  printf '#include "common.h"\nunsigned long f%s(const char *s) { unsigned long h = 1%s; while (*s) h = mix(h + (unsigned char)*s++); return h; }\n' "$f" "$f" >"$t/proj/u$f.c"
done
build() { # build REMOTE
  rm -rf "$t/cc" && mkdir -p "$t/cc"
  for f in "$t"/proj/u*.c; do
    CCACHE_DIR=$t/cc CCACHE_REMOTE_STORAGE=$1 CCACHE_NOHASHDIR=1 CCACHE_BASEDIR="$t/proj" ccache gcc -O2 -c "$f" -o "${f%.c}.o" || return 1
  done
  CCACHE_DIR=$t/cc ccache --print-stats | awk '$1 == "remote_storage_hit" { print $2 }'
}
hits="n/a"
if command -v ccache >/dev/null && build "${urls[0]}/kv/ccache" >/dev/null; then
  rm -f "$t"/proj/*.o
  hits=$(build "${urls[1]}/kv/ccache")
fi

# ---- hot get: the same 64 objects through a bucket node and the local node ----
mkdir -p "$t/www"
for n in $(seq 64); do
  head -c 4096 /dev/urandom >"$t/obj"
  id=$("$helios" hash "$t/obj" | cut -c1-64)
  mv "$t/obj" "$t/www/$id"
  for u in "${urls[0]}" "$local_url"; do
    curl -s -o /dev/null -X PUT --data-binary @"$t/www/$id" "$u/v1/blobs/$id"
    curl -s -o /dev/null "$u/v1/blobs/$id" # in the L1 now
  done
done
port_of() { echo "${1##*:}"; }
for r in $(seq "$reps"); do
  "$load" get "$(port_of "${urls[0]}")" 50 "$secs" "$t/www" /v1/blobs/ >>"$t/get.bucket"
  "$load" get "$(port_of "$local_url")" 50 "$secs" "$t/www" /v1/blobs/ >>"$t/get.local"
done

python3 - "$bucket_json" "$local_json" "$hits" "$t/get.bucket" "$t/get.local" "$agents" "$t0" "$t1" "$t2" <<'EOF'
import json, statistics, sys
bucket, local = json.loads(sys.argv[1]), json.loads(sys.argv[2])
hits, gb, gl, agents = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
t0, t1, t2 = map(float, sys.argv[7:10])
bb = bucket["backend"]["bytes"]
print("\nFLEET: 3 nodes on one S3 bucket (s3rver on loopback) vs one local node, seed-1 corpus, %s agents" % agents)
print("| measure | bucket (3 nodes) | local node | ratio |")
print("|---|---|---|---|")
print("| stored bytes (local: compressed records) | %d | %d | %.2fx |" % (bb, local["stored_bytes"], bb / max(local["stored_bytes"], 1)))
print("| unique logical bytes | %d | %d | %.2fx |" % (bb, local["logical_bytes"], bb / max(local["logical_bytes"], 1)))
print("| objects | %d | %d | %.2fx |" % (bucket["backend"]["objects"], local["objects"], bucket["backend"]["objects"] / max(local["objects"], 1)))
print("| ingest (push through nodes / local snapshot) | %.1f s | %.1f s | %.2fx |" % (t1 - t0, t2 - t1, (t1 - t0) / max(t2 - t1, 1e-9)))
print("| ccache rebuild through another node: remote hits | %s of 40 | | |" % hits)
def rps(path):
    v = [float(l.split()[0]) for l in open(path) if l.strip()]
    p99 = [float(l.split()[2]) for l in open(path) if l.strip()]
    return v, p99
vb, pb = rps(gb)
vl, pl = rps(gl)
mb, ml = statistics.median(vb), statistics.median(vl)
print("| hot GET 4 KiB, 50 conns, req/s (median, min..max) | %.0f (%.0f..%.0f) | %.0f (%.0f..%.0f) | %.2fx |" % (mb, min(vb), max(vb), ml, min(vl), max(vl), mb / max(ml, 1)))
print("| hot GET p99 us (median) | %.0f | %.0f | %.2fx |" % (statistics.median(pb), statistics.median(pl), statistics.median(pb) / max(statistics.median(pl), 1)))
EOF
