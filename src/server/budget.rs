//! The memory a worker's connections may hold, and the work one connection
//! may do in a loop turn.
//!
//! **Memory.** A connection holds: the input it keeps between reads (a
//! partial frame, or frames left when it yielded), its unsent replies,
//! replies waiting for their turn, and, for requests forwarded to another
//! worker, the request bytes in flight plus a reservation for the reply
//! (the owner sends a value larger than the reservation back as
//! "deferred", and the request is sent again once its real size fits).
//! Each worker has `--connection-memory / --threads` bytes for all of its
//! connections ([`Room`]): under it a connection reads and runs requests
//! freely; at it, a connection holding more than [`FLOOR`] stops reading
//! until its client drains what it holds or the worker's total falls back,
//! while connections holding less (clients that read their replies) are
//! still served, each up to [`FLOOR`].
//!
//! Worst case, per worker: `limit + connections * (FLOOR + S)`, where `S`
//! is what one request can add without asking: an error or STATS reply, a
//! few KiB. Every other growth is asked for first. Two exceptions, so that
//! ordered replies cannot deadlock:
//!
//! - a deferred read at the front of a connection's reply queue may also
//!   use the room only its completion can free (replies stuck behind it
//!   and the buffers holding them), which can double that figure at the
//!   very worst;
//! - several connections can each hold replies stuck behind a deferred
//!   front read, together all of the budget, each waiting for room the
//!   others hold. So one such read per worker at a time, of a connection
//!   whose client has read everything written to it, may go past the
//!   budget ([`Pass`]): one value more. The pass is handed back once that
//!   reply has been written (or the connection closed), so a client that
//!   stops reading keeps at most one value over the budget, as held room.
//!
//! **Work.** A connection runs at most `--reqs-per-event` requests and
//! [`TURN_BYTES`] bytes of work (input consumed, replies encoded, bytes
//! forwarded, item bytes written) per turn, then yields to the others,
//! and writes at most [`TURN_BYTES`] per turn. A worker writes at most
//! [`TURN_WRITE_BYTES`] in all per turn (each connection still
//! [`WRITE_FLOOR`]), and does at most [`INBOX_TURN_BYTES`] of work for
//! its inbox.
//!
//! Must not: touch sockets or know a wire format.

/// What a connection may always hold, whatever its worker's total: room
/// for a request and its reply, so that clients that read their replies
/// are served while others hold the budget.
pub(crate) const FLOOR: usize = 32 * 1024;

/// Reply bytes reserved for each forwarded request that returns a value.
/// A value larger than this is deferred by its owner and asked for again
/// with its real size reserved: one more trip between workers for large
/// values, and no unbounded growth for any.
pub(crate) const REMOTE_RESERVE: usize = 16 * 1024;

/// Work one connection may do in one loop turn before the others get a
/// turn (one request always runs, however large).
pub(crate) const TURN_BYTES: usize = 256 * 1024;

/// Bytes a worker writes to its sockets in one loop turn, shared by its
/// connections in the order they are flushed. Writing is most of the cost
/// of large replies: without this bound, hundreds of connections woken at
/// once could each write megabytes into their kernel buffers in one turn,
/// and every other client would wait for all of it.
pub(crate) const TURN_WRITE_BYTES: usize = 4 << 20;

/// What a connection may write in a turn even when the worker's
/// [`TURN_WRITE_BYTES`] are spent: a small reply goes out whole, at once.
pub(crate) const WRITE_FLOOR: usize = 4 * 1024;

/// How long a worker spends in one loop turn running the connections
/// queued from earlier turns (those that yielded, or were woken); the
/// ones left go first next turn. Byte quotas alone do not bound a turn:
/// a 1 MiB SET read in one go costs a copy into the item, buffer growth
/// and page faults, a few milliseconds each, and with a few such clients
/// on a worker a turn took 25 ms, all of it waited out by a small request
/// that arrived meanwhile.
pub(crate) const TURN_RUN_TIME: std::time::Duration = std::time::Duration::from_millis(2);

/// Work a worker does for its inbox in one loop turn (value bytes stored
/// or copied, plus [`MESSAGE_WORK`] per message); the rest waits for the
/// next turn, so the worker's own clients are served between the commands
/// a flood from other workers queued.
pub(crate) const INBOX_TURN_BYTES: usize = 1 << 20;

/// What handling one message counts for in [`INBOX_TURN_BYTES`], whatever
/// its size: a drain of small messages is bounded too.
pub(crate) const MESSAGE_WORK: usize = 128;

/// What a connection may add to what it holds, as its worker saw it at the
/// start of the connection's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Room {
    /// Bytes the worker's other connections hold.
    pub others: usize,
    /// The worker's budget.
    pub limit: usize,
}

impl Room {
    /// Bytes a connection holding `held` may add: up to the worker's
    /// budget, or up to [`FLOOR`] whatever the worker holds.
    pub fn allowance(&self, held: usize) -> usize {
        let total = self.others.saturating_add(held);
        self.limit
            .saturating_sub(total)
            .max(FLOOR.saturating_sub(held))
    }

    /// Whether a connection holding `held` may add `growth` bytes.
    pub fn admits(&self, held: usize, growth: usize) -> bool {
        growth <= self.allowance(held)
    }
}

/// The deferred front read that may go past its worker's budget: the
/// connection (its slot and generation) and the reply's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    pub slot: usize,
    pub generation: u32,
    pub seq: u64,
}

/// A worker's tally of what its connections hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    limit: usize,
    used: usize,
    /// Who holds the worker's one pass past the budget, if anyone.
    pass: Option<Pass>,
}

impl Budget {
    pub fn new(limit: usize) -> Self {
        Budget {
            limit,
            used: 0,
            pass: None,
        }
    }

    /// Whether the pass past the budget is free to take.
    pub fn pass_free(&self) -> bool {
        self.pass.is_none()
    }

    /// Hands the pass to `holder` (it was free).
    pub fn grant(&mut self, holder: Pass) {
        debug_assert!(self.pass.is_none());
        self.pass = Some(holder);
    }

    /// Takes the pass back if `done` says its holder is finished with it;
    /// true if it was taken back.
    pub fn release_if(&mut self, done: impl FnOnce(&Pass) -> bool) -> bool {
        let release = self.pass.as_ref().is_some_and(done);
        if release {
            self.pass = None;
        }
        release
    }

    /// Bytes held by all connections.
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The room of a connection whose holding was last counted as
    /// `accounted`.
    pub fn room(&self, accounted: usize) -> Room {
        Room {
            others: self.used.saturating_sub(accounted),
            limit: self.limit,
        }
    }

    /// A connection's holding changed from `old` to `new`.
    pub fn update(&mut self, old: usize, new: usize) {
        self.used = self.used.saturating_sub(old).saturating_add(new);
    }

    /// Whether connections paused for memory should try again: the total
    /// fell an eighth below the budget, so that a crowd of paused
    /// connections is not woken on every byte freed.
    pub fn has_slack(&self) -> bool {
        self.used <= self.limit - self.limit / 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_the_budget_a_connection_may_grow_to_it() {
        let room = Room {
            others: 1000,
            limit: 1 << 20,
        };
        assert_eq!(room.allowance(24), (1 << 20) - 1024);
        assert!(room.admits(0, 512 << 10));
    }

    #[test]
    fn over_the_budget_only_small_holders_grow_and_only_to_the_floor() {
        let room = Room {
            others: 2 << 20,
            limit: 1 << 20,
        };
        assert_eq!(room.allowance(0), FLOOR);
        assert_eq!(room.allowance(FLOOR - 10), 10);
        assert_eq!(room.allowance(FLOOR + 10), 0);
        assert!(!room.admits(0, FLOOR + 1));
    }

    #[test]
    fn the_tally_follows_updates_and_wakes_with_slack() {
        let mut b = Budget::new(800);
        b.update(0, 750);
        assert!(!b.has_slack());
        assert_eq!(b.room(750).others, 0);
        b.update(750, 700);
        assert!(b.has_slack());
        assert_eq!(b.used(), 700);
    }

    #[test]
    fn the_pass_has_one_holder_until_it_is_given_back() {
        let mut b = Budget::new(800);
        assert!(b.pass_free());
        let holder = Pass {
            slot: 3,
            generation: 7,
            seq: 42,
        };
        b.grant(holder);
        assert!(!b.pass_free());
        assert!(!b.release_if(|p| p.slot == 4));
        assert_eq!(b.pass, Some(holder));
        assert!(b.release_if(|p| p.slot == 3 && p.generation == 7));
        assert!(b.pass_free());
    }
}
