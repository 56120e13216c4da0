#!/usr/bin/env bash
# `make run`: the main job on the embedded default store. Creates the store if needed, stores this
# project's own sources into it, reads one back and verifies it, verifies the whole store, then
# serves it over HTTP (helios serve, $HELIOS_LISTEN or 127.0.0.1:8080) until Ctrl-C or SIGTERM.
set -euo pipefail
helios=${1:-build/helios}
store=${HELIOS_STORE:-${XDG_DATA_HOME:-$HOME/.local/share}/helios}
export HELIOS_STORE=$store
cd "$(dirname "$0")/.."

echo "== helios $("$helios" --version | cut -d' ' -f2): store at $store"
"$helios" init
echo "== storing this project's sources (helios put)"
mapfile -t files < <(git ls-files 2>/dev/null | grep -E '\.(c|h|md|txt|sh)$' || find src include -type f)
"$helios" put "${files[@]}" | tail -n 5
echo "   … ${#files[@]} files"
id=$("$helios" hash README.md | cut -d' ' -f1)
echo "== reading README.md back by id $id"
"$helios" get "$id" | cmp - README.md && echo "   identical bytes, verified against the id on read"
echo "== b3sum agrees: $(b3sum --no-names README.md 2>/dev/null || echo 'b3sum not installed')"
echo "== a snapshot of this project as a commit, then its history (helios snapshot --ref, log)"
"$helios" snapshot -q --ref make-run/sources -m "make run" src >/dev/null
"$helios" log --oneline --limit 3 make-run/sources
echo "== helios verify"
"$helios" verify
echo "== helios stats"
"$helios" stats
listen=${HELIOS_LISTEN:-127.0.0.1:8080}
url=http://$listen
cat <<EOF
== helios serve on $url (Ctrl-C stops it; every request in flight is answered first)
   try, from another shell:
     curl -s -X POST --data-binary @README.md $url/v1/blobs
     curl -s $url/v1/blobs/$id | head -n 3
     curl -s -X POST -d '{"ids": ["$id"]}' $url/v1/missing
     curl -s $url/metrics | grep '^helios_objects'
   ccache:  CCACHE_REMOTE_STORAGE="$url/kv/ccache" ccache gcc -c file.c
   Bazel:   bazel build --remote_cache=$url/bazel //...
EOF
exec "$helios" serve --listen "$listen"
