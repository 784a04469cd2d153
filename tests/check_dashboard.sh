#!/bin/sh
# check_dashboard.sh — the Grafana dashboard in port/grafana/ is importable
# and queries what llmproxy exports:
#   - valid JSON (python3 -m json.tool), with what an import needs: a
#     Prometheus datasource input, a uid, schemaVersion >= 38, the instance
#     and backend variables, panels with unique ids that fit the 24-column grid
#     without overlapping, every query on the input's datasource;
#   - every PromQL expression (panels and variables, with Grafana's
#     $variables given sample values) accepted by `promtool check rules`;
#   - every metric it names is one src/metrics.c renders, and the panels the
#     observability issue asks for are all there.
#
# Usage: tests/check_dashboard.sh [dashboard.json]
# Needs python3 and promtool (Debian package prometheus; $PROMTOOL_BIN
# overrides).  Exits 0 when all is well, 1 with the reasons otherwise.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
dash=${1:-$top/port/grafana/llmproxy.json}
metrics_c=$top/src/metrics.c
promtool=${PROMTOOL_BIN:-promtool}

fail() {
	echo "check_dashboard: $*" >&2
	exit 1
}

command -v python3 >/dev/null 2>&1 || fail "python3 not found"
command -v "$promtool" >/dev/null 2>&1 ||
	fail "$promtool not found (install the Debian package prometheus: make test-deps)"
[ -r "$dash" ] || fail "cannot read $dash"

python3 -m json.tool "$dash" >/dev/null || fail "$dash is not valid JSON"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_dashboard.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

python3 - "$dash" "$metrics_c" "$tmp/rules.yml" <<'EOF' || exit 1
import json, os, re, sys

dash_path, metrics_c, rules_path = sys.argv[1:4]
errors = []

def err(msg):
    errors.append(msg)

with open(dash_path) as f:
    d = json.load(f)

# ---- what an import needs -------------------------------------------------
inputs = d.get("__inputs", [])
ds_inputs = [i for i in inputs if i.get("type") == "datasource"
             and i.get("pluginId") == "prometheus"]
if len(ds_inputs) != 1:
    err("__inputs must have exactly one Prometheus datasource input")
ds_uid = "${%s}" % ds_inputs[0]["name"] if ds_inputs else None
if not d.get("uid"):
    err("no uid")
if not d.get("title"):
    err("no title")
if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 38:
    err("schemaVersion %r: Grafana 10 wants 38 or later" % d.get("schemaVersion"))
if d.get("id") is not None:
    err("id must be null in an exported dashboard")

variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
for name in ("instance", "backend"):
    if name not in variables:
        err("no $%s variable" % name)
backend_q = variables.get("backend", {}).get("definition", "")
if not re.match(r"label_values\(llmproxy_backend_up(\{[^}]*\})?,\s*backend\)$", backend_q):
    err("$backend must come from label_values(llmproxy_backend_up, backend), not %r"
        % backend_q)

def datasource_ok(where, ds):
    if ds_uid is not None and (not isinstance(ds, dict) or ds.get("uid") != ds_uid
                               or ds.get("type") != "prometheus"):
        err("%s: datasource %r, want the input %s" % (where, ds, ds_uid))

# ---- panels ------------------------------------------------------------------
flat = []
for p in d.get("panels", []):
    flat.append(p)
    flat.extend(p.get("panels", []))

ids = [p.get("id") for p in flat]
if len(set(ids)) != len(ids) or not all(isinstance(i, int) for i in ids):
    err("panel ids must be unique integers: %r" % ids)

boxes = []
for p in flat:
    name = "panel %r (%s)" % (p.get("title"), p.get("id"))
    g = p.get("gridPos", {})
    if not all(isinstance(g.get(k), int) for k in "hwxy"):
        err("%s: gridPos %r" % (name, g))
        continue
    if g["x"] < 0 or g["w"] <= 0 or g["x"] + g["w"] > 24:
        err("%s: outside the 24 columns: %r" % (name, g))
    for other, og in boxes:
        if (g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"] and
                g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]):
            err("%s overlaps %s" % (name, other))
    boxes.append((name, g))

exprs = []      # (where, expr)
for p in flat:
    if p.get("type") == "row":
        continue
    name = "panel %r" % p.get("title")
    if not p.get("title"):
        err("panel %s has no title" % p.get("id"))
    datasource_ok(name, p.get("datasource"))
    targets = p.get("targets") or []
    if not targets:
        err("%s: no queries" % name)
    refs = [t.get("refId") for t in targets]
    if len(set(refs)) != len(refs) or None in refs:
        err("%s: refIds %r" % (name, refs))
    for t in targets:
        datasource_ok("%s %s" % (name, t.get("refId")), t.get("datasource"))
        if not t.get("expr"):
            err("%s %s: no expr" % (name, t.get("refId")))
        else:
            exprs.append(("%s %s" % (name, t.get("refId")), t["expr"]))

for name, v in variables.items():
    q = v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    datasource_ok("variable $%s" % name, v.get("datasource"))
    m = re.match(r"label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$", q or "")
    if not m:
        err("variable $%s: not label_values(metric, label): %r" % (name, q))
        continue
    exprs.append(("variable $%s" % name, "group by (%s) (%s)" % (m.group(2), m.group(1))))

# ---- Grafana's variables, given values PromQL accepts -------------------------
sample = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h",
          "instance": ".*", "backend": ".*"}

def substitute(where, expr):
    def one(m):
        name = m.group(1) or m.group(2)
        if name not in sample:
            err("%s: unknown variable $%s" % (where, name))
            return "x"
        return sample[name]
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}|\$([A-Za-z_][A-Za-z0-9_]*)",
                  one, expr)

promql = [(w, substitute(w, e)) for w, e in exprs]

# ---- metric names: what src/metrics.c renders ----------------------------------
known = None
if os.path.exists(metrics_c):
    with open(metrics_c) as f:
        known = set(re.findall(r'"((?:llmproxy|process)_[a-z0-9_]+)"', f.read()))
    for w, e in promql:
        for name in re.findall(r"\b((?:llmproxy|process)_[a-z0-9_]+)", e):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name not in known and base not in known:
                err("%s: %s is not a metric llmproxy exports" % (w, name))

# ---- the panels the observability issue asks for --------------------------------
all_exprs = "\n".join(e for _, e in exprs)
wanted = [
    ("TTFT p50", r"histogram_quantile\(0\.5, sum by \(le[^)]*\) \(rate\(llmproxy_ttft_seconds_bucket"),
    ("TTFT p95", r"histogram_quantile\(0\.95, sum by \(le[^)]*\) \(rate\(llmproxy_ttft_seconds_bucket"),
    ("TTFT p99", r"histogram_quantile\(0\.99, sum by \(le[^)]*\) \(rate\(llmproxy_ttft_seconds_bucket"),
    ("inter-token p50", r"histogram_quantile\(0\.5, [^\n]*llmproxy_inter_token_seconds_bucket"),
    ("inter-token p99", r"histogram_quantile\(0\.99, [^\n]*llmproxy_inter_token_seconds_bucket"),
    ("tokens per second by backend",
     r"sum by \(backend\) \(rate\(llmproxy_usage_tokens_total\{[^}]*type=\"completion\""),
    ("requests by status", r"sum by \(status\) \(rate\(llmproxy_requests_total"),
    ("in flight", r"llmproxy_in_flight_requests"),
    ("backend up/down", r"llmproxy_backend_up"),
    ("retries", r"llmproxy_retries_total"),
    ("client aborts", r"llmproxy_client_aborts_total"),
    ("webhook success", r"llmproxy_webhook_success_total"),
    ("webhook failure", r"llmproxy_webhook_failure_total"),
    ("webhook dropped", r"llmproxy_webhook_dropped_total"),
    ("queue depth", r"llmproxy_webhook_queue_depth"),
    ("spool bytes", r"llmproxy_webhook_spool_bytes"),
    ("process memory", r"process_resident_memory_bytes"),
    ("process CPU", r"rate\(process_cpu_seconds_total"),
]
for what, rx in wanted:
    if not re.search(rx, all_exprs):
        err("no panel for %s (no query matches /%s/)" % (what, rx))

# ---- every expression as a recording rule, for promtool -------------------------
seen = set()
with open(rules_path, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    n = 0
    for w, e in promql:
        if e in seen:
            continue
        seen.add(e)
        n += 1
        f.write("      # %s\n" % w.replace("\n", " "))
        f.write("      - record: dashboard:expr_%d\n" % n)
        f.write("        expr: %s\n" % json.dumps(e))

if errors:
    for e in errors:
        print("check_dashboard: " + e, file=sys.stderr)
    sys.exit(1)
print("check_dashboard: %d panels, %d queries (%d distinct) in %s" %
      (len([p for p in flat if p.get("type") != "row"]), len(exprs), len(seen),
       os.path.basename(dash_path)))
EOF

if ! "$promtool" check rules "$tmp/rules.yml" >"$tmp/out" 2>&1; then
	cat "$tmp/out" >&2
	fail "promtool rejects a query (the rules file lists each with its panel):
$(cat "$tmp/rules.yml")"
fi
echo "check_dashboard: promtool accepts every query"
