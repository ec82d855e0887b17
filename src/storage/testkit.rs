//! Helpers the partition's tests and the meta commands' tests share.

use super::*;

/// Executes one command, copying the outcome out of the partition.
pub(super) fn run(
    p: &mut Partition,
    op: Op,
    key: &[u8],
    value: &[u8],
    now: u64,
) -> Outcome<Vec<u8>> {
    p.execute(&Command { op, key, value }, now)
        .map_value(<[u8]>::to_vec)
}

/// A store; a `cas` of 0 checks nothing, as in the binary protocol.
pub(super) fn store(mode: StoreMode, cas: u64) -> Op {
    Op::Store {
        mode,
        flags: 0,
        expiry: Expiry::Never,
        cas: (cas != 0).then_some(cas),
    }
}

pub(super) fn get(p: &mut Partition, key: &[u8], now: u64) -> Option<Vec<u8>> {
    p.get(key, now).map(|(_, v)| v.to_vec())
}

/// Keys held, oldest first, read without disturbing the policy.
pub(super) fn keys_oldest_first(p: &Partition) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    let mut at = p.tail;
    while at != NIL {
        let item = &p.items[at as usize];
        keys.push(item.key().to_vec());
        at = item.newer();
    }
    keys
}

/// Asserts every count the partition keeps against a recount.
pub(super) fn check_accounting(p: &Partition) {
    let data: u64 = p.items.iter().map(|(_, it)| malloc_size(it.len())).sum();
    assert_eq!(p.data_bytes, data);
    assert_eq!(p.table.len(), p.items.len());
    assert_eq!(keys_oldest_first(p).len(), p.items.len());
    assert!(p.bytes() <= p.budget, "{} > {}", p.bytes(), p.budget);
    let expiring = p
        .items
        .iter()
        .filter(|(_, it)| it.expires_at() != NEVER)
        .count();
    assert_eq!(p.expiring, expiring, "items with a deadline");
    let flushed = p
        .items
        .iter()
        .filter(|(_, it)| it.epoch() != p.epoch)
        .count();
    assert_eq!(p.flushed, flushed, "flushed items");
}
