//! A connection's replies, kept in request order.
//!
//! Replies finish out of order (a local GET is answered at once, a GET for
//! another worker's key a few microseconds later), but must leave in the
//! order their requests arrived. While no reply is outstanding, a reply is
//! encoded straight into the output buffer: the common local path costs no
//! bookkeeping and no copy. Once one is outstanding, every later reply gets a
//! slot in a queue; a finished local reply is encoded into a staging buffer
//! and its slot records its length; a remote reply fills its slot when its
//! message arrives. Only the finished prefix of the queue is ever moved to
//! the output buffer.
//!
//! Slots are addressed by sequence number (`base_seq` is the number of the
//! front slot), so a reply message carries a plain `u64` and finds its slot
//! in O(1).
//!
//! Each request's latency is counted once its last reply is written; where
//! that reply ends is kept in [`latency`].
//!
//! Must not: touch sockets, know a wire format (encoding is passed in), or
//! allocate per reply once its buffers have grown.

use std::collections::VecDeque;
use std::time::Instant;

use crate::command::{Outcome, OwnedCommand};
use crate::metrics::{CommandClass, Histogram};
use crate::stats::WorkerStats;

use crate::command::Broadcast;

use super::adapter::ReplyCtx;

mod latency;

use latency::{Marks, nanos};

/// What a reply repeats of its request, borrowed from the read buffer
/// while the reply is encoded at once, or kept in the queue while it is
/// awaited: the key (memcached's GETK, text VALUE lines, meta `k`) and
/// anything else the protocol echoes (the meta flags, opaque included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Echo<'a> {
    /// The key as the client sent it.
    pub key: &'a [u8],
    /// Further request bytes the reply needs.
    pub extra: &'a [u8],
}

impl<'a> Echo<'a> {
    /// Nothing echoed.
    pub const NONE: Echo<'static> = Echo {
        key: &[],
        extra: &[],
    };

    /// Just the key.
    pub fn key(key: &'a [u8]) -> Self {
        Echo { key, extra: &[] }
    }
}

/// Turns finished outcomes into wire bytes.
pub(crate) trait Encode {
    /// Appends the reply for a keyed command (`echo`: what the reply
    /// repeats of the request).
    fn outcome(&self, ctx: ReplyCtx, echo: Echo<'_>, outcome: &Outcome<&[u8]>, out: &mut Vec<u8>);
    /// Appends the reply for a server-wide request, once every worker has
    /// applied it; `parts` holds each worker's counters by worker id.
    fn applied(
        &self,
        ctx: ReplyCtx,
        what: Broadcast,
        parts: &[(u32, WorkerStats)],
        out: &mut Vec<u8>,
    );
}

/// Where a forwarded request stands.
#[derive(Debug)]
enum Remote {
    /// Sent to its owner; the reply has not come back.
    InFlight,
    /// The owner found a value larger than the reply reserved and sent the
    /// command back; it goes again once `value_len` fits the budget.
    Deferred { cmd: OwnedCommand, value_len: usize },
    /// The owner's outcome, waiting for the slots before it.
    Done(Outcome<Vec<u8>>),
}

#[derive(Debug)]
enum Slot {
    /// A finished reply of `len` bytes at the front of `staged`.
    Staged { len: usize },
    /// A request run by another worker.
    Remote {
        ctx: ReplyCtx,
        /// When the request was read, for the forward-wait histogram.
        since: Instant,
        /// What the reply echoes, in `echoes`: start, key length, extra
        /// length.
        echo: (usize, usize, usize),
        /// Bytes this slot counts in [`Replies::remote_bytes`]: while in
        /// flight, the request's bytes and the reply's reservation; while
        /// deferred, the command; once done, the outcome's value.
        charge: usize,
        state: Remote,
    },
    /// A server-wide request, waiting for `remaining` workers to apply it.
    Gather {
        ctx: ReplyCtx,
        what: Broadcast,
        remaining: usize,
        parts: Vec<(u32, WorkerStats)>,
    },
}

impl Slot {
    fn is_ready(&self) -> bool {
        match self {
            Slot::Staged { .. } => true,
            Slot::Remote { state, .. } => matches!(state, Remote::Done(_)),
            Slot::Gather { remaining, .. } => *remaining == 0,
        }
    }
}

/// The reply side of a connection.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    /// Bytes ready for the socket, in order; `sent` of them are written.
    out: Vec<u8>,
    sent: usize,
    /// Finished replies waiting behind an unfinished one.
    staged: Vec<u8>,
    staged_taken: usize,
    slots: VecDeque<Slot>,
    base_seq: u64,
    /// What waiting remote replies echo, back to back; emptied with the
    /// queue, so it costs no allocation once grown.
    echoes: Vec<u8>,
    /// The charges of every remote slot (see `Slot::Remote`).
    remote_bytes: usize,
    /// Of those, the values that arrived and wait for their turn.
    held_bytes: usize,
    /// Remote slots whose command came back deferred.
    deferred: usize,
    /// Reply bytes encoded so far, wrapping: a measure of work done.
    encoded: usize,
    /// Requests waiting for their replies to be written, for their
    /// latency.
    marks: Marks,
}

/// Ready output up to this size waits for a reply owed by another worker
/// ([`Replies::hold_output`]); more goes out at once, so large replies
/// keep streaming.
const HOLD_OUTPUT_MAX: usize = 16 * 1024;

/// Buffers that grew past this are released once empty, so a large reply
/// does not pin memory for the life of an idle connection, while the
/// common small replies reuse the same allocation.
const KEEP_CAPACITY: usize = 4 * 1024;

impl Replies {
    /// Replies owed: slots not yet released to the output buffer.
    pub fn owed(&self) -> usize {
        self.slots.len()
    }

    /// Bytes tied to forwarded requests: in flight (request and reply
    /// reservation), deferred, or arrived and waiting for their turn.
    pub fn remote_bytes(&self) -> usize {
        self.remote_bytes
    }

    /// Reply bytes held, not yet written: encoded, staged, or arrived from
    /// another worker and waiting for their turn.
    pub fn buffered_bytes(&self) -> usize {
        (self.out.len() - self.sent) + (self.staged.len() - self.staged_taken) + self.held_bytes
    }

    /// Bytes this side of the connection holds, as allocated: the buffers'
    /// capacities, the queue, the requests waiting to be timed (a client
    /// that pipelines `noreply` requests without reading adds one each),
    /// and every remote slot's charge.
    pub fn memory(&self) -> usize {
        self.out.capacity()
            + self.staged.capacity()
            + self.echoes.capacity()
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.marks.memory()
            + self.remote_bytes
    }

    /// Reply bytes encoded so far (wrapping; differences are the work).
    pub fn encoded(&self) -> usize {
        self.encoded
    }

    /// Bytes held that only the front of the queue can free: finished
    /// replies waiting behind it (values arrived, replies staged), and the
    /// buffers that hold them, what was already taken from the staged
    /// buffer included (it goes when the queue empties or is compacted, at
    /// a release). None of it drains while the front waits.
    pub fn stuck_bytes(&self) -> usize {
        self.held_bytes
            + self.staged.capacity()
            + self.echoes.capacity()
            + self.slots.capacity() * std::mem::size_of::<Slot>()
    }

    /// Whether the oldest reply owed is a deferred command: it must be sent
    /// again before anything behind it can leave.
    pub fn front_deferred(&self) -> bool {
        matches!(
            self.slots.front(),
            Some(Slot::Remote {
                state: Remote::Deferred { .. },
                ..
            })
        )
    }

    /// Whether the output ready now had better wait for the reply at the
    /// front of the queue, coming from another worker, and leave with it
    /// in one write: it is small, and nothing owed waits for room (a
    /// deferred command may need the client to have read everything
    /// written). Two writes for one batch of pipelined requests cost two
    /// send calls here and split the client's next batch in two; the
    /// ready replies wait one hop at most.
    pub fn hold_output(&self) -> bool {
        let front_in_flight = match self.slots.front() {
            Some(Slot::Remote { state, .. }) => matches!(state, Remote::InFlight),
            Some(Slot::Gather { remaining, .. }) => *remaining > 0,
            _ => false,
        };
        front_in_flight && self.deferred == 0 && self.out.len() - self.sent < HOLD_OUTPUT_MAX
    }

    /// Whether the reply numbered `seq` has left the queue for the output
    /// buffer.
    pub fn released(&self, seq: u64) -> bool {
        seq < self.base_seq
    }

    /// Whether some forwarded command came back deferred.
    pub fn has_deferred(&self) -> bool {
        self.deferred > 0
    }

    /// Nothing owed and nothing left to write.
    pub fn is_idle(&self) -> bool {
        self.slots.is_empty() && self.sent == self.out.len()
    }

    /// Adds a reply that is finished now; `encode` appends its bytes.
    pub fn push_ready(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        if self.slots.is_empty() {
            let before = self.out.len();
            encode(&mut self.out);
            self.encoded = self.encoded.wrapping_add(self.out.len() - before);
            self.marks.appended(self.out.len() - before);
        } else {
            let before = self.staged.len();
            encode(&mut self.staged);
            let len = self.staged.len() - before;
            self.encoded = self.encoded.wrapping_add(len);
            self.slots.push_back(Slot::Staged { len });
        }
    }

    /// Adds a reply another worker will finish; returns its sequence number.
    /// `charge`: the bytes counted until the reply arrives (the request's
    /// and the reply's reservation). `echo`: kept for the reply until it is
    /// encoded. `since`: when the request was read.
    pub fn push_remote(
        &mut self,
        ctx: ReplyCtx,
        charge: usize,
        echo: Echo<'_>,
        since: Instant,
    ) -> u64 {
        let seq = self.next_seq();
        let start = self.echoes.len();
        self.echoes.extend_from_slice(echo.key);
        self.echoes.extend_from_slice(echo.extra);
        self.slots.push_back(Slot::Remote {
            ctx,
            since,
            echo: (start, echo.key.len(), echo.extra.len()),
            charge,
            state: Remote::InFlight,
        });
        self.remote_bytes += charge;
        seq
    }

    /// Bytes the queue would add for a remote slot echoing `echo`.
    pub fn slot_cost(&self, echo: Echo<'_>) -> usize {
        let slot = if self.slots.len() == self.slots.capacity() {
            self.slots.capacity().max(4) * std::mem::size_of::<Slot>()
        } else {
            0
        };
        let len = self.echoes.len() + echo.key.len() + echo.extra.len();
        let echoes = if len > self.echoes.capacity() {
            len.max(2 * self.echoes.capacity())
        } else {
            0
        };
        slot + echoes
    }

    /// Adds the reply to a server-wide request that waits for `remaining`
    /// more workers, starting from this worker's own counters.
    pub fn push_gather(
        &mut self,
        ctx: ReplyCtx,
        what: Broadcast,
        remaining: usize,
        own: (u32, WorkerStats),
    ) -> u64 {
        let seq = self.next_seq();
        let mut parts = Vec::with_capacity(remaining + 1);
        parts.push(own);
        self.slots.push_back(Slot::Gather {
            ctx,
            what,
            remaining,
            parts,
        });
        seq
    }

    fn next_seq(&self) -> u64 {
        self.base_seq + self.slots.len() as u64
    }

    fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        let index = usize::try_from(seq.checked_sub(self.base_seq)?).ok()?;
        self.slots.get_mut(index)
    }

    /// Fills a remote slot, counting how long it waited in `wait`. False
    /// if no such slot is waiting (a bug or a stale message; the caller
    /// drops it).
    pub fn fill_remote(
        &mut self,
        seq: u64,
        result: Outcome<Vec<u8>>,
        enc: &impl Encode,
        now: Instant,
        wait: &mut Histogram,
    ) -> bool {
        let held = held_len(&result);
        let old = match self.slot_mut(seq) {
            Some(Slot::Remote {
                state,
                charge,
                since,
                ..
            }) if matches!(state, Remote::InFlight) => {
                *state = Remote::Done(result);
                wait.record(nanos(now, *since));
                std::mem::replace(charge, held)
            }
            _ => return false,
        };
        self.remote_bytes = self.remote_bytes - old + held;
        self.held_bytes += held;
        self.release(enc);
        true
    }

    /// The owner sent a command back: its value of `value_len` bytes is
    /// larger than the reply reserved. False if no such slot is in flight.
    pub fn defer(&mut self, seq: u64, cmd: OwnedCommand, value_len: usize) -> bool {
        let held = cmd.buf.capacity();
        let old = match self.slot_mut(seq) {
            Some(Slot::Remote { state, charge, .. }) if matches!(state, Remote::InFlight) => {
                *state = Remote::Deferred { cmd, value_len };
                std::mem::replace(charge, held)
            }
            _ => return false,
        };
        self.remote_bytes = self.remote_bytes - old + held;
        self.deferred += 1;
        true
    }

    /// Sends deferred commands again, oldest first, while `send` accepts:
    /// it gets the slot's sequence number, whether the slot is at the front
    /// of the queue, the command and its value's size, and returns the
    /// charge of the request now in flight, or the command back when there
    /// is no room for it yet.
    pub fn retry_deferred(
        &mut self,
        mut send: impl FnMut(u64, bool, OwnedCommand, usize) -> Result<usize, OwnedCommand>,
    ) {
        let base = self.base_seq;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if self.deferred == 0 {
                return;
            }
            let Slot::Remote { state, charge, .. } = slot else {
                continue;
            };
            if !matches!(state, Remote::Deferred { .. }) {
                continue;
            }
            let Remote::Deferred { cmd, value_len } = std::mem::replace(state, Remote::InFlight)
            else {
                continue;
            };
            match send(base + i as u64, i == 0, cmd, value_len) {
                Ok(new) => {
                    self.remote_bytes = self.remote_bytes - *charge + new;
                    *charge = new;
                    self.deferred -= 1;
                }
                Err(cmd) => {
                    *state = Remote::Deferred { cmd, value_len };
                    return;
                }
            }
        }
    }

    /// Adds worker `from`'s counters to a server-wide reply.
    pub fn fill_gather(
        &mut self,
        seq: u64,
        from: u32,
        part: &WorkerStats,
        enc: &impl Encode,
    ) -> bool {
        match self.slot_mut(seq) {
            Some(Slot::Gather {
                remaining, parts, ..
            }) if *remaining > 0 => {
                parts.push((from, *part));
                *remaining -= 1;
            }
            _ => return false,
        }
        self.release(enc);
        true
    }

    /// Notes that a request read at `read_at` has pushed all its replies:
    /// its latency is counted once they are written.
    pub fn mark_request(&mut self, class: CommandClass, read_at: Instant) {
        let queued_before = (!self.slots.is_empty()).then(|| self.next_seq());
        self.marks.mark(queued_before, class, read_at);
    }

    /// Calls `record` with each request whose replies have all been
    /// written since the last call, and its latency in nanoseconds.
    pub fn take_written(&mut self, now: Instant, record: impl FnMut(CommandClass, u64)) {
        self.marks.take_written(now, record);
    }

    /// Whether a request's latency waits to be counted.
    pub fn has_marks(&self) -> bool {
        self.marks.any_written()
    }

    /// Moves the finished prefix of the queue to the output buffer.
    fn release(&mut self, enc: &impl Encode) {
        let before = self.out.len();
        self.release_slots(enc);
        self.marks.appended(self.out.len() - before);
        self.marks.released(self.base_seq);
    }

    fn release_slots(&mut self, enc: &impl Encode) {
        while self.slots.front().is_some_and(Slot::is_ready) {
            let Some(slot) = self.slots.pop_front() else {
                break;
            };
            self.base_seq += 1;
            match slot {
                Slot::Staged { len } => {
                    let end = self.staged_taken + len;
                    self.out
                        .extend_from_slice(&self.staged[self.staged_taken..end]);
                    self.staged_taken = end;
                }
                Slot::Remote {
                    ctx,
                    echo: (start, key_len, extra_len),
                    state: Remote::Done(outcome),
                    charge,
                    ..
                } => {
                    self.remote_bytes -= charge;
                    self.held_bytes -= charge;
                    let (key, rest) = self.echoes[start..].split_at(key_len);
                    let echo = Echo {
                        key,
                        extra: &rest[..extra_len],
                    };
                    enc.outcome(ctx, echo, &outcome.as_borrowed(), &mut self.out);
                }
                Slot::Remote { .. } => {}
                Slot::Gather {
                    ctx,
                    what,
                    mut parts,
                    ..
                } => {
                    parts.sort_unstable_by_key(|&(id, _)| id);
                    enc.applied(ctx, what, &parts, &mut self.out)
                }
            }
        }
        if self.slots.is_empty() {
            self.staged.clear();
            self.staged_taken = 0;
            self.echoes.clear();
            if self.staged.capacity() > KEEP_CAPACITY {
                self.staged = Vec::new();
            }
            if self.echoes.capacity() > KEEP_CAPACITY {
                self.echoes = Vec::new();
            }
            if self.slots.capacity() * std::mem::size_of::<Slot>() > KEEP_CAPACITY {
                self.slots = VecDeque::new();
            }
        } else if self.staged_taken >= KEEP_CAPACITY
            && self.staged_taken >= self.staged.len() - self.staged_taken
        {
            // A queue that never quite empties would otherwise keep every
            // reply it ever staged: the taken front goes once it is as
            // large as what is left, so each byte moves at most once more.
            self.staged.drain(..self.staged_taken);
            self.staged_taken = 0;
        }
    }

    /// The bytes still to write.
    pub fn unsent(&self) -> &[u8] {
        &self.out[self.sent..]
    }

    /// Records that `n` bytes of [`Replies::unsent`] were written.
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.out.len() - self.sent);
        self.marks.wrote(n);
        self.sent += n;
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
            if self.out.capacity() > KEEP_CAPACITY {
                self.out = Vec::new();
            }
        }
    }
}

/// Bytes an arrived outcome holds, as allocated.
fn held_len(outcome: &Outcome<Vec<u8>>) -> usize {
    match outcome {
        Outcome::Hit { value, .. } | Outcome::Meta { value, .. } => value.capacity(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
