//! One client connection: its socket, the explicit state machine that
//! frames requests out of its input, and its ordered replies.
//!
//! With pipelining, reading and writing overlap, so the machine is split in
//! two halves:
//!
//! - the read side, [`ReadState`]: `Idle` (at a frame boundary), `Header`
//!   (part of a header held), `Body` (header accepted, waiting for the rest
//!   of the frame), `Swallow` (discarding the body of a refused request as
//!   it arrives). "Processing" is the moment a complete frame is
//!   dispatched, between two read states.
//! - the write side, [`Replies`]: replies owed and bytes not yet written
//!   (partial writes resume where they stopped).
//!
//! Input is read into the worker's scratch buffer and whole frames are
//! handled straight from it ([`frames`]); only what a read leaves
//! unfinished (part of a frame, or frames left when the turn ends) is
//! kept, in a [`ReadBuf`] sized to what arrived. A connection between
//! requests holds no input buffer. This file owns the socket side: the
//! read loop and its limits, pausing, deferred reads, writing, and the
//! lifecycle.
//!
//! [`Lifecycle`] says whether the connection still reads, is finishing, or
//! is being closed gracefully after a framing error.
//!
//! Must not: block, allocate per request on the local path, or let one
//! connection starve the others (work is budgeted per loop turn, memory
//! per worker, and a connection that owes too much stops reading until its
//! client catches up).

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use crate::limits::Limits;

use super::adapter::Protocol;
use super::budget::{Pass, REMOTE_RESERVE, Room, TURN_BYTES};
use super::readbuf::ReadBuf;
use super::replies::Replies;
use super::routing::ConnId;
use super::shard::Shard;
use super::stream::Stream;
use super::timeouts::Activity;

mod frames;

use frames::{Quota, Stop};

/// Replies a connection may owe before it stops reading more requests. This
/// bounds the work one client can queue at other workers, and so the depth
/// of every inbox, without ever blocking a send.
const MAX_OWED: usize = 1024;
/// Unwritten reply bytes past which a connection stops reading: a client
/// that pipelines without reading cannot make the server buffer without end.
const MAX_BUFFERED_OUT: usize = 1 << 20;
/// Bytes a connection may tie up in requests forwarded to other workers
/// (requests in flight with their reply reservations, deferred commands,
/// replies arrived and waiting their turn) before it stops reading.
const REMOTE_WINDOW: usize = 64 << 20;
/// A read never asks for less than this, so every protocol's header (24
/// bytes at most) can arrive once the turn's budget is spent.
const MIN_READ: usize = 64;
/// A frame with at least this much still to come is read straight into the
/// connection's buffer, not through the scratch buffer.
const DIRECT_READ_MIN: usize = 16 * 1024;
/// How long a connection that could not be framed keeps discarding input
/// after its error reply, so the reply is not destroyed by a reset.
pub(crate) const LINGER: Duration = Duration::from_secs(1);

/// The read side of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadState {
    /// At a frame boundary with nothing held.
    Idle,
    /// Part of a header is held.
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
    /// The turn's work ran out with more to do: drive again next turn.
    Yield,
    /// Close now.
    Close,
}

/// Why [`Connection::write_out`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything pending was written.
    All,
    /// The socket takes no more for now: a writable event follows.
    Blocked,
    /// The turn's write allowance ran out: write again next turn.
    Limit,
}

/// What driving a connection needs from its worker.
#[derive(Debug)]
pub(crate) struct DriveCtx<'a> {
    pub shard: &'a mut Shard,
    pub slot: usize,
    pub limits: &'a Limits,
    /// The connection's memory room at the start of its turn.
    pub room: Room,
    /// Requests per turn (`--reqs-per-event`).
    pub reqs_per_turn: usize,
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
    /// Reading stopped because too much is owed or held; resumed by
    /// [`Connection::after_write`] once it drains, or by the worker once
    /// its connections hold less.
    paused: bool,
    /// Stopped for want of memory room (or with a forwarded command
    /// deferred): the worker wakes it when its connections hold less.
    pub wants_room: bool,
    /// The room it waits for, in bytes.
    pub needs: usize,
    /// Its deferred front read was last tried with the room of the
    /// replies stuck behind it (its client had read everything) and still
    /// did not fit: it waits for other connections to free room, and the
    /// worker must look at it even when its total has no slack.
    pub front_waits: bool,
    /// In the worker's list of connections waiting for room.
    pub waiting_room: bool,
    /// What the worker's budget counts for this connection now.
    pub accounted: usize,
    /// Of that, its input buffer.
    pub accounted_input: usize,
    /// The client's EOF was read.
    eof_seen: bool,
    /// The last readiness event said the peer closed its write side.
    pub read_closed: bool,
    input: ReadBuf,
    read: ReadState,
    /// Keys of the frame at the front of the input already answered: a
    /// multi-key read suspended for want of memory resumes after them.
    keys_done: usize,
    /// It came in on its worker's own port (`--port-per-worker`): every
    /// key it names is served by this worker, never routed.
    pub local_only: bool,
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
            wants_room: false,
            needs: 0,
            front_waits: false,
            waiting_room: false,
            accounted: 0,
            accounted_input: 0,
            eof_seen: false,
            read_closed: false,
            input: ReadBuf::default(),
            read: ReadState::Idle,
            keys_done: 0,
            protocol: None,
            local_only: false,
            read_at: Instant::now(),
            activity: Activity::new(now_ms),
        }
    }

    /// Bytes this connection holds, as its worker's budget counts them.
    pub fn held(&self) -> usize {
        self.input.allocated() + self.replies.memory()
    }

    /// Bytes of input held between reads.
    pub fn input_held(&self) -> usize {
        self.input.allocated()
    }

    fn owes_too_much(&self, limits: &Limits) -> bool {
        self.replies.owed() >= MAX_OWED
            || self.replies.buffered_bytes() >= MAX_BUFFERED_OUT
            || self.replies.remote_bytes() >= remote_window(limits)
    }

    /// Open, owing nothing and holding no input: waiting for the client's
    /// next request, so the idle timeout may close it.
    pub fn waiting_for_request(&self) -> bool {
        self.lifecycle == Lifecycle::Open
            && !self.paused
            && self.read == ReadState::Idle
            && self.input.is_empty()
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

    /// Handles held input, then reads and handles more, until the socket
    /// would block, the turn's work is spent, or the connection owes or
    /// holds too much.
    pub fn drive(&mut self, cx: &mut DriveCtx<'_>, scratch: &mut [u8]) -> Drive {
        let mut quota = Quota {
            reqs: cx.reqs_per_turn.max(1),
            bytes: TURN_BYTES,
        };
        self.wants_room = false;
        self.needs = 0;
        self.front_waits = false;
        self.paused = false;
        loop {
            match self.lifecycle {
                Lifecycle::Open => {
                    if self.replies.has_deferred() {
                        self.retry_deferred(cx);
                    }
                    match self.process_held(cx, &mut quota) {
                        Stop::NeedMore | Stop::Closed => {}
                        Stop::Turn => return Drive::Yield,
                        Stop::Full if self.read_closed => return self.abandon_input(),
                        Stop::Full => return self.pause(cx.limits, self.needs),
                    }
                }
                Lifecycle::Lingering { .. } => self.input.clear(),
                Lifecycle::Finishing | Lifecycle::Failing => {
                    // No more requests, but the replies owed still go out:
                    // a read its owner deferred is sent again.
                    if self.replies.has_deferred() {
                        self.retry_deferred(cx);
                    }
                    return Drive::Wait;
                }
            }
            if matches!(self.lifecycle, Lifecycle::Finishing | Lifecycle::Failing) {
                return Drive::Wait;
            }
            if self.lifecycle == Lifecycle::Open && self.owes_too_much(cx.limits) {
                return self.pause(cx.limits, 1);
            }
            if !self.readable {
                return Drive::Wait;
            }
            if quota.spent() {
                return Drive::Yield;
            }
            let allowance = match self.lifecycle {
                Lifecycle::Open => cx.room.allowance(self.held()),
                _ => usize::MAX,
            };
            if allowance == 0 {
                if !self.read_closed {
                    return self.pause(cx.limits, 1);
                }
                if !self.input.is_empty() {
                    return self.abandon_input();
                }
                // The client has closed, but nothing of its stream was read
                // before room ran out: read a few bytes anyway (MIN_READ,
                // over the budget), to see the end of the stream or to hold
                // a frame that can then be abandoned; pausing instead would
                // keep the connection for as long as room stays short.
            }
            let direct = match self.read {
                ReadState::Body { frame_len } if self.lifecycle == Lifecycle::Open => {
                    let remaining = frame_len.saturating_sub(self.input.len());
                    (remaining >= DIRECT_READ_MIN).then_some(remaining)
                }
                _ => None,
            };
            let read = match direct {
                Some(remaining) => {
                    // Grow towards the frame's end, at most doubling what
                    // has arrived, within the memory room.
                    let len = self.input.len();
                    let cap = (2 * len)
                        .max(len + DIRECT_READ_MIN)
                        .min(len + allowance.max(MIN_READ));
                    let spare = self.input.spare(remaining, cap);
                    let want = spare.len();
                    match self.sock.read(spare) {
                        Ok(n) if n > 0 => {
                            self.input.filled(n);
                            self.note_read(cx.shard.now_ms);
                            quota.bytes = quota.bytes.saturating_sub(n);
                            Ok((n, want))
                        }
                        other => other.map(|n| (n, want)),
                    }
                }
                None => {
                    let want = scratch
                        .len()
                        .min(allowance.max(MIN_READ))
                        .min(quota.bytes.max(MIN_READ));
                    match self.sock.read(&mut scratch[..want]) {
                        Ok(n) if n > 0 => {
                            self.note_read(cx.shard.now_ms);
                            if self.lifecycle == Lifecycle::Open {
                                match self.ingest(&scratch[..n], cx, &mut quota) {
                                    Stop::NeedMore | Stop::Closed => {}
                                    Stop::Turn => {
                                        self.note_short_read(n, want);
                                        return Drive::Yield;
                                    }
                                    Stop::Full if self.read_closed => {
                                        return self.abandon_input();
                                    }
                                    Stop::Full => {
                                        self.note_short_read(n, want);
                                        return self.pause(cx.limits, self.needs);
                                    }
                                }
                            }
                            Ok((n, want))
                        }
                        other => other.map(|n| (n, want)),
                    }
                }
            };
            match read {
                Ok((0, _)) => {
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
                Ok((n, want)) => self.note_short_read(n, want),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Drive::Close,
            }
        }
    }

    /// The client has stopped sending while its frame waits for room it
    /// may never get: the frame can no longer be finished, so its bytes go
    /// and the replies it is owed are written before the connection
    /// closes. Waiting instead would hold the connection, its slot and its
    /// bytes for as long as the server stays short of room, since a
    /// paused connection reads nothing and so never sees the end of its
    /// stream.
    fn abandon_input(&mut self) -> Drive {
        self.input.clear();
        self.read = ReadState::Idle;
        self.finish();
        Drive::Wait
    }

    /// Bytes arrived: one clock read per read syscall, so every request
    /// this read completes was read now, for its latency.
    fn note_read(&mut self, now_ms: u64) {
        self.read_at = Instant::now();
        self.activity.last_read_ms = now_ms;
    }

    /// A short read emptied the socket's receive queue. With edge-triggered
    /// epoll every later arrival raises a new event, so the read that would
    /// only answer WouldBlock is skipped: one syscall less per request at
    /// depth 1. Not when the peer's FIN is already queued: it raises no
    /// further event, so read on until EOF.
    fn note_short_read(&mut self, n: usize, want: usize) {
        if n < want && !self.read_closed {
            self.readable = false;
        }
    }

    /// Stops reading until what is owed or held drains, or, when it is
    /// room the connection lacks, until `need` bytes of it are free.
    fn pause(&mut self, limits: &Limits, need: usize) -> Drive {
        self.paused = true;
        if self.owes_too_much(limits) {
            // Waiting for its client to read, or for other workers: the
            // frame is timed afresh once reading resumes.
            self.activity.frame_started_ms = None;
        } else {
            // Waiting for room keeps the frame's clock running: the room
            // is held by partial requests, the oldest of which then time
            // out and free it. Otherwise a client that closed behind a
            // zero window (its end of stream unread, so never seen) would
            // hold its slot and its bytes for as long as room is short.
            self.wants_room = true;
            self.needs = self.needs.max(need);
        }
        Drive::Wait
    }

    /// Sends again the forwarded commands their owners deferred, oldest
    /// first, as far as the memory room allows. The front of the reply
    /// queue may also use the room that only it can free (replies stuck
    /// behind it and their buffers): they cannot leave before it, so
    /// without it they would wait for ever. Only while the client has read
    /// everything written so far: a client that does not read frees
    /// nothing by its front's completion, and lending it room would let a
    /// crowd of such clients take the worker to twice its budget.
    /// That can take the worker past its budget by at most what its
    /// connections already hold (twice the budget at worst). When even
    /// that is short (other connections hold the rest, each waiting the
    /// same way), the front takes the worker's pass if it is free
    /// ([`Pass`]).
    fn retry_deferred(&mut self, cx: &mut DriveCtx<'_>) {
        let room = cx.room;
        let mut held = self.held();
        let caught_up = self.replies.unsent().is_empty();
        let stuck = if caught_up {
            self.replies.stuck_bytes()
        } else {
            0
        };
        let shard = &mut *cx.shard;
        let conn = ConnId {
            slot: cx.slot,
            generation: self.generation,
        };
        let mut needs = 0;
        let mut front_waits = false;
        self.replies.retry_deferred(|seq, front, cmd, value_len| {
            let charge = cmd.buf.len() + value_len + REMOTE_RESERVE;
            let unblocks = front && charge <= room.allowance(held) + stuck;
            let fits = room.admits(held, charge) || unblocks;
            if !fits && front && caught_up && shard.conn_budget.pass_free() {
                shard.conn_budget.grant(Pass {
                    slot: conn.slot,
                    generation: conn.generation,
                    seq,
                });
            } else if !fits {
                // What the worker must find free besides: for the front,
                // its stuck replies' room counts as its own.
                let short = if front {
                    charge - stuck.min(charge)
                } else {
                    charge
                };
                needs = needs.max(short);
                front_waits = front && caught_up;
                return Err(cmd);
            }
            held += charge;
            let owner = shard.router.owner(cmd.as_command().key);
            let to = conn.reply_to(shard, seq);
            shard.forward_owned(owner, to, cmd, value_len + REMOTE_RESERVE);
            Ok(charge)
        });
        if self.replies.has_deferred() {
            self.wants_room = true;
            self.needs = self.needs.max(needs);
            self.front_waits = front_waits;
        }
    }

    /// Its deferred front read may now use the room of the replies stuck
    /// behind it, and was not tried that way yet: the client has read
    /// everything written. Only the connection's own turn tries it, so
    /// when its output drains it must be driven again; otherwise, holding
    /// most of its worker's budget itself, it would wait for room that
    /// only its front can free.
    fn front_may_go(&self) -> bool {
        self.replies.front_deferred() && self.replies.unsent().is_empty() && !self.front_waits
    }

    /// Writes the pending output, as much as the socket takes and at most
    /// `limit` bytes (at least one write is tried). Returns the bytes
    /// written and why it stopped.
    pub fn write_out(&mut self, limit: usize) -> io::Result<(usize, Flushed)> {
        let mut written = 0;
        loop {
            let unsent = self.replies.unsent();
            if unsent.is_empty() {
                return Ok((written, Flushed::All));
            }
            if written > 0 && written >= limit {
                return Ok((written, Flushed::Limit));
            }
            let chunk = &unsent[..unsent.len().min(limit.saturating_sub(written).max(1))];
            match self.sock.write(chunk) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.replies.advance(n);
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((written, Flushed::Blocked));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// After writing: what the lifecycle asks for now that output may have
    /// drained. `Yield` means "drive me again": backpressure lifted, or a
    /// connection that failed framing must start discarding input.
    /// A connection stopped for want of room resumes here only when it
    /// holds less than before (its client read) and has some room;
    /// otherwise its worker wakes it once memory is freed.
    pub fn after_write(&mut self, limits: &Limits, room: Room) -> Drive {
        let held = self.held();
        let resumes = !self.wants_room || (held < self.accounted && room.allowance(held) > 0);
        match self.lifecycle {
            Lifecycle::Open | Lifecycle::Finishing | Lifecycle::Failing if self.front_may_go() => {
                Drive::Yield
            }
            Lifecycle::Open if self.paused && !self.owes_too_much(limits) && resumes => {
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

/// Bytes a connection may tie up in forwarded requests: at least two of
/// the largest values, so a connection's own largest reply always fits.
fn remote_window(limits: &Limits) -> usize {
    REMOTE_WINDOW.max(2 * (limits.max_value_len + REMOTE_RESERVE))
}
