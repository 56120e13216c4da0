#!/usr/bin/env python3
"""http_test.py — `helios serve` end to end on a free loopback port: every endpoint and status
code, a list of bad inputs (each answered with the right 4xx while the server keeps serving),
the auth scope matrix, slow and pipelining clients, 850 keep-alive connections at once with every
response verified, the /metrics text through promtool, and a graceful stop on SIGTERM.

The contract part (every endpoint) also runs on a fleet, as the backend matrix:
  local   one node on its local store (and everything else above);
  bucket  two nodes on one S3 bucket (tests/s3): every write through node A, every read through
          node B;
  helios  two nodes whose backend is a third helios server: writes through A, reads through B.

usage: http_test.py HELIOS_BINARY [local|bucket|helios]"""
import hashlib
import http.client
import json
import os
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HELIOS = sys.argv[1]
FAILS = []
PASSES = 0


def check(cond, what):
    global PASSES
    if cond:
        PASSES += 1
    else:
        FAILS.append(what)
        print("FAIL:", what, flush=True)


def b3(data):
    """The BLAKE3 id of data, computed by helios itself (hash is tested against b3sum elsewhere)."""
    r = subprocess.run([HELIOS, "hash", "-"], input=data, capture_output=True, check=True)
    return r.stdout.split()[0].decode()


def b3_many(datas):
    """The ids of many byte strings with one `helios hash` run (a process per id is slow under
    the sanitizers)."""
    with tempfile.TemporaryDirectory(prefix="helios-b3-") as d:
        paths = []
        for i, data in enumerate(datas):
            paths.append(os.path.join(d, "%d" % i))
            with open(paths[-1], "wb") as f:
                f.write(data)
        r = subprocess.run([HELIOS, "hash", *paths], capture_output=True, check=True)
    return [l.split()[0].decode() for l in r.stdout.splitlines()]


MODE = sys.argv[2] if len(sys.argv) > 2 else "local"


class Server:
    def __init__(self, store, *args, config=None):
        self.errlog = tempfile.NamedTemporaryFile(prefix="helios-serve-", suffix=".err")
        conf = ["--config", config] if config else []
        self.proc = subprocess.Popen([HELIOS, "--store", store, *conf, "serve", "--listen", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=self.errlog)
        line = self.proc.stdout.readline().decode()
        if "serving http://" not in line:
            raise SystemExit("server did not start: %r %r" % (line, self.stderr()))
        self.port = int(line.rsplit(":", 1)[1])

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)

    def req(self, method, path, body=None, headers=None, conn=None):
        c = conn or self.conn()
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def alive(self):
        st, _, _ = self.req("GET", "/healthz")
        return st == 200

    def stderr(self):
        with open(self.errlog.name, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = -9
        if rc != 0:
            print("server stderr (exit %d):\n%s" % (rc, self.stderr()[-6000:]))
        return rc


class Pair:
    """Two nodes of one fleet seen as one server: writes go to a, reads (GET, HEAD) to b."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.port = a.port

    def conn(self):
        return self.a.conn()

    def req(self, method, path, body=None, headers=None, conn=None):
        node = self.b if method in ("GET", "HEAD") else self.a
        return node.req(method, path, body, headers, conn)


class S3Bucket:
    """The S3 test server (tests/s3/server.js) on a free loopback port."""

    def __init__(self, tmp):
        here = os.path.dirname(os.path.abspath(__file__))
        self.out = open(os.path.join(tmp, "s3.out"), "w+")
        self.proc = subprocess.Popen(["node", os.path.join(here, "..", "s3", "server.js"), os.path.join(tmp, "bucket")],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        self.port = None
        while self.port is None and time.time() < deadline and self.proc.poll() is None:
            self.out.seek(0)
            m = re.search(r"listening (\d+)", self.out.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.1)
        if self.port is None:
            self.stop()
            raise SystemExit("S3 test server did not start")

    def config(self, path):
        with open(path, "w") as f:
            f.write("[tier]\nbackend = s3\nl2-bytes = 16M\nremote-timeout = 10s\n"
                    "[s3]\nendpoint = http://127.0.0.1:%d\nbucket = helios\nprefix = matrix\n"
                    "access-key = helios-test\nsecret-key = helios-secret\n" % self.port)
        os.chmod(path, 0o600)
        return path

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def fleet(tmp, mode):
    """Starts the fleet of a backend mode; returns (Pair, [everything to stop, last first])."""
    stops = []
    if mode == "bucket":
        bucket = S3Bucket(tmp)
        stops.append(bucket)
        conf = bucket.config(os.path.join(tmp, "fleet.conf"))
    else:
        far = Server(os.path.join(tmp, "far"), "--max-body", "8M")
        stops.append(far)
        conf = os.path.join(tmp, "fleet.conf")
        with open(conf, "w") as f:
            f.write("[tier]\nbackend = helios\nremote-url = http://127.0.0.1:%d\nl2-bytes = 16M\n" % far.port)
    nodes = []
    for name in ("a", "b"):
        nodes.append(Server(os.path.join(tmp, name), "--max-body", "8M", "--idle-timeout", "30", config=conf))
        stops.append(nodes[-1])
    return Pair(nodes[0], nodes[1]), stops


def raw(port, data, timeout=5.0, shut=True):
    """Sends raw bytes, returns everything the server answers until it closes or goes quiet."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server may answer and close before it has read everything
    return read_all(s)


def read_all(s):
    """Everything the server answers on socket s until it closes or goes quiet; closes s."""
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return out


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def endpoints(sv):
    data = os.urandom(10000)
    bid = b3(data)
    # blobs
    st, h, body = sv.req("GET", "/v1/blobs/" + bid)
    check(st == 404 and json.loads(body)["error"] == "not_found", "GET absent blob -> 404 with JSON")
    st, h, body = sv.req("PUT", "/v1/blobs/" + bid, data)
    check(st == 201 and json.loads(body)["id"] == bid, "PUT blob -> 201")
    st, h, body = sv.req("PUT", "/v1/blobs/" + bid, data)
    check(st == 200 and json.loads(body)["created"] is False, "PUT existing blob -> 200")
    st, h, body = sv.req("GET", "/v1/blobs/" + bid)
    check(st == 200 and body == data and h.get("etag") == '"%s"' % bid, "GET blob -> 200, bytes, ETag")
    st, h, body = sv.req("HEAD", "/v1/blobs/" + bid)
    check(st == 200 and h.get("content-length") == "10000" and body == b"", "HEAD blob -> length, no body")
    st, h, body = sv.req("GET", "/v1/blobs/" + bid, headers={"Range": "bytes=100-199"})
    check(st == 206 and body == data[100:200] and h.get("content-range") == "bytes 100-199/10000", "Range -> 206")
    st, h, body = sv.req("GET", "/v1/blobs/" + bid, headers={"Range": "bytes=-10"})
    check(st == 206 and body == data[-10:], "suffix Range -> 206")
    st, h, body = sv.req("GET", "/v1/blobs/" + bid, headers={"Range": "bytes=20000-"})
    check(st == 416 and h.get("content-range") == "bytes */10000", "unsatisfiable Range -> 416")
    st, h, body = sv.req("GET", "/v1/blobs/" + bid, headers={"If-None-Match": '"%s"' % bid})
    check(st == 304, "If-None-Match on a blob -> 304")
    other = os.urandom(500)
    st, h, body = sv.req("POST", "/v1/blobs", other)
    j = json.loads(body)
    check(st == 201 and j["id"] == b3(other) and j["size"] == 500, "POST blob -> 201 with computed id")
    st, h, body = sv.req("POST", "/v1/blobs", b"")
    check(st == 201 and json.loads(body)["id"] == b3(b""), "POST empty blob -> 201")
    # a large blob: stored as chunks, streamed back, ranges across chunk boundaries
    large = random.randbytes(3 << 20)
    lid = b3(large)
    st, h, body = sv.req("PUT", "/v1/blobs/" + lid, large)
    check(st == 201, "PUT 3 MiB blob -> 201 (got %d)" % st)
    st, h, body = sv.req("GET", "/v1/blobs/" + lid)
    check(st == 200 and body == large and h.get("etag") == '"%s"' % lid, "GET large blob streamed back whole")
    st, h, body = sv.req("GET", "/v1/blobs/" + lid, headers={"Range": "bytes=1000000-2200000"})
    check(st == 206 and body == large[1000000:2200001] and
          h.get("content-range") == "bytes 1000000-2200000/%d" % len(large), "Range across chunks of a large blob")
    st, h, body = sv.req("HEAD", "/v1/blobs/" + lid)
    check(st == 200 and h.get("content-length") == str(len(large)), "HEAD large blob")
    # uploads past 1 MiB stream into the store: larger than --max-body (8M here), chunked encoding
    huge = random.randbytes(9 << 20)
    st, h, body = sv.req("PUT", "/v1/blobs/" + b3(huge), huge)
    check(st == 201 and json.loads(body)["size"] == len(huge), "streamed PUT past --max-body -> 201 (got %d)" % st)
    st, h, body = sv.req("GET", "/v1/blobs/" + b3(huge))
    check(st == 200 and body == huge, "streamed blob reads back")
    c = sv.conn()
    c.putrequest("POST", "/v1/blobs")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    piece = random.randbytes(1 << 20)
    for _ in range(3):
        c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    j = json.loads(r.read())
    c.close()
    check(r.status == 201 and j["id"] == b3(piece * 3) and j["size"] == 3 << 20, "chunked POST streams -> 201")
    wrong = random.randbytes(2 << 20)
    st, h, body = sv.req("PUT", "/v1/blobs/" + b3(b"not this"), wrong)
    check(st == 422, "streamed PUT that does not hash to its id -> 422")
    st, _, _ = sv.req("HEAD", "/v1/blobs/" + b3(b"not this"))
    check(st == 404, "...and the blob is not there")
    # missing
    absent = b3(b"never stored anywhere")
    st, h, body = sv.req("POST", "/v1/missing", json.dumps({"ids": [bid, absent]}))
    check(st == 200 and json.loads(body) == {"missing": [absent]}, "POST /v1/missing lists the absent id")
    # batch: atomic, one sync
    recs = [os.urandom(random.randint(0, 3000)) for _ in range(60)]
    payload = b"".join(b"%s %d\n" % (b3(r).encode(), len(r)) + r for r in recs)
    st, h, body = sv.req("POST", "/v1/batch", payload)
    j = json.loads(body)
    check(st == 200 and j["records"] == 60 and len(j["results"]) == 60, "POST /v1/batch -> 200 with 60 results")
    st, h, body = sv.req("GET", "/v1/blobs/" + b3(recs[7]))
    check(st == 200 and body == recs[7], "batch record readable")
    bad = [os.urandom(100) for _ in range(3)]
    payload = b"".join(b"%s %d\n" % (b3(r).encode(), len(r)) + r for r in bad[:2])
    payload += b"%s %d\n" % (b3(b"other").encode(), len(bad[2])) + bad[2]
    st, h, body = sv.req("POST", "/v1/batch", payload)
    check(st == 422, "batch with a record that does not hash -> 422")
    st, _, _ = sv.req("HEAD", "/v1/blobs/" + b3(bad[0]))
    check(st == 404, "rejected batch stored nothing")
    st, _, body = sv.req("POST", "/v1/batch", b"%s 10\nshort" % bid.encode())
    check(st == 400 and b"byte" in body, "truncated batch record -> 400")
    # a tree is stored only complete: naming an absent object -> 409, nothing stored; with the
    # child in the same batch -> accepted
    child = os.urandom(300)
    name = b"f"
    tree = b"HLTR" + bytes([1, 1]) + struct.pack("<HII", 0, 1, 0) + \
        struct.pack("<BBHIQ", 1, 0, len(name), 0o644, len(child)) + bytes.fromhex(b3(child)) + name
    st, _, body = sv.req("PUT", "/v1/blobs/" + b3(tree), tree)
    check(st == 409 and json.loads(body)["error"] == "incomplete", "PUT of a tree naming an absent object -> 409 (got %d %r)" % (st, body))
    st, _, _ = sv.req("HEAD", "/v1/blobs/" + b3(tree))
    check(st == 404, "...and the tree is not stored")
    st, _, body = sv.req("POST", "/v1/batch", b"%s %d\n" % (b3(tree).encode(), len(tree)) + tree)
    check(st == 409, "batch of a tree without its child -> 409 (got %d)" % st)
    payload = b"".join(b"%s %d\n" % (b3(r).encode(), len(r)) + r for r in (tree, child))
    st, _, body = sv.req("POST", "/v1/batch", payload)
    check(st == 200, "batch of a tree with its child -> 200 (got %d %r)" % (st, body))
    st, _, _ = sv.req("HEAD", "/v1/blobs/" + b3(tree))
    check(st == 200, "...and the tree is stored")
    # refs
    st, h, body = sv.req("GET", "/v1/refs/agents/1/main")
    check(st == 404, "GET absent ref -> 404")
    st, h, body = sv.req("PUT", "/v1/refs/agents/1/main", json.dumps({"id": bid}))
    check(st == 428, "ref PUT without a precondition -> 428")
    st, h, body = sv.req("PUT", "/v1/refs/agents/1/main", json.dumps({"id": absent}), {"If-None-Match": "*"})
    check(st == 409, "ref to an absent object -> 409")
    st, h, body = sv.req("PUT", "/v1/refs/agents/1/main", json.dumps({"id": bid}), {"If-None-Match": "*"})
    check(st == 201 and h.get("etag") == '"%s"' % bid, "ref create -> 201")
    st, h, body = sv.req("PUT", "/v1/refs/agents/1/main", json.dumps({"id": bid}), {"If-None-Match": "*"})
    check(st == 412, "ref create when it exists -> 412")
    oid = b3(other)
    st, h, body = sv.req("PUT", "/v1/refs/agents/1/main", json.dumps({"id": oid}), {"If-Match": '"%s"' % oid})
    check(st == 412, "stale If-Match -> 412")
    st, h, body = sv.req("PUT", "/v1/refs/agents/1/main", json.dumps({"id": oid}), {"If-Match": '"%s"' % bid})
    check(st == 200 and json.loads(body)["id"] == oid, "ref compare-and-swap -> 200")
    st, h, body = sv.req("GET", "/v1/refs/agents/1/main")
    check(st == 200 and json.loads(body)["id"] == oid and h.get("etag") == '"%s"' % oid, "GET ref -> id and ETag")
    sv.req("PUT", "/v1/refs/agents/2/main", json.dumps({"id": bid}), {"If-None-Match": "*"})
    sv.req("PUT", "/v1/refs/other", json.dumps({"id": bid}), {"If-None-Match": "*"})
    st, h, body = sv.req("GET", "/v1/refs?prefix=agents/")
    names = [r["name"] for r in json.loads(body)["refs"]]
    check(st == 200 and names == ["agents/1/main", "agents/2/main"], "GET /v1/refs?prefix= lists in order")
    st, _, _ = sv.req("DELETE", "/v1/refs/other")
    check(st == 428, "ref DELETE without If-Match -> 428")
    st, _, _ = sv.req("DELETE", "/v1/refs/other", headers={"If-Match": '"%s"' % oid})
    check(st == 412, "ref DELETE with a stale If-Match -> 412")
    st, _, _ = sv.req("DELETE", "/v1/refs/other", headers={"If-Match": '"%s"' % bid})
    check(st == 204, "ref DELETE -> 204")
    st, _, _ = sv.req("GET", "/v1/refs/other")
    check(st == 404, "deleted ref -> 404")
    # kv, both ccache layouts naming one entry
    st, _, _ = sv.req("GET", "/kv/ccache/ab/cdef0123")
    check(st == 404, "kv miss -> 404")
    st, _, _ = sv.req("PUT", "/kv/ccache/ab/cdef0123", b"result bytes")
    check(st == 201, "kv PUT -> 201")
    st, _, body = sv.req("GET", "/kv/ccache/abcdef0123")
    check(st == 200 and body == b"result bytes", "kv subdirs and flat layouts name one entry")
    st, h, _ = sv.req("HEAD", "/kv/ccache/ab/cdef0123")
    check(st == 200 and h.get("content-length") == "12", "kv HEAD -> 200 with length")
    st, _, _ = sv.req("DELETE", "/kv/ccache/abcdef0123")
    check(st == 204, "kv DELETE -> 204")
    st, _, _ = sv.req("GET", "/kv/ccache/abcdef0123")
    check(st == 404, "deleted kv key -> 404")
    # bazel
    blob = b"action output"
    sha = hashlib.sha256(blob).hexdigest()
    st, _, _ = sv.req("PUT", "/bazel/cas/" + sha, blob)
    check(st in (200, 201), "bazel cas PUT -> 2xx")
    st, _, body = sv.req("GET", "/bazel/cas/" + sha)
    check(st == 200 and body == blob, "bazel cas GET")
    st, _, _ = sv.req("PUT", "/bazel/cas/" + hashlib.sha256(b"x").hexdigest(), blob)
    check(st == 422, "bazel cas with a wrong SHA-256 -> 422")
    st, _, _ = sv.req("PUT", "/bazel/ac/" + sha, b"\x0a\x02ok")
    check(st in (200, 201), "bazel ac PUT -> 2xx")
    st, _, body = sv.req("GET", "/bazel/ac/" + sha)
    check(st == 200 and body == b"\x0a\x02ok", "bazel ac GET")
    st, _, _ = sv.req("GET", "/bazel/ac/" + hashlib.sha256(b"none").hexdigest())
    check(st == 404, "bazel ac miss -> 404")
    # health, admin, metrics
    st, _, body = sv.req("GET", "/readyz")
    check(st == 200 and json.loads(body)["status"] == "ready", "readyz -> 200 (got %d %r)" % (st, body))
    st, _, body = sv.req("POST", "/v1/admin/sync")
    check(st == 200, "admin sync -> 200")
    st, _, body = sv.req("GET", "/v1/admin/stats?backend=1")
    j = json.loads(body) if st == 200 else {}
    kind = {"local": "local", "bucket": "s3", "helios": "helios"}[MODE]
    be = j.get("backend", {})
    held = j.get("objects", 0) if MODE == "local" else be.get("objects", 0)
    check(st == 200 and be.get("kind") == kind and be.get("shared") == (MODE != "local") and
          (held >= 60 or MODE == "helios"), "admin stats -> 200 with the backend's figures (got %d %r)" % (st, body))
    st, _, body = sv.req("POST", "/v1/admin/gc?dry_run=1")
    check(st == 200 and json.loads(body)["dry_run"] is True and json.loads(body)["objects"] >= 60,
          "admin gc dry run -> 200 with its report (got %d %r)" % (st, body))
    st, _, body = sv.req("POST", "/v1/admin/gc")
    check(st == 200 and json.loads(body)["collected"] == 0, "admin gc: nothing is older than the grace period")
    st, _, body = sv.req("POST", "/v1/admin/gc?repack=3&compact_rate=100000000")  # paced (passed on)
    if MODE == "bucket":  # a bucket keeps whole objects
        check(st == 400 and json.loads(body).get("error"), "admin gc repack on a bucket -> 400 (got %d %r)" % (st, body))
    else:
        r = json.loads(body) if st == 200 else {}
        check(st == 200 and r.get("records_repacked", 0) > 0 and r["repack_bytes_after"] <= r["repack_bytes_before"],
              "admin gc repack -> 200 with the records repacked (got %d %r)" % (st, body))
        st, _, body = sv.req("POST", "/v1/admin/gc?repack=3")
        check(st == 200 and json.loads(body)["records_repacked"] == 0, "admin gc repack again: nothing left (got %r)" % body)
    st, _, body = sv.req("POST", "/v1/admin/gc?compact_rate=fast")
    check(st == 400 and "compact_rate" in json.loads(body).get("message", ""), "admin gc compact_rate=fast -> 400 (got %d %r)" % (st, body))
    st, _, body = sv.req("POST", "/v1/admin/gc?repack=23")
    check(st == 400 and "repack" in json.loads(body).get("message", ""), "admin gc repack=23 -> 400 (got %d %r)" % (st, body))
    st, h, _ = sv.req("GET", "/v1/admin/gc")
    check(st == 405 and "POST" in h.get("allow", ""), "GET admin gc -> 405 with Allow")
    st, h, body = sv.req("GET", "/metrics")
    check(st == 200 and h.get("content-type", "").startswith("text/plain") and b"helios_http_responses_total" in body,
          "/metrics -> Prometheus text")
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
        check(r.returncode == 0, "promtool check metrics: " + (r.stdout + r.stderr).decode()[:500])
    else:
        check(False, "promtool is installed (prometheus package)")
    st, h, _ = sv.req("DELETE", "/v1/blobs/" + bid)
    check(st == 405 and "GET" in h.get("allow", ""), "wrong method -> 405 with Allow")
    st, _, _ = sv.req("GET", "/nowhere")
    check(st == 404, "unknown path -> 404")


def bad_inputs(sv):
    data = b"some content"
    bid = b3(data)
    for path in ["/v1/blobs/" + bid.upper(), "/v1/blobs/" + bid[:63], "/v1/blobs/" + bid + "0", "/v1/blobs/xyz",
                 "/v1/blobs/" + "g" * 64]:
        st, _, body = sv.req("GET", path)
        check(st == 400 and json.loads(body)["error"] == "invalid", "malformed id %s -> 400" % path[10:20])
    st, _, _ = sv.req("PUT", "/v1/blobs/" + bid, b"other content")
    check(st == 422, "PUT body not hashing to its id -> 422")
    st, _, _ = sv.req("GET", "/v1/blobs/" + bid)
    check(st == 404, "...and nothing was stored")
    # oversized header
    resp = raw(sv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    check(status_of(resp) == 431, "oversized header -> 431 (got %d)" % status_of(resp))
    # oversized bodies: declared, and chunked
    resp = raw(sv.port, b"PUT /kv/ccache/big HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
    check(status_of(resp) == 413, "declared oversized body -> 413")
    big = b"x" * (8 << 20) + b"y"
    chunked = b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
    resp = raw(sv.port, chunked, timeout=20)
    check(status_of(resp) == 413, "chunked oversized body -> 413 (got %d)" % status_of(resp))
    # bad JSON
    for body in [b"{", b"[]", b'{"ids": "x"}', b'{"ids": ["nothex"]}', b"\xff\xfe"]:
        st, _, _ = sv.req("POST", "/v1/missing", body)
        check(st == 400, "bad JSON %r -> 400" % body[:10])
    st, _, _ = sv.req("PUT", "/v1/refs/x", b"{bad", {"If-None-Match": "*"})
    check(st == 400, "bad ref JSON -> 400")
    st, _, _ = sv.req("PUT", "/v1/refs/x", json.dumps({"id": bid}), {"If-Match": "not-an-etag"})
    check(st == 400, "malformed If-Match -> 400")
    # path traversal and bad names never reach anything
    for path in ["/v1/refs/../../etc/passwd", "/v1/refs/%2e%2e/x", "/v1/refs/a/../b", "/v1/refs/.hidden",
                 "/kv/ccache/../../etc/passwd", "/kv/../x/y", "/kv/cc%2fache/x", "/kv/ccache/a/%2e%2e/b",
                 "/v1/blobs/../../etc/passwd", "/bazel/cas/../ac/x"]:
        resp = raw(sv.port, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        check(status_of(resp) in (400, 404), "traversal %s -> 400/404 (got %d)" % (path, status_of(resp)))
    # a percent-encoded NUL never cuts a name short: 400 and nothing changes (every route with a name)
    st, _, _ = sv.req("PUT", "/v1/blobs/" + bid, data)
    check(st in (200, 201), "blob for the NUL checks stored")
    sha = "ab" * 32
    for method, path, body, hdrs in [
            ("PUT", "/v1/refs/a%00b", json.dumps({"id": bid}), {"If-None-Match": "*"}),
            ("PUT", "/v1/refs/a/b%00c", json.dumps({"id": bid}), {"If-None-Match": "*"}),
            ("PUT", "/kv/ccache/abc%00def", b"value", {}), ("PUT", "/kv/cc%00ache/abc", b"value", {}),
            ("PUT", "/bazel/ac/" + sha + "%00x", b"value", {}), ("PUT", "/bazel/cas/" + sha + "%00", b"v", {}),
            ("GET", "/v1/blobs/" + bid + "%00", None, {}), ("POST", "/v1/admin/sync%00x", b"", {}),
            ("GET", "/v1/refs/%00", None, {})]:
        resp = raw(sv.port, b"%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (
            method.encode(), path.encode(), len(body or b""),
            b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in hdrs.items()),
            body.encode() if isinstance(body, str) else (body or b"")))
        check(status_of(resp) == 400 and b"NUL" in resp, "%s %s -> 400 naming the NUL (got %d)" % (method, path, status_of(resp)))
    for path in ["/v1/refs/a", "/v1/refs/a/b", "/kv/ccache/abc", "/bazel/ac/" + sha]:
        st, _, _ = sv.req("GET", path)
        check(st == 404, "nothing stored under the cut name %s (got %d)" % (path, st))
    # chunked-encoding errors
    for body in [b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\nabc\r\n0\r\n\r\n", b"ffffffffffffffffff\r\nx\r\n"]:
        resp = raw(sv.port, b"POST /v1/blobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
                   timeout=5)
        st = status_of(resp)
        check(st in (0, 400, 413) and st != 201, "chunked error %r -> 400 or cut (got %d)" % (body[:8], st))
    # bad Content-Length
    resp = raw(sv.port, b"PUT /v1/blobs/%s HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n" % bid.encode())
    check(status_of(resp) == 400, "bad Content-Length -> 400 (got %d)" % status_of(resp))
    # pipelined requests are answered in order on one connection
    pipe = b"".join(b"GET /v1/refs/p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
    pipe += b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    resp = raw(sv.port, pipe, shut=False)
    check(resp.count(b"HTTP/1.1 404") == 5 and resp.count(b"HTTP/1.1 200") == 1 and resp.rstrip().endswith(b'{"status":"ok"}'),
          "pipelined requests answered in order")
    check(sv.alive(), "server alive after bad inputs")


def trickle(port, head, data, pause, limit):
    """Sends head, then data a byte at a time every `pause` seconds; returns (cut, seconds) where
    cut says whether the server closed the connection within `limit` seconds."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(head)
    t0 = time.time()
    cut = False
    for b in data:
        try:
            s.send(bytes([b]))
            time.sleep(pause)
            s.setblocking(False)
            try:
                if s.recv(100) == b"":
                    cut = True
                    break
            except BlockingIOError:
                pass
            finally:
                s.setblocking(True)
        except (BrokenPipeError, ConnectionResetError):
            cut = True
            break
        if time.time() - t0 > limit:
            break
    s.close()
    return cut, time.time() - t0


def slow_client(sv):
    """A client sending one byte a second is cut off by the idle limit (2 s in this server); so is
    a body trickled byte by byte within each idle period (it falls below 64 KiB/s)."""
    cut, took = trickle(sv.port, b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1.0, 12)
    check(cut and took < 8, "one byte a second is cut off by the idle limit (%.1f s)" % took)
    check(sv.alive(), "server alive after the slow client")
    data = random.randbytes(4 << 20)
    head = b"PUT /v1/blobs/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (b3(data).encode(), len(data))
    cut, took = trickle(sv.port, head, data[:40], 0.5, 12)
    check(cut and took < 10, "a trickled body is cut off (%.1f s)" % took)
    check(sv.alive(), "server alive after the trickled body")


def auth_matrix(store):
    tokfile = os.path.join(store, "..", "tokens")
    tokens = {"read": "r" * 20, "write": "w" * 20, "admin": "a" * 20}
    with open(tokfile, "w") as f:
        f.write("# scopes\n%s read\n%s write\n%s admin\n" % (tokens["read"], tokens["write"], tokens["admin"]))
    os.chmod(tokfile, 0o600)
    sv = Server(store, "--token-file", tokfile)
    try:
        data = b"auth matrix object"
        bid = b3(data)
        sha = hashlib.sha256(data).hexdigest()
        batch = b"%s %d\n" % (bid.encode(), len(data)) + data
        # (method, path, body, headers, scope needed, status when allowed)
        cases = [
            ("GET", "/healthz", None, {}, None, 200),
            ("GET", "/readyz", None, {}, None, 200),
            ("PUT", "/v1/blobs/" + bid, data, {}, "write", 201),
            ("GET", "/v1/blobs/" + bid, None, {}, "read", 200),
            ("HEAD", "/v1/blobs/" + bid, None, {}, "read", 200),
            ("POST", "/v1/blobs", b"posted", {}, "write", 201),
            ("POST", "/v1/missing", json.dumps({"ids": [bid]}), {}, "read", 200),
            ("POST", "/v1/batch", batch, {}, "write", 200),
            ("PUT", "/v1/refs/m", json.dumps({"id": bid}), {"If-None-Match": "*"}, "write", 201),
            ("GET", "/v1/refs/m", None, {}, "read", 200),
            ("GET", "/v1/refs", None, {}, "read", 200),
            ("DELETE", "/v1/refs/m", None, {"If-Match": '"%s"' % bid}, "write", 204),
            ("PUT", "/kv/ccache/k1", b"v", {}, "write", 201),
            ("GET", "/kv/ccache/k1", None, {}, "read", 200),
            ("HEAD", "/kv/ccache/k1", None, {}, "read", 200),
            ("DELETE", "/kv/ccache/k1", None, {}, "write", 204),
            ("PUT", "/bazel/cas/" + sha, data, {}, "write", 201),
            ("GET", "/bazel/cas/" + sha, None, {}, "read", 200),
            ("PUT", "/bazel/ac/" + sha, b"ac", {}, "write", 201),
            ("GET", "/bazel/ac/" + sha, None, {}, "read", 200),
            ("GET", "/metrics", None, {}, "read", 200),
            ("POST", "/v1/admin/sync", None, {}, "admin", 200),
            ("GET", "/v1/admin/stats", None, {}, "admin", 200),
            ("POST", "/v1/admin/gc?dry_run=1", None, {}, "admin", 200),
        ]
        rank = {None: 0, "read": 1, "write": 2, "admin": 3}
        for method, path, body, hdrs, need, ok in cases:
            for who in [None, "read", "write", "admin"]:
                h = dict(hdrs)
                if who:
                    h["Authorization"] = "Bearer " + tokens[who]
                st, rh, _ = sv.req(method, path, body, h)
                if need is None or (who and rank[who] >= rank[need]):
                    want = ok
                    # create-once operations answer differently when repeated by a higher scope
                    if st in (200, 201, 204, 404, 412) and method in ("PUT", "POST", "DELETE"):
                        want = st
                    check(st == want and st < 400 or (st in (404, 412) and method in ("PUT", "DELETE", "GET")),
                          "auth %s %s as %s -> %d (got %d)" % (method, path, who, ok, st))
                elif who is None:
                    check(st == 401 and "bearer" in rh.get("www-authenticate", "").lower(),
                          "auth %s %s without token -> 401 (got %d)" % (method, path, st))
                else:
                    check(st == 403, "auth %s %s as %s -> 403 (got %d)" % (method, path, who, st))
                # re-create what a successful delete removed, so the next scope sees the same state
                if method == "DELETE" and st == 204:
                    if path.startswith("/v1/refs"):
                        sv.req("PUT", "/v1/refs/m", json.dumps({"id": bid}),
                               {"If-None-Match": "*", "Authorization": "Bearer " + tokens["write"]})
                    else:
                        sv.req("PUT", path, b"v", {"Authorization": "Bearer " + tokens["write"]})
        st, _, _ = sv.req("GET", "/v1/blobs/" + bid, headers={"Authorization": "Bearer " + "x" * 20})
        check(st == 401, "unknown token -> 401")
        import base64
        basic = base64.b64encode(b"anyone:" + tokens["read"].encode()).decode()
        st, _, _ = sv.req("GET", "/v1/blobs/" + bid, headers={"Authorization": "Basic " + basic})
        check(st == 200, "Basic auth with the token as password -> 200")
        st, _, _ = sv.req("PUT", "/v1/blobs/" + bid, data, {"Authorization": "Basic " + basic})
        check(st == 403, "Basic read token cannot write -> 403")
    finally:
        check(sv.stop() == 0, "auth server stops with 0")
    # beyond loopback without tokens: refused
    r = subprocess.run([HELIOS, "--store", store, "serve", "--listen", "0.0.0.0:0"], capture_output=True, timeout=30)
    check(r.returncode == 2 and b"token-file" in r.stderr, "non-loopback listen without tokens refused")
    with open(tokfile, "w") as f:
        f.write("short read\n")
    r = subprocess.run([HELIOS, "--store", store, "serve", "--token-file", tokfile], capture_output=True, timeout=30)
    check(r.returncode == 2 and b"line 1" in r.stderr, "bad token file refused with its line")


def many_connections(sv, n=850, rounds=3):
    """n keep-alive connections open at once, each asking for its own object several times."""
    objs = []
    for i in range(64):
        d = os.urandom(1000 + i)
        objs.append((b3(d), d))
        sv.req("PUT", "/v1/blobs/" + objs[-1][0], d)
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", sv.port), timeout=30)
        socks.append(s)
    ok = 0
    for r in range(rounds):
        pending = {}
        for i, s in enumerate(socks):
            oid, d = objs[(i + r) % len(objs)]
            s.sendall(b"GET /v1/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n" % oid.encode())
            s.setblocking(False)
            pending[s] = [d, b""]
            sel.register(s, selectors.EVENT_READ)
        deadline = time.time() + 60
        while pending and time.time() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                want, got = pending[s]
                got += chunk
                pending[s][1] = got
                head, sep, body = got.partition(b"\r\n\r\n")
                if sep:
                    cl = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
                    if cl and len(body) >= cl[0]:
                        if head.startswith(b"HTTP/1.1 200") and body == want and b"close" not in head.lower():
                            ok += 1
                        sel.unregister(s)
                        s.setblocking(True)
                        del pending[s]
                if not chunk:
                    sel.unregister(s)
                    del pending[s]
    for s in socks:
        s.close()
    check(ok == n * rounds, "%d keep-alive connections x %d rounds: %d of %d responses verified" % (n, rounds, ok, n * rounds))


def read_response(s):
    """(status, body) of one HTTP/1.1 response on blocking socket s."""
    got = b""
    while True:
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            cl = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
            if len(body) >= (cl[0] if cl else 0):
                return status_of(head), body
        chunk = s.recv(65536)
        if not chunk:
            return status_of(got), b""
        got += chunk


def concurrent_puts(store, *args):
    """Blob PUTs that wait together are stored in one batch (under sync=always by the writer thread
    that stores blobs, else by the event loop at the end of its round): many PUTs sent at once (new
    bodies, one body from 20 connections, bodies under ids they do not hash to, and ref creations
    among them, which other writer threads answer, or the blob writer when it is alone) each get
    their own right answer, and exactly the good bodies and the refs are stored. Clients that send
    a PUT and go away without reading its answer (closed, or reset) leave the others unharmed."""
    sv = Server(store, "--idle-timeout", "120", *args)
    try:
        good = [os.urandom(700 + i) for i in range(100)]
        dup = os.urandom(3000)
        never = [os.urandom(500) for _ in range(10)]
        ids = b3_many(good + [dup] + never)
        gid, did, nid = ids[:100], ids[100], ids[101:]
        base = os.urandom(900)
        bid = b3(base)
        check(sv.req("PUT", "/v1/blobs/" + bid, base)[0] in (200, 201), "the refs' object stored")
        tag = os.urandom(4).hex()
        refs = ["burst/%s/%d" % (tag, i) for i in range(20)]

        def request(oid, d):
            if oid.startswith("burst/"):
                d = json.dumps({"id": bid}).encode()
                return b"PUT /v1/refs/%s HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\nContent-Length: %d\r\n\r\n" % (oid.encode(), len(d)) + d
            return b"PUT /v1/blobs/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (oid.encode(), len(d)) + d

        jobs = [(i, d, (201,)) for i, d in zip(gid, good)] + [(did, dup, (200, 201))] * 20
        jobs += [(i, os.urandom(500), (422,)) for i in nid]
        jobs += [(r, None, (201,)) for r in refs]
        random.shuffle(jobs)
        gone = [os.urandom(800 + i) for i in range(16)]
        gone_ids = b3_many(gone)
        socks = [socket.create_connection(("127.0.0.1", sv.port), timeout=30) for _ in jobs]
        leaving = [socket.create_connection(("127.0.0.1", sv.port), timeout=30) for _ in gone]
        for k, (s, (oid, d, _)) in enumerate(zip(socks, jobs)):
            s.sendall(request(oid, d))
            if k % 8 == 0 and leaving:  # one goes away among every eight sent
                g = leaving.pop()
                g.sendall(request(gone_ids[len(leaving)], gone[len(leaving)]))
                if len(leaving) % 2:  # reset rather than closed
                    g.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                g.close()
        answers = [read_response(s)[0] for s in socks]
        for s in socks:
            s.close()
        wrong = [(oid[:12], st, want) for (oid, _, want), st in zip(jobs, answers) if st not in want]
        check(not wrong, "%d PUTs at once, each its own answer (wrong: %s)" % (len(jobs), wrong[:5]))
        check(answers.count(201) >= 121, "every new body and ref created once at least: %d created" % answers.count(201))
        stored = all(sv.req("GET", "/v1/blobs/" + i)[2] == d for i, d in zip(gid + [did], good + [dup]))
        check(stored, "every good body reads back")
        check(all(sv.req("GET", "/v1/blobs/" + i)[0] == 404 for i in nid), "no mismatched body stored")
        left = [sv.req("GET", "/v1/blobs/" + i) for i in gone_ids]
        check(all(st == 404 or (st == 200 and b == d) for (st, _, b), d in zip(left, gone)),
              "the bodies of PUTs whose clients went away: stored whole or not at all")
        check(all(json.loads(sv.req("GET", "/v1/refs/" + r)[2])["id"] == bid for r in refs), "every ref reads back")
        big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 14000 + b"\r\n\r\n"
        check(status_of(raw(sv.port, big)) == 431, "headers past the default 12 KiB: 431")
        small = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 9000 + b"\r\nConnection: close\r\n\r\n"
        check(status_of(raw(sv.port, small)) == 200, "9 KB of headers within the default: 200")
    finally:
        check(sv.stop() == 0, "batched-writes server stops with 0 on SIGTERM")


def wait_stopped(pid):
    """Until every thread of pid is stopped (SIGSTOP takes effect after kill() returns)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        states = []
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
        if states and all(st in "tT" for st in states):
            return
        time.sleep(0.01)


def full_batch(store):
    """Requests that become ready together, a multiple of 128 of them (one event loop, its process
    stopped while they arrive): libmicrohttpd's own loop waited out the idle timeout before
    handling such a batch; every one must be answered at once."""
    sv = Server(store, "--threads", "1", "--idle-timeout", "300")
    try:
        d = os.urandom(100)
        oid = b3(d)
        sv.req("PUT", "/v1/blobs/" + oid, d)
        socks = []
        n = 0
        for _ in range(256):
            s = socket.create_connection(("127.0.0.1", sv.port), timeout=60)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(65536)  # accepted and answered once: now an idle keep-alive connection
            socks.append(s)
        for n in (128, 256):
            os.kill(sv.proc.pid, signal.SIGSTOP)
            try:
                wait_stopped(sv.proc.pid)
                for s in socks[:n]:
                    s.sendall(b"GET /v1/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n" % oid.encode())
            finally:
                os.kill(sv.proc.pid, signal.SIGCONT)
            t0 = time.time()
            answered = 0
            for s in socks[:n]:
                got = b""
                while not got.endswith(d):
                    chunk = s.recv(65536)  # 60 s timeout, far below the 300 s idle limit
                    if not chunk:
                        break
                    got += chunk
                answered += got.startswith(b"HTTP/1.1 200") and got.endswith(d)
            check(answered == n, "%d requests ready at once: %d answered (%.1f s)" % (n, answered, time.time() - t0))
        for s in socks:
            s.close()
    except socket.timeout:
        check(False, "%d requests ready at once: a response never came" % n)
    finally:
        check(sv.stop() == 0, "full-batch server stops with 0 on SIGTERM")


def held_puts(store):
    """Under sync=batch an event loop holds the blob PUTs one round reads and stores them together
    when the round ends. 300 PUTs arrive while the server is stopped, so that its one event loop
    finds them all ready at once (more than the 128 it holds at a time); one client in six has gone
    away by then (closed, or reset). Every other client gets its own right answer, the good bodies
    are stored, and the server serves on."""
    sv = Server(store, "--threads", "1", "--sync", "batch", "--idle-timeout", "300")
    try:
        bodies = [os.urandom(600 + i) for i in range(300)]
        ids = b3_many(bodies)
        wrong = set(range(7, 300, 29))  # sent under another body's id: 422
        socks = []
        for _ in bodies:
            s = socket.create_connection(("127.0.0.1", sv.port), timeout=60)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(65536)  # an idle keep-alive connection of the one event loop
            socks.append(s)
        os.kill(sv.proc.pid, signal.SIGSTOP)
        try:
            wait_stopped(sv.proc.pid)
            for k, (s, oid, d) in enumerate(zip(socks, ids, bodies)):
                if k in wrong:
                    d = os.urandom(len(d))
                s.sendall(b"PUT /v1/blobs/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (oid.encode(), len(d)) + d)
                if k % 6 == 5:
                    if k % 12 == 5:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
        finally:
            os.kill(sv.proc.pid, signal.SIGCONT)
        bad = []
        for k, s in enumerate(socks):
            if k % 6 == 5:
                continue
            st = read_response(s)[0]
            if st != (422 if k in wrong else 201):
                bad.append((k, st))
            s.close()
        check(not bad, "300 PUTs read in one round: each its own answer (wrong: %s)" % bad[:5])
        got = [sv.req("GET", "/v1/blobs/" + i) for i in ids]
        check(all(st == 200 and b == d for k, ((st, _, b), d) in enumerate(zip(got, bodies))
                  if k % 6 != 5 and k not in wrong), "every answered good body reads back")
        check(all(got[k][0] == 404 for k in wrong), "no body stored under a wrong id")
        check(sv.alive(), "server alive after the held PUTs")
    except socket.timeout:
        check(False, "held PUTs: an answer never came")
    finally:
        check(sv.stop() == 0, "held-PUTs server stops with 0 on SIGTERM")


def graceful_stop(store):
    sv = Server(store, "--sync", "always")
    data = os.urandom(200000)
    bid = b3(data)
    # a slow upload in flight when SIGTERM arrives is still answered
    s = socket.create_connection(("127.0.0.1", sv.port), timeout=30)
    s.sendall(b"PUT /v1/blobs/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (bid.encode(), len(data)))
    s.sendall(data[:1000])
    # SIGTERM once the server has the PUT (in flight beside the /metrics request that asks)
    deadline = time.time() + 60
    while time.time() < deadline:
        m = re.search(rb"^helios_http_requests_in_flight (\d+)", sv.req("GET", "/metrics")[2], re.M)
        if m and int(m.group(1)) >= 2:
            break
        time.sleep(0.05)
    sv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    s.sendall(data[1000:])
    resp = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        resp += c
        if b"\r\n\r\n" in resp and resp.endswith(b"}"):
            break
    s.close()
    check(status_of(resp) == 201, "request in flight at SIGTERM answered (got %d)" % status_of(resp))
    rc = sv.proc.wait(timeout=60)
    check(rc == 0, "SIGTERM -> exit 0 (got %d)" % rc)
    r = subprocess.run([HELIOS, "--store", store, "get", bid], capture_output=True)
    check(r.returncode == 0 and r.stdout == data, "upload acknowledged during shutdown is in the store")


def over_the_limit(store, limit=40, extra=400):
    """Past --max-conns a client is answered at once (503 + Retry-After, then closed; health probes
    200), never left waiting in the listen backlog; below it again, requests are served."""
    sv = Server(store, "--max-conns", str(limit), "--idle-timeout", "120")
    held = []
    try:
        for i in range(limit):  # the limit's worth of keep-alive connections, each answered once
            c = sv.conn()
            c.request("GET", "/healthz")
            c.getresponse().read()
            held.append(c)
        t0 = time.time()
        socks = []
        for _ in range(extra):  # each asks at once, as a client does
            s = socket.create_connection(("127.0.0.1", sv.port), timeout=30)
            s.sendall(b"GET /v1/refs/x HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        answers = [read_all(s) for s in socks]
        took = time.time() - t0
        good = sum(1 for a in answers if status_of(a) == 503 and b"retry-after: 1" in a.lower() and b"overloaded" in a)
        check(good == extra, "%d of %d connections past the limit answered 503 + Retry-After and closed (%.1f s)"
              % (good, extra, took))
        for _ in range(5):  # a probe on a fresh connection, answered within a second, while full
            t0 = time.time()
            resp = raw(sv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10)
            check(status_of(resp) == 200 and time.time() - t0 < 1.0,
                  "health probe past the limit answered in %.2f s (status %d)" % (time.time() - t0, status_of(resp)))
        for c in held:
            c.close()
        held = []
        deadline = time.time() + 60
        st = 0
        while time.time() < deadline and st != 404:  # the closed ones are noticed, then served again
            resp = raw(sv.port, b"GET /v1/refs/x HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10)
            st = status_of(resp)
            if st != 404:
                time.sleep(0.05)
        check(st == 404, "below the limit again: requests served (got %d)" % st)
        st, _, body = sv.req("GET", "/metrics")
        m = re.search(rb"helios_http_over_limit_total (\d+)", body)
        # at least those 400; the polls above may add some while the closed ones are noticed
        check(m is not None and int(m.group(1)) >= extra, "over-limit answers counted (%r)" % (m and m.group(1)))
    finally:
        for c in held:
            c.close()
        check(sv.stop() == 0, "limited server stops with 0")


def main_fleet(mode):
    random.seed(1)
    tmp = tempfile.mkdtemp(prefix="helios-fleet-")
    stops = []
    try:
        pair, stops = fleet(tmp, mode)
        endpoints(pair)
        check(pair.a.alive() and pair.b.alive(), "both nodes alive at the end")
    finally:
        for x in reversed(stops):
            if isinstance(x, Server):
                check(x.stop() == 0, "node stops with 0 on SIGTERM")
            else:
                x.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (PASSES, len(FAILS)))
    sys.exit(1 if FAILS else 0)


def main():
    if MODE != "local":
        return main_fleet(MODE)
    random.seed(1)
    tmp = tempfile.mkdtemp(prefix="helios-http-")
    store = os.path.join(tmp, "store")
    try:
        sv = Server(store, "--idle-timeout", "2", "--max-body", "8M", "--max-header", "16K")
        try:
            endpoints(sv)
            bad_inputs(sv)
            slow_client(sv)
            check(sv.alive(), "server alive at the end")
        finally:
            check(sv.stop() == 0, "server stops with 0 on SIGTERM")
        # its own server: opening 850 connections on a loaded machine can take longer than the
        # 2 s idle limit above, which would rightly cut the first ones before they ask anything
        sv = Server(store, "--idle-timeout", "120")
        try:
            many_connections(sv)
            check(sv.alive(), "server alive after the many connections")
        finally:
            check(sv.stop() == 0, "second server stops with 0 on SIGTERM")
        full_batch(store)
        concurrent_puts(store, "--sync", "always", "--write-threads", "1")
        concurrent_puts(store + "-writers", "--sync", "always")
        concurrent_puts(store + "-batch", "--sync", "batch")
        held_puts(store + "-held")
        over_the_limit(store)
        auth_matrix(store)
        graceful_stop(store)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (PASSES, len(FAILS)))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
