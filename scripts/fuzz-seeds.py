#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora: fuzz/corpus/<target>/seed-<name>.

A few dozen valid and invalid frames per protocol, after the codec tests'
vectors (tests/common/text_cases.rs, tests/*_codec.rs): every command, the
limits of fuzz's smallest limit set (16-byte keys, 64-byte values) crossed,
bad magic and framing, and pipelines. Re-running rewrites the seed-* files
and leaves every other file (inputs a fuzzer added) alone.

    scripts/fuzz-seeds.py
"""

import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus")

# --- the native 0xCAFE protocol -------------------------------------------

N_GET, N_SET, N_DELETE, N_SET_TTL, N_NOOP, N_STATS = 1, 2, 3, 4, 5, 6
N_OK, N_ERR, N_NOT_FOUND = 128, 129, 130


def native(op, key=b"", value=b"", flags=0, magic=0xCAFE, version=1,
           key_len=None, value_len=None):
    head = struct.pack(">HBBHHI", magic, version, op, flags,
                       len(key) if key_len is None else key_len,
                       len(value) if value_len is None else value_len)
    return head + key + value


NATIVE_REQUESTS = {
    "get": native(N_GET, b"key"),
    "set": native(N_SET, b"key", b"value", flags=7),
    "set-empty-value": native(N_SET, b"k"),
    "set-ttl": native(N_SET_TTL, b"key", struct.pack(">I", 60) + b"value"),
    "set-ttl-zero": native(N_SET_TTL, b"key", struct.pack(">I", 0)),
    "delete": native(N_DELETE, b"key"),
    "noop": native(N_NOOP),
    "stats": native(N_STATS),
    "key-at-limit": native(N_GET, b"k" * 16),
    "key-over-small-limit": native(N_GET, b"k" * 17),
    "key-over-memcached-limit": native(N_SET, b"k" * 251, b"v"),
    "value-at-limit": native(N_SET, b"k", b"v" * 64),
    "value-over-limit": native(N_SET, b"k", b"v" * 65),
    "value-claimed-4g": native(N_SET, b"k", value_len=0xFFFFFFFF),
    "set-ttl-short": native(N_SET_TTL, b"k", b"ab"),
    "empty-key": native(N_GET),
    "noop-with-key": native(N_NOOP, b"k"),
    "get-with-value": native(N_GET, b"k", b"v"),
    "stats-with-flags": native(N_STATS, flags=1),
    "unknown-opcode": native(99, b"k", b"v"),
    "response-opcode": native(N_OK),
    "bad-magic": native(N_GET, b"k", magic=0xCAFF),
    "bad-version": native(N_GET, b"k", version=2),
    "short-header": native(N_GET, b"key")[:7],
    "truncated-body": native(N_SET, b"key", b"value")[:-2],
    "pipeline": native(N_SET, b"a", b"1") + native(N_GET, b"a") + native(N_DELETE, b"a")
    + native(N_NOOP) + native(N_GET, b"a"),
    "refused-then-valid": native(N_GET, b"k" * 20) + native(N_NOOP),
    "skip-past-end": native(N_SET, b"k", b"v" * 100)[:30],
}

NATIVE_RESPONSES = {
    "ok": native(N_OK),
    "hit": native(N_OK, value=b"value", flags=3),
    "err": native(N_ERR, value=b"key too long"),
    "not-found": native(N_NOT_FOUND),
    "stats": native(N_OK, value=b"curr_items 1\nget_hits 2\n"),
    "at-limit": native(N_OK, value=b"v" * 64),
    "over-limit": native(N_OK, value=b"v" * 65),
    "claimed-4g": native(N_OK, value_len=0xFFFFFFFF),
    "with-key": native(N_OK, key=b"k"),
    "unknown-status": native(200, value=b"x"),
    "bad-magic": native(N_OK, magic=0x8100),
    "bad-version": native(N_OK, version=0),
    "short": native(N_OK, value=b"abc")[:13],
    "pipeline": native(N_OK, value=b"1") + native(N_NOT_FOUND) + native(N_ERR, value=b"no"),
}

# --- the memcached binary protocol ----------------------------------------

M = dict(GET=0x00, SET=0x01, ADD=0x02, REPLACE=0x03, DELETE=0x04, INCREMENT=0x05,
         DECREMENT=0x06, QUIT=0x07, FLUSH=0x08, GETQ=0x09, NOOP=0x0a, VERSION=0x0b,
         GETK=0x0c, GETKQ=0x0d, APPEND=0x0e, PREPEND=0x0f, STAT=0x10, SETQ=0x11,
         DELETEQ=0x14, QUITQ=0x17, FLUSHQ=0x18, VERBOSITY=0x1b, TOUCH=0x1c, GAT=0x1d,
         GATK=0x23, SASL_LIST=0x20)


def memcache(op, key=b"", extras=b"", value=b"", magic=0x80, status=0, opaque=0x1234,
             cas=0, key_len=None, extras_len=None, body_len=None):
    key_len = len(key) if key_len is None else key_len
    extras_len = len(extras) if extras_len is None else extras_len
    body = extras + key + value
    body_len = len(body) if body_len is None else body_len
    head = struct.pack(">BBHBBHIIQ", magic, op, key_len, extras_len, 0, status,
                       body_len, opaque, cas)
    return head + body


def store_extras(flags=0, exptime=0):
    return struct.pack(">II", flags, exptime)


ARITH = struct.pack(">QQI", 1, 10, 0)

MEMCACHE_REQUESTS = {
    "get": memcache(M["GET"], b"key"),
    "getk": memcache(M["GETK"], b"key"),
    "getkq": memcache(M["GETKQ"], b"key"),
    "set": memcache(M["SET"], b"key", store_extras(5, 60), b"value"),
    "setq-cas": memcache(M["SETQ"], b"key", store_extras(), b"v", cas=42),
    "add": memcache(M["ADD"], b"key", store_extras(), b"value"),
    "replace": memcache(M["REPLACE"], b"key", store_extras(), b"value"),
    "append": memcache(M["APPEND"], b"key", value=b"tail"),
    "prepend": memcache(M["PREPEND"], b"key", value=b"head"),
    "delete": memcache(M["DELETE"], b"key"),
    "incr": memcache(M["INCREMENT"], b"n", ARITH),
    "decr": memcache(M["DECREMENT"], b"n", ARITH),
    "touch": memcache(M["TOUCH"], b"key", struct.pack(">I", 10)),
    "gat": memcache(M["GAT"], b"key", struct.pack(">I", 10)),
    "gatk": memcache(M["GATK"], b"key", struct.pack(">I", 10)),
    "flush": memcache(M["FLUSH"]),
    "flush-delay": memcache(M["FLUSHQ"], extras=struct.pack(">I", 5)),
    "noop": memcache(M["NOOP"]),
    "version": memcache(M["VERSION"]),
    "quit": memcache(M["QUIT"]),
    "verbosity": memcache(M["VERBOSITY"], extras=struct.pack(">I", 1)),
    "stat": memcache(M["STAT"]),
    "stat-group": memcache(M["STAT"], b"settings"),
    "key-over-small-limit": memcache(M["GET"], b"k" * 17),
    "key-over-memcached-limit": memcache(M["GET"], b"k" * 251),
    "value-over-limit": memcache(M["SET"], b"k", store_extras(), b"v" * 65),
    "body-claimed-4g": memcache(M["SET"], b"k", store_extras(), body_len=0xFFFFFFFF),
    "malformed-lengths": memcache(M["GET"], b"key", body_len=2),
    "get-with-value": memcache(M["GET"], b"key", value=b"v"),
    "set-without-extras": memcache(M["SET"], b"key", value=b"v"),
    "flush-with-key": memcache(M["FLUSH"], b"k"),
    "unknown-opcode": memcache(0x40, b"key", value=b"body"),
    "sasl-list": memcache(M["SASL_LIST"]),
    "bad-magic": memcache(M["GET"], b"key", magic=0x81),
    "short-header": memcache(M["GET"], b"key")[:10],
    "truncated-body": memcache(M["SET"], b"key", store_extras(), b"value")[:-1],
    "pipeline": memcache(M["SETQ"], b"a", store_extras(), b"1") + memcache(M["GETKQ"], b"a")
    + memcache(M["DELETEQ"], b"a") + memcache(M["NOOP"]),
    "refused-then-valid": memcache(0x40, value=b"xyz") + memcache(M["NOOP"]),
}

MEMCACHE_RESPONSES = {
    "get-hit": memcache(M["GET"], extras=struct.pack(">I", 5), value=b"value", magic=0x81, cas=9),
    "getk-miss": memcache(M["GETK"], b"key", value=b"Not found", magic=0x81, status=1),
    "set-ok": memcache(M["SET"], magic=0x81, cas=10),
    "incr": memcache(M["INCREMENT"], value=struct.pack(">Q", 11), magic=0x81),
    "version": memcache(M["VERSION"], value=b"1.6.38-cafe-0.1.0", magic=0x81),
    "stat": memcache(M["STAT"], b"pid", value=b"123", magic=0x81),
    "stat-end": memcache(M["STAT"], magic=0x81),
    "error": memcache(M["GET"], value=b"Too large.", magic=0x81, status=0x03),
    "at-limit": memcache(M["GET"], value=b"v" * 64, magic=0x81),
    "over-limit": memcache(M["GET"], value=b"v" * 65, magic=0x81),
    "claimed-4g": memcache(M["GET"], magic=0x81, body_len=0xFFFFFFFF),
    "malformed": memcache(M["GETK"], b"key", magic=0x81, body_len=1),
    "request-magic": memcache(M["GET"], value=b"v"),
    "short": memcache(M["NOOP"], magic=0x81)[:20],
    "pipeline": memcache(M["GETKQ"], b"a", struct.pack(">I", 0), b"1", magic=0x81)
    + memcache(M["NOOP"], magic=0x81),
}

# --- memcached's text and meta protocols ----------------------------------

TEXT_LINES = {
    "get": b"get key\r\n",
    "get-many": b"get a b c d\r\n",
    "gets": b"gets key\r\n",
    "gat": b"gat 10 key other\r\n",
    "gats-no-key": b"gats 10\r\n",
    "set": b"set key 5 0 5\r\nvalue\r\n",
    "set-noreply": b"set key 0 0 1 noreply\r\nx\r\n",
    "add": b"add key 0 60 3\r\nabc\r\n",
    "replace": b"replace key 0 0 0\r\n\r\n",
    "append": b"append key 0 0 2\r\nzz\r\n",
    "prepend": b"prepend key 0 0 2\r\naa\r\n",
    "cas": b"cas key 0 0 1 99\r\nx\r\n",
    "delete": b"delete key\r\n",
    "delete-zero-noreply": b"delete key 0 noreply\r\n",
    "incr": b"incr n 5\r\n",
    "decr": b"decr n 18446744073709551615\r\n",
    "touch": b"touch key 100\r\n",
    "flush-all": b"flush_all 10 noreply\r\n",
    "version": b"version\r\n",
    "verbosity": b"verbosity 1\r\n",
    "stats": b"stats\r\n",
    "stats-settings": b"stats settings\r\n",
    "cache-memlimit": b"cache_memlimit 64\r\n",
    "quit": b"quit\r\n",
    "shutdown": b"shutdown graceful\r\n",
    "bare-newline": b"get key\n",
    "nul-in-line": b"get key\0junk\r\n",
    "mg": b"mg key v f t c s k O123 q\r\n",
    "mg-base64": b"mg a2V5 b v\r\n",
    "ms": b"ms key 5 T60 F3 c\r\nvalue\r\n",
    "ms-mode": b"ms key 2 MA\r\nzz\r\n",
    "ms-invalid-mode": b"ms key 2 MX\r\nzz\r\n",
    "md": b"md key q C5\r\n",
    "ma": b"ma n MI D5 J10 N0 v\r\n",
    "me": b"me key\r\n",
    "mn": b"mn\r\n",
    "meta-duplicate-flag": b"mg key v v\r\n",
    "meta-many-flags": b"mg key " + b" ".join([b"v"] * 20) + b"\r\n",
    "meta-opaque-long": b"mg key O" + b"o" * 32 + b"\r\n",
    "meta-bad-base64": b"mg ***** b\r\n",
    "unknown-command": b"slabs reassign 1 2\r\n",
    "one-byte-command": b"g\r\n",
    "empty-line": b"\r\n",
    "key-over-small-limit": b"get " + b"k" * 17 + b"\r\n",
    "key-over-memcached-limit": b"get " + b"k" * 251 + b"\r\n",
    "value-over-limit": b"set k 0 0 65\r\n" + b"v" * 65 + b"\r\n",
    "value-over-limit-unsent": b"set k 0 0 2000000\r\n",
    "negative-length": b"set k 0 0 -1\r\n",
    "bad-data-chunk": b"set k 0 0 3\r\nabcde\r\n",
    "bad-exptime": b"touch k abc\r\n",
    "bad-delta": b"incr k -1\r\n",
    "delete-usage": b"delete k 5\r\n",
    "incomplete-line": b"get ke",
    "incomplete-data": b"set k 0 0 10\r\nabc",
    "long-line": b"x" * 2100 + b"\r\n",
    "long-get-line": b"get " + b"k " * 1100 + b"\r\n",
    "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "pipeline": b"set a 0 0 1\r\n1\r\nget a\r\nmg a v\r\nincr a 1\r\ndelete a\r\nmn\r\n",
}

# --- a connection: control byte, chunk sizes, stream ------------------------


def plan(sizes=(), pause=False):
    """The connection target's prefix: see tests/common/fuzz_connection.rs."""
    return bytes([len(sizes) | (8 if pause else 0)]) + bytes(s - 1 for s in sizes)


TEXT_STREAM = b"".join(TEXT_LINES[k] for k in ("set", "get", "mg", "ms", "incr", "md", "mn"))
NATIVE_STREAM = b"".join(NATIVE_REQUESTS[k] for k in ("set", "get", "set-ttl", "delete", "noop"))
MEMCACHE_STREAM = b"".join(MEMCACHE_REQUESTS[k] for k in ("set", "getk", "incr", "append", "noop"))

CONNECTION = {
    "text-whole": plan() + TEXT_STREAM,
    "text-bytewise": plan([1]) + TEXT_STREAM,
    "text-split-paused": plan([3, 7, 2], pause=True) + TEXT_STREAM,
    "text-stats": plan([5]) + TEXT_LINES["stats"] + TEXT_LINES["stats-settings"],
    "text-refusals": plan([4, 9]) + TEXT_LINES["value-over-limit"] + TEXT_LINES["bad-data-chunk"]
    + TEXT_LINES["meta-duplicate-flag"] + TEXT_LINES["unknown-command"] + TEXT_LINES["version"],
    "text-quit": plan() + TEXT_LINES["get"] + TEXT_LINES["quit"] + TEXT_LINES["get"],
    "text-long-line": plan([200]) + TEXT_LINES["long-line"],
    "text-unsent-value": plan() + TEXT_LINES["value-over-limit-unsent"] + b"abc",
    "text-http": plan() + TEXT_LINES["http"],
    "text-shutdown-refused": plan() + TEXT_LINES["shutdown"] + TEXT_LINES["version"],
    "text-flush-memlimit": plan() + TEXT_LINES["flush-all"] + TEXT_LINES["cache-memlimit"],
    "native-whole": plan() + NATIVE_STREAM,
    "native-bytewise": plan([1]) + NATIVE_STREAM,
    "native-split-paused": plan([11, 13], pause=True) + NATIVE_STREAM,
    "native-refused": plan([2]) + NATIVE_REQUESTS["refused-then-valid"]
    + NATIVE_REQUESTS["unknown-opcode"] + NATIVE_REQUESTS["noop"],
    "native-skip-past-end": plan() + NATIVE_REQUESTS["skip-past-end"],
    "native-bad-version": plan() + NATIVE_REQUESTS["noop"] + NATIVE_REQUESTS["bad-version"],
    "native-stats": plan() + NATIVE_REQUESTS["stats"],
    "memcache-whole": plan() + MEMCACHE_STREAM,
    "memcache-bytewise": plan([1]) + MEMCACHE_STREAM,
    "memcache-split-paused": plan([23, 25, 3], pause=True) + MEMCACHE_STREAM,
    "memcache-pipeline": plan([17]) + MEMCACHE_REQUESTS["pipeline"],
    "memcache-refused": plan() + MEMCACHE_REQUESTS["refused-then-valid"]
    + MEMCACHE_REQUESTS["value-over-limit"] + MEMCACHE_REQUESTS["noop"],
    "memcache-malformed": plan() + MEMCACHE_REQUESTS["malformed-lengths"],
    "memcache-bad-magic-later": plan() + MEMCACHE_REQUESTS["noop"] + b"\x81junk",
    "memcache-stat": plan([64]) + MEMCACHE_REQUESTS["stat"] + MEMCACHE_REQUESTS["stat-group"],
    "memcache-quit": plan() + MEMCACHE_REQUESTS["get"] + MEMCACHE_REQUESTS["quit"],
    "empty": plan(),
}

TARGETS = {
    "native_request": NATIVE_REQUESTS,
    "native_response": NATIVE_RESPONSES,
    "memcache_request": MEMCACHE_REQUESTS,
    "memcache_response": MEMCACHE_RESPONSES,
    "text_request": TEXT_LINES,
    "connection": CONNECTION,
}


def main():
    total = 0
    for target, seeds in TARGETS.items():
        directory = os.path.join(ROOT, target)
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.startswith("seed-"):
                os.remove(os.path.join(directory, name))
        for name, data in seeds.items():
            with open(os.path.join(directory, "seed-" + name), "wb") as f:
                f.write(data)
            total += len(data)
        print(f"{target}: {len(seeds)} seeds")
    print(f"{total} bytes in all")


if __name__ == "__main__":
    sys.exit(main())
