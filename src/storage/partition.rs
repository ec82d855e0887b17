//! A partition: one worker's items under a byte budget, with memcached's
//! store semantics (conditional stores, CAS, counters, touch, and the meta
//! commands, whose rules the classic commands share: `meta.rs`), SIEVE
//! eviction, and expiry that frees memory.
//!
//! Must not: read a clock, touch a socket, know a wire format, or allocate on
//! a GET.
//!
//! # Layout
//!
//! Items live in a `Slab` (stable `u32` indexes, slots reused); the hash
//! table holds only those indexes (4 bytes a slot), and compares keys
//! through the slab. Each item is one heap allocation holding key then
//! value, plus 48 bytes of metadata in its slab slot (`item.rs`, which owns
//! the one `unsafe` pointer and checks every length it stores). Expiry
//! has memcached's resolution: whole clock seconds.
//!
//! # Eviction: SIEVE
//!
//! Items sit on one intrusive list, newest at the head. A hit only sets the
//! item's `VISITED` bit: no list splice, no allocation, no shared write. To
//! make room, a hand walks from the tail towards the head: a visited item
//! has its bit cleared and is passed over, the first unvisited one is
//! evicted, and the hand stays where it stopped for the next eviction
//! (Zhang et al., "SIEVE is simpler than LRU", NSDI'24). Dead items (expired
//! or flushed) met by the hand are evicted whatever their bit. An exact LRU
//! on the same list ([`Policy::Lru`]: a hit moves the item to the head, the
//! tail is evicted) exists only so benchmarks can compare the two at the
//! same byte budget.
//!
//! # Accounting
//!
//! The budget covers everything the partition asks the allocator for, in
//! two parts reported apart, as memcached reports them: `bytes`, what the
//! items cost (each boxed key+value rounded as glibc's malloc rounds it,
//! plus its slab slot), and `hash_bytes`, what the structures cost beyond
//! that (the table's buckets and the slab's free slots, which cost memory
//! whether used or not). A store that would exceed the budget evicts first,
//! growth of the slab or the table included, so `bytes + hash_bytes` never
//! exceeds the budget.
//!
//! # CAS and FLUSH
//!
//! CAS values are unique across the whole server: partition `id` of `n`
//! hands out `id + 1`, `id + 1 + n`, … . A meta command may set any CAS it
//! likes (`E`), so FLUSH does not rely on CAS order: it bumps the
//! partition's flush epoch, O(1), and an item stored under an earlier epoch
//! is dead from then on, whatever its CAS. (memcached 1.6 judges by the
//! item's time and also by a CAS watermark, so there an item stored after
//! a flush with a low `E` CAS would count as flushed.) The epoch is 32
//! bits; at its wrap, once per 2^32 flushes, every item is dropped at once,
//! as the flush would kill them all anyway, so none can look current again.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use slab::Slab;

use super::item::{self, FETCHED, Item, NEVER, NIL, STALE, VISITED, WIN_SENT};
use crate::command::{Command, Expiry, MetaArith, MetaDelete, MetaStore, Op, Outcome, StoreMode};

#[path = "meta.rs"]
mod meta;

/// Which item a full partition gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// SIEVE: hits set a bit; a hand evicts the first unvisited item.
    Sieve,
    /// Exact LRU, for comparison: hits move the item to the head.
    Lru,
}

/// Whether an item can no longer be read: expired, or flushed.
#[inline]
fn is_dead(item: &Item, now_ms: u64, epoch: u32) -> bool {
    item.expires_at() <= secs(now_ms) || item.epoch() != epoch
}

/// Clock milliseconds as the clock seconds items expire in.
#[inline]
fn secs(now_ms: u64) -> u32 {
    (now_ms / 1000).min(u64::from(NEVER - 1)) as u32
}

/// Bytes glibc's malloc hands out for a request of `n` bytes: the request
/// plus an 8-byte header, rounded up to 16, at least 32.
pub fn malloc_size(n: usize) -> u64 {
    (((n + 8 + 15) & !15).max(32)) as u64
}

/// Bytes a slab slot costs. A slab slot is an enum of a vacant link
/// (`usize`) or an item, laid out as `Result<Item, usize>` is.
const SLOT_BYTES: u64 = std::mem::size_of::<Result<Item, usize>>() as u64;
/// An upper bound on hashbrown's first allocation (4 buckets of 5 bytes and
/// a 16-byte control group).
const FIRST_TABLE_BYTES: u64 = 64;
/// Bytes a table bucket costs: the `u32` index and hashbrown's control byte.
const BUCKET_BYTES: u64 = std::mem::size_of::<u32>() as u64 + 1;

/// The fixed bytes one item costs beyond its key and value when the slab
/// and table are full: its slot, its bucket (at hashbrown's maximum load
/// of 7/8), and malloc's header. Rounding of the key+value allocation comes
/// on top (0 to 15 bytes).
pub const ITEM_OVERHEAD: u64 = SLOT_BYTES + (BUCKET_BYTES * 8).div_ceil(7) + 8;

/// Lookups [`Partition::prefetch`] overlaps at once: about what a pipeline
/// of requests read in one go holds, and within what a core keeps in
/// flight.
pub const PREFETCH_BATCH: usize = 8;

/// What a partition counts about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionStats {
    /// Items held (dead ones not yet reclaimed included).
    pub items: u64,
    /// Bytes the items cost: key+value allocations and their slab slots.
    pub bytes: u64,
    /// Bytes the table and the slab's free slots cost beyond the items.
    pub hash_bytes: u64,
    /// The byte budget.
    pub limit: u64,
    /// Items stored since the counters were reset.
    pub total_items: u64,
    /// GETs (and GATs) that found only an expired item.
    pub get_expired: u64,
    /// GETs (and GATs) that found only a flushed item.
    pub get_flushed: u64,
    /// Live items removed to make room.
    pub evictions: u64,
    /// Evicted items that were never read.
    pub evicted_unfetched: u64,
    /// Expired items that were never read, when reclaimed.
    pub expired_unfetched: u64,
    /// Dead items (expired or flushed) reclaimed, by access, by the sweep
    /// or by the eviction hand.
    pub reclaimed: u64,
}

/// Why a store was refused; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// The key or value is longer than an item holds.
    TooLarge,
    /// The item cannot fit the budget even alone.
    NoRoom,
}

/// What a store writes beside the bytes.
#[derive(Debug, Clone, Copy)]
struct NewItem {
    /// Client flags.
    flags: u32,
    /// Clock seconds, or `NEVER`.
    expires_at: u32,
    /// The CAS to give the item (a meta `E`); 0: the partition's next.
    cas: u64,
    /// `STALE` and `WIN_SENT` to set; every other bit starts clear.
    bits: u8,
}

/// Why an item leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// Deleted or replaced by a client.
    Deleted,
    /// Found dead.
    Reclaimed,
    /// Made room for another.
    Evicted,
}

/// One worker's share of the key space.
#[derive(Debug)]
pub struct Partition {
    table: HashTable<u32>,
    items: Slab<Item>,
    hasher: hashbrown::DefaultHashBuilder,
    policy: Policy,
    /// Newest item.
    head: u32,
    /// Oldest item.
    tail: u32,
    /// Where the SIEVE hand stopped, or `NIL` (start from the tail).
    hand: u32,
    /// Slab slot the expiry sweep looks at next.
    sweep_cursor: usize,
    /// Items with a deadline (not `NEVER`): while none are, and nothing
    /// is `flushed`, no item can die of time and the sweep has no work.
    expiring: usize,
    /// Items from an earlier flush epoch still in the table. New items
    /// take the current epoch, so this only falls until the next flush.
    flushed: usize,
    /// Bytes of item allocations (key+value, malloc-rounded).
    data_bytes: u64,
    /// Item bytes written since the partition was made (a measure of work,
    /// not memory: an append to a large item writes all of it).
    written: u64,
    budget: u64,
    stats: PartitionStats,
    next_cas: u64,
    cas_stride: u64,
    /// Bumped by every FLUSH: items stored under an earlier epoch are dead.
    epoch: u32,
    /// A delayed FLUSH: at this clock millisecond, everything stored so far
    /// dies.
    flush_at: Option<u64>,
    max_value_len: usize,
    /// The latest clock reading any operation brought, for work that comes
    /// without one (`set_limit`).
    last_now_ms: u64,
}

impl Default for Partition {
    fn default() -> Self {
        Self::new()
    }
}

/// An item's expiry, in clock seconds.
fn deadline(expiry: Expiry, now_ms: u64) -> u32 {
    match expiry {
        Expiry::Never => NEVER,
        // Saturating below NEVER keeps a huge TTL from meaning "never".
        Expiry::After(ttl) => secs(now_ms).saturating_add(ttl).min(NEVER - 1),
        Expiry::Immediately => secs(now_ms),
    }
}

impl Partition {
    /// A lone partition (CAS 1, 2, 3, …) with no item-size limit and an
    /// unlimited budget.
    pub fn new() -> Self {
        Self::for_worker(0, 1, usize::MAX, u64::MAX)
    }

    /// A lone partition with a byte budget and an eviction policy; for
    /// benchmarks and tests.
    pub fn with_budget(policy: Policy, budget: u64) -> Self {
        let mut p = Self::for_worker(0, 1, usize::MAX, budget);
        p.policy = policy;
        p
    }

    /// Partition `id` of `workers`, holding at most `budget` bytes and
    /// refusing appends that would grow an item past `max_value_len`.
    pub fn for_worker(id: usize, workers: usize, max_value_len: usize, budget: u64) -> Self {
        Partition {
            table: HashTable::new(),
            items: Slab::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            policy: Policy::Sieve,
            head: NIL,
            tail: NIL,
            hand: NIL,
            sweep_cursor: 0,
            expiring: 0,
            flushed: 0,
            data_bytes: 0,
            written: 0,
            budget,
            stats: PartitionStats {
                limit: budget,
                ..PartitionStats::default()
            },
            next_cas: id as u64 + 1,
            cas_stride: workers.max(1) as u64,
            epoch: 0,
            flush_at: None,
            max_value_len,
            last_now_ms: 0,
        }
    }

    /// The partition's counters.
    pub fn stats(&self) -> PartitionStats {
        let item_bytes = self.data_bytes + self.items.len() as u64 * SLOT_BYTES;
        PartitionStats {
            items: self.items.len() as u64,
            bytes: item_bytes,
            hash_bytes: self.bytes() - item_bytes,
            ..self.stats
        }
    }

    /// Changes the byte budget at run time (memcached's `cache_memlimit`).
    /// A lower limit takes effect now, not at the next stores, so that
    /// `bytes + hash_bytes <= limit` keeps holding: the eviction hand
    /// removes items (dead ones first, judged by the latest clock reading
    /// the partition saw) until the partition fits, and the slab's and
    /// table's spare capacity is given back when that is not enough. A
    /// limit below what one item needs makes every store `NoRoom`.
    pub fn set_limit(&mut self, bytes: u64) {
        self.budget = bytes;
        self.stats.limit = bytes;
        if self.bytes() <= self.budget {
            return;
        }
        // Free slots and buckets may be all the excess: cheaper to give
        // them back than to evict for them.
        self.shrink_structures();
        while self.bytes() > self.budget && self.evict_one(self.last_now_ms) {}
        // Emptied, the structures can shrink to nothing, which fits any
        // limit.
        self.shrink_structures();
    }

    /// Gives back the slab's trailing free slots and the table's spare
    /// buckets.
    fn shrink_structures(&mut self) {
        self.items.shrink_to_fit();
        let items = &self.items;
        let hasher = &self.hasher;
        self.table
            .shrink_to_fit(|&i| hasher.hash_one(items[i as usize].key()));
    }

    /// Zeroes the counters (not the gauges: items, bytes and the limit).
    pub fn reset_counters(&mut self) {
        self.stats = PartitionStats {
            limit: self.budget,
            ..PartitionStats::default()
        };
    }

    /// Number of items held, dead ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the partition holds no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// What the table has allocated, as hashbrown reports it (its
    /// `capacity()` shrinks with tombstones, so it cannot be derived).
    fn table_bytes(&self) -> u64 {
        self.table.allocation_size() as u64
    }

    /// What the table would cost if it grew now: it doubles, so about its
    /// size again (an over-estimate when it only rehashes in place).
    fn table_growth(&self) -> u64 {
        match self.table_bytes() {
            0 => FIRST_TABLE_BYTES,
            now => now,
        }
    }

    /// Everything the partition holds, as the module docs account it.
    fn bytes(&self) -> u64 {
        self.data_bytes + self.items.capacity() as u64 * SLOT_BYTES + self.table_bytes()
    }

    /// `requested` (a meta `E`), or else the next CAS of this partition's
    /// sequence.
    fn cas_or_next(&mut self, requested: u64) -> u64 {
        if requested != 0 {
            return requested;
        }
        let cas = self.next_cas;
        self.next_cas += self.cas_stride;
        cas
    }

    /// Invalidates every item stored so far, now (`delay_secs` = 0) or
    /// that many seconds from `now_ms`; a later FLUSH replaces a pending one.
    pub fn flush(&mut self, now_ms: u64, delay_secs: u32) {
        if delay_secs == 0 {
            if self.epoch == u32::MAX {
                // The epoch wraps: an item older than 2^32 flushes would
                // look current again. Everything held is dead anyway.
                self.drop_all();
            }
            self.epoch = self.epoch.wrapping_add(1);
            self.flush_at = None;
            self.flushed = self.items.len();
        } else {
            self.flush_at = Some(now_ms.saturating_add(u64::from(delay_secs) * 1000));
        }
    }

    /// Whether anything can die without being touched: an item with a
    /// deadline, a flushed item not yet reclaimed, or a delayed FLUSH. The
    /// worker sweeps, and wakes to sweep, only then: a cache whose items
    /// never expire pays nothing for the sweeper.
    pub fn has_sweep_work(&self) -> bool {
        self.expiring > 0 || self.flushed > 0 || self.flush_at.is_some()
    }

    /// Reclaims every item at once, keeping the structures' capacity.
    fn drop_all(&mut self) {
        self.stats.reclaimed += self.items.len() as u64;
        self.items.clear();
        self.table.clear();
        self.head = NIL;
        self.tail = NIL;
        self.hand = NIL;
        self.data_bytes = 0;
        self.expiring = 0;
        self.flushed = 0;
    }

    /// Gives item `idx` a new deadline, keeping the `expiring` count exact.
    fn set_deadline(&mut self, idx: u32, expires_at: u32) {
        let item = &mut self.items[idx as usize];
        self.expiring -= usize::from(item.expires_at() != NEVER);
        self.expiring += usize::from(expires_at != NEVER);
        item.set_expires_at(expires_at);
    }

    fn apply_due_flush(&mut self, now_ms: u64) {
        self.last_now_ms = self.last_now_ms.max(now_ms);
        if let Some(at) = self.flush_at
            && now_ms >= at
        {
            self.flush(now_ms, 0);
        }
    }

    // ----- the list -----

    fn link_at_head(&mut self, idx: u32) {
        let old_head = self.head;
        {
            let item = &mut self.items[idx as usize];
            item.set_newer(NIL);
            item.set_older(old_head);
        }
        if old_head != NIL {
            self.items[old_head as usize].set_newer(idx);
        } else {
            self.tail = idx;
        }
        self.head = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let (newer, older) = {
            let item = &self.items[idx as usize];
            (item.newer(), item.older())
        };
        if newer != NIL {
            self.items[newer as usize].set_older(older);
        } else {
            self.head = older;
        }
        if older != NIL {
            self.items[older as usize].set_newer(newer);
        } else {
            self.tail = newer;
        }
        if self.hand == idx {
            self.hand = newer;
        }
    }

    // ----- finding and removing -----

    /// Asks the caches for what looking up `keys` will touch, so that the
    /// lookups of a pipelined batch overlap their misses instead of paying
    /// them one after another. Two passes: each key's likely slot (the
    /// first table entry whose tag matches, found without reading any
    /// item, so the keys' table misses overlap), then each of those items'
    /// allocations. A hint: nothing it finds is relied on. At most
    /// [`PREFETCH_BATCH`] keys are looked at; the rest are ignored.
    pub fn prefetch(&self, keys: &[&[u8]]) {
        let mut likely: [Option<&Item>; PREFETCH_BATCH] = Default::default();
        for (slot, key) in likely.iter_mut().zip(keys) {
            let hash = self.hasher.hash_one(key);
            *slot = self
                .table
                .find(hash, |_| true)
                .and_then(|&i| self.items.get(i as usize));
        }
        for item in likely.iter().flatten() {
            item.prefetch();
        }
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.table
            .find(hash, |&i| self.items[i as usize].key() == key)
            .copied()
    }

    /// Removes item `idx` entirely, counting why. Returns it, so a caller
    /// that re-stores its key can borrow it instead of copying it; its
    /// memory is already off the budget.
    fn remove(&mut self, idx: u32, why: Removal) -> Item {
        self.unlink(idx);
        let hash = self.hasher.hash_one(self.items[idx as usize].key());
        if let Ok(entry) = self.table.find_entry(hash, |&i| i == idx) {
            entry.remove();
        }
        let item = self.items.remove(idx as usize);
        self.data_bytes -= malloc_size(item.len());
        self.expiring -= usize::from(item.expires_at() != NEVER);
        self.flushed -= usize::from(item.epoch() != self.epoch);
        let unfetched = !item.has(FETCHED);
        match why {
            Removal::Deleted => {}
            Removal::Reclaimed => {
                self.stats.reclaimed += 1;
                if unfetched && item.epoch() == self.epoch {
                    self.stats.expired_unfetched += 1;
                }
            }
            Removal::Evicted => {
                self.stats.evictions += 1;
                if unfetched {
                    self.stats.evicted_unfetched += 1;
                }
            }
        }
        item
    }

    /// The index of the live item under `key`; a dead one is reclaimed on
    /// the way. `read` counts a dead item found in `get_expired` or
    /// `get_flushed`.
    fn find_live(&mut self, key: &[u8], now_ms: u64, read: bool) -> Option<u32> {
        let idx = self.find(key)?;
        let item = &self.items[idx as usize];
        if !is_dead(item, now_ms, self.epoch) {
            return Some(idx);
        }
        if read {
            if item.epoch() != self.epoch {
                self.stats.get_flushed += 1;
            } else {
                self.stats.get_expired += 1;
            }
        }
        self.remove(idx, Removal::Reclaimed);
        None
    }

    /// Marks an access: the item's access time, and its credit for
    /// eviction (SIEVE sets a bit, LRU moves the item to the head).
    fn bump(&mut self, idx: u32, now_ms: u64) {
        self.items[idx as usize].set_atime(secs(now_ms));
        match self.policy {
            Policy::Sieve => self.items[idx as usize].set_bits(VISITED),
            Policy::Lru => {
                if self.head != idx {
                    self.unlink(idx);
                    self.link_at_head(idx);
                }
            }
        }
    }

    // ----- making room -----

    /// Removes one item to make room: dead ones first wherever the hand
    /// finds them, else the policy's victim. False if nothing is left.
    fn evict_one(&mut self, now_ms: u64) -> bool {
        if self.tail == NIL {
            return false;
        }
        let victim = match self.policy {
            Policy::Lru => self.tail,
            Policy::Sieve => {
                let mut hand = if self.hand == NIL {
                    self.tail
                } else {
                    self.hand
                };
                loop {
                    let item = &mut self.items[hand as usize];
                    if !item.has(VISITED) || is_dead(item, now_ms, self.epoch) {
                        break hand;
                    }
                    item.clear_bits(VISITED);
                    hand = if item.newer() == NIL {
                        self.tail
                    } else {
                        item.newer()
                    };
                }
            }
        };
        let dead = is_dead(&self.items[victim as usize], now_ms, self.epoch);
        // The hand moves on to the victim's newer neighbour (`unlink`
        // does it), where the next eviction resumes.
        self.hand = victim;
        self.remove(
            victim,
            if dead {
                Removal::Reclaimed
            } else {
                Removal::Evicted
            },
        );
        true
    }

    /// Bytes a new item of `data_len` bytes adds now, slab and table growth
    /// included.
    fn cost_of_new(&self, data_len: usize) -> u64 {
        let mut cost = malloc_size(data_len);
        if self.items.len() == self.items.capacity() {
            cost += Self::slab_growth(self.items.capacity()) as u64 * SLOT_BYTES;
        }
        // Full, tombstones included: the next insert reallocates.
        if self.table.len() == self.table.capacity() {
            cost += self.table_growth();
        }
        cost
    }

    /// Slots the slab grows by when full: an eighth of its size, so the
    /// free slots a grown slab carries (memory counted against the budget)
    /// stay small, at the price of more frequent, still amortised, copies.
    fn slab_growth(capacity: usize) -> usize {
        (capacity / 8).max(16)
    }

    /// Whether an item of `data_len` bytes would fit if it were alone: the
    /// slab and table keep their capacity when emptied, so that is the
    /// floor it must fit above.
    fn fits_alone(&self, data_len: usize) -> bool {
        let mut cost =
            malloc_size(data_len) + self.items.capacity() as u64 * SLOT_BYTES + self.table_bytes();
        if self.items.capacity() == 0 {
            cost += Self::slab_growth(0) as u64 * SLOT_BYTES;
        }
        if self.table_bytes() == 0 {
            cost += FIRST_TABLE_BYTES;
        }
        cost <= self.budget
    }

    /// Evicts until a new item of `data_len` bytes fits. False if it cannot
    /// fit even alone; then nothing was evicted.
    fn make_room(&mut self, data_len: usize, now_ms: u64) -> bool {
        if !self.fits_alone(data_len) {
            return false;
        }
        while self.bytes() + self.cost_of_new(data_len) > self.budget {
            if !self.evict_one(now_ms) {
                return false;
            }
        }
        true
    }

    /// Stores a fresh item at the head (the key holds no item). Refused,
    /// with nothing changed, if its lengths do not fit an item or it cannot
    /// fit the budget.
    fn insert(
        &mut self,
        key: &[u8],
        parts: &[&[u8]],
        new: &NewItem,
        now_ms: u64,
    ) -> Result<u32, Refused> {
        let value_len = parts.iter().map(|p| p.len()).sum::<usize>();
        let data_len = item::data_len(key.len(), value_len).ok_or(Refused::TooLarge)?;
        if !self.make_room(data_len, now_ms) {
            return Err(Refused::NoRoom);
        }
        if self.items.len() == self.items.capacity() {
            self.items
                .reserve_exact(Self::slab_growth(self.items.capacity()));
        }
        let mut item = Item::new(key, parts).ok_or(Refused::TooLarge)?;
        item.set_cas(self.cas_or_next(new.cas));
        item.set_expires_at(new.expires_at);
        item.set_flags(new.flags);
        item.set_atime(secs(now_ms));
        item.set_epoch(self.epoch);
        item.set_bits(new.bits & (STALE | WIN_SENT));
        let idx = self.items.insert(item) as u32;
        self.data_bytes += malloc_size(data_len);
        self.written = self.written.wrapping_add(data_len as u64);
        self.expiring += usize::from(new.expires_at != NEVER);
        let hash = self.hasher.hash_one(key);
        let items = &self.items;
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, idx, |&i| hasher.hash_one(items[i as usize].key()));
        self.link_at_head(idx);
        Ok(idx)
    }

    /// Replaces item `idx`'s data with `parts` (key kept): in place when
    /// the size is unchanged, else as a fresh item at the head. Refused if
    /// the new data cannot be an item or cannot fit even alone; the old item
    /// is then left as it was.
    fn rewrite(
        &mut self,
        idx: u32,
        parts: &[&[u8]],
        new: &NewItem,
        now_ms: u64,
    ) -> Result<u32, Refused> {
        let item = &self.items[idx as usize];
        let value_len = parts.iter().map(|p| p.len()).sum::<usize>();
        let new_len = item::data_len(item.key().len(), value_len).ok_or(Refused::TooLarge)?;
        if value_len == item.value().len() {
            let cas = self.cas_or_next(new.cas);
            self.written = self.written.wrapping_add(value_len as u64);
            let item = &mut self.items[idx as usize];
            let mut at = 0;
            for p in parts {
                item.value_mut()[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            item.set_flags(new.flags);
            item.set_cas(cas);
            item.clear_bits(FETCHED | STALE | WIN_SENT);
            item.set_bits(new.bits & (STALE | WIN_SENT));
            self.set_deadline(idx, new.expires_at);
            // A new value, not yet read; a write is an access for eviction.
            self.bump(idx, now_ms);
            return Ok(idx);
        }
        if !self.fits_alone(new_len) {
            return Err(Refused::NoRoom);
        }
        let old = self.remove(idx, Removal::Deleted);
        // Room is certain: the item fits alone, and everything else can go.
        self.insert(old.key(), parts, new, now_ms)
    }

    /// Reclaims dead items, looking at no more than `max_slots` slab slots
    /// from where the last sweep stopped, so one call is bounded work.
    /// Returns the number reclaimed.
    pub fn sweep(&mut self, now_ms: u64, max_slots: usize) -> usize {
        self.apply_due_flush(now_ms);
        let capacity = self.items.capacity();
        if capacity == 0 || self.items.is_empty() {
            return 0;
        }
        let mut reclaimed = 0;
        for _ in 0..max_slots.min(capacity) {
            let idx = self.sweep_cursor % capacity;
            self.sweep_cursor = (idx + 1) % capacity;
            if let Some(item) = self.items.get(idx)
                && is_dead(item, now_ms, self.epoch)
            {
                self.remove(idx as u32, Removal::Reclaimed);
                reclaimed += 1;
            }
        }
        reclaimed
    }

    // ----- commands -----

    /// Executes one command at time `now_ms` (clock milliseconds). A hit
    /// borrows the stored value.
    pub fn execute(&mut self, cmd: &Command<'_>, now_ms: u64) -> Outcome<&[u8]> {
        self.apply_due_flush(now_ms);
        let key = cmd.key;
        match cmd.op {
            Op::Get => self.read(key, now_ms, None),
            Op::GetAndTouch { expiry } => self.read(key, now_ms, Some(expiry)),
            Op::Touch { expiry } => match self.find_live(key, now_ms, false) {
                Some(idx) => {
                    self.set_deadline(idx, deadline(expiry, now_ms));
                    let item = &self.items[idx as usize];
                    Outcome::Touched {
                        flags: item.flags(),
                        cas: item.cas(),
                    }
                }
                None => Outcome::NotFound,
            },
            Op::Store {
                mode,
                flags,
                expiry,
                cas,
            } => {
                // memcached's binary protocol makes an ADD with a CAS a
                // compare-and-swap: a REPLACE with that CAS.
                let mode = match mode {
                    StoreMode::Add if cas.is_some() => StoreMode::Replace,
                    mode => mode,
                };
                let req = MetaStore {
                    mode,
                    flags,
                    expiry,
                    cas,
                    new_cas: 0,
                    invalidate: false,
                    vivify: None,
                };
                match self.store_item(&req, key, cmd.value, now_ms) {
                    Ok(idx) => Outcome::Stored {
                        cas: self.items[idx as usize].cas(),
                    },
                    Err(failure) => failure.outcome(),
                }
            }
            Op::Delete { cas } => {
                let req = MetaDelete {
                    cas: (cas != 0).then_some(cas),
                    ..MetaDelete::default()
                };
                match self.delete_item(&req, key, now_ms) {
                    Ok(_) => Outcome::Deleted,
                    Err(failure) => failure.outcome(),
                }
            }
            Op::Arith {
                incr,
                delta,
                initial,
                create,
                expiry,
                cas,
            } => {
                let req = MetaArith {
                    incr,
                    delta,
                    initial,
                    vivify: create.then_some(expiry),
                    cas: (cas != 0).then_some(cas),
                    new_cas: 0,
                    touch: None,
                };
                match self.arith_item(&req, key, now_ms) {
                    Ok((idx, value)) => Outcome::Counter {
                        value,
                        cas: self.items[idx as usize].cas(),
                    },
                    Err(failure) => failure.outcome(),
                }
            }
            Op::Unlink => self.unlink_key(key, now_ms),
            Op::MetaRead(read) => self.meta_read(&read, key, now_ms),
            Op::MetaStore(store) => self.meta_store(&store, key, cmd.value, now_ms),
            Op::MetaDelete(delete) => self.meta_delete(&delete, key, now_ms),
            Op::MetaArith(arith) => self.meta_arith(&arith, key, now_ms),
        }
    }

    fn read(&mut self, key: &[u8], now_ms: u64, touch: Option<Expiry>) -> Outcome<&[u8]> {
        let Some(idx) = self.find_live(key, now_ms, true) else {
            return Outcome::Miss;
        };
        self.bump(idx, now_ms);
        self.items[idx as usize].set_bits(FETCHED);
        if let Some(expiry) = touch {
            self.set_deadline(idx, deadline(expiry, now_ms));
        }
        let item = &self.items[idx as usize];
        Outcome::Hit {
            flags: item.flags(),
            cas: item.cas(),
            value: item.value(),
        }
    }

    /// The length of a live item's value, without reading it: no access is
    /// counted and nothing changes, so a caller can look before it copies.
    pub fn value_len(&self, key: &[u8], now_ms: u64) -> Option<usize> {
        let item = &self.items[self.find(key)? as usize];
        let flushed = self.flush_at.is_some_and(|at| at <= now_ms);
        (!flushed && !is_dead(item, now_ms, self.epoch)).then(|| item.value().len())
    }

    /// Item bytes written so far, wrapping: the difference across an
    /// operation is the copying it did (an append rewrites the whole item).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Stores an item unconditionally (a SET without CAS) with a TTL in
    /// seconds (0: never expires). Returns its CAS, or 0 if it cannot fit.
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
                cas: None,
            },
            key,
            value,
        };
        match self.execute(&cmd, now_ms) {
            Outcome::Stored { cas } => cas,
            _ => 0,
        }
    }

    /// The flags and value of a live item (a read: it counts for eviction).
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<(u32, &[u8])> {
        self.apply_due_flush(now_ms);
        match self.read(key, now_ms, None) {
            Outcome::Hit { flags, value, .. } => Some((flags, value)),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "testkit.rs"]
mod testkit;

#[cfg(test)]
mod tests {
    use super::meta::parse_counter;
    use super::testkit::*;
    use super::*;
    use crate::command::{MetaRead, MetaStatus};
    use proptest::prelude::*;
    use std::collections::{HashMap, VecDeque};

    #[test]
    fn item_metadata_is_compact() {
        assert_eq!(SLOT_BYTES, 48, "the accounting counts the real slot");
        const { assert!(ITEM_OVERHEAD < 64) };
    }

    /// Runs the prefetch's `unsafe` under `scripts/sanitize-storage.sh`
    /// (valgrind), over present, absent, deleted and empty keys and more
    /// than a batch of them, and checks the items read back unchanged.
    #[test]
    fn prefetching_is_only_a_hint() {
        let mut p = Partition::new();
        for i in 0..100u32 {
            p.set(format!("k{i}").as_bytes(), &i.to_le_bytes(), i, 0, 0);
        }
        let delete = Command {
            op: Op::Delete { cas: 0 },
            key: b"k7",
            value: &[],
        };
        assert_eq!(p.execute(&delete, 0), Outcome::Deleted);
        let owned: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        let mut keys: Vec<&[u8]> = owned.iter().map(|k| k.as_bytes()).collect();
        keys.extend([&b"missing"[..], b"", b"k7"]);
        p.prefetch(&keys);
        p.prefetch(&[]);
        for i in 0..10u32 {
            let want = (i != 7).then(|| (i, i.to_le_bytes().to_vec()));
            let got = p.get(format!("k{i}").as_bytes(), 0);
            assert_eq!(got.map(|(flags, v)| (flags, v.to_vec())), want);
        }
        check_accounting(&p);
    }

    #[test]
    fn the_flush_epoch_wraps_without_reviving_anything() {
        let mut p = Partition::new();
        p.epoch = u32::MAX - 1;
        p.set(b"old", b"1", 0, 0, 0);
        p.flush(0, 0);
        p.set(b"max", b"2", 0, 0, 0);
        assert_eq!(p.epoch, u32::MAX);
        p.flush(0, 0);
        assert_eq!(p.epoch, 0);
        assert!(p.is_empty(), "the wrap reclaims everything at once");
        assert_eq!(p.stats().reclaimed, 2);
        check_accounting(&p);
        p.set(b"new", b"3", 0, 0, 0);
        assert!(get(&mut p, b"new", 0).is_some());
        assert!(get(&mut p, b"old", 0).is_none());
        assert!(get(&mut p, b"max", 0).is_none());
        assert!(!p.has_sweep_work());
    }

    #[test]
    fn keys_and_values_longer_than_an_item_holds_are_refused() {
        let mut p = Partition::new();
        let key = vec![b'k'; usize::from(u16::MAX) + 1];
        assert_eq!(
            run(&mut p, store(StoreMode::Set, 0), &key, b"v", 0),
            Outcome::TooLarge
        );
        assert!(p.is_empty());
        check_accounting(&p);
    }

    /// A value one byte over 4 GiB, zero pages the kernel maps lazily: it is
    /// refused before a byte of it is read (skipped under valgrind, which
    /// would have to shadow it).
    #[test]
    fn a_value_over_4_gib_is_refused_not_truncated() {
        let mut p = Partition::new();
        let huge = vec![0u8; u32::MAX as usize + 1];
        p.set(b"k", b"v", 0, 0, 0);
        assert_eq!(
            run(&mut p, store(StoreMode::Set, 0), b"k", &huge, 0),
            Outcome::TooLarge
        );
        assert_eq!(
            get(&mut p, b"k", 0),
            Some(b"v".to_vec()),
            "the old value stays"
        );
        check_accounting(&p);
    }

    #[test]
    fn set_get_delete_and_accounting() {
        let mut p = Partition::new();
        assert_eq!(get(&mut p, b"k", 0), None);
        p.set(b"k", b"v1", 7, 0, 0);
        assert_eq!(p.get(b"k", 0), Some((7, &b"v1"[..])));
        p.set(b"k", b"longer", 9, 0, 0);
        assert_eq!(get(&mut p, b"k", 0), Some(b"longer".to_vec()));
        assert_eq!(p.len(), 1);
        check_accounting(&p);
        assert_eq!(
            run(&mut p, Op::Delete { cas: 0 }, b"k", b"", 0),
            Outcome::Deleted
        );
        assert_eq!(
            run(&mut p, Op::Delete { cas: 0 }, b"k", b"", 0),
            Outcome::NotFound
        );
        assert_eq!(p.data_bytes, 0);
        assert_eq!(p.stats().items, 0);
    }

    #[test]
    fn cas_values_are_unique_across_workers_and_change_on_every_store() {
        let mut a = Partition::for_worker(0, 2, 1024, u64::MAX);
        let mut b = Partition::for_worker(1, 2, 1024, u64::MAX);
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
        check_accounting(&p);
    }

    #[test]
    fn append_refuses_to_grow_past_the_limit() {
        let mut p = Partition::for_worker(0, 1, 4, u64::MAX);
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
        check_accounting(&p);
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
        let op = Op::Store {
            mode: StoreMode::Set,
            flags: 0,
            expiry: Expiry::Immediately,
            cas: None,
        };
        assert!(matches!(
            run(&mut p, op, b"k", b"new", 60_000),
            Outcome::Stored { .. }
        ));
        assert!(
            get(&mut p, b"k", 60_000).is_none(),
            "replaced, then expired"
        );
    }

    #[test]
    fn flush_now_and_later() {
        let mut p = Partition::for_worker(1, 3, 1024, u64::MAX);
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

    #[test]
    fn the_budget_holds_under_ten_times_its_size_in_mixed_sizes() {
        let budget = 4 << 20;
        let mut p = Partition::with_budget(Policy::Sieve, budget);
        let mut written = 0u64;
        let mut seed = 7u64;
        let mut i = 0u64;
        while written < 10 * budget {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // 10 B to 100 KiB, small sizes far more often, as in caches.
            let len = match seed >> 61 {
                0 => 10 + (seed >> 20) as usize % 100_000,
                1 | 2 => 10 + (seed >> 20) as usize % 4_000,
                _ => 10 + (seed >> 20) as usize % 300,
            };
            let key = format!("key:{i}");
            let value = vec![b'x'; len];
            assert!(p.set(key.as_bytes(), &value, 0, 0, 0) != 0);
            written += len as u64;
            i += 1;
            if i.is_multiple_of(997) {
                check_accounting(&p);
            }
            assert!(p.bytes() <= budget, "{} > {budget}", p.bytes());
        }
        check_accounting(&p);
        let stats = p.stats();
        assert!(stats.evictions > 0);
        assert!(
            stats.bytes > budget / 2,
            "the budget is used: {}",
            stats.bytes
        );
        // Everything still held reads back whole.
        for key in keys_oldest_first(&p) {
            let value = get(&mut p, &key, 0).expect("held keys are live");
            assert!(value.iter().all(|&b| b == b'x'));
        }
    }

    #[test]
    fn a_lower_limit_evicts_at_once_and_a_higher_one_gives_room_back() {
        let (mut p, n) = full(Policy::Sieve, 64 << 10);
        p.set_limit(32 << 10);
        assert!(p.bytes() <= 32 << 10 && p.len() < n, "{} items", p.len());
        assert_eq!(p.stats().limit, 32 << 10);
        check_accounting(&p);
        for key in keys_oldest_first(&p) {
            assert!(get(&mut p, &key, 0).is_some());
        }
        // Below the structures' floor: everything goes, then they shrink.
        p.set_limit(0);
        assert!(p.is_empty() && p.bytes() == 0);
        assert_eq!(p.set(b"k", b"v", 0, 0, 0), 0, "nothing fits");
        p.set_limit(64 << 10);
        let evictions = p.stats().evictions;
        for i in 0..n {
            assert!(p.set(format!("k{i:05}").as_bytes(), &[b'v'; 32], 0, 0, 0) != 0);
        }
        assert!(p.len() >= n - 1, "room is back: {} of {n}", p.len());
        assert!(p.stats().evictions <= evictions + 1);
        check_accounting(&p);
    }

    #[test]
    fn an_item_that_cannot_fit_is_refused_and_nothing_is_lost() {
        let mut p = Partition::with_budget(Policy::Sieve, 64 << 10);
        p.set(b"keep", b"v", 0, 0, 0);
        let huge = vec![0u8; 100 << 10];
        assert_eq!(
            run(&mut p, store(StoreMode::Set, 0), b"big", &huge, 0),
            Outcome::NoRoom
        );
        assert_eq!(
            run(&mut p, store(StoreMode::Set, 0), b"keep", &huge, 0),
            Outcome::NoRoom
        );
        assert_eq!(get(&mut p, b"keep", 0), Some(b"v".to_vec()));
        assert_eq!(p.stats().evictions, 0);
    }

    /// Fills a partition with fixed-size items until the first eviction,
    /// and returns it with its capacity in items.
    fn full(policy: Policy, budget: u64) -> (Partition, usize) {
        let mut p = Partition::with_budget(policy, budget);
        let mut i = 0;
        while p.stats().evictions == 0 {
            p.set(format!("k{i:05}").as_bytes(), &[b'v'; 32], 0, 0, 0);
            i += 1;
        }
        let n = p.len();
        (p, n)
    }

    #[test]
    fn sieve_evicts_the_oldest_unvisited_and_keeps_visited_ones() {
        let (mut p, n) = full(Policy::Sieve, 16 << 10);
        let keys = keys_oldest_first(&p);
        assert_eq!(keys.len(), n);
        // Read the three oldest: they survive the next three evictions,
        // which take the next three oldest instead.
        for key in &keys[..3] {
            assert!(get(&mut p, key, 0).is_some());
        }
        for i in 0..3 {
            p.set(format!("new{i}").as_bytes(), &[b'v'; 32], 0, 0, 0);
        }
        let now = keys_oldest_first(&p);
        for key in &keys[..3] {
            assert!(now.contains(key), "visited {key:?} was evicted");
        }
        for key in &keys[3..6] {
            assert!(!now.contains(key), "unvisited {key:?} survived");
        }
        // A hit moved nothing: the visited items are still the oldest.
        assert_eq!(&now[..3], &keys[..3]);
        // Every eviction so far took an item nobody had read.
        let stats = p.stats();
        assert_eq!(stats.evictions, 4);
        assert_eq!(stats.evicted_unfetched, 4);
        assert_eq!(stats.reclaimed, 0);
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let (mut p, _) = full(Policy::Lru, 16 << 10);
        let keys = keys_oldest_first(&p);
        assert!(get(&mut p, &keys[0], 0).is_some());
        p.set(b"new", &[b'v'; 32], 0, 0, 0);
        let now = keys_oldest_first(&p);
        assert!(now.contains(&keys[0]));
        assert!(!now.contains(&keys[1]));
        assert_eq!(now.last(), Some(&b"new".to_vec()));
    }

    #[test]
    fn the_sweep_reclaims_expired_items_in_bounded_steps() {
        let mut p = Partition::new();
        for i in 0..1000 {
            let ttl = if i % 2 == 0 { 1 } else { 0 };
            p.set(format!("k{i}").as_bytes(), b"v", 0, ttl, 0);
        }
        assert_eq!(p.sweep(500, 10_000), 0, "nothing has expired yet");
        let mut reclaimed = 0;
        let mut calls = 0;
        while reclaimed < 500 {
            let n = p.sweep(1_000, 64);
            assert!(n <= 64);
            reclaimed += n;
            calls += 1;
            assert!(calls < 100, "the sweep makes progress");
        }
        assert_eq!(p.len(), 500);
        assert_eq!(p.stats().reclaimed, 500);
        assert_eq!(p.stats().expired_unfetched, 500);
        check_accounting(&p);
    }

    /// A reference SIEVE over a fixed number of equal-size items, written
    /// from the paper's description with a plain queue.
    #[derive(Debug)]
    struct Model {
        /// Oldest first: (key, visited).
        queue: VecDeque<(Vec<u8>, bool)>,
        /// Index of the hand in `queue`, or None (start at the oldest).
        hand: Option<usize>,
        capacity: usize,
    }

    impl Model {
        fn find(&self, key: &[u8]) -> Option<usize> {
            self.queue.iter().position(|(k, _)| k == key)
        }

        fn remove(&mut self, i: usize) {
            self.queue.remove(i);
            self.hand = match self.hand {
                Some(h) if h > i => Some(h - 1),
                Some(h) if h == i && h < self.queue.len() => Some(h),
                Some(h) if h == i => None,
                other => other,
            };
        }

        fn access(&mut self, key: &[u8]) -> bool {
            match self.find(key) {
                Some(i) => {
                    self.queue[i].1 = true;
                    true
                }
                None => false,
            }
        }

        fn insert(&mut self, key: Vec<u8>) {
            if self.access(&key) {
                return;
            }
            if self.queue.len() == self.capacity {
                let mut i = self.hand.unwrap_or(0);
                while self.queue[i].1 {
                    self.queue[i].1 = false;
                    i = (i + 1) % self.queue.len();
                }
                // The hand stops at the victim and moves on to its newer
                // neighbour as the victim leaves.
                self.hand = Some(i);
                self.remove(i);
            }
            self.queue.push_back((key, false));
        }
    }

    proptest! {
        #[test]
        fn sieve_matches_a_reference_model(ops in proptest::collection::vec((0u8..4, 0u16..400), 1..400)) {
            let (mut p, capacity) = full(Policy::Sieve, 16 << 10);
            // The partition is full and its first eviction happened: the
            // model starts from the same queue, all unvisited, with the
            // hand where the partition's stopped.
            let queue: VecDeque<(Vec<u8>, bool)> =
                keys_oldest_first(&p).into_iter().map(|k| (k, false)).collect();
            let mut model = Model { queue, hand: Some(0), capacity };
            for (kind, n) in ops {
                let key = format!("k{n:05}").into_bytes();
                match kind {
                    0 | 1 => {
                        let hit = p.get(&key, 0).is_some();
                        prop_assert_eq!(hit, model.access(&key));
                    }
                    2 => {
                        prop_assert!(p.set(&key, &[b'v'; 32], 0, 0, 0) != 0);
                        model.insert(key);
                    }
                    _ => {
                        let deleted = run(&mut p, Op::Delete { cas: 0 }, &key, b"", 0) == Outcome::Deleted;
                        let present = model.find(&key);
                        prop_assert_eq!(deleted, present.is_some());
                        if let Some(i) = present {
                            model.remove(i);
                        }
                    }
                }
                let held = keys_oldest_first(&p);
                let expected: Vec<Vec<u8>> = model.queue.iter().map(|(k, _)| k.clone()).collect();
                prop_assert_eq!(held, expected);
                check_accounting(&p);
            }
        }

        #[test]
        fn semantics_match_a_hashmap_model_with_room_to_spare(
            ops in proptest::collection::vec((0u8..16, 0u8..16, proptest::collection::vec(b'0'..=b'9', 0..8), 0u16..3000), 1..200)
        ) {
            let mut p = Partition::for_worker(0, 1, 64, u64::MAX);
            let mut model: HashMap<Vec<u8>, (Vec<u8>, u64)> = HashMap::new();
            let mut now = 0u64;
            let live = |m: &HashMap<Vec<u8>, (Vec<u8>, u64)>, k: &[u8], now: u64| {
                m.get(k).filter(|(_, exp)| *exp > now).map(|(v, _)| v.clone())
            };
            for (kind, k, v, n) in ops {
                let key = vec![b'k', k];
                match kind {
                    0 => {
                        let ttl = u32::from(n % 4);
                        prop_assert!(p.set(&key, &v, 0, ttl, now) != 0);
                        // Items expire at whole clock seconds, as memcached's do.
                        let exp = if ttl == 0 { u64::MAX } else { (now / 1000 + u64::from(ttl)) * 1000 };
                        model.insert(key, (v, exp));
                    }
                    1 => {
                        let out = run(&mut p, store(StoreMode::Append, 0), &key, &v, now);
                        match live(&model, &key, now) {
                            None => prop_assert_eq!(out, Outcome::NotStored),
                            Some(old) if old.len() + v.len() > 64 => prop_assert_eq!(out, Outcome::TooLarge),
                            Some(_) => {
                                prop_assert!(matches!(out, Outcome::Stored { .. }), "{:?}", out);
                                if let Some(entry) = model.get_mut(&key) {
                                    entry.0.extend_from_slice(&v);
                                }
                            }
                        }
                    }
                    2 => prop_assert_eq!(get(&mut p, &key, now), live(&model, &key, now)),
                    3 => {
                        let expected = if live(&model, &key, now).is_some() { Outcome::Deleted } else { Outcome::NotFound };
                        model.remove(&key);
                        prop_assert_eq!(run(&mut p, Op::Delete { cas: 0 }, &key, b"", now), expected);
                    }
                    4 => {
                        let op = Op::Arith { incr: true, delta: u64::from(n), initial: 7, create: true, expiry: Expiry::Never, cas: 0 };
                        let out = run(&mut p, op, &key, b"", now);
                        match live(&model, &key, now) {
                            None => {
                                prop_assert!(matches!(out, Outcome::Counter { value: 7, .. }), "{:?}", out);
                                model.insert(key, (b"7".to_vec(), u64::MAX));
                            }
                            Some(v) => match parse_counter(&v) {
                                None => prop_assert_eq!(out, Outcome::NonNumeric),
                                Some(c) => {
                                    let want = c.wrapping_add(u64::from(n));
                                    prop_assert!(matches!(out, Outcome::Counter { value, .. } if value == want), "{:?}", out);
                                    if let Some(entry) = model.get_mut(&key) {
                                        entry.0 = want.to_string().into_bytes();
                                    }
                                }
                            },
                        }
                    }
                    // TOUCH (or GAT, on odd n) to a TTL of 0-3 s, 0 meaning never.
                    6 => {
                        let ttl = u32::from(n % 4);
                        let expiry = if ttl == 0 { Expiry::Never } else { Expiry::After(ttl) };
                        let op = if n % 2 == 0 { Op::Touch { expiry } } else { Op::GetAndTouch { expiry } };
                        let out = run(&mut p, op, &key, b"", now);
                        match live(&model, &key, now) {
                            None => prop_assert!(matches!(out, Outcome::NotFound | Outcome::Miss), "{:?}", out),
                            Some(_) => {
                                prop_assert!(matches!(out, Outcome::Touched { .. } | Outcome::Hit { .. }), "{:?}", out);
                                let exp = if ttl == 0 { u64::MAX } else { (now / 1000 + u64::from(ttl)) * 1000 };
                                if let Some(entry) = model.get_mut(&key) {
                                    entry.1 = exp;
                                }
                            }
                        }
                    }
                    7 => {
                        p.flush(now, 0);
                        model.clear();
                    }
                    8 => {
                        p.sweep(now, usize::from(n % 64));
                    }
                    // A meta read, vivifying on even n, not bumping on n % 3 == 0.
                    10 => {
                        let read = MetaRead {
                            value: true,
                            vivify: (n % 2 == 0).then_some(Expiry::Never),
                            no_bump: n % 3 == 0,
                            ..MetaRead::default()
                        };
                        let out = run(&mut p, Op::MetaRead(read), &key, b"", now);
                        match (live(&model, &key, now), read.vivify) {
                            (Some(v), _) => prop_assert!(matches!(&out, Outcome::Meta { status: MetaStatus::Hit, value, .. } if *value == v), "{:?}", out),
                            (None, Some(_)) => {
                                prop_assert!(matches!(&out, Outcome::Meta { status: MetaStatus::Hit, info, value } if info.won && value.is_empty()), "{:?}", out);
                                model.insert(key, (Vec::new(), u64::MAX));
                            }
                            (None, None) => prop_assert!(matches!(out, Outcome::Meta { status: MetaStatus::Miss, .. }), "{:?}", out),
                        }
                    }
                    // A meta set with an explicit CAS on odd n, an add, or an
                    // append that vivifies.
                    11 => {
                        let mode = [StoreMode::Set, StoreMode::Add, StoreMode::Append][usize::from(n % 3)];
                        let new_cas = if n % 2 == 1 { u64::from(n) } else { 0 };
                        let req = MetaStore { mode, flags: 0, expiry: Expiry::Never, cas: None, new_cas, invalidate: false, vivify: Some(Expiry::Never) };
                        let out = run(&mut p, Op::MetaStore(req), &key, &v, now);
                        let status = match &out {
                            Outcome::Meta { status, info, .. } => {
                                if *status == MetaStatus::Stored && new_cas != 0 {
                                    prop_assert_eq!(info.cas, new_cas);
                                }
                                *status
                            }
                            other => return Err(TestCaseError::fail(format!("{other:?}"))),
                        };
                        match (mode, live(&model, &key, now)) {
                            (StoreMode::Add, Some(_)) => prop_assert_eq!(status, MetaStatus::NotStored),
                            (StoreMode::Append, Some(old)) if old.len() + v.len() > 64 => prop_assert_eq!(status, MetaStatus::TooLarge),
                            (StoreMode::Append, Some(mut old)) => {
                                prop_assert_eq!(status, MetaStatus::Stored);
                                let exp = model.get(&key).map_or(u64::MAX, |e| e.1);
                                old.extend_from_slice(&v);
                                model.insert(key, (old, exp));
                            }
                            _ => {
                                prop_assert_eq!(status, MetaStatus::Stored);
                                model.insert(key, (v, u64::MAX));
                            }
                        }
                    }
                    // A meta delete: plain, emptying (x) or invalidating (I).
                    12 => {
                        let req = MetaDelete { clear_value: n % 3 == 1, invalidate: n % 3 == 2, ..MetaDelete::default() };
                        let out = run(&mut p, Op::MetaDelete(req), &key, b"", now);
                        let found = live(&model, &key, now).is_some();
                        let want = if found { MetaStatus::Deleted } else { MetaStatus::NotFound };
                        prop_assert!(matches!(out, Outcome::Meta { status, .. } if status == want), "{:?}", out);
                        match n % 3 {
                            0 => {
                                model.remove(&key);
                            }
                            1 if found => {
                                model.insert(key, (Vec::new(), u64::MAX));
                            }
                            _ => {}
                        }
                    }
                    // A meta increment that vivifies from 7.
                    13 => {
                        let req = MetaArith { incr: true, delta: u64::from(n), initial: 7, vivify: Some(Expiry::Never), cas: None, new_cas: 0, touch: None };
                        let out = run(&mut p, Op::MetaArith(req), &key, b"", now);
                        let want = match live(&model, &key, now) {
                            None => Some(7),
                            Some(v) => parse_counter(&v).map(|c| c.wrapping_add(u64::from(n))),
                        };
                        match want {
                            None => prop_assert!(matches!(out, Outcome::Meta { status: MetaStatus::NonNumeric, .. }), "{:?}", out),
                            Some(c) => {
                                let digits = c.to_string().into_bytes();
                                prop_assert!(matches!(&out, Outcome::Meta { status: MetaStatus::Stored, value, .. } if *value == digits), "{:?}", out);
                                let exp = model.get(&key).filter(|e| e.1 > now).map_or(u64::MAX, |e| e.1);
                                model.insert(key, (digits, exp));
                            }
                        }
                    }
                    14 => {
                        let want = if live(&model, &key, now).is_some() { Outcome::Deleted } else { Outcome::NotFound };
                        model.remove(&key);
                        prop_assert_eq!(run(&mut p, Op::Unlink, &key, b"", now), want);
                    }
                    _ => now += u64::from(n),
                }
                // The sweep is skipped exactly when no held item can die untouched.
                let can_die = p.items.iter().any(|(_, it)| it.expires_at() != NEVER || it.epoch() != p.epoch);
                prop_assert_eq!(p.has_sweep_work(), can_die || p.flush_at.is_some());
                check_accounting(&p);
            }
        }
    }
}
