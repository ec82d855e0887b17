//! What the GET lookup costs, and what would cut it: built in miniature
//! three ways, the same 1,000,000 items (16-byte keys, 64-byte values), the
//! same 200,000 GET hits in a seeded random order.
//!
//! - **slot**, the partition's layout: the table holds a slab index, the
//!   slab slot (48 bytes) holds the metadata and the pointer, the
//!   allocation holds key then value. A hit waits on control group,
//!   bucket, slot, allocation.
//! - **header**, memcached's: the table holds the allocation, which starts
//!   with the same 48 bytes of metadata, then key, then value. A hit waits
//!   on control group, bucket, allocation.
//! - **batched**: the slot layout looked up [`BATCH`] keys at a time as
//!   the server looks up a pipelined batch (`Partition::prefetch`): each
//!   key's likely slot first, by tag only, then each likely item's
//!   allocation prefetched, then the real lookups.
//!
//! All do the same work per hit (hash, probe, compare the key, check
//! expiry, read flags and CAS, copy the value), and nothing else the
//! partition does (stats, SIEVE bits, the flush epoch). The slot and
//! header hits run in their own functions, so valgrind counts them alone:
//!
//! ```text
//! cargo bench --bench layout --no-run   # prints the executable
//! valgrind --tool=callgrind --cache-sim=yes \
//!     --D1=32768,8,64 --LL=8388608,16,64 --I1=32768,8,64 \
//!     --toggle-collect='*layout*slot_hits*' --callgrind-out-file=slot.out \
//!     target/release/deps/layout-HASH --test
//! ```
//!
//! and the same with `*header_hits*`. Without valgrind, `--test` also
//! prints nanoseconds per hit for each, five interleaved rounds (this
//! machine is shared: read the ratios, not the figures); `LAYOUT_ITEMS=N`
//! sets the items and `LAYOUT_CHURN=BYTES` the other work done between two
//! hits (see [`Churn`]). The header prototype holds its metadata as bytes
//! in a `Box<[u8]>` (a 16-byte table entry, where the real layout would use
//! an 8-byte thin pointer), so it needs no `unsafe`; that overstates its
//! table. The prefetch instruction is the bench's one `unsafe`, in
//! `mod prefetch`.

use std::hint::black_box;
use std::time::Instant;

use hashbrown::HashTable;
use std::hash::BuildHasher;

mod support;
use support::shuffled;

/// Items by default; `LAYOUT_ITEMS` sets another count (at least
/// 200,000, the lookups).
const ITEMS: usize = 1_000_000;
const LOOKUPS: usize = 200_000;
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 64;
/// The metadata both layouts keep per item (the partition's slot).
const META: usize = 48;

/// The partition's slot: metadata plus the key+value allocation.
struct Slot {
    data: Box<[u8]>,
    cas: u64,
    expires_at: u32,
    flags: u32,
    _links: [u32; 2],
    value_len: u32,
    _atime_epoch: [u32; 2],
    key_len: u16,
    _bits: u8,
}

struct SlotLayout {
    table: HashTable<u32>,
    slots: Vec<Slot>,
    hasher: hashbrown::DefaultHashBuilder,
}

/// Asking for a cache line before it is needed: the one `unsafe` of this
/// bench, in its own module.
mod prefetch {
    /// Starts loading the line holding `p` into the caches.
    #[inline(always)]
    pub fn line<T>(p: &T) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint: it never faults and reads
        // nothing into the program, and `p` is a valid reference anyway.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>((p as *const T).cast::<i8>());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }
}

/// Lookups overlapped this many at a time, as a pipeline of 8 requests
/// read in one go would allow.
const BATCH: usize = 8;

impl SlotLayout {
    fn new(keys: &[[u8; KEY_LEN]], value: &[u8]) -> Self {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let mut table = HashTable::with_capacity(keys.len());
        let mut slots = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let mut data = Vec::with_capacity(KEY_LEN + value.len());
            data.extend_from_slice(k);
            data.extend_from_slice(value);
            slots.push(Slot {
                data: data.into_boxed_slice(),
                cas: i as u64 + 1,
                expires_at: u32::MAX,
                flags: i as u32,
                _links: [0; 2],
                value_len: value.len() as u32,
                _atime_epoch: [0; 2],
                key_len: KEY_LEN as u16,
                _bits: 0,
            });
            let hash = hasher.hash_one(k);
            table.insert_unique(hash, i as u32, |&j| {
                hasher.hash_one(&slots[j as usize].data[..KEY_LEN])
            });
        }
        SlotLayout {
            table,
            slots,
            hasher,
        }
    }

    /// Looks up `keys` (at most [`BATCH`]) as the server does a pipelined
    /// batch: first each key's likely slot, the first table entry whose
    /// tag matches, found without reading any item (so the keys' table
    /// misses overlap, and the slot's own load is issued without waiting),
    /// then each likely item's allocation is asked for; only then is each
    /// key looked up for real, its lines by now on their way or arrived.
    /// Calls `hit` with each result, in order.
    #[inline]
    fn get_batch(
        &self,
        keys: &[&[u8]],
        now: u32,
        out: &mut Vec<u8>,
        mut hit: impl FnMut(Option<(u32, u64)>),
    ) {
        let mut likely: [Option<&Slot>; BATCH] = [None; BATCH];
        for (slot, key) in likely.iter_mut().zip(keys) {
            let hash = self.hasher.hash_one(key);
            *slot = self
                .table
                .find(hash, |_| true)
                .map(|&i| &self.slots[i as usize]);
        }
        for slot in likely.iter().flatten() {
            prefetch::line(&slot.data[0]);
        }
        for key in keys {
            hit(self.get(key, now, out));
        }
    }

    #[inline]
    fn get(&self, key: &[u8], now: u32, out: &mut Vec<u8>) -> Option<(u32, u64)> {
        let hash = self.hasher.hash_one(key);
        let &i = self.table.find(hash, |&i| self.holds(i, key))?;
        self.read(i, now, out)
    }

    #[inline]
    fn holds(&self, i: u32, key: &[u8]) -> bool {
        let s = &self.slots[i as usize];
        &s.data[..usize::from(s.key_len)] == key
    }

    /// A found item's value, flags and CAS, unless it has expired.
    #[inline]
    fn read(&self, i: u32, now: u32, out: &mut Vec<u8>) -> Option<(u32, u64)> {
        let s = &self.slots[i as usize];
        if s.expires_at <= now {
            return None;
        }
        let start = usize::from(s.key_len);
        out.extend_from_slice(&s.data[start..start + s.value_len as usize]);
        Some((s.flags, s.cas))
    }
}

/// Offsets of the header fields the GET reads.
const CAS: usize = 0;
const EXPIRES: usize = 8;
const FLAGS: usize = 12;
const VALUE_LEN_AT: usize = 16;
const KEY_LEN_AT: usize = 20;

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

struct HeaderLayout {
    table: HashTable<Box<[u8]>>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl HeaderLayout {
    fn new(keys: &[[u8; KEY_LEN]], value: &[u8]) -> Self {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let mut table: HashTable<Box<[u8]>> = HashTable::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let mut data = vec![0u8; META];
            data[CAS..CAS + 8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            data[EXPIRES..EXPIRES + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            data[FLAGS..FLAGS + 4].copy_from_slice(&(i as u32).to_le_bytes());
            data[VALUE_LEN_AT..VALUE_LEN_AT + 4]
                .copy_from_slice(&(value.len() as u32).to_le_bytes());
            data[KEY_LEN_AT..KEY_LEN_AT + 2].copy_from_slice(&(KEY_LEN as u16).to_le_bytes());
            data.extend_from_slice(k);
            data.extend_from_slice(value);
            let hash = hasher.hash_one(k);
            table.insert_unique(hash, data.into_boxed_slice(), |d| {
                hasher.hash_one(&d[META..META + KEY_LEN])
            });
        }
        HeaderLayout { table, hasher }
    }

    #[inline]
    fn get(&self, key: &[u8], now: u32, out: &mut Vec<u8>) -> Option<(u32, u64)> {
        let hash = self.hasher.hash_one(key);
        let d = self.table.find(hash, |d| {
            let key_len = usize::from(u16::from_le_bytes([d[KEY_LEN_AT], d[KEY_LEN_AT + 1]]));
            &d[META..META + key_len] == key
        })?;
        if u32_at(d, EXPIRES) <= now {
            return None;
        }
        let start = META + usize::from(u16::from_le_bytes([d[KEY_LEN_AT], d[KEY_LEN_AT + 1]]));
        out.extend_from_slice(&d[start..start + u32_at(d, VALUE_LEN_AT) as usize]);
        let cas = u64::from_le_bytes(d[CAS..CAS + 8].try_into().expect("8 bytes"));
        Some((u32_at(d, FLAGS), cas))
    }
}

/// What a server does between two lookups besides the lookup: the
/// kernel's socket buffers, the connection's buffers. Each hit is followed
/// by writing `per_hit` bytes of a 64 MiB ring, which pushes the table's
/// and the items' lines out of the small caches as a server's other work
/// does. Without it the loop keeps much of the table in L2 and prices a
/// miss below what a server pays.
struct Churn {
    ring: Vec<u8>,
    at: usize,
    per_hit: usize,
}

impl Churn {
    fn new(per_hit: usize) -> Self {
        Churn {
            ring: vec![0; if per_hit > 0 { 64 << 20 } else { 0 }],
            at: 0,
            per_hit,
        }
    }

    #[inline(always)]
    fn touch(&mut self) {
        if self.per_hit == 0 {
            return;
        }
        if self.at + self.per_hit > self.ring.len() {
            self.at = 0;
        }
        self.ring[self.at..self.at + self.per_hit].fill(self.at as u8);
        self.at += self.per_hit;
    }
}

/// The hits' loop, inlined into each layout's own function below.
#[inline(always)]
fn hits(
    get: impl Fn(&[u8], &mut Vec<u8>) -> Option<(u32, u64)>,
    keys: &[[u8; KEY_LEN]],
    order: &[u32],
    churn: &mut Churn,
) -> usize {
    let mut out = Vec::with_capacity(VALUE_LEN);
    let mut bytes = 0;
    for &i in order {
        out.clear();
        let hit = black_box(get(&keys[i as usize], &mut out));
        assert_eq!(hit.map(|(flags, _)| flags), Some(i));
        bytes += out.len();
        churn.touch();
    }
    bytes
}

#[inline(never)]
fn slot_hits(
    layout: &SlotLayout,
    keys: &[[u8; KEY_LEN]],
    order: &[u32],
    churn: &mut Churn,
) -> usize {
    hits(|key, out| layout.get(key, 1, out), keys, order, churn)
}

#[inline(never)]
fn header_hits(
    layout: &HeaderLayout,
    keys: &[[u8; KEY_LEN]],
    order: &[u32],
    churn: &mut Churn,
) -> usize {
    hits(|key, out| layout.get(key, 1, out), keys, order, churn)
}

/// The hits again, [`BATCH`] at a time through
/// [`SlotLayout::get_batch`], the churn after each hit as before.
#[inline(never)]
fn batch_hits(
    layout: &SlotLayout,
    keys: &[[u8; KEY_LEN]],
    order: &[u32],
    churn: &mut Churn,
) -> usize {
    let mut out = Vec::with_capacity(VALUE_LEN * BATCH);
    let mut bytes = 0;
    for batch in order.chunks(BATCH) {
        out.clear();
        let mut batch_keys: [&[u8]; BATCH] = [&[]; BATCH];
        for (k, &i) in batch_keys.iter_mut().zip(batch) {
            *k = &keys[i as usize];
        }
        let mut expected = batch.iter();
        layout.get_batch(&batch_keys[..batch.len()], 1, &mut out, |hit| {
            let want = expected.next().copied();
            assert_eq!(black_box(hit).map(|(flags, _)| flags), want);
            churn.touch();
        });
        bytes += out.len();
    }
    bytes
}

fn ns_per_hit(start: Instant) -> f64 {
    start.elapsed().as_nanos() as f64 / LOOKUPS as f64
}

#[test]
fn layout() {
    let items = std::env::var("LAYOUT_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ITEMS)
        .max(LOOKUPS);
    let keys: Vec<[u8; KEY_LEN]> = (0..items)
        .map(|i| {
            let text = format!("key:{i:012}");
            text.as_bytes().try_into().expect("16-byte key")
        })
        .collect();
    let value = [b'v'; VALUE_LEN];
    let slot = SlotLayout::new(&keys, &value);
    let header = HeaderLayout::new(&keys, &value);
    // Every hit a different key (a random sample of `LOOKUPS`), so the
    // lookups touch unrelated memory, as a server's would.
    let order = shuffled(items, 7);
    let order = &order[..LOOKUPS];
    let churn_bytes = std::env::var("LAYOUT_CHURN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut churn = Churn::new(churn_bytes);
    let mut times = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let start = Instant::now();
        assert_eq!(
            slot_hits(&slot, &keys, order, &mut churn),
            LOOKUPS * VALUE_LEN
        );
        times.0.push(ns_per_hit(start));
        let start = Instant::now();
        assert_eq!(
            header_hits(&header, &keys, order, &mut churn),
            LOOKUPS * VALUE_LEN
        );
        times.1.push(ns_per_hit(start));
        let start = Instant::now();
        assert_eq!(
            batch_hits(&slot, &keys, order, &mut churn),
            LOOKUPS * VALUE_LEN
        );
        times.2.push(ns_per_hit(start));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, h, b) = (
        median(&mut times.0),
        median(&mut times.1),
        median(&mut times.2),
    );
    println!(
        "{items} items, {churn_bytes} bytes churned a hit, ns per hit, median of 5 interleaved rounds: slot {s:.1}, header {h:.1} ({:.2}x), slot batched by {BATCH} {b:.1} ({:.2}x)",
        h / s,
        b / s
    );
}
