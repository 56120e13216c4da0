#!/usr/bin/env bash
# http_bench.sh — `helios serve` against its peers, all measured in this run on this machine with
# the same load generator (bench/httpload.c: keep-alive connections, one request in flight each,
# every answer checked):
#   GET 4 KiB: helios /v1/blobs/<id> vs nginx serving the same 64 files (sendfile, no access log)
#              and vs memcached `get` of the same 64 values
#   PUT 4 KiB: helios (id verified, sync=batch) vs memcached `set` of 4 KiB values, and helios
#              with sync=always (durable before the answer) vs the same with sync=batch
# at 50 and 850 connections, REPS alternating runs of SECS seconds each, each begun once no server
# uses CPU (a store's background index work ends); medians and ranges. The
# durable PUT is also set against the ceiling the disk allows: connections / fdatasync latency.
# usage: http_bench.sh HELIOS HTTPLOAD   (env: HTTP_BENCH_SECS=4, HTTP_BENCH_REPS=3)
set -euo pipefail
helios=$1 load=$2
secs=${HTTP_BENCH_SECS:-4} reps=${HTTP_BENCH_REPS:-3}
ulimit -n 16384 2>/dev/null || true
t=$(mktemp -d "${TMPDIR:-/tmp}/helios-httpbench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$t"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# the same 64 objects for everyone, each file named by its id
chmod 755 "$t" # nginx workers run as an unprivileged user
mkdir -p "$t/www/blobs"
for i in $(seq 64); do
  head -c 4096 /dev/urandom >"$t/obj"
  id=$("$helios" hash "$t/obj" | cut -c1-64)
  mv "$t/obj" "$t/www/blobs/$id" && chmod 644 "$t/www/blobs/$id"
done

# helios (batch durability for the PUT comparison: memcached keeps nothing on disk at all)
hport=$(free_port)
"$helios" --store "$t/store" serve --listen "127.0.0.1:$hport" --sync batch -q ${HELIOS_SERVE_ARGS:-} >"$t/helios.out" 2>&1 &
hpid=$!
pids+=($hpid)
for _ in $(seq 100); do grep -q serving "$t/helios.out" && break; sleep 0.1; done
# the same with sync=always, for the durable PUT
aport=$(free_port)
"$helios" --store "$t/store-always" serve --listen "127.0.0.1:$aport" --sync always -q ${HELIOS_SERVE_ARGS:-} >"$t/helios-always.out" 2>&1 &
apid=$!
pids+=($apid)
for _ in $(seq 100); do grep -q serving "$t/helios-always.out" && break; sleep 0.1; done
for f in "$t"/www/blobs/*; do
  curl -s -o /dev/null -X PUT --data-binary @"$f" "http://127.0.0.1:$hport/v1/blobs/$(basename "$f")"
done

# nginx: as tuned as a static file server gets
nport=$(free_port)
mkdir -p "$t/nginx/logs"
cat >"$t/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $t/nginx/nginx.pid;
error_log $t/nginx/logs/error.log warn;
events { worker_connections 8192; use epoll; multi_accept on; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on; open_file_cache max=1024;
  keepalive_requests 10000000; keepalive_timeout 120;
  server { listen 127.0.0.1:$nport backlog=4096; root $t/www; location / { } }
}
EOF
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -c "$t/nginx/nginx.conf" -p "$t/nginx" &
npid=$!
pids+=($npid)

# memcached: as many threads as cores, enough memory for every value of the run
mport=$(free_port)
memcached=$(command -v memcached || echo /usr/bin/memcached)
"$memcached" -l 127.0.0.1 -p "$mport" -U 0 -m 4096 -c 16384 -t "$(nproc)" -u "$(id -un)" &
mpid=$!
pids+=($mpid)
sleep 1

# CPU ticks (user + system) used so far by a server: its process and its children (nginx workers)
ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)

# settle: until no server uses CPU any more (a helios server commits its last second of PUTs to
# its index in the background; that work would otherwise land in the next run, whoever's it is),
# at most 10 s
settle() {
  local a b p i
  for i in $(seq 40); do
    a=0 b=0
    for p in "${pids[@]}"; do a=$((a + $(ticks "$p"))); done
    sleep 0.25
    for p in "${pids[@]}"; do b=$((b + $(ticks "$p"))); done
    if [ $((b - a)) -le 1 ]; then return 0; fi
  done
}
# run NAME SERVER_PID ARGS… → appends "rps p50 p99 p999 errors cpu_us_per_request" to $t/NAME
run() {
  local name=$1 pid=$2; shift 2
  local c0 c1 line
  settle
  c0=$(ticks "$pid")
  line=$("$load" "$@")
  c1=$(ticks "$pid")
  python3 -c "import sys; f=sys.argv[1].split(); r=float(f[0])*$secs; print(' '.join(f), '%.1f' % (($c1-$c0)*1e6/$hz/r if r else 0))" "$line" >>"$t/$name"
}

summary() { # summary NAME → "median_rps min max p50 p99 p999 errors cpu_us" (medians over reps)
  python3 - "$t/$1" <<'EOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
col = lambda i: [r[i] for r in rows]
print("%.0f %.0f %.0f %.1f %.1f %.1f %d %.1f" % (statistics.median(col(0)), min(col(0)), max(col(0)),
      statistics.median(col(1)), statistics.median(col(2)), statistics.median(col(3)), sum(col(4)),
      statistics.median(col(5))))
EOF
}

# the sync=always server's puts, syncs and time in syncs (its /metrics) before and after the
# durable PUT runs at each concurrency: PUTs per sync and the share of the runs spent syncing
syncstat() {
  curl -s "http://127.0.0.1:$aport/metrics" |
    awk '$1 ~ /^helios_(store_puts|syncs|sync_seconds)_total$/ { printf "%s=%s ", $1, $2 }'
}
for c in 50 850; do
  syncstat >"$t/sync-before-$c"
  for r in $(seq "$reps"); do
    run "get-helios-$c" "$hpid" get "$hport" "$c" "$secs" "$t/www/blobs" /v1/blobs/
    run "get-nginx-$c" "$npid" get "$nport" "$c" "$secs" "$t/www/blobs" /blobs/
    run "put-helios-$c" "$hpid" put "$hport" "$c" "$secs"
    run "put-memcached-$c" "$mpid" mcset "$mport" "$c" "$secs"
    run "get-memcached-$c" "$mpid" mcget "$mport" "$c" "$secs" "$t/www/blobs"
    run "putalways-helios-$c" "$apid" put "$aport" "$c" "$secs"
  done
  syncstat >"$t/sync-after-$c"
done

echo
echo "HTTP: $reps alternating runs of ${secs}s each; requests/s median [min-max]; latency medians in us;"
echo "cpu/req: server CPU time per request in us (the load generator shares the machine, so req/s"
echo "can be its limit; CPU per request is the server's own cost)"
printf '%-34s %9s %19s %9s %9s %9s %7s %8s\n' test req/s range p50 p99 p999 errors cpu/req
row() { # row OP SERVER C → the printed line; sets m cpu p99 for the caller
  read -r m lo hi p50 p99 p999 err cpu <<<"$(summary "$1-$2-$3")"
  printf '%-34s %9s %19s %9s %9s %9s %7s %8s\n' "$1 4KiB $2 c=$3" "$m" "[$lo-$hi]" "$p50" "$p99" "$p999" "$err" "$cpu"
}
ratio() { python3 -c "import sys; a, b = map(float, sys.argv[1:]); print('%.2f' % (a / b if b else 0))" "$1" "$2"; }
# the disk's sync latency: a durable PUT waits for at least one sync, so with c requests in flight
# (one per connection) no server answers more than c / sync-latency of them per second
sync_us=$(python3 - "$t" <<'EOF'
import os, statistics, sys, time
fd = os.open(os.path.join(sys.argv[1], "synctest"), os.O_WRONLY | os.O_CREAT, 0o644)
lat = []
for i in range(200):
    os.pwrite(fd, os.urandom(4096), i * 4096)
    t = time.perf_counter()
    os.fdatasync(fd)
    lat.append((time.perf_counter() - t) * 1e6)
print("%.0f" % statistics.median(lat))
EOF
)
echo "disk: fdatasync of a 4 KiB write, median of 200: $sync_us us"
for c in 50 850; do
  row get helios $c; hm=$m hc=$cpu hp=$p99
  row get nginx $c; nm=$m np=$p99
  row get memcached $c; mm=$m mc=$cpu mp=$p99
  row put helios $c; pm=$m pc=$cpu
  row put memcached $c; sm=$m
  row putalways helios $c; am=$m ac=$cpu
  echo "  c=$c GET: req/s $(ratio $hm $mm)x memcached (target >= 1.0), $(ratio $hm $nm)x nginx; CPU/req $(ratio $hc $mc)x memcached's (target <= 1.0); p99 $hp vs memcached $mp, nginx $np us"
  echo "  c=$c PUT sync=batch: req/s $(ratio $pm $sm)x memcached set (target >= 1.0)"
  ceiling=$(python3 -c "import sys; print('%.0f' % ($c * 1e6 / max(float(sys.argv[1]), 1)))" "$sync_us")
  echo "  c=$c PUT sync=always: req/s $(ratio $am $pm)x sync=batch (target >= 0.7); CPU/req $(ratio $ac $pc)x sync=batch's (target <= 1.3); disk ceiling $c / $sync_us us = $ceiling req/s = $(ratio $ceiling $pm)x sync=batch, helios at $(ratio $am $ceiling)x of it"
  python3 - "$(cat "$t/sync-before-$c")" "$(cat "$t/sync-after-$c")" "$((reps * secs))" <<'EOF'
import sys
b, a = [dict(kv.split("=") for kv in x.split()) for x in sys.argv[1:3]]
d = {k: float(a[k]) - float(b.get(k, 0)) for k in a}
syncs, wall = d.get("helios_syncs_total", 0), float(sys.argv[3])
if syncs > 0:
    busy = d.get("helios_sync_seconds_total", 0)
    print("    under that load: %.1f PUTs per sync, a sync every %.0f us taking %.0f us on average: "
          "the server was syncing %.0f%% of the %.0f s" % (d.get("helios_store_puts_total", 0) / syncs,
          wall * 1e6 / syncs, busy * 1e6 / syncs, 100 * busy / wall, wall))
EOF
done
