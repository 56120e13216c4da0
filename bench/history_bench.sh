#!/usr/bin/env bash
# history_bench.sh — the history targets, each beside a baseline measured in the same run:
#   `helios log` of a 10,000-commit ref      vs `git log` of a 10,000-commit repository
#   `ls -R` of a mounted ~700-file snapshot   vs `ls -R` of the same tree on disk (page cache)
#   first byte of a file in a mounted snapshot, its objects in the L1 (the kernel's page cache
#   cold for that path)                        vs the first byte of the file on disk (page cache)
# Medians over 5 runs with min..max. usage: history_bench.sh HELIOS MKHISTORY
set -uo pipefail
helios=$(realpath "$1") mkhistory=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
shared=${HELIOS_SHARED:-$here/../../shared}
t=$(mktemp -d "${TMPDIR:-/tmp}/helios-hist.XXXXXX")
mnt_pid=
trap '[ -n "$mnt_pid" ] && kill "$mnt_pid" 2>/dev/null; sleep 0.5; mountpoint -q "$t/mnt" && fusermount3 -u "$t/mnt"; rm -rf "$t"' EXIT
# ms COMMAND…: wall milliseconds of one run, output discarded
ms() { local a b; a=$(date +%s%N); "$@" >/dev/null 2>&1; b=$(date +%s%N); echo $(((b - a) / 1000)) | awk '{printf "%.2f\n", $1 / 1000}'; }
# stats: median and min..max of the numbers on stdin
stats() { sort -g | awk '{v[NR] = $1} END {printf "%s (%s..%s)", v[int((NR + 1) / 2)], v[1], v[NR]}'; }
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b > 0 ? a / b : 0)}'; }

echo "== history (log, mount) =="
# 1. log of 10,000 commits
"$mkhistory" "$t/store" agents/0/main 10000 || exit 1
git init -q "$t/git" && (cd "$t/git" && for i in $(seq 0 9999); do
  printf 'commit refs/heads/main\ncommitter bench <b@x> %d +0000\ndata 12\ncommit %05d\nM 644 inline state\ndata 12\nstate %05d\n\n' \
    $((1700000000 + i)) "$i" "$i"; done | git fast-import --quiet)
for _ in 1 2 3 4 5; do ms "$helios" --store "$t/store" log --oneline agents/0/main; done >"$t/log.h"
for _ in 1 2 3 4 5; do ms git -C "$t/git" log --oneline main; done >"$t/log.g"
for _ in 1 2 3 4 5; do ms "$helios" --store "$t/store" log --oneline --limit 20 agents/0/main; done >"$t/log.h20"
printf '%-44s %-24s %-24s %s\n' "measure (ms, median (min..max) of 5)" helios baseline "ratio (target)"
printf '%-44s %-24s %-24s %s\n' "log of 10,000 commits (git log)" "$(stats <"$t/log.h")" "$(stats <"$t/log.g")" \
  "$(ratio "$(median <"$t/log.h")" "$(median <"$t/log.g")")x git (helios ≤ 100 ms)"
printf '%-44s %-24s %-24s %s\n' "log --limit 20 of the same" "$(stats <"$t/log.h20")" "" ""

# 2. and 3. a mounted snapshot of the seed-1 corpus
if [ ! -e /dev/fuse ] || [ ! -f "$shared/bench/make_corpus.py" ]; then
  echo "mount: /dev/fuse or the corpus generator is missing; skipped"; exit 0
fi
python3 "$shared/bench/make_corpus.py" --seed 1 --agents 1 --out "$t/corpus" >/dev/null 2>&1 || exit 1
src=$t/corpus/agent-0000
"$helios" --store "$t/store" snapshot -q --ref agents/1/main "$src" >"$t/c1"
mkdir -p "$t/mnt"
mount_it() {
  "$helios" --store "$t/store" mount "$t/mnt" >"$t/m.out" 2>&1 & mnt_pid=$!
  for _ in $(seq 300); do grep -q mounted "$t/m.out" && return; sleep 0.1; done; echo "mount failed: $(cat "$t/m.out")"; exit 1
}
unmount_it() { kill "$mnt_pid"; wait "$mnt_pid"; mnt_pid=; }
snap=$t/mnt/refs/agents/1/main/latest
ls -R "$src" >/dev/null
for _ in 1 2 3 4 5; do ms ls -R "$src"; done >"$t/ls.d"
: >"$t/ls.first"; : >"$t/ls.again"
for _ in 1 2 3 4 5; do
  mount_it; ms ls -R "$snap" >>"$t/ls.first"; ms ls -R "$snap" >>"$t/ls.again"; unmount_it
done
printf '%-44s %-24s %-24s %s\n' "ls -R, $(find "$src" | wc -l) entries: fresh mount (disk)" "$(stats <"$t/ls.first")" "$(stats <"$t/ls.d")" \
  "$(ratio "$(median <"$t/ls.first")" "$(median <"$t/ls.d")")x (≤ 2x)"
printf '%-44s %-24s %-24s %s\n' "ls -R again, same mount (disk)" "$(stats <"$t/ls.again")" "$(stats <"$t/ls.d")" \
  "$(ratio "$(median <"$t/ls.again")" "$(median <"$t/ls.d")")x (≤ 2x)"

# first byte: 200 files read once through commits/<id>/ (objects into the L1), then timed through
# refs/…/latest (another path: the kernel has not cached those pages)
mount_it
c1=$(cat "$t/c1")
python3 - "$src" "$t/mnt/commits/$c1" "$snap" >"$t/fb" <<'PY'
import os, sys, time
src, warm, cold = sys.argv[1:4]
files = sorted(os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src) for f in fs)[:200]
def first_byte(root):
    out = []
    for f in files:
        t0 = time.perf_counter()
        with open(os.path.join(root, f), "rb") as h:
            h.read(1)
        out.append((time.perf_counter() - t0) * 1000)
    return sorted(out)
for f in files:
    open(os.path.join(warm, f), "rb").read()
m, d = first_byte(cold), first_byte(src)
print("%.3f %.3f %.3f %.3f" % (m[len(m) // 2], m[int(len(m) * 0.99)], d[len(d) // 2], d[int(len(d) * 0.99)]))
PY
unmount_it
read -r fb50 fb99 d50 d99 <"$t/fb"
printf '%-44s %-24s %-24s %s\n' "first byte from the L1, 200 files: p50 (disk)" "$fb50" "$d50" "$(ratio "$fb50" "$d50")x (helios ≤ 1 ms)"
printf '%-44s %-24s %-24s %s\n' "                                   p99 (disk)" "$fb99" "$d99" ""
