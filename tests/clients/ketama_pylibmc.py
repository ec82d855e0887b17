#!/usr/bin/env python3
"""libmemcached's own ketama placement, through pylibmc, for
tests/cluster_client.rs: write keys across a fleet so the test can see
where libmemcached put each one, or read back keys another client wrote.

The client is libmemcached's consistent ketama as memcached users deploy
it: `ketama_weighted` (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED: 160 points per
server from MD5, keys hashed with MD5), over the binary protocol. (Plain
`ketama` in libmemcached is another ring: 100 points per server, each
server label hashed with the key hash; twemproxy and other ketama clients
use the weighted one.)

    python3 ketama_pylibmc.py --servers 127.0.0.1:7001,127.0.0.1:7002 \
        --prefix p --count 1000 --write
    python3 ketama_pylibmc.py --servers ... --prefix q --count 1000 --read

Writes `{prefix}{i}` = `pylibmc:{i}`; reads expect `cafe:{i}`.
Exit status: 0 done, 1 a check failed, 3 pylibmc is not installed.
"""

import argparse
import sys

MISSING_MODULE = 3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--servers", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--count", type=int, required=True)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--read", action="store_true")
    args = p.parse_args()
    try:
        import pylibmc
    except ImportError as e:
        print(f"pylibmc is not installed ({e})", file=sys.stderr)
        return MISSING_MODULE

    client = pylibmc.Client(
        args.servers.split(","),
        binary=True,
        behaviors={"ketama_weighted": True, "connect_timeout": 5000},
    )
    print(f"libmemcached {pylibmc.libmemcached_version}, "
          f"distribution {client.behaviors['distribution']}, "
          f"hash {client.behaviors['hash']}")
    keys = [f"{args.prefix}{i}" for i in range(args.count)]
    if args.write:
        failed = client.set_multi({k: f"pylibmc:{i}".encode() for i, k in enumerate(keys)})
        if failed:
            print(f"{len(failed)} sets failed, e.g. {failed[:3]}", file=sys.stderr)
            return 1
        print(f"wrote {len(keys)}")
        return 0
    got = client.get_multi(keys)
    wrong = [k for i, k in enumerate(keys) if got.get(k) != f"cafe:{i}".encode()]
    print(f"hits {len(keys) - len(wrong)} of {len(keys)}")
    if wrong:
        print(f"{len(wrong)} keys not found where libmemcached looks, e.g. {wrong[:3]}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
