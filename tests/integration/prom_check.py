#!/usr/bin/python3
"""Asks a Prometheus server (HTTP API) what it has scraped, for lab tests.

  prom_check.py URL target JOB --scrapes N --timeout S
      waits until JOB's target is up and has been scraped at least N times
  prom_check.py URL wait EXPR --timeout S
      waits until the instant query EXPR returns a non-empty result
  prom_check.py URL dashboard FILE
      runs every PromQL expression of a Grafana dashboard (panel targets,
      rows included, and annotations) with Grafana's variables replaced;
      each must succeed and return data, except in panels whose description
      says "DPDK only", "Fleet only" or "Adaptive only", which must only be
      valid PromQL

Exit status 0 on success, 1 on failure. Every wait is bounded by --timeout."""
import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# Grafana's built-in interval variables, at values that suit a 1 s scrape.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1m",
    "__interval_ms": "60000",
    "__range_ms": "60000",
    "__range_s": "60",
}


def api(url, path, params=None):
    """Returns the decoded JSON answer, errors included (HTTP 400/422 carry one)."""
    full = url.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(full, timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        try:
            return json.load(e)
        except ValueError:
            return {"status": "error", "error": "HTTP %d" % e.code}
    except (urllib.error.URLError, OSError) as e:
        return {"status": "error", "error": str(e)}


def query(url, expr):
    return api(url, "/api/v1/query", {"query": expr})


def until(deadline, probe, what):
    """Calls probe() until it returns True or the deadline passes."""
    last = None
    while True:
        ok, last = probe()
        if ok:
            return True
        if time.monotonic() > deadline:
            print("timed out waiting for %s; last answer: %s" % (what, last), file=sys.stderr)
            return False
        time.sleep(0.2)


def wait_target(url, job, scrapes, timeout):
    deadline = time.monotonic() + timeout

    def up():
        r = api(url, "/api/v1/targets", {"state": "active"})
        targets = [t for t in r.get("data", {}).get("activeTargets", []) if t["labels"].get("job") == job]
        return any(t["health"] == "up" for t in targets), targets

    def scraped():
        r = query(url, 'count_over_time(up{job="%s"}[5m])' % job)
        values = [float(s["value"][1]) for s in r.get("data", {}).get("result", [])]
        return bool(values) and min(values) >= scrapes, r

    if not until(deadline, up, "target %s up" % job):
        return 1
    if not until(deadline, scraped, "%d scrapes of %s" % (scrapes, job)):
        return 1
    print("target %s up, scraped %d+ times" % (job, scrapes))
    return 0


def wait_expr(url, expr, timeout):
    deadline = time.monotonic() + timeout

    def probe():
        r = query(url, expr)
        return r.get("status") == "success" and bool(r["data"]["result"]), r

    if not until(deadline, probe, expr):
        return 1
    print("seen: %s" % expr)
    return 0


def substitute(expr, variables):
    """Grafana's $name, ${name}, ${name:format} and [[name]] forms; longest names first."""
    for name in sorted(variables, key=len, reverse=True):
        value = variables[name]
        pattern = r"\$\{%s(?::[A-Za-z]+)?\}|\[\[%s\]\]|\$%s(?![A-Za-z0-9_])" % ((re.escape(name),) * 3)
        expr = re.sub(pattern, lambda _m: value, expr)
    return expr


def dashboard_queries(dash):
    """(where, expr, only) for every panel target and annotation with an expression; only
    is "dpdk", "fleet" or "adaptive" for panels of figures only a DPDK edge, a fleet member
    or an edge with boundary.adaptive has."""
    out = []

    def walk(panels):
        for p in panels:
            # Figures of a dataplane or a mode the scraped edge may not run:
            # valid PromQL is enough there ("Fleet only": the test's edge is
            # never a fleet member; fleet_xdp reads those figures itself).
            desc = p.get("description", "")
            only = ("fleet" if "Fleet only" in desc else "dpdk" if "DPDK only" in desc
                    else "adaptive" if "Adaptive only" in desc else None)
            for t in p.get("targets", []):
                if "expr" in t:
                    out.append(("panel %r %s" % (p.get("title"), t.get("refId")), t["expr"], only))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append(("annotation %r" % a.get("name"), a["expr"], None))
    return out


def check_dashboard(url, path, dpdk):
    with open(path) as f:
        dash = json.load(f)
    variables = dict(BUILTINS)
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "datasource":
            # "All" of a multi-value variable; a regex matching any value otherwise.
            variables[v["name"]] = v.get("allValue") or ".+"
    queries = dashboard_queries(dash)
    if not queries:
        print("FAIL: no PromQL expression found in %s" % path)
        return 1
    failures = 0
    for where, raw, only in queries:
        exempt = only in ("fleet", "adaptive") or (only == "dpdk" and not dpdk)
        expr = substitute(raw, variables)
        if "$" in expr:
            print("FAIL: %s: unknown Grafana variable left in %s" % (where, expr))
            failures += 1
            continue
        r = query(url, expr)
        ok = r.get("status") == "success"
        n = len(r["data"]["result"]) if ok else 0
        if ok and (n > 0 or exempt):
            verdict = "ok"
        else:
            verdict = "FAIL"
            failures += 1
        note = " (%s only: valid is enough)" % only if exempt else ""
        error = "" if ok else " error: %s" % r.get("error")
        print("%-4s %3d series  %s%s: %s%s" % (verdict, n, where, note, expr, error))
    print("%d expressions, %d failed" % (len(queries), failures))
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("target")
    t.add_argument("job")
    t.add_argument("--scrapes", type=int, default=3)
    t.add_argument("--timeout", type=float, default=30)
    w = sub.add_parser("wait")
    w.add_argument("expr")
    w.add_argument("--timeout", type=float, default=20)
    d = sub.add_parser("dashboard")
    d.add_argument("file")
    d.add_argument("--dpdk", action="store_true",
                   help="sluiced runs DPDK: DPDK-only panels must have data too")
    a = p.parse_args()
    if a.cmd == "target":
        return wait_target(a.url, a.job, a.scrapes, a.timeout)
    if a.cmd == "wait":
        return wait_expr(a.url, a.expr, a.timeout)
    return check_dashboard(a.url, a.file, a.dpdk)


if __name__ == "__main__":
    sys.exit(main())
