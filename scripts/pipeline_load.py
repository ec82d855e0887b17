#!/usr/bin/env python3
"""Pipelined GET load for the native protocol, for syscall counting.

Stores 1000 keys of 64 bytes, then sends ROUNDS batches of DEPTH GETs on
each of CONNS connections, reading every batch's replies before the next.
It checks the byte count of every batch, not the values. Written before
cafe-bench existed, and kept for scripts/syscalls.sh. Every batch GETs
keys 0..DEPTH-1: at depth 1 every GET is for key 0, so with two workers
every request is local or every one is forwarded.

usage: pipeline_load.py PORT DEPTH ROUNDS CONNS
"""
import socket
import struct
import sys
import time

HEADER = ">HBBHHI"


def frame(op, key=b"", val=b""):
    return struct.pack(HEADER, 0xCAFE, 1, op, 0, len(key), len(val)) + key + val


def read_exact(sock, n):
    got = 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            sys.exit("server closed the connection")
        got += len(chunk)


def main():
    port, depth, rounds, conns = (int(a) for a in sys.argv[1:5])
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    for s in socks:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    keys = [b"key:%05d" % i for i in range(1000)]
    socks[0].sendall(b"".join(frame(2, k, b"x" * 64) for k in keys))
    read_exact(socks[0], 12 * len(keys))
    batch = b"".join(frame(1, keys[i % len(keys)]) for i in range(depth))
    reply_bytes = depth * (12 + 64)
    start = time.time()
    for _ in range(rounds):
        for s in socks:
            s.sendall(batch)
        for s in socks:
            read_exact(s, reply_bytes)
    elapsed = time.time() - start
    total = rounds * depth * conns
    print(f"{total} GETs in {elapsed:.2f}s = {total / elapsed:.0f}/s")
    print(f"requests {total}")


if __name__ == "__main__":
    main()
