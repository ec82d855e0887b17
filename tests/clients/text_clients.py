#!/usr/bin/env python3
"""Real third-party memcached clients against one server: pymemcache (the
text protocol) and meta-memcache (the meta protocol: mg, ms, md, ma).

Run by tests/python_clients.rs against cafe; point it at any server to check
that the expectations here are memcached's own:

    memcached -l 127.0.0.1 -p 22199 -t 1 -U 0 &
    python3 tests/clients/text_clients.py --server 127.0.0.1:22199

Exit status: 0 when every check passed, 1 when one failed (with a message),
3 when a client module is not installed (the message names it).
"""

import argparse
import os
import sys
import time

MISSING_MODULE = 3

# Enough keys that, spread by cafe's hash, every worker of a 4-worker server
# owns many of them.
KEYS = 200


def check(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {shown(got)}, want {shown(want)}")


def shown(value):
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + "..."


def text_client_checks(host, port, prefix):
    from pymemcache.client.base import Client

    def client(noreply):
        return Client(
            (host, port),
            connect_timeout=10,
            timeout=10,
            no_delay=True,
            default_noreply=noreply,
        )

    c = client(False)
    keys = [f"{prefix}-pm-{i}" for i in range(KEYS)]
    values = {k: f"value of {k}".encode() for k in keys}

    # Pipelined multi-key commands: set_many sends every set in one write,
    # get_many one get of every key.
    check("set_many failures", c.set_many(values), [])
    check("get_many", c.get_many(keys), values)
    missing = [f"{prefix}-pm-missing-{i}" for i in range(20)]
    check("get_many of misses", c.get_many(missing), {})
    got = c.get_many(keys[:50] + missing)
    check("get_many hits among misses", got, {k: values[k] for k in keys[:50]})

    # noreply: the same commands, no replies; the next read sees them.
    quiet = client(True)
    renewed = {k: v + b"!" for k, v in values.items()}
    check("set_many noreply", quiet.set_many(renewed), [])
    check("delete_many noreply", quiet.delete_many(keys[:10]), True)
    # A reply on the same connection: every write before it was applied.
    quiet.version()
    check("get_many after noreply", c.get_many(keys), {k: renewed[k] for k in keys[10:]})
    quiet.close()

    # Single-key commands.
    k = keys[20]
    check("add existing", c.add(k, b"x", noreply=False), False)
    check("add new", c.add(keys[0], b"added", noreply=False), True)
    check("get added", c.get(keys[0]), b"added")
    check("replace existing", c.replace(k, b"mid", noreply=False), True)
    check("replace missing", c.replace(missing[0], b"x", noreply=False), False)
    check("append", c.append(k, b"-end", noreply=False), True)
    check("prepend", c.prepend(k, b"start-", noreply=False), True)
    check("get after append/prepend", c.get(k), b"start-mid-end")
    check("touch", c.touch(k, 100, noreply=False), True)
    check("touch missing", c.touch(missing[0], 100, noreply=False), False)
    check("delete", c.delete(k, noreply=False), True)
    check("delete again", c.delete(k, noreply=False), False)
    check("get deleted", c.get(k), None)

    # gets / cas.
    k = keys[30]
    value, unique = c.gets(k)
    check("gets value", value, renewed[k])
    check("cas with the current unique", c.cas(k, b"swapped", unique, noreply=False), True)
    check("cas with a stale unique", c.cas(k, b"stale", unique, noreply=False), False)
    check("cas of a missing key", c.cas(missing[1], b"x", unique, noreply=False), None)
    check("value after cas", c.get(k), b"swapped")
    many = c.gets_many(keys[40:60])
    check("gets_many keys", sorted(many), sorted(keys[40:60]))
    check("gets_many uniques", len({u for _, u in many.values()}), 20)

    # incr / decr.
    counters = keys[100:140]
    check("set counters", c.set_many({n: b"10" for n in counters}), [])
    for n in counters:
        check("incr", c.incr(n, 5, noreply=False), 15)
        check("decr", c.decr(n, 20, noreply=False), 0)
        check("incr from 0", c.incr(n, 7, noreply=False), 7)
    check("incr missing", c.incr(missing[2], 1, noreply=False), None)
    check("incr noreply", c.incr(counters[0], 1, noreply=True), None)
    # memcached may keep a counter space-padded after it shrank ("8 ").
    check("counter after incr noreply", int(c.get(counters[0])), 8)

    # Server-wide commands.
    version = c.version().decode()
    check("version major >= 1", int(version.split(".")[0]) >= 1, True)
    stats = c.stats()
    for name in [b"curr_items", b"cmd_get", b"get_hits", b"pid", b"uptime"]:
        check(f"stats has {name!r}", name in stats, True)
    check("stats curr_items", stats[b"curr_items"] >= len(keys) - 11, True)
    c.close()


def meta_client_checks(host, port, prefix):
    from meta_memcache import (
        CacheClient,
        Key,
        LeasePolicy,
        ServerAddress,
        StalePolicy,
        connection_pool_factory_builder,
    )
    from meta_memcache.protocol import Miss, RequestFlags, SetMode, Value

    pool = connection_pool_factory_builder(connection_timeout=10, recv_timeout=10)
    c = CacheClient.cache_client_from_servers(
        servers=[ServerAddress(host=host, port=port)],
        connection_pool_factory_fn=pool,
    )
    keys = [f"{prefix}-mm-{i}" for i in range(KEYS)]

    # ms / mg, and a pipelined multi-get (one mg per key in one write).
    for i, k in enumerate(keys):
        check(f"set {k}", c.set(k, f"value {i}", ttl=0), True)
    got = c.multi_get(keys)
    check("multi_get", got, {Key(k): f"value {i}" for i, k in enumerate(keys)})
    check("get", c.get(keys[3]), "value 3")
    check("get missing", c.get(f"{prefix}-mm-missing"), None)
    check("multi_get of a miss", c.multi_get([f"{prefix}-mm-missing"]), {Key(f"{prefix}-mm-missing"): None})
    # Non-str values go through its serializer and its client flags.
    check("set int", c.set(keys[4], 12345, ttl=0), True)
    check("get int", c.get(keys[4]), 12345)
    check("set bytes", c.set(keys[5], b"\x00\r\nraw", ttl=0), True)
    check("get bytes", c.get(keys[5]), b"\x00\r\nraw")
    check("set noreply", c.set(keys[6], "quiet", ttl=0, no_reply=True), True)
    check("get after noreply", c.get(keys[6]), "quiet")

    # Modes.
    check("add existing", c.set(keys[7], "x", ttl=0, set_mode=SetMode.ADD), False)
    check("add new", c.set(f"{prefix}-mm-new", "n", ttl=0, set_mode=SetMode.ADD), True)
    check("replace missing", c.set(f"{prefix}-mm-none", "n", ttl=0, set_mode=SetMode.REPLACE), False)

    # CAS: get_cas, set with cas_token, a conflict.
    value, token = c.get_cas(keys[8])
    check("get_cas value", value, "value 8")
    new_token = c.set_cas(keys[8], "swapped", ttl=0, cas_token=token)
    check("set_cas returns a new token", new_token is not None and new_token != token, True)
    check("set with a stale token", c.set(keys[8], "stale", ttl=0, cas_token=token), False)
    check("value after cas", c.get(keys[8]), "swapped")

    # Delete, touch.
    check("delete", c.delete(keys[9]), True)
    check("delete again", c.delete(keys[9]), False)
    check("invalidate missing", c.invalidate(keys[9]), True)
    check("touch", c.touch(keys[10], ttl=100), True)
    check("touch missing", c.touch(keys[9], ttl=100), False)

    # ma: counters with an initial value.
    n = f"{prefix}-mm-counter"
    check("delta_initialize_and_get", c.delta_initialize_and_get(n, 1, 10, 60), 10)
    check("delta_and_get", c.delta_and_get(n, 5), 15)
    check("delta_and_get down", c.delta_and_get(n, -20), 0)
    check("delta", c.delta(n, 3), True)
    check("delta missing", c.delta(f"{prefix}-mm-nocounter", 1), False)
    check("delta_and_get after", c.delta_and_get(n, 0), 3)

    # Leases (mg N): the first miss wins and gets None; after the winner's
    # store, the value.
    lease_key = f"{prefix}-mm-lease"
    policy = LeasePolicy(ttl=30, miss_retries=1, miss_retry_wait=0.01)
    check("get_or_lease winner", c.get_or_lease(lease_key, policy), None)
    check("refill", c.set(lease_key, "leased", ttl=60), True)
    check("get_or_lease hit", c.get_or_lease(lease_key, policy), "leased")

    # Stale-while-revalidate (md I): a stale read is served as a miss to
    # the winner.
    stale_key = keys[11]
    check("mark stale", c.delete(stale_key, stale_policy=StalePolicy(mark_stale_on_deletion_ttl=30)), True)
    check("stale read wins the recache", c.get(stale_key), None)

    # Raw meta commands with flags.
    flags = RequestFlags(return_value=True, return_ttl=True, return_client_flag=True, return_key=True, opaque=b"42")
    r = c.meta_get(Key(keys[12]), flags=flags)
    check("meta_get is a Value", isinstance(r, Value), True)
    check("meta_get opaque", r.flags.opaque, b"42")
    check("meta_get ttl", r.flags.ttl, -1)
    r = c.meta_get(Key(f"{prefix}-mm-missing"), flags=flags)
    check("meta_get miss", isinstance(r, Miss), True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="HOST:PORT of the server")
    # Keys of a new run never meet an earlier run's.
    unique = f"pyclients-{os.getpid()}-{time.time_ns()}"
    parser.add_argument("--prefix", default=unique, help="prefix of every key")
    args = parser.parse_args()
    host, _, port = args.server.rpartition(":")
    try:
        import pymemcache  # noqa: F401
        import meta_memcache  # noqa: F401
    except ImportError as e:
        print(f"MISSING python module {e.name}", file=sys.stderr)
        return MISSING_MODULE
    for name, checks in [
        ("pymemcache (text protocol)", text_client_checks),
        ("meta-memcache (meta protocol)", meta_client_checks),
    ]:
        try:
            checks(host, int(port), args.prefix)
        except Exception as e:  # report which client failed, and how
            print(f"FAILED {name}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        print(f"passed {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
