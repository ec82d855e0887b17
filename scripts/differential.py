#!/usr/bin/env python3
"""Random text and meta commands sent to memcached and to cafe side by side,
one at a time, each followed by `mn`; the replies and then the state of every
key (`mg <key> v f k`) are compared after each step, and the first steps where
they differ are printed. With --binary, random memcached binary protocol
requests instead (GET/GETK and quiet forms, SET/ADD/REPLACE with and without
CAS, DELETE, INCR/DECR with initial values and the no-create expiry,
APPEND/PREPEND, TOUCH/GAT), each followed by a NOOP, the replies compared.
Loopback only; both servers are started here on free ports and killed at the
end.

What the two are allowed to differ on is normalised or not generated:

- CAS values (each server numbers its own stores; a `cas` or `C` uses the
  token that server handed out for the key);
- counters that shrank in place (memcached pads them with spaces, cafe
  stores the digits: docs/STORAGE.md, "Where memcached was unclear"); the
  padding is normalised away in replies, and counters and appends use
  different keys so that it never ends up inside a value;
- what memcached 1.6.18 (Debian 12's) predates and cafe follows from the
  newer protocol.txt: `E` on mg/ms/md/ma, `x` on md, `N` on ms, and the TTL
  that `t` reports next to `N` or `T` (1.6.18 reports the item's TTL before
  `T` is applied and -1 for an item `N` just created);
- negative TTLs through `T` (memcached prints them as wrapped integers);
- `q` next to `N` on ma (1.6.18 still answers what it created), `s` on mg
  (a padded counter's size), and `I` (memcached drops the stale mark of a
  counter that outgrew its length, since it allocates a new item, and
  keeps it otherwise; cafe always keeps it).

usage: scripts/differential.py [--binary] [--seed N] [--steps N] [--seeds K]
       [--cafe PATH] [--memcached PATH]

Exits 1 when some seed found a difference, 0 otherwise. Builds nothing: the
default --cafe is target/release/cafe-server (cargo build --release).
"""

import argparse
import os
import random
import re
import socket
import struct
import subprocess
import sys
import time

KEYS = [b"k%d" % i for i in range(6)] + [b"x" * 250]
# Counters are changed only on these keys and appends and prepends only on
# the others, so memcached's padding of a shrunk counter never ends up
# inside a value (see the differences above).
COUNTERS = KEYS[:3]
CONCAT = KEYS[3:]


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
            if cmd in (b"append", b"prepend"):
                k = r.choice(CONCAT)
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
            k = r.choice(COUNTERS)
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
            if "MA" in flags or "MP" in flags:
                k = r.choice(CONCAT)
            return b"ms %s %d %s\r\n%s\r\n" % (k, len(v), " ".join(flags).encode(), v)
        if roll < 0.93:
            flags = r.sample(["q", "T1000", "CCAS", "k", "O5"], r.randint(0, 3))
            return b"md %s %s\r\n" % (k, " ".join(flags).encode())
        k = r.choice(COUNTERS)
        pool = ["J13", "D7", "MI", "MD", "M+", "M-", "v", "c", "k", "O1"]
        pool += r.choice([["N1000"], ["t"], ["q"], ["T1000"], []])
        flags = r.sample(pool, r.randint(0, 4))
        return b"ma %s %s\r\n" % (k, " ".join(flags).encode())


NOOP = 0x0A
# Opaque of the NOOP that ends each step.
FENCE = 0xF0F0


def packet(op, key=b"", value=b"", extras=b"", cas=0, opaque=0):
    header = struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0,
                         len(extras) + len(key) + len(value), opaque, cas)
    return header + extras + key + value


class BinaryConn(Conn):
    """Replies as (opcode, status, extras, key, value, opaque), the CAS
    left out (each server numbers its own), until the fence's NOOP."""

    def call(self, req):
        self.s.sendall(req + packet(NOOP, opaque=FENCE))
        replies = []
        while True:
            while len(self.buf) < 24:
                self.recv()
            _, op, klen, elen, _, status, blen, opaque, cas = struct.unpack(">BBHBBHIIQ", self.buf[:24])
            while len(self.buf) < 24 + blen:
                self.recv()
            body, self.buf = self.buf[24:24 + blen], self.buf[24 + blen:]
            value = body[elen + klen:]
            if re.fullmatch(rb"\d+ *", value):
                value = value.rstrip(b" ")  # memcached's padded counters
            replies.append((op, status, body[:elen], body[elen:elen + klen], value, opaque, cas))
            if op == NOOP and opaque == FENCE:
                return replies

    def recv(self):
        data = self.s.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data


class BinaryGen(Gen):
    def request(self, tokens):
        r = self.rng
        k = r.choice(KEYS[:5])

        def cas():
            return int(tokens.get(k, 0)) if r.random() < 0.3 else r.choice([0, 0, 0, 12345])
        roll = r.random()
        if roll < 0.3:
            op = r.choice([0x01, 0x02, 0x03, 0x11, 0x12, 0x13])
            value = r.choice([b"", b"1", b"abc", b"18446744073709551615", b"007", b"x" * 50])
            extras = struct.pack(">II", r.choice([0, 7, 2**32 - 1]), r.choice([0, 0, 1000]))
            return packet(op, k, value, extras, cas(), 1)
        if roll < 0.45:
            return packet(r.choice([0x00, 0x0C, 0x09, 0x0D]), k, opaque=2)
        if roll < 0.6:
            k = r.choice(COUNTERS)
            extras = struct.pack(">QQI", r.choice([0, 1, 5, 2**64 - 1]), r.choice([0, 10, 2**64 - 1]),
                                 r.choice([0, 1000, 0xFFFFFFFF]))
            return packet(r.choice([0x05, 0x06, 0x15, 0x16]), k, extras=extras, cas=cas(), opaque=3)
        if roll < 0.7:
            return packet(r.choice([0x04, 0x14]), k, cas=cas(), opaque=4)
        if roll < 0.8:
            k = r.choice(CONCAT[:2])
            return packet(r.choice([0x0E, 0x0F, 0x19, 0x1A]), k, r.choice([b"", b"zz", b"5"]), cas=cas(), opaque=5)
        if roll < 0.9:
            extras = struct.pack(">I", r.choice([0, 1000]))
            return packet(r.choice([0x1C, 0x1D, 0x1E, 0x23, 0x24]), k, extras=extras, opaque=6)
        return packet(NOOP, opaque=7)


def run_binary(seed, steps, ports):
    conns = [BinaryConn(p) for p in ports]
    tokens = [{}, {}]
    gen = BinaryGen(seed)
    for step in range(steps):
        state = gen.rng.getstate()
        replies = []
        for conn, known in zip(conns, tokens):
            gen.rng.setstate(state)  # the same request, with this server's CAS
            req = gen.request(known)
            got = conn.call(req)
            key = req[24 + req[4]:24 + req[4] + struct.unpack(">H", req[2:4])[0]]
            for reply in got:
                if reply[1] == 0 and reply[6]:
                    known[key] = reply[6]
            replies.append([reply[:6] for reply in got])
        if replies[0] != replies[1]:
            return step, req, replies
    return None


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


def run_text(seed, steps, ports):
    conns = [Conn(p) for p in ports]
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
            return step, req, replies
        if normalise(states[0]) != normalise(states[1]):
            return step, b"(state after) " + req, states
    return None


def pid_on(port):
    """The pid a server on `port` reports in `stats`, or None."""
    try:
        conn = Conn(port)
        conn.s.sendall(b"stats\r\n")
        while not conn.buf.endswith(b"END\r\n"):
            data = conn.s.recv(65536)
            if not data:
                return None
            conn.buf += data
        conn.s.close()
    except OSError:
        return None
    m = re.search(rb"^STAT pid (\d+)", conn.buf, re.M)
    return int(m.group(1)) if m else None


def start(cafe, memcached):
    """Both servers on free loopback ports, each checked to be the one
    answering there (a port picked free can be taken by someone else's
    server before ours binds it): the processes and the ports."""
    root = ["-u", "root"] if os.getuid() == 0 else []
    for _ in range(5):
        mport, cport = free_port(), free_port()
        procs = [
            subprocess.Popen([memcached, "-p", str(mport), "-U", "0", "-l", "127.0.0.1", "-t", "1"] + root,
                             stderr=subprocess.DEVNULL),
            subprocess.Popen([cafe, "--listen", "127.0.0.1:%d" % cport, "--threads", "2",
                              "--metrics-listen", "off"], stderr=subprocess.DEVNULL),
        ]
        if all(pid_on(port) == p.pid for p, port in zip(procs, (mport, cport))):
            return procs, [mport, cport]
        for p in procs:
            p.kill()
            p.wait()
    raise SystemExit("could not start both servers on free ports")


def run(seed, steps, cafe, memcached, binary):
    """True when the two agreed for every step; prints the first difference."""
    procs, ports = start(cafe, memcached)
    try:
        found = (run_binary if binary else run_text)(seed, steps, ports)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    if found:
        step, req, replies = found
        print("seed %d step %d: %r\n  memcached %r\n  cafe      %r" % (seed, step, req, replies[0], replies[1]))
    return found is None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=10, help="seeds tried, from --seed")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--cafe", default="target/release/cafe-server")
    ap.add_argument("--memcached", default="memcached")
    ap.add_argument("--binary", action="store_true", help="the memcached binary protocol")
    args = ap.parse_args()
    failed = [s for s in range(args.seed, args.seed + args.seeds)
              if not run(s, args.steps, args.cafe, args.memcached, args.binary)]
    print("%d of %d seeds agreed for %d steps" % (args.seeds - len(failed), args.seeds, args.steps))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
