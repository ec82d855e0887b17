//! memcached's meta commands on a partition (`mg`, `ms`, `md`, `ma`), and
//! the store, delete and counter rules the classic commands share with
//! them: a classic command runs as its meta form with the extra options off.
//!
//! The rules are memcached 1.6's (`proto_text.c`, `do_store_item`,
//! `do_add_delta`); where memcached's answer depends on the order of the
//! request's flags, the choice made is written where it applies and in
//! docs/STORAGE.md.
//!
//! Must not: read a clock, allocate on a meta read that creates nothing, or
//! change anything when a command fails (a refused store leaves the old item
//! as it was).

use super::{NewItem, Partition, Refused, Removal, deadline, secs};
use crate::command::{
    Expiry, ItemInfo, MetaArith, MetaDelete, MetaRead, MetaStatus, MetaStore, Outcome, StoreMode,
};
use crate::storage::item::{FETCHED, NEVER, STALE, WIN_SENT};

/// Why a store, delete or counter update changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// No live item, and a CAS asked for one (or a delete had nothing).
    NotFound,
    /// The CAS given is not the item's.
    Exists,
    /// The mode's condition failed.
    NotStored,
    /// A counter could not be created: meta says NOT_STORED, the classic
    /// commands why.
    NotCreated(Refused),
    /// A counter update found a value that is not a decimal number.
    NonNumeric,
    /// Larger than the item-size limit or than an item can hold.
    TooLarge,
    /// Cannot fit the budget even alone.
    NoRoom,
}

impl From<Refused> for Failure {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::TooLarge => Failure::TooLarge,
            Refused::NoRoom => Failure::NoRoom,
        }
    }
}

impl Failure {
    fn status(self) -> MetaStatus {
        match self {
            Failure::NotFound => MetaStatus::NotFound,
            Failure::Exists => MetaStatus::Exists,
            Failure::NotStored | Failure::NotCreated(_) => MetaStatus::NotStored,
            Failure::NonNumeric => MetaStatus::NonNumeric,
            Failure::TooLarge => MetaStatus::TooLarge,
            Failure::NoRoom => MetaStatus::NoRoom,
        }
    }

    /// The classic commands' word for it.
    pub(super) fn outcome<V>(self) -> Outcome<V> {
        match self {
            Failure::NotFound => Outcome::NotFound,
            Failure::Exists => Outcome::Exists,
            Failure::NotStored => Outcome::NotStored,
            Failure::NonNumeric => Outcome::NonNumeric,
            Failure::TooLarge | Failure::NotCreated(Refused::TooLarge) => Outcome::TooLarge,
            Failure::NoRoom | Failure::NotCreated(Refused::NoRoom) => Outcome::NoRoom,
        }
    }

    /// The meta answer: nothing known of the item.
    fn meta<'a>(self) -> Outcome<&'a [u8]> {
        Outcome::Meta {
            status: self.status(),
            info: ItemInfo::default(),
            value: &[],
        }
    }
}

/// A counter's value, read as memcached reads it (`safe_strtoull` over
/// the item's data): leading zeros of any length, whitespace around, and
/// anything after whitespace are all accepted.
pub(super) fn parse_counter(value: &[u8]) -> Option<u64> {
    crate::decimal::parse_u64(value)
}

/// A u64 as decimal text, formatted on the stack.
fn decimal(value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    let mut v = value;
    loop {
        start -= 1;
        buf[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[start..]
}

impl Partition {
    /// What item `idx` is now. A read replaces `idle`, `fetched` and
    /// `win_sent` with what it saw before it acted.
    fn info(&self, idx: u32, now_ms: u64) -> ItemInfo {
        let item = &self.items[idx as usize];
        let now = secs(now_ms);
        ItemInfo {
            flags: item.flags(),
            cas: item.cas(),
            ttl: (item.expires_at() != NEVER).then(|| item.expires_at().saturating_sub(now)),
            idle: now.saturating_sub(item.atime()),
            size: item.value_len(),
            fetched: item.has(FETCHED),
            stale: item.has(STALE),
            won: false,
            win_sent: item.has(WIN_SENT),
        }
    }

    /// A meta read (`mg`): the item's facts, its value if asked, and
    /// whether this client won the right to recache it.
    pub(super) fn meta_read(&mut self, read: &MetaRead, key: &[u8], now_ms: u64) -> Outcome<&[u8]> {
        let miss = Outcome::Meta {
            status: MetaStatus::Miss,
            info: ItemInfo::default(),
            value: &[][..],
        };
        let (idx, created) = match self.find_live(key, now_ms, true) {
            Some(idx) => (idx, false),
            None => {
                let Some(expiry) = read.vivify else {
                    return miss;
                };
                let new = NewItem {
                    flags: 0,
                    expires_at: deadline(expiry, now_ms),
                    cas: read.new_cas,
                    bits: 0,
                };
                // memcached answers a vivify it cannot allocate as a miss.
                let Ok(idx) = self.insert(key, &[], &new, now_ms) else {
                    return miss;
                };
                self.stats.total_items += 1;
                (idx, true)
            }
        };
        let before = self.info(idx, now_ms);
        let item = &self.items[idx as usize];
        // R asks about the life the item had when found: a touch in the
        // same request (memcached applies T and R in the order sent) does
        // not change whether it wins.
        let short_lived = read.recache_below.is_some_and(|below| {
            item.expires_at() != NEVER && item.expires_at().saturating_sub(secs(now_ms)) < below
        });
        // One win per item until it is stored or invalidated again: the
        // vivifier's, a short-lived item's first reader's, or a stale
        // item's first reader's.
        let won = created || (!before.win_sent && (short_lived || item.has(STALE)));
        // T touches an item that was found; one created here keeps N's
        // expiry (memcached applies N and T in the order sent).
        if !created && let Some(expiry) = read.touch {
            self.set_deadline(idx, deadline(expiry, now_ms));
        }
        if won {
            self.items[idx as usize].set_bits(WIN_SENT);
        }
        if !read.no_bump {
            self.bump(idx, now_ms);
            self.items[idx as usize].set_bits(FETCHED);
        }
        let info = ItemInfo {
            idle: before.idle,
            fetched: before.fetched,
            win_sent: before.win_sent,
            won,
            ..self.info(idx, now_ms)
        };
        let item = &self.items[idx as usize];
        Outcome::Meta {
            status: MetaStatus::Hit,
            info,
            value: if read.value { item.value() } else { &[] },
        }
    }

    /// A meta store (`ms`).
    pub(super) fn meta_store(
        &mut self,
        req: &MetaStore,
        key: &[u8],
        value: &[u8],
        now_ms: u64,
    ) -> Outcome<&[u8]> {
        match self.store_item(req, key, value, now_ms) {
            Ok(idx) => Outcome::Meta {
                status: MetaStatus::Stored,
                info: self.info(idx, now_ms),
                value: &[],
            },
            Err(failure) => failure.meta(),
        }
    }

    /// Stores `value` under `key` as memcached's `do_store_item` does for
    /// `req`'s mode and CAS. Returns the stored item's index.
    pub(super) fn store_item(
        &mut self,
        req: &MetaStore,
        key: &[u8],
        value: &[u8],
        now_ms: u64,
    ) -> Result<u32, Failure> {
        let Some(idx) = self.find_live(key, now_ms, false) else {
            let expiry = match req.mode {
                // A CAS needs an item to compare with.
                StoreMode::Set | StoreMode::Replace if req.cas.is_some() => {
                    return Err(Failure::NotFound);
                }
                // ADD takes no notice of a CAS, as memcached's meta ADD.
                StoreMode::Set | StoreMode::Add => req.expiry,
                StoreMode::Replace => return Err(Failure::NotStored),
                StoreMode::Append | StoreMode::Prepend => req.vivify.ok_or(Failure::NotStored)?,
            };
            let new = NewItem {
                flags: req.flags,
                expires_at: deadline(expiry, now_ms),
                cas: req.new_cas,
                bits: 0,
            };
            let idx = self.insert(key, &[value], &new, now_ms)?;
            self.stats.total_items += 1;
            return Ok(idx);
        };
        let item = &self.items[idx as usize];
        let matches = req.cas.is_none_or(|cas| cas == item.cas());
        let mut new = NewItem {
            flags: req.flags,
            expires_at: deadline(req.expiry, now_ms),
            cas: req.new_cas,
            bits: 0,
        };
        let idx = match req.mode {
            StoreMode::Add => {
                // memcached's failed ADD still counts as an access.
                self.bump(idx, now_ms);
                return Err(Failure::NotStored);
            }
            StoreMode::Set | StoreMode::Replace if matches => {
                self.rewrite(idx, &[value], &new, now_ms)?
            }
            // An invalidating store with an older CAS is accepted and marked
            // stale; it keeps the item's expiry and any win handed out.
            StoreMode::Set | StoreMode::Replace
                if req.invalidate && req.cas.is_some_and(|cas| cas < item.cas()) =>
            {
                new.expires_at = item.expires_at();
                new.bits = STALE | item.bits(WIN_SENT);
                self.rewrite(idx, &[value], &new, now_ms)?
            }
            StoreMode::Set | StoreMode::Replace => return Err(Failure::Exists),
            StoreMode::Append | StoreMode::Prepend if !matches => return Err(Failure::Exists),
            StoreMode::Append | StoreMode::Prepend => {
                if item.value().len().saturating_add(value.len()) > self.max_value_len {
                    return Err(Failure::TooLarge);
                }
                new.flags = item.flags();
                new.expires_at = item.expires_at();
                let old = item.value().to_vec();
                let parts: [&[u8]; 2] = if req.mode == StoreMode::Append {
                    [&old, value]
                } else {
                    [value, &old]
                };
                self.rewrite(idx, &parts, &new, now_ms)?
            }
        };
        self.stats.total_items += 1;
        Ok(idx)
    }

    /// A meta delete (`md`).
    pub(super) fn meta_delete(
        &mut self,
        req: &MetaDelete,
        key: &[u8],
        now_ms: u64,
    ) -> Outcome<&[u8]> {
        match self.delete_item(req, key, now_ms) {
            Ok(kept) => Outcome::Meta {
                status: MetaStatus::Deleted,
                info: kept.map_or_else(ItemInfo::default, |idx| self.info(idx, now_ms)),
                value: &[],
            },
            Err(failure) => failure.meta(),
        }
    }

    /// Deletes, empties (`x`) or invalidates (`I`) the item under `key`.
    /// Returns the index of the item when it is kept.
    pub(super) fn delete_item(
        &mut self,
        req: &MetaDelete,
        key: &[u8],
        now_ms: u64,
    ) -> Result<Option<u32>, Failure> {
        let mut idx = self
            .find_live(key, now_ms, false)
            .ok_or(Failure::NotFound)?;
        let cas = self.items[idx as usize].cas();
        if req.cas.is_some_and(|want| want != cas) {
            return Err(Failure::Exists);
        }
        if !req.invalidate && !req.clear_value {
            self.remove(idx, Removal::Deleted);
            return Ok(None);
        }
        if req.clear_value {
            // memcached stores a fresh empty item: client flags 0, the
            // request's T or no expiry, the item's CAS unless E gives one.
            let new = NewItem {
                flags: 0,
                expires_at: deadline(req.expiry.unwrap_or(Expiry::Never), now_ms),
                cas: if req.new_cas != 0 { req.new_cas } else { cas },
                bits: 0,
            };
            // Smaller than the item it replaces, so it always fits.
            idx = self.rewrite(idx, &[], &new, now_ms)?;
        }
        if req.invalidate {
            if let Some(expiry) = req.expiry {
                self.set_deadline(idx, deadline(expiry, now_ms));
            }
            let cas = self.cas_or_next(req.new_cas);
            let item = &mut self.items[idx as usize];
            item.set_cas(cas);
            item.set_bits(STALE);
            // The next reader wins the recache, whoever won before.
            item.clear_bits(WIN_SENT);
        }
        Ok(Some(idx))
    }

    /// A meta counter update (`ma`); the value is the counter's digits.
    pub(super) fn meta_arith(
        &mut self,
        req: &MetaArith,
        key: &[u8],
        now_ms: u64,
    ) -> Outcome<&[u8]> {
        match self.arith_item(req, key, now_ms) {
            Ok((idx, _)) => {
                let info = self.info(idx, now_ms);
                Outcome::Meta {
                    status: MetaStatus::Stored,
                    info,
                    value: self.items[idx as usize].value(),
                }
            }
            Err(failure) => failure.meta(),
        }
    }

    /// Adds to or subtracts from the counter under `key`, creating it from
    /// `req.initial` on a miss if asked. Returns its index and new value.
    pub(super) fn arith_item(
        &mut self,
        req: &MetaArith,
        key: &[u8],
        now_ms: u64,
    ) -> Result<(u32, u64), Failure> {
        let mut digits = [0u8; 20];
        let Some(idx) = self.find_live(key, now_ms, false) else {
            let expiry = req.vivify.ok_or(Failure::NotFound)?;
            // A created counter holds the initial value, the delta unapplied
            // (memcached's), and keeps N's expiry over T.
            let new = NewItem {
                flags: 0,
                expires_at: deadline(expiry, now_ms),
                cas: req.new_cas,
                bits: 0,
            };
            let text = decimal(req.initial, &mut digits);
            let idx = self
                .insert(key, &[text], &new, now_ms)
                .map_err(Failure::NotCreated)?;
            self.stats.total_items += 1;
            return Ok((idx, req.initial));
        };
        let item = &self.items[idx as usize];
        // memcached's order: an empty value is not a number whatever the
        // CAS says; then the CAS; then the digits.
        if item.value().is_empty() {
            return Err(Failure::NonNumeric);
        }
        if req.cas.is_some_and(|want| want != item.cas()) {
            return Err(Failure::Exists);
        }
        let current = parse_counter(item.value()).ok_or(Failure::NonNumeric)?;
        let value = if req.incr {
            current.wrapping_add(req.delta)
        } else {
            current.saturating_sub(req.delta)
        };
        let new = NewItem {
            flags: item.flags(),
            expires_at: req
                .touch
                .map_or(item.expires_at(), |expiry| deadline(expiry, now_ms)),
            cas: req.new_cas,
            // memcached updates a counter in place, marks and all.
            bits: item.bits(STALE | WIN_SENT),
        };
        let text = decimal(value, &mut digits);
        let idx = self.rewrite(idx, &[text], &new, now_ms)?;
        Ok((idx, value))
    }

    /// Removes the key without counting a delete.
    pub(super) fn unlink_key(&mut self, key: &[u8], now_ms: u64) -> Outcome<&[u8]> {
        match self.find_live(key, now_ms, false) {
            Some(idx) => {
                self.remove(idx, Removal::Deleted);
                Outcome::Deleted
            }
            None => Outcome::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{check_accounting, get, run};
    use super::*;
    use crate::command::Op;
    use crate::storage::item::VISITED;

    /// A meta command's status, facts and value.
    fn meta(
        p: &mut Partition,
        op: Op,
        key: &[u8],
        value: &[u8],
        now: u64,
    ) -> (MetaStatus, ItemInfo, Vec<u8>) {
        match run(p, op, key, value, now) {
            Outcome::Meta {
                status,
                info,
                value,
            } => (status, info, value),
            other => panic!("not a meta outcome: {other:?}"),
        }
    }

    fn mg(read: MetaRead) -> Op {
        Op::MetaRead(read)
    }

    fn with_value() -> MetaRead {
        MetaRead {
            value: true,
            ..MetaRead::default()
        }
    }

    fn ms(mode: StoreMode) -> MetaStore {
        MetaStore {
            mode,
            flags: 0,
            expiry: Expiry::Never,
            cas: None,
            new_cas: 0,
            invalidate: false,
            vivify: None,
        }
    }

    fn ma(incr: bool) -> MetaArith {
        MetaArith {
            incr,
            delta: 1,
            initial: 0,
            vivify: None,
            cas: None,
            new_cas: 0,
            touch: None,
        }
    }

    fn status_of(p: &mut Partition, op: Op, key: &[u8], value: &[u8], now: u64) -> MetaStatus {
        meta(p, op, key, value, now).0
    }

    #[test]
    fn a_read_reports_the_item_as_it_was_before_the_read() {
        let mut p = Partition::new();
        let (status, info, value) = meta(&mut p, mg(with_value()), b"k", b"", 0);
        assert_eq!(
            (status, info, value),
            (MetaStatus::Miss, ItemInfo::default(), vec![])
        );
        let cas = p.set(b"k", b"hello", 7, 100, 1_000);
        let (status, info, value) = meta(&mut p, mg(with_value()), b"k", b"", 6_500);
        assert_eq!(status, MetaStatus::Hit);
        assert_eq!(value, b"hello");
        assert_eq!(
            info,
            ItemInfo {
                flags: 7,
                cas,
                ttl: Some(95),
                idle: 5,
                size: 5,
                fetched: false,
                stale: false,
                won: false,
                win_sent: false,
            }
        );
        // The read bumped the access time and marked the item fetched.
        let (_, info, _) = meta(&mut p, mg(MetaRead::default()), b"k", b"", 9_000);
        assert_eq!((info.idle, info.fetched), (3, true));
        let (_, info, value) = meta(&mut p, mg(MetaRead::default()), b"k", b"", 9_000);
        assert_eq!((info.idle, info.ttl), (0, Some(92)));
        assert!(value.is_empty(), "no value unless asked");
        p.set(b"never", b"", 0, 0, 0);
        let (_, info, _) = meta(&mut p, mg(MetaRead::default()), b"never", b"", 0);
        assert_eq!(info.ttl, None);
    }

    #[test]
    fn no_bump_leaves_access_time_fetched_and_eviction_credit_alone() {
        let mut p = Partition::new();
        p.set(b"k", b"v", 0, 0, 0);
        let quiet = MetaRead {
            no_bump: true,
            ..with_value()
        };
        for now in [2_000, 4_000] {
            let (status, info, value) = meta(&mut p, mg(quiet), b"k", b"", now);
            assert_eq!((status, value), (MetaStatus::Hit, b"v".to_vec()));
            assert_eq!(
                (info.idle, info.fetched),
                (u32::try_from(now / 1000).unwrap(), false)
            );
        }
        let idx = p.find(b"k").unwrap();
        assert!(!p.items[idx as usize].has(VISITED | FETCHED));
        meta(&mut p, mg(with_value()), b"k", b"", 5_000);
        assert!(p.items[idx as usize].has(VISITED | FETCHED));
    }

    #[test]
    fn vivify_creates_an_empty_item_and_hands_out_one_win() {
        let mut p = Partition::new();
        let read = MetaRead {
            vivify: Some(Expiry::After(30)),
            touch: Some(Expiry::After(300)),
            new_cas: 555,
            ..with_value()
        };
        let (status, info, value) = meta(&mut p, mg(read), b"k", b"", 1_000);
        assert_eq!(status, MetaStatus::Hit);
        assert!(value.is_empty());
        assert_eq!(
            info,
            ItemInfo {
                flags: 0,
                cas: 555,
                ttl: Some(30),
                idle: 0,
                size: 0,
                fetched: false,
                stale: false,
                won: true,
                win_sent: false,
            },
            "created with N's expiry, not T's, and E's CAS"
        );
        // Everyone after sees that a win went out, and wins nothing.
        let (status, info, _) = meta(&mut p, mg(read), b"k", b"", 2_000);
        assert_eq!(status, MetaStatus::Hit);
        assert!(!info.won && info.win_sent && info.fetched);
        assert_eq!(info.ttl, Some(300), "T touches an item that was there");
        // The winner's store clears the marks.
        assert_eq!(
            status_of_set(&mut p, b"k", b"fresh", 3_000),
            MetaStatus::Stored
        );
        let (_, info, value) = meta(&mut p, mg(read), b"k", b"", 3_000);
        assert!(!info.won && !info.win_sent);
        assert_eq!(value, b"fresh");
        assert_eq!(p.stats().total_items, 2);
        check_accounting(&p);
    }

    fn status_of_set(p: &mut Partition, key: &[u8], value: &[u8], now: u64) -> MetaStatus {
        status_of(p, Op::MetaStore(ms(StoreMode::Set)), key, value, now)
    }

    #[test]
    fn recache_wins_once_when_the_remaining_life_is_shorter_than_asked() {
        let mut p = Partition::new();
        p.set(b"k", b"v", 0, 100, 0);
        p.set(b"forever", b"v", 0, 0, 0);
        let read = MetaRead {
            recache_below: Some(30),
            ..MetaRead::default()
        };
        let won = |p: &mut Partition, key: &[u8], now| meta(p, mg(read), key, b"", now).1;
        assert!(!won(&mut p, b"k", 0).won, "100 s left");
        assert!(!won(&mut p, b"k", 70_000).won, "30 s left is not below 30");
        let info = won(&mut p, b"k", 71_000);
        assert!(info.won && !info.win_sent);
        let info = won(&mut p, b"k", 72_000);
        assert!(!info.won && info.win_sent, "one win per item");
        assert!(
            !won(&mut p, b"forever", 0).won,
            "no expiry, nothing to recache"
        );
    }

    #[test]
    fn a_stale_item_wins_its_first_reader_until_stored_again() {
        let mut p = Partition::new();
        let cas = p.set(b"k", b"old", 3, 0, 0);
        let invalidate = MetaDelete {
            invalidate: true,
            ..MetaDelete::default()
        };
        let (status, info, _) = meta(&mut p, Op::MetaDelete(invalidate), b"k", b"", 0);
        assert_eq!(status, MetaStatus::Deleted);
        assert!(info.stale && info.cas > cas);
        let (_, first, value) = meta(&mut p, mg(with_value()), b"k", b"", 0);
        assert_eq!(value, b"old", "a stale item still serves its value");
        assert!(first.stale && first.won && !first.win_sent);
        let (_, second, _) = meta(&mut p, mg(with_value()), b"k", b"", 0);
        assert!(second.stale && !second.won && second.win_sent);
        // Invalidating again hands the next reader a new win.
        meta(&mut p, Op::MetaDelete(invalidate), b"k", b"", 0);
        let (_, again, _) = meta(&mut p, mg(with_value()), b"k", b"", 0);
        assert!(again.won && !again.win_sent);
        status_of_set(&mut p, b"k", b"new", 0);
        let (_, fresh, _) = meta(&mut p, mg(with_value()), b"k", b"", 0);
        assert!(!fresh.stale && !fresh.won && !fresh.win_sent);
    }

    #[test]
    fn store_modes_and_cas() {
        let mut p = Partition::new();
        let store = |mode, cas| {
            Op::MetaStore(MetaStore {
                cas: (cas != 0).then_some(cas),
                flags: 9,
                ..ms(mode)
            })
        };
        let refused = |p: &mut Partition, cases: &[(StoreMode, u64, MetaStatus)]| {
            for &(mode, cas, want) in cases {
                let got = status_of(p, store(mode, cas), b"k", b"x", 0);
                assert_eq!(got, want, "{mode:?} with CAS {cas}");
            }
        };
        refused(
            &mut p,
            &[
                (StoreMode::Replace, 0, MetaStatus::NotStored),
                (StoreMode::Append, 0, MetaStatus::NotStored),
                (StoreMode::Set, 5, MetaStatus::NotFound),
                (StoreMode::Replace, 5, MetaStatus::NotFound),
                (StoreMode::Append, 5, MetaStatus::NotStored),
            ],
        );
        // A meta ADD takes no notice of a CAS, either way.
        let (status_add, info, _) = meta(&mut p, store(StoreMode::Add, 5), b"k", b"ab", 0);
        assert_eq!(
            (status_add, info.flags, info.size),
            (MetaStatus::Stored, 9, 2)
        );
        let cas = info.cas;
        refused(
            &mut p,
            &[
                (StoreMode::Add, cas, MetaStatus::NotStored),
                (StoreMode::Set, cas + 1, MetaStatus::Exists),
                (StoreMode::Append, cas + 1, MetaStatus::Exists),
            ],
        );
        let (_, info, _) = meta(&mut p, store(StoreMode::Append, cas), b"k", b"cd", 0);
        assert_eq!(info.size, 4, "the new size after an append");
        let append = Op::MetaStore(MetaStore {
            flags: 1,
            expiry: Expiry::After(5),
            ..ms(StoreMode::Prepend)
        });
        let (_, info, _) = meta(&mut p, append, b"k", b"_", 0);
        assert_eq!(
            (info.flags, info.ttl, info.size),
            (9, None, 5),
            "flags and expiry kept"
        );
        assert_eq!(get(&mut p, b"k", 0), Some(b"_abcd".to_vec()));
        let (_, info, _) = meta(&mut p, store(StoreMode::Replace, 0), b"k", b"r", 0);
        assert_eq!((info.size, info.fetched, info.idle), (1, false, 0));
        check_accounting(&p);
    }

    #[test]
    fn an_explicit_cas_is_stored_as_given() {
        let mut p = Partition::for_worker(1, 4, 1024, u64::MAX);
        let store = Op::MetaStore(MetaStore {
            new_cas: 1,
            ..ms(StoreMode::Set)
        });
        assert_eq!(meta(&mut p, store, b"k", b"v", 0).1.cas, 1);
        let append = Op::MetaStore(MetaStore {
            new_cas: u64::MAX,
            ..ms(StoreMode::Append)
        });
        assert_eq!(meta(&mut p, append, b"k", b"w", 0).1.cas, u64::MAX);
        // Without E the partition's own sequence goes on: 2, 6, 10, …
        assert_eq!(
            meta(&mut p, Op::MetaStore(ms(StoreMode::Set)), b"j", b"v", 0)
                .1
                .cas,
            2
        );
    }

    #[test]
    fn an_item_stored_after_a_flush_lives_whatever_its_cas() {
        let mut p = Partition::new();
        for i in 0..10u8 {
            p.set(&[i], b"v", 0, 0, 0);
        }
        p.flush(0, 0);
        let store = Op::MetaStore(MetaStore {
            new_cas: 1,
            ..ms(StoreMode::Set)
        });
        assert_eq!(
            status_of(&mut p, store, b"low", b"v", 0),
            MetaStatus::Stored
        );
        assert_eq!(get(&mut p, b"low", 0), Some(b"v".to_vec()));
        assert_eq!(get(&mut p, &[3], 0), None);
        check_accounting(&p);
    }

    #[test]
    fn an_invalidating_store_with_an_older_cas_is_kept_but_stale() {
        let mut p = Partition::new();
        let first = p.set(b"k", b"v1", 0, 60, 0);
        let second = p.set(b"k", b"v2", 0, 60, 0);
        // A win is out when the late write arrives.
        let read = MetaRead {
            recache_below: Some(100),
            ..MetaRead::default()
        };
        assert!(meta(&mut p, mg(read), b"k", b"", 0).1.won);
        let late = |cas| {
            Op::MetaStore(MetaStore {
                cas: Some(cas),
                invalidate: true,
                expiry: Expiry::After(999),
                flags: 4,
                ..ms(StoreMode::Set)
            })
        };
        assert_eq!(
            status_of(&mut p, late(second + 1), b"k", b"v3", 0),
            MetaStatus::Exists
        );
        let (status, info, _) = meta(&mut p, late(first), b"k", b"old", 10_000);
        assert_eq!(status, MetaStatus::Stored);
        assert!(
            info.stale && info.win_sent,
            "marked stale, the win still out"
        );
        assert_eq!(
            (info.ttl, info.flags),
            (Some(50), 4),
            "the item's expiry, the new flags"
        );
        assert_eq!(get(&mut p, b"k", 10_000), Some(b"old".to_vec()));
        // Without a CAS, I changes nothing: a plain store.
        let plain = Op::MetaStore(MetaStore {
            invalidate: true,
            ..ms(StoreMode::Set)
        });
        let (_, info, _) = meta(&mut p, plain, b"k", b"new", 10_000);
        assert!(!info.stale && !info.win_sent);
        // A matching CAS with I is a plain compare-and-swap.
        let (_, info, _) = meta(&mut p, late(info.cas), b"k", b"newer", 10_000);
        assert!(!info.stale);
        check_accounting(&p);
    }

    #[test]
    fn append_with_vivify_creates_on_a_miss() {
        let mut p = Partition::for_worker(0, 1, 4, u64::MAX);
        let append = |mode| {
            Op::MetaStore(MetaStore {
                flags: 3,
                expiry: Expiry::After(999),
                vivify: Some(Expiry::After(20)),
                ..ms(mode)
            })
        };
        let (status, info, _) = meta(&mut p, append(StoreMode::Append), b"k", b"ab", 0);
        assert_eq!(status, MetaStatus::Stored);
        assert_eq!(
            (info.flags, info.ttl, info.size),
            (3, Some(20), 2),
            "N's expiry, not T's"
        );
        let (_, info, _) = meta(&mut p, append(StoreMode::Prepend), b"k", b"_", 5_000);
        assert_eq!(
            (info.ttl, info.size),
            (Some(15), 3),
            "an existing item keeps its expiry"
        );
        assert_eq!(
            status_of(&mut p, append(StoreMode::Append), b"k", b"cd", 5_000),
            MetaStatus::TooLarge
        );
        assert_eq!(get(&mut p, b"k", 5_000), Some(b"_ab".to_vec()));
    }

    #[test]
    fn delete_with_cas() {
        let mut p = Partition::new();
        let delete = |cas: u64| {
            Op::MetaDelete(MetaDelete {
                cas: (cas != 0).then_some(cas),
                ..MetaDelete::default()
            })
        };
        assert_eq!(
            status_of(&mut p, delete(0), b"k", b"", 0),
            MetaStatus::NotFound
        );
        let cas = p.set(b"k", b"v", 0, 0, 0);
        assert_eq!(
            status_of(&mut p, delete(cas + 1), b"k", b"", 0),
            MetaStatus::Exists
        );
        let (status, info, _) = meta(&mut p, delete(cas), b"k", b"", 0);
        assert_eq!((status, info), (MetaStatus::Deleted, ItemInfo::default()));
        assert!(p.is_empty());
        check_accounting(&p);
    }

    #[test]
    fn invalidate_keeps_the_item_with_a_new_cas_and_maybe_a_new_expiry() {
        let mut p = Partition::new();
        let cas = p.set(b"k", b"v", 8, 100, 0);
        let invalidate = |expiry, new_cas| {
            Op::MetaDelete(MetaDelete {
                invalidate: true,
                expiry,
                new_cas,
                ..MetaDelete::default()
            })
        };
        let (_, info, _) = meta(&mut p, invalidate(None, 0), b"k", b"", 10_000);
        assert!(info.stale && info.cas > cas);
        assert_eq!((info.ttl, info.flags, info.size), (Some(90), 8, 1));
        let (_, info, _) = meta(
            &mut p,
            invalidate(Some(Expiry::After(5)), 77),
            b"k",
            b"",
            10_000,
        );
        assert_eq!((info.ttl, info.cas), (Some(5), 77));
        assert_eq!(get(&mut p, b"k", 14_999), Some(b"v".to_vec()));
        assert_eq!(
            get(&mut p, b"k", 15_000),
            None,
            "the stale item lives only T"
        );
        check_accounting(&p);
    }

    #[test]
    fn clear_value_leaves_an_empty_item() {
        let mut p = Partition::new();
        let cas = p.set(b"k", b"value", 8, 100, 0);
        let clear = |expiry, new_cas, invalidate| {
            Op::MetaDelete(MetaDelete {
                clear_value: true,
                expiry,
                new_cas,
                invalidate,
                ..MetaDelete::default()
            })
        };
        let (status, info, _) = meta(&mut p, clear(None, 0, false), b"k", b"", 0);
        assert_eq!(status, MetaStatus::Deleted);
        assert_eq!(
            (info.size, info.flags, info.ttl, info.cas, info.stale),
            (0, 0, None, cas, false),
            "flags 0, no expiry, the CAS kept"
        );
        assert_eq!(get(&mut p, b"k", 0), Some(vec![]));
        p.set(b"k", b"value", 8, 100, 0);
        let (_, info, _) = meta(
            &mut p,
            clear(Some(Expiry::After(9)), 42, false),
            b"k",
            b"",
            0,
        );
        assert_eq!((info.ttl, info.cas), (Some(9), 42));
        // With I, a tombstone: empty, stale, a new CAS.
        let (_, info, _) = meta(&mut p, clear(None, 0, true), b"k", b"", 0);
        assert_eq!((info.size, info.stale), (0, true));
        assert!(info.cas != 42);
        check_accounting(&p);
    }

    #[test]
    fn counters_with_vivify_cas_and_touch() {
        let mut p = Partition::new();
        assert_eq!(
            status_of(&mut p, Op::MetaArith(ma(true)), b"n", b"", 0),
            MetaStatus::NotFound
        );
        let create = MetaArith {
            delta: 5,
            initial: 40,
            vivify: Some(Expiry::After(60)),
            touch: Some(Expiry::After(999)),
            new_cas: 31,
            ..ma(true)
        };
        let (status_created, info, value) = meta(&mut p, Op::MetaArith(create), b"n", b"", 0);
        assert_eq!(status_created, MetaStatus::Stored);
        assert_eq!(value, b"40", "a created counter holds the initial value");
        assert_eq!((info.ttl, info.cas, info.size), (Some(60), 31, 2));
        let (_, info, value) = meta(&mut p, Op::MetaArith(create), b"n", b"", 1_000);
        assert_eq!(value, b"45");
        assert_eq!(
            (info.ttl, info.cas),
            (Some(999), 31),
            "T on success; E again"
        );
        let with_cas = |cas: u64| {
            Op::MetaArith(MetaArith {
                cas: (cas != 0).then_some(cas),
                touch: Some(Expiry::Never),
                delta: 50,
                ..ma(false)
            })
        };
        assert_eq!(
            status_of(&mut p, with_cas(30), b"n", b"", 1_000),
            MetaStatus::Exists
        );
        let (_, info, _) = meta(&mut p, Op::MetaArith(ma(true)), b"n", b"", 1_000);
        assert_eq!(info.ttl, Some(999), "a failed update touched nothing");
        let (_, info, value) = meta(&mut p, with_cas(info.cas), b"n", b"", 1_000);
        assert_eq!(
            (value, info.ttl),
            (b"0".to_vec(), None),
            "a decrement stops at 0"
        );
        p.set(b"max", b"18446744073709551615", 0, 0, 0);
        assert_eq!(
            meta(&mut p, Op::MetaArith(ma(true)), b"max", b"", 0).2,
            b"0",
            "wraps"
        );
        p.set(b"s", b"abc", 0, 0, 0);
        assert_eq!(
            status_of(&mut p, Op::MetaArith(ma(true)), b"s", b"", 0),
            MetaStatus::NonNumeric
        );
        check_accounting(&p);
    }

    #[test]
    fn a_counter_that_cannot_be_created_is_not_stored() {
        let mut p = Partition::new();
        let key = vec![b'k'; usize::from(u16::MAX) + 1];
        let create = MetaArith {
            vivify: Some(Expiry::Never),
            ..ma(true)
        };
        assert_eq!(
            status_of(&mut p, Op::MetaArith(create), &key, b"", 0),
            MetaStatus::NotStored
        );
        let classic = Op::Arith {
            incr: true,
            delta: 1,
            initial: 0,
            create: true,
            expiry: Expiry::Never,
            cas: 0,
        };
        assert_eq!(run(&mut p, classic, &key, b"", 0), Outcome::TooLarge);
        assert!(p.is_empty());
    }

    #[test]
    fn unlink_removes_without_a_trace() {
        let mut p = Partition::new();
        assert_eq!(run(&mut p, Op::Unlink, b"k", b"", 0), Outcome::NotFound);
        p.set(b"k", b"v", 0, 0, 0);
        assert_eq!(run(&mut p, Op::Unlink, b"k", b"", 0), Outcome::Deleted);
        assert_eq!(get(&mut p, b"k", 0), None);
        assert_eq!(p.stats().evictions + p.stats().reclaimed, 0);
        check_accounting(&p);
    }

    #[test]
    fn a_failed_add_counts_as_an_access() {
        let mut p = Partition::new();
        p.set(b"k", b"v", 0, 0, 0);
        let idx = p.find(b"k").unwrap();
        assert_eq!(
            status_of(&mut p, Op::MetaStore(ms(StoreMode::Add)), b"k", b"x", 7_000),
            MetaStatus::NotStored
        );
        let item = &p.items[idx as usize];
        assert!(item.has(VISITED) && !item.has(FETCHED));
        assert_eq!(item.atime(), 7);
    }
}
