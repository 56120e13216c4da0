#!/usr/bin/env bash
# `make install` works for a library user: install into a temporary prefix, then compile, link and
# run a program against it using only `pkg-config helios`.
set -euo pipefail
build=$1
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cmake --install "$build" --prefix "$t/prefix" >/dev/null
pc=$(dirname "$(find "$t/prefix" -name helios.pc | head -n1)")
[ -n "$pc" ] || { echo "helios.pc not installed"; echo "0 passed, 1 failed"; exit 1; }
[ -x "$t/prefix/bin/helios" ] || { echo "CLI not installed"; echo "0 passed, 1 failed"; exit 1; }
cat > "$t/user.c" <<'C'
#include <helios.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
	hl_store *s;
	if (hl_open(argv[1], NULL, &s)) return 1;
	hl_id id; hl_buf *b;
	if (hl_put(s, "pkg-config", 10, &id, NULL) || hl_get(s, &id, &b)) return 2;
	int ok = hl_buf_len(b) == 10 && !memcmp(hl_buf_data(b), "pkg-config", 10);
	hl_buf_unref(b); hl_close(s);
	puts(ok ? "ok" : "mismatch");
	return !ok;
}
C
export PKG_CONFIG_PATH=$pc
# shellcheck disable=SC2046
cc -o "$t/user" "$t/user.c" $(pkg-config --cflags --libs helios) -Wl,-rpath,"$(pkg-config --variable=libdir helios)"
out=$("$t/user" "$t/store")
[ "$out" = ok ] && echo "1 passed, 0 failed" || { echo "program said: $out"; echo "0 passed, 1 failed"; exit 1; }
