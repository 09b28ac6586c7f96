#!/usr/bin/env python3
"""A webhook receiver for pftrack's tests and benchmarks (Python 3 standard library only).

It verifies every request's Standard Webhooks signature with its own implementation
(hmac, hashlib, base64: none of pftrack's code) and appends one JSON line per request
to the log file: {"id", "timestamp", "verified", "received_at", "body"}.

How it answers is read from the mode file at each request (so a test can change it
while it runs):
  ok (default)   200
  <code>         that status (410, 400, 500, 429, ...)
  slow:<secs>    wait, then 200
  garbage        bytes that are not HTTP, then close
  reset          close the connection with a TCP reset

Usage: webhook_receiver.py --secret-file F --log L [--mode-file M] [--port P] [--port-file PF]
The port it listens on (127.0.0.1) is written to --port-file once it listens.
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import socket
import struct
import sys
import threading
import time

TOLERANCE_SECS = 300


def verify(secret, msg_id, timestamp, signatures, body):
    """Standard Webhooks: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>, key = base64 after whsec_."""
    if not secret.startswith("whsec_"):
        return False
    key = base64.b64decode(secret[len("whsec_"):])
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - ts) > TOLERANCE_SECS:
        return False
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for sig in (signatures or "").split(" "):
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--secret-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--mode-file")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    args = p.parse_args()
    secret = open(args.secret_file).read().strip()
    log = open(args.log, "a", buffering=1)
    lock = threading.Lock()

    def mode():
        if not args.mode_file:
            return "ok"
        try:
            return open(args.mode_file).read().strip() or "ok"
        except OSError:
            return "ok"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes: without this, Nagle's algorithm holds the
        # body until the client's delayed ACK (40 ms a request).
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            m = mode()
            msg_id = self.headers.get("webhook-id")
            ts = self.headers.get("webhook-timestamp")
            entry = {
                "id": msg_id,
                "timestamp": ts,
                "verified": verify(secret, msg_id or "", ts, self.headers.get("webhook-signature"), body),
                "received_at": time.time(),
                "mode": m,
                "body": body.decode("utf-8", "replace"),
            }
            with lock:
                log.write(json.dumps(entry) + "\n")
            if m == "garbage":
                self.wfile.write(b"\x00\xffthis is not HTTP\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True
                return
            if m == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            status = 200
            if m.startswith("slow:"):
                time.sleep(float(m[5:]))
            elif m != "ok":
                status = int(m)
            answer = b"ok" if status < 300 else b"no"
            self.send_response(status)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    class Server(http.server.ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 128

    server = Server(("127.0.0.1", args.port), Handler)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
