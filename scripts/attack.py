#!/usr/bin/env python3
"""One memory or fairness attack against a running server, measured.

Speaks memcached's text protocol (and its binary protocol for SETQ and
APPENDQ), so it runs unchanged against cafe-server and memcached. Traffic
goes to 127.0.0.1 only and every phase is bounded in time.

Phases: preload (KEEP items of 1 KiB, plus what the attack reads), pre-attack
RSS, the attack for DURATION s while a probe process GETs kept items over
its own connections every 5 ms, then the attack's sockets close, a settle
wait, after-attack RSS, a check that a fresh connection and the probe's are
answered (no stuck connection), and that every kept item still held reads
back intact. Prints one `name value` line per figure.

usage: attack.py PORT PID ATTACK [--duration S] [--settle S]
attacks: slowloris halfset getnoread getnoread-spread setq appendq randomsets
"""
import argparse
import multiprocessing
import os
import random
import select
import socket
import struct
import sys
import time

MIB = 1 << 20
KEEP = 200


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until(s, end, limit=4 * MIB):
    buf = b""
    while not buf.endswith(end):
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
        if len(buf) > limit:
            raise ValueError("reply too long")
    return buf


def text_set(s, key, value):
    s.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value))
    return read_until(s, b"\r\n")


def text_get(s, key):
    s.sendall(b"get %s\r\n" % key)
    reply = read_until(s, b"END\r\n")
    if reply == b"END\r\n":
        return None
    header, rest = reply.split(b"\r\n", 1)
    n = int(header.split()[3])
    return rest[:n]


def keep_value(i):
    return (b"keep:%d|" % i + b"k" * 1024)[:1024]


def stat(port, name):
    s = connect(port)
    s.sendall(b"stats\r\n")
    for line in read_until(s, b"END\r\n").split(b"\r\n"):
        parts = line.split()
        if len(parts) == 3 and parts[1] == name.encode():
            return int(parts[2])
    return 0


def binary(opcode, key, value=b"", extras=b""):
    body = len(extras) + len(key) + len(value)
    return struct.pack(">BBHBBHII8s", 0x80, opcode, len(key), len(extras), 0, 0,
                       body, 0, bytes(8)) + extras + key + value


def probe(port, duration, out, ready):
    """GETs kept items every 5 ms over 4 connections opened before the
    attack (they land on different workers); sends back the latencies and
    the failures."""
    conns = [connect(port, timeout=2.0) for _ in range(4)]
    ready.send(True)
    lat, failures = [], 0
    end = time.monotonic() + duration
    i = 0
    while time.monotonic() < end:
        s = conns[i % len(conns)]
        t0 = time.monotonic()
        try:
            got = text_get(s, b"keep:%d" % (i % KEEP))
            if got is not None and got != keep_value(i % KEEP):
                failures += 1
        except (OSError, ValueError):
            failures += 1
            conns[i % len(conns)] = connect(port, timeout=2.0)
        lat.append(time.monotonic() - t0)
        i += 1
        time.sleep(0.005)
    out.send((lat, failures, [c.fileno() >= 0 for c in conns]))


class Pump:
    """Non-blocking sockets, each with bytes to push, pushed until the time
    is up or the kernel stops taking them; never reads."""

    def __init__(self):
        self.socks = []

    def add(self, s, data, repeat=False):
        s.setblocking(False)
        self.socks.append([s, memoryview(data), data if repeat else None])

    def run(self, until):
        while time.monotonic() < until:
            live = [e for e in self.socks if len(e[1]) or e[2] is not None]
            if not live:
                time.sleep(0.05)
                continue
            _, writable, _ = select.select([], [e[0] for e in live][:1000], [], 0.05)
            ready = set(writable)
            for e in live:
                if e[0] not in ready:
                    continue
                try:
                    n = e[0].send(e[1][:262144])
                    e[1] = e[1][n:]
                    if not len(e[1]) and e[2] is not None:
                        e[1] = memoryview(e[2])
                except BlockingIOError:
                    pass
                except OSError:
                    e[1], e[2] = memoryview(b""), None

    def close(self):
        for e in self.socks:
            e[0].close()


def attack(name, port, until):
    """Runs one attack until `until`; returns its sockets to close."""
    pump = Pump()
    rng = random.Random(7)
    if name == "slowloris":
        # 5000 connections, one byte of a command line every 2 s.
        socks = []
        for _ in range(5000):
            try:
                socks.append(connect(port))
            except OSError:
                break
        line = b"get slowly-never-finished-key"
        sent = 0
        while time.monotonic() < until:
            for s in socks:
                try:
                    s.send(line[sent % len(line):][:1])
                except OSError:
                    pass
            sent += 1
            time.sleep(min(2.0, max(0.0, until - time.monotonic())))
        for s in socks:
            pump.add(s, b"")
    elif name == "halfset":
        # 1000 SETs declaring 1 MiB - 1 bytes; the last byte never comes.
        body = b"h" * (MIB - 2)
        for i in range(1000):
            s = connect(port)
            pump.add(s, b"set half%d 0 0 %d\r\n" % (i, MIB - 1) + body)
        pump.run(until)
    elif name in ("getnoread", "getnoread-spread"):
        # Pipelined GETs of 1 MiB values, replies never read.
        keys = [b"big0"] if name == "getnoread" else [b"big%d" % i for i in range(16)]
        clients = 1000 if name == "getnoread" else 60
        for c in range(clients):
            s = connect(port)
            batch = b"".join(b"get %s\r\n" % keys[(c + j) % len(keys)] for j in range(200))
            pump.add(s, batch)
        pump.run(until)
    elif name == "setq":
        # 12 clients pipelining 1 MiB SETQs to one key (one owner).
        frame = binary(0x11, b"hot", b"s" * (MIB - 64), extras=bytes(8))
        for _ in range(12):
            pump.add(connect(port), frame * 4, repeat=True)
        pump.run(until)
    elif name == "appendq":
        # Empty APPENDQs on a 1 MiB item, 256 KiB of them per write.
        frames = binary(0x19, b"app") * (262144 // 27)
        pump.add(connect(port), frames, repeat=True)
        pump.run(until)
    elif name == "randomsets":
        # Well-behaved clients storing random sizes up to 1 MiB.
        socks = [connect(port, timeout=10.0) for _ in range(4)]
        i = 0
        while time.monotonic() < until:
            s = socks[i % len(socks)]
            size = min(MIB - 512, int(rng.paretovariate(0.8) * 512))
            text_set(s, b"rand%d" % rng.randrange(20000), b"r" * size)
            i += 1
        for s in socks:
            pump.add(s, b"")
    else:
        sys.exit(f"unknown attack {name}")
    return pump


def preload(name, port):
    s = connect(port, timeout=10.0)
    for i in range(KEEP):
        text_set(s, b"keep:%d" % i, keep_value(i))
    if name == "getnoread":
        text_set(s, b"big0", b"b" * (MIB - 512))
    if name == "getnoread-spread":
        for i in range(16):
            text_set(s, b"big%d" % i, b"b" * (MIB - 512))
    if name == "appendq":
        text_set(s, b"app", b"a" * (MIB - 512))
    s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("pid", type=int)
    ap.add_argument("attack")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--settle", type=float, default=3.0)
    args = ap.parse_args()
    port, pid = args.port, args.pid
    preload(args.attack, port)
    bytes_before = stat(port, "bytes")
    conns_before = stat(port, "curr_connections")
    time.sleep(0.5)
    pre = rss_kib(pid, "VmRSS")
    rx, tx = multiprocessing.Pipe(duplex=False)
    ready_rx, ready_tx = multiprocessing.Pipe(duplex=False)
    prober = multiprocessing.Process(target=probe, args=(port, args.duration, tx, ready_tx))
    prober.start()
    ready_rx.poll(10)
    pump = attack(args.attack, port, time.monotonic() + args.duration)
    during = rss_kib(pid, "VmRSS")
    lat, failures, _ = rx.recv() if rx.poll(args.duration + 10) else ([], -1, [])
    prober.join(5)
    pump.close()
    # The attack is over once the server has closed its connections (those
    # that owe replies finish them first); then it has `settle` seconds to
    # give memory back.
    closed_at = time.monotonic()
    while time.monotonic() - closed_at < 60 and stat(port, "curr_connections") > conns_before:
        time.sleep(0.05)
    drain = time.monotonic() - closed_at
    time.sleep(args.settle)
    after = rss_kib(pid, "VmRSS")
    peak = rss_kib(pid, "VmHWM")
    bytes_after = stat(port, "bytes")
    # No stuck connection: a fresh one is answered at once.
    stuck = 0
    try:
        s = connect(port, timeout=2.0)
        s.sendall(b"version\r\n")
        if not read_until(s, b"\r\n").startswith(b"VERSION"):
            stuck = 1
    except (OSError, ValueError):
        stuck = 1
    # Kept items: missing (evicted) or intact.
    corrupt, held = 0, 0
    s = connect(port, timeout=5.0)
    for i in range(KEEP):
        got = text_get(s, b"keep:%d" % i)
        if got is not None:
            held += 1
            corrupt += got != keep_value(i)
    lat.sort()
    pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: -1)
    print(f"pre_rss_kib {pre}")
    print(f"during_rss_kib {during}")
    print(f"peak_rss_kib {peak}")
    print(f"after_rss_kib {after}")
    print(f"drain_s {drain:.1f}")
    print(f"stored_bytes_delta {bytes_after - bytes_before}")
    print(f"probe_requests {len(lat)}")
    print(f"probe_failures {failures}")
    print(f"probe_p50_ms {pct(0.50):.2f}")
    print(f"probe_p99_ms {pct(0.99):.2f}")
    print(f"probe_over_10ms {sum(1 for x in lat if x > 0.010)}")
    print(f"stuck {stuck}")
    print(f"kept_held {held}")
    print(f"kept_corrupt {corrupt}")


if __name__ == "__main__":
    main()
