#!/usr/bin/env python3
"""A man in the middle for tests: forwards every request to an upstream airlockd on 127.0.0.1 and
answers chosen paths with forged bytes instead.

  proxy.py UPSTREAM_PORT SWAPS_FILE PORT_FILE LOG_FILE

SWAPS_FILE is read on every request (so a test switches the attack without a restart): a JSON object
{"GET /tuf/app/2.root.json": "/path/to/forged.json", ...}; a missing or empty file forwards all.
Each request is logged as "METHOD PATH STATUS" to LOG_FILE. Listens on 127.0.0.1 only.
"""
import http.client
import http.server
import json
import os
import sys

UPSTREAM_PORT = int(sys.argv[1])
SWAPS_FILE, PORT_FILE, LOG_FILE = sys.argv[2], sys.argv[3], sys.argv[4]
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-connection", "expect"}


def swaps():
    try:
        with open(SWAPS_FILE) as f:
            text = f.read().strip()
        return json.loads(text) if text else {}
    except FileNotFoundError:
        return {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def log(self, status):
        with open(LOG_FILE, "a") as f:
            f.write(f"{self.command} {self.path} {status}\n")

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def answer(self, status, headers, data):
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.log(status)

    def handle_any(self):
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.send_response_only(100)
            self.end_headers()
        data = self.body()
        forged = swaps().get(f"{self.command} {self.path}")
        if forged is not None:
            with open(forged, "rb") as f:
                self.answer(200, [("Content-Type", "application/json")], f.read())
            return
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM_PORT, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["Content-Length"] = str(len(data))
        conn.request(self.command, self.path, body=data, headers=headers)
        r = conn.getresponse()
        self.answer(r.status, r.getheaders(), r.read())
        conn.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
