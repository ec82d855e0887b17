//! One client connection: its socket, its read buffer, the explicit state
//! machine that frames requests out of it, and its ordered replies.
//!
//! The seed's machine is Idle -> ReadingHeader -> ReadingBody -> Processing
//! -> WritingResponse for one request at a time. With pipelining, reading
//! and writing overlap, so the machine is split in two halves:
//!
//! - the read side, [`ReadState`]: `Idle` (at a frame boundary, nothing
//!   buffered), `Header` (part of a header buffered), `Body` (header accepted,
//!   waiting for the rest of the frame), `Swallow` (discarding the body of a
//!   refused request as it arrives). "Processing" is the moment a complete
//!   frame is dispatched, between two read states.
//! - the write side, [`Replies`]: replies owed and bytes not yet written
//!   (partial writes resume where they stopped).
//!
//! [`Lifecycle`] says whether the connection still reads, is finishing, or
//! is being closed gracefully after a framing error.
//!
//! Must not: block, allocate per request on the local path, or let one
//! connection starve the others (reads are budgeted per loop turn, and a
//! connection that owes too much stops reading until its client catches up).

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use crate::limits::Limits;
use crate::metrics::CommandClass;

use super::adapter::{Protocol, Step};
use super::replies::Replies;
use super::routing::{ConnId, Route};
use super::shard::Shard;
use super::stream::Stream;
use super::timeouts::Activity;

/// Replies a connection may owe before it stops reading more requests. This
/// bounds the work one client can queue at other workers, and so the depth
/// of every inbox, without ever blocking a send.
const MAX_OWED: usize = 1024;
/// Unwritten reply bytes past which a connection stops reading: a client
/// that pipelines without reading cannot make the server buffer without end.
const MAX_BUFFERED_OUT: usize = 1 << 20;
/// Reply bytes a connection may have coming from other workers, sizing its
/// window of forwarded requests in flight. A forwarded GET's reply size is
/// unknown until the owner runs it, so the only hard bound is a count: the
/// window is this budget divided by the largest item, which bounds a
/// connection's memory at `MAX_BUFFERED_OUT` plus this budget (or
/// `MIN_REMOTE_WINDOW` items, if larger).
const REMOTE_REPLY_BUDGET: usize = 64 << 20;
/// The window never shrinks below this, so a deep pipeline still amortises
/// its wakes with large items. Only forwarded GETs count: other replies are
/// a header of known size.
const MIN_REMOTE_WINDOW: usize = 16;
/// Bytes read from one connection in one loop turn before the others get a
/// turn; the rest is read on the next turn.
const READ_BUDGET: usize = 256 * 1024;
/// A read never asks for less than this, so every protocol's header (24
/// bytes at most) can arrive once the turn's budget is spent.
const MIN_READ: usize = 64;
/// Size of a fresh read buffer: many small requests per read syscall.
const READ_BUF_INITIAL: usize = 16 * 1024;
/// A read buffer grown past this for one big frame is released once empty.
const READ_BUF_KEEP: usize = 256 * 1024;
/// How long a connection that could not be framed keeps discarding input
/// after its error reply, so the reply is not destroyed by a reset.
pub(crate) const LINGER: Duration = Duration::from_secs(1);

/// The read side of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadState {
    /// At a frame boundary with nothing buffered.
    Idle,
    /// Part of a header is buffered.
    Header,
    /// The header was accepted; the frame is `frame_len` bytes in total.
    Body { frame_len: usize },
    /// Discarding `remaining` more bytes of a refused request.
    Swallow { remaining: u64 },
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Reading and answering requests.
    Open,
    /// No more reading (the client half-closed, or the server is shutting
    /// down): answer what was received, then close; gracefully, through
    /// `Lingering`, unless the client's EOF was already read.
    Finishing,
    /// The stream could not be framed. An error reply is queued behind the
    /// replies owed; once all are written the write side is shut down.
    Failing,
    /// Write side shut down: discarding input until EOF or the deadline, so
    /// the client receives the error instead of a reset.
    Lingering { deadline: Instant },
}

/// What the worker must do after driving a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drive {
    /// Wait for the next readiness event (or for replies to drain).
    Wait,
    /// The read budget ran out with data possibly left: drive again next turn.
    Yield,
    /// Close now.
    Close,
}

/// A read buffer: `buf[start..end]` is received, unprocessed input. The
/// vector is kept initialised to its full length so reads go straight into
/// it without unsafe code.
#[derive(Debug, Default)]
struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    fn len(&self) -> usize {
        self.end - self.start
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > READ_BUF_KEEP {
                self.buf = Vec::new();
            }
        }
    }

    fn clear(&mut self) {
        let n = self.len();
        self.consume(n);
    }

    /// Space to read into. `frame_len` is the length of the frame being
    /// assembled, when known: the buffer grows towards it, but never to more
    /// than twice what has actually arrived, so a length the peer merely
    /// claims is never allocated up front.
    fn spare(&mut self, frame_len: usize) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf.resize(READ_BUF_INITIAL, 0);
        }
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let doubled = self.buf.len() * 2;
            let target = if frame_len > self.buf.len() {
                doubled.min(frame_len)
            } else {
                doubled
            };
            self.buf.resize(target, 0);
        }
        &mut self.buf[self.end..]
    }

    fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }
}

/// A client connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub sock: Stream,
    /// Distinguishes this connection from others that use the same slab
    /// slot before or after it.
    pub generation: u32,
    pub lifecycle: Lifecycle,
    pub replies: Replies,
    /// Edge-triggered readiness not yet drained: the socket may hold more.
    pub readable: bool,
    /// WRITABLE interest is registered (only while output is pending).
    pub write_interest: bool,
    /// Already in the worker's flush list this turn.
    pub queued_flush: bool,
    /// Already in the worker's run list for the next turn.
    pub queued_run: bool,
    /// Reading stopped because too many replies are owed; resumed by
    /// [`Connection::after_write`] once they drain.
    paused: bool,
    /// The client's EOF was read.
    eof_seen: bool,
    /// The last readiness event said the peer closed its write side.
    pub read_closed: bool,
    rbuf: ReadBuf,
    read: ReadState,
    /// Fixed by the first byte; `None` until it arrives.
    protocol: Option<Protocol>,
    /// When the last read returned bytes.
    read_at: Instant,
    /// What the idle and frame timeouts are measured from.
    pub activity: Activity,
}

impl Connection {
    pub fn new(sock: Stream, generation: u32, now_ms: u64) -> Self {
        Connection {
            sock,
            generation,
            lifecycle: Lifecycle::Open,
            replies: Replies::default(),
            readable: false,
            write_interest: false,
            queued_flush: false,
            queued_run: false,
            paused: false,
            eof_seen: false,
            read_closed: false,
            rbuf: ReadBuf::default(),
            read: ReadState::Idle,
            protocol: None,
            read_at: Instant::now(),
            activity: Activity::new(now_ms),
        }
    }

    fn owes_too_much(&self, limits: &Limits) -> bool {
        self.replies.owed() >= MAX_OWED
            || self.replies.buffered_bytes() >= MAX_BUFFERED_OUT
            || self.replies.remote_in_flight() >= remote_window(limits)
    }

    /// Open, owing nothing and holding no input: waiting for the client's
    /// next request, so the idle timeout may close it.
    pub fn waiting_for_request(&self) -> bool {
        self.lifecycle == Lifecycle::Open
            && !self.paused
            && self.read == ReadState::Idle
            && self.rbuf.len() == 0
            && self.replies.is_idle()
    }

    /// Stop reading and close once everything owed is written.
    pub fn finish(&mut self) {
        if self.lifecycle == Lifecycle::Open {
            self.lifecycle = Lifecycle::Finishing;
            // A trailing partial request is never run: nothing to time.
            self.activity.frame_started_ms = None;
        }
    }

    /// Reads and handles requests until the socket would block, the turn's
    /// read budget is spent, or the connection owes too much.
    pub fn drive(&mut self, shard: &mut Shard, slot: usize, limits: &Limits) -> Drive {
        let mut budget = READ_BUDGET;
        loop {
            match self.lifecycle {
                Lifecycle::Open => {
                    let completed = self.process(shard, slot, limits);
                    let mid_frame = self.read != ReadState::Idle;
                    self.activity.framed(mid_frame, completed, shard.now_ms);
                }
                Lifecycle::Lingering { .. } => self.rbuf.clear(),
                Lifecycle::Finishing | Lifecycle::Failing => return Drive::Wait,
            }
            if self.lifecycle == Lifecycle::Failing {
                return Drive::Wait;
            }
            if self.lifecycle == Lifecycle::Open && self.owes_too_much(limits) {
                self.paused = true;
                // Not the client's delay: the frame is timed afresh once
                // reading resumes.
                self.activity.frame_started_ms = None;
                return Drive::Wait;
            }
            if !self.readable {
                return Drive::Wait;
            }
            if budget == 0 {
                return Drive::Yield;
            }
            let frame_len = match self.read {
                ReadState::Body { frame_len } => frame_len,
                _ => 0,
            };
            let spare = self.rbuf.spare(frame_len);
            // Never less than a header, so progress is always possible.
            let want = spare.len().min(budget.max(MIN_READ));
            match self.sock.read(&mut spare[..want]) {
                Ok(0) => {
                    self.readable = false;
                    self.eof_seen = true;
                    return match self.lifecycle {
                        Lifecycle::Lingering { .. } => Drive::Close,
                        _ => {
                            self.finish();
                            Drive::Wait
                        }
                    };
                }
                Ok(n) => {
                    // One clock read per read syscall: every request this
                    // read completes was read now, for its latency.
                    self.read_at = Instant::now();
                    self.rbuf.filled(n);
                    self.activity.last_read_ms = shard.now_ms;
                    budget = budget.saturating_sub(n);
                    // A short read emptied the socket's receive queue. With
                    // edge-triggered epoll every later arrival raises a new
                    // event, so the read that would only answer WouldBlock
                    // is skipped: one syscall less per request at depth 1.
                    // Not when the peer's FIN is already queued: it raises
                    // no further event, so read on until EOF.
                    if n < want && !self.read_closed {
                        self.readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Drive::Close,
            }
        }
    }

    /// Dispatches every complete frame in the buffer (the seed's
    /// "processing" step), advancing the read state. True if a request
    /// was completed (answered, refused or swallowed to its end).
    fn process(&mut self, shard: &mut Shard, slot: usize, limits: &Limits) -> bool {
        let mut completed = false;
        while !self.owes_too_much(limits) {
            if let ReadState::Swallow { remaining } = self.read {
                let n = remaining.min(self.rbuf.len() as u64);
                self.rbuf.consume(n as usize);
                if n < remaining {
                    self.read = ReadState::Swallow {
                        remaining: remaining - n,
                    };
                    return completed;
                }
                self.read = ReadState::Idle;
                completed = true;
            }
            if let ReadState::Body { frame_len } = self.read
                && self.rbuf.len() < frame_len
            {
                return completed;
            }
            let data = &self.rbuf.buf[self.rbuf.start..self.rbuf.end];
            let Some(&first) = data.first() else {
                return completed;
            };
            let protocol = *self.protocol.get_or_insert(Protocol::detect(first));
            let mut route = Route {
                replies: &mut self.replies,
                shard,
                conn: ConnId {
                    slot,
                    generation: self.generation,
                },
                read_at: self.read_at,
                class: None,
            };
            let step = protocol.step(data, &mut route, limits);
            let class = route.class.unwrap_or(CommandClass::Other);
            if !matches!(step, Step::Incomplete { .. }) {
                self.replies.mark_request(class, self.read_at);
                log_step(&self.sock, data, step);
            }
            match step {
                Step::Done { consumed } => {
                    self.rbuf.consume(consumed);
                    self.read = ReadState::Idle;
                    completed = true;
                }
                Step::Quit { .. } => {
                    self.rbuf.clear();
                    self.read = ReadState::Idle;
                    self.lifecycle = Lifecycle::Finishing;
                    return completed;
                }
                Step::Incomplete { needed, framed } => {
                    self.read = match (self.rbuf.len(), framed) {
                        (0, _) => ReadState::Idle,
                        (_, false) => ReadState::Header,
                        (_, true) => ReadState::Body { frame_len: needed },
                    };
                    return completed;
                }
                Step::Refused { skip } => {
                    shard.stats.request_errors += 1;
                    let available = self.rbuf.len() as u64;
                    let now = skip.min(available);
                    self.rbuf.consume(now as usize);
                    self.read = if skip > now {
                        ReadState::Swallow {
                            remaining: skip - now,
                        }
                    } else {
                        completed = true;
                        ReadState::Idle
                    };
                }
                Step::Fatal => {
                    shard.stats.framing_errors += 1;
                    self.rbuf.clear();
                    self.read = ReadState::Idle;
                    self.lifecycle = Lifecycle::Failing;
                    return completed;
                }
            }
        }
        completed
    }

    /// Writes as much of the pending output as the socket takes. Ok(true)
    /// when everything was written.
    pub fn write_out(&mut self) -> io::Result<bool> {
        loop {
            let unsent = self.replies.unsent();
            if unsent.is_empty() {
                return Ok(true);
            }
            match self.sock.write(unsent) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.replies.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// After writing: what the lifecycle asks for now that output may have
    /// drained. `Yield` means "drive me again": backpressure lifted, or a
    /// connection that failed framing must start discarding input.
    pub fn after_write(&mut self, limits: &Limits) -> Drive {
        match self.lifecycle {
            Lifecycle::Open if self.paused && !self.owes_too_much(limits) => {
                self.paused = false;
                Drive::Yield
            }
            Lifecycle::Open | Lifecycle::Lingering { .. } => Drive::Wait,
            _ if !self.replies.is_idle() => Drive::Wait,
            // The client sent EOF, so nothing of it is left unread: a plain
            // close cannot turn into a reset.
            Lifecycle::Finishing if self.eof_seen => Drive::Close,
            // Unread input may remain (the server is shutting down, or had
            // stopped reading under backpressure): closing now would send a
            // reset that can destroy replies still in flight, so close the
            // write side and drain first, as after a framing error.
            Lifecycle::Finishing | Lifecycle::Failing => {
                if self.sock.shutdown(Shutdown::Write).is_err() {
                    return Drive::Close;
                }
                self.lifecycle = Lifecycle::Lingering {
                    deadline: Instant::now() + LINGER,
                };
                self.readable = true;
                Drive::Yield
            }
        }
    }
}

/// Forwarded requests a connection may have in flight (see
/// [`REMOTE_REPLY_BUDGET`]).
fn remote_window(limits: &Limits) -> usize {
    (REMOTE_REPLY_BUDGET / limits.max_value_len.max(1)).clamp(MIN_REMOTE_WINDOW, MAX_OWED)
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
        Step::Incomplete { .. } => return,
    };
    if log::log_enabled!(level) {
        let shown = &data[..len.min(data.len()).min(80)];
        log::log!(level, "{}: {what}: {}", sock.peer(), shown.escape_ascii());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_buffer_grows_only_with_what_arrived() {
        let mut rb = ReadBuf::default();
        let frame_len = 10 << 20;
        let first = rb.spare(frame_len).len();
        assert_eq!(first, READ_BUF_INITIAL);
        rb.filled(first);
        // Full: grows to twice what arrived, not to the claimed frame length.
        assert_eq!(rb.spare(frame_len).len(), READ_BUF_INITIAL);
        assert_eq!(rb.buf.len(), 2 * READ_BUF_INITIAL);
    }

    #[test]
    fn read_buffer_compacts_before_growing() {
        let mut rb = ReadBuf::default();
        let n = rb.spare(0).len();
        rb.filled(n);
        rb.consume(100);
        assert_eq!(rb.spare(0).len(), 100);
        assert_eq!(rb.buf.len(), READ_BUF_INITIAL);
        assert_eq!(rb.len(), READ_BUF_INITIAL - 100);
    }
}
