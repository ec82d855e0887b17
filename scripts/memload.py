#!/usr/bin/env python3
"""Memory-limit load over the memcached binary protocol.

Speaks only the memcached binary protocol (docs/PROTOCOL.md Part II), so it
runs unchanged against cafe-server and memcached. Every mode prints
`name value` lines that scripts/memory-compare.sh reads.

  fill   N distinct keys `key:{i}`, i = 0..N-1 in order, each a VALUE-byte
         value derived from i, in batches of SETQ ended by a NOOP; reads
         until the NOOP's answer and counts every error answer by status.
  read   M GETs, keys drawn from a Zipf(ALPHA) over ranks 1..N (fixed seed);
         rank r maps to key `key:{perm[r-1]}` through a fixed random
         permutation, so popularity is not tied to write order. Batches of
         GETKQ ended by a NOOP; each hit's key and value are checked against
         what fill wrote (a wrong value counts as `read_bad_values`).
         With --set-misses, each batch's misses are then SET (SETQ batch +
         NOOP) as a cache-aside client would, so the eviction policy, not
         just the item count, decides the hit ratio.
  stats  every STAT pair of the default group.
  wait   connect and NOOP until the server answers, for up to TIMEOUT s.

usage: memload.py PORT fill  [--keys N] [--value-size B] [--batch K]
       memload.py PORT read  [--keys N] [--value-size B] [--batch K]
                             [--reads M] [--alpha A] [--seed S] [--set-misses]
       memload.py PORT stats
       memload.py PORT wait  [--timeout T]
"""
import argparse
import bisect
import itertools
import random
import select
import socket
import struct
import sys
import time

HEADER = struct.Struct(">BBHBBHII8s")  # magic op keylen extlen type status/vb body opaque cas
HLEN = 24
NOCAS = bytes(8)
OP_GETKQ, OP_NOOP, OP_SETQ, OP_STAT = 0x0D, 0x0A, 0x11, 0x10
STATUS = {
    0x01: "KEY_ENOENT", 0x02: "KEY_EEXISTS", 0x03: "E2BIG", 0x04: "EINVAL",
    0x05: "NOT_STORED", 0x06: "DELTA_BADVAL", 0x81: "UNKNOWN_COMMAND",
    0x82: "ENOMEM", 0x83: "NOT_SUPPORTED",
}
NOOP_OPAQUE = 0xFFFFFFFF


def key_of(i):
    return b"key:%d" % i


def value_of(i, size):
    """The value fill writes for key i: its index, then filler, `size` bytes."""
    head = b"%d|" % i
    return (head + b"v" * size)[:size]


def request(op, opaque, key=b"", extras=b"", value=b""):
    body = len(extras) + len(key) + len(value)
    return HEADER.pack(0x80, op, len(key), len(extras), 0, 0, body, opaque, NOCAS) + extras + key + value


NOOP = request(OP_NOOP, NOOP_OPAQUE)


class Conn:
    """One connection; `exchange` writes a batch while reading its answers."""

    def __init__(self, port, timeout=30.0):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def exchange(self, payload, on_frame):
        """Send `payload` (a batch ending in a NOOP), call on_frame(header
        fields, body) for each answer before the NOOP's, return at the NOOP.
        Reads while writing, so a server that stops reading until its answers
        are read can never deadlock the loader."""
        sock, view, sent = self.sock, memoryview(payload), 0
        sock.setblocking(False)
        try:
            while True:
                want_w = [sock] if sent < len(view) else []
                r, w, _ = select.select([sock], want_w, [], self.timeout)
                if not r and not w:
                    sys.exit(f"timeout: no answer from the server in {self.timeout} s")
                if w:
                    try:
                        sent += sock.send(view[sent:sent + (1 << 20)])
                    except BlockingIOError:
                        pass
                if r:
                    try:
                        chunk = sock.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sys.exit("server closed the connection")
                    self.buf += chunk
                    if self._parse(on_frame):
                        if sent < len(view):
                            sys.exit("NOOP answered before the batch was sent")
                        return
        finally:
            sock.setblocking(True)

    def _parse(self, on_frame):
        buf, pos, n = self.buf, 0, len(self.buf)
        done = False
        while n - pos >= HLEN:
            magic, op, klen, elen, _, status, blen, opaque, cas = HEADER.unpack_from(buf, pos)
            if magic != 0x81:
                sys.exit(f"bad response magic {magic:#x}")
            if n - pos < HLEN + blen:
                break
            body = bytes(buf[pos + HLEN:pos + HLEN + blen])
            pos += HLEN + blen
            if op == OP_NOOP and opaque == NOOP_OPAQUE:
                if status:
                    sys.exit(f"NOOP answered status {status:#06x}")
                done = True
                break
            on_frame(op, klen, elen, status, opaque, body)
        del buf[:pos]
        if done and buf:
            sys.exit(f"{len(buf)} unexpected bytes after the NOOP's answer")
        return done


class Errors:
    def __init__(self):
        self.by_status = {}
        self.first = None

    def add(self, op, status, opaque, body):
        name = STATUS.get(status, f"{status:#06x}")
        self.by_status[name] = self.by_status.get(name, 0) + 1
        if self.first is None:
            self.first = f"op {op:#04x} opaque {opaque} status {name}: {body[:80]!r}"

    def report(self, prefix):
        print(f"{prefix}_errors {sum(self.by_status.values())}")
        for name, count in sorted(self.by_status.items()):
            print(f"{prefix}_errors_{name} {count}")
        if self.first:
            print(f"first error: {self.first}", file=sys.stderr)


def fill(conn, args):
    extras = struct.pack(">II", 0, 0)  # flags 0, never expires
    errors = Errors()

    def on_frame(op, klen, elen, status, opaque, body):
        if status == 0:  # SETQ success is silent; anything else is odd
            errors.add(op, 0xFFFF, opaque, body)
        else:
            errors.add(op, status, opaque, body)

    start = time.perf_counter()
    pack, hdr = HEADER.pack, 0x80
    for lo in range(0, args.keys, args.batch):
        hi = min(lo + args.batch, args.keys)
        parts = []
        for i in range(lo, hi):
            k, v = key_of(i), value_of(i, args.value_size)
            parts.append(pack(hdr, OP_SETQ, len(k), 8, 0, 0, 8 + len(k) + len(v), i, NOCAS))
            parts.append(extras)
            parts.append(k)
            parts.append(v)
        parts.append(NOOP)
        conn.exchange(b"".join(parts), on_frame)
    elapsed = time.perf_counter() - start
    print(f"fill_keys {args.keys}")
    print(f"fill_value_bytes {args.value_size}")
    print(f"fill_seconds {elapsed:.3f}")
    print(f"fill_per_second {args.keys / elapsed:.0f}")
    errors.report("fill")


def zipf_sampler(n, alpha, rng):
    """Ranks 1..n with P(r) proportional to r^-alpha, by inverting the exact
    CDF: bisect a uniform draw into the precomputed cumulative weights."""
    cdf = list(itertools.accumulate(r ** -alpha for r in range(1, n + 1)))
    total = cdf[-1]
    rand, find, last = rng.random, bisect.bisect_right, n - 1

    def draw():
        # bisect_right gives the first index whose cumulative weight exceeds
        # u: index i is rank i+1. min() guards float rounding at the top.
        return min(find(cdf, rand() * total), last)
    return draw


def read(conn, args):
    rng = random.Random(args.seed)
    prep = time.perf_counter()
    draw = zipf_sampler(args.keys, args.alpha, rng)
    perm = list(range(args.keys))
    random.Random(args.seed + 1).shuffle(perm)
    keys = [perm[draw()] for _ in range(args.reads)]  # key index of each GET
    prep = time.perf_counter() - prep

    errors = Errors()
    counts = {"hits": 0, "bad": 0, "sets": 0}
    size = args.value_size
    hit = bytearray(args.batch)  # per batch: which GETs hit
    extras = struct.pack(">II", 0, 0)

    def on_frame(op, klen, elen, status, opaque, body):
        if status != 0 or op != OP_GETKQ:
            errors.add(op, status if status else 0xFFFF, opaque, body)
            return
        key, value = body[elen:elen + klen], body[elen + klen:]
        if key != key_of(keys[opaque]) or value != value_of(keys[opaque], size):
            counts["bad"] += 1
        counts["hits"] += 1
        hit[opaque % args.batch] = 1

    start = time.perf_counter()
    pack, hdr = HEADER.pack, 0x80
    for lo in range(0, args.reads, args.batch):
        hi = min(lo + args.batch, args.reads)
        parts = []
        for j in range(lo, hi):
            k = key_of(keys[j])
            parts.append(pack(hdr, OP_GETKQ, len(k), 0, 0, 0, len(k), j, NOCAS))
            parts.append(k)
        parts.append(NOOP)
        hit[:] = bytes(args.batch)
        conn.exchange(b"".join(parts), on_frame)
        if args.set_misses:
            parts = []
            for j in range(lo, hi):
                if not hit[j - lo]:
                    i = keys[j]
                    k, v = key_of(i), value_of(i, size)
                    parts.append(pack(hdr, OP_SETQ, len(k), 8, 0, 0, 8 + len(k) + len(v), j, NOCAS))
                    parts += (extras, k, v)
            if parts:
                counts["sets"] += len(parts) // 4
                parts.append(NOOP)
                conn.exchange(b"".join(parts), on_frame)
    elapsed = time.perf_counter() - start
    distinct = len(set(keys))
    print(f"read_gets {args.reads}")
    print(f"read_alpha {args.alpha}")
    print(f"read_distinct_keys {distinct}")
    print(f"read_hits {counts['hits']}")
    print(f"read_hit_ratio {counts['hits'] / args.reads:.4f}")
    print(f"read_bad_values {counts['bad']}")
    print(f"read_miss_sets {counts['sets']}")
    print(f"read_prepare_seconds {prep:.3f}")
    print(f"read_seconds {elapsed:.3f}")
    print(f"read_per_second {args.reads / elapsed:.0f}")
    errors.report("read")


def stats(conn, args):
    pairs = []

    def on_frame(op, klen, elen, status, opaque, body):
        if op != OP_STAT or status != 0:
            sys.exit(f"STAT answered op {op:#04x} status {status:#06x}: {body[:80]!r}")
        if klen:  # the empty frame ends the reply; the NOOP follows it
            pairs.append((body[elen:elen + klen].decode(), body[elen + klen:].decode()))

    conn.exchange(request(OP_STAT, 0) + NOOP, on_frame)
    for name, value in pairs:
        print(f"{name} {value}")


def wait(port, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = Conn(port, timeout=max(0.1, deadline - time.monotonic()))
            conn.exchange(NOOP, lambda *frame: None)
            return
        except (OSError, SystemExit) as e:
            if time.monotonic() >= deadline:
                sys.exit(f"port {port}: no answer within {timeout} s ({e})")
            time.sleep(0.05)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("port", type=int)
    p.add_argument("mode", choices=["fill", "read", "stats", "wait"])
    p.add_argument("--keys", type=int, default=2_000_000, help="N distinct keys (default 2,000,000)")
    p.add_argument("--value-size", type=int, default=100, help="bytes per value (default 100)")
    p.add_argument("--batch", type=int, default=500, help="requests per NOOP-ended batch (default 500)")
    p.add_argument("--reads", type=int, default=1_000_000, help="M GETs in read (default 1,000,000)")
    p.add_argument("--alpha", type=float, default=1.0, help="Zipf exponent (default 1.0)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--set-misses", action="store_true", help="read: SET every missed key (cache-aside)")
    p.add_argument("--timeout", type=float, default=10.0, help="wait: seconds (default 10)")
    args = p.parse_args()
    if args.mode == "wait":
        return wait(args.port, args.timeout)
    conn = Conn(args.port)
    {"fill": fill, "read": read, "stats": stats}[args.mode](conn, args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
