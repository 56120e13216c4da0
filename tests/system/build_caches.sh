#!/usr/bin/env bash
# build_caches.sh — real build caches against `helios serve`:
#  - Debian's ccache compiles a generated C project of 40 files twice with remote storage
#    http://127.0.0.1:PORT/kv/…, the local cache wiped between the builds: the second build must be
#    all remote hits with no remote errors; once with the subdirs layout, once with the flat one.
#  - the Bazel HTTP cache protocol with curl: ac and cas put/get/miss, SHA-256 mismatch rejected.
# The backend matrix (MODE): local — one node; bucket — two nodes on one S3 bucket (tests/s3), every
# upload through node A and every read (the second builds, the gets) through node B; helios —
# the same with two nodes whose backend is a third helios server.
# usage: build_caches.sh HELIOS_BINARY [local|bucket|helios]
set -uo pipefail
helios=$(realpath "$1")
mode=${2:-local}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/testlib.sh" caches
others=
stop_others() { for p in $others; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; cleanup; }
trap stop_others EXIT

case $mode in
local)
  start_server "$t/store"
  base=$url rbase=$url ;;
bucket|helios)
  if [ "$mode" = bucket ]; then
    start_bg s3 listening node "$here/../s3/server.js" "$t/bucket" 0
    others=$bg_pid
    s3port=$(awk '/listening/ {print $2}' "$t/s3.out")
    [ -n "$s3port" ] || { echo "S3 test server did not start: $(cat "$t/s3.err")"; echo "0 passed, 1 failed"; exit 1; }
    printf '[tier]\nbackend = s3\nl2-bytes = 16M\n[s3]\nendpoint = http://127.0.0.1:%s\nbucket = helios\nprefix = caches\naccess-key = helios-test\nsecret-key = helios-secret\n' "$s3port" >"$t/fleet.conf"
  else
    start_server "$t/far"
    others=$pid pid=
    printf '[tier]\nbackend = helios\nremote-url = %s\nl2-bytes = 16M\n' "$url" >"$t/fleet.conf"
  fi
  chmod 600 "$t/fleet.conf"
  start_server "$t/node-b" --config "$t/fleet.conf"
  others="$pid $others" rbase=$url
  start_server "$t/node-a" --config "$t/fleet.conf"
  base=$url ;;
*) echo "usage: build_caches.sh HELIOS_BINARY [local|bucket|helios]"; exit 2 ;;
esac

# ---- a generated C project: 40 files sharing a header ----
mkdir -p "$t/proj"
{
  echo "#ifndef COMMON_H"; echo "#define COMMON_H"; echo "#include <stddef.h>"
  echo "static inline size_t mix(size_t x) { return x * 2654435761u ^ (x >> 7); }"; echo "#endif"
} >"$t/proj/common.h"
for i in $(seq -w 1 40); do
  {
    echo "#include \"common.h\""
    echo "#include <string.h>"
    for k in 1 2 3 4 5; do
      echo "size_t f${i}_$k(const char *s) { size_t h = 1$i$k; for (size_t j = 0; s[j]; j++) h = mix(h + (unsigned char)s[j]); return h + strlen(s); }"
    done
  } >"$t/proj/unit$i.c"
done

stat_of() { CCACHE_DIR=$1 ccache --print-stats | awk -v k="$2" '$1 == k { print $2 }'; }

build() { # build CCACHE_DIR REMOTE
  for f in "$t"/proj/unit*.c; do
    CCACHE_DIR=$1 CCACHE_REMOTE_STORAGE=$2 CCACHE_NOHASHDIR=1 CCACHE_BASEDIR="$t/proj" \
      ccache gcc -O2 -c "$f" -o "${f%.c}.o" || return 1
  done
}

ccache_round() { # ccache_round LAYOUT NAMESPACE
  local layout=$1 ns=$2 remote="$base/kv/$2|layout=$1" again="$rbase/kv/$2|layout=$1"
  rm -rf "$t/cc" && mkdir -p "$t/cc"
  build "$t/cc" "$remote" || { bad "ccache ($layout): first build failed"; return; }
  expect "ccache ($layout) first build: remote misses" 40 "$(stat_of "$t/cc" remote_storage_miss)"
  expect "ccache ($layout) first build: remote errors" 0 "$(stat_of "$t/cc" remote_storage_error)"
  rm -rf "$t/cc" && mkdir -p "$t/cc" # the local cache wiped; the rebuild through the other node
  rm -f "$t"/proj/*.o
  build "$t/cc" "$again" || { bad "ccache ($layout): second build failed"; return; }
  expect "ccache ($layout) second build: remote hits" 40 "$(stat_of "$t/cc" remote_storage_hit)"
  expect "ccache ($layout) second build: remote misses" 0 "$(stat_of "$t/cc" remote_storage_miss)"
  expect "ccache ($layout) second build: remote errors" 0 "$(stat_of "$t/cc" remote_storage_error)"
  expect "ccache ($layout) second build: remote timeouts" 0 "$(stat_of "$t/cc" remote_storage_timeout)"
  expect "ccache ($layout) second build: local hits" 0 "$(stat_of "$t/cc" local_storage_hit)"
  ls "$t"/proj/unit*.o >/dev/null 2>&1 && ok || bad "ccache ($layout): objects were not produced"
}
command -v ccache >/dev/null || bad "ccache is installed"
ccache_round subdirs ccache
ccache_round flat ccache-flat
# one entry under either layout: a flat client finds what a subdirs client stored
rm -rf "$t/cc" && mkdir -p "$t/cc"
build "$t/cc" "$rbase/kv/ccache|layout=flat" || bad "ccache: cross-layout build failed"
expect "ccache: flat layout hits what subdirs stored" 40 "$(stat_of "$t/cc" remote_storage_hit)"

# ---- the Bazel HTTP cache protocol ----
code() { curl -s -o "$t/body" -w '%{http_code}' "$@"; }
printf 'compiled output' >"$t/blob"
sha=$(sha256sum "$t/blob" | cut -c1-64)
expect "bazel cas miss" 404 "$(code "$rbase/bazel/cas/$sha")"
expect "bazel cas put" 201 "$(code -X PUT --data-binary @"$t/blob" "$base/bazel/cas/$sha")"
expect "bazel cas get" 200 "$(code "$rbase/bazel/cas/$sha")"
cmp -s "$t/body" "$t/blob" && ok || bad "bazel cas get: bytes differ"
expect "bazel cas head" 200 "$(code -I "$rbase/bazel/cas/$sha")"
wrong=$(printf 'other' | sha256sum | cut -c1-64)
expect "bazel cas put with a wrong SHA-256" 422 "$(code -X PUT --data-binary @"$t/blob" "$base/bazel/cas/$wrong")"
expect "bazel cas: the rejected upload is absent" 404 "$(code "$rbase/bazel/cas/$wrong")"
expect "bazel ac miss" 404 "$(code "$rbase/bazel/ac/$sha")"
printf '\x0a\x20action result' >"$t/ac"
expect "bazel ac put" 201 "$(code -X PUT --data-binary @"$t/ac" "$base/bazel/ac/$sha")"
expect "bazel ac get" 200 "$(code "$rbase/bazel/ac/$sha")"
cmp -s "$t/body" "$t/ac" && ok || bad "bazel ac get: bytes differ"
expect "bazel: uppercase key" 400 "$(code "$base/bazel/ac/${sha^^}")"
expect "bazel: short key" 400 "$(code "$base/bazel/cas/abc")"

stop_within "$pid"; rc=$?; pid=
expect "serve exits 0 on SIGTERM" 0 "$rc"
finish
