#!/usr/bin/env bash
# snapshot.sh — `helios snapshot` → `helios restore` round trips byte-identical on generated work
# trees (empty files and directories, long and non-ASCII names, symlinks, dangling symlinks,
# permission bits, a read-only directory, nested depth), `ls` and `diff` output, `--ref`, and a
# stored tree naming ".." refused by restore with exit 3 and nothing written.
# usage: snapshot.sh HELIOS_BINARY
set -uo pipefail
helios=$(realpath "$1")
. "$(dirname "$0")/testlib.sh" snap
export HELIOS_STORE=$t/store

# a listing that captures everything restore must reproduce: type, mode, size, link target, bytes
manifest() {
  (cd "$1" && find . -mindepth 1 -printf '%y %m %s %p -> %l\n' | LC_ALL=C sort &&
   find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r b3sum)
}

gen_tree() { # gen_tree DIR SEED
  local d=$1 seed=$2
  mkdir -p "$d/src/deep/er/and/deeper" "$d/empty dir" "$d/docs"
  : >"$d/empty"
  printf 'seed %s\n' "$seed" >"$d/src/main.c"
  head -c $((70000 + seed)) /dev/urandom >"$d/src/blob.bin"
  printf 'héllo wörld\n' >"$d/docs/ünïcödé ñame.txt"
  printf 'x\n' >"$d/docs/$(printf 'n%.0s' $(seq 250))"
  printf '#!/bin/sh\necho %s\n' "$seed" >"$d/run.sh"; chmod 755 "$d/run.sh"
  printf 'secret\n' >"$d/private"; chmod 600 "$d/private"
  printf 'deep\n' >"$d/src/deep/er/and/deeper/leaf"
  ln -s src/main.c "$d/link"
  ln -s ../../nowhere "$d/src/dangling"
  ln -s "deep/er" "$d/src/dirlink"
  mkdir "$d/readonly"; printf 'ro\n' >"$d/readonly/f"; ln -s f "$d/readonly/link"; chmod 555 "$d/readonly"
  printf 'sticky\n' >"$d/setgid"; chmod 2750 "$d/setgid"
}

gen_tree "$t/w1" 1
id1=$("$helios" snapshot -q "$t/w1") || bad "snapshot failed"
[[ $id1 =~ ^[0-9a-f]{64}$ ]] && ok || bad "snapshot printed '$id1'"
"$helios" restore "$id1" "$t/r1" && ok || bad "restore failed"
if diff <(manifest "$t/w1") <(manifest "$t/r1") >"$t/d"; then ok; else bad "restore differs: $(head -5 "$t/d")"; fi
diff -r --no-dereference "$t/w1" "$t/r1" >/dev/null && ok || bad "diff -r finds differences"

# same content → same id, nothing new stored
id1b=$("$helios" --json snapshot "$t/w1")
grep -q "\"id\": \"$id1\"" <<<"$id1b" && grep -q '"new_objects": 0' <<<"$id1b" && ok || bad "re-snapshot: $id1b"
# the restored copy snapshots to the same id too
[ "$("$helios" snapshot -q "$t/r1")" = "$id1" ] && ok || bad "restored tree has another id"

# ls
"$helios" ls "$id1" >"$t/ls" && ok || bad "ls failed"
grep -q '^0755 file .* run.sh$' "$t/ls" && grep -q '^0000 link .* link$' "$t/ls" &&
  grep -q '^0555 dir  .* readonly/$' "$t/ls" && grep -q ' empty dir/$' "$t/ls" && ok || bad "ls output: $(head -3 "$t/ls")"
[ "$(wc -l <"$t/ls")" = "$(cd "$t/w1" && find . -mindepth 1 | wc -l)" ] && ok || bad "ls does not list every entry"

# --ref, then a second snapshot moves it; diff between them (ref names work as ids)
"$helios" snapshot -q --ref agents/1/main "$t/w1" >/dev/null && ok || bad "snapshot --ref failed"
chmod u+w "$t/w1/readonly"; rm "$t/w1/readonly/f"; printf 'changed\n' >"$t/w1/src/main.c"
printf 'new\n' >"$t/w1/docs/added"; chmod 644 "$t/w1/run.sh"
id2=$("$helios" snapshot -q --ref agents/1/main "$t/w1")
[ "$("$helios" ref get agents/1/main | cut -c1-64)" = "$id2" ] && ok || bad "--ref did not move the ref"
"$helios" diff "$id1" agents/1/main >"$t/diff"
expected="A  docs/added
M  readonly/
D  readonly/f
M  run.sh
M  src/main.c"
[ "$(cat "$t/diff")" = "$expected" ] && ok || bad "diff output: $(cat "$t/diff")"
[ -z "$("$helios" diff "$id1" "$id1")" ] && ok || bad "diff of a tree with itself is not empty"

# stats --dedup: the logical bytes the ref names are the work tree's file and link-target bytes
want=$(cd "$t/w1" && find . -type f -printf '%s\n' -o -type l -printf '%s\n' | awk '{s+=$1} END{print s}')
got=$("$helios" --json stats --dedup | python3 -c 'import json,sys; print(json.load(sys.stdin)["logical_bytes"])')
[ "$got" = "$want" ] && ok || bad "stats --dedup: logical $got, wanted $want"

# restore refuses: a non-empty target, a blob that is no tree, an unknown id, a bad id
"$helios" restore "$id1" "$t/r1" 2>"$t/err"; [ $? = 2 ] && grep -q "new or empty" "$t/err" && ok || bad "restore over a non-empty dir: $(cat "$t/err")"
blob=$("$helios" put "$t/w1/empty" | cut -c1-64)
"$helios" restore "$blob" "$t/r2" 2>"$t/err"; [ $? = 2 ] && grep -q "not a tree" "$t/err" && ok || bad "restore of a blob: $(cat "$t/err")"
"$helios" restore 0000000000000000000000000000000000000000000000000000000000000000 "$t/r3" 2>"$t/err"
[ $? = 1 ] && ok || bad "restore of an unknown id: $(cat "$t/err")"
"$helios" ls not/a/ref 2>"$t/err"; [ $? = 1 ] && ok || bad "ls of a missing ref"
"$helios" ls 'bad name!' 2>"$t/err"; [ $? = 2 ] && ok || bad "ls of a malformed id"

# a stored tree that names ".." (written by hand): refused, exit 3, nothing written anywhere
python3 - "$t/evil.tree" "$blob" <<'EOF'
import struct, sys
name = b".."
blob = bytes.fromhex(sys.argv[2])
entry = struct.pack("<BBHIQ", 1, 0, len(name), 0o644, 0) + blob + name
open(sys.argv[1], "wb").write(b"HLTR" + bytes([1, 1]) + struct.pack("<HII", 0, 1, 0) + entry)
EOF
evil=$("$helios" put "$t/evil.tree" | cut -c1-64)
mkdir "$t/jail"
"$helios" restore "$evil" "$t/jail/out" 2>"$t/err"; rc=$?
[ $rc = 3 ] && grep -q "unsafe" "$t/err" && ok || bad "unsafe tree: exit $rc: $(cat "$t/err")"
[ -z "$(ls -A "$t/jail")" ] && [ ! -e "$t/out" ] && ok || bad "unsafe tree wrote something"

# snapshot errors: not a directory, missing
"$helios" snapshot "$t/w1/empty" 2>"$t/err"; [ $? = 5 ] && ok || bad "snapshot of a file: $(cat "$t/err")"
"$helios" snapshot "$t/missing" 2>"$t/err"; [ $? = 5 ] && grep -q "No such file" "$t/err" && ok || bad "snapshot of a missing dir: $(cat "$t/err")"

# garbage collection: a ref keeps its snapshot whole; what nothing names goes once it is old
gcs="$t/gcstore"
"$helios" --store "$gcs" -q snapshot "$t/w1" --ref keep >/dev/null
head -c 5000 /dev/urandom > "$t/junk"
junk=$("$helios" --store "$gcs" put "$t/junk" | cut -c1-64)
"$helios" --store "$gcs" gc 2>"$t/err"; grep -q " 0 collected" "$t/err" && ok || bad "gc within the grace period: $(cat "$t/err")"
sleep 2
"$helios" --store "$gcs" gc --grace 1s --dry-run 2>"$t/err"; grep -q "1 would be collected" "$t/err" && ok || bad "gc --dry-run: $(cat "$t/err")"
"$helios" --store "$gcs" --json gc --grace 1s >"$t/gc.json" 2>"$t/err"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["collected"] == 1, d' "$t/gc.json" && ok || bad "gc --json: $(cat "$t/gc.json")"
"$helios" --store "$gcs" has "$junk" >/dev/null; [ $? = 1 ] && ok || bad "an unnamed object survived gc"
"$helios" --store "$gcs" restore keep "$t/gcr" && diff -r --no-dereference "$t/w1" "$t/gcr" >/dev/null && ok || bad "a ref's snapshot damaged by gc"
"$helios" --store "$gcs" verify 2>/dev/null && ok || bad "verify after gc"
"$helios" --store "$gcs" gc --grace forever 2>"$t/err"; [ $? = 2 ] && grep -q "bad duration" "$t/err" && ok || bad "gc --grace forever: $(cat "$t/err")"
"$helios" --store "$gcs" gc --compact-below 2 2>"$t/err"; [ $? = 2 ] && ok || bad "gc --compact-below 2"
# repacking: every record re-encoded (the store can only shrink), the snapshot restores the same
"$helios" --store "$gcs" --json gc --repack --compact-rate 100M >"$t/gc.json" 2>"$t/err"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["records_repacked"] > 0 and d["repack_bytes_after"] <= d["repack_bytes_before"], d' "$t/gc.json" && ok || bad "gc --repack --json: $(cat "$t/gc.json" "$t/err")"
"$helios" --store "$gcs" gc --repack 2>"$t/err"; grep -q "0 records repacked" "$t/err" && ok || bad "gc --repack again: $(cat "$t/err")"
rm -rf "$t/gcr" && "$helios" --store "$gcs" restore keep "$t/gcr" && diff -r --no-dereference "$t/w1" "$t/gcr" >/dev/null && ok || bad "a ref's snapshot damaged by the repack"
"$helios" --store "$gcs" verify --deep 2>/dev/null && ok || bad "verify --deep after the repack"
"$helios" --store "$gcs" gc --repack=23 2>"$t/err"; [ $? = 2 ] && grep -q "zstd level" "$t/err" && ok || bad "gc --repack=23: $(cat "$t/err")"
"$helios" --store "$gcs" gc --compact-rate fast 2>"$t/err"; [ $? = 2 ] && grep -q "bytes per second" "$t/err" && ok || bad "gc --compact-rate fast: $(cat "$t/err")"
# a server collects and repacks in the background (--gc-every), each report logged at info
head -c 5000 /dev/urandom >"$t/junk2"
junk2=$("$helios" --store "$gcs" put "$t/junk2" | cut -c1-64)
HELIOS_LOG=info start_server "$gcs" --gc-every 1s --gc-grace 0 --gc-repack 4 --gc-rate 50M
wait_line "$t/serve.err" "gc: .*collected" 120 && ok || bad "no background collection logged: $(cat "$t/serve.err")"
stop_within "$pid"; pid=
"$helios" --store "$gcs" has "$junk2" >/dev/null; [ $? = 1 ] && ok || bad "the background collection left an unnamed object"
rm -rf "$t/gcr" && "$helios" --store "$gcs" restore keep "$t/gcr" && diff -r --no-dereference "$t/w1" "$t/gcr" >/dev/null && ok || bad "a ref's snapshot damaged by the background collection"

# deltas: agents' copies of one tree, each edited a little, snapshotted on sibling refs: the later
# ones are stored as deltas against the newest sibling (by default), restore byte for byte, and
# cost a fraction of what --no-like stores; --like names the base, contradictory options are refused
dst="$t/dstore" nst="$t/nstore"
mkdir -p "$t/agents/base"
python3 - "$t/agents/base" <<'EOF'
import os, random, sys
r = random.Random(3)
words = ["alpha", "beta", "gamma", "delta", "return", "self", "def", "import", "value", "None"]
for i in range(20):
    lines = [" ".join(r.choice(words) for _ in range(8)) for _ in range(300)]
    open(os.path.join(sys.argv[1], "f%02d.py" % i), "w").write("\n".join(lines) + "\n")
EOF
for a in 1 2 3; do
  cp -a "$t/agents/base" "$t/agents/a$a"
  for f in "$t/agents/a$a"/f0[0-4].py; do printf 'edited by agent %s\n' "$a" >> "$f"; done
  "$helios" --store "$dst" -q snapshot "$t/agents/a$a" --ref agents/a$a >/dev/null || bad "snapshot a$a"
  "$helios" --store "$nst" -q snapshot "$t/agents/a$a" --ref agents/a$a --no-like >/dev/null || bad "snapshot --no-like a$a"
done
"$helios" --store "$dst" --json stats >"$t/d.json" && "$helios" --store "$nst" --json stats >"$t/n.json"
python3 - "$t/d.json" "$t/n.json" <<'EOF' && ok || bad "deltas: $(cat "$t/d.json")"
import json, sys
d, n = (json.load(open(p)) for p in sys.argv[1:3])
assert d["delta_objects"] >= 10, d          # five edited files in each of two later agents
assert n["delta_objects"] == 0, n
assert d["stored_bytes"] < n["stored_bytes"], (d["stored_bytes"], n["stored_bytes"])
assert d["delta_stored_bytes"] * 4 < d["delta_logical_bytes"], d
EOF
"$helios" --store "$dst" stats --dedup | grep -q "of which deltas" && ok || bad "stats --dedup says nothing of deltas"
for a in 1 2 3; do
  "$helios" --store "$dst" restore agents/a$a "$t/dr$a" && diff -r "$t/agents/a$a" "$t/dr$a" >/dev/null && ok || bad "restore of a$a stored as deltas"
done
"$helios" --store "$dst" verify 2>/dev/null && ok || bad "verify of a store with deltas"
cp -a "$t/agents/base" "$t/agents/b"; echo "one more line" >> "$t/agents/b/f07.py"
"$helios" --store "$dst" -q snapshot "$t/agents/b" --like agents/a1 >/dev/null && ok || bad "snapshot --like"
"$helios" --store "$dst" snapshot "$t/agents/b" --like agents/a1 --no-like 2>"$t/err"; [ $? = 2 ] && ok || bad "--like with --no-like: $(cat "$t/err")"
"$helios" --store "$dst" snapshot "$t/agents/b" --like no/such/ref 2>"$t/err"; rc=$?; [ $rc = 1 ] && ok || bad "--like of a missing revision: exit $rc: $(cat "$t/err")"

finish
