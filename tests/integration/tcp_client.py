#!/usr/bin/python3
"""Opens N real TCP connections from a source address to a server, as fast as
it can (bounded by count and a deadline), and reports what the client saw:
ok (HTTP answer), reset (connection refused by a RST), timeout, error; plus
the elapsed time. Prints one JSON object."""
import argparse
import json
import socket
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--deadline", type=float, default=60.0)
    p.add_argument("--interval", type=float, default=0.0, help="seconds between attempts")
    a = p.parse_args()
    family = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
    out = {"ok": 0, "reset": 0, "timeout": 0, "error": 0, "reset_latency_max_ms": 0.0}
    start = time.monotonic()
    for _ in range(a.count):
        if time.monotonic() - start > a.deadline:
            break
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(a.timeout)
        # One SYN per attempt: no retransmission hides a dropped SYN.
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
        s.bind((a.src, 0))
        t0 = time.monotonic()
        try:
            s.connect((a.dst, a.port))
            s.sendall(b"GET /code/42 HTTP/1.0\r\n\r\n")
            data = s.recv(1024)
            out["ok" if data.startswith(b"HTTP/1.0 200") else "error"] += 1
        except ConnectionRefusedError:
            out["reset"] += 1
            out["reset_latency_max_ms"] = max(out["reset_latency_max_ms"], (time.monotonic() - t0) * 1000)
        except (socket.timeout, TimeoutError):
            out["timeout"] += 1
        except OSError:
            out["error"] += 1
        finally:
            s.close()
        if a.interval:
            time.sleep(a.interval)
    out["elapsed_s"] = time.monotonic() - start
    print(json.dumps(out))


if __name__ == "__main__":
    main()
