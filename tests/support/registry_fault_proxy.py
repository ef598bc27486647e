#!/usr/bin/env python3
"""An HTTP proxy that misbehaves on purpose, for registry client tests.

Placed in front of a registry (--upstream), it forwards requests and can, on the
requests whose path matches --match (default: everything under /v2/ but /v2/ itself):

  --token-auth USER:PASS   require Bearer tokens: answer 401 with
                           WWW-Authenticate: Bearer realm="<self>/token",service=..,scope=..
                           GET /token checks Basic USER:PASS and hands out an opaque token
  --anonymous-tokens       GET /token without credentials also gets a token
  --refresh-token TOKEN    POST /token with grant_type=refresh_token and this token works
  --fail-first N           answer --fail-status (default 500) to the first N matching requests
  --hang                   never answer matching requests
  --cut-first N            send half of the first N matching 200 bodies, then close
  --ignore-range           drop the Range header before forwarding (upstream answers 200)
  --corrupt                flip the last byte of matching 200 bodies
  --redirect-blobs         answer blob GETs with 307 to http://localhost:<port>/_storage/<path>,
                           which serves the blob without asking for auth

It is also an HTTP forward proxy: absolute-URI requests ("GET http://host/path") are
forwarded to that host and CONNECT opens a tunnel, so it can stand in for http_proxy /
HTTPS_PROXY.

Every request is appended to --log as one JSON object per line: method, path, kind
(direct, forward, connect, token, storage), authorization, range, status, and scope /
service for token requests. The chosen port is written to --port-file (listening on
127.0.0.1, port 0 = any free port). Standard library only.
"""

import argparse
import base64
import http.client
import http.server
import json
import os
import re
import secrets
import select
import signal
import socket
import threading
import time
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "proxy-connection"}


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = set()
        self.failed = 0
        self.cut = 0
        self.port = 0
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None
        self.match = re.compile(args.match) if args.match else None

    def record(self, entry):
        if not self.log:
            return
        with self.lock:
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()

    def matches(self, path):
        if self.match:
            return bool(self.match.search(path))
        return path.startswith("/v2/") and path.split("?")[0] != "/v2/"

    def take(self, counter, limit):
        """True while fewer than `limit` faults of this kind were injected."""
        with self.lock:
            value = getattr(self, counter)
            if value >= limit:
                return False
            setattr(self, counter, value + 1)
            return True


STATE = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "berth-fault-proxy"

    def log_message(self, *args):
        pass

    # ---- helpers ----

    def entry(self, kind, status):
        e = {"method": self.command, "path": self.path, "kind": kind, "status": status,
             "authorization": self.headers.get("Authorization", ""), "range": self.headers.get("Range", ""),
             "time": time.time()}
        return e

    def reply(self, status, body=b"", headers=None, kind="direct", extra=None):
        # Logged before answering, so a client that got its answer finds it in the log.
        e = self.entry(kind, status)
        e.update(extra or {})
        STATE.record(e)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def json_error(self, status, code, message, headers=None, kind="direct"):
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        self.reply(status, body, h, kind)

    def request_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def forward(self, origin, path, kind, strip_auth, faults):
        """Sends the request to origin (scheme://host:port) and relays the answer."""
        u = urllib.parse.urlsplit(origin)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if strip_auth:
            headers.pop("Authorization", None)
        if faults and STATE.args.ignore_range:
            headers.pop("Range", None)
        headers["Host"] = u.netloc
        body = self.request_body()
        try:
            conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
            conn.request(self.command, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
        except OSError as err:
            self.json_error(502, "UNAVAILABLE", "upstream: %s" % err, kind=kind)
            return
        status = resp.status
        if faults and STATE.args.corrupt and status == 200 and data and self.command == "GET":
            data = data[:-1] + bytes([data[-1] ^ 0x01])
        cut = (faults and status == 200 and self.command == "GET" and len(data) > 1 and
               STATE.take("cut", STATE.args.cut_first))
        e = self.entry(kind, status)
        if cut:
            e["cut"] = True
        STATE.record(e)
        self.send_response(status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if cut:
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if self.command != "HEAD":
            self.wfile.write(data)

    # ---- endpoints ----

    def token_endpoint(self):
        args = STATE.args
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        extra = {"scope": " ".join(query.get("scope", [])), "service": " ".join(query.get("service", [])),
                 "account": " ".join(query.get("account", []))}
        ok = False
        if self.command == "POST":
            form = urllib.parse.parse_qs((self.request_body() or b"").decode())
            extra["scope"] = " ".join(form.get("scope", []))
            extra["service"] = " ".join(form.get("service", []))
            extra["grant_type"] = " ".join(form.get("grant_type", []))
            ok = (args.refresh_token and form.get("grant_type") == ["refresh_token"] and
                  form.get("refresh_token") == [args.refresh_token])
            if not args.refresh_token:
                self.reply(404, b"not found", kind="token", extra=extra)
                return
        else:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                try:
                    given = base64.b64decode(auth[6:]).decode()
                except ValueError:
                    given = ""
                ok = given == args.token_auth
            else:
                ok = args.anonymous_tokens
        if not ok:
            body = json.dumps({"details": "incorrect username or password"}).encode()
            self.reply(401, body, {"Content-Type": "application/json"}, kind="token", extra=extra)
            return
        token = "tok-" + secrets.token_hex(12)
        with STATE.lock:
            STATE.tokens.add(token)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300,
                           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
        self.reply(200, body, {"Content-Type": "application/json"}, kind="token", extra=extra)

    def handle_any(self):
        args = STATE.args
        if self.path.startswith("http://") or self.path.startswith("https://"):
            u = urllib.parse.urlsplit(self.path)
            path = u.path + ("?" + u.query if u.query else "")
            self.forward("%s://%s" % (u.scheme, u.netloc), path, "forward", strip_auth=False, faults=False)
            return
        if self.path.startswith("/token"):
            self.token_endpoint()
            return
        if self.path.startswith("/_storage/"):
            inner = self.path[len("/_storage"):]
            self.forward(args.upstream, inner, "storage", strip_auth=True, faults=STATE.matches(inner))
            return
        if not args.upstream:
            self.json_error(502, "UNAVAILABLE", "no upstream configured")
            return
        path_only = self.path.split("?")[0]
        if args.token_auth and path_only.startswith("/v2"):
            auth = self.headers.get("Authorization", "")
            with STATE.lock:
                valid = auth.startswith("Bearer ") and auth[7:] in STATE.tokens
            if not valid:
                challenge = 'Bearer realm="http://127.0.0.1:%d/token",service="fault-proxy"' % STATE.port
                m = re.match(r"^/v2/(.+)/(manifests|blobs|tags)/", path_only)
                if m:
                    challenge += ',scope="repository:%s:pull"' % m.group(1)
                self.json_error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})
                return
        faults = STATE.matches(path_only)
        if faults and args.hang:
            STATE.record(self.entry("direct", None))
            time.sleep(3600)
            return
        if faults and STATE.take("failed", args.fail_first):
            if args.fail_status == 404:
                self.json_error(404, "MANIFEST_UNKNOWN" if "/manifests/" in path_only else "BLOB_UNKNOWN",
                                "injected not found")
            else:
                self.json_error(args.fail_status, "UNAVAILABLE", "injected failure %d" % args.fail_status)
            return
        if args.redirect_blobs and self.command == "GET" and "/blobs/" in path_only:
            location = "http://localhost:%d/_storage%s" % (STATE.port, self.path)
            self.reply(307, b"", {"Location": location})
            return
        self.forward(args.upstream, self.path, "direct", strip_auth=bool(args.token_auth), faults=faults)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def do_CONNECT(self):
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except (OSError, ValueError) as err:
            self.reply(502, str(err).encode(), kind="connect")
            return
        STATE.record(self.entry("connect", 200))
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        sockets = [self.connection, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 60)
                if not readable:
                    break
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is self.connection else self.connection).sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()


def main():
    global STATE
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", default="")
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", default="")
    p.add_argument("--token-auth", default="")
    p.add_argument("--anonymous-tokens", action="store_true")
    p.add_argument("--refresh-token", default="")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-status", type=int, default=500)
    p.add_argument("--hang", action="store_true")
    p.add_argument("--cut-first", type=int, default=0)
    p.add_argument("--ignore-range", action="store_true")
    p.add_argument("--corrupt", action="store_true")
    p.add_argument("--redirect-blobs", action="store_true")
    p.add_argument("--match", default="")
    args = p.parse_args()
    args.upstream = args.upstream.rstrip("/")
    STATE = State(args)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    STATE.port = server.server_address[1]
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d\n" % STATE.port)
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
