#!/usr/bin/python3
"""Stands in for systemd's NOTIFY_SOCKET: receives sd_notify datagrams on a
Unix socket and writes one line per message to OUT (newlines in a message
become ' | '). With --on-ready CMD, runs CMD when a message holds READY=1 and
appends its exit code and output to that line, so a test can see what held
at the moment sluiced said it was ready. Exits after --seconds.

Usage: notify_listener.py --socket PATH --out FILE [--on-ready CMD] [--seconds N]
"""
import argparse
import os
import socket
import subprocess
import time

ap = argparse.ArgumentParser()
ap.add_argument("--socket", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--on-ready")
ap.add_argument("--seconds", type=float, default=120)
a = ap.parse_args()

if os.path.exists(a.socket):
    os.unlink(a.socket)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(a.socket)
os.chmod(a.socket, 0o666)
deadline = time.monotonic() + a.seconds
with open(a.out, "a", buffering=1) as out:
    out.write("listening\n")
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data = s.recv(4096)
        except socket.timeout:
            break
        msg = data.decode(errors="replace").strip().replace("\n", " | ")
        line = msg
        if a.on_ready and "READY=1" in msg.split(" | "):
            r = subprocess.run(a.on_ready, shell=True, capture_output=True, text=True)
            line += f" || on-ready rc={r.returncode} out={r.stdout.strip()!r}"
        out.write(line + "\n")
os.unlink(a.socket)
