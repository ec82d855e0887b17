//! The protocol-neutral vocabulary shared by every layer: what a client asks
//! of the key space ([`Command`]) and what the owning partition answers
//! ([`Outcome`]).
//!
//! Protocol codecs translate wire frames into these types and back; storage
//! executes them; the server moves them between workers. This module must not
//! know any wire format, socket or thread. The vocabulary is memcached's
//! (conditional stores, CAS, counters, touch), because that is the richest
//! protocol served; the native protocol uses a subset.

/// When an item expires, already resolved from the protocol's encoding
/// (relative seconds, memcached's absolute Unix times, …) by the codec's
/// server-side adapter, which knows the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Never expires.
    Never,
    /// Expires this many seconds after the owning worker executes the
    /// command.
    After(u32),
    /// Already expired (an absolute time in the past): the store still
    /// replaces any previous item, which then can never be read.
    Immediately,
}

/// memcached reads an expiry above this many seconds (30 days) as an
/// absolute Unix time.
const RELATIVE_LIMIT: i64 = 60 * 60 * 24 * 30;

impl Expiry {
    /// Resolves memcached's expiry encoding, shared by its text, meta and
    /// binary protocols, against the server's Unix time: 0 never, negative
    /// already expired, up to 30 days relative seconds, beyond that an
    /// absolute time (in the past: already expired).
    pub fn memcached(exptime: i64, unix_now: u64) -> Expiry {
        let now = i64::try_from(unix_now).unwrap_or(i64::MAX);
        if exptime == 0 {
            Expiry::Never
        } else if exptime < 0 {
            Expiry::Immediately
        } else if exptime <= RELATIVE_LIMIT {
            Expiry::After(exptime as u32)
        } else if exptime <= now {
            Expiry::Immediately
        } else {
            Expiry::After(u32::try_from(exptime - now).unwrap_or(u32::MAX))
        }
    }
}

/// How a store treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if the key holds no live item.
    Add,
    /// Store only if the key holds a live item.
    Replace,
    /// Add the bytes after the live item's value (flags and expiry kept).
    Append,
    /// Add the bytes before the live item's value (flags and expiry kept).
    Prepend,
}

/// What a keyed command does. The scalars live here; the key and value bytes
/// travel beside them, borrowed ([`Command`]) or in one owned buffer
/// ([`OwnedCommand`]) when a command crosses to another worker.
///
/// A required CAS must equal the item's current CAS or the command answers
/// [`Outcome::Exists`]. For a store it is an `Option`, since the text
/// protocol's `cas` with a unique of 0 still checks (and fails against any
/// item a store numbered); elsewhere, as in memcached's binary protocol, 0
/// means "no check".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Look the key up.
    Get,
    /// Look the key up and give the item a new expiry.
    GetAndTouch {
        /// The new expiry.
        expiry: Expiry,
    },
    /// Give the item a new expiry.
    Touch {
        /// The new expiry.
        expiry: Expiry,
    },
    /// Store the value.
    Store {
        /// Unconditional, add, replace, append or prepend.
        mode: StoreMode,
        /// Opaque client flags stored with the value (ignored by append and
        /// prepend, which keep the item's).
        flags: u32,
        /// Expiry of the stored item (ignored by append and prepend).
        expiry: Expiry,
        /// Required CAS, if any.
        cas: Option<u64>,
    },
    /// Remove the key.
    Delete {
        /// Required CAS, or 0.
        cas: u64,
    },
    /// Remove the key without counting a DELETE: what a store refused as
    /// too large does, so that a cache never serves the value its client
    /// just tried to replace.
    Unlink,
    /// A read with memcached's meta options (`mg`, `me`).
    MetaRead(MetaRead),
    /// A store with memcached's meta options (`ms`).
    MetaStore(MetaStore),
    /// A delete or invalidation with memcached's meta options (`md`).
    MetaDelete(MetaDelete),
    /// A counter update with memcached's meta options (`ma`).
    MetaArith(MetaArith),
    /// Add to or subtract from a decimal counter. Increments wrap at 2^64;
    /// decrements stop at 0.
    Arith {
        /// Increment (true) or decrement.
        incr: bool,
        /// The amount.
        delta: u64,
        /// The value to create a missing counter with.
        initial: u64,
        /// Whether a missing counter is created (memcached's expiry of
        /// 0xffffffff says "do not").
        create: bool,
        /// Expiry of a created counter.
        expiry: Expiry,
        /// Required CAS, or 0.
        cas: u64,
    },
}

/// A meta read (`mg`). The default is a plain GET that returns no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetaRead {
    /// Return the value (`v`); without it only the item's facts come back,
    /// so a forwarded read copies no value.
    pub value: bool,
    /// Give a found item a new expiry (`T`; one created by `N` keeps
    /// `N`'s).
    pub touch: Option<Expiry>,
    /// On a miss, create an empty item with this expiry and hand this
    /// request the win (`N`): the one client that should recache it.
    pub vivify: Option<Expiry>,
    /// Hand this request the win if the item's remaining life is shorter
    /// than this many seconds and no win was handed out yet (`R`).
    pub recache_below: Option<u32>,
    /// Leave the item's access state alone: no eviction credit, no access
    /// time, not marked fetched (`u`).
    pub no_bump: bool,
    /// The CAS of an item this read creates (`E`, with `N`); 0: the
    /// partition's next.
    pub new_cas: u64,
}

/// A meta store (`ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaStore {
    /// Set, add, replace, append or prepend (`M`).
    pub mode: StoreMode,
    /// Client flags (`F`).
    pub flags: u32,
    /// Expiry (`T`; ignored by append and prepend of a live item).
    pub expiry: Expiry,
    /// Required CAS (`C`); memcached compares whatever is given, 0
    /// included.
    pub cas: Option<u64>,
    /// The stored item's CAS (`E`), or 0 for the partition's next.
    pub new_cas: u64,
    /// With a CAS (`I`): a CAS older than the item's is accepted, and the
    /// stored item is marked stale.
    pub invalidate: bool,
    /// Append or prepend to a missing key creates it with this expiry
    /// (`N`).
    pub vivify: Option<Expiry>,
}

/// A meta delete (`md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetaDelete {
    /// Required CAS (`C`); memcached compares whatever is given, 0
    /// included.
    pub cas: Option<u64>,
    /// The item's new CAS when it is kept (`E`, with `I` or `x`), or 0.
    pub new_cas: u64,
    /// Keep the item, mark it stale and give it a new CAS (`I`).
    pub invalidate: bool,
    /// With `I`: the stale item's new expiry; with `x`: the emptied item's
    /// expiry, none if absent (`T`).
    pub expiry: Option<Expiry>,
    /// Keep the item with an empty value (`x`).
    pub clear_value: bool,
}

/// A meta counter update (`ma`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaArith {
    /// Increment (true) or decrement (`M`).
    pub incr: bool,
    /// The amount (`D`, default 1).
    pub delta: u64,
    /// The value of a counter created on a miss (`J`).
    pub initial: u64,
    /// Create a missing counter with this expiry (`N`).
    pub vivify: Option<Expiry>,
    /// Required CAS (`C`); memcached compares whatever is given, 0
    /// included.
    pub cas: Option<u64>,
    /// The counter's new CAS (`E`), or 0.
    pub new_cas: u64,
    /// A new expiry on success (`T`; a created counter keeps `N`'s).
    pub touch: Option<Expiry>,
}

/// What a meta command learns of the item it acted on; all zero when
/// there is none to tell of (a miss, a failure, a delete that removed it).
/// docs/STORAGE.md lists which fields hold for which status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemInfo {
    /// Client flags.
    pub flags: u32,
    /// The item's CAS after the command.
    pub cas: u64,
    /// Seconds of life left; `None` if it never expires.
    pub ttl: Option<u32>,
    /// Seconds since the item was last accessed, before this command (0
    /// for an item a store just wrote).
    pub idle: u32,
    /// Bytes of the value.
    pub size: u32,
    /// The item had been read before this command (`h`).
    pub fetched: bool,
    /// The item was invalidated and awaits a recache (`X`).
    pub stale: bool,
    /// This command won the right to recache the item (`W`).
    pub won: bool,
    /// A win had been handed out before this command (`Z`).
    pub win_sent: bool,
}

/// How a meta command ended; each protocol picks its own words for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaStatus {
    /// A read found the item (or created it with `N`).
    Hit,
    /// A read found nothing.
    Miss,
    /// A store or counter update succeeded.
    Stored,
    /// A conditional store's condition failed, or a counter could not be
    /// created.
    NotStored,
    /// The CAS given does not match the item's.
    Exists,
    /// The key holds no live item.
    NotFound,
    /// A delete removed (or invalidated) the item.
    Deleted,
    /// A counter update found a value that is not a decimal number.
    NonNumeric,
    /// An append or prepend would make the item larger than the limit, or
    /// a key or value is longer than an item holds (64 KiB, 4 GiB).
    TooLarge,
    /// The item cannot fit the worker's memory budget even alone.
    NoRoom,
}

/// A keyed command with its bytes borrowed from a connection's read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// What to do.
    pub op: Op,
    /// The key; never empty once a codec has accepted it.
    pub key: &'a [u8],
    /// The value for stores, empty otherwise.
    pub value: &'a [u8],
}

impl Command<'_> {
    /// Copies key and value into one buffer so the command can cross threads
    /// with a single allocation.
    pub fn to_owned_command(&self) -> OwnedCommand {
        let mut buf = Vec::with_capacity(self.key.len() + self.value.len());
        buf.extend_from_slice(self.key);
        buf.extend_from_slice(self.value);
        OwnedCommand {
            op: self.op,
            key_len: self.key.len(),
            buf,
        }
    }

    /// Whether the reply can carry a value, whose size is unknown until the
    /// command runs.
    pub fn returns_value(&self) -> bool {
        match self.op {
            Op::Get | Op::GetAndTouch { .. } => true,
            Op::MetaRead(read) => read.value,
            _ => false,
        }
    }
}

/// A keyed command that owns its bytes: `buf` holds the key then the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedCommand {
    /// What to do.
    pub op: Op,
    /// How many leading bytes of `buf` are the key.
    pub key_len: usize,
    /// Key followed by value.
    pub buf: Vec<u8>,
}

impl OwnedCommand {
    /// Borrows the command back into its protocol-neutral form.
    pub fn as_command(&self) -> Command<'_> {
        let (key, value) = self.buf.split_at(self.key_len.min(self.buf.len()));
        Command {
            op: self.op,
            key,
            value,
        }
    }

    /// Gives the buffer back for reuse, so that a reply crossing back to the
    /// origin worker needs no allocation of its own.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

/// What the owning partition answered. `V` is `&[u8]` when the reply is
/// encoded in place on the owning worker (no copy, no allocation) and
/// `Vec<u8>` when it must travel to another worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<V> {
    /// A GET (or GAT) found a live item.
    Hit {
        /// The flags stored with the value.
        flags: u32,
        /// The item's CAS.
        cas: u64,
        /// The stored value.
        value: V,
    },
    /// A GET or GAT found nothing (or only an expired item).
    Miss,
    /// A store succeeded; the item's new CAS.
    Stored {
        /// The new CAS.
        cas: u64,
    },
    /// A conditional store's condition failed: ADD of an existing key, or
    /// REPLACE, APPEND or PREPEND of a missing one.
    NotStored,
    /// The CAS given does not match the item's.
    Exists,
    /// The key holds no live item (DELETE, TOUCH, counters, and any command
    /// with a CAS).
    NotFound,
    /// A DELETE removed the item.
    Deleted,
    /// A TOUCH gave the item a new expiry.
    Touched {
        /// The item's flags.
        flags: u32,
        /// The item's CAS (unchanged by a touch).
        cas: u64,
    },
    /// A counter's new value.
    Counter {
        /// The value after the operation.
        value: u64,
        /// The item's new CAS.
        cas: u64,
    },
    /// INCR or DECR of a value that is not a decimal number.
    NonNumeric,
    /// APPEND or PREPEND would make the item larger than the limit, or a
    /// key or value is longer than an item holds (64 KiB, 4 GiB); the item
    /// is left as it was.
    TooLarge,
    /// The item cannot fit the worker's memory budget even alone (nothing
    /// was changed).
    NoRoom,
    /// The answer to a meta command. `value` is the item's value when the
    /// read asked for it, a counter's decimal digits, or empty.
    Meta {
        /// How the command ended.
        status: MetaStatus,
        /// The item's facts (all zero on a miss).
        info: ItemInfo,
        /// The value, when asked for.
        value: V,
    },
}

impl<V> Outcome<V> {
    /// Applies `f` to the value of a hit, keeping every other outcome.
    pub fn map_value<W>(self, f: impl FnOnce(V) -> W) -> Outcome<W> {
        match self {
            Outcome::Hit { flags, cas, value } => Outcome::Hit {
                flags,
                cas,
                value: f(value),
            },
            Outcome::Miss => Outcome::Miss,
            Outcome::Stored { cas } => Outcome::Stored { cas },
            Outcome::NotStored => Outcome::NotStored,
            Outcome::Exists => Outcome::Exists,
            Outcome::NotFound => Outcome::NotFound,
            Outcome::Deleted => Outcome::Deleted,
            Outcome::Touched { flags, cas } => Outcome::Touched { flags, cas },
            Outcome::Counter { value, cas } => Outcome::Counter { value, cas },
            Outcome::NonNumeric => Outcome::NonNumeric,
            Outcome::TooLarge => Outcome::TooLarge,
            Outcome::NoRoom => Outcome::NoRoom,
            Outcome::Meta {
                status,
                info,
                value,
            } => Outcome::Meta {
                status,
                info,
                value: f(value),
            },
        }
    }
}

impl Outcome<&[u8]> {
    /// Copies the outcome into `buf` (cleared first, capacity reused) so it
    /// can travel to another worker.
    pub fn to_owned_in(&self, mut buf: Vec<u8>) -> Outcome<Vec<u8>> {
        self.clone().map_value(|value| {
            buf.clear();
            buf.extend_from_slice(value);
            buf
        })
    }
}

impl Outcome<Vec<u8>> {
    /// Borrows an owned outcome so one encoder serves both paths.
    pub fn as_borrowed(&self) -> Outcome<&[u8]> {
        match self {
            Outcome::Hit { flags, cas, value } => Outcome::Hit {
                flags: *flags,
                cas: *cas,
                value: value.as_slice(),
            },
            Outcome::Meta {
                status,
                info,
                value,
            } => Outcome::Meta {
                status: *status,
                info: *info,
                value: value.as_slice(),
            },
            other => other.clone().map_value(|_| &[][..]),
        }
    }
}

/// A server-wide request: every worker applies it to itself, and the
/// reply waits for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    /// Report counters.
    Stats(StatsGroup),
    /// Zero the counters (memcached's `stats reset`).
    ResetStats,
    /// Invalidate every item, now or after some seconds.
    Flush {
        /// Seconds from now; 0 is now.
        delay: u32,
    },
    /// Change the memory budget (memcached's `cache_memlimit`), split
    /// evenly over the workers as at start.
    MemLimit {
        /// The new server-wide budget in bytes.
        bytes: u64,
    },
}

/// Which counters a STATS request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsGroup {
    /// The server-wide totals (memcached's plain `stats`).
    General,
    /// The totals, then each worker's memory counters.
    Workers,
    /// memcached's `stats items`: item counts and ages, as one class.
    Items,
    /// memcached's `stats slabs`: memory use, as one class.
    Slabs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_memcached() {
        let now = 1_800_000_000;
        assert_eq!(Expiry::memcached(0, now), Expiry::Never);
        assert_eq!(Expiry::memcached(-1, now), Expiry::Immediately);
        assert_eq!(Expiry::memcached(10, now), Expiry::After(10));
        let limit = RELATIVE_LIMIT;
        assert_eq!(Expiry::memcached(limit, now), Expiry::After(limit as u32));
        assert_eq!(Expiry::memcached(limit + 1, now), Expiry::Immediately);
        assert_eq!(Expiry::memcached(now as i64 + 60, now), Expiry::After(60));
        assert_eq!(Expiry::memcached(now as i64, now), Expiry::Immediately);
    }

    #[test]
    fn owned_command_round_trips_key_and_value() {
        let cmd = Command {
            op: Op::Store {
                mode: StoreMode::Set,
                flags: 7,
                expiry: Expiry::After(9),
                cas: None,
            },
            key: b"key",
            value: b"value",
        };
        let owned = cmd.to_owned_command();
        assert_eq!(owned.as_command(), cmd);
    }

    #[test]
    fn outcome_to_owned_reuses_buffer() {
        let buf = Vec::with_capacity(64);
        let ptr = buf.as_ptr();
        let owned = Outcome::Hit {
            flags: 1,
            cas: 5,
            value: &b"abc"[..],
        }
        .to_owned_in(buf);
        match &owned {
            Outcome::Hit { value, .. } => assert_eq!(value.as_ptr(), ptr),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            owned.as_borrowed(),
            Outcome::Hit {
                flags: 1,
                cas: 5,
                value: &b"abc"[..]
            }
        );
        assert_eq!(
            Outcome::<&[u8]>::Counter { value: 3, cas: 4 }.to_owned_in(Vec::new()),
            Outcome::Counter { value: 3, cas: 4 }
        );
    }
}
