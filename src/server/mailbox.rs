//! The messages workers send each other, and the inbox/outbox pair that
//! carries them: an unbounded crossbeam channel plus a `mio::Waker`, with
//! wake-ups coalesced through an atomic flag.
//!
//! Must not block: sends never wait (the channel is unbounded; its depth is
//! bounded instead by each connection's cap on replies it owes), and a burst
//! of messages to one worker (a loop turn's, sent as one [`Message::Batch`])
//! costs at most one wake syscall, because only
//! the send that flips the flag from clear to set wakes the receiver, and the
//! receiver clears the flag before it drains.
//!
//! Public (and hidden from the docs) only so that `benches/micro.rs` can
//! time the real cross-worker hop; it is not part of the crate's API.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use mio::Waker;

pub use crate::command::Broadcast;
use crate::command::{Outcome, OwnedCommand};
use crate::stats::WorkerStats;

/// Where a reply must go: a connection on the origin worker, identified by
/// its slab slot and generation (so a reply for a closed connection is
/// dropped rather than delivered to a new connection in the reused slot),
/// and the sequence number of the reply slot it fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    pub worker: u32,
    pub conn: usize,
    pub generation: u32,
    pub seq: u64,
}

/// A message between workers.
#[derive(Debug)]
pub enum Message {
    /// Run a command on the key's owner. A reply may carry at most
    /// `reply_cap` value bytes, what the origin reserved for it.
    Execute {
        reply_to: ReplyTo,
        cmd: OwnedCommand,
        reply_cap: usize,
    },
    /// The owner's answer to `Execute` when the value is larger than
    /// `reply_cap`: the command, not run, back to the origin, which sends
    /// it again once it has room for `value_len` bytes.
    Deferred {
        reply_to: ReplyTo,
        cmd: OwnedCommand,
        value_len: usize,
    },
    /// The owner's answer to `Execute`.
    Executed {
        reply_to: ReplyTo,
        outcome: Outcome<Vec<u8>>,
    },
    /// Apply a server-wide request and answer `reply_to` with `Applied`.
    Broadcast { reply_to: ReplyTo, what: Broadcast },
    /// A worker has applied a broadcast; its counters ride along for STATS.
    /// Boxed so that the rare big variant does not make every channel slot
    /// big.
    Applied {
        reply_to: ReplyTo,
        from: u32,
        stats: Box<WorkerStats>,
    },
    /// Send a copy of this worker's counters and histograms to the admin
    /// listener's channel (never blocks: the channel is unbounded).
    Gather {
        to: crossbeam_channel::Sender<crate::metrics::WorkerSnapshot>,
    },
    /// Messages one worker sent another in one loop turn, in order: one
    /// channel send and one receive for all of them. The emptied vector
    /// is kept by the receiver for its own sends.
    Batch(Vec<Message>),
    /// Stop accepting, finish what is owed, exit.
    Shutdown,
    /// Die, by a panic or an error: only sent by tests of the fail-stop
    /// rule (`ServerHandle::inject_worker_failure`).
    Fail { panic: bool },
}

/// The sending side of one worker's inbox.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: Sender<Message>,
    waker: Arc<Waker>,
    wake_pending: Arc<AtomicBool>,
}

/// The receiving side, owned by the worker.
#[derive(Debug)]
pub struct Inbox {
    rx: Receiver<Message>,
    wake_pending: Arc<AtomicBool>,
}

/// Builds a connected pair. The waker must be registered with the
/// receiving worker's `Poll`.
pub fn mailbox(waker: Waker) -> (Outbox, Inbox) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let wake_pending = Arc::new(AtomicBool::new(false));
    (
        Outbox {
            tx,
            waker: Arc::new(waker),
            wake_pending: wake_pending.clone(),
        },
        Inbox { rx, wake_pending },
    )
}

impl Outbox {
    /// Queues a message without waking the receiver; call [`Outbox::wake`]
    /// once after a batch. False if the receiver is gone (it has exited).
    pub fn send(&self, msg: Message) -> bool {
        self.tx.send(msg).is_ok()
    }

    /// Wakes the receiver unless a wake is already pending.
    pub fn wake(&self) -> io::Result<()> {
        // AcqRel pairs with the receiver's swap in `Inbox::start_drain`: if
        // we see the flag already set, the receiver has not yet cleared it,
        // so its coming drain happens after our sends.
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            self.waker.wake()?;
        }
        Ok(())
    }

    /// Sends and wakes at once, for rare messages (shutdown).
    pub fn send_and_wake(&self, msg: Message) -> io::Result<()> {
        if self.send(msg) {
            self.wake()?;
        }
        Ok(())
    }
}

impl Inbox {
    /// Call on a wake event, before draining: a send after this point wakes
    /// the worker again, so no message can be stranded.
    pub fn start_drain(&self) {
        self.wake_pending.swap(false, Ordering::AcqRel);
    }

    /// The next message, if any.
    pub fn try_recv(&self) -> Option<Message> {
        match self.rx.try_recv() {
            Ok(msg) => Some(msg),
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => None,
        }
    }
}
