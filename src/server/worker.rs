//! A worker's event loop: one `mio::Poll` on one pinned thread.
//!
//! Each turn: wait for readiness; accept until WouldBlock; drain the inbox
//! (commands from other workers, their replies, counters); drive each
//! readable connection (read until WouldBlock or budget, dispatch every
//! complete frame, and write its replies with one write if none is owed by
//! another worker); then write the remaining connections' ready replies,
//! one write each (a few replies ready ahead of one another worker owes
//! wait for it, to leave together), and wake each peer that was sent
//! messages, once. A
//! connection runs at most once per turn: one that yielded its turn runs
//! from the run queue, not again from a new event.
//!
//! The loop is thin on purpose: framing lives in the codec and the
//! connection, key-space work in the shard. Must not: block, lock, or hold a
//! borrowed frame across a turn.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::clock::Clock;
use crate::protocol::native::Limits;

use super::accept::{Accepted, Acceptor};
use super::budget::{Pass, TURN_BYTES, TURN_RUN_TIME, TURN_WRITE_BYTES, WRITE_FLOOR};
use super::connection::{Connection, Drive, DriveCtx, Flushed, Lifecycle};
use super::fair_queue::FairQueue;
use super::mailbox::Inbox;
use super::shard::Shard;
use super::stream::Stream;
use super::timeouts::{Expired, Timeouts, Watch};

mod inbox;

pub(crate) const LISTENER: Token = Token(usize::MAX);
/// The UNIX domain socket's listener, shared by every worker.
pub(crate) const UNIX_LISTENER: Token = Token(usize::MAX - 2);
/// This worker's own port (`--port-per-worker`).
pub(crate) const OWN_LISTENER: Token = Token(usize::MAX - 3);
/// TCP listeners after the first (more `--listen` addresses) count down
/// from here.
const MORE_LISTENERS: usize = usize::MAX - 16;
/// Listen addresses a server may have.
pub(crate) const MAX_LISTEN_ADDRS: usize = 64;

/// The token of TCP listener `i`.
fn listener_token(i: usize) -> Token {
    if i == 0 {
        LISTENER
    } else {
        Token(MORE_LISTENERS - i)
    }
}

/// Whether `token` names a listener rather than a connection or the waker.
fn is_listener(token: Token) -> bool {
    token == LISTENER
        || token == UNIX_LISTENER
        || token == OWN_LISTENER
        || (MORE_LISTENERS - MAX_LISTEN_ADDRS..MORE_LISTENERS).contains(&token.0)
}
pub(crate) const WAKER: Token = Token(usize::MAX - 1);

/// How long shutdown waits for owed replies before closing regardless; the
/// process must exit within a second of the signal.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);
/// Poll interval while shutting down, to notice the other workers finish.
const SHUTDOWN_TICK: Duration = Duration::from_millis(5);
/// Slab slots the expiry sweep looks at per tick: tens of microseconds,
/// so reclaiming dead items never makes a latency spike.
const SWEEP_PER_TICK: usize = 4096;
/// Clock milliseconds between sweeps, busy or idle: the sweep's cost is
/// paced by time, not by loop turns (a turn per request at low load would
/// otherwise pay a sweep per request). 200,000 slots a second.
const SWEEP_TICK_MS: u64 = 20;
/// The worker's one read buffer, shared by all its connections: a read
/// lands here and whole frames are handled in place.
const SCRATCH_LEN: usize = 64 * 1024;
/// A reply buffer handed back by another worker is reused only if it is
/// not much larger than what it carries: a forwarded SET's large buffer
/// must not travel back (and be held) for a few bytes of reply.
const REUSE_SLACK: usize = 4 * 1024;

/// State every worker can see: how many have finished shutting down.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub finished: AtomicUsize,
}

/// A connection named by slot and generation, so a stale entry in a work
/// list never touches a newer connection in the same slot.
type ConnRef = (usize, u32);

/// One worker.
#[derive(Debug)]
pub(crate) struct Worker {
    pub poll: Poll,
    acceptor: Acceptor,
    pub inbox: Inbox,
    pub shard: Shard,
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
    pub shared: Arc<Shared>,
    pub conns: Slab<Connection>,
    next_generation: u32,
    /// Connections with output (or a lifecycle step) to handle this turn.
    to_flush: Vec<ConnRef>,
    /// Connections to drive again next turn.
    to_run: Vec<ConnRef>,
    /// Connections discarding input before they close.
    lingering: Vec<ConnRef>,
    /// Connections stopped for want of memory room, woken when the
    /// worker's connections hold less.
    waiting_room: Vec<ConnRef>,
    /// Where every connection's reads land (see [`SCRATCH_LEN`]).
    scratch: Box<[u8]>,
    /// The connections' total at the last look at `waiting_room`: only
    /// memory freed since (or a newcomer) can wake one.
    waiting_scan_used: usize,
    waiting_added: bool,
    /// Some waiter's deferred front read waits for room (see
    /// [`Worker::wake_waiting_room`]).
    front_waiting: bool,
    shutdown_deadline: Option<Instant>,
    reported_finished: bool,
    /// Clock millisecond of the next expiry sweep.
    next_sweep_ms: u64,
    /// The idle and frame timeouts.
    watch: Watch,
    /// Bytes the connections may still write this turn.
    write_left: usize,
    /// The inbox has messages to handle: woken, or forwarded commands
    /// wait in the fair queue.
    inbox_more: bool,
    /// Forwarded commands past a turn's inbox budget, by client.
    fair: FairQueue,
    /// Queued connections the last turn's time slice left, kept for reuse.
    spilled: Vec<ConnRef>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        poll: Poll,
        acceptor: Acceptor,
        inbox: Inbox,
        shard: Shard,
        limits: Limits,
        clock: Arc<dyn Clock>,
        shared: Arc<Shared>,
        timeouts: Timeouts,
    ) -> Self {
        Worker {
            poll,
            acceptor,
            inbox,
            shard,
            limits,
            clock,
            shared,
            conns: Slab::new(),
            next_generation: 0,
            to_flush: Vec::new(),
            to_run: Vec::new(),
            lingering: Vec::new(),
            waiting_room: Vec::new(),
            scratch: vec![0; SCRATCH_LEN].into_boxed_slice(),
            waiting_scan_used: 0,
            waiting_added: false,
            front_waiting: false,
            shutdown_deadline: None,
            reported_finished: false,
            next_sweep_ms: 0,
            watch: Watch::new(timeouts),
            write_left: TURN_WRITE_BYTES,
            inbox_more: false,
            fair: FairQueue::default(),
            spilled: Vec::new(),
        }
    }

    /// Registers the listener and runs until shutdown completes.
    pub fn run(mut self) -> io::Result<()> {
        let registry = self.poll.registry();
        for (i, listener) in self.acceptor.listeners().enumerate() {
            registry.register(listener, listener_token(i), Interest::READABLE)?;
        }
        if let Some(listener) = self.acceptor.unix_listener() {
            self.poll
                .registry()
                .register(listener, UNIX_LISTENER, Interest::READABLE)?;
        }
        if let Some(listener) = self.acceptor.own_listener() {
            self.poll
                .registry()
                .register(listener, OWN_LISTENER, Interest::READABLE)?;
        }
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.shard.now_ms = self.clock.now_ms();
            let turn_start = Instant::now();
            self.write_left = TURN_WRITE_BYTES;
            let mut pending_runs = std::mem::take(&mut self.to_run);
            for event in events.iter() {
                match event.token() {
                    // While backing off, the retry timer accepts.
                    token if is_listener(token) && self.acceptor.backing_off() => {}
                    token if is_listener(token) => self.accept(),
                    WAKER => {
                        self.inbox.start_drain();
                        self.inbox_more = true;
                    }
                    Token(key) => {
                        let Some(conn) = self.conns.get_mut(key) else {
                            continue;
                        };
                        let conn_ref = (key, conn.generation);
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            conn.readable = true;
                            conn.read_closed |= event.is_read_closed() || event.is_error();
                            // One already queued runs from its queue, once:
                            // driving it here as well would give it two
                            // turns' work in one, and a second queue entry.
                            if !conn.queued_run {
                                self.drive(conn_ref);
                            }
                        }
                        if event.is_writable() {
                            self.queue_flush(conn_ref);
                        }
                    }
                }
            }
            if self.inbox_more {
                self.drain_inbox()?;
            }
            if self.acceptor.deadline().is_some() && self.acceptor.retry_due(Instant::now()) {
                self.accept();
            }
            // Queued connections run within the turn's time slice; those it
            // leaves go first next turn, still queued.
            let slice_end = turn_start + TURN_RUN_TIME;
            let mut runs = pending_runs.drain(..);
            for conn_ref in runs.by_ref() {
                if self.live(conn_ref).is_some_and(|conn| conn.queued_run) {
                    self.drive(conn_ref);
                    if Instant::now() >= slice_end {
                        break;
                    }
                }
            }
            self.spilled.extend(runs);
            if !self.spilled.is_empty() {
                self.spilled.append(&mut self.to_run);
                std::mem::swap(&mut self.spilled, &mut self.to_run);
            }
            // Hand the emptied vector back so the run list never reallocates.
            if self.to_run.is_empty() {
                self.to_run = pending_runs;
            }
            self.flush_all();
            self.shard.flush_wakes();
            self.sweep_if_due();
            self.expire_lingering();
            self.expire_timeouts();
            // Last: closing connections above frees room too, and a woken
            // connection's run keeps the next poll from sleeping.
            self.wake_waiting_room();
            if self.shutdown_deadline.is_some() && self.shutdown_step() {
                return Ok(());
            }
        }
    }

    /// Closes the connections whose idle or frame timeout has passed.
    fn expire_timeouts(&mut self) {
        let expired = self.watch.check(&self.conns, self.shard.now_ms);
        for &(key, why) in &expired {
            let reason = match why {
                Expired::Idle => {
                    self.shard.stats.idle_kicks += 1;
                    "idle timeout"
                }
                Expired::Frame => {
                    self.shard.stats.frame_timeouts += 1;
                    "request incomplete past the frame timeout"
                }
            };
            self.close(key, reason);
        }
        self.watch.give_back(expired);
    }

    fn sweep_if_due(&mut self) {
        let now_ms = self.shard.now_ms;
        if now_ms >= self.next_sweep_ms && self.shard.partition.has_sweep_work() {
            self.shard.partition.sweep(now_ms, SWEEP_PER_TICK);
            self.next_sweep_ms = now_ms.saturating_add(SWEEP_TICK_MS);
        }
    }

    /// How long the next poll may sleep: forever unless a run, shutdown,
    /// sweep or lingering connection needs a turn. A finite timeout arms a
    /// kernel timer on every sleep, so it is only asked for when needed.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.to_run.is_empty() || self.inbox_more {
            return Some(Duration::ZERO);
        }
        if self.shutdown_deadline.is_some() {
            return Some(SHUTDOWN_TICK);
        }
        let sweep = self.shard.partition.has_sweep_work().then(|| {
            let wait = self.next_sweep_ms.saturating_sub(self.shard.now_ms);
            Duration::from_millis(wait.clamp(1, SWEEP_TICK_MS))
        });
        let timeouts = self.watch.wait(&self.conns, self.shard.now_ms);
        let deadline = match (self.acceptor.deadline(), self.watch.log_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.lingering.is_empty() && deadline.is_none() {
            return sweep.into_iter().chain(timeouts).min();
        }
        let now = Instant::now();
        let deadline = deadline.map(|at| at.saturating_duration_since(now));
        let linger = self
            .lingering
            .iter()
            .filter_map(|&(key, generation)| match self.conns.get(key) {
                Some(c) if c.generation == generation => match c.lifecycle {
                    Lifecycle::Lingering { deadline } => {
                        Some(deadline.saturating_duration_since(now))
                    }
                    _ => None,
                },
                _ => None,
            })
            .min();
        [linger, sweep, deadline, timeouts]
            .into_iter()
            .flatten()
            .min()
    }

    fn accept(&mut self) {
        while let Some(Accepted {
            mut sock,
            local_only,
        }) = self.acceptor.next(&mut self.shard.stats)
        {
            // A connection's replies leave in one write per turn; Nagle
            // would only hold them back waiting for an ACK.
            if let Stream::Tcp(tcp) = &sock
                && let Err(e) = tcp.set_nodelay(true)
            {
                log::debug!("TCP_NODELAY: {e}");
            }
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut sock, Token(key), Interest::READABLE)
            {
                // Out of epoll watches or memory, as good as out of
                // descriptors: the same back-off.
                drop(sock);
                self.acceptor.closed();
                self.acceptor.failed(e);
                return;
            }
            self.next_generation = self.next_generation.wrapping_add(1);
            let mut conn = Connection::new(sock, self.next_generation, self.shard.now_ms);
            conn.local_only = local_only;
            entry.insert(conn);
            self.shard.stats.curr_connections += 1;
            self.shard.stats.total_connections += 1;
        }
    }

    fn live(&mut self, conn_ref: ConnRef) -> Option<&mut Connection> {
        live_in(&mut self.conns, conn_ref)
    }

    /// Counts what a connection holds now in its worker's budget.
    fn account(&mut self, conn_ref: ConnRef) {
        let Some(conn) = live_in(&mut self.conns, conn_ref) else {
            return;
        };
        let (held, input) = (conn.held(), conn.input_held());
        let stats = &mut self.shard.stats;
        stats.read_buf_bytes =
            (stats.read_buf_bytes + input as u64).saturating_sub(conn.accounted_input as u64);
        stats.read_buf_count = (stats.read_buf_count + u64::from(input > 0))
            .saturating_sub(u64::from(conn.accounted_input > 0));
        self.shard.conn_budget.update(conn.accounted, held);
        conn.accounted = held;
        conn.accounted_input = input;
        stats.conn_bytes = self.shard.conn_budget.used() as u64;
        if conn.wants_room && !conn.waiting_room {
            conn.waiting_room = true;
            self.waiting_room.push(conn_ref);
            self.waiting_added = true;
        }
        self.front_waiting |= conn.wants_room && conn.front_waits;
    }

    /// Once the worker's connections hold less than their budget (with
    /// some slack), the connections that stopped for want of room run
    /// again; those still without room stop again. A connection whose
    /// deferred front read waits may itself hold most of the budget
    /// (replies stuck behind that read), so the worker may never have
    /// slack again: such waiters are looked at whenever the total falls.
    fn wake_waiting_room(&mut self) {
        let used = self.shard.conn_budget.used();
        let changed = used < self.waiting_scan_used || std::mem::take(&mut self.waiting_added);
        self.waiting_scan_used = used;
        if self.waiting_room.is_empty()
            || !changed
            || !(self.shard.conn_budget.has_slack() || self.front_waiting)
        {
            return;
        }
        let budget = self.shard.conn_budget;
        // One front waiter at a time is offered the free pass; its turn
        // takes it unless the room came back first.
        let mut offer = budget.pass_free();
        self.front_waiting = false;
        let mut i = 0;
        while i < self.waiting_room.len() {
            let conn_ref = self.waiting_room[i];
            let Some(conn) = live_in(&mut self.conns, conn_ref) else {
                self.waiting_room.swap_remove(i);
                continue;
            };
            let allowance = budget.room(conn.accounted).allowance(conn.accounted);
            let take_pass = offer && conn.front_waits;
            if allowance >= conn.needs.max(1) || take_pass {
                offer &= !take_pass;
                conn.waiting_room = false;
                self.waiting_room.swap_remove(i);
                self.queue_run(conn_ref);
            } else {
                self.front_waiting |= conn.front_waits;
                i += 1;
            }
        }
    }

    /// Takes the pass past the budget back from a holder that is done
    /// with it, and has the waiters looked at again.
    fn release_pass_if(&mut self, done: impl FnOnce(&Pass) -> bool) {
        if self.shard.conn_budget.release_if(done) {
            self.waiting_added = true;
        }
    }

    /// Drives a connection again next turn.
    fn queue_run(&mut self, conn_ref: ConnRef) {
        if let Some(conn) = self.live(conn_ref)
            && !conn.queued_run
        {
            conn.queued_run = true;
            self.to_run.push(conn_ref);
        }
    }

    fn drive(&mut self, conn_ref: ConnRef) {
        let Some(conn) = live_in(&mut self.conns, conn_ref) else {
            return;
        };
        conn.queued_run = false;
        let mut cx = DriveCtx {
            room: self.shard.conn_budget.room(conn.accounted),
            reqs_per_turn: self.shard.settings.reqs_per_event,
            shard: &mut self.shard,
            slot: conn_ref.0,
            limits: &self.limits,
        };
        let drive = conn.drive(&mut cx, &mut self.scratch);
        if conn.activity.frame_started_ms.is_some() {
            self.watch.mid_frame();
        }
        match drive {
            Drive::Wait => {}
            Drive::Yield => {
                conn.queued_run = true;
                self.to_run.push(conn_ref);
                self.shard.stats.conn_yields += 1;
            }
            Drive::Close => {
                self.close(conn_ref.0, "closed by the client, or a read error");
                return;
            }
        }
        self.account(conn_ref);
        let Some(conn) = live_in(&mut self.conns, conn_ref) else {
            return;
        };
        // Replies that are all here go out now, before the next connection
        // is read: it is one write either way, and under load a turn can
        // take a while. Replies still awaited from other workers wait for
        // the end of the turn, when theirs may have arrived to join them.
        if conn.replies.owed() == 0 {
            self.flush_one(conn_ref);
        } else {
            self.queue_flush(conn_ref);
        }
    }

    fn queue_flush(&mut self, conn_ref: ConnRef) {
        if let Some(conn) = self.live(conn_ref)
            && !conn.queued_flush
        {
            conn.queued_flush = true;
            self.to_flush.push(conn_ref);
        }
    }

    /// Writes every queued connection's output (one write each, in the
    /// common case) and applies the lifecycle steps that follow. A
    /// connection flushed since it was queued is skipped, and so is one
    /// whose few ready replies wait for one owed by another worker
    /// ([`Replies::hold_output`](super::replies::Replies::hold_output)).
    fn flush_all(&mut self) {
        let mut list = std::mem::take(&mut self.to_flush);
        for &conn_ref in &list {
            let Some(conn) = self.live(conn_ref).filter(|c| c.queued_flush) else {
                continue;
            };
            // A reply owed by another worker queues the flush again when
            // it arrives.
            if conn.replies.hold_output() {
                conn.queued_flush = false;
                continue;
            }
            self.flush_one(conn_ref);
        }
        list.clear();
        if self.to_flush.is_empty() {
            self.to_flush = list;
        }
    }

    /// Writes one connection's output and applies the lifecycle step that
    /// follows.
    fn flush_one(&mut self, conn_ref: ConnRef) {
        let registry = self.poll.registry();
        let Some(conn) = live_in(&mut self.conns, conn_ref) else {
            return;
        };
        conn.queued_flush = false;
        let limit = self.write_left.clamp(WRITE_FLOOR, TURN_BYTES);
        let (written, flushed) = match conn.write_out(limit) {
            Ok(done) => done,
            Err(_) => {
                self.close(conn_ref.0, "write error");
                return;
            }
        };
        self.write_left = self.write_left.saturating_sub(written);
        let all_written = flushed == Flushed::All;
        if all_written {
            let replies = &conn.replies;
            let generation = conn.generation;
            // The reply that went past the budget has been written: the
            // room it took is free again.
            if self.shard.conn_budget.release_if(|p| {
                p.slot == conn_ref.0 && p.generation == generation && replies.released(p.seq)
            }) {
                self.waiting_added = true;
            }
        }
        if conn.replies.has_marks() {
            let latencies = &mut self.shard.latencies;
            conn.replies
                .take_written(Instant::now(), |class, ns| latencies.record(class, ns));
        }
        // Register WRITABLE only while output waits, so a connection
        // that keeps up costs no extra epoll_ctl or wake-ups.
        if all_written == conn.write_interest {
            let interest = if all_written {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            if registry
                .reregister(&mut conn.sock, Token(conn_ref.0), interest)
                .is_err()
            {
                self.close(conn_ref.0, "cannot reregister with the poll");
                return;
            }
            conn.write_interest = !all_written;
        }
        let was_closing = matches!(conn.lifecycle, Lifecycle::Failing | Lifecycle::Finishing);
        let room = self.shard.conn_budget.room(conn.accounted);
        let after = conn.after_write(&self.limits, room);
        self.account(conn_ref);
        let Some(conn) = live_in(&mut self.conns, conn_ref) else {
            return;
        };
        match after {
            Drive::Wait if flushed != Flushed::Limit => {}
            // Stopped by the turn's write allowance, not by the socket: no
            // writable event will come, so it writes on next turn.
            Drive::Wait => self.queue_run(conn_ref),
            Drive::Yield => {
                if was_closing && matches!(conn.lifecycle, Lifecycle::Lingering { .. }) {
                    self.lingering.push(conn_ref);
                }
                self.queue_run(conn_ref);
            }
            Drive::Close => self.close(conn_ref.0, "done"),
        }
    }

    fn expire_lingering(&mut self) {
        if self.lingering.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.lingering.len() {
            let conn_ref = self.lingering[i];
            let expired = match self.live(conn_ref).map(|c| c.lifecycle) {
                Some(Lifecycle::Lingering { deadline }) => deadline <= now,
                _ => {
                    self.lingering.swap_remove(i);
                    continue;
                }
            };
            if expired {
                self.lingering.swap_remove(i);
                self.close(conn_ref.0, "still sending a second after its error reply");
            } else {
                i += 1;
            }
        }
    }

    /// Closes connection `key`; at debug level, says whose and why.
    fn close(&mut self, key: usize, why: &str) {
        if let Some(conn) = self.conns.try_remove(key) {
            if log::log_enabled!(log::Level::Debug) {
                log::debug!(
                    "worker {}: closed the connection from {}: {why}",
                    self.shard.id,
                    conn.sock.peer()
                );
            }
            self.acceptor.closed();
            // Closing the descriptor removes it from epoll; replies still on
            // their way are dropped by the generation check.
            let stats = &mut self.shard.stats;
            stats.curr_connections = stats.curr_connections.saturating_sub(1);
            stats.read_buf_bytes = stats
                .read_buf_bytes
                .saturating_sub(conn.accounted_input as u64);
            stats.read_buf_count = stats
                .read_buf_count
                .saturating_sub(u64::from(conn.accounted_input > 0));
            self.shard.conn_budget.update(conn.accounted, 0);
            stats.conn_bytes = self.shard.conn_budget.used() as u64;
            let generation = conn.generation;
            self.release_pass_if(|p| p.slot == key && p.generation == generation);
            // After a crowd has gone, give back the slots it grew the slab
            // to (as far as the connections left allow): a burst of
            // connections should not keep its bookkeeping for good.
            if self.conns.capacity() > SLAB_KEEP && self.conns.len() * 4 < self.conns.capacity() {
                self.conns.shrink_to_fit();
            }
        }
    }

    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        self.shutdown_deadline = Some(Instant::now() + SHUTDOWN_GRACE);
        let (tcp, unix, own) = self.acceptor.close();
        if let Some(mut listener) = own {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        for mut listener in tcp {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        if let Some(mut listener) = unix {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let refs: Vec<ConnRef> = self
            .conns
            .iter_mut()
            .map(|(key, conn)| {
                conn.finish();
                (key, conn.generation)
            })
            .collect();
        for conn_ref in refs {
            self.queue_flush(conn_ref);
        }
    }

    /// One step of shutdown; true when the worker may exit. A worker keeps
    /// serving its inbox until every worker has finished, because another
    /// worker's last requests may still need this one's partition.
    fn shutdown_step(&mut self) -> bool {
        let Some(deadline) = self.shutdown_deadline else {
            return false;
        };
        let workers = self.shard.workers();
        // Finished once every connection is closed: lingering ones wait for
        // their client's EOF, so no reply in flight is lost to a reset.
        if !self.reported_finished && self.conns.is_empty() {
            self.reported_finished = true;
            self.shared.finished.fetch_add(1, Ordering::AcqRel);
        }
        self.shared.finished.load(Ordering::Acquire) >= workers || Instant::now() >= deadline
    }
}

/// Connection slots a worker keeps however few are open.
const SLAB_KEEP: usize = 64;

/// The connection `conn_ref` names, if it is still the same one (a slab
/// slot is reused with a new generation). A free function, so that callers
/// can hold other fields of the worker at the same time.
fn live_in(conns: &mut Slab<Connection>, (key, generation): ConnRef) -> Option<&mut Connection> {
    conns.get_mut(key).filter(|c| c.generation == generation)
}
