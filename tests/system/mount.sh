#!/usr/bin/env bash
# mount.sh — `helios mount`: a snapshot of the seed-1 agent corpus mounted read-only equals the
# original (diff -r); stat comes from the trees (listing every size reads no file); reading one
# 8 MiB file reads only its chunks, its last byte a handful of objects; refs/<name>/{latest,
# <time>-<id>} and commits/<id> resolve; --ref and --commit mount one history or one snapshot;
# a corrupt chunk is EIO (never wrong bytes) while the rest reads on; SIGTERM and SIGINT unmount.
helios=$1
. "$(dirname "$0")/testlib.sh" mount
shared=$(cd "$(dirname "$0")/../../.." && pwd)/shared
export HELIOS_STORE=$t/store
[ -e /dev/fuse ] || { echo "FAIL: no /dev/fuse on this machine"; exit 1; }
[ -f "$shared/bench/make_corpus.py" ] || { echo "FAIL: $shared/bench/make_corpus.py is missing"; exit 1; }

python3 "$shared/bench/make_corpus.py" --seed 1 --agents 1 --out "$t/corpus" >/dev/null 2>"$t/err" ||
  { echo "FAIL: corpus: $(tail -3 "$t/err")"; exit 1; }
src=$t/corpus/agent-0000
c1=$("$helios" snapshot -q --ref agents/0/main -m "seed-1" "$src")
printf 'second\n' >"$t/extra"; mkdir -p "$t/w2"; cp "$t/extra" "$t/w2/"
c2=$("$helios" snapshot -q --ref other/x -m "small" "$t/w2")
mkdir -p "$t/mnt"

mnt_pid=
# mount [OPTIONS]: starts helios mount on $t/mnt and waits until it says it is mounted
mount_it() {
  start_bg mount mounted "$helios" mount "$t/mnt" "$@"
  local up=$?
  mnt_pid=$bg_pid
  [ "$up" = 0 ] || { bad "mount $*: not mounted after 30 s: $(cat "$t/mount.err")"; return 1; }
}
# unmount [SIGNAL]: stops it (SIGTERM by default), checks it exits 0 and the mount is gone; sets
# $read_objects from its summary
unmount_it() {
  kill -"${1:-TERM}" "$mnt_pid"
  local rc=0
  for _ in $(seq 600); do kill -0 "$mnt_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$mnt_pid" 2>/dev/null; then bad "mount did not stop on SIG${1:-TERM}"; kill -9 "$mnt_pid"; fusermount3 -u "$t/mnt"; fi
  wait "$mnt_pid"; rc=$?; mnt_pid=
  expect "mount's exit after SIG${1:-TERM}" 0 "$rc"
  [ "$rc" = 0 ] || echo "mount's stderr: $(tail -20 "$t/mount.err")" # why, when it is not 0
  mountpoint -q "$t/mnt" && { bad "still mounted after SIG${1:-TERM}"; fusermount3 -u "$t/mnt"; }
  read_objects=$(sed -n 's/.*; \([0-9]*\) objects read from the store.*/\1/p' "$t/mount.err")
}
trap '[ -n "$mnt_pid" ] && kill -9 "$mnt_pid"; mountpoint -q "$t/mnt" && fusermount3 -u "$t/mnt"; cleanup' EXIT

# 1. everything, byte for byte
mount_it && {
  diff -r --no-dereference "$src" "$t/mnt/refs/agents/0/main/latest" >"$t/diff" 2>&1 && ok || bad "diff -r: $(head -5 "$t/diff")"
  expect "ls -R entries" "$(cd "$src" && ls -R | wc -l)" "$(cd "$t/mnt/refs/agents/0/main/latest" && ls -R | wc -l)"
  expect "refs/" "agents
other" "$(ls "$t/mnt/refs")"
  ls "$t/mnt/refs/agents/0/main" | grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z-${c1:0:12}$" && ok ||
    bad "history entry: $(ls "$t/mnt/refs/agents/0/main")"
  entry=$(ls "$t/mnt/refs/agents/0/main" | grep -v latest)
  cmp -s "$src/_assets/app.db" "$t/mnt/refs/agents/0/main/$entry/_assets/app.db" && ok || bad "a history entry's file"
  cmp -s "$t/extra" "$t/mnt/commits/$c2/extra" && ok || bad "commits/<id>"
  cmp -s "$t/extra" "$t/mnt/commits/${c2:0:12}/extra" && ok || bad "commits/<prefix>"
  ls "$t/mnt/commits" | grep -q "^$c1$" && ok || bad "commits/ lists the refs' commits"
  [ ! -e "$t/mnt/refs/agents/0/nosuch" ] && [ ! -e "$t/mnt/commits/0000" ] && ok || bad "names that are not there"
  touch "$t/mnt/refs/agents/0/main/latest/new" 2>/dev/null && bad "a write succeeded" || ok
  echo x 2>/dev/null >>"$t/mnt/refs/agents/0/main/latest/README.md" && bad "an append succeeded" || ok
  unmount_it TERM
}

# 2. stat from the trees: every size and mode without reading a file
mount_it --ref agents/0/main && {
  # files and links: kind, mode without write bits, size (directories' sizes differ: 0 here)
  listing() { (cd "$1" && find . ! -type d -printf '%y %m %s %p\n' | sort) |
    python3 -c 'import sys; [print(k, oct(int(m, 8) & 0o7555)[2:], s, p) for k, m, s, p in (l.split(" ", 3) for l in sys.stdin.read().splitlines())]'; }
  listing "$src" >"$t/want"
  listing "$t/mnt/latest" >"$t/got"
  [ -s "$t/want" ] && cmp -s "$t/want" "$t/got" && ok || bad "find -printf: $(diff "$t/want" "$t/got" | head -4)"
  dirs=$(find "$src" -type d | wc -l)
  unmount_it INT
  [ "$read_objects" -le $((dirs + 10)) ] && ok || bad "stat of every entry read $read_objects objects (the snapshot has $dirs trees)"
}

# 3. one 8 MiB file reads its chunks only; its last byte a handful of objects
mount_it --commit agents/0/main && {
  tail -c 1 "$t/mnt/_assets/model.bin" | cmp -s - <(tail -c 1 "$src/_assets/model.bin") && ok || bad "last byte"
  unmount_it
  [ "$read_objects" -le 12 ] && ok || bad "the last byte of an 8 MiB file read $read_objects objects"
}
# a file still open when the mount stops: it exits 0 all the same (its reader closed, no leak)
mount_it --commit agents/0/main && {
  exec 3<"$t/mnt/_assets/model.bin"
  head -c 100 <&3 | cmp -s - <(head -c 100 "$src/_assets/model.bin") && ok || bad "read through a held descriptor"
  unmount_it
  exec 3<&-
}
mount_it --commit "${c1:0:16}" && {
  cmp -s "$t/mnt/_assets/model.bin" "$src/_assets/model.bin" && ok || bad "model.bin through the mount"
  unmount_it
  # 8 MiB in chunks of 64 KiB on average, with the trees above it: nothing like the snapshot's ~1,200
  [ "$read_objects" -le 400 ] && ok || bad "reading one 8 MiB file read $read_objects objects"
}

# 4. a corrupt chunk: EIO for that file, never wrong bytes; the rest reads on
off=$(python3 - "$HELIOS_STORE" "$src/_assets/model.bin" <<'PY'
import glob, sys
probe = open(sys.argv[2], "rb").read()[4 << 20:(4 << 20) + 64]
for seg in sorted(glob.glob(sys.argv[1] + "/segments/*.seg")):
    data = open(seg, "rb").read()
    at = data.find(probe)
    if at >= 0:
        f = open(seg, "r+b"); f.seek(at + 10); b = f.read(1); f.seek(at + 10); f.write(bytes([b[0] ^ 0xff]))
        print(seg, at); break
PY
)
[ -n "$off" ] && ok || bad "the chunk at 4 MiB of model.bin was not found in a segment"
mount_it --commit agents/0/main && {
  cat "$t/mnt/_assets/model.bin" >"$t/out" 2>"$t/cat.err"; rc=$?
  [ $rc != 0 ] && grep -q "Input/output error" "$t/cat.err" && ok || bad "a corrupt chunk: cat exit $rc: $(cat "$t/cat.err")"
  [ "$(stat -c %s "$t/out")" -le $((4 << 20)) ] && cmp -s "$t/out" <(head -c "$(stat -c %s "$t/out")" "$src/_assets/model.bin") &&
    ok || bad "bytes before the corrupt chunk are not the file's"
  cmp -s "$t/mnt/_assets/app.db" "$src/_assets/app.db" && ok || bad "another file after the corrupt chunk"
  unmount_it
  grep -q "corrupt" "$t/mount.err" && ok || bad "mount did not say what was corrupt: $(cat "$t/mount.err")"
}

# bad input
"$helios" mount "$t/nosuchdir" 2>"$t/err"; [ $? = 2 ] && ok || bad "mount on a missing directory"
"$helios" mount "$t/mnt" --commit nosuch 2>"$t/err"; [ $? = 1 ] && ok || bad "mount of a missing revision: $(cat "$t/err")"
"$helios" mount "$t/mnt" --ref 'bad name' 2>"$t/err"; [ $? = 2 ] && ok || bad "mount of a bad ref name"
mountpoint -q "$t/mnt" && bad "a refused mount mounted" || ok
finish
