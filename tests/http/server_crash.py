#!/usr/bin/env python3
"""server_crash.py — `helios serve` killed under load, again and again, on one store.

Each cycle starts a server on a free loopback port, lets four clients write to it (blobs from a
byte to 2 MB, the large ones chunked, and kv values), recording every 201 (or 200: already
stored) they got, and then ends
the server one of two ways:
  kill     SIGKILL at a random moment (the page cache survives: a process crash);
  power    the server runs as helios-powerloss (the CLI with the journaling I/O table of
           tests/powerloss.h) and kills itself at a random file call; helios-plcut then does to
           the store what a power cut does to everything not made durable.
A fresh server then must serve every acknowledged blob with its bytes and every kv key with its
acknowledged value or one attempted since, and stop cleanly on SIGTERM; at the end `helios
verify` finds nothing wrong.

usage: server_crash.py HELIOS HELIOS_POWERLOSS HELIOS_PLCUT
cycles: $HELIOS_SERVER_CRASH_CYCLES (default 16, half of each kind); seed: $HELIOS_SEED."""
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HELIOS, POWERLOSS, PLCUT = sys.argv[1:4]
CYCLES = int(os.environ.get("HELIOS_SERVER_CRASH_CYCLES", "16"))
SEED = int(os.environ.get("HELIOS_SEED", str(int(time.time()))))
rng = random.Random(SEED)
FAILS = []


def fail(what):
    FAILS.append(what)
    print("FAIL:", what, flush=True)


def start(binary, store, env=None):
    """A server on a free port: (process, port), port None when it died before serving."""
    err = open(os.path.join(os.path.dirname(store), "serve.err"), "ab")
    p = subprocess.Popen([binary, "--store", store, "serve", "--listen", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=err, env=env)
    line = p.stdout.readline().decode()
    if "serving http://" not in line:
        return p, None
    return p, int(line.rsplit(":", 1)[1])


class Model:
    """What the clients were told: blob id -> sha256 of its bytes; per kv key the acknowledged
    value's sha256 (None: never) and the values attempted since."""

    def __init__(self):
        self.mu = threading.Lock()
        self.blobs = {}
        self.fresh = []
        self.kv = {}

    def blob(self, bid, digest):
        with self.mu:
            self.blobs[bid] = digest
            self.fresh.append(bid)

    def kv_try(self, key, digest):
        with self.mu:
            self.kv.setdefault(key, [None, []])[1].append(digest)

    def kv_ack(self, key, digest):
        with self.mu:
            self.kv[key] = [digest, []]


def client(port, model, t, seed, stop):
    r = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = 0
    try:
        while not stop.is_set():
            i += 1
            pick = r.random()
            if pick < 0.7:
                size = r.choice([r.randint(0, 20000), r.randint(20000, 200000)] * 9 +
                                [r.randint(1200000, 2000000)])
                body = r.randbytes(size)
                conn.request("POST", "/v1/blobs", body=body)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status in (200, 201):  # stored now, or already
                    model.blob(json.loads(data)["id"], hashlib.sha256(body).hexdigest())
                else:
                    fail("POST /v1/blobs answered %d: %r" % (resp.status, data[:200]))
                    return
            else:
                key = "t%dk%d" % (t, r.randint(0, 4))
                body = r.randbytes(r.randint(1, 5000))
                digest = hashlib.sha256(body).hexdigest()
                model.kv_try(key, digest)
                conn.request("PUT", "/kv/sim/" + key, body=body)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status == 201:
                    model.kv_ack(key, digest)
                else:
                    fail("PUT /kv answered %d: %r" % (resp.status, data[:200]))
                    return
    except (OSError, http.client.HTTPException):
        return  # the server went away: what was not answered was not acknowledged
    finally:
        conn.close()


def check(port, model, ids):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for bid in ids:
        conn.request("GET", "/v1/blobs/" + bid)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200 or hashlib.sha256(data).hexdigest() != model.blobs[bid]:
            fail("acknowledged blob %s: %d, %d bytes" % (bid, resp.status, len(data)))
    for key, (acked, tried) in model.kv.items():
        conn.request("GET", "/kv/sim/" + key)
        resp = conn.getresponse()
        data = resp.read()
        got = hashlib.sha256(data).hexdigest() if resp.status == 200 else None
        if resp.status not in (200, 404) or (got != acked and got not in tried):
            fail("kv key %s: %d, neither its acknowledged value nor one attempted since" % (key, resp.status))
        else:
            model.kv[key] = [got, []]  # what it holds now is what the next cycle starts from
    conn.close()


def main():
    tmp = tempfile.mkdtemp(prefix="helios-server-crash-")
    store = os.path.join(tmp, "store")
    journal, stash = os.path.join(tmp, "journal"), os.path.join(tmp, "stash")
    model = Model()
    kinds = {"kill": 0, "power": 0}
    print("# %d cycles, seed %d (HELIOS_SEED to repeat the choices)" % (CYCLES, SEED), flush=True)
    try:
        for cycle in range(CYCLES):
            kind = "power" if cycle % 2 else "kill"
            env = None
            if kind == "power":
                env = dict(os.environ, HELIOS_PL_JOURNAL=journal, HELIOS_PL_STASH=stash,
                           HELIOS_PL_INDEX=os.path.join(store, "index"),
                           HELIOS_PL_CRASH_AT=str(rng.randint(1, 3000)))
            proc, port = start(POWERLOSS if env else HELIOS, store, env)
            stop = threading.Event()
            threads = []
            if port:
                threads = [threading.Thread(target=client, args=(port, model, t, rng.getrandbits(64), stop))
                           for t in range(4)]
                for th in threads:
                    th.start()
            if kind == "kill":
                time.sleep(rng.uniform(0.1, 0.8))
                proc.kill()
            else:  # it kills itself at its crash point; if the point is past this cycle's work, now
                try:
                    proc.wait(timeout=rng.uniform(1, 4))
                    how = "at file call %s" % env["HELIOS_PL_CRASH_AT"]
                except subprocess.TimeoutExpired:
                    proc.kill()
                    how = "by the test"
            proc.wait()
            stop.set()
            for th in threads:
                th.join()
            if proc.returncode != -signal.SIGKILL:
                fail("cycle %d: the server ended with %s, not by SIGKILL" % (cycle, proc.returncode))
            if kind == "power":
                r = subprocess.run([PLCUT, journal, stash, store, str(rng.getrandbits(32))],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    fail("cycle %d: the cut failed: %s" % (cycle, r.stderr))
                print("# cycle %d: power cut %s; %s" % (cycle, how, r.stdout.strip()), flush=True)
            kinds[kind] += 1
            proc, port = start(HELIOS, store)
            if not port:
                fail("cycle %d (%s): the store does not serve again" % (cycle, kind))
                break
            with model.mu:
                older = [b for b in model.blobs if b not in set(model.fresh)]
                ids = model.fresh + rng.sample(older, min(len(older), 100))
                model.fresh = []
            check(port, model, ids)
            proc.send_signal(signal.SIGTERM)
            if proc.wait(timeout=120) != 0:
                fail("cycle %d: the server did not stop cleanly after recovery" % cycle)
            if FAILS:
                break
        if not FAILS:  # everything, once more, and a whole verify
            proc, port = start(HELIOS, store)
            check(port, model, list(model.blobs))
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
            r = subprocess.run([HELIOS, "--store", store, "verify"], capture_output=True, text=True)
            if r.returncode != 0:
                fail("verify: %s %s" % (r.stdout, r.stderr))
        print("# %d kill -9 and %d power-cut cycles: %d acknowledged blobs and %d kv keys, all served"
              % (kinds["kill"], kinds["power"], len(model.blobs), len(model.kv)), flush=True)
    finally:
        if FAILS:
            print("store kept at %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d failures" % len(FAILS))
    sys.exit(1 if FAILS else 0)


main()
