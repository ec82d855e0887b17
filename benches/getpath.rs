//! The GET path under a cache simulator: a partition of 1,000,000 items
//! (16-byte keys, 64-byte values, about 150 MB with the structures, far
//! beyond any L2 and beyond the simulated last-level cache), then 200,000
//! GET hits and 200,000 GET misses in a seeded random order, each in its
//! own function so valgrind can count them alone. Wall time on a shared
//! machine is noise; instruction and cache-miss counts are not.
//!
//! Run (the numbers in docs/BENCHMARKS-HISTORY.md):
//!
//! ```text
//! cargo bench --bench getpath --no-run   # prints the executable
//! valgrind --tool=callgrind --cache-sim=yes \
//!     --D1=32768,8,64 --LL=8388608,16,64 --I1=32768,8,64 \
//!     --toggle-collect='*getpath*get_hits*' --callgrind-out-file=hits.out \
//!     target/release/deps/getpath-HASH --test
//! callgrind_annotate hits.out | head -30
//! ```
//!
//! and the same with `*get_misses*`. The explicit caches keep the figures
//! comparable between machines (this one reports a 260 MiB L3). Without
//! valgrind, `--test` runs the same checks in a fraction of a second.

use std::hint::black_box;

use cafe::command::{Command, Expiry, Op, Outcome, StoreMode};
use cafe::storage::Partition;

mod support;
use support::shuffled;

const ITEMS: usize = 1_000_000;
const LOOKUPS: usize = 200_000;
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 64;

fn key(prefix: &str, i: usize) -> [u8; KEY_LEN] {
    let text = format!("{prefix}{i:0width$}", width = KEY_LEN - prefix.len());
    text.as_bytes().try_into().expect("16-byte key")
}

#[inline(never)]
fn get_hits(p: &mut Partition, keys: &[[u8; KEY_LEN]], order: &[u32]) -> usize {
    let mut bytes = 0;
    for &i in order {
        let cmd = Command {
            op: Op::Get,
            key: &keys[i as usize],
            value: &[],
        };
        match black_box(p.execute(&cmd, 0)) {
            Outcome::Hit { value, .. } => {
                assert_eq!(value[..KEY_LEN], keys[i as usize]);
                bytes += value.len();
            }
            other => panic!("expected a hit, got {other:?}"),
        }
    }
    bytes
}

#[inline(never)]
fn get_misses(p: &mut Partition, absent: &[[u8; KEY_LEN]], order: &[u32]) -> usize {
    let mut misses = 0;
    for &i in order {
        let cmd = Command {
            op: Op::Get,
            key: &absent[i as usize],
            value: &[],
        };
        misses += usize::from(black_box(p.execute(&cmd, 0)) == Outcome::Miss);
    }
    misses
}

#[test]
fn getpath() {
    let keys: Vec<[u8; KEY_LEN]> = (0..ITEMS).map(|i| key("key:", i)).collect();
    let absent: Vec<[u8; KEY_LEN]> = (0..ITEMS).map(|i| key("nok:", i)).collect();
    let mut p = Partition::new();
    let mut value = [b'v'; VALUE_LEN];
    for k in &keys {
        value[..KEY_LEN].copy_from_slice(k);
        let cmd = Command {
            op: Op::Store {
                mode: StoreMode::Set,
                flags: 0,
                expiry: Expiry::Never,
                cas: None,
            },
            key: k,
            value: &value,
        };
        assert!(matches!(p.execute(&cmd, 0), Outcome::Stored { .. }));
    }
    let order = shuffled(ITEMS, 7);
    let order = &order[..LOOKUPS];
    assert_eq!(get_hits(&mut p, &keys, order), LOOKUPS * VALUE_LEN);
    assert_eq!(get_misses(&mut p, &absent, order), LOOKUPS);
    let stats = p.stats();
    println!(
        "{} items, {} bytes + {} hash_bytes: {:.1} bytes per item",
        stats.items,
        stats.bytes,
        stats.hash_bytes,
        (stats.bytes + stats.hash_bytes) as f64 / stats.items as f64
    );
}
