#!/usr/bin/env bash
# bazel.sh — a real Bazel client (Debian's bazel-bootstrap 4.2.3) against `helios serve` as its
# HTTP remote cache: a small C project (tests/bazel) builds offline and fills the cache; after
# `bazel clean --expunge` the next build runs nothing locally (every action a remote cache hit);
# a server that requires a token gets it as a header, and a client without it gets no hit.
helios=$1
. "$(dirname "$0")/testlib.sh" bazel
command -v bazel >/dev/null || { echo "FAIL: no bazel (make test installs bazel-bootstrap)"; exit 1; }
cp -r "$(dirname "$0")/../bazel" "$t/ws"
printf 'bazel-test-write-token-0001 write\n' >"$t/tokens" && chmod 600 "$t/tokens"
start_server "$t/store" --token-file "$t/tokens"
auth="--remote_header=Authorization=Bearer bazel-test-write-token-0001"
# the output root outside the workspace; one JVM per command, gone after it; no sandbox needed
bz() { (cd "$t/ws" && bazel --output_user_root="$t/root" --batch "$@") >"$t/bazel.out" 2>&1; }
summary() { grep -E "^INFO: [0-9]+ processes" "$t/bazel.out" | tail -1; }

bz build //:hello --spawn_strategy=local --remote_cache="$url/bazel" "$auth" && ok || bad "first build: $(tail -15 "$t/bazel.out")"
summary | grep -qE "3 local" && ok || bad "first build ran its 3 actions locally: $(summary)"
[ "$("$t/ws/bazel-bin/hello")" = "hello from a helios-cached build" ] && ok || bad "the first build's program"
bz clean --expunge && ok || bad "clean --expunge"
bz build //:hello --spawn_strategy=local --remote_cache="$url/bazel" "$auth" && ok || bad "second build: $(tail -15 "$t/bazel.out")"
summary | grep -qE "3 remote cache hit" && ! summary | grep -qE "local|sandbox" && ok || bad "second build: not all from the cache: $(summary)"
[ "$("$t/ws/bazel-bin/hello")" = "hello from a helios-cached build" ] && ok || bad "the cached program"
# the cache holds action results and outputs under /bazel/ac and /bazel/cas (SHA-256 keys)
objects=$(curl -sf -H "Authorization: Bearer bazel-test-write-token-0001" "$url/metrics" | sed -n 's/^helios_objects \([0-9]*\)/\1/p')
[ "${objects:-0}" -ge 6 ] && ok || bad "objects stored by the builds: $objects"
# without the token: Bazel is refused (it warns and builds locally)
bz clean --expunge
bz build //:hello --spawn_strategy=local --remote_cache="$url/bazel" && ok || bad "build without a token: $(tail -15 "$t/bazel.out")"
! summary | grep -q "remote cache hit" && grep -q "Remote Cache" "$t/bazel.out" && ok || bad "no token, yet: $(summary)"
bz shutdown
stop_within "$pid"; pid=
finish
