#!/usr/bin/env python3
"""Random text and meta commands sent to memcached and to cafe side by side,
one at a time, each followed by `mn`; the replies and then the state of every
key (`mg <key> v f k`) are compared after each step, and the first steps where
they differ are printed. Loopback only; both servers are started here on free
ports and killed at the end.

What the two are allowed to differ on is normalised or not generated:

- CAS values (each server numbers its own stores; a `cas` or `C` uses the
  token that server handed out for the key);
- counters that shrank in place (memcached pads them with spaces, cafe
  stores the digits: docs/STORAGE.md, "Where memcached was unclear"); the
  padding is normalised away in replies, but not once an append or a
  prepend has put it inside a value: those steps are reported, and are
  this known difference;
- what memcached 1.6.18 (Debian 12's) predates and cafe follows from the
  newer protocol.txt: `E` on mg/ms/md/ma, `x` on md, `N` on ms, and the TTL
  that `t` reports next to `N` or `T` (1.6.18 reports the item's TTL before
  `T` is applied and -1 for an item `N` just created);
- negative TTLs through `T` (memcached prints them as wrapped integers);
- `q` next to `N` on ma (1.6.18 still answers what it created), `s` on mg
  (a padded counter's size), and `I` (memcached drops the stale mark of a
  counter that outgrew its length, since it allocates a new item, and
  keeps it otherwise; cafe always keeps it).

usage: scripts/differential.py [--seed N] [--steps N] [--seeds K]
       [--cafe PATH] [--memcached PATH]

Exits 1 when some seed found a difference, 0 otherwise. Builds nothing: the
default --cafe is target/release/cafe-server (cargo build --release).
"""

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import time

KEYS = [b"k%d" % i for i in range(6)] + [b"x" * 250]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Conn:
    """One connection; a reply is complete once it ends with MN."""

    def __init__(self, port):
        deadline = time.time() + 5
        while True:
            try:
                self.s = socket.create_connection(("127.0.0.1", port), timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        self.buf = b""

    def call(self, req):
        self.s.sendall(req + b"mn\r\n")
        while not self.buf.endswith(b"MN\r\n"):
            data = self.s.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buf += data
        out, self.buf = self.buf, b""
        return out


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def value(self):
        r = self.rng
        if r.random() < 0.3:
            return str(r.choice([0, 1, 42, 2**64 - 1, 2**64 - 2, 10**20, -1])).encode()
        return bytes(r.choice(b"abcxyz0123456789") for _ in range(r.choice([0, 1, 3, 10, 100])))

    def request(self):
        r = self.rng
        k = r.choice(KEYS)
        nr = b" noreply" if r.random() < 0.1 else b""
        roll = r.random()
        if roll < 0.25:
            cmd = r.choice([b"set", b"add", b"replace", b"append", b"prepend"])
            v = self.value()
            flags = r.choice([0, 1, 65535, 2**32 - 1])
            exp = r.choice([0, 0, 0, 1000, -1])
            return b"%s %s %d %d %d%s\r\n%s\r\n" % (cmd, k, flags, exp, len(v), nr, v)
        if roll < 0.30:
            v = self.value()
            return b"cas %s 0 0 %d CAS%s\r\n%s\r\n" % (k, len(v), nr, v)
        if roll < 0.45:
            keys = b" ".join(r.choice(KEYS) for _ in range(r.randint(1, 3)))
            cmd = r.choice([b"get", b"gets", b"gat 1000", b"gats 0", b"gat -1"])
            return b"%s %s\r\n" % (cmd, keys)
        if roll < 0.52:
            cmd = r.choice([b"incr", b"decr"])
            delta = r.choice([b"1", b"0", b"5", b"18446744073709551615", b"abc", b"-1"])
            return b"%s %s %s%s\r\n" % (cmd, k, delta, nr)
        if roll < 0.56:
            return b"delete %s%s\r\n" % (k, nr)
        if roll < 0.60:
            return b"touch %s %d%s\r\n" % (k, r.choice([0, 1000, -1]), nr)
        if roll < 0.75:
            pool = ["v", "f", "k", "c", "h", "l", "O123", "q", "Oab"]
            pool += r.choice([["N1000"], ["T1000"], ["t"], []])
            flags = r.sample(pool, r.randint(0, 5))
            return b"mg %s %s\r\n" % (k, " ".join(flags).encode())
        if roll < 0.87:
            v = self.value()
            pool = ["MS", "ME", "MA", "MP", "MR", "F7", "T1000", "T-1", "CCAS", "q", "k", "c", "O9"]
            flags = r.sample(pool, r.randint(0, 4))
            return b"ms %s %d %s\r\n%s\r\n" % (k, len(v), " ".join(flags).encode(), v)
        if roll < 0.93:
            flags = r.sample(["q", "T1000", "CCAS", "k", "O5"], r.randint(0, 3))
            return b"md %s %s\r\n" % (k, " ".join(flags).encode())
        pool = ["J13", "D7", "T1000", "MI", "MD", "M+", "M-", "v", "c", "k", "O1"]
        pool += r.choice([["N1000"], ["t"], ["q"], []])
        flags = r.sample(pool, r.randint(0, 4))
        return b"ma %s %s\r\n" % (k, " ".join(flags).encode())


def normalise(reply):
    reply = re.sub(rb"^(VALUE \S+ \d+ \d+) \d+", rb"\1 C", reply, flags=re.M)
    reply = re.sub(rb"(?<= )c\d+", b"cC", reply)
    # A counter memcached shrank in place keeps its old length in spaces.
    reply = re.sub(rb"^(VALUE \S+ \d+ )\d+(( C)?\r\n)(\d+) *\r\n",
                   lambda m: m.group(1) + b"%d" % len(m.group(4)) + m.group(2) + m.group(4) + b"\r\n",
                   reply, flags=re.M)
    reply = re.sub(rb"^VA \d+((?: [^\r\n]*)?)\r\n(\d+) *\r\n",
                   lambda m: b"VA %d%s\r\n%s\r\n" % (len(m.group(2)), m.group(1), m.group(2)),
                   reply, flags=re.M)
    return reply


def remember_cas(reply, tokens):
    for m in re.finditer(rb"^VALUE (\S+) \d+ \d+ (\d+)", reply, re.M):
        tokens[m.group(1)] = m.group(2)
    for line in reply.split(b"\r\n"):
        words = line.split(b" ")
        if words and words[0] in (b"VA", b"HD", b"OK"):
            key = next((w[1:] for w in words[1:] if w.startswith(b"k")), None)
            cas = next((w[1:] for w in words[1:] if w.startswith(b"c")), None)
            if key and cas:
                tokens[key] = cas


def run(seed, steps, cafe, memcached, show):
    mport, cport = free_port(), free_port()
    root = ["-u", "root"] if os.getuid() == 0 else []
    procs = [
        subprocess.Popen([memcached, "-p", str(mport), "-U", "0", "-l", "127.0.0.1", "-t", "1"] + root,
                         stderr=subprocess.DEVNULL),
        subprocess.Popen([cafe, "--listen", "127.0.0.1:%d" % cport, "--threads", "2",
                          "--metrics-listen", "off"], stderr=subprocess.DEVNULL),
    ]
    try:
        conns = [Conn(mport), Conn(cport)]
        tokens = [{}, {}]
        gen = Gen(seed)
        state_query = b"".join(b"mg %s v f k\r\n" % k for k in KEYS)
        for step in range(steps):
            req = gen.request()
            replies, states = [], []
            for conn, known in zip(conns, tokens):
                sent = req
                if b"CAS" in req:
                    key = req.split()[1]
                    sent = req.replace(b"CAS", known.get(key, b"999999"), 1)
                reply = conn.call(sent)
                remember_cas(reply, known)
                replies.append(reply)
                states.append(conn.call(state_query))
            if normalise(replies[0]) != normalise(replies[1]):
                what = "reply"
            elif normalise(states[0]) != normalise(states[1]):
                what, replies = "state after", states
            else:
                continue
            if show:
                print("seed %d step %d: %s %r\n  memcached %r\n  cafe      %r"
                      % (seed, step, what, req, replies[0], replies[1]))
            return False
        return True
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=10, help="seeds tried, from --seed")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--cafe", default="target/release/cafe-server")
    ap.add_argument("--memcached", default="memcached")
    args = ap.parse_args()
    failed = [s for s in range(args.seed, args.seed + args.seeds)
              if not run(s, args.steps, args.cafe, args.memcached, True)]
    print("%d of %d seeds agreed for %d steps" % (args.seeds - len(failed), args.seeds, args.steps))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
