#!/usr/bin/env bash
# Finds call circles between the files of one folder of src/ (file A calls a function defined in
# file B, and B, through any others, calls back into A), from the object files of a build: nm's
# undefined and defined symbols. Prints every circle and exits 1 if there is one.
# usage: check-calls.sh OBJECT_DIR FOLDER...   (OBJECT_DIR: where src/<folder>/*.o are, e.g.
#        build/CMakeFiles/helios.dir)
set -uo pipefail
objdir=$1; shift
python3 - "$objdir" "$@" <<'PY'
import glob, os, subprocess, sys
objdir, folders, bad = sys.argv[1], sys.argv[2:], 0
for folder in folders:
    objs = sorted(glob.glob(os.path.join(objdir, 'src', folder, '*.o')))
    if not objs:
        print("no object files for src/%s under %s" % (folder, objdir)); bad = 1; continue
    defs, undef = {}, {}
    for o in objs:
        name = os.path.basename(o)[:-2]
        lines = [l.split() for l in subprocess.run(['nm', o], capture_output=True, text=True).stdout.splitlines()]
        defs[name] = {l[2] for l in lines if len(l) == 3 and l[1] in 'TDBR'}
        undef[name] = {l[1] for l in lines if len(l) == 2 and l[0] == 'U'}
    edges = {a: sorted(b for b in defs if b != a and undef[a] & defs[b]) for a in defs}
    seen = set()
    for start in sorted(edges):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in edges[node]:
                if nxt == start:
                    key = frozenset(path)
                    if key not in seen:
                        seen.add(key)
                        print("call circle in src/%s: %s" % (folder, " -> ".join(path + [start])))
                        bad = 1
                elif nxt not in path and nxt > start:
                    stack.append((nxt, path + [nxt]))
sys.exit(bad)
PY
