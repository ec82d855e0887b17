#!/usr/bin/env bash
# Runs the storage unit tests under valgrind's memcheck. The partition's
# items hold their bytes through a raw pointer (src/storage/item.rs);
# memcheck checks every access through it and that every allocation is
# given back. Exits non-zero on a memory error, a leak or a failed test.
#
#   scripts/sanitize-storage.sh            # every storage test
#   scripts/sanitize-storage.sh meta       # only those matching "meta"
#
# PROPTEST_CASES (default 32 here, 256 natively) bounds the property tests,
# which memcheck slows some thirtyfold.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
    echo "valgrind not found (Debian: apt-get install valgrind)" >&2
    exit 2
fi

# Build the library's test binary and learn its path from cargo.
bin=$(cargo test --lib --no-run 2>&1 |
    sed -n 's/^ *Executable unittests src\/lib\.rs (\(.*\))$/\1/p' | tail -n 1)
if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "could not find the library's test binary" >&2
    exit 2
fi

filter=${1:-storage}
export PROPTEST_CASES=${PROPTEST_CASES:-32}
# The 4 GiB test maps a lazily zeroed 4 GiB value that memcheck would have
# to shadow byte by byte; it touches no item memory.
exec valgrind --quiet --error-exitcode=1 \
    --leak-check=full --show-possibly-lost=no \
    --errors-for-leak-kinds=definite,indirect \
    "$bin" "$filter" --skip a_value_over_4_gib --test-threads=1
