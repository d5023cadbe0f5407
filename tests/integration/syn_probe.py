#!/usr/bin/python3
"""SYN prober of tests/integration/failure_policy_test.sh (lab only: every
address comes from 198.18.0.0/15 or 2001:2::/48; bounded in count and time).

  probe    opens TCP connections at a steady rate from a source address and
           records, per attempt, when its SYN left and whether it was
           answered (SYN-ACK or RST) before the kernel's first SYN
           retransmission (1 s): the first SYN alone counts. The kernel
           says which (TCP_INFO's retransmission counters), not a timer of
           the prober's: an answer that comes late but before the kernel
           sends the SYN again counts (a 900 ms timer once failed a CI run
           on 4 and 8 consecutive SYNs, a span that fits a stall of the
           machine shorter than 1 s). --answer-ms T judges by a timer
           instead: an attempt unanswered at T ms is closed before the
           kernel sends its SYN again (for a class being shed, whose
           retransmissions would add to the load being measured). One JSON
           line per attempt: {"t": epoch, "ok": bool, "ms": when the prober
           saw the outcome, "err": errno, 0, or -1 for no outcome in 5 s}.
           SIGTERM stops sending; attempts in flight are still settled.
  windows  splits a probe log by marks ("NAME EPOCH" lines, in order) and
           prints {NAME: {"sent": n, "answered": n, "gap_ms": g,
           "lost_ms": [...]}} as JSON, where gap_ms is the longest run
           without an answered SYN and lost_ms says when (ms after the
           mark) the first unanswered SYNs left, with their outcome.
"""
import argparse
import json
import selectors
import signal
import socket
import struct
import time

stopping = False
# struct tcp_info (linux/tcp.h): tcpi_state, _ca_state, _retransmits are its
# first bytes; tcpi_total_retrans is the u32 at offset 100.
TCP_INFO_LEN = 104


def retransmitted(s):
    """Whether the kernel sent this socket's SYN again (None: cannot tell)."""
    try:
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN)
    except OSError:
        return None
    if len(info) < TCP_INFO_LEN:
        return None
    return info[2] > 0 or struct.unpack_from("I", info, 100)[0] > 0


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
        def finish(key, ok, err):
            sel.unregister(key.fileobj)
            key.fileobj.close()
            ms = round((wall0 + time.monotonic() - key.data) * 1000.0, 1)
            out.write(json.dumps({"t": round(key.data, 6), "ok": ok, "ms": ms, "err": err}) + "\n")

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
                    rec = {"t": round(t_sent, 6), "ok": False, "ms": 0, "err": err}
                    out.write(json.dumps(rec) + "\n")
                else:
                    sel.register(s, selectors.EVENT_WRITE, t_sent)
            elif not sending and not sel.get_map():
                break
            timeout = max(0.0, min(next_at - time.monotonic(), 0.01))
            for key, _ in sel.select(timeout):
                # Connected, or refused by a RST: answered, if to the first SYN.
                again = retransmitted(key.fileobj)
                err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                finish(key, err in (0, 111) and again is False, err)
            # Unanswered once the kernel retransmitted the SYN (its first
            # retransmission comes 1 s after it; 5 s bounds the wait), or at
            # --answer-ms.
            now = wall0 + time.monotonic()
            for key in list(sel.get_map().values()):
                age = now - key.data
                if a.answer_ms > 0 and age >= a.answer_ms / 1000.0:
                    finish(key, False, 0)
                elif age >= 5.0:
                    finish(key, False, -1)
                elif age >= 0.9 and retransmitted(key.fileobj) is not False:
                    finish(key, False, 0)


def windows(a):
    marks = []
    with open(a.marks) as f:
        for line in f:
            name, t = line.split()
            marks.append((name, float(t)))
    with open(a.log) as f:
        records = sorted(((r["t"], r["ok"], r.get("ms"), r.get("err")) for r in map(json.loads, f)),
                         key=lambda r: r[0])
    attempts = [(t, ok) for t, ok, _, _ in records]
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
        lost = [{"at": int((t - t0) * 1000), "ms": ms, "err": err}
                for t, ok, ms, err in records if t0 <= t < t1 and not ok][:4]
        out[name] = {"sent": len(inside), "answered": sum(ok for _, ok in inside),
                     "gap_ms": int(gap * 1000), "lost_ms": lost}
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
    pr.add_argument("--answer-ms", type=float, default=0.0)
    pr.add_argument("--log", required=True)
    w = sub.add_parser("windows")
    w.add_argument("--log", required=True)
    w.add_argument("--marks", required=True)
    a = p.parse_args()
    probe(a) if a.cmd == "probe" else windows(a)


if __name__ == "__main__":
    main()
