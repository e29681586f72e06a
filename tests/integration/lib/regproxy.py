#!/usr/bin/python3
"""regproxy -- a test-only reverse proxy in front of a real OCI registry.

Standard library only. Listens on 127.0.0.1, speaks HTTP/1.1 with keep-alive,
streams request and response bodies in 64 KiB pieces (Content-Length or
Transfer-Encoding: chunked), and exits by itself after --max-seconds.

Modes
  --token-auth USER:PASS   Bearer token server + gate, like Docker Hub
                           (GET/POST /token, scoped tokens, 401 challenges).
  --anonymous-pull         anonymous token requests get pull scopes.
  --token-ttl SECONDS      token lifetime (default 300).
  --mount-fallback         a mount whose token lacks pull on `from` becomes a
                           plain upload (Docker Hub style) instead of a 401.
  --no-state-fix           do not replace a stale upload `_state` (see below).
  --referrers-api          answer as an OCI 1.1 registry: OCI-Subject on a
                           manifest PUT with a subject, GET .../referrers/D.
  --fault SPEC             (repeatable) TYPE[=VALUE][,kind=GLOBS][,count=N]
                           [,after=BYTES][,repo=GLOB]

Fault types (count = how many times it fires, -1 = forever):
  fail500                  answer 500 without forwarding          kind *, count 1
  fail429[=SECONDS]        answer 429, Retry-After: SECONDS (1)  kind *, count 1
  drop                     close the connection, no answer       kind *, count 1
  stall=SECONDS[,after=B]  send nothing for SECONDS (after B bytes of the
                           response body if `after` is given), then go on
                                                                 kind *, count 1
  reset_upload_after=BYTES forward BYTES bytes of a PATCH/PUT upload body
                           upstream as a complete PATCH, then reset the client
                           connection        kind blob_upload_patch|blob_upload_put, count 1
  reject_monolithic_over=BYTES  413 for a request body > BYTES
                                                kind blob_upload_put, count -1
  chunk_min_length=N       add OCI-Chunk-Min-Length: N to upload POST answers
                                                kind blob_upload_post, count -1
  expire_tokens_after=N    after N more token-gated requests every token
                           issued so far is revoked (next request: 401)
                                                                 kind *, count 1
  corrupt_blob=DIGEST      serve that blob (or manifest) with its middle byte
                           flipped, same length           kind blob_get, count -1
  corrupt_upload           flip the first byte of an upload body on its way
                           upstream (the registry then refuses the digest)
                                                kind blob_upload_patch|blob_upload_put, count 1
  lose_reply               forward the request, then reset the client instead
                           of relaying the answer (the registry acted on it)
                                                kind blob_upload_put, count 1
  foreign_location=HOST:PORT  rewrite the Location of an upload answer to
                           http://HOST:PORT (same path and query): another
                           origin               kind blob_upload_post, count -1
  no_location              drop the Location header of a 202 answer
                                                kind blob_upload_post, count 1
  fail400=CODE             answer 400 with {"errors": [{"code": CODE}]}
                                                                 kind *, count 1
  replace_body=FILE        serve FILE's bytes instead of the upstream body,
                           with its own Content-Length and Docker-Content-Digest
                           (Content-Type kept)  kind manifest_get, count -1
  huge_header=BYTES        add an X-Regproxy-Pad header of BYTES bytes to the
                           answer                                kind *, count 1

Request kinds: base catalog token tags_list v2_other other, blob_head blob_get
blob_delete, blob_upload_post blob_upload_get blob_upload_patch
blob_upload_put blob_upload_delete, manifest_head manifest_get manifest_put
manifest_delete.  `kind` takes globs separated by `|`.

Control endpoint (never forwarded, never faulted, never gated):
  GET  /__proxy/stats   counts per kind, statuses, bytes, faults fired...
  GET  /__proxy/config  the live configuration (faults with remaining counts)
  POST /__proxy/config  JSON: {"faults": [..] (replace), "add_faults": [..],
                        "clear_faults": true, "token_ttl": N,
                        "anonymous_pull": bool, "mount_fallback": bool,
                        "state_fix": bool, "revoke_tokens": true,
                        "reset_stats": true}
                        a fault object: {"type": T, "value": V, "kind": K,
                        "count": N, "after": B, "repo": GLOB}

Upload state: distribution 2.8 signs the upload offset into the `_state`
query parameter and cancels an upload resumed with a stale one.  A client that
lost the answer to a PATCH (connection reset) only has the previous URL, so by
default the proxy replaces `_state` with the latest one the upstream issued
for that upload UUID (stats: state_fixes), emulating an OCI registry whose
upload URL stays valid.

Nothing that carries a credential (Authorization header, Basic password,
token, form body of POST /token) is ever written to the log or to stats.
"""

import argparse
import base64
import fnmatch
import http.client
import http.server
import json
import os
import re
import secrets
import socket
import struct
import sys
import threading
import time
import urllib.parse

CHUNK = 64 * 1024
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
    "expect",
}
FAULT_DEFAULTS = {
    "fail500": ("*", 1),
    "fail429": ("*", 1),
    "drop": ("*", 1),
    "stall": ("*", 1),
    "reset_upload_after": ("blob_upload_patch|blob_upload_put", 1),
    "reject_monolithic_over": ("blob_upload_put", -1),
    "chunk_min_length": ("blob_upload_post", -1),
    "expire_tokens_after": ("*", 1),
    "corrupt_blob": ("blob_get", -1),
    "corrupt_upload": ("blob_upload_patch|blob_upload_put", 1),
    "lose_reply": ("blob_upload_put", 1),
    "foreign_location": ("blob_upload_post", -1),
    "no_location": ("blob_upload_post", 1),
    "fail400": ("*", 1),
    "huge_header": ("*", 1),
    "replace_body": ("manifest_get", -1),
}
NEEDS_VALUE = {"stall", "reset_upload_after", "reject_monolithic_over",
               "chunk_min_length", "expire_tokens_after", "corrupt_blob",
               "foreign_location", "fail400", "huge_header", "replace_body"}


class Abort(Exception):
    """The connection was (or must be) dropped; no answer goes out."""


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def classify(method, path):
    """(kind, repository, reference) of a request path (no query)."""
    if path == "/token":
        return "token", None, None
    if path in ("/v2", "/v2/"):
        return "base", None, None
    if path == "/v2/_catalog":
        return "catalog", None, None
    m = method.lower()
    r = re.match(r"^/v2/(.+)/blobs/uploads/?$", path)
    if r:
        return "blob_upload_" + m, r.group(1), None
    r = re.match(r"^/v2/(.+)/blobs/uploads/([^/]+)$", path)
    if r:
        return "blob_upload_" + m, r.group(1), r.group(2)
    r = re.match(r"^/v2/(.+)/blobs/([^/]+)$", path)
    if r:
        return "blob_" + m, r.group(1), r.group(2)
    r = re.match(r"^/v2/(.+)/manifests/([^/]+)$", path)
    if r:
        return "manifest_" + m, r.group(1), r.group(2)
    r = re.match(r"^/v2/(.+)/tags/list$", path)
    if r:
        return "tags_list", r.group(1), None
    if path.startswith("/v2/"):
        return "v2_other", None, None
    return "other", None, None


def kind_matches(globs, kind):
    return any(fnmatch.fnmatchcase(kind, g.strip()) for g in str(globs).split("|"))


def parse_fault_spec(spec):
    """TYPE[=VALUE][,key=value...] -> fault dict."""
    parts = spec.split(",")
    head = parts[0]
    f = {}
    if "=" in head:
        f["type"], f["value"] = head.split("=", 1)
    else:
        f["type"] = head
    for p in parts[1:]:
        if "=" not in p:
            raise ValueError("bad fault option %r in %r" % (p, spec))
        k, v = p.split("=", 1)
        f[k.strip()] = v.strip()
    return normalise_fault(f)


def normalise_fault(f):
    if not isinstance(f, dict) or "type" not in f:
        raise ValueError("a fault needs a type")
    t = f["type"]
    if t not in FAULT_DEFAULTS:
        raise ValueError("unknown fault type %r" % t)
    kind, count = FAULT_DEFAULTS[t]
    out = {"type": t, "kind": str(f.get("kind", kind)), "count": int(f.get("count", count))}
    if t in NEEDS_VALUE and f.get("value") in (None, ""):
        raise ValueError("fault %s needs a value" % t)
    v = f.get("value")
    if t in ("corrupt_blob", "foreign_location", "fail400", "replace_body"):
        out["value"] = str(v)
    elif t == "stall":
        out["value"] = float(v)
    elif v not in (None, ""):
        out["value"] = int(v)
    if t == "fail429" and "value" not in out:
        out["value"] = 1
    if f.get("after") not in (None, ""):
        out["after"] = int(f["after"])
    if f.get("repo") not in (None, ""):
        out["repo"] = str(f["repo"])
    if t == "expire_tokens_after":
        out["left"] = int(f.get("left", out["value"]))
    out["fired"] = int(f.get("fired", 0))
    return out


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.upstream = args.upstream
        self.token_user = None
        self.token_pass = None
        if args.token_auth:
            self.token_user, self.token_pass = args.token_auth.split(":", 1)
        self.anonymous_pull = args.anonymous_pull
        self.token_ttl = args.token_ttl
        self.mount_fallback = args.mount_fallback
        self.state_fix = not args.no_state_fix
        self.faults = [parse_fault_spec(s) for s in args.fault]
        self.tokens = {}        # token -> {"seq", "scopes", "expires", "user"}
        self.refresh = {}       # refresh token -> user
        self.token_seq = 0
        self.min_valid_seq = 0
        self.uploads = {}       # upload uuid -> latest upstream query string
        self.referrers_api = args.referrers_api
        self.referrers = {}     # (repo, subject digest) -> {digest: descriptor}
        self.addr = None
        self.reset_stats()

    def reset_stats(self):
        self.stats = {
            "requests": 0, "counts": {}, "statuses": {}, "bytes_uploaded": 0,
            "bytes_downloaded": 0, "faults_fired": {}, "tokens_issued": 0,
            "token_denied": 0, "auth_challenges": 0, "mount_requests": 0,
            "mounts": 0, "mount_fallbacks": 0, "state_fixes": 0,
            "authorization_seen": 0, "authorization_kinds": {},
        }

    def bump(self, key, sub=None, n=1):
        with self.lock:
            if sub is None:
                self.stats[key] += n
            else:
                d = self.stats[key]
                d[sub] = d.get(sub, 0) + n

    def take_fault(self, ftype, kind, repo, pred=None):
        """The first armed fault of that type matching kind; consumes one count."""
        with self.lock:
            for f in self.faults:
                if f["type"] != ftype or f["count"] == 0:
                    continue
                if not kind_matches(f["kind"], kind):
                    continue
                if "repo" in f and not fnmatch.fnmatchcase(repo or "", f["repo"]):
                    continue
                if pred is not None and not pred(f):
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                f["fired"] += 1
                self.stats["faults_fired"][ftype] = self.stats["faults_fired"].get(ftype, 0) + 1
                return dict(f)
        return None

    def peek_fault(self, ftype, kind, repo):
        with self.lock:
            for f in self.faults:
                if (f["type"] == ftype and f["count"] != 0 and kind_matches(f["kind"], kind)
                        and ("repo" not in f or fnmatch.fnmatchcase(repo or "", f["repo"]))):
                    return dict(f)
        return None

    def config_json(self):
        with self.lock:
            return {
                "upstream": self.upstream, "addr": self.addr,
                "token_auth": self.token_user is not None,
                "anonymous_pull": self.anonymous_pull, "token_ttl": self.token_ttl,
                "mount_fallback": self.mount_fallback, "state_fix": self.state_fix,
                "faults": [dict(f) for f in self.faults],
            }

    def apply_config(self, cfg):
        if not isinstance(cfg, dict):
            raise ValueError("config must be a JSON object")
        new_faults = None
        if "faults" in cfg:
            new_faults = [normalise_fault(f) for f in cfg["faults"]]
        add = [normalise_fault(f) for f in cfg.get("add_faults", [])]
        with self.lock:
            if cfg.get("clear_faults"):
                self.faults = []
            if new_faults is not None:
                self.faults = new_faults
            self.faults.extend(add)
            for k in ("anonymous_pull", "mount_fallback", "state_fix"):
                if k in cfg:
                    setattr(self, k, bool(cfg[k]))
            if "token_ttl" in cfg:
                self.token_ttl = int(cfg["token_ttl"])
            if cfg.get("revoke_tokens"):
                self.min_valid_seq = self.token_seq + 1
            if cfg.get("reset_stats"):
                self.reset_stats()

    # ---- tokens -------------------------------------------------------
    def issue_token(self, user, scopes):
        granted = {}
        for typ, name, actions in scopes:
            if user is not None:
                ok = [a for a in actions if a in ("pull", "push", "delete", "*")]
            elif self.anonymous_pull:
                ok = [a for a in actions if a == "pull"]
            else:
                ok = []
            if ok:
                granted.setdefault((typ, name), set()).update(ok)
        tok = "rp-" + secrets.token_hex(24)
        with self.lock:
            self.token_seq += 1
            self.tokens[tok] = {"seq": self.token_seq, "scopes": granted,
                                "expires": time.time() + self.token_ttl, "user": user}
            self.stats["tokens_issued"] += 1
            ttl = self.token_ttl
        return tok, ttl, granted

    def check_token(self, tok):
        """token record or None if unknown, expired or revoked."""
        with self.lock:
            rec = self.tokens.get(tok)
            if rec is None or rec["seq"] < self.min_valid_seq or rec["expires"] < time.time():
                return None
            return rec


def parse_scopes(values):
    out = []
    for v in values:
        for s in v.split():
            if s.count(":") < 2:
                continue
            typ, rest = s.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            out.append((typ, name, [a for a in actions.split(",") if a]))
    return out


def scope_string(reqs):
    return " ".join("%s:%s:%s" % (t, n, ",".join(a)) for t, n, a in reqs)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "regproxy/1"
    timeout = 600
    S = None  # State, set in main

    # Expect: 100-continue is answered lazily, only when the body is read.
    def handle_expect_100(self):
        self._expect100 = True
        return True

    def log_message(self, fmt, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, socket.timeout, Abort, OSError):
            self.close_connection = True

    def handle_one_request(self):
        self._expect100 = False
        super().handle_one_request()

    def do_GET(self):
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # ---- body reading ----------------------------------------------------
    def _continue(self):
        if self._expect100:
            self._expect100 = False
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def body_pieces(self, limit=None):
        """Yields the request body in pieces (at most `limit` bytes)."""
        self._continue()
        left_limit = limit
        if self.chunked:
            while True:
                if self.body_left == 0:
                    return
                if self._chunk_left == 0:
                    if left_limit == 0:
                        return
                    line = self.rfile.readline(65537)
                    if not line:
                        raise Abort()
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while True:  # trailers
                            t = self.rfile.readline(65537)
                            if t in (b"\r\n", b"\n", b""):
                                break
                        self.body_left = 0
                        return
                    self._chunk_left = size
                n = min(self._chunk_left, CHUNK)
                if left_limit is not None:
                    if left_limit == 0:
                        return
                    n = min(n, left_limit)
                data = self.rfile.read(n)
                if not data:
                    raise Abort()
                self._chunk_left -= len(data)
                if self._chunk_left == 0:
                    self.rfile.readline(3)  # CRLF closing the chunk
                if left_limit is not None:
                    left_limit -= len(data)
                yield data
        else:
            while self.body_left > 0:
                n = min(self.body_left, CHUNK)
                if left_limit is not None:
                    if left_limit == 0:
                        return
                    n = min(n, left_limit)
                data = self.rfile.read(n)
                if not data:
                    raise Abort()
                self.body_left -= len(data)
                if left_limit is not None:
                    left_limit -= len(data)
                yield data

    def body_consumed(self):
        return self.body_left == 0

    # ---- answering -----------------------------------------------------
    def reply(self, code, body=b"", headers=(), ctype="application/json"):
        if not self.body_consumed():
            self.close_connection = True
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        if body or code not in (204, 304):
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.status = code
        self.bytes_out += len(body)

    def reset_client(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True
        raise Abort()

    def write_log(self):
        S = self.S
        path = self.path_only
        if self.kind == "token":
            q = urllib.parse.parse_qs(self.query)
            shown = {k: q[k] for k in ("service", "scope") if k in q}
            path += ("?" + urllib.parse.urlencode(shown, doseq=True)) if shown else ""
        elif self.query:
            path += "?" + self.query
        line = "%s %s %s %s kind=%s in=%d out=%d ms=%d%s\n" % (
            now_rfc3339(), self.command, path, self.status, self.kind, self.bytes_in,
            self.bytes_out, int((time.time() - self.t0) * 1000),
            (" fault=" + ",".join(self.fired)) if self.fired else "")
        LOG.write(line)

    # ---- main dispatch -----------------------------------------------------
    def dispatch(self):
        S = self.S
        self.t0 = time.time()
        self.status = "-"
        self.bytes_in = self.bytes_out = 0
        self.fired = []
        u = urllib.parse.urlsplit(self.path)
        self.path_only, self.query = u.path, u.query
        self.kind, self.repo, self.ref = classify(self.command, self.path_only)
        te = self.headers.get("Transfer-Encoding", "")
        self.chunked = "chunked" in te.lower()
        try:
            self.body_left = None if self.chunked else int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.body_left = 0
        self._chunk_left = 0
        if self.path_only.startswith("/__proxy/"):
            return self.control()
        try:
            self.proxied()
        finally:
            if self.status != "-" or self.fired:
                S.bump("statuses", "%s %s" % (self.kind, self.status))
            self.write_log()

    def control(self):
        S = self.S
        p = self.path_only
        try:
            if p == "/__proxy/stats" and self.command == "GET":
                with S.lock:
                    body = json.loads(json.dumps(S.stats))
                return self.reply(200, body)
            if p == "/__proxy/config" and self.command == "GET":
                return self.reply(200, S.config_json())
            if p == "/__proxy/config" and self.command == "POST":
                raw = b"".join(self.body_pieces(limit=1 << 20))
                S.apply_config(json.loads(raw.decode() or "{}"))
                return self.reply(200, S.config_json())
            if p == "/__proxy/health":
                return self.reply(200, {"ok": True})
            return self.reply(404, {"error": "unknown control endpoint"})
        except (ValueError, KeyError, TypeError) as e:
            return self.reply(400, {"error": str(e)})

    def proxied(self):
        S = self.S
        with S.lock:
            S.stats["requests"] += 1
            S.stats["counts"][self.kind] = S.stats["counts"].get(self.kind, 0) + 1
        kind, repo = self.kind, self.repo
        if self.headers.get("Authorization") is not None:
            # Counted, never recorded: which requests carried credentials.
            S.bump("authorization_seen")
            S.bump("authorization_kinds", sub=kind)

        f = S.take_fault("stall", kind, repo, pred=lambda f: "after" not in f)
        if f:
            self.fired.append("stall")
            time.sleep(f["value"])
        if S.take_fault("drop", kind, repo):
            self.fired.append("drop")
            self.reset_client()
        f = S.take_fault("fail400", kind, repo)
        if f:
            self.fired.append("fail400")
            return self.reply(400, {"errors": [{"code": f["value"], "message": "regproxy: injected 400",
                                                "detail": {}}]})
        if S.take_fault("fail500", kind, repo):
            self.fired.append("fail500")
            return self.reply(500, {"errors": [{"code": "UNKNOWN", "message": "regproxy: injected 500"}]})
        f = S.take_fault("fail429", kind, repo)
        if f:
            self.fired.append("fail429")
            return self.reply(429, {"errors": [{"code": "TOOMANYREQUESTS", "message": "regproxy: injected 429"}]},
                              headers=[("Retry-After", str(f["value"]))])

        if kind == "token":
            return self.token_endpoint()

        query = self.query
        if S.token_user is not None and self.path_only.startswith("/v2"):
            query = self.gate(query)
            if query is None:
                return

        if S.referrers_api:
            r = re.match(r"^/v2/(.+)/referrers/(sha256:[0-9a-f]{64})$", self.path_only)
            if r and self.command == "GET":
                with S.lock:
                    descs = sorted(S.referrers.get((r.group(1), r.group(2)), {}).values(),
                                   key=lambda d: d["digest"])
                self.kind = "referrers_get"
                return self.reply(200, {"schemaVersion": 2, "manifests": descs,
                                        "mediaType": "application/vnd.oci.image.index.v1+json"},
                                  ctype="application/vnd.oci.image.index.v1+json")
            if kind == "manifest_put":
                return self.forward(query, self.note_subject(repo))

        f = S.peek_fault("reject_monolithic_over", kind, repo)
        buffered = None
        if f:
            too_big = False
            if self.chunked:
                buffered = b"".join(self.body_pieces(limit=f["value"] + 1))
                too_big = len(buffered) > f["value"]
            else:
                too_big = self.body_left > f["value"]
            if too_big and S.take_fault("reject_monolithic_over", kind, repo):
                self.fired.append("reject_monolithic_over")
                return self.reply(413, {"errors": [{"code": "SIZE_INVALID",
                                                    "message": "regproxy: request entity too large"}]})
        return self.forward(query, buffered)

    def note_subject(self, repo):
        """--referrers-api: a manifest PUT with a subject is listed under it,
        and answered with OCI-Subject as a 1.1 registry does."""
        import hashlib
        body = b"".join(self.body_pieces(limit=4 << 20))
        try:
            m = json.loads(body.decode())
        except ValueError:
            return body
        subj = m.get("subject") if isinstance(m, dict) else None
        if isinstance(subj, dict) and "digest" in subj:
            d = {"mediaType": m.get("mediaType", self.headers.get("Content-Type")),
                 "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "size": len(body),
                 "artifactType": m.get("artifactType") or m.get("config", {}).get("mediaType")}
            if m.get("annotations"):
                d["annotations"] = m["annotations"]
            with self.S.lock:
                self.S.referrers.setdefault((repo, subj["digest"]), {})[d["digest"]] = d
            self.extra_headers = [("OCI-Subject", subj["digest"])]
        return body

    # ---- token server and gate -----------------------------------------
    def basic_user(self):
        """(present, user-or-None): user is None on wrong credentials."""
        h = self.headers.get("Authorization", "")
        if not h.lower().startswith("basic "):
            return False, None
        try:
            user, pw = base64.b64decode(h[6:].strip()).decode().split(":", 1)
        except Exception:
            return True, None
        S = self.S
        if user == S.token_user and secrets.compare_digest(pw, S.token_pass):
            return True, user
        return True, None

    def token_endpoint(self):
        S = self.S
        if S.token_user is None:
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "no token server"}]})
        user = None
        if self.command == "POST":
            raw = b"".join(self.body_pieces(limit=1 << 20)).decode(errors="replace")
            form = urllib.parse.parse_qs(raw)
            g = (form.get("grant_type") or [""])[0]
            if g == "password":
                u = (form.get("username") or [""])[0]
                p = (form.get("password") or [""])[0]
                if u != S.token_user or not secrets.compare_digest(p, S.token_pass):
                    return self.reply(401, {"details": "incorrect username or password"})
                user = u
            elif g == "refresh_token":
                with S.lock:
                    user = S.refresh.get((form.get("refresh_token") or [""])[0])
                if user is None:
                    return self.reply(401, {"details": "invalid refresh token"})
            else:
                return self.reply(400, {"details": "unsupported grant_type"})
            scopes = parse_scopes(form.get("scope", []))
        else:
            present, user = self.basic_user()
            if present and user is None:
                return self.reply(401, {"details": "incorrect username or password"},
                                  headers=[("WWW-Authenticate", 'Basic realm="regproxy"')])
            scopes = parse_scopes(urllib.parse.parse_qs(self.query).get("scope", []))
        tok, ttl, _ = S.issue_token(user, scopes)
        body = {"token": tok, "access_token": tok, "expires_in": ttl, "issued_at": now_rfc3339()}
        if self.command == "POST" and user is not None:
            rt = "rr-" + secrets.token_hex(16)
            with S.lock:
                S.refresh[rt] = user
            body["refresh_token"] = rt
        return self.reply(200, body)

    def challenge(self, reqs, error=None):
        S = self.S
        S.bump("auth_challenges")
        c = 'Bearer realm="http://%s/token",service="regproxy"' % S.addr
        if reqs:
            c += ',scope="%s"' % scope_string(reqs)
        if error:
            c += ',error="%s"' % error
        detail = [{"Type": t, "Name": n, "Action": ",".join(a)} for t, n, a in reqs]
        return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required",
                                            "detail": detail}]},
                          headers=[("WWW-Authenticate", c)])

    def gate(self, query):
        """Checks the Bearer token; returns the (maybe rewritten) query or None."""
        S = self.S
        m = self.command
        reqs = []
        mount_from = None
        if self.kind == "catalog":
            reqs.append(("registry", "catalog", ["*"]))
        elif self.repo:
            if m in ("GET", "HEAD"):
                acts = ["pull"]
            elif m == "DELETE":
                acts = ["delete"]
            else:
                acts = ["pull", "push"]
            reqs.append(("repository", self.repo, acts))
            if self.kind == "blob_upload_post":
                q = urllib.parse.parse_qs(query)
                if "mount" in q and "from" in q:
                    mount_from = q["from"][0]
                    S.bump("mount_requests")
                    reqs.append(("repository", mount_from, ["pull"]))
        h = self.headers.get("Authorization", "")
        rec = None
        if h.lower().startswith("bearer "):
            rec = S.check_token(h[7:].strip())
            if rec is None:
                S.bump("token_denied")
                return self.challenge(reqs, "invalid_token")
        if rec is None:
            return self.challenge(reqs)

        def has(t, n, a):
            got = rec["scopes"].get((t, n), set())
            return a in got or "*" in got

        missing = [r for r in reqs if not all(has(r[0], r[1], a) for a in r[2])]
        if missing:
            if (S.mount_fallback and mount_from is not None and missing == [reqs[-1]]):
                S.bump("mount_fallbacks")
                q = [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
                     if k not in ("mount", "from")]
                query = urllib.parse.urlencode(q)
            else:
                S.bump("token_denied")
                return self.challenge(reqs, "insufficient_scope")
        # expire_tokens_after: counts token-gated requests, then revokes.
        with S.lock:
            for f in S.faults:
                if (f["type"] == "expire_tokens_after" and f["count"] != 0
                        and kind_matches(f["kind"], self.kind)):
                    if f["left"] > 0:
                        f["left"] -= 1
                    else:
                        S.min_valid_seq = S.token_seq + 1
                        if f["count"] > 0:
                            f["count"] -= 1
                        f["fired"] += 1
                        f["left"] = f["value"]
                        S.stats["faults_fired"]["expire_tokens_after"] = \
                            S.stats["faults_fired"].get("expire_tokens_after", 0) + 1
                        self.fired.append("expire_tokens_after")
                    break
        if self.fired and self.fired[-1] == "expire_tokens_after":
            S.bump("token_denied")
            self.challenge(reqs, "invalid_token")
            return None
        return query

    # ---- forwarding ------------------------------------------------------
    def upstream_conn(self, fresh=False):
        c = getattr(self, "_up", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            host, port = self.S.upstream.rsplit(":", 1)
            c = http.client.HTTPConnection(host, int(port), timeout=600)
            self._up = c
        return c

    def fix_state(self, query):
        S = self.S
        if not S.state_fix or not self.kind.startswith("blob_upload_") or not self.ref:
            return query
        with S.lock:
            latest = S.uploads.get(self.ref)
        if latest is None:
            return query
        q = urllib.parse.parse_qsl(query, keep_blank_values=True)
        lq = dict(urllib.parse.parse_qsl(latest, keep_blank_values=True))
        if "_state" not in lq:
            return query
        changed = False
        out = []
        for k, v in q:
            if k == "_state" and v != lq["_state"]:
                v = lq["_state"]
                changed = True
            out.append((k, v))
        if changed:
            S.bump("state_fixes")
            return urllib.parse.urlencode(out)
        return query

    def forward(self, query, buffered):
        S = self.S
        method = self.command
        query = self.fix_state(query)
        up_prefix = "http://" + S.upstream
        headers = []
        conn_named = {t.strip().lower() for t in self.headers.get("Connection", "").split(",")}
        for k, v in self.headers.items():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk in conn_named or lk in ("host", "content-length", "http2-settings"):
                continue
            if lk == "authorization" and S.token_user is not None:
                continue
            headers.append((k, v))
        headers.append(("Host", S.upstream))

        has_body = self.chunked or (self.body_left or 0) > 0 or buffered is not None
        reset_at = None
        if has_body and self.kind in ("blob_upload_patch", "blob_upload_put"):
            f = S.peek_fault("reset_upload_after", self.kind, self.repo)
            if f is not None:
                if buffered is None and self.chunked and method == "PUT":
                    buffered = b"".join(self.body_pieces(limit=f["value"] + 1))
                    if len(buffered) <= f["value"]:  # body shorter: no reset
                        f = None
                size = len(buffered) if buffered is not None else (None if self.chunked else self.body_left)
                if f is not None and (size is None or size > f["value"]):
                    if S.take_fault("reset_upload_after", self.kind, self.repo):
                        self.fired.append("reset_upload_after")
                        reset_at = f["value"]
        if reset_at is not None:
            # Upstream gets a complete PATCH of the first reset_at bytes.
            if method == "PUT":
                method = "PATCH"
                query = urllib.parse.urlencode(
                    [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k != "digest"])
            headers = [(k, v) for k, v in headers if k.lower() != "content-range"]
            cr = self.headers.get("Content-Range")
            start = 0
            if cr:
                mm = re.match(r"^(?:bytes )?(\d+)-", cr.strip())
                if mm:
                    start = int(mm.group(1))
                if reset_at > 0:
                    headers.append(("Content-Range", "%d-%d" % (start, start + reset_at - 1)))

        target = self.path_only + ("?" + query if query else "")
        body_len = None
        if reset_at is not None:
            body_len = reset_at
        elif buffered is not None and not (self.chunked and not self.body_consumed()):
            body_len = len(buffered)
        elif not self.chunked:
            body_len = self.body_left
        if reset_at is not None and self.chunked and buffered is None:
            body_len = None
        use_chunked = body_len is None

        def send_request(conn):
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            if use_chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif body_len or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(body_len))
            conn.endheaders()

        conn = self.upstream_conn()
        if not has_body:
            for attempt in (0, 1):
                try:
                    send_request(conn)
                    resp = conn.getresponse()
                    break
                except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                    if attempt:
                        raise
                    conn = self.upstream_conn(fresh=True)
        else:
            try:
                send_request(conn)
            except (ConnectionError, BrokenPipeError):
                conn = self.upstream_conn(fresh=True)
                send_request(conn)
            upload = self.kind.startswith("blob_upload_")
            sent = 0

            def out(data):
                nonlocal sent
                if use_chunked:
                    conn.send(b"%x\r\n" % len(data) + data + b"\r\n")
                else:
                    conn.send(data)
                sent += len(data)

            def pieces():
                if buffered is not None:
                    if reset_at is not None:
                        yield buffered[:reset_at]
                        return
                    yield buffered
                    if not self.chunked or self.body_consumed():
                        return
                    # chunked body continues beyond what was buffered
                if reset_at is not None:
                    yield from self.body_pieces(limit=reset_at)
                else:
                    yield from self.body_pieces()

            corrupt = has_body and S.take_fault("corrupt_upload", self.kind, self.repo)
            if corrupt:
                self.fired.append("corrupt_upload")
            try:
                for data in pieces():
                    if corrupt and data:
                        data = bytes([data[0] ^ 0xFF]) + data[1:]
                        corrupt = None
                    out(data)
                    self.bytes_in += len(data)
                    if upload:
                        S.bump("bytes_uploaded", n=len(data))
                if use_chunked:
                    conn.send(b"0\r\n\r\n")
            except Abort:
                # client went away mid-body: upstream gets a truncated request
                self._up = None
                conn.close()
                raise
            resp = conn.getresponse()

        if reset_at is not None:
            resp.read()
            self.note_location(resp.getheader("Location"))
            self.status = "reset(upstream %d)" % resp.status
            self.reset_client()

        if S.take_fault("lose_reply", self.kind, self.repo):
            self.fired.append("lose_reply")
            resp.read()
            self.note_location(resp.getheader("Location"))
            if self.kind == "blob_upload_put" and resp.status == 201 and self.ref:
                with S.lock:
                    S.uploads.pop(self.ref, None)
            self.status = "lost(upstream %d)" % resp.status
            self.reset_client()

        self.relay(resp, method, up_prefix)

    def note_location(self, loc):
        if not loc:
            return
        u = urllib.parse.urlsplit(loc)
        m = re.match(r"^/v2/.+/blobs/uploads/([^/]+)$", u.path)
        if m:
            with self.S.lock:
                self.S.uploads[m.group(1)] = u.query

    def relay(self, resp, method, up_prefix):
        S = self.S
        status = resp.status
        hdrs = []
        clen = None
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk in ("date", "server"):
                continue
            if lk == "content-length":
                clen = int(v)
                continue
            if lk == "location":
                self.note_location(v)
                if v.startswith(up_prefix):
                    v = "http://" + S.addr + v[len(up_prefix):]
                if self.kind == "blob_upload_post" and status == 202:
                    if S.take_fault("no_location", self.kind, self.repo):
                        self.fired.append("no_location")
                        continue
                    f = S.take_fault("foreign_location", self.kind, self.repo)
                    if f:
                        self.fired.append("foreign_location")
                        u = urllib.parse.urlsplit(v)
                        v = urllib.parse.urlunsplit(("http", f["value"], u.path, u.query, ""))
            hdrs.append((k, v))
        hdrs.extend(getattr(self, "extra_headers", []))
        self.extra_headers = []
        f = S.take_fault("replace_body", self.kind, self.repo) if status == 200 else None
        if f:
            self.fired.append("replace_body")
            with open(f["value"], "rb") as fh:
                body = fh.read()
            resp.read()
            import hashlib
            hdrs = [(k, v) for k, v in hdrs if k.lower() != "docker-content-digest"]
            hdrs.append(("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest()))
            self.send_response(status, resp.reason)
            for k, v in hdrs:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.status = status
            if method != "HEAD":
                self.wfile.write(body)
                self.bytes_out += len(body)
            return
        f = S.take_fault("huge_header", self.kind, self.repo)
        if f:
            self.fired.append("huge_header")
            hdrs.append(("X-Regproxy-Pad", "a" * f["value"]))
        if self.kind == "blob_upload_put" and status == 201 and self.ref:
            with S.lock:
                S.uploads.pop(self.ref, None)
        if self.kind == "blob_upload_post":
            if status == 201 and "mount=" in self.query:
                S.bump("mounts")
            if status == 202:
                f = S.take_fault("chunk_min_length", self.kind, self.repo)
                if f:
                    self.fired.append("chunk_min_length")
                    hdrs.append(("OCI-Chunk-Min-Length", str(f["value"])))
        corrupt_at = None
        if method == "GET" and status in (200, 206) and self.ref:
            ref = self.ref
            f = S.peek_fault("corrupt_blob", self.kind, self.repo)
            if f and f["value"] == ref and S.take_fault("corrupt_blob", self.kind, self.repo):
                self.fired.append("corrupt_blob")
                total = clen or 0
                first = 0
                cr = resp.getheader("Content-Range")
                if cr:
                    mm = re.match(r"^bytes (\d+)-(\d+)/(\d+)", cr)
                    if mm:
                        first, total = int(mm.group(1)), int(mm.group(3))
                corrupt_at = total // 2 - first
        stall = None
        if self.command != "HEAD":
            stall = S.take_fault("stall", self.kind, self.repo, pred=lambda f: "after" in f)
            if stall:
                self.fired.append("stall")

        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        if not self.body_consumed():
            self.close_connection = True
        self.send_response(status, resp.reason)
        for k, v in hdrs:
            self.send_header(k, v)
        chunked_out = False
        if clen is not None:
            self.send_header("Content-Length", str(clen))
        elif not no_body:
            self.send_header("Transfer-Encoding", "chunked")
            chunked_out = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.status = status
        if no_body:
            resp.read()
            return
        pos = 0
        download = self.kind == "blob_get"
        try:
            while True:
                data = resp.read(CHUNK)
                if not data:
                    break
                if corrupt_at is not None and pos <= corrupt_at < pos + len(data):
                    i = corrupt_at - pos
                    data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
                if stall is not None and pos <= stall["after"] < pos + len(data):
                    i = stall["after"] - pos
                    self.wfile.write(b"%x\r\n" % i + data[:i] + b"\r\n" if chunked_out and i else data[:i])
                    time.sleep(stall["value"])
                    data = data[i:]
                    pos += i
                    self.bytes_out += i
                    stall = None
                if data:
                    self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n" if chunked_out else data)
                pos += len(data)
                self.bytes_out += len(data)
                if download:
                    S.bump("bytes_downloaded", n=len(data))
            if chunked_out:
                self.wfile.write(b"0\r\n\r\n")
        except (ConnectionError, OSError):
            self._up = None
            resp.close()
            raise


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class Log:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.f = open(path, "a", buffering=1) if path else None

    def write(self, line):
        if self.f:
            with self.lock:
                self.f.write(line)


LOG = Log(None)


def main():
    global LOG
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the real registry")
    ap.add_argument("--listen", default="127.0.0.1", help="loopback address to listen on (127.0.0.2 is another host)")
    ap.add_argument("--port", type=int, default=0, help="listen port (0 = any free)")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--log", help="one line per request (never credentials)")
    ap.add_argument("--max-seconds", type=float, default=1800)
    ap.add_argument("--token-auth", metavar="USER:PASS")
    ap.add_argument("--anonymous-pull", action="store_true")
    ap.add_argument("--token-ttl", type=int, default=300)
    ap.add_argument("--mount-fallback", action="store_true")
    ap.add_argument("--no-state-fix", action="store_true")
    ap.add_argument("--fault", action="append", default=[], metavar="SPEC")
    ap.add_argument("--referrers-api", action="store_true",
                    help="answer as an OCI 1.1 registry: OCI-Subject on manifest PUTs with a "
                         "subject, GET /v2/<name>/referrers/<digest>")
    args = ap.parse_args()
    try:
        state = State(args)
    except ValueError as e:
        ap.error(str(e))
    LOG = Log(args.log)
    Handler.S = state
    srv = Server((args.listen, args.port), Handler)
    port = srv.server_address[1]
    state.addr = "%s:%d" % (args.listen, port)
    timer = threading.Timer(args.max_seconds, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    sys.stderr.write("regproxy: listening on %s -> %s\n" % (state.addr, args.upstream))
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
