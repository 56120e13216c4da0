#!/usr/bin/env bash
# monitoring.sh — what ships for Prometheus and Grafana: contrib/prometheus/helios.rules.yml passes
# `promtool check rules` and its unit tests on synthetic series (`promtool test rules`), and every
# metric that a rule or a panel of contrib/grafana/helios.json queries is one a running
# `helios serve` exports on /metrics (a histogram's _bucket/_sum/_count by its name).
helios=$1
. "$(dirname "$0")/testlib.sh" monitoring
contrib=$(cd "$(dirname "$0")/../../contrib" && pwd)
promtool check rules "$contrib/prometheus/helios.rules.yml" >"$t/out" 2>&1 && ok || bad "promtool check rules: $(cat "$t/out")"
(cd "$contrib/prometheus" && promtool test rules helios.rules.test.yml) >"$t/out" 2>&1 && ok || bad "promtool test rules: $(cat "$t/out")"
start_server "$t/store"
curl -sf "$url/metrics" >"$t/metrics" && ok || bad "GET /metrics"
python3 - "$t/metrics" "$contrib/grafana/helios.json" "$contrib/prometheus/helios.rules.yml" <<'PY' && ok || bad "metric names (above)"
import json, re, sys
exported = set()
for line in open(sys.argv[1]):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        exported.add(m.group(1))
        if m.group(2) == "histogram":
            exported.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
builtin = {"up"}
def names(expr):
    expr = re.sub(r'"[^"]*"', '""', expr)              # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)              # selectors
    expr = re.sub(r"\[[^\]]*\]", "", expr)             # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
            if w.startswith("helios_") or w in builtin}
dash = json.load(open(sys.argv[2]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
assert len(dash["panels"]) >= 10 and all(p.get("targets") for p in dash["panels"]), "a panel without a query"
assert all(p.get("datasource") for p in dash["panels"]), "a panel without a data source"
for v in dash["templating"]["list"]:
    if "definition" in v:
        exprs.append(v["definition"])
exprs += re.findall(r"^\s*expr:\s*(.+)$", open(sys.argv[3]).read(), re.M)
missing = {n for e in exprs for n in names(e)} - exported - builtin
used = {n for e in exprs for n in names(e)}
wanted = {"helios_http_responses_total", "helios_op_duration_seconds_bucket", "helios_l1_hits_total",
          "helios_l2_hits_total", "helios_store_puts_new_total", "helios_health_score",
          "helios_scrub_bytes_total", "helios_sync_seconds_total"}
assert not wanted - used, "the dashboard lacks %s" % sorted(wanted - used)
if missing:
    print("queried but not exported:", sorted(missing))
    sys.exit(1)
print(len(exprs), "queries,", len(used), "metrics, all exported")
PY
stop_within "$pid"; pid=
finish
