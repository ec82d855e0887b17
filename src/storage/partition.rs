//! A partition: a hash table of items, each one allocation holding key and
//! value, with memcached's store semantics (conditional stores, CAS,
//! counters, touch) and lazy expiry and flush.
//!
//! Must not: read a clock, touch a socket, know a wire format, or allocate on
//! a GET.
//!
//! CAS values are unique across the whole server: partition `id` of `n`
//! hands out `id + 1`, `id + 1 + n`, `id + 1 + 2n`, … . They also order the
//! stores within a partition, which makes FLUSH O(1): it records the last
//! CAS handed out, and every item at or below it is dead from then on (and
//! reclaimed when touched), while items stored later live.

use hashbrown::HashTable;
use hashbrown::hash_table::{Entry, OccupiedEntry};
use std::hash::BuildHasher;

use crate::command::{Command, Expiry, Op, Outcome, StoreMode};

/// One stored item. Key and value share one boxed slice so an item costs a
/// single allocation, and a same-size overwrite reuses it.
#[derive(Debug)]
struct Item {
    /// Key followed by value.
    data: Box<[u8]>,
    /// Client flags.
    flags: u32,
    /// Bytes of `data` that are the key (keys are at most 64 KiB).
    key_len: u16,
    /// Expiry in clock milliseconds; `NEVER` never expires.
    expires_at: u64,
    /// Unique per store; see the module docs.
    cas: u64,
}

const NEVER: u64 = u64::MAX;

impl Item {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.data[..usize::from(self.key_len)]
    }

    #[inline]
    fn value(&self) -> &[u8] {
        &self.data[usize::from(self.key_len)..]
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
    /// Items held (dead ones not yet reclaimed included).
    pub items: u64,
    /// Bytes held: keys, values and [`ITEM_OVERHEAD`] per item.
    pub bytes: u64,
    /// Items stored since creation.
    pub total_items: u64,
    /// GETs (and GATs) that found only an expired item.
    pub get_expired: u64,
    /// GETs (and GATs) that found only a flushed item.
    pub get_flushed: u64,
}

/// One worker's share of the key space.
#[derive(Debug)]
pub struct Partition {
    table: HashTable<Item>,
    hasher: hashbrown::DefaultHashBuilder,
    stats: PartitionStats,
    next_cas: u64,
    cas_stride: u64,
    /// Items whose CAS is at or below this were flushed.
    flushed_through: u64,
    /// A delayed FLUSH: at this clock millisecond, everything stored so far
    /// dies.
    flush_at: Option<u64>,
    max_value_len: usize,
}

impl Default for Partition {
    fn default() -> Self {
        Self::new()
    }
}

fn deadline(expiry: Expiry, now_ms: u64) -> u64 {
    match expiry {
        Expiry::Never => NEVER,
        // Saturating below NEVER keeps a huge TTL from meaning "never".
        Expiry::After(secs) => now_ms.saturating_add(u64::from(secs) * 1000).min(NEVER - 1),
        Expiry::Immediately => now_ms,
    }
}

fn join(parts: &[&[u8]]) -> Box<[u8]> {
    let mut data = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        data.extend_from_slice(p);
    }
    data.into_boxed_slice()
}

/// A counter's value: decimal digits, optionally surrounded by ASCII
/// whitespace (memcached parses with strtoull and accepts the same).
fn parse_counter(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl Partition {
    /// A lone partition (CAS 1, 2, 3, …) with no item-size limit.
    pub fn new() -> Self {
        Self::for_worker(0, 1, usize::MAX)
    }

    /// Partition `id` of `workers`, refusing appends that would grow an
    /// item past `max_value_len`.
    pub fn for_worker(id: usize, workers: usize, max_value_len: usize) -> Self {
        Partition {
            table: HashTable::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            stats: PartitionStats::default(),
            next_cas: id as u64 + 1,
            cas_stride: workers.max(1) as u64,
            flushed_through: 0,
            flush_at: None,
            max_value_len,
        }
    }

    /// The partition's counters.
    pub fn stats(&self) -> PartitionStats {
        self.stats
    }

    /// Zeroes the counters (not the gauges: items and bytes stay).
    pub fn reset_counters(&mut self) {
        self.stats = PartitionStats {
            items: self.stats.items,
            bytes: self.stats.bytes,
            ..PartitionStats::default()
        };
    }

    /// Number of items held, dead ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the partition holds no item.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn take_cas(&mut self) -> u64 {
        let cas = self.next_cas;
        self.next_cas += self.cas_stride;
        cas
    }

    /// Invalidates every item stored so far, now (`delay_secs` = 0) or
    /// that many seconds from `now_ms`; a later FLUSH replaces a pending one.
    pub fn flush(&mut self, now_ms: u64, delay_secs: u32) {
        if delay_secs == 0 {
            self.flushed_through = self.next_cas - 1;
            self.flush_at = None;
        } else {
            self.flush_at = Some(deadline(Expiry::After(delay_secs), now_ms));
        }
    }

    fn apply_due_flush(&mut self, now_ms: u64) {
        if let Some(at) = self.flush_at
            && now_ms >= at
        {
            self.flush(now_ms, 0);
        }
    }

    /// Executes one command at time `now_ms` (clock milliseconds). A hit
    /// borrows the stored value.
    pub fn execute(&mut self, cmd: &Command<'_>, now_ms: u64) -> Outcome<&[u8]> {
        self.apply_due_flush(now_ms);
        let key = cmd.key;
        match cmd.op {
            Op::Get => self.get(key, now_ms, None),
            Op::GetAndTouch { expiry } => self.get(key, now_ms, Some(expiry)),
            Op::Touch { expiry } => match self.find_live(key, now_ms) {
                Some(entry) => {
                    let item = entry.into_mut();
                    item.expires_at = deadline(expiry, now_ms);
                    Outcome::Touched {
                        flags: item.flags,
                        cas: item.cas,
                    }
                }
                None => Outcome::NotFound,
            },
            Op::Store {
                mode,
                flags,
                expiry,
                cas,
            } => self.store(mode, key, cmd.value, flags, expiry, cas, now_ms),
            Op::Delete { cas } => match self.find_live(key, now_ms) {
                Some(entry) if cas != 0 && entry.get().cas != cas => Outcome::Exists,
                Some(entry) => {
                    let (item, _) = entry.remove();
                    self.stats.items -= 1;
                    self.stats.bytes -= item.cost();
                    Outcome::Deleted
                }
                None => Outcome::NotFound,
            },
            Op::Arith {
                incr,
                delta,
                initial,
                create,
                expiry,
                cas,
            } => self.arith(key, incr, delta, initial, create, expiry, cas, now_ms),
        }
    }

    /// The live item under `key`; a dead one (expired or flushed) is
    /// reclaimed on the way and reported as absent.
    fn find_live(&mut self, key: &[u8], now_ms: u64) -> Option<OccupiedEntry<'_, Item>> {
        self.lookup(key, now_ms, false)
    }

    /// As [`Partition::find_live`]; `read` counts a dead item found in the
    /// read statistics (`get_expired`, `get_flushed`).
    fn lookup(&mut self, key: &[u8], now_ms: u64, read: bool) -> Option<OccupiedEntry<'_, Item>> {
        let hash = self.hasher.hash_one(key);
        let entry = self.table.find_entry(hash, |it| it.key() == key).ok()?;
        let item = entry.get();
        let flushed = item.cas <= self.flushed_through;
        if !flushed && item.expires_at > now_ms {
            return Some(entry);
        }
        let (item, _) = entry.remove();
        self.stats.items -= 1;
        self.stats.bytes -= item.cost();
        match (read, flushed) {
            (true, true) => self.stats.get_flushed += 1,
            (true, false) => self.stats.get_expired += 1,
            (false, _) => {}
        }
        None
    }

    fn get(&mut self, key: &[u8], now_ms: u64, touch: Option<Expiry>) -> Outcome<&[u8]> {
        let Some(entry) = self.lookup(key, now_ms, true) else {
            return Outcome::Miss;
        };
        let item = entry.into_mut();
        if let Some(expiry) = touch {
            item.expires_at = deadline(expiry, now_ms);
        }
        Outcome::Hit {
            flags: item.flags,
            cas: item.cas,
            value: item.value(),
        }
    }

    /// Stores a fresh item (the key holds no live one).
    fn insert(&mut self, key: &[u8], value: &[u8], flags: u32, expires_at: u64) -> u64 {
        // Keys longer than u16 are refused by every codec; truncating here
        // would corrupt the table.
        debug_assert!(key.len() <= usize::from(u16::MAX));
        let key = &key[..key.len().min(usize::from(u16::MAX))];
        let cas = self.take_cas();
        let item = Item {
            data: join(&[key, value]),
            flags,
            key_len: key.len() as u16,
            expires_at,
            cas,
        };
        self.stats.bytes += item.cost();
        self.stats.items += 1;
        self.stats.total_items += 1;
        let hash = self.hasher.hash_one(key);
        let hasher = &self.hasher;
        match self
            .table
            .entry(hash, |it| it.key() == key, |it| hasher.hash_one(it.key()))
        {
            Entry::Occupied(mut entry) => {
                // Only reachable if a caller skipped find_live; keep the
                // accounting right regardless.
                self.stats.items -= 1;
                self.stats.bytes -= entry.get().cost();
                *entry.get_mut() = item;
            }
            Entry::Vacant(entry) => {
                entry.insert(item);
            }
        }
        cas
    }

    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        mode: StoreMode,
        key: &[u8],
        value: &[u8],
        flags: u32,
        expiry: Expiry,
        cas: u64,
        now_ms: u64,
    ) -> Outcome<&[u8]> {
        let max_value_len = self.max_value_len;
        let new_cas = self.next_cas;
        let Some(mut entry) = self.find_live(key, now_ms) else {
            // memcached: a store with a CAS needs an item to compare with.
            return match mode {
                _ if cas != 0 && !matches!(mode, StoreMode::Append | StoreMode::Prepend) => {
                    Outcome::NotFound
                }
                StoreMode::Set | StoreMode::Add => {
                    let cas = self.insert(key, value, flags, deadline(expiry, now_ms));
                    Outcome::Stored { cas }
                }
                StoreMode::Replace | StoreMode::Append | StoreMode::Prepend => Outcome::NotStored,
            };
        };
        let item = entry.get_mut();
        if cas != 0 && item.cas != cas {
            return Outcome::Exists;
        }
        let before = item.cost();
        match mode {
            // memcached turns an ADD with a CAS into a compare-and-swap.
            StoreMode::Add if cas == 0 => return Outcome::NotStored,
            StoreMode::Set | StoreMode::Add | StoreMode::Replace => {
                let key_len = usize::from(item.key_len);
                if item.data.len() == key_len + value.len() {
                    item.data[key_len..].copy_from_slice(value);
                } else {
                    item.data = join(&[item.key(), value]);
                }
                item.flags = flags;
                item.expires_at = deadline(expiry, now_ms);
            }
            StoreMode::Append | StoreMode::Prepend => {
                if item.value().len() + value.len() > max_value_len {
                    return Outcome::TooLarge;
                }
                item.data = if mode == StoreMode::Append {
                    join(&[item.key(), item.value(), value])
                } else {
                    join(&[item.key(), value, item.value()])
                };
            }
        }
        item.cas = new_cas;
        let after = item.cost();
        self.stats.bytes = self.stats.bytes - before + after;
        self.stats.total_items += 1;
        self.take_cas();
        Outcome::Stored { cas: new_cas }
    }

    #[allow(clippy::too_many_arguments)]
    fn arith(
        &mut self,
        key: &[u8],
        incr: bool,
        delta: u64,
        initial: u64,
        create: bool,
        expiry: Expiry,
        cas: u64,
        now_ms: u64,
    ) -> Outcome<&[u8]> {
        let new_cas = self.next_cas;
        let Some(mut entry) = self.find_live(key, now_ms) else {
            if !create {
                return Outcome::NotFound;
            }
            let digits = initial.to_string();
            let cas = self.insert(key, digits.as_bytes(), 0, deadline(expiry, now_ms));
            return Outcome::Counter {
                value: initial,
                cas,
            };
        };
        let item = entry.get_mut();
        if cas != 0 && item.cas != cas {
            return Outcome::Exists;
        }
        let Some(current) = parse_counter(item.value()) else {
            return Outcome::NonNumeric;
        };
        let value = if incr {
            current.wrapping_add(delta)
        } else {
            current.saturating_sub(delta)
        };
        let before = item.cost();
        // A u64 is at most 20 digits: format on the stack, no allocation
        // unless the length changes.
        let mut digits = [0u8; 20];
        let text = {
            use std::io::Write as _;
            let mut cursor = &mut digits[..];
            let _ = write!(cursor, "{value}");
            let len = 20 - cursor.len();
            &digits[..len]
        };
        let key_len = usize::from(item.key_len);
        if item.data.len() == key_len + text.len() {
            item.data[key_len..].copy_from_slice(text);
        } else {
            item.data = join(&[item.key(), text]);
        }
        item.cas = new_cas;
        let after = item.cost();
        self.stats.bytes = self.stats.bytes - before + after;
        self.take_cas();
        Outcome::Counter {
            value,
            cas: new_cas,
        }
    }

    /// Stores an item unconditionally (a SET without CAS); `expires_at` in
    /// clock milliseconds, `None` for never. For tests and tools.
    pub fn set(&mut self, key: &[u8], value: &[u8], flags: u32, ttl_secs: u32, now_ms: u64) -> u64 {
        let expiry = if ttl_secs == 0 {
            Expiry::Never
        } else {
            Expiry::After(ttl_secs)
        };
        let cmd = Command {
            op: Op::Store {
                mode: StoreMode::Set,
                flags,
                expiry,
                cas: 0,
            },
            key,
            value,
        };
        match self.execute(&cmd, now_ms) {
            Outcome::Stored { cas } => cas,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn run(p: &mut Partition, op: Op, key: &[u8], value: &[u8], now: u64) -> Outcome<Vec<u8>> {
        p.execute(&Command { op, key, value }, now)
            .map_value(<[u8]>::to_vec)
    }

    fn store(mode: StoreMode, cas: u64) -> Op {
        Op::Store {
            mode,
            flags: 0,
            expiry: Expiry::Never,
            cas,
        }
    }

    fn get(p: &mut Partition, key: &[u8], now: u64) -> Option<Vec<u8>> {
        match run(p, Op::Get, key, b"", now) {
            Outcome::Hit { value, .. } => Some(value),
            _ => None,
        }
    }

    #[test]
    fn set_get_delete_and_accounting() {
        let mut p = Partition::new();
        assert_eq!(get(&mut p, b"k", 0), None);
        p.set(b"k", b"v1", 7, 0, 0);
        assert_eq!(get(&mut p, b"k", 0), Some(b"v1".to_vec()));
        p.set(b"k", b"longer", 9, 0, 0);
        assert_eq!(get(&mut p, b"k", 0), Some(b"longer".to_vec()));
        assert_eq!(p.len(), 1);
        assert_eq!(
            run(&mut p, Op::Delete { cas: 0 }, b"k", b"", 0),
            Outcome::Deleted
        );
        assert_eq!(
            run(&mut p, Op::Delete { cas: 0 }, b"k", b"", 0),
            Outcome::NotFound
        );
        assert_eq!(p.stats().bytes, 0);
        assert_eq!(p.stats().items, 0);
    }

    #[test]
    fn cas_values_are_unique_across_workers_and_change_on_every_store() {
        let mut a = Partition::for_worker(0, 2, 1024);
        let mut b = Partition::for_worker(1, 2, 1024);
        let cas: Vec<u64> = (0..4)
            .flat_map(|i| {
                let k = [i];
                [a.set(&k, b"v", 0, 0, 0), b.set(&k, b"v", 0, 0, 0)]
            })
            .collect();
        let mut sorted = cas.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), cas.len(), "{cas:?}");
        assert!(cas.iter().all(|&c| c != 0));
    }

    #[test]
    fn conditional_stores() {
        let mut p = Partition::new();
        assert_eq!(
            run(&mut p, store(StoreMode::Replace, 0), b"k", b"x", 0),
            Outcome::NotStored
        );
        let Outcome::Stored { cas } = run(&mut p, store(StoreMode::Add, 0), b"k", b"a", 0) else {
            panic!("add of a new key stores");
        };
        assert_eq!(
            run(&mut p, store(StoreMode::Add, 0), b"k", b"b", 0),
            Outcome::NotStored
        );
        assert_eq!(
            run(&mut p, store(StoreMode::Set, cas + 100), b"k", b"c", 0),
            Outcome::Exists
        );
        assert!(matches!(
            run(&mut p, store(StoreMode::Set, cas), b"k", b"c", 0),
            Outcome::Stored { .. }
        ));
        assert_eq!(
            run(&mut p, store(StoreMode::Set, 1), b"missing", b"c", 0),
            Outcome::NotFound
        );
        assert!(matches!(
            run(&mut p, store(StoreMode::Append, 0), b"k", b"d", 0),
            Outcome::Stored { .. }
        ));
        assert!(matches!(
            run(&mut p, store(StoreMode::Prepend, 0), b"k", b"0", 0),
            Outcome::Stored { .. }
        ));
        assert_eq!(get(&mut p, b"k", 0), Some(b"0cd".to_vec()));
        assert_eq!(
            run(&mut p, store(StoreMode::Append, 0), b"missing", b"d", 0),
            Outcome::NotStored
        );
    }

    #[test]
    fn append_refuses_to_grow_past_the_limit() {
        let mut p = Partition::for_worker(0, 1, 4);
        p.set(b"k", b"abc", 0, 0, 0);
        assert_eq!(
            run(&mut p, store(StoreMode::Append, 0), b"k", b"de", 0),
            Outcome::TooLarge
        );
        assert_eq!(get(&mut p, b"k", 0), Some(b"abc".to_vec()));
    }

    #[test]
    fn counters() {
        let mut p = Partition::new();
        let arith = |incr, delta, create| Op::Arith {
            incr,
            delta,
            initial: 10,
            create,
            expiry: Expiry::Never,
            cas: 0,
        };
        assert_eq!(
            run(&mut p, arith(true, 1, false), b"n", b"", 0),
            Outcome::NotFound
        );
        assert!(matches!(
            run(&mut p, arith(true, 1, true), b"n", b"", 0),
            Outcome::Counter { value: 10, .. }
        ));
        assert!(matches!(
            run(&mut p, arith(true, u64::MAX, true), b"n", b"", 0),
            Outcome::Counter { value: 9, .. }
        ));
        assert!(matches!(
            run(&mut p, arith(false, 100, true), b"n", b"", 0),
            Outcome::Counter { value: 0, .. }
        ));
        assert_eq!(get(&mut p, b"n", 0), Some(b"0".to_vec()));
        p.set(b"s", b"abc", 0, 0, 0);
        assert_eq!(
            run(&mut p, arith(true, 1, true), b"s", b"", 0),
            Outcome::NonNumeric
        );
        p.set(b"big", b"18446744073709551616", 0, 0, 0);
        assert_eq!(
            run(&mut p, arith(true, 1, true), b"big", b"", 0),
            Outcome::NonNumeric
        );
    }

    #[test]
    fn ttl_touch_and_expiry() {
        let mut p = Partition::new();
        p.set(b"k", b"v", 3, 10, 1_000);
        assert!(get(&mut p, b"k", 10_999).is_some());
        assert!(get(&mut p, b"k", 11_000).is_none());
        assert_eq!(p.stats().get_expired, 1);
        assert_eq!(p.stats().items, 0);
        p.set(b"k", b"v", 3, 10, 0);
        assert!(matches!(
            run(
                &mut p,
                Op::Touch {
                    expiry: Expiry::After(100)
                },
                b"k",
                b"",
                5_000
            ),
            Outcome::Touched { flags: 3, .. }
        ));
        assert!(get(&mut p, b"k", 50_000).is_some());
        assert!(matches!(
            run(
                &mut p,
                Op::GetAndTouch {
                    expiry: Expiry::Immediately
                },
                b"k",
                b"",
                60_000
            ),
            Outcome::Hit { .. }
        ));
        assert!(get(&mut p, b"k", 60_000).is_none());
        assert!(matches!(
            run(&mut p, store(StoreMode::Set, 0), b"k", b"v", 0),
            Outcome::Stored { .. }
        ));
        let op = Op::Store {
            mode: StoreMode::Set,
            flags: 0,
            expiry: Expiry::Immediately,
            cas: 0,
        };
        assert!(matches!(
            run(&mut p, op, b"k", b"new", 0),
            Outcome::Stored { .. }
        ));
        assert!(get(&mut p, b"k", 0).is_none(), "replaced, then expired");
    }

    #[test]
    fn flush_now_and_later() {
        let mut p = Partition::for_worker(1, 3, 1024);
        p.set(b"a", b"1", 0, 0, 0);
        p.flush(0, 0);
        assert!(get(&mut p, b"a", 0).is_none());
        assert_eq!(p.stats().get_flushed, 1);
        p.set(b"b", b"2", 0, 0, 0);
        assert!(get(&mut p, b"b", 0).is_some(), "stored after the flush");
        p.flush(1_000, 2);
        p.set(b"c", b"3", 0, 0, 2_000);
        assert!(get(&mut p, b"b", 2_999).is_some());
        assert!(get(&mut p, b"b", 3_000).is_none());
        assert!(
            get(&mut p, b"c", 3_000).is_none(),
            "stored before the deadline"
        );
        p.set(b"d", b"4", 0, 0, 3_001);
        assert!(get(&mut p, b"d", 3_001).is_some());
    }

    #[derive(Debug, Clone)]
    enum ModelOp {
        Set(u8, Vec<u8>, u32, u32),
        Add(u8, Vec<u8>),
        Append(u8, Vec<u8>),
        Get(u8),
        Delete(u8),
        Incr(u8, u64),
        Flush,
        Advance(u16),
    }

    fn model_op() -> impl Strategy<Value = ModelOp> {
        let value = || proptest::collection::vec(b'0'..=b'9', 0..8);
        prop_oneof![
            (0u8..16, value(), any::<u32>(), 0u32..5)
                .prop_map(|(k, v, f, t)| ModelOp::Set(k, v, f, t)),
            (0u8..16, value()).prop_map(|(k, v)| ModelOp::Add(k, v)),
            (0u8..16, value()).prop_map(|(k, v)| ModelOp::Append(k, v)),
            (0u8..16).prop_map(ModelOp::Get),
            (0u8..16).prop_map(ModelOp::Delete),
            (0u8..16, 0u64..1000).prop_map(|(k, d)| ModelOp::Incr(k, d)),
            Just(ModelOp::Flush),
            (0u16..3000).prop_map(ModelOp::Advance),
        ]
    }

    /// key -> (flags, value, expires_at)
    type Model = HashMap<Vec<u8>, (u32, Vec<u8>, u64)>;

    fn live(m: &Model, k: &[u8], now: u64) -> Option<(u32, Vec<u8>)> {
        m.get(k)
            .filter(|(_, _, exp)| *exp > now)
            .map(|(f, v, _)| (*f, v.clone()))
    }

    proptest! {
        #[test]
        fn matches_a_hashmap_model(ops in proptest::collection::vec(model_op(), 1..200)) {
            let mut p = Partition::for_worker(0, 1, 64);
            let mut model = Model::new();
            let mut now = 0u64;
            let mut last_cas = 0u64;
            for op in ops {
                match op {
                    ModelOp::Set(k, v, f, ttl) => {
                        let key = vec![b'k', k];
                        let cas = p.set(&key, &v, f, ttl, now);
                        prop_assert!(cas > last_cas);
                        last_cas = cas;
                        let exp = if ttl == 0 { u64::MAX } else { now + u64::from(ttl) * 1000 };
                        model.insert(key, (f, v, exp));
                    }
                    ModelOp::Add(k, v) => {
                        let key = vec![b'k', k];
                        let out = run(&mut p, store(StoreMode::Add, 0), &key, &v, now);
                        if live(&model, &key, now).is_some() {
                            prop_assert_eq!(out, Outcome::NotStored);
                        } else {
                            prop_assert!(matches!(out, Outcome::Stored { .. }), "{:?}", out);
                            model.insert(key, (0, v, u64::MAX));
                        }
                    }
                    ModelOp::Append(k, v) => {
                        let key = vec![b'k', k];
                        let out = run(&mut p, store(StoreMode::Append, 0), &key, &v, now);
                        match live(&model, &key, now) {
                            None => prop_assert_eq!(out, Outcome::NotStored),
                            Some((_, old)) if old.len() + v.len() > 64 => {
                                prop_assert_eq!(out, Outcome::TooLarge)
                            }
                            Some(_) => {
                                prop_assert!(matches!(out, Outcome::Stored { .. }), "{:?}", out);
                                if let Some(entry) = model.get_mut(&key) {
                                    entry.1.extend_from_slice(&v);
                                }
                            }
                        }
                    }
                    ModelOp::Get(k) => {
                        let key = vec![b'k', k];
                        let out = run(&mut p, Op::Get, &key, b"", now);
                        match live(&model, &key, now) {
                            Some((f, v)) => prop_assert!(
                                matches!(&out, Outcome::Hit { flags, value, .. } if *flags == f && *value == v),
                                "{:?}", out
                            ),
                            None => prop_assert_eq!(out, Outcome::Miss),
                        }
                    }
                    ModelOp::Delete(k) => {
                        let key = vec![b'k', k];
                        let expected = if live(&model, &key, now).is_some() {
                            Outcome::Deleted
                        } else {
                            Outcome::NotFound
                        };
                        model.remove(&key);
                        prop_assert_eq!(run(&mut p, Op::Delete { cas: 0 }, &key, b"", now), expected);
                    }
                    ModelOp::Incr(k, d) => {
                        let key = vec![b'k', k];
                        let op = Op::Arith { incr: true, delta: d, initial: 7, create: true, expiry: Expiry::Never, cas: 0 };
                        let out = run(&mut p, op, &key, b"", now);
                        match live(&model, &key, now) {
                            None => {
                                prop_assert!(matches!(out, Outcome::Counter { value: 7, .. }), "{:?}", out);
                                model.insert(key, (0, b"7".to_vec(), u64::MAX));
                            }
                            Some((_, v)) => match parse_counter(&v) {
                                None => prop_assert_eq!(out, Outcome::NonNumeric),
                                Some(n) => {
                                    let want = n.wrapping_add(d);
                                    prop_assert!(matches!(out, Outcome::Counter { value, .. } if value == want), "{:?}", out);
                                    if let Some(entry) = model.get_mut(&key) {
                                        entry.1 = want.to_string().into_bytes();
                                    }
                                }
                            },
                        }
                    }
                    ModelOp::Flush => {
                        p.flush(now, 0);
                        model.clear();
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
