#!/usr/bin/python3
"""Helpers of tests/integration/fleet_test.sh.

  count     samples the named nftables counters of a table once a second for
            a bounded time and prints one JSON line per second: the packets
            each counter saw in that second, per second of wall time
            ({"t": seconds since start, "rates": {name: packets/s}})
  check     reads those lines and checks a window of seconds against a bound
  retune-latency
            N fleet changes with sluicectl --fleet, each timed from the call
            to every edge's /metrics showing its generation; prints p50, p99
"""
import argparse
import json
import subprocess
import sys
import time
import urllib.request

import nftables  # python3-nftables: libnftables, no nft process per read


def read_counters(nft, table):
    rc, out, err = nft.cmd("list counters table inet " + table)
    if rc != 0:
        sys.exit("nft list counters table inet %s: %s" % (table, err.strip()))
    counters = {}
    for item in json.loads(out)["nftables"]:
        c = item.get("counter")
        if c:
            counters[c["name"]] = c["packets"]
    return counters


def timed_read(nft, table):
    """The counters, with the time they were read at: the middle of the
    read (libnftables in this process: about a millisecond, more on a busy
    machine), and how long it took (the error of that time)."""
    before = time.monotonic()
    counters = read_counters(nft, table)
    after = time.monotonic()
    return (before + after) / 2, after - before, counters


def count(a):
    nft = nftables.Nftables()
    nft.set_json_output(True)
    start = time.monotonic()
    last_t, last_read, last = timed_read(nft, a.table)
    with open(a.out, "w") as out:
        for i in range(1, int(a.seconds) + 1):
            time.sleep(max(0.0, start + i - time.monotonic()))
            now, read, cur = timed_read(nft, a.table)
            dt = now - last_t
            rates = {k: round((cur[k] - last.get(k, 0)) / dt, 1) for k in cur}
            out.write(json.dumps({"t": round(now - start, 3), "from": round(last_t, 3),
                                  "to": round(now, 3),
                                  "read_s": round(max(last_read, read), 3),
                                  "rates": rates}) + "\n")
            out.flush()
            last_t, last_read, last = now, read, cur


def load_stalls(path):
    """The stalls of every load generator that wrote to path (flood_tools.py:
    one JSON line each at its end), as (from, to) CLOCK_MONOTONIC seconds."""
    stalls = []
    with open(path) as f:
        for line in f:
            stalls += [tuple(x) for x in json.loads(line).get("stalls", [])]
    return stalls


def check(a):
    """Exit 1 when a second in [from, to) of the summed counters is outside
    [lo, hi], or (--mean-lo) their mean over the window is below it; prints
    every second checked.

    With --stalls, a second in which a load generator stalled (did not run
    for 50 ms or more: its offered load was not there), or the second after
    one (it catches up), is not judged: on a busy 2-CPU machine a stall of a
    few hundred ms lets an edge's bucket fill past its burst, which is a
    dip in the load, not in what the edges do. Still a failure: more than a
    third of the window excused, so a machine too busy to judge anything
    does not pass by default.

    A counter read takes time (about a millisecond, more when this process
    is not run at once on a busy machine), and the counters were read at
    some instant within it: the second's true length is uncertain by up to
    read_s (half of each read), so its rate is judged within [lo, hi] when
    some length in [to - from - read_s, to - from + read_s] puts it there.
    A read that took 150 ms or more (held up: more than 15% of the rate) is
    not judged."""
    stalls = load_stalls(a.stalls) if a.stalls else []
    bad = excused = seen = 0
    totals = []
    with open(a.file) as f:
        for line in f:
            s = json.loads(line)
            if not (a.start <= s["t"] < a.end):
                continue
            seen += 1
            total = sum(v for k, v in s["rates"].items() if any(k.startswith(p) for p in a.names))
            # The stalls that overlap this second or the one before it.
            hit = [x for x in stalls if x[0] < s["to"] and x[1] > s["from"] - 1.0]
            read = s.get("read_s", 0)
            slow_read = read >= 0.15
            if hit or slow_read:
                excused += 1
                why = "a load generator stalled " + ", ".join(
                    "%.3f s" % (x[1] - x[0]) for x in hit) if hit else \
                    "a counter read took %.3f s" % s["read_s"]
                print("t=%5.1f %s=%7.1f excused: %s" % (s["t"], "+".join(a.names), total, why))
                continue
            # The packets counted, over the shortest and the longest length
            # the second can have had.
            length = s["to"] - s["from"]
            packets = total * length
            ok = packets / (length + read) <= a.hi and packets / (length - read) >= a.lo
            bad += not ok
            totals.append(total)
            margin = " (+-%.1f%%: a %.3f s counter read)" % (100 * read / length, read) \
                if read >= 0.01 else ""
            print("t=%5.1f %s=%7.1f%s %s" % (s["t"], "+".join(a.names), total, margin,
                                            "" if ok else "OUT"))
    if not totals:
        print("no second in [%g, %g): nothing checked" % (a.start, a.end))
        bad += 1
    if excused * 3 > seen:
        print("%d of %d seconds excused for stalled load generators: too busy to judge" % (
            excused, seen))
        bad += 1
    if a.mean_lo is not None:
        mean = sum(totals) / len(totals) if totals else 0
        print("mean %.2f (at least %.2f)%s" % (mean, a.mean_lo, "" if mean >= a.mean_lo else " OUT"))
        bad += mean < a.mean_lo
    sys.exit(1 if bad else 0)


def generation(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("sluice_config_generation "):
                return int(float(line.split()[1]))
    return 0


def retune_latency(a):
    times, calls, reached = [], [], 0
    for i in range(a.changes):
        value = 600 + (i % 2)
        start = time.monotonic()
        out = subprocess.run([a.sluicectl, "--fleet", "--config", a.config, "--json",
                              "--fleet-wait-ms", "0", "set",
                              "boundary.lookups_per_sec=%d" % value],
                             capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            sys.exit("sluicectl --fleet set failed: " + out.stderr)
        gen = json.loads(out.stdout)["generation"]
        calls.append((time.monotonic() - start) * 1000)
        deadline = start + 5
        while time.monotonic() < deadline:
            if all(generation(u) >= gen for u in a.metrics):
                reached += 1
                break
            time.sleep(0.002)
        times.append((time.monotonic() - start) * 1000)
    def pick(values, q):
        values = sorted(values)
        return round(values[min(len(values) - 1, int(q * len(values)))], 1)
    # p50/p99 from the call to every edge running it; sluicectl_p50_ms: the
    # call alone (a process start, the validation, the write to etcd).
    print(json.dumps({"changes": a.changes, "reached": reached, "p50_ms": pick(times, 0.5),
                      "p99_ms": pick(times, 0.99), "max_ms": round(max(times), 1),
                      "sluicectl_p50_ms": pick(calls, 0.5)}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("count")
    c.add_argument("--table", required=True)
    c.add_argument("--seconds", type=float, required=True)
    c.add_argument("--out", required=True)
    k = sub.add_parser("check")
    k.add_argument("file")
    k.add_argument("--names", nargs="+", required=True, help="counter name prefixes to sum")
    k.add_argument("--start", type=float, required=True)
    k.add_argument("--end", type=float, required=True)
    k.add_argument("--lo", type=float, required=True)
    k.add_argument("--hi", type=float, required=True)
    k.add_argument("--mean-lo", type=float, help="the window's mean must reach this too")
    k.add_argument("--stalls", help="the load generators' results (JSON lines with stalls): "
                   "seconds they stalled in are not judged")
    r = sub.add_parser("retune-latency")
    r.add_argument("--sluicectl", required=True)
    r.add_argument("--config", required=True, help="an edge's file (its [fleet])")
    r.add_argument("--metrics", nargs="+", required=True, help="every edge's /metrics URL")
    r.add_argument("--changes", type=int, default=100)
    a = p.parse_args()
    {"count": count, "check": check, "retune-latency": retune_latency}[a.cmd](a)


if __name__ == "__main__":
    main()
