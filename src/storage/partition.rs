//! A partition: a hash table of items, each one allocation holding key and
//! value, with lazy expiry on access.
//!
//! Must not: read a clock, touch a socket, know a wire format, or allocate on
//! a GET.

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use std::hash::BuildHasher;

use crate::command::{Command, Op, Outcome};

/// One stored item. Key and value share one boxed slice so an item costs a
/// single allocation, and a same-size overwrite reuses it.
#[derive(Debug)]
struct Item {
    /// Key followed by value.
    data: Box<[u8]>,
    /// Bytes of `data` that are the key (keys are at most 64 KiB).
    key_len: u16,
    /// Client flags.
    flags: u32,
    /// Expiry in clock milliseconds; 0 never expires.
    expires_at: u64,
}

impl Item {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.data[..usize::from(self.key_len)]
    }

    #[inline]
    fn value(&self) -> &[u8] {
        &self.data[usize::from(self.key_len)..]
    }

    #[inline]
    fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now_ms
    }

    fn cost(&self) -> u64 {
        self.data.len() as u64 + ITEM_OVERHEAD
    }
}

/// Bytes an item costs beyond its key and value: the table slot (the
/// `Item`), hashbrown's control byte, and the allocator's minimum header
/// for the boxed key+value. An estimate until exact accounting lands with
/// the memory limit.
pub const ITEM_OVERHEAD: u64 = std::mem::size_of::<Item>() as u64 + 1 + 16;

/// What a partition counts about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionStats {
    /// Items held (expired ones not yet reclaimed included).
    pub items: u64,
    /// Bytes held: keys, values and [`ITEM_OVERHEAD`] per item.
    pub bytes: u64,
    /// Items stored since creation.
    pub total_items: u64,
    /// GETs that found an expired item (and reclaimed it).
    pub expired_on_access: u64,
}

/// One worker's share of the key space.
#[derive(Debug)]
pub struct Partition {
    table: HashTable<Item>,
    hasher: hashbrown::DefaultHashBuilder,
    stats: PartitionStats,
}

impl Default for Partition {
    fn default() -> Self {
        Self::new()
    }
}

impl Partition {
    /// An empty partition with a randomly seeded table hash.
    pub fn new() -> Self {
        Partition {
            table: HashTable::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            stats: PartitionStats::default(),
        }
    }

    /// The partition's counters.
    pub fn stats(&self) -> PartitionStats {
        self.stats
    }

    /// Executes one command at time `now_ms` (clock milliseconds). A hit
    /// borrows the stored value.
    pub fn execute(&mut self, cmd: &Command<'_>, now_ms: u64) -> Outcome<&[u8]> {
        match cmd.op {
            Op::Get => match self.get(cmd.key, now_ms) {
                Some((flags, value)) => Outcome::Hit { flags, value },
                None => Outcome::Miss,
            },
            Op::Set { flags, ttl } => {
                let expires_at = if ttl == 0 {
                    0
                } else {
                    now_ms.saturating_add(u64::from(ttl) * 1000)
                };
                self.set(cmd.key, cmd.value, flags, expires_at);
                Outcome::Stored
            }
            Op::Delete => {
                if self.delete(cmd.key, now_ms) {
                    Outcome::Deleted
                } else {
                    Outcome::NotFound
                }
            }
        }
    }

    /// The flags and value of a live item; an expired one is reclaimed.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<(u32, &[u8])> {
        let hash = self.hasher.hash_one(key);
        match self.table.find_entry(hash, |it| it.key() == key) {
            Ok(entry) if entry.get().is_expired(now_ms) => {
                let (item, _) = entry.remove();
                self.stats.items -= 1;
                self.stats.bytes -= item.cost();
                self.stats.expired_on_access += 1;
                None
            }
            Ok(entry) => {
                let item = entry.into_mut();
                Some((item.flags, item.value()))
            }
            Err(_) => None,
        }
    }

    /// Stores an item, replacing any previous one under the key.
    /// `expires_at` is in clock milliseconds, 0 for never.
    pub fn set(&mut self, key: &[u8], value: &[u8], flags: u32, expires_at: u64) {
        // Keys longer than u16 are refused by every codec; truncating here
        // would corrupt the table, so refuse loudly in debug builds.
        debug_assert!(key.len() <= usize::from(u16::MAX));
        let key_len = key.len().min(usize::from(u16::MAX));
        let key = &key[..key_len];
        let hash = self.hasher.hash_one(key);
        let hasher = &self.hasher;
        let total = key_len + value.len();
        match self
            .table
            .entry(hash, |it| it.key() == key, |it| hasher.hash_one(it.key()))
        {
            Entry::Occupied(mut entry) => {
                let item = entry.get_mut();
                self.stats.bytes -= item.cost();
                if item.data.len() == total {
                    item.data[key_len..].copy_from_slice(value);
                } else {
                    item.data = join(key, value);
                }
                item.flags = flags;
                item.expires_at = expires_at;
                self.stats.bytes += item.cost();
            }
            Entry::Vacant(entry) => {
                let item = Item {
                    data: join(key, value),
                    key_len: key_len as u16,
                    flags,
                    expires_at,
                };
                self.stats.bytes += item.cost();
                self.stats.items += 1;
                entry.insert(item);
            }
        }
        self.stats.total_items += 1;
    }

    /// Removes a key; true if a live item was there.
    pub fn delete(&mut self, key: &[u8], now_ms: u64) -> bool {
        let hash = self.hasher.hash_one(key);
        match self.table.find_entry(hash, |it| it.key() == key) {
            Ok(entry) => {
                let (item, _) = entry.remove();
                self.stats.items -= 1;
                self.stats.bytes -= item.cost();
                !item.is_expired(now_ms)
            }
            Err(_) => false,
        }
    }

    /// Number of items held, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the partition holds no item.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

fn join(key: &[u8], value: &[u8]) -> Box<[u8]> {
    let mut data = Vec::with_capacity(key.len() + value.len());
    data.extend_from_slice(key);
    data.extend_from_slice(value);
    data.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn get(p: &mut Partition, key: &[u8], now: u64) -> Option<(u32, Vec<u8>)> {
        p.get(key, now).map(|(f, v)| (f, v.to_vec()))
    }

    #[test]
    fn set_get_delete() {
        let mut p = Partition::new();
        assert_eq!(get(&mut p, b"k", 0), None);
        p.set(b"k", b"v1", 7, 0);
        assert_eq!(get(&mut p, b"k", 0), Some((7, b"v1".to_vec())));
        p.set(b"k", b"v2", 8, 0);
        assert_eq!(get(&mut p, b"k", 0), Some((8, b"v2".to_vec())));
        p.set(b"k", b"longer", 9, 0);
        assert_eq!(get(&mut p, b"k", 0), Some((9, b"longer".to_vec())));
        assert_eq!(p.len(), 1);
        assert!(p.delete(b"k", 0));
        assert!(!p.delete(b"k", 0));
        assert_eq!(p.stats().bytes, 0);
        assert_eq!(p.stats().items, 0);
    }

    #[test]
    fn ttl_expires_with_the_clock() {
        let mut p = Partition::new();
        let cmd = Command {
            op: Op::Set { flags: 0, ttl: 10 },
            key: b"k",
            value: b"v",
        };
        assert_eq!(p.execute(&cmd, 1_000), Outcome::Stored);
        assert!(p.get(b"k", 10_999).is_some());
        assert!(p.get(b"k", 11_000).is_none());
        assert_eq!(p.stats().expired_on_access, 1);
        assert_eq!(p.stats().items, 0);
        assert_eq!(p.stats().bytes, 0);
    }

    #[test]
    fn deleting_an_expired_item_reports_not_found() {
        let mut p = Partition::new();
        p.set(b"k", b"v", 0, 5);
        assert!(!p.delete(b"k", 5));
        assert!(p.is_empty());
    }

    #[test]
    fn set_without_ttl_clears_old_ttl() {
        let mut p = Partition::new();
        p.set(b"k", b"v", 0, 5);
        p.set(b"k", b"v", 0, 0);
        assert!(p.get(b"k", 1_000_000).is_some());
    }

    #[derive(Debug, Clone)]
    enum ModelOp {
        Set(u8, Vec<u8>, u32, u32),
        Get(u8),
        Delete(u8),
        Advance(u16),
    }

    fn model_op() -> impl Strategy<Value = ModelOp> {
        prop_oneof![
            (
                0u8..16,
                proptest::collection::vec(any::<u8>(), 0..40),
                any::<u32>(),
                0u32..5
            )
                .prop_map(|(k, v, f, t)| ModelOp::Set(k, v, f, t)),
            (0u8..16).prop_map(ModelOp::Get),
            (0u8..16).prop_map(ModelOp::Delete),
            (0u16..3000).prop_map(ModelOp::Advance),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_hashmap_model(ops in proptest::collection::vec(model_op(), 1..200)) {
            let mut p = Partition::new();
            let mut model: HashMap<Vec<u8>, (u32, Vec<u8>, u64)> = HashMap::new();
            let mut now = 0u64;
            let live = |m: &HashMap<Vec<u8>, (u32, Vec<u8>, u64)>, k: &[u8], now: u64| {
                m.get(k).filter(|(_, _, exp)| *exp == 0 || *exp > now).map(|(f, v, _)| (*f, v.clone()))
            };
            for op in ops {
                match op {
                    ModelOp::Set(k, v, f, ttl) => {
                        let key = vec![b'k', k];
                        let cmd = Command { op: Op::Set { flags: f, ttl }, key: &key, value: &v };
                        prop_assert_eq!(p.execute(&cmd, now), Outcome::Stored);
                        let exp = if ttl == 0 { 0 } else { now + u64::from(ttl) * 1000 };
                        model.insert(key, (f, v, exp));
                    }
                    ModelOp::Get(k) => {
                        let key = vec![b'k', k];
                        prop_assert_eq!(get(&mut p, &key, now), live(&model, &key, now));
                    }
                    ModelOp::Delete(k) => {
                        let key = vec![b'k', k];
                        let expected = live(&model, &key, now).is_some();
                        model.remove(&key);
                        prop_assert_eq!(p.delete(&key, now), expected);
                    }
                    ModelOp::Advance(ms) => now += u64::from(ms),
                }
                let expected_bytes: u64 = p.table.iter().map(Item::cost).sum();
                prop_assert_eq!(p.stats().bytes, expected_bytes);
                prop_assert_eq!(p.stats().items as usize, p.len());
            }
        }
    }
}
