//! How a connection's input becomes requests: frames held from earlier
//! reads, fresh bytes in the worker's scratch buffer (a held frame is
//! completed with only as many of them as it needs), and the dispatch loop
//! that runs whole frames within the turn's quota and the memory room,
//! advances the read state, the frame timeout and the latency marks.
//!
//! Must not: read from or write to the socket (the caller reads, and
//! writes the replies), or keep any input but what is left unfinished.

use crate::metrics::CommandClass;
use crate::protocol::peek::Keys;
use crate::server::adapter::{Protocol, Step};
use crate::server::routing::{ConnId, Route};
use crate::server::stream::Stream;

use super::{Connection, DriveCtx, Lifecycle, ReadState};

/// Why handling input stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The input ends at or inside a frame: read more.
    NeedMore,
    /// The turn's requests or bytes are spent.
    Turn,
    /// The connection owes too much, or has no memory room: it waits.
    Full,
    /// The connection stopped reading for good (quit, framing error).
    Closed,
}

/// What one connection may still do this turn.
#[derive(Debug, Clone, Copy)]
pub(super) struct Quota {
    pub reqs: usize,
    pub bytes: usize,
}

impl Quota {
    pub fn spent(&self) -> bool {
        self.reqs == 0 || self.bytes == 0
    }

    pub fn spend(&mut self, bytes: usize) {
        self.reqs = self.reqs.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

impl Connection {
    /// Handles the frames held from earlier reads. `NeedMore` when what is
    /// left (if anything) is part of a frame.
    pub(super) fn process_held(&mut self, cx: &mut DriveCtx<'_>, quota: &mut Quota) -> Stop {
        if self.input.is_empty() {
            return Stop::NeedMore;
        }
        let input = std::mem::take(&mut self.input);
        let (consumed, stop) = self.process(input.data(), input.allocated(), cx, quota);
        self.input = input;
        if stop == Stop::Closed {
            self.input.clear();
        } else {
            self.input.consume(consumed);
            self.input.trim();
        }
        stop
    }

    /// Handles `fresh` bytes just read into the scratch buffer: first
    /// completing the frame held from earlier reads, with only as many of
    /// them as it needs, then whole frames straight from `fresh`. What is
    /// left is kept.
    pub(super) fn ingest(
        &mut self,
        fresh: &[u8],
        cx: &mut DriveCtx<'_>,
        quota: &mut Quota,
    ) -> Stop {
        let mut at = 0;
        if !self.input.is_empty() {
            let held = self.input.len();
            loop {
                let take = self.wanted().min(fresh.len() - at);
                self.input.extend(&fresh[at..at + take]);
                at += take;
                let input = std::mem::take(&mut self.input);
                let (consumed, stop) = self.process(input.data(), input.allocated(), cx, quota);
                self.input = input;
                if stop == Stop::Closed {
                    self.input.clear();
                    return stop;
                }
                if consumed >= held {
                    // The held frame is done: what followed it is still in
                    // `fresh`, so hand it back instead of copying on.
                    at -= self.input.len() - consumed;
                    self.input.clear();
                    if stop != Stop::NeedMore {
                        self.input.extend(&fresh[at..]);
                        return stop;
                    }
                    break;
                }
                self.input.consume(consumed);
                if stop != Stop::NeedMore || at == fresh.len() {
                    self.input.extend(&fresh[at..]);
                    return stop;
                }
            }
        }
        let (consumed, stop) = self.process(&fresh[at..], 0, cx, quota);
        if stop == Stop::Closed {
            return stop;
        }
        self.input.extend(&fresh[at + consumed..]);
        stop
    }

    /// How many more bytes the held frame needs, or, while its length is
    /// unknown, a chunk that doubles what is held (so a long line costs
    /// linear time to complete).
    pub(super) fn wanted(&self) -> usize {
        let held = self.input.len();
        match self.read {
            ReadState::Body { frame_len } if frame_len > held => frame_len - held,
            _ => held.max(256),
        }
    }

    /// Dispatches the complete frames at the front of `data` (the
    /// "processing" step), advancing the read state and the frame timeout.
    /// `held`: bytes the connection holds for `data` itself (its input
    /// buffer, or nothing for the scratch buffer). Returns the bytes
    /// consumed and why it stopped.
    pub(super) fn process(
        &mut self,
        data: &[u8],
        held: usize,
        cx: &mut DriveCtx<'_>,
        quota: &mut Quota,
    ) -> (usize, Stop) {
        let (consumed, stop, completed) = self.dispatch(data, held, cx, quota);
        let mid_frame = self.read != ReadState::Idle;
        self.activity.framed(mid_frame, completed, cx.shard.now_ms);
        (consumed, stop)
    }

    /// [`Connection::process`]'s loop; also says whether a request was
    /// completed (answered, refused or swallowed to its end).
    pub(super) fn dispatch(
        &mut self,
        data: &[u8],
        held: usize,
        cx: &mut DriveCtx<'_>,
        quota: &mut Quota,
    ) -> (usize, Stop, bool) {
        let mut at = 0;
        let mut completed = false;
        // Requests up to here had their keys prefetched.
        let mut prefetched_to = 0;
        loop {
            if let ReadState::Swallow { remaining } = self.read {
                let n = remaining.min((data.len() - at) as u64);
                at += n as usize;
                if n < remaining {
                    self.read = ReadState::Swallow {
                        remaining: remaining - n,
                    };
                    return (at, Stop::NeedMore, completed);
                }
                self.read = ReadState::Idle;
                completed = true;
            }
            let rest = &data[at..];
            let Some(&first) = rest.first() else {
                self.read = ReadState::Idle;
                return (at, Stop::NeedMore, completed);
            };
            if let ReadState::Body { frame_len } = self.read
                && rest.len() < frame_len
            {
                return (at, Stop::NeedMore, completed);
            }
            if quota.spent() {
                return (at, Stop::Turn, completed);
            }
            if self.owes_too_much(cx.limits) || cx.room.allowance(held + self.replies.memory()) == 0
            {
                self.needs = 1;
                return (at, Stop::Full, completed);
            }
            let protocol = *self.protocol.get_or_insert(Protocol::detect(first));
            if at >= prefetched_to {
                prefetched_to = at + self.prefetch(protocol, rest, cx);
            }
            let written = cx.shard.partition.bytes_written();
            let encoded = self.replies.encoded();
            let mut route = Route {
                replies: &mut self.replies,
                shard: &mut *cx.shard,
                conn: ConnId {
                    slot: cx.slot,
                    generation: self.generation,
                },
                room: cx.room,
                held,
                keys_done: self.keys_done,
                forwarded: 0,
                read_at: self.read_at,
                class: None,
                local_only: self.local_only,
            };
            let step = protocol.step(rest, &mut route, cx.limits);
            let (forwarded, class) = (route.forwarded, route.class);
            let work = forwarded
                + self.replies.encoded().wrapping_sub(encoded)
                + cx.shard.partition.bytes_written().wrapping_sub(written) as usize;
            if !matches!(step, Step::Incomplete { .. } | Step::Blocked { .. }) {
                // Counted once, when the request has pushed all its
                // replies: a read suspended for room and resumed is one.
                let class = class.unwrap_or(CommandClass::Other);
                self.replies.mark_request(class, self.read_at);
                log_step(&self.sock, rest, step);
            }
            match step {
                Step::Done { consumed } => {
                    at += consumed;
                    self.read = ReadState::Idle;
                    self.keys_done = 0;
                    completed = true;
                    quota.spend(consumed + work);
                }
                Step::Quit { .. } => {
                    self.read = ReadState::Idle;
                    self.lifecycle = Lifecycle::Finishing;
                    return (data.len(), Stop::Closed, completed);
                }
                Step::Incomplete { needed, framed } => {
                    self.read = if framed {
                        ReadState::Body { frame_len: needed }
                    } else {
                        ReadState::Header
                    };
                    return (at, Stop::NeedMore, completed);
                }
                Step::Refused { skip } => {
                    cx.shard.stats.request_errors += 1;
                    let now = skip.min(rest.len() as u64);
                    at += now as usize;
                    self.read = if skip > now {
                        ReadState::Swallow {
                            remaining: skip - now,
                        }
                    } else {
                        completed = true;
                        ReadState::Idle
                    };
                    self.keys_done = 0;
                    quota.spend(now as usize + work);
                }
                Step::Blocked { keys_done, need } => {
                    self.keys_done = keys_done;
                    self.needs = need;
                    return (at, Stop::Full, completed);
                }
                Step::Fatal => {
                    cx.shard.stats.framing_errors += 1;
                    self.read = ReadState::Idle;
                    self.lifecycle = Lifecycle::Failing;
                    return (data.len(), Stop::Closed, completed);
                }
            }
        }
    }
}

impl Connection {
    /// Prefetches what looking up the keys of the requests at the front of
    /// `rest` will touch, for the keys this worker owns, when there are
    /// two or more to overlap (one lookup alone gains nothing). Returns the
    /// bytes of the requests covered, at least one so that the next
    /// request looks again.
    fn prefetch(&self, protocol: Protocol, rest: &[u8], cx: &DriveCtx<'_>) -> usize {
        let mut keys = Keys::default();
        let span = protocol.peek_keys(rest, &mut keys);
        if keys.as_slice().len() >= 2 {
            let shard = &*cx.shard;
            if !self.local_only {
                keys.retain(|key| shard.router.owner(key) == shard.id);
            }
            if keys.as_slice().len() >= 2 {
                shard.partition.prefetch(keys.as_slice());
            }
        }
        span.max(1)
    }
}

/// At trace level, every request; at debug, every refusal and framing
/// error, naming the peer. The checks come first: a peer's address costs
/// a system call.
fn log_step(sock: &Stream, data: &[u8], step: Step) {
    let (level, what, len) = match step {
        Step::Done { consumed } | Step::Quit { consumed } => {
            (log::Level::Trace, "request", consumed)
        }
        Step::Refused { skip } => (
            log::Level::Debug,
            "refused a request",
            usize::try_from(skip).unwrap_or(usize::MAX),
        ),
        Step::Fatal => (log::Level::Debug, "cannot frame the stream", data.len()),
        Step::Incomplete { .. } | Step::Blocked { .. } => return,
    };
    if log::log_enabled!(level) {
        let shown = &data[..len.min(data.len()).min(80)];
        log::log!(level, "{}: {what}: {}", sock.peer(), shown.escape_ascii());
    }
}
