#!/usr/bin/python3
"""Side-by-side table and plot for scripts/surge-lab.

Usage: surge_lab_report.py OUT_DIR
Reads OUT_DIR/scenario.json and OUT_DIR/<tag>/{run,surge,backend}.json, writes
OUT_DIR/results.json, results.md, series/*.dat and results.png (gnuplot).

Definitions (seconds are whole seconds of the surge run, t = 0 at its start;
"the surge" is the full seconds [step_at, back_at)):
- useful goodput: answers delivered to a client before its timeout (the
  load generator's successes: a late answer is a timeout), per second of the
  surge, as % of C. This is the figure an admission system must keep near C.
- backend goodput: backend served/s over the surge, as % of C (it counts work
  nobody waited for).
- offered: intents/s the generator started during the surge, as % of what
  was requested (at 100x the generator may not keep up).
- checkpoint ok: checkpoint intents (one lookup) that got an answer.
- citizen sessions ok: citizen intents (three lookups from one address) whose
  every lookup got an answer; citizen sessions/s: those completed per second
  of the surge (the figure sticky shedding is for).
- failure p99: p99 latency of failed attempts of the citizen classes.
- amplification: attempts / lookups the intents would make if every one
  succeeded (intents x lookups per intent), all classes.
- converge: first second s >= step_at from which, until back_at, both backend
  served/s and useful answers/s stay within 10% of their settled values
  (medians of the second half of the surge); reported as s - step_at.
- recover: first second s >= back_at from which, until the end, >= 90% of
  the attempts that ended in each second got a useful answer; s - back_at.
- adaptive runs (a capacity schedule): per second of the surge, the
  backend's capacity at the time (C x the schedule's factor); outside a 2 s
  settling window after each capacity change, a second is within targets
  when useful answers >= 85% of that capacity and >= 99% of the checkpoint
  scans that ended in it succeeded; rate: sluice_adaptive_rate summed over
  the edges (sampled every 0.5 s).
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
    run = json.load(open(os.path.join(d, "run.json")))
    surge = json.load(open(os.path.join(d, "surge.json")))
    backend = json.load(open(os.path.join(d, "backend.json")))
    C = run["capacity_per_sec"]
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
    cit_sessions = sum(c.get("sessions", {}).get("completed", 0) for c in cit)

    def p99(c, kind):
        lat = c.get("latency_ms", {}).get(kind, {})
        return lat.get("p99") if lat.get("count") else None

    def worst(vals):
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    series = {int(round(s["t"])): s for s in surge["series"]}
    cit_completed = {}
    for k, ser in surge.get("series_by_class", {}).items():
        if k.startswith("citizen"):
            for x in ser:
                t = int(round(x["t"]))
                cit_completed[t] = cit_completed.get(t, 0) + x.get("sessions_completed", 0)
    n = int(duration)
    rows = []
    for t in range(n + 3):
        s = series.get(t, {})
        rows.append((t, s.get("offered", 0), s.get("attempts", 0), s.get("successes", 0),
                     s.get("failures", 0), backend_at(t), s.get("sessions_completed", 0)))

    hold = [r for r in rows if step_at <= r[0] < back_at]
    mean = lambda k: statistics.mean(r[k] for r in hold) if hold else 0
    useful, goodput, sessions, offered = mean(3), mean(5), mean(6), mean(1)
    cit_rate = statistics.mean(cit_completed.get(r[0], 0) for r in hold) if hold else 0
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
        if all(r[3] >= 0.9 * (r[3] + r[4]) for r in tail if r[0] >= s0):
            recover = s0 - back_at
            break
    adaptive = adaptive_seconds(d, sc, C, offset, series, surge) if sc.get("capacity_schedule") \
        else None
    ov = surge["overall"]
    lookups_asked = ov.get("intents", 0) * sc["lookups_per_intent"]
    return {
        **{k: run[k] for k in ("backend", "population", "capacity_per_sec", "citizen_sources",
                               "requested_lookups_per_sec", "requested_intents_per_sec")},
        "offered_pct_of_requested": pct(offered, run["requested_intents_per_sec"]),
        "checkpoint_success_pct": pct(cp.get("successes", 0), cp.get("intents", 0)),
        "citizen_session_pct": pct(cit_sessions, cit_intents),
        "sessions_per_sec_surge": sessions,
        "citizen_sessions_per_sec_surge": cit_rate,
        "useful_goodput_pct_of_C": pct(useful, C),
        "useful_per_sec_surge": useful,
        "backend_goodput_pct_of_C": pct(goodput, C),
        "backend_served_per_sec_surge": goodput,
        "settled_backend_per_sec": settled_b,
        "settled_useful_per_sec": settled_a,
        "admitted_p99_ms": {"checkpoint": p99(cp, "success"),
                            "citizen": worst(p99(c, "success") for c in cit)},
        "failure_p99_ms": {"checkpoint": p99(cp, "failure"),
                           "citizen": worst(p99(c, "failure") for c in cit)},
        "amplification": ov.get("attempts", 0) / lookups_asked if lookups_asked else None,
        "failures_by_kind": ov.get("failures_by_kind"),
        "converge_s": converge,
        "recover_s": recover,
        "adaptive": adaptive,
        "backend": {k: backend.get(k) for k in ("served", "timed_out", "rejected", "latency_ms")},
        "backend_kind": run["backend"],
        "classes": {k: {x: v.get(x) for x in ("intents", "sessions", "attempts", "successes",
                                              "failures", "failures_by_kind")}
                    for k, v in cls.items()},
    }, rows


def schedule(sc):
    """[(backend second, factor)] of the scenario's capacity schedule."""
    steps = []
    for entry in (sc.get("capacity_schedule") or "").split(","):
        if entry:
            at, factor = entry.split(":")
            steps.append((float(at), float(factor)))
    return steps


def factor_at(steps, t):
    f = 1.0
    for at, factor in steps:
        if t >= at:
            f = factor
    return f


def adaptive_seconds(d, sc, C, offset, series, surge):
    steps = schedule(sc)
    step_at, back_at = sc["step_at_s"], sc["back_at_s"]
    changes = [at - offset for at, _ in steps]  # in the surge's seconds
    cp = {int(round(x["t"])): x for x in surge.get("series_by_class", {}).get("checkpoint", [])}
    rates = []
    try:
        for line in open(os.path.join(d, "adaptive.tsv")):
            parts = line.split()
            vals = [float(v) for v in parts[1:] if v not in ("-", "")]
            if vals:
                rates.append((float(parts[0]), sum(vals)))
    except (OSError, ValueError):
        pass
    per_sec, failing = [], []
    for t in range(step_at, back_at):
        cap = C * factor_at(steps, t + 0.5 + offset)
        useful = series.get(t, {}).get("successes", 0)
        c = cp.get(t, {})
        done, failed = c.get("sessions_completed", 0), c.get("sessions_failed", 0)
        cp_pct = pct(done, done + failed)
        settling = any(int(ch) <= t < ch + 2 for ch in changes)
        in_sec = [r for (x, r) in rates if t <= x < t + 1]
        rate = statistics.mean(in_sec) if in_sec else None
        ok = useful >= 0.85 * cap and (cp_pct is None or cp_pct >= 99)
        per_sec.append({"t": t, "capacity": cap, "useful": useful, "checkpoint_pct": cp_pct,
                        "rate": rate, "settling": settling, "ok": ok})
        if not settling and not ok:
            failing.append(t)
    checked = [x for x in per_sec if not x["settling"]]
    phases = []
    bounds = [step_at] + [int(ch) for ch in changes if step_at < ch < back_at] + [back_at]
    for a, b in zip(bounds, bounds[1:]):
        xs = [x for x in per_sec if a <= x["t"] < b]
        rs = [x["rate"] for x in xs if x["rate"] is not None]
        phases.append({"from": a, "to": b,
                       "capacity": xs[len(xs) // 2]["capacity"] if xs else None,
                       "useful_pct_of_capacity": pct(sum(x["useful"] for x in xs),
                                                     sum(x["capacity"] for x in xs)),
                       "mean_rate": statistics.mean(rs) if rs else None})
    with open(os.path.join(d, "adaptive-series.dat"), "w") as f:
        f.write("# t capacity useful rate\n")
        for x in per_sec:
            f.write(f"{x['t']} {x['capacity']} {x['useful']} "
                    f"{x['rate'] if x['rate'] is not None else '-'}\n")
    return {"seconds_checked": len(checked), "seconds_ok": sum(1 for x in checked if x["ok"]),
            "failing_seconds": failing,
            "min_useful_pct_of_capacity": min((pct(x["useful"], x["capacity"]) for x in checked),
                                              default=None),
            "min_checkpoint_pct": min((x["checkpoint_pct"] for x in checked
                                       if x["checkpoint_pct"] is not None), default=None),
            "phases": phases, "per_second": per_sec}


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
    for spec in sc["runs"]:
        cfg, mult, backend, population = spec.split(":")
        tag = f"{cfg}-{mult}x" + ("-collapsing" if backend == "collapsing" else "") + \
            ("-10k" if population == "10k" else "")
        d = os.path.join(out, tag)
        head = {"config": cfg, "multiplier": int(mult), "backend_kind": backend,
                "population": population}
        try:
            status = json.load(open(os.path.join(d, "status.json")))
        except OSError:
            status = {"status": "missing"}
        if status.get("status") != "ran":
            results["runs"][tag] = {**head, **status}
            continue
        try:
            r, rows = analyse(d, sc)
        except (OSError, KeyError, ValueError) as e:
            results["runs"][tag] = {**head, "status": "failed", "reason": str(e)}
            continue
        results["runs"][tag] = {**head, "status": "ran", **r}
        dat = os.path.join(out, "series", f"{tag}.dat")
        with open(dat, "w") as f:
            f.write("# t offered attempts successes failures backend_served sessions_completed\n")
            for row in rows:
                f.write(" ".join(str(x) for x in row) + "\n")
        plots.append((tag, dat, r["capacity_per_sec"]))
    json.dump(results, open(os.path.join(out, "results.json"), "w"), indent=2)

    lines = [f"# surge lab ({sc['mode']})", "",
             f"Baseline C/2 lookups/s, step at {sc['step_at_s']} s to the surge, back at "
             f"{sc['back_at_s']} s, {sc['duration_s']} s. Intents: 5% checkpoint scans (1 lookup, "
             f"backoff), 95% citizen sessions of {sc['session_lookups']} lookups from one address "
             f"(75% retry at once, 25% back off), 3 retries per lookup, client timeout "
             f"{sc['client_timeout_ms']} ms.", "",
             "| config | surge | backend | citizens | offered | checkpoint ok | "
             "citizen sessions ok | citizen sessions/s | useful goodput (% of C) | "
             "backend goodput (% of C) | failure p99 ms | amplification | converge s | "
             "recover s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for tag, r in results["runs"].items():
        if r.get("status") != "ran":
            lines.append(f"| {r['config']} | {r['multiplier']}x C | {r['backend_kind']} | "
                         f"{r['population']} | {r.get('status')}: {r.get('reason', '')} "
                         f"| | | | | | | | | |")
            continue
        lines.append(
            f"| {r['config']} | {r['multiplier']}x C={r['capacity_per_sec']} | {r['backend_kind']} | "
            f"{r['citizen_sources']} | {fmt(r['offered_pct_of_requested'], '%', 0)} | "
            f"{fmt(r['checkpoint_success_pct'], '%')} | {fmt(r['citizen_session_pct'], '%')} | "
            f"{fmt(r['citizen_sessions_per_sec_surge'])} | {fmt(r['useful_goodput_pct_of_C'], '%')} | "
            f"{fmt(r['backend_goodput_pct_of_C'], '%')} | {fmt(r['failure_p99_ms']['citizen'])} | "
            f"{fmt(r['amplification'], nd=2)} | {fmt(r['converge_s'], nd=0, none='never')} | "
            f"{fmt(r['recover_s'], nd=0, none='never')} |")
    lines += ["", "converge: 0 = settled within the first second after the step; "
              "never = not within 10% of the settled values until the surge ended. "
              "recover: never = more than 10% of the attempts still failed in some second to the end.", ""]
    adaptive_runs = [(t, r) for t, r in results["runs"].items()
                     if r.get("status") == "ran" and r.get("adaptive")]
    if adaptive_runs:
        lines += [f"Capacity schedule (backend seconds:factor of C): {sc['capacity_schedule']}. "
                  "Seconds within targets: useful >= 85% of the capacity at the time and "
                  "checkpoint >= 99%, outside 2 s after each capacity change.", "",
                  "| config | seconds within targets | min useful (% of capacity) | "
                  "min checkpoint ok | useful per phase (% of capacity) | mean rate per phase |",
                  "|---|---|---|---|---|---|"]
        for tag, r in adaptive_runs:
            a = r["adaptive"]
            phases = " / ".join(fmt(p["useful_pct_of_capacity"], "%") for p in a["phases"])
            rates = " / ".join(fmt(p["mean_rate"], nd=0) + f" (C={p['capacity']:g})"
                               for p in a["phases"])
            lines.append(f"| {r['config']} | {a['seconds_ok']}/{a['seconds_checked']} | "
                         f"{fmt(a['min_useful_pct_of_capacity'], '%')} | "
                         f"{fmt(a['min_checkpoint_pct'], '%')} | {phases} | {rates} |")
        lines.append("")
    md = os.path.join(out, "results.md")
    open(md, "w").write("\n".join(lines))
    print("\n".join(lines))

    png = os.path.join(out, "results.png")
    if plots and shutil.which("gnuplot"):
        cols = 2 if len(plots) > 1 else 1
        rows_n = (len(plots) + cols - 1) // cols
        gp = [f"set terminal pngcairo size {700 * cols},{260 * rows_n} font ',8'",
              f"set output '{png}'",
              f"set multiplot layout {rows_n},{cols}",
              "set grid", "set key top right font ',7'", "set xlabel 'second'",
              "set ylabel 'per second'", "set logscale y", "set yrange [1:*]"]
        for tag, dat, C in plots:
            gp += [f"set title '{tag}'",
                   f"plot '{dat}' u 1:($2>0?$2:1/0) w l lw 2 t 'offered (intents)', "
                   f"'' u 1:($3>0?$3:1/0) w l t 'attempts', "
                   f"'' u 1:($4>0?$4:1/0) w l lw 2 t 'useful answers', "
                   f"'' u 1:($7>0?$7:1/0) w l lw 2 t 'sessions completed', "
                   f"'' u 1:($5>0?$5:1/0) w l t 'failures', "
                   f"'' u 1:($6>0?$6:1/0) w l lw 2 dt 2 t 'backend served', "
                   f"{C} w l lc 'black' dt 3 t 'C'"]
        gp.append("unset multiplot")
        gpf = os.path.join(out, "results.gp")
        open(gpf, "w").write("\n".join(gp) + "\n")
        subprocess.run(["gnuplot", gpf], check=False)
    if adaptive_runs and shutil.which("gnuplot"):
        apng = os.path.join(out, "adaptive.png")
        gp = [f"set terminal pngcairo size 700,{260 * len(adaptive_runs)} font ',8'",
              f"set output '{apng}'", f"set multiplot layout {len(adaptive_runs)},1",
              "set grid", "set key top right font ',7'", "set xlabel 'second of the run'",
              "set ylabel 'lookups per second'", "set yrange [0:*]", "set datafile missing '-'"]
        for tag, r in adaptive_runs:
            dat = os.path.join(out, tag, "adaptive-series.dat")
            has_rate = any(x["rate"] is not None for x in r["adaptive"]["per_second"])
            rate = (", '' u 1:4 w lp pt 5 ps 0.4 lw 2 t 'sluice adaptive rate (edges summed)'"
                    if has_rate else "")
            gp += [f"set title '{tag}'",
                   f"plot '{dat}' u 1:2 w steps lw 2 lc 'black' dt 2 t 'backend capacity', "
                   f"'' u 1:3 w lp pt 7 ps 0.4 t 'useful answers'{rate}"]
        gp.append("unset multiplot")
        gpf = os.path.join(out, "adaptive.gp")
        open(gpf, "w").write("\n".join(gp) + "\n")
        subprocess.run(["gnuplot", gpf], check=False)
    print(f"\nPNG:  {png}" if os.path.exists(png) else "\nPNG: not made (no gnuplot?)")
    print(f"JSON: {os.path.join(out, 'results.json')}")
    print(f"table: {md}")


if __name__ == "__main__":
    main()
