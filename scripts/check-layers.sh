#!/usr/bin/env bash
# Fails when a source file includes a header from a layer above its own or from a sibling layer
# (docs/DESIGN.md, "Source layout"). Layers, bottom up; equal ranks are siblings that never include
# each other. server/ and cli/ may include only the public header (and their own folder); cli/
# may also include server/server.h, the entry point of `helios serve`.
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root"
declare -A rank=([base]=0 [hash]=1 [store]=2 [cache]=2 [remote]=2 [tier]=3 [dedup]=4 [integrity]=4
                 [coord]=5 [api]=6 [server]=7 [cli]=7)
bad=0
while IFS= read -r file; do
  dir=${file#src/}; layer=${dir%%/*}
  [ -n "${rank[$layer]+x}" ] || { echo "$file: folder '$layer' is not a layer in docs/DESIGN.md"; bad=1; continue; }
  while IFS= read -r line; do
    inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$line")
    case "$inc" in
      helios.h) continue ;;
      ../*|*/../*) echo "$file: relative include \"$inc\""; bad=1; continue ;;
    esac
    target=${inc%%/*}
    [ "$target" = "$inc" ] && { echo "$file: include \"$inc\" must name its folder (\"$layer/…\")"; bad=1; continue; }
    [ "$target" = "$layer" ] && continue
    [ "$layer" = cli ] && [ "$inc" = server/server.h ] && continue
    if [ -z "${rank[$target]+x}" ]; then
      echo "$file: include \"$inc\" is not from a known layer"; bad=1
    elif [ "$layer" = server ] || [ "$layer" = cli ]; then
      echo "$file: $layer/ may include only helios.h, not \"$inc\""; bad=1
    elif [ "${rank[$target]}" -ge "${rank[$layer]}" ]; then
      echo "$file: $layer/ (layer ${rank[$layer]}) includes \"$inc\" from $target/ (layer ${rank[$target]}): upward or sideways"; bad=1
    fi
  done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
done < <(find src -name '*.[ch]' | sort)
# LMDB transactions begin and end only in store/index.c, whose write_begin/write_end pair every
# begin with one end and count what is open (an unpaired write transaction held LMDB's writer
# lock for ever and hung the server).
if grep -nE 'mdb_txn_(begin|commit|abort)[[:space:]]*\(' $(find src -name '*.[ch]' ! -path src/store/index.c | sort); then
  echo "LMDB transactions outside src/store/index.c: use hl_idx_write_begin/hl_idx_write_end"; bad=1
fi
# LMDB stays inside src/store: no file elsewhere includes <lmdb.h>, directly or through a header.
python3 - <<'PY' || bad=1
import glob, re, sys
inc = {}
for f in glob.glob('src/**/*.[ch]', recursive=True):
    text = open(f, errors='replace').read()
    inc[f] = (set(re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M)),
              re.search(r'^\s*#\s*include\s+<lmdb\.h>', text, re.M) is not None)
memo = {}
def lmdb(f, seen=()):
    if f in memo:
        return memo[f]
    local, direct = inc.get(f, (set(), False))
    r = direct or any(lmdb('src/' + h, seen + (f,)) for h in local if 'src/' + h not in seen)
    memo[f] = r
    return r
leaks = [f for f in sorted(inc) if not f.startswith('src/store/') and lmdb(f)]
for f in leaks:
    print("%s: <lmdb.h> reaches it (LMDB's types stay inside src/store)" % f)
sys.exit(1 if leaks else 0)
PY
# The public header stands alone.
if grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' include/helios.h; then
  echo "include/helios.h: must include only system headers"; bad=1
fi
if [ $bad = 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; exit 1; fi
