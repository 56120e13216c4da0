#!/usr/bin/env bash
# docs.sh — the man pages and the shell completion: helios(1), helios.conf(5) and libhelios(3)
# render with `man -l` without a warning, helios(1) covers every command `helios --help` lists
# and helios.conf(5) every key the config accepts; bash completion completes commands, options,
# ref names from the store the command line names, and directories.
helios=$1
. "$(dirname "$0")/testlib.sh" docs
root=$(cd "$(dirname "$0")/../.." && pwd)
for page in man/helios.1 man/helios.conf.5 man/libhelios.3; do
  MANWIDTH=80 man --warnings -l "$root/$page" >"$t/out" 2>"$t/err"
  [ -s "$t/out" ] && [ ! -s "$t/err" ] && ok || bad "$page: $(head -3 "$t/err")"
done
rendered=$(MANWIDTH=200 man -l "$root/man/helios.1" 2>/dev/null | col -b)
for cmd in $("$helios" --help | sed -n '/^commands:/,/^$/p' | awk '/^  [a-z]/ {print $1}' | sort -u); do
  grep -qE "^ +$cmd( |$)" <<<"$rendered" && ok || bad "helios(1) does not describe '$cmd'"
done
conf=$(MANWIDTH=200 man -l "$root/man/helios.conf.5" 2>/dev/null | col -b)
for key in $(grep -o '"--[a-z0-9-]*"' "$root/src/cli/config.c" "$root/src/cli/cmd_serve.c" | cut -d'"' -f2 | sort -u); do
  case $key in --help | -- | --s3-secret-key | --remote-token) continue ;; esac
  k=${key#--}; k=${k#s3-}
  grep -qE "^ +$k = " <<<"$conf" && ok || bad "helios.conf(5) does not describe '$k'"
done

# completion, in a bash that has sourced it
export HELIOS_STORE=$t/store
mkdir -p "$t/w/sub" && echo x >"$t/w/f"
"$helios" snapshot -q --ref agents/7/main "$t/w" >/dev/null
"$helios" --store "$t/other" snapshot -q --ref other/only "$t/w" >/dev/null
complete_line() { # complete_line WORD... : what Tab offers for the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _helios; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$root/contrib/bash-completion/helios" "$helios" "$@" | sort | tr '\n' ' '
}
expect "commands" "serve show snapshot stats " "$(complete_line s)"
expect "snapshot options" "--ref --retry " "$(complete_line snapshot --re)"
expect "forget options" "--keep-daily " "$(complete_line forget --keep-d)"
expect "refs for log" "agents/7/main " "$(complete_line log ag)"
expect "refs of the store named" "other/only " "$(complete_line --store "$t/other" log o)"
expect "ref subcommands" "delete " "$(complete_line ref d)"
expect "restore: a revision, then a directory" "$t/w/sub " "$(complete_line restore agents/7/main "$t/w/s")"
expect "--sync values" "batch " "$(complete_line put --sync b)"
finish
