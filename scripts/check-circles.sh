#!/usr/bin/env bash
# Finds include circles between the modules of src/: a module is a header with the .c files that
# implement it (src/store/store.h: src/store/store*.c; src/api/api.h: src/api/*.c), and module A
# depends on B when a file of A includes B's header. Prints every circle and exits 1 if there is one.
set -uo pipefail
cd "${1:-.}"
python3 - <<'PY'
import os, re, sys, glob
mods = {}            # header path -> set of .c files
for h in glob.glob('src/**/*.h', recursive=True):
    d, base = os.path.split(h)
    stem = base[:-2]
    impl = [c for c in glob.glob(os.path.join(d, '*.c'))
            if os.path.basename(c)[:-2] == stem or os.path.basename(c).startswith(stem + '_')]
    if stem.endswith('_int'):
        continue  # a private header belongs to the module whose files share it
    mods[h] = set(impl) | {h}
owner = {}
for h, files in mods.items():
    for f in files:
        owner.setdefault(f, h)
for c in glob.glob('src/**/*.c', recursive=True):
    if c not in owner:  # a file implementing no header of its own: its own module
        mods[c] = {c}; owner[c] = c
# private headers: their includes count for the module of the first file that includes them
edges = {m: set() for m in mods}
def includes(path):
    out = []
    for line in open(path, errors='replace'):
        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if m:
            out.append(m.group(1))
    return out
for m, files in mods.items():
    todo = list(files); seen = set()
    while todo:
        f = todo.pop()
        if f in seen: continue
        seen.add(f)
        for inc in includes(f):
            p = os.path.normpath(os.path.join('src', inc))
            if p.endswith('_int.h') and os.path.exists(p):
                todo.append(p); continue
            if p in mods and p != m:
                edges[m].add(p)
# strongly connected components (Tarjan)
idx = {}; low = {}; st = []; on = set(); sccs = []; n = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = n[0]; n[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx:
            sc(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in sorted(edges):
    if v not in idx: sc(v)
for comp in sccs:
    print('include circle: ' + ' <-> '.join(comp))
print('%d modules, %d circles' % (len(mods), len(sccs)))
sys.exit(1 if sccs else 0)
PY
