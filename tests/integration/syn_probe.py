#!/usr/bin/python3
"""SYN prober of tests/integration/failure_policy_test.sh (lab only: every
address comes from 198.18.0.0/15 or 2001:2::/48; bounded in count and time).

  probe    opens TCP connections at a steady rate from a source address and
           records, per attempt, when its SYN left and whether it was
           answered (SYN-ACK or RST) within --answer-ms, i.e. before the
           kernel's first SYN retransmission (1 s): the first SYN alone
           counts. One JSON line per attempt: {"t": epoch, "ok": bool}.
           SIGTERM stops sending; attempts in flight are still settled.
  windows  splits a probe log by marks ("NAME EPOCH" lines, in order) and
           prints {NAME: {"sent": n, "answered": n, "gap_ms": g}} as JSON,
           where gap_ms is the longest run without an answered SYN.
"""
import argparse
import json
import selectors
import signal
import socket
import time

stopping = False


def stop(*_):
    global stopping
    stopping = True


def probe(a):
    family = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
    sel = selectors.DefaultSelector()
    interval = 1.0 / a.rate
    start = time.monotonic()
    wall0 = time.time() - start  # epoch = wall0 + monotonic
    next_at = start
    sent = 0
    signal.signal(signal.SIGTERM, stop)
    with open(a.log, "w") as out:
        def finish(key, ok):
            sel.unregister(key.fileobj)
            key.fileobj.close()
            out.write(json.dumps({"t": round(key.data, 6), "ok": ok}) + "\n")

        while True:
            now = time.monotonic()
            sending = not stopping and sent < a.count and now - start < a.seconds
            if sending and now >= next_at:
                s = socket.socket(family, socket.SOCK_STREAM)
                s.setblocking(False)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                s.bind((a.src, 0))
                err = s.connect_ex((a.dst, a.port))
                t_sent = wall0 + time.monotonic()
                sent += 1
                next_at += interval
                if err not in (0, 115):  # EINPROGRESS
                    s.close()
                    out.write(json.dumps({"t": round(t_sent, 6), "ok": False}) + "\n")
                else:
                    sel.register(s, selectors.EVENT_WRITE, t_sent)
            elif not sending and not sel.get_map():
                break
            timeout = max(0.0, min(next_at - time.monotonic(), 0.01))
            for key, _ in sel.select(timeout):
                err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                finish(key, err in (0, 111))  # connected, or refused by a RST
            deadline = wall0 + time.monotonic() - a.answer_ms / 1000.0
            for key in list(sel.get_map().values()):
                if key.data < deadline:
                    finish(key, False)


def windows(a):
    marks = []
    with open(a.marks) as f:
        for line in f:
            name, t = line.split()
            marks.append((name, float(t)))
    with open(a.log) as f:
        attempts = sorted((r["t"], r["ok"]) for r in map(json.loads, f))
    out = {}
    for i, (name, t0) in enumerate(marks):
        t1 = marks[i + 1][1] if i + 1 < len(marks) else float("inf")
        inside = [(t, ok) for t, ok in attempts if t0 <= t < t1]
        gap, last = 0.0, t0
        for t, ok in inside:
            if ok:
                gap = max(gap, t - last)
                last = t
        if inside:
            gap = max(gap, inside[-1][0] - last)
        out[name] = {"sent": len(inside), "answered": sum(ok for _, ok in inside),
                     "gap_ms": int(gap * 1000)}
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("probe")
    pr.add_argument("--src", required=True)
    pr.add_argument("--dst", required=True)
    pr.add_argument("--port", type=int, default=443)
    pr.add_argument("--rate", type=float, default=200.0)
    pr.add_argument("--seconds", type=float, required=True)
    pr.add_argument("--count", type=int, default=100000)
    pr.add_argument("--answer-ms", type=float, default=900.0)
    pr.add_argument("--log", required=True)
    w = sub.add_parser("windows")
    w.add_argument("--log", required=True)
    w.add_argument("--marks", required=True)
    a = p.parse_args()
    probe(a) if a.cmd == "probe" else windows(a)


if __name__ == "__main__":
    main()
