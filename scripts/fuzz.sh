#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for a while each, under
# libFuzzer with AddressSanitizer, and exits non-zero if any finds a crash.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 300        # 300 s per target
#   TARGETS="text_request connection" scripts/fuzz.sh 120
#
# Needs the nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
#
# Each target starts from its committed seeds (fuzz/corpus/<target>/) and
# past failures (fuzz/regressions/<target>/); the inputs it finds go to
# fuzz/work/<target>/ (ignored by git), so the committed corpus stays small.
# A failing input is copied to fuzz/regressions/<target>/, where
# tests/fuzz_corpus.rs replays it on stable from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-60}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET]  (a whole number of seconds, default 60)" >&2
    exit 2
fi

if ! command -v rustup >/dev/null || ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi

ALL_TARGETS=$(cargo +nightly fuzz list)
TARGETS="${TARGETS:-$ALL_TARGETS}"

cargo +nightly fuzz build

failed=()
for target in $TARGETS; do
    if ! grep -qx "$target" <<<"$ALL_TARGETS"; then
        echo "no fuzz target named $target (have: $(echo $ALL_TARGETS))" >&2
        exit 2
    fi
    work="fuzz/work/$target"
    artifacts="fuzz/artifacts/$target/$(date +%Y%m%d-%H%M%S)/"
    regressions="fuzz/regressions/$target"
    mkdir -p "$work" "$artifacts" "fuzz/corpus/$target"
    corpora=("$work" "fuzz/corpus/$target")
    [ -d "$regressions" ] && corpora+=("$regressions")
    echo "=== $target: ${SECONDS_PER_TARGET}s"
    # The first corpus directory receives what the fuzzer finds.
    if cargo +nightly fuzz run "$target" "${corpora[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -artifact_prefix="$artifacts" \
        -print_final_stats=1; then
        rmdir "$artifacts" 2>/dev/null || true
        continue
    fi
    failed+=("$target")
    mkdir -p "$regressions"
    for f in "$artifacts"*; do
        [ -f "$f" ] || continue
        cp "$f" "$regressions/"
        echo "kept $regressions/$(basename "$f") (replay: cargo +nightly fuzz run $target $f)" >&2
    done
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "no crashes in: $(echo $TARGETS)"
