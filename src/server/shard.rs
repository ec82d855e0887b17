//! A worker's share of the server apart from its connections: its
//! partition, its counters, and the outboxes to every other worker.
//!
//! This is where a keyed command is counted and executed, whether it came
//! from one of this worker's connections or from another worker's inbox, so
//! both paths count the same way. Must not: touch sockets or connections.

use std::time::Instant;

use crate::command::{Command, Op, Outcome};
use crate::router::Router;
use crate::stats::WorkerStats;
use crate::storage::Partition;

use super::mailbox::{Message, Outbox, ReplyTo};
use super::native::Encoder;

/// Per-worker state shared by all of its connections.
#[derive(Debug)]
pub(crate) struct Shard {
    pub id: usize,
    pub router: Router,
    pub partition: Partition,
    pub stats: WorkerStats,
    /// Clock milliseconds read at the start of this loop turn.
    pub now_ms: u64,
    outboxes: Vec<Outbox>,
    /// Workers sent a message this turn; woken once at the end of the turn.
    to_wake: Vec<bool>,
    started: Instant,
}

impl Shard {
    pub fn new(id: usize, outboxes: Vec<Outbox>) -> Self {
        let workers = outboxes.len();
        Shard {
            id,
            router: Router::new(workers),
            partition: Partition::new(),
            stats: WorkerStats::default(),
            now_ms: 0,
            outboxes,
            to_wake: vec![false; workers],
            started: Instant::now(),
        }
    }

    pub fn workers(&self) -> usize {
        self.outboxes.len()
    }

    /// Runs a command this worker owns, counting it.
    pub fn execute(&mut self, cmd: &Command<'_>) -> Outcome<&[u8]> {
        let outcome = self.partition.execute(cmd, self.now_ms);
        let s = &mut self.stats;
        match (&cmd.op, &outcome) {
            (Op::Get, Outcome::Hit { .. }) => {
                s.cmd_get += 1;
                s.get_hits += 1;
            }
            (Op::Get, _) => {
                s.cmd_get += 1;
                s.get_misses += 1;
            }
            (Op::Set { .. }, _) => s.cmd_set += 1,
            (Op::Delete, Outcome::Deleted) => {
                s.cmd_delete += 1;
                s.delete_hits += 1;
            }
            (Op::Delete, _) => {
                s.cmd_delete += 1;
                s.delete_misses += 1;
            }
        }
        outcome
    }

    /// Queues a message for worker `to`; the wake is sent at the end of the
    /// turn, so a burst costs one wake.
    pub fn send(&mut self, to: usize, msg: Message) {
        if let Some(outbox) = self.outboxes.get(to) {
            // A worker that has exited has nothing left to answer; its reply
            // slot simply never fills and the connection closes at shutdown.
            if outbox.send(msg) {
                self.to_wake[to] = true;
            }
        }
    }

    /// Sends a command to its owner.
    pub fn forward(&mut self, owner: usize, reply_to: ReplyTo, cmd: &Command<'_>) {
        self.stats.forwarded += 1;
        self.send(
            owner,
            Message::Execute {
                reply_to,
                cmd: cmd.to_owned_command(),
            },
        );
    }

    /// Asks every other worker for its counters.
    pub fn gather(&mut self, reply_to: ReplyTo) {
        for to in 0..self.workers() {
            if to != self.id {
                self.send(to, Message::Gather { reply_to });
            }
        }
    }

    /// Wakes every worker sent a message since the last call.
    pub fn flush_wakes(&mut self) {
        for (to, pending) in self.to_wake.iter_mut().enumerate() {
            if std::mem::take(pending)
                && let Err(e) = self.outboxes[to].wake()
            {
                log::error!("worker {}: waking worker {to} failed: {e}", self.id);
            }
        }
    }

    /// This worker's counters, with the partition's folded in.
    pub fn snapshot(&self) -> WorkerStats {
        let p = self.partition.stats();
        WorkerStats {
            curr_items: p.items,
            total_items: p.total_items,
            bytes: p.bytes,
            get_expired: p.expired_on_access,
            ..self.stats
        }
    }

    /// The reply encoder for this worker's connections.
    pub fn encoder(&self) -> Encoder {
        Encoder {
            started: self.started,
            threads: self.workers(),
        }
    }
}
