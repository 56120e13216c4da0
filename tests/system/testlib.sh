# testlib.sh — sourced by the shell tests (`. testlib.sh TAG`): a scratch directory $t removed at
# exit (a server started by start_server is stopped first), pass/fail counting, background
# processes started and waited for (start_bg, wait_for, wait_line), and `helios serve` started on a
# free loopback port.
# Expects $helios to be set.
t=$(mktemp -d "${TMPDIR:-/tmp}/helios-$1.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  chmod -R u+w "$t" 2>/dev/null # restore tests leave read-only directories
  rm -rf "$t"
}
trap cleanup EXIT
# every curl of a test gives up after 60 s: a server that never answers fails the step that asked,
# instead of hanging the test until ctest's timeout
printf 'max-time = 60\n' >"$t/.curlrc"
export CURL_HOME=$t
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expect() { # expect WHAT WANT GOT
  if [ "$2" = "$3" ]; then ok; else bad "$1: want $2, got $3"; fi
}
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; }

# stop_within PID [SECONDS]: SIGTERM, then the process's exit status once it ends; one that has not
# ended after SECONDS (default 60) has its threads' stacks printed (when gdb is there) and is
# killed (status 124)
stop_within() {
  kill -TERM "$1" 2>/dev/null
  local tenths=$((${2:-60} * 10)) st
  for _ in $(seq "$tenths"); do
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    if [ -z "$st" ] || [ "$st" = Z ]; then wait "$1" 2>/dev/null; return $?; fi
    sleep 0.1
  done
  echo "process $1 did not stop within ${2:-60} s of SIGTERM"
  command -v gdb >/dev/null && gdb -p "$1" -batch -ex "thread apply all bt" 2>/dev/null | grep -E '^(Thread|#)'
  kill -9 "$1"; wait "$1"; return 124
}

# wait_for SECONDS COMMAND…: runs COMMAND every 0.1 s until it succeeds (returns 0) or SECONDS
# have passed (returns 1). wait_line FILE PATTERN [SECONDS]: waits (default 30 s) for a line of FILE
# to match PATTERN. A test waits for a condition, never for a fixed time.
wait_for() {
  local tenths=$(($1 * 10)); shift
  for _ in $(seq "$tenths"); do "$@" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
wait_line() { wait_for "${3:-30}" grep -q "$2" "$1"; }

# start_bg NAME PATTERN COMMAND…: runs COMMAND in the background, its stdout in $t/NAME.out and
# stderr in $t/NAME.err, and waits up to 30 s for a stdout line matching PATTERN; sets $bg_pid, and
# returns 1 when the line does not come. NAME.out is emptied here, not by the child's redirection,
# which may run after the wait has already read the line an earlier process left there.
start_bg() {
  local name=$1 pattern=$2; shift 2
  : >"$t/$name.out"
  "$@" >"$t/$name.out" 2>"$t/$name.err" &
  bg_pid=$!
  wait_line "$t/$name.out" "$pattern"
}

# start_server STORE [SERVE OPTIONS…]: runs `helios serve` on 127.0.0.1:0 in the background; sets
# $pid and $url (http://127.0.0.1:PORT, or https:// with TLS), or exits the test when it does not
# come up.
start_server() {
  local store=$1; shift
  start_bg serve serving "$helios" --store "$store" serve --listen 127.0.0.1:0 "$@"
  pid=$bg_pid
  url=$(sed -n 's|.*\(https\{0,1\}://[^ ]*\).*|\1|p' "$t/serve.out")
  [ -n "$url" ] || { echo "server did not start: $(cat "$t/serve.err")"; echo "0 passed, 1 failed"; exit 1; }
}
