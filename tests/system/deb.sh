#!/usr/bin/env bash
# deb.sh — the Debian package: `make deb` builds it, lintian finds nothing (every override
# justified in debian/helios.lintian-overrides), `dpkg -i` installs the CLI, libhelios (a program
# builds against it with pkg-config), man pages, completion, the example config, the helios user
# and /var/lib/helios; the unit's sandbox scores ≤ 2.0 in `systemd-analyze security`; the unit's
# own ExecStart line, run as the helios user without systemd, serves (and tells a notify socket
# READY=1) and stops on SIGTERM; `dpkg --purge` removes the package. Needs root (exit 77: skipped).
helios=$1
. "$(dirname "$0")/testlib.sh" deb
root=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIPPED: installing a package needs root"; exit 77; }
if dpkg-query -W -f='${Status}' helios 2>/dev/null | grep -q "install ok"; then
  echo "FAIL: a helios package is installed already; not touching it"; exit 1
fi
had_user=$(getent passwd helios >/dev/null && echo 1)
had_state=$([ -e /var/lib/helios ] && echo 1)
srv=
cleanup_deb() {
  [ -n "$srv" ] && kill -9 "$srv" 2>/dev/null
  dpkg --purge helios >/dev/null 2>&1
  [ -z "$had_state" ] && rm -rf /var/lib/helios
  [ -z "$had_user" ] && getent passwd helios >/dev/null && deluser --system helios >/dev/null 2>&1
  cleanup
}
trap cleanup_deb EXIT

make -C "$root" --no-print-directory deb >"$t/make.log" 2>&1 && ok || { bad "make deb: $(tail -20 "$t/make.log")"; finish; exit 1; }
deb=$(ls "$root"/build-deb/helios_*_*.deb | grep -v dbgsym | head -1)
lintian "$deb" 2>/dev/null | grep -v "running with root" >"$t/lintian"
[ ! -s "$t/lintian" ] && ok || bad "lintian: $(cat "$t/lintian")"
dpkg -i "$deb" >"$t/dpkg.log" 2>&1 && ok || bad "dpkg -i: $(tail -5 "$t/dpkg.log")"

# what it holds
/usr/bin/helios --version | grep -q "^helios " && ok || bad "/usr/bin/helios"
[ -n "$(man -w helios 2>/dev/null)" ] && [ -n "$(man -w 5 helios.conf 2>/dev/null)" ] && [ -n "$(man -w 3 libhelios 2>/dev/null)" ] &&
  ok || bad "man pages not found by man -w"
[ -f /usr/share/bash-completion/completions/helios ] && [ -f /etc/helios/helios.conf ] && ok || bad "completion or example config"
dpkg-query -W -f='${Conffiles}' helios | grep -q /etc/helios/helios.conf && ok || bad "the example config is not a conffile"
getent passwd helios | grep -q ":/var/lib/helios:" && [ "$(stat -c %U /var/lib/helios)" = helios ] && ok || bad "the helios user or /var/lib/helios"
cat >"$t/prog.c" <<'EOF2'
#include <stdio.h>
#include <helios.h>
int main(int argc, char **argv)
{
	hl_store *s;
	hl_id id;
	hl_buf *b;
	if (argc < 2 || hl_open(argv[1], NULL, &s) || hl_put(s, "packaged", 8, &id, NULL) || hl_get(s, &id, &b))
		return 1;
	int ok = hl_buf_len(b) == 8;
	hl_buf_unref(b);
	hl_close(s);
	return ok ? 0 : 1;
}
EOF2
cc -o "$t/prog" "$t/prog.c" $(pkg-config --cflags --libs helios) 2>"$t/cc.err" && "$t/prog" "$t/pstore" &&
  ok || bad "a program built with pkg-config helios: $(cat "$t/cc.err")"
unit=/lib/systemd/system/helios.service
exposure=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for helios.service: \([0-9.]*\).*/\1/p')
awk -v e="$exposure" 'BEGIN{exit !(e != "" && e <= 2.0)}' && ok || bad "systemd-analyze security: exposure '$exposure' (want ≤ 2.0)"
grep -q "^Type=notify" "$unit" && grep -q "^User=helios" "$unit" && grep -q "^CapabilityBoundingSet=$" "$unit" && ok || bad "the unit's settings"

# the unit's own ExecStart, as the helios user, on a free loopback port, with a notify socket
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
python3 - "$t/notify" >"$t/notify.out" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(60)
import os; os.chmod(sys.argv[1], 0o777)
print(s.recv(512).decode().replace("\n", " "), flush=True)
PY
wait_for 30 test -S "$t/notify"
chmod 755 "$t"
start_bg unit serving env NOTIFY_SOCKET="$t/notify" setpriv --reuid=helios --regid=helios --init-groups \
  $exec_start --listen 127.0.0.1:0
srv=$bg_pid
url=$(sed -n 's|.*\(http://[^ ]*\).*|\1|p' "$t/unit.out")
[ -n "$url" ] && ok || bad "the unit's ExecStart did not serve: $(cat "$t/unit.err")"
wait_line "$t/notify.out" READY=1 && ok || bad "no READY=1 on the notify socket: $(cat "$t/notify.out")"
echo "through the service" >"$t/blob"
id=$(b3sum --no-names "$t/blob")
expect "PUT to the service" 201 "$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$t/blob" "$url/v1/blobs/$id")"
curl -sf "$url/v1/blobs/$id" | cmp -s - "$t/blob" && ok || bad "GET from the service"
[ "$(stat -c %U /var/lib/helios/segments 2>/dev/null)" = helios ] && ok || bad "the store is not the helios user's"
stop_within "$srv"; expect "the service's exit on SIGTERM" 0 $?; srv=

dpkg --purge helios >"$t/purge.log" 2>&1 && ok || bad "dpkg --purge: $(cat "$t/purge.log")"
[ ! -e /usr/bin/helios ] && [ ! -e /etc/helios ] && [ ! -e "$unit" ] && ok || bad "files left after purge"
grep -q "was kept" "$t/purge.log" && [ -d /var/lib/helios/segments ] && ok || bad "purge must keep a store that holds objects: $(cat "$t/purge.log")"
finish
