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
//! Must not: touch sockets, know a wire format (encoding is passed in), or
//! allocate per reply once its buffers have grown.

use std::collections::VecDeque;
use std::time::Instant;

use crate::command::Outcome;
use crate::metrics::{CommandClass, Histogram};
use crate::stats::WorkerStats;

use crate::command::Broadcast;

use super::adapter::ReplyCtx;

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

#[derive(Debug)]
enum Slot {
    /// A finished reply of `len` bytes at the front of `staged`.
    Staged { len: usize },
    /// Waiting for the owning worker's outcome. `sized` marks a reply
    /// whose size is unknown until it arrives (a GET's value), the only kind
    /// the connection's window of forwarded requests counts.
    Remote {
        ctx: ReplyCtx,
        /// When the request was read, for the forward-wait histogram.
        since: Instant,
        sized: bool,
        /// What the reply echoes, in `echoes`: start, key length, extra
        /// length.
        echo: (usize, usize, usize),
        outcome: Option<Outcome<Vec<u8>>>,
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
            Slot::Remote { outcome, .. } => outcome.is_some(),
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
    /// Forwarded requests with a reply of unknown size not arrived yet.
    remote_in_flight: usize,
    /// Bytes of arrived remote values held in their slots until released.
    held_bytes: usize,
    /// Bytes ever appended to `out`, and ever written from it: positions
    /// in the connection's output stream.
    out_total: u64,
    written_total: u64,
    /// Requests whose last reply is still in the queue: done once the slot
    /// before `seq` has been released.
    queued_marks: VecDeque<Mark>,
    /// Requests whose replies are all in `out`: done once the stream
    /// position `end` has been written.
    written_marks: VecDeque<Mark>,
}

/// A request waiting for its replies to be written, for its latency.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// A slot sequence number (queued) or an output stream position
    /// (written), by the queue it is in.
    end: u64,
    class: CommandClass,
    read_at: Instant,
}

/// Buffers that grew past this are released once empty, so one large reply
/// does not pin memory for the life of an idle connection.
const KEEP_CAPACITY: usize = 256 * 1024;

impl Replies {
    /// Replies owed: slots not yet released to the output buffer.
    pub fn owed(&self) -> usize {
        self.slots.len()
    }

    /// Forwarded requests whose reply, of unknown size, has not arrived.
    pub fn remote_in_flight(&self) -> usize {
        self.remote_in_flight
    }

    /// Reply bytes held, not yet written: encoded, staged, or arrived from
    /// another worker and waiting for their turn.
    pub fn buffered_bytes(&self) -> usize {
        (self.out.len() - self.sent) + (self.staged.len() - self.staged_taken) + self.held_bytes
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
            self.out_total += (self.out.len() - before) as u64;
        } else {
            let before = self.staged.len();
            encode(&mut self.staged);
            let len = self.staged.len() - before;
            self.slots.push_back(Slot::Staged { len });
        }
    }

    /// Adds a reply another worker will finish; returns its sequence number.
    /// `sized`: the reply may carry a value (its size is unknown until it
    /// arrives). `echo`: kept for the reply until it is encoded.
    pub fn push_remote(
        &mut self,
        ctx: ReplyCtx,
        sized: bool,
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
            sized,
            echo: (start, echo.key.len(), echo.extra.len()),
            outcome: None,
        });
        self.remote_in_flight += usize::from(sized);
        seq
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
        match self.slot_mut(seq) {
            Some(Slot::Remote {
                outcome,
                sized,
                since,
                ..
            }) if outcome.is_none() => {
                *outcome = Some(result);
                wait.record(nanos(now, *since));
                let sized = *sized;
                self.remote_in_flight -= usize::from(sized);
            }
            _ => return false,
        }
        self.held_bytes += held;
        self.release(enc);
        true
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
        if self.slots.is_empty() {
            self.written_marks.push_back(Mark {
                end: self.out_total,
                class,
                read_at,
            });
        } else {
            self.queued_marks.push_back(Mark {
                end: self.next_seq(),
                class,
                read_at,
            });
        }
    }

    /// Calls `record` with each request whose replies have all been
    /// written since the last call, and its latency in nanoseconds.
    pub fn take_written(&mut self, now: Instant, mut record: impl FnMut(CommandClass, u64)) {
        while let Some(mark) = self.written_marks.front() {
            if mark.end > self.written_total {
                break;
            }
            record(mark.class, nanos(now, mark.read_at));
            self.written_marks.pop_front();
        }
    }

    /// Whether a request's latency waits to be counted.
    pub fn has_marks(&self) -> bool {
        !self.written_marks.is_empty()
    }

    /// Moves the finished prefix of the queue to the output buffer.
    fn release(&mut self, enc: &impl Encode) {
        let before = self.out.len();
        self.release_slots(enc);
        self.out_total += (self.out.len() - before) as u64;
        while let Some(mark) = self.queued_marks.front() {
            if mark.end > self.base_seq {
                break;
            }
            let mut mark = *mark;
            mark.end = self.out_total;
            self.written_marks.push_back(mark);
            self.queued_marks.pop_front();
        }
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
                    outcome: Some(outcome),
                    ..
                } => {
                    self.held_bytes -= held_len(&outcome);
                    let (key, rest) = self.echoes[start..].split_at(key_len);
                    let echo = Echo {
                        key,
                        extra: &rest[..extra_len],
                    };
                    enc.outcome(ctx, echo, &outcome.as_borrowed(), &mut self.out);
                }
                Slot::Remote { outcome: None, .. } => {}
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
        }
    }

    /// The bytes still to write.
    pub fn unsent(&self) -> &[u8] {
        &self.out[self.sent..]
    }

    /// Records that `n` bytes of [`Replies::unsent`] were written.
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.out.len() - self.sent);
        self.written_total += n as u64;
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

/// Nanoseconds from `since` to `now` (0 if the clock disagrees).
fn nanos(now: Instant, since: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(since).as_nanos()).unwrap_or(u64::MAX)
}

fn held_len(outcome: &Outcome<Vec<u8>>) -> usize {
    match outcome {
        Outcome::Hit { value, .. } | Outcome::Meta { value, .. } => value.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes an outcome as its value bytes (or `-` for anything else), and
    /// stats as `S<cmd_get>`, so order is visible in the output.
    struct Plain;

    impl Encode for Plain {
        fn outcome(
            &self,
            _: ReplyCtx,
            echo: Echo<'_>,
            outcome: &Outcome<&[u8]>,
            out: &mut Vec<u8>,
        ) {
            out.extend_from_slice(echo.key);
            out.extend_from_slice(echo.extra);
            match outcome {
                Outcome::Hit { value, .. } => out.extend_from_slice(value),
                _ => out.push(b'-'),
            }
        }
        fn applied(
            &self,
            _: ReplyCtx,
            _: Broadcast,
            parts: &[(u32, WorkerStats)],
            out: &mut Vec<u8>,
        ) {
            let sum: u64 = parts.iter().map(|(_, s)| s.cmd_get).sum();
            out.extend_from_slice(format!("S{sum}").as_bytes());
        }
    }

    fn hit(v: &[u8]) -> Outcome<Vec<u8>> {
        Outcome::Hit {
            flags: 0,
            cas: 1,
            value: v.to_vec(),
        }
    }

    #[test]
    fn local_replies_go_straight_out() {
        let mut r = Replies::default();
        r.push_ready(|o| o.push(b'a'));
        r.push_ready(|o| o.push(b'b'));
        assert_eq!(r.owed(), 0);
        assert_eq!(r.unsent(), b"ab");
    }

    #[test]
    fn remote_replies_hold_back_later_local_ones() {
        let mut r = Replies::default();
        r.push_ready(|o| o.push(b'a'));
        let s1 = r.push_remote(ReplyCtx::ANY, true, Echo::NONE, Instant::now());
        r.push_ready(|o| o.push(b'c'));
        let s3 = r.push_remote(ReplyCtx::ANY, true, Echo::NONE, Instant::now());
        r.push_ready(|o| o.push(b'e'));
        assert_eq!(r.unsent(), b"a");
        assert_eq!(r.remote_in_flight(), 2);
        // The later remote reply arrives first: still held back, but its
        // bytes count as buffered.
        assert!(r.fill_remote(
            s3,
            hit(b"d"),
            &Plain,
            Instant::now(),
            &mut Histogram::default()
        ));
        assert_eq!(r.unsent(), b"a");
        assert_eq!(r.remote_in_flight(), 1);
        assert_eq!(r.buffered_bytes(), 1 + 1 + 1 + 1);
        assert!(r.fill_remote(
            s1,
            hit(b"b"),
            &Plain,
            Instant::now(),
            &mut Histogram::default()
        ));
        assert_eq!(r.unsent(), b"abcde");
        assert_eq!(r.remote_in_flight(), 0);
        assert_eq!(r.buffered_bytes(), 5);
        assert_eq!(r.owed(), 0);
        // Sequence numbers keep counting, so a duplicate is refused.
        assert!(!r.fill_remote(
            s1,
            hit(b"x"),
            &Plain,
            Instant::now(),
            &mut Histogram::default()
        ));
        r.advance(5);
        assert!(r.is_idle());
    }

    #[test]
    fn stats_wait_for_every_worker() {
        let mut r = Replies::default();
        let own = WorkerStats {
            cmd_get: 1,
            ..Default::default()
        };
        let seq = r.push_gather(
            ReplyCtx::ANY,
            Broadcast::Stats(crate::command::StatsGroup::General),
            2,
            (0, own),
        );
        r.push_ready(|o| o.push(b'n'));
        let part = WorkerStats {
            cmd_get: 10,
            ..Default::default()
        };
        assert!(r.fill_gather(seq, 1, &part, &Plain));
        assert_eq!(r.unsent(), b"");
        assert!(r.fill_gather(seq, 2, &part, &Plain));
        assert_eq!(r.unsent(), b"S21n");
        assert!(!r.fill_gather(seq, 3, &part, &Plain));
    }

    #[test]
    fn remote_replies_echo_their_keys() {
        let mut r = Replies::default();
        let s1 = r.push_remote(ReplyCtx::ANY, true, Echo::key(b"k1:"), Instant::now());
        let echo = Echo {
            key: b"key2",
            extra: b":",
        };
        let s2 = r.push_remote(ReplyCtx::ANY, true, echo, Instant::now());
        assert!(r.fill_remote(
            s2,
            hit(b"b"),
            &Plain,
            Instant::now(),
            &mut Histogram::default()
        ));
        assert!(r.fill_remote(
            s1,
            hit(b"a"),
            &Plain,
            Instant::now(),
            &mut Histogram::default()
        ));
        assert_eq!(r.unsent(), b"k1:akey2:b");
        assert!(r.echoes.is_empty(), "the arena empties with the queue");
    }

    #[test]
    fn a_request_is_counted_once_its_last_reply_is_written() {
        let mut r = Replies::default();
        let read_at = Instant::now();
        let mut seen = Vec::new();
        // A local request: counted once its bytes are written, not before.
        r.push_ready(|o| o.extend_from_slice(b"ab"));
        r.mark_request(CommandClass::Set, read_at);
        r.take_written(Instant::now(), |c, _| seen.push(c));
        assert!(seen.is_empty());
        r.advance(1);
        r.take_written(Instant::now(), |c, _| seen.push(c));
        assert!(seen.is_empty(), "half written");
        r.advance(1);
        r.take_written(Instant::now(), |c, _| seen.push(c));
        assert_eq!(seen, [CommandClass::Set]);
        // A request whose reply another worker owes, and a local one
        // behind it: neither counts until the remote reply is released and
        // both are written.
        let seq = r.push_remote(ReplyCtx::ANY, true, Echo::NONE, read_at);
        r.mark_request(CommandClass::Get, read_at);
        r.push_ready(|o| o.push(b'c'));
        r.mark_request(CommandClass::Other, read_at);
        let mut wait = Histogram::default();
        assert!(r.fill_remote(seq, hit(b"v"), &Plain, Instant::now(), &mut wait));
        assert_eq!(wait.count(), 1);
        r.take_written(Instant::now(), |c, _| seen.push(c));
        assert_eq!(seen.len(), 1);
        let n = r.unsent().len();
        r.advance(n);
        r.take_written(Instant::now(), |c, _| seen.push(c));
        assert_eq!(
            seen,
            [CommandClass::Set, CommandClass::Get, CommandClass::Other]
        );
        assert!(!r.has_marks());
    }

    #[test]
    fn partial_writes_advance() {
        let mut r = Replies::default();
        r.push_ready(|o| o.extend_from_slice(b"hello"));
        r.advance(2);
        assert_eq!(r.unsent(), b"llo");
        assert!(!r.is_idle());
        r.advance(3);
        assert!(r.is_idle());
    }
}
