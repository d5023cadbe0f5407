#!/usr/bin/python3
"""Side-by-side table and plot for scripts/surge-lab.

Usage: surge_lab_report.py OUT_DIR
Reads OUT_DIR/scenario.json and OUT_DIR/<config>-<mult>x/{surge,backend}.json,
writes OUT_DIR/results.json, results.md, series/*.dat and results.png (gnuplot).

Definitions (seconds are whole seconds of the surge run, t = 0 at its start):
- success %: intents with a successful attempt / intents, per class
  (citizen = citizen + citizen_backoff).
- backend goodput: mean backend served/s over the full seconds of the surge
  [step_at, back_at), as % of C.
- admitted p99: p99 latency of successes (checkpoint, citizens: the worse class).
- failure p99: p99 latency of failed attempts of the citizen classes (worse one).
- amplification: attempts / intents, all classes.
- converge: first second s >= step_at from which, until back_at, both backend
  served/s and the admitted (success) rate stay within 10% of their settled
  values (medians of the second half of the surge); reported as s - step_at,
  so 0 means within the first second after the step.
- recover: first second s >= back_at from which, until the end, successes/s
  stay within 10% of offered/s and backend served/s within 10% of offered/s;
  reported as s - back_at.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys


def pct(a, b):
    return 100.0 * a / b if b else None


def within(v, ref, tol=0.10):
    if ref == 0:
        return v == 0
    return abs(v - ref) <= tol * ref


def analyse(d, sc):
    surge = json.load(open(os.path.join(d, "surge.json")))
    backend = json.load(open(os.path.join(d, "backend.json")))
    C = sc["capacity_per_sec"]
    step_at, back_at, duration = sc["step_at_s"], sc["back_at_s"], sc["duration_s"]
    try:
        offset = float(open(os.path.join(d, "offset_s")).read())
    except (OSError, ValueError):
        offset = 0.0
    shift = int(round(offset))
    served = backend.get("served_per_sec", [])

    def backend_at(t):
        i = t + shift
        return served[i] if 0 <= i < len(served) else 0

    cls = surge["classes"]
    cp = cls.get("checkpoint", {})
    cit = [cls[k] for k in cls if k.startswith("citizen")]
    cit_intents = sum(c["intents"] for c in cit)
    cit_succ = sum(c["successes"] for c in cit)

    def p99(c, kind):
        lat = c.get("latency_ms", {}).get(kind, {})
        return lat.get("p99") if lat.get("count") else None

    def worst(vals):
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    series = {int(round(s["t"])): s for s in surge["series"]}
    n = int(duration)
    rows = []
    for t in range(n + 3):
        s = series.get(t, {})
        rows.append((t, s.get("offered", 0), s.get("attempts", 0), s.get("successes", 0),
                     s.get("failures", 0), backend_at(t)))

    hold = [r for r in rows if step_at <= r[0] < back_at]
    goodput = statistics.mean(r[5] for r in hold) if hold else 0
    second_half = [r for r in hold if r[0] >= (step_at + back_at) / 2]
    settled_b = statistics.median(r[5] for r in second_half) if second_half else 0
    settled_a = statistics.median(r[3] for r in second_half) if second_half else 0
    converge = None
    for s0 in range(step_at, back_at):
        if all(within(r[5], settled_b) and within(r[3], settled_a)
               for r in hold if r[0] >= s0):
            converge = s0 - step_at
            break
    tail = [r for r in rows if back_at <= r[0] < n]
    recover = None
    for s0 in range(back_at, n):
        if all(within(r[3], r[1]) and within(r[5], r[1]) for r in tail if r[0] >= s0):
            recover = s0 - back_at
            break
    ov = surge["overall"]
    return {
        "checkpoint_success_pct": pct(cp.get("successes", 0), cp.get("intents", 0)),
        "citizen_success_pct": pct(cit_succ, cit_intents),
        "backend_goodput_pct_of_C": pct(goodput, C),
        "backend_served_per_sec_surge": goodput,
        "settled_backend_per_sec": settled_b,
        "settled_admitted_per_sec": settled_a,
        "admitted_p99_ms": {"checkpoint": p99(cp, "success"),
                            "citizen": worst(p99(c, "success") for c in cit)},
        "failure_p99_ms": {"checkpoint": p99(cp, "failure"),
                           "citizen": worst(p99(c, "failure") for c in cit)},
        "amplification": ov.get("amplification"),
        "failures_by_kind": ov.get("failures_by_kind"),
        "converge_s": converge,
        "recover_s": recover,
        "backend": {k: backend.get(k) for k in ("served", "timed_out", "rejected", "latency_ms")},
        "classes": {k: {x: v[x] for x in ("intents", "attempts", "successes", "failures",
                                          "failures_by_kind")} for k, v in cls.items()},
    }, rows


def fmt(v, unit="", nd=1, none="-"):
    if v is None:
        return none
    return f"{v:.{nd}f}{unit}"


def main():
    out = sys.argv[1]
    sc = json.load(open(os.path.join(out, "scenario.json")))
    results = {"scenario": sc, "runs": {}}
    os.makedirs(os.path.join(out, "series"), exist_ok=True)
    plots = []
    for mult in sc["multipliers"]:
        for cfg in sc["configs"]:
            tag = f"{cfg}-{mult}x"
            d = os.path.join(out, tag)
            status = {}
            try:
                status = json.load(open(os.path.join(d, "status.json")))
            except OSError:
                status = {"status": "missing"}
            if status.get("status") != "ran":
                results["runs"][tag] = {"config": cfg, "multiplier": mult, **status}
                continue
            try:
                r, rows = analyse(d, sc)
            except (OSError, KeyError, ValueError) as e:
                results["runs"][tag] = {"config": cfg, "multiplier": mult, "status": "failed",
                                        "reason": str(e)}
                continue
            results["runs"][tag] = {"config": cfg, "multiplier": mult, "status": "ran", **r}
            dat = os.path.join(out, "series", f"{tag}.dat")
            with open(dat, "w") as f:
                f.write("# t offered attempts successes failures backend_served\n")
                for row in rows:
                    f.write(" ".join(str(x) for x in row) + "\n")
            plots.append((tag, dat))
    json.dump(results, open(os.path.join(out, "results.json"), "w"), indent=2)

    C = sc["capacity_per_sec"]
    lines = [f"# surge lab ({sc['mode']})", "",
             f"Backend C = {C} req/s ({sc['workers']} workers x {sc['service_time_ms']} ms, queue "
             f"{sc['queue']}, timeout {sc['request_timeout_ms']} ms); firewall: conntrack, new "
             f"connections over {sc['firewall_new_conn_limit']}/s dropped. Baseline "
             f"{sc['baseline_per_sec']}/s, step at {sc['step_at_s']} s, back at {sc['back_at_s']} s, "
             f"{sc['duration_s']} s. Checkpoint 5% of intents (backoff), citizens 75% immediate "
             f"retry + 20% backoff, 3 retries, client timeout {sc['client_timeout_ms']} ms.", "",
             "| config | surge | checkpoint ok | citizen ok | backend goodput (% of C) | "
             "admitted p99 ms (cp / cit) | failure p99 ms (cit) | amplification | converge s | "
             "recover s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for tag, r in results["runs"].items():
        if r.get("status") != "ran":
            lines.append(f"| {r['config']} | {r['multiplier']}x C | {r.get('status')}: "
                         f"{r.get('reason', '')} | | | | | | | |")
            continue
        lines.append(
            f"| {r['config']} | {r['multiplier']}x C | {fmt(r['checkpoint_success_pct'], '%')} | "
            f"{fmt(r['citizen_success_pct'], '%')} | {fmt(r['backend_goodput_pct_of_C'], '%')} | "
            f"{fmt(r['admitted_p99_ms']['checkpoint'])} / {fmt(r['admitted_p99_ms']['citizen'])} | "
            f"{fmt(r['failure_p99_ms']['citizen'])} | {fmt(r['amplification'], nd=2)} | "
            f"{fmt(r['converge_s'], nd=0, none='never')} | {fmt(r['recover_s'], nd=0, none='never')} |")
    lines += ["", "converge: 0 = settled within the first second after the step; "
              "never = not within 10% of the settled values until the surge ended.", ""]
    md = os.path.join(out, "results.md")
    open(md, "w").write("\n".join(lines))
    print("\n".join(lines))

    png = os.path.join(out, "results.png")
    if plots and shutil.which("gnuplot"):
        gp = [f"set terminal pngcairo size 1000,{300 * len(plots)} font ',9'",
              f"set output '{png}'",
              f"set multiplot layout {len(plots)},1",
              "set grid", "set key outside right", "set xlabel 'second'", "set ylabel 'per second'",
              "set logscale y", "set yrange [1:*]"]
        for tag, dat in plots:
            gp += [f"set title '{tag}'",
                   f"plot '{dat}' u 1:($2>0?$2:1/0) w l lw 2 t 'offered (intents)', "
                   f"'' u 1:($3>0?$3:1/0) w l t 'attempts', "
                   f"'' u 1:($4>0?$4:1/0) w l lw 2 t 'successes', "
                   f"'' u 1:($5>0?$5:1/0) w l t 'failures', "
                   f"'' u 1:($6>0?$6:1/0) w l lw 2 dt 2 t 'backend served', "
                   f"{C} w l lc 'black' dt 3 t 'C'"]
        gp.append("unset multiplot")
        gpf = os.path.join(out, "results.gp")
        open(gpf, "w").write("\n".join(gp) + "\n")
        subprocess.run(["gnuplot", gpf], check=False)
    print(f"\nPNG:  {png}" if os.path.exists(png) else "\nPNG: not made (no gnuplot?)")
    print(f"JSON: {os.path.join(out, 'results.json')}")
    print(f"table: {md}")


if __name__ == "__main__":
    main()
