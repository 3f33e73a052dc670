#!/usr/bin/env python3
"""A man in the middle for tests: forwards every request to an upstream airlockd on 127.0.0.1 and
answers chosen paths with forged bytes instead.

  proxy.py UPSTREAM_PORT SWAPS_FILE PORT_FILE LOG_FILE

SWAPS_FILE is read on every request (so a test switches the attack without a restart): a JSON object
{"GET /tuf/app/2.root.json": "/path/to/forged.json", ...}; a missing or empty file forwards all.
A value may also be an object, for attacks on what the server answers (the request is forwarded):
  {"save": PATH}      the upstream answer is passed on unchanged and its body written to PATH
  {"truncate": N}     only the first N bytes of the upstream body are sent (Content-Length N)
  {"endless": true}   the upstream body, then zero bytes without end (no Content-Length, the
                      connection closed when the client gives up); logged with "sent=BYTES", and
                      " capped" if the client took ENDLESS_CAP bytes without giving up
  {"answer": {"status": 429, "headers": {"Retry-After": "3"}, "body": {...}}}
                      answered by the proxy itself (not forwarded): that status, those headers
                      and the JSON body (or none)
A swap with "times": N (any of the above, e.g. {"truncate": 10, "times": 1}) applies to the first
N matching requests only (counted per path and swap while the swap stays as written); later ones
are forwarded unchanged, as a network that damaged one reply and then recovered.
Each request is logged as "METHOD PATH STATUS" to LOG_FILE. Listens on 127.0.0.1 only.
"""
import http.client
import http.server
import json
import os
import sys
import threading

UPSTREAM_PORT = int(sys.argv[1])
SWAPS_FILE, PORT_FILE, LOG_FILE = sys.argv[2], sys.argv[3], sys.argv[4]
ENDLESS_CAP = 256 << 20  # a client that never gives up must not fill the disk
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-connection", "expect"}


USED = {}  # (path, swap as written) -> how many requests it was applied to
USED_LOCK = threading.Lock()


def applies(key, mode):
    """Whether `mode` still applies to this request (its "times" not used up); counts it."""
    if not isinstance(mode, dict) or "times" not in mode:
        return True
    used_key = (key, json.dumps(mode, sort_keys=True))
    with USED_LOCK:
        used = USED.get(used_key, 0)
        if used >= int(mode["times"]):
            return False
        USED[used_key] = used + 1
        return True


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

    def log(self, status, extra=""):
        with open(LOG_FILE, "a") as f:
            f.write(f"{self.command} {self.path} {status}{extra}\n")

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
        key = f"{self.command} {self.path}"
        mode = swaps().get(key)
        if mode is not None and not applies(key, mode):
            mode = None
        if isinstance(mode, str):
            mode = {"file": mode}
        if mode is not None and "answer" in mode:
            a = mode["answer"]
            body = json.dumps(a["body"]).encode() if "body" in a else b""
            self.answer(int(a["status"]), [("Content-Type", "application/json")] +
                        list(a.get("headers", {}).items()), body)
            return
        if mode is not None and "file" in mode:
            with open(mode["file"], "rb") as f:
                self.answer(200, [("Content-Type", "application/json")], f.read())
            return
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM_PORT, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        headers["Content-Length"] = str(len(data))
        conn.request(self.command, self.path, body=data, headers=headers)
        r = conn.getresponse()
        status, answer_headers, body = r.status, r.getheaders(), r.read()
        conn.close()
        mode = mode or {}
        if "save" in mode:
            with open(mode["save"] + ".tmp", "wb") as f:
                f.write(body)
            os.rename(mode["save"] + ".tmp", mode["save"])
        if "truncate" in mode:
            body = body[:int(mode["truncate"])]
        if mode.get("endless"):
            self.endless(status, answer_headers, body)
            return
        self.answer(status, answer_headers, body)

    def endless(self, status, headers, data):
        self.close_connection = True
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        filler = bytes(65536)
        try:
            self.wfile.write(data)
            sent += len(data)
            while sent < ENDLESS_CAP:
                self.wfile.write(filler)
                sent += len(filler)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.log(status, f" sent={sent}" + (" capped" if sent >= ENDLESS_CAP else ""))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
