#!/usr/bin/python3
"""Minimal dual-stack HTTP/1.0 responder for lab tests: answers every request
with 200 and a code, then closes; a connection that sends no request within
--idle-sec is closed. Bounded: exits after --seconds."""
import argparse
import socket
import socketserver
import threading


class Handler(socketserver.BaseRequestHandler):
    idle_sec = 2.0

    def handle(self):
        self.request.settimeout(self.idle_sec)
        try:
            self.request.recv(1024)
            self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\ncode=ok\n")
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--idle-sec", type=float, default=2)
    a = p.parse_args()
    Handler.idle_sec = a.idle_sec
    srv = Server(("::", a.port), Handler)
    threading.Timer(a.seconds, srv.shutdown).start()
    print("listening", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
