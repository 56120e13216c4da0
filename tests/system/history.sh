#!/usr/bin/env bash
# history.sh — agent history from the CLI and over HTTP: `snapshot --ref -m --meta` records
# commits; `log`, `show` and revisions (R~N, R^, prefixes, @{TIME}) in restore, ls and diff;
# `forget` (dry run, then for real) cuts history without touching what it keeps, and `gc` frees
# what only forgotten commits reached; GET /v1/log, /v1/commits and POST /v1/admin/forget; pull
# and push of revisions.
helios=$1
. "$(dirname "$0")/testlib.sh" history
export HELIOS_STORE=$t/store HELIOS_AUTHOR=agent-7

mkdir -p "$t/w/src"
printf 'int main(void) { return 0; }\n' >"$t/w/src/main.c"
printf 'version one\n' >"$t/w/README"
c1=$("$helios" snapshot -q --ref agents/7/main -m "first commit" --meta task=HEL-1 --meta model=m-1 "$t/w") &&
  ok || bad "snapshot --ref -m --meta"
cp -a "$t/w" "$t/w-one"
printf 'version two\n' >"$t/w/README"; printf 'new\n' >"$t/w/src/util.c"
c2=$("$helios" snapshot -q --ref agents/7/main -m "second commit
with a body" "$t/w")
rm "$t/w/src/util.c"; printf 'only in three: %s\n' "$RANDOM$RANDOM" >"$t/w/THREE"
c3=$("$helios" snapshot -q --ref agents/7/main -m "third commit" "$t/w")
expect "the ref names the newest commit" "$c3" "$("$helios" ref get agents/7/main | cut -c1-64)"

mkdir -p "$t/other"
# log: newest first, every field; --oneline, --limit, --json
"$helios" log agents/7/main >"$t/log" && ok || bad "log"
expect "log: commits" 3 "$(grep -c '^commit ' "$t/log")"
[ "$(grep '^commit ' "$t/log" | cut -c8-)" = "$(printf '%s\n%s\n%s' "$c3" "$c2" "$c1")" ] && ok || bad "log order: $(cat "$t/log")"
grep -q '^Author:  agent-7$' "$t/log" && grep -q '^Meta:    task=HEL-1$' "$t/log" &&
  grep -q '^    with a body$' "$t/log" && ok || bad "log fields: $(cat "$t/log")"
grep -q '1 added, 0 changed, 1 deleted' "$t/log" && ok || bad "log counts of the third commit: $(head -5 "$t/log")"
expect "log --oneline --limit 2" 2 "$("$helios" log --oneline --limit 2 agents/7/main | wc -l)"
"$helios" --json log agents/7/main >"$t/log.json"
python3 - "$t/log.json" "$c1" <<'PY' && ok || bad "log --json: $(head -c 600 "$t/log.json")"
import json, sys
log = json.load(open(sys.argv[1]))
assert len(log) == 3 and log[2]["id"] == sys.argv[2], log
assert log[2]["meta"] == {"model": "m-1", "task": "HEL-1"} and log[2]["parents"] == []
assert log[0]["parents"] == [log[1]["id"]] and log[0]["message"] == "third commit"
assert log[1]["added"] == 1 and log[1]["changed"] == 1 and log[1]["deleted"] == 0
PY

# show: the commit and its changes against its parent
"$helios" show agents/7/main~1 >"$t/show"
grep -q "^commit $c2" "$t/show" && grep -q '^A  src/util.c$' "$t/show" && grep -q '^M  README$' "$t/show" &&
  ok || bad "show: $(cat "$t/show")"

# revisions wherever a snapshot is named
"$helios" restore agents/7/main~2 "$t/r1" && diff -r "$t/w-one" "$t/r1" >/dev/null && ok || bad "restore R~2"
"$helios" restore "${c1:0:10}" "$t/r1b" && diff -r "$t/w-one" "$t/r1b" >/dev/null && ok || bad "restore by prefix"
"$helios" ls agents/7/main^ | grep -q ' src/util.c$' && ok || bad "ls R^"
expect "diff R~2 R" "M  README
A  THREE" "$("$helios" diff agents/7/main~2 agents/7/main)"
"$helios" ls 'agents/7/main@{2000-01-01}' 2>"$t/err"; rc=$?
[ $rc = 1 ] && grep -q "revision" "$t/err" && ok || bad "@{TIME} before history: exit $rc: $(cat "$t/err")"
"$helios" ls 'agents/7/main@{@9999999999}' >/dev/null && ok || bad "@{TIME} after history"
"$helios" ls 'agents/7/main~x' 2>"$t/err"; rc=$?
[ $rc = 2 ] && grep -q "no revision" "$t/err" && ok || bad "a malformed revision: exit $rc: $(cat "$t/err")"
"$helios" ls agents/7/main~5 2>"$t/err"; [ $? = 1 ] && ok || bad "an ancestor that is not there: $(cat "$t/err")"
"$helios" snapshot -m "no ref" "$t/w" 2>"$t/err"; [ $? = 2 ] && grep -q "give --ref" "$t/err" && ok || bad "-m without --ref"
"$helios" snapshot --ref agents/7/main --meta "bad key=1" "$t/w" 2>"$t/err"; rc=$?
[ $rc = 2 ] && grep -q "meta keys" "$t/err" && ok || bad "a bad meta key: exit $rc: $(cat "$t/err")"
expect "a refused commit does not move the ref" "$c3" "$("$helios" ref get agents/7/main | cut -c1-64)"

# over HTTP: the log, one commit, errors
start_server "$HELIOS_STORE"
curl -sf "$url/v1/log/agents/7/main?limit=2" >"$t/http.json" && ok || bad "GET /v1/log"
python3 - "$t/http.json" "$c3" "$c2" <<'PY' && ok || bad "/v1/log answer: $(cat "$t/http.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert [c["id"] for c in d["commits"]] == sys.argv[2:4] and isinstance(d["before"], int), d
PY
before=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["before"])' "$t/http.json")
curl -sf "$url/v1/log/agents/7/main?before=$before" | grep -q "\"id\": *\"$c1\"" && ok || bad "/v1/log?before= pages on"
curl -sf "$url/v1/commits/agents/7/main~1" | grep -q "\"id\": *\"$c2\"" && ok || bad "GET /v1/commits/R~1"
expect "/v1/log of no ref" 404 "$(curl -s -o "$t/body" -w '%{http_code}' "$url/v1/log/nosuch")"
grep -q '"error"' "$t/body" && ok || bad "an error body: $(cat "$t/body")"
expect "/v1/log of a bad revision" 400 "$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/log/agents/7/main~x")"
expect "/v1/log?limit=0" 400 "$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/log/agents/7/main?limit=0")"
curl -sf -X POST "$url/v1/admin/forget?keep_last=1&dry_run=1" >"$t/f.json" &&
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["forgotten"] == 2 and d["dry_run"], d' "$t/f.json" &&
  ok || bad "POST /v1/admin/forget dry run: $(cat "$t/f.json")"
# pull and push take revisions: the server resolves R~2; the commit comes along, its history not
"$helios" --store "$t/other" -q pull 'agents/7/main~2' --remote "$url" "$t/p1" && diff -r "$t/w-one" "$t/p1" >/dev/null &&
  ok || bad "pull of a revision"
"$helios" --store "$t/other" show "$c1" | grep -q "first commit" && ok || bad "the pulled commit is not stored"
"$helios" --store "$t/other" pull 'agents/7/main~9' --remote "$url" "$t/p2" 2>"$t/err"; rc=$?
[ $rc = 1 ] && ok || bad "pull of an ancestor that is not there: exit $rc: $(cat "$t/err")"
tree1=$("$helios" --store "$t/other" --json show "$c1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tree"])')
"$helios" --store "$t/other" -q push "${c1:0:12}" --remote "$url" --ref pushed/one >/dev/null && ok || bad "push of a revision"
curl -sf "$url/v1/refs/pushed/one" | grep -q "$tree1" && ok || bad "push of a revision: the ref names $(curl -s "$url/v1/refs/pushed/one")"
curl -sf -X DELETE -H "If-Match: \"$tree1\"" "$url/v1/refs/pushed/one" >/dev/null && ok || bad "delete pushed/one" # (it would keep c1's files)
expect "forget without a policy" 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/v1/admin/forget")"
stop_within "$pid"; pid=

# forget: a dry run changes nothing; then history is cut and gc frees the forgotten snapshots
three=$("$helios" ls agents/7/main~0 | awk '$NF == "THREE" {print $3}')
one_readme=$("$helios" ls agents/7/main~2 | awk '$NF == "README" {print $3}')
"$helios" forget --keep-last 2 --dry-run >"$t/forget" && ok || bad "forget --dry-run"
grep -q "^  keep   ${c3:0:12}" "$t/forget" && grep -q "^  forget ${c1:0:12}" "$t/forget" &&
  grep -q "1 would be forgotten" "$t/forget" && ok || bad "forget --dry-run output: $(cat "$t/forget")"
expect "a dry run forgets nothing" 3 "$("$helios" log --oneline agents/7/main | wc -l)"
"$helios" forget --keep-last 2 >"$t/forget" && ok || bad "forget"
"$helios" log agents/7/main >"$t/log"
expect "log after forget" 2 "$(grep -c '^commit ' "$t/log")"
grep -q "(older history forgotten)" "$t/log" && ok || bad "the cut is not shown: $(cat "$t/log")"
"$helios" restore agents/7/main~2 "$t/r2" 2>"$t/err"; rc=$?
[ $rc = 1 ] && grep -q "forgotten" "$t/err" && ok || bad "restore of a forgotten commit: exit $rc: $(cat "$t/err")"
"$helios" forget --keep-last 0 --keep-daily 0 2>"$t/err"; [ $? = 2 ] && grep -q "no policy" "$t/err" && ok || bad "forget without a policy"
"$helios" forget --keep-within 1x 2>"$t/err"; [ $? = 2 ] && ok || bad "forget --keep-within 1x"
sleep 2 # gc's grace below is 1 s: what was written in the last second is still young
"$helios" gc --grace 1s 2>"$t/err" && ok || bad "gc after forget: $(cat "$t/err")"
"$helios" has "$one_readme" >/dev/null; [ $? = 1 ] && ok || bad "the forgotten snapshot's file survived gc"
"$helios" has "$three" >/dev/null && ok || bad "a kept snapshot's file was collected"
"$helios" restore agents/7/main~1 "$t/r3" && ok || bad "a kept commit's snapshot after gc"
"$helios" verify 2>/dev/null && ok || bad "verify after forget and gc"
finish
