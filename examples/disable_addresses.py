#!/usr/bin/env python3
"""Example consumer of pftrack's webhooks: disable addresses that cannot receive mail.

It listens for pftrack's signed webhooks, checks each signature (Standard Webhooks),
and for every `recipient.failed` event marks the recipient disabled in a table of your
own, exactly once per event id even when pftrack delivers an event twice:

    CREATE TABLE subscriber (email text PRIMARY KEY, disabled_at timestamptz,
                             disabled_reason text);
    CREATE TABLE pftrack_processed_event (id text PRIMARY KEY,
                                          processed_at timestamptz NOT NULL DEFAULT now());

Each event is one SQL statement (psql quotes the values: nothing is pasted into SQL):
the event id is recorded and the address disabled together, or neither. An answer
other than 2xx makes pftrack try again later, so a database that is down loses nothing.

    python3 examples/disable_addresses.py --secret-file /etc/pftrack/crm.secret \
        --database 'postgresql://crm@db/crm' --listen 127.0.0.1:8099

and in pftrack's configuration:

    events:
      enabled: true
      sinks:
        - name: crm
          type: webhook
          url: http://127.0.0.1:8099/pftrack
          secret_file: /etc/pftrack/crm.secret
          types: [recipient.failed]

Python 3 standard library and the psql client only.
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import subprocess
import sys
import time

# Requests older or newer than this are refused (replayed captures).
TOLERANCE_SECS = 300
# Larger bodies are refused (a batch of 1000 events is far below).
MAX_BODY = 16 * 1024 * 1024

DISABLE = """
WITH fresh AS (
    INSERT INTO pftrack_processed_event (id) VALUES (:'id')
    ON CONFLICT DO NOTHING RETURNING id
)
UPDATE subscriber SET disabled_at = now(), disabled_reason = :'reason'
WHERE lower(email) = lower(:'address') AND disabled_at IS NULL
    AND EXISTS (SELECT 1 FROM fresh);
"""

# Events about other facts are only marked processed.
MARK = """
INSERT INTO pftrack_processed_event (id) VALUES (:'id') ON CONFLICT DO NOTHING;
"""


def verify(key, headers, body):
    """True when one of the v1 signatures is HMAC-SHA256(key, id.timestamp.body)."""
    msg_id = headers.get("webhook-id") or ""
    stamp = headers.get("webhook-timestamp") or ""
    try:
        if abs(time.time() - int(stamp)) > TOLERANCE_SECS:
            return False
    except ValueError:
        return False
    signed = b"%s.%s.%s" % (msg_id.encode(), stamp.encode(), body)
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(value, expected)
        for version, _, value in (s.partition(",") for s in (headers.get("webhook-signature") or "").split())
    )


def apply(database, event):
    """Record one event in the database; raises when psql fails."""
    data = event.get("data") or {}
    if event.get("type") == "recipient.failed" and data.get("recipient"):
        sql, values = DISABLE, {
            "id": event["id"],
            "address": data["recipient"],
            "reason": "%s (%s)" % (data.get("reason") or "failed", data.get("dsn") or "no dsn"),
        }
    else:
        sql, values = MARK, {"id": event["id"]}
    args = ["psql", database, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    for name, value in values.items():
        args += ["-v", "%s=%s" % (name, value)]
    subprocess.run(args, input=sql.encode(), check=True, capture_output=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--secret-file", required=True, help="the sink's whsec_… secret")
    p.add_argument("--database", required=True, help="libpq URL of the table's database")
    p.add_argument("--listen", default="127.0.0.1:8099", help="address:port (port 0: any)")
    p.add_argument("--port-file", help="write the port listened on here")
    args = p.parse_args()
    secret = open(args.secret_file).read().strip()
    if not secret.startswith("whsec_"):
        sys.exit("the secret must start with whsec_")
    key = base64.b64decode(secret[len("whsec_"):])

    class Handler(http.server.BaseHTTPRequestHandler):
        # Headers and body are two writes: without this, Nagle's algorithm holds the
        # body until the client's delayed ACK (40 ms a request).
        disable_nagle_algorithm = True

        def answer(self, status, text):
            body = text.encode()
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                return self.answer(413, "too large")
            body = self.rfile.read(length)
            if not verify(key, self.headers, body):
                return self.answer(401, "bad signature")
            try:
                payload = json.loads(body)
            except ValueError:
                return self.answer(400, "not JSON")
            events = payload if isinstance(payload, list) else [payload]
            try:
                for event in events:
                    apply(args.database, event)
            except subprocess.CalledProcessError as e:
                sys.stderr.write("database: %s\n" % e.stderr.decode(errors="replace").strip())
                return self.answer(503, "database unavailable, try again")
            self.answer(200, "ok")

        def log_message(self, fmt, *a):
            sys.stderr.write("%s\n" % (fmt % a))

    host, _, port = args.listen.rpartition(":")
    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
