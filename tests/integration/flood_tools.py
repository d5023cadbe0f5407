#!/usr/bin/python3
"""Helpers of tests/integration/flood_test.sh (lab only: every address comes
from 198.18.0.0/15 or 2001:2::/48, every loop is bounded in count and time).

  ack-flood        crafted TCP ACKs (spoofed sources, no connection behind
                   them) sent from pre-built frames on an AF_PACKET socket,
                   paced to a target rate; prints what it sent as JSON
  syn-load         the same with SYNs: new lookups at a paced rate
  download-server  dual-stack TCP server: each connection asks for N bytes at
                   R bytes/s ("GET N R\\n") and gets them, paced, then EOF
  download-client  one paced download from a source address; prints
                   "receiving" on stderr once the first bytes are in, then a
                   JSON summary (bytes, elapsed, reset / stalled)
  msum             sums the samples of a Prometheus text dump that match a
                   metric name and label values
"""
import argparse
import ipaddress
import json
import os
import random
import re
import socket
import socketserver
import struct
import sys
import threading
import time


def emit(result):
    """Prints result as one JSON line in a single write(2). Several load
    generators append their results to one file (O_APPEND, atomic per
    write), and print() under PYTHONUNBUFFERED (set on CI) writes the text
    and its newline apart: another's line then lands between them."""
    os.write(sys.stdout.fileno(), (json.dumps(result) + "\n").encode())


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_ack(src, dst, sport, dport, seq, ack, flags=0x10):
    """IP header + TCP segment (no payload; an ACK unless told other flags),
    checksums filled in."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 502, 0, 0)
    if src.version == 4:
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16),
                         0x4000, 64, 6, 0, src.packed, dst.packed)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        return 0x0800, ip + tcp
    # IPv6 pseudo header (RFC 8200 8.1): upper-layer length (32 bits), three
    # zero bytes, next header (TCP).
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(tcp), 6)
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, src.packed, dst.packed)
    return 0x86DD, ip + tcp


def mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def ack_flood(a):
    dst = ipaddress.ip_address(a.dst)
    first = ipaddress.ip_address(a.src_first)
    if first.version != dst.version:
        sys.exit("source and destination families differ")
    lab = ipaddress.ip_network("198.18.0.0/15" if dst.version == 4 else "2001:2::/48")
    rng = random.Random(a.seed)
    sources = []
    for i in range(a.src_count):
        s = int(first) + (i << a.src_shift)
        if a.src_shift >= 8 and dst.version == 6:
            s += rng.getrandbits(min(a.src_shift, 64))  # a random interface ID
        addr = ipaddress.ip_address(s)
        if addr not in lab or dst not in lab:
            sys.exit("refusing to send outside the lab ranges: %s -> %s" % (addr, dst))
        sources.append(addr)
    eth = mac(a.dst_mac) + mac(a.src_mac)
    frames = []
    n_frames = max(a.frames, len(sources))
    syn = a.cmd == "syn-load"
    for i in range(n_frames):
        etype, pkt = tcp_ack(sources[i % len(sources)], dst, rng.randrange(1024, 65535), a.dport,
                             rng.getrandbits(32), 0 if syn else rng.getrandbits(32),
                             0x02 if syn else 0x10)
        frames.append(eth + struct.pack("!H", etype) + pkt)
    rng.shuffle(frames)

    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:  # straight to the device, no qdisc
        s.setsockopt(263, 20, 1)  # SOL_PACKET, PACKET_QDISC_BYPASS
    except OSError:
        pass
    s.bind((a.iface, 0))
    send = s.send
    sent = dropped = 0
    n = len(frames)
    batch = a.batch
    start = time.monotonic()
    start_wall = time.time()
    deadline = start + a.seconds
    # With --stop-file, the flood outlasts whatever it floods (the clients
    # under test, slower on a busy machine): past --min-seconds it stops
    # when the file appears, at --seconds at the latest.
    min_end = start + (a.min_seconds if a.stop_file else a.seconds)
    next_check = min_end
    # Stalls: gaps of 50 ms or more between two turns of the loop (it never
    # sleeps more than 2 ms), when this process did not run (a busy machine)
    # and its load fell behind; the rate is caught up after them. As
    # CLOCK_MONOTONIC times, which every process on the machine shares.
    stalls = []
    last = start
    while sent + dropped < a.count:
        now = time.monotonic()
        if now - last >= 0.05:
            stalls.append([round(last, 3), round(now, 3)])
        last = now
        if now >= deadline:
            break
        if now >= next_check:
            if os.path.exists(a.stop_file):
                break
            next_check = now + 0.05
        # Paced: never more than rate * elapsed frames (plus one batch).
        ahead = (sent + dropped) - a.rate * (now - start)
        if ahead > 0:
            time.sleep(min(ahead / a.rate, 0.002))
            continue
        base = sent + dropped
        for i in range(batch):
            try:
                send(frames[(base + i) % n])
                sent += 1
            except OSError:
                dropped += 1  # the veth's ring was full (ENOBUFS)
    elapsed = time.monotonic() - start
    emit({"sent": sent, "dropped": dropped, "elapsed_s": round(elapsed, 3),
          "rate_pps": int(sent / elapsed) if elapsed > 0 else 0,
          "sources": len(sources), "start_wall": start_wall,
          "end_wall": time.time(), "stalls": stalls})


class DownloadHandler(socketserver.BaseRequestHandler):
    def handle(self):
        c = self.request
        c.settimeout(10)
        try:
            req = c.recv(256).split()
            total, rate = int(req[1]), int(req[2])
            total = min(total, 64 << 20)
            chunk = 16384
            buf = b"x" * chunk
            start = time.monotonic()
            done = 0
            while done < total and time.monotonic() - start < 120:
                due = start + done / rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                n = min(chunk, total - done)
                c.sendall(buf[:n])
                done += n
            c.shutdown(socket.SHUT_WR)
            c.recv(16)  # until the client closes
        except (OSError, ValueError, IndexError):
            pass


class DualStackServer(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def download_server(a):
    srv = DualStackServer(("::", a.port), DownloadHandler)
    threading.Timer(a.seconds, srv.shutdown).start()
    print("listening", flush=True)
    srv.serve_forever()


def download_client(a):
    family = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
    out = {"bytes": 0, "want": a.bytes, "ok": False, "reset": False, "stalled": False,
           "error": ""}
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((a.src, 0))
    s.settimeout(a.stall)
    start = time.monotonic()
    out["start_wall"] = time.time()
    try:
        s.connect((a.dst, a.port))
        s.sendall(b"GET %d %d\n" % (a.bytes, a.rate))
        told = False
        while time.monotonic() - start < a.deadline:
            data = s.recv(65536)
            if not data:
                break
            out["bytes"] += len(data)
            if not told:
                print("receiving", file=sys.stderr, flush=True)
                told = True
    except ConnectionResetError:
        out["reset"] = True
    except (socket.timeout, TimeoutError):
        out["stalled"] = True
    except OSError as e:
        out["error"] = str(e)
    finally:
        s.close()
    out["end_wall"] = time.time()
    out["elapsed_s"] = round(time.monotonic() - start, 3)
    out["ok"] = out["bytes"] == a.bytes and not out["reset"] and not out["stalled"]
    emit(out)


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def msum(a):
    want = dict(kv.split("=", 1) for kv in a.labels)
    total = 0.0
    with open(a.file) as f:
        for line in f:
            m = SAMPLE.match(line)
            if not m or m.group(1) != a.name:
                continue
            labels = dict(LABEL.findall(m.group(2) or ""))
            if all(labels.get(k) == v for k, v in want.items()):
                total += float(m.group(3))
    print(int(total))


def add_flood_args(f):
    f.add_argument("--iface", required=True)
    f.add_argument("--src-mac", required=True)
    f.add_argument("--dst-mac", required=True)
    f.add_argument("--dst", required=True)
    f.add_argument("--dport", type=int, default=443)
    f.add_argument("--src-first", required=True)
    f.add_argument("--src-count", type=int, default=1)
    f.add_argument("--src-shift", type=int, default=0,
                   help="source i = first + (i << shift); IPv6 with shift >= 8 adds a random low part")
    f.add_argument("--frames", type=int, default=2048, help="distinct pre-built frames")
    f.add_argument("--rate", type=float, required=True, help="packets/s to aim for")
    f.add_argument("--seconds", type=float, required=True)
    f.add_argument("--count", type=int, default=2_000_000)
    f.add_argument("--stop-file", help="past --min-seconds, stop once this file exists")
    f.add_argument("--min-seconds", type=float, default=0)
    f.add_argument("--seed", type=int, default=7)
    f.add_argument("--batch", type=int, default=64,
                   help="frames sent back to back; 1 spaces every frame (smooth arrivals)")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("ack-flood", "syn-load"):
        add_flood_args(sub.add_parser(name))
    s = sub.add_parser("download-server")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--seconds", type=float, default=300)
    c = sub.add_parser("download-client")
    c.add_argument("--src", required=True)
    c.add_argument("--dst", required=True)
    c.add_argument("--port", type=int, default=8080)
    c.add_argument("--bytes", type=int, required=True)
    c.add_argument("--rate", type=int, required=True, help="bytes/s the server paces to")
    c.add_argument("--stall", type=float, default=10.0, help="seconds without data = stalled")
    c.add_argument("--deadline", type=float, default=60.0)
    m = sub.add_parser("msum")
    m.add_argument("file")
    m.add_argument("name")
    m.add_argument("labels", nargs="*", help="label=value")
    a = p.parse_args()
    {"ack-flood": ack_flood, "syn-load": ack_flood, "download-server": download_server,
     "download-client": download_client, "msum": msum}[a.cmd](a)


if __name__ == "__main__":
    main()
