//! A worker's share of the server apart from its connections: its
//! partition, its counters, and the outboxes to every other worker.
//!
//! This is where a keyed command is counted and executed, whether it came
//! from one of this worker's connections or from another worker's inbox, so
//! both paths count the same way; and where server-wide requests (STAT,
//! FLUSH) are applied to this worker and fanned out to the others. Must not:
//! touch sockets or connections.

use std::time::Instant;

use crate::command::{Command, MetaStatus, Op, Outcome, OwnedCommand};
use crate::metrics::Latencies;
use crate::router::Router;
use crate::stats::{Settings, WorkerStats};
use crate::storage::Partition;

use super::adapter::Encoder;
use super::budget::Budget;
use super::mailbox::{Broadcast, Message, Outbox, ReplyTo};

/// Emptied batches a worker keeps for its own sends, and the most messages
/// one may have room for: the batches travel back and forth between
/// workers instead of being allocated each turn, and a burst's large one
/// is not kept.
const SPARES: usize = 8;
const SPARE_BATCH_MAX: usize = 1024;

/// Per-worker state shared by all of its connections.
#[derive(Debug)]
pub(crate) struct Shard {
    pub id: usize,
    pub router: Router,
    pub partition: Partition,
    pub stats: WorkerStats,
    /// Latency histograms, bumped only by this worker.
    pub latencies: Latencies,
    /// Clock milliseconds read at the start of this loop turn.
    pub now_ms: u64,
    /// Unix time in milliseconds when the clock read zero, so that
    /// protocols with absolute expiry times can convert them.
    unix_base_ms: u64,
    outboxes: Vec<Outbox>,
    /// The configuration as `stats settings` reports it, and the policies
    /// adapters apply (`shutdown`); `maxbytes` is read live instead.
    pub settings: Settings,
    /// What this worker's connections hold, against their budget
    /// (`--connection-memory`, this worker's share).
    pub conn_budget: Budget,
    /// Messages for each worker this turn, sent (and the worker woken)
    /// once at the end of the turn.
    outgoing: Vec<Vec<Message>>,
    /// Emptied batches from other workers, reused for [`Shard::outgoing`].
    spare: Vec<Vec<Message>>,
    started: Instant,
}

impl Shard {
    pub fn new(
        id: usize,
        outboxes: Vec<Outbox>,
        settings: Settings,
        memory: u64,
        unix_base_ms: u64,
    ) -> Self {
        let workers = outboxes.len();
        Shard {
            id,
            router: Router::new(workers),
            partition: Partition::for_worker(id, workers, settings.item_size_max, memory),
            stats: WorkerStats::default(),
            latencies: Latencies::default(),
            now_ms: 0,
            unix_base_ms,
            outboxes,
            settings,
            conn_budget: Budget::new(usize::MAX),
            outgoing: (0..workers).map(|_| Vec::new()).collect(),
            spare: Vec::new(),
            started: Instant::now(),
        }
    }

    pub fn workers(&self) -> usize {
        self.outboxes.len()
    }

    /// Unix time now, in seconds, on the server's clock.
    pub fn unix_now(&self) -> u64 {
        (self.unix_base_ms + self.now_ms) / 1000
    }

    /// Runs a command this worker owns, counting it.
    pub fn execute(&mut self, cmd: &Command<'_>) -> Outcome<&[u8]> {
        let outcome = self.partition.execute(cmd, self.now_ms);
        count(&mut self.stats, &cmd.op, &outcome);
        outcome
    }

    /// Applies a server-wide request to this worker.
    pub fn apply(&mut self, what: Broadcast) {
        match what {
            Broadcast::Stats(_) => {}
            Broadcast::MemLimit { bytes } => {
                let share = bytes / self.workers().max(1) as u64;
                self.partition.set_limit(share);
            }
            Broadcast::ResetStats => {
                self.stats.reset_counters();
                self.partition.reset_counters();
            }
            Broadcast::Flush { delay } => self.partition.flush(self.now_ms, delay),
        }
    }

    /// Queues a message for worker `to`; it leaves with the turn's others
    /// for that worker at the end of the turn ([`Shard::flush_wakes`]), so
    /// a burst costs one channel send and one wake.
    pub fn send(&mut self, to: usize, msg: Message) {
        if let Some(queue) = self.outgoing.get_mut(to) {
            if queue.capacity() == 0
                && let Some(spare) = self.spare.pop()
            {
                *queue = spare;
            }
            queue.push(msg);
        }
    }

    /// Keeps an emptied batch from another worker for this worker's sends,
    /// unless enough are kept or it grew large in a burst.
    pub fn recycle(&mut self, batch: Vec<Message>) {
        if batch.is_empty() && batch.capacity() <= SPARE_BATCH_MAX && self.spare.len() < SPARES {
            self.spare.push(batch);
        }
    }

    /// Sends a command to its owner. `reply_cap`: the most value bytes
    /// the reply may carry (its reservation at the origin); a larger value
    /// is deferred.
    pub fn forward(
        &mut self,
        owner: usize,
        reply_to: ReplyTo,
        cmd: &Command<'_>,
        reply_cap: usize,
    ) {
        self.forward_owned(owner, reply_to, cmd.to_owned_command(), reply_cap);
    }

    /// [`Shard::forward`] for a command already copied (sent again after
    /// its owner deferred it).
    pub fn forward_owned(
        &mut self,
        owner: usize,
        reply_to: ReplyTo,
        cmd: OwnedCommand,
        reply_cap: usize,
    ) {
        self.stats.forwarded += 1;
        self.send(
            owner,
            Message::Execute {
                reply_to,
                cmd,
                reply_cap,
            },
        );
    }

    /// Sends a server-wide request to every other worker (the caller has
    /// applied it here); each answers on `reply_to`.
    pub fn broadcast_to_others(&mut self, reply_to: ReplyTo, what: Broadcast) {
        for to in 0..self.workers() {
            if to != self.id {
                self.send(to, Message::Broadcast { reply_to, what });
            }
        }
    }

    /// Starts a graceful shutdown of the whole server, as a signal would:
    /// every worker, this one included, stops accepting and finishes.
    pub fn shutdown_server(&mut self) {
        for to in 0..self.workers() {
            self.send(to, Message::Shutdown);
        }
    }

    /// Sends every worker the messages queued for it since the last call,
    /// as one message, and wakes it.
    pub fn flush_wakes(&mut self) {
        for (to, queue) in self.outgoing.iter_mut().enumerate() {
            let msg = match queue.len() {
                0 => continue,
                1 => queue.pop(),
                _ => Some(Message::Batch(std::mem::take(queue))),
            };
            // A worker that has exited has nothing left to answer; its reply
            // slot simply never fills and the connection closes at shutdown.
            if let Some(msg) = msg
                && self.outboxes[to].send(msg)
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
            get_expired: p.get_expired,
            get_flushed: p.get_flushed,
            limit_maxbytes: p.limit,
            hash_bytes: p.hash_bytes,
            evictions: p.evictions,
            evicted_unfetched: p.evicted_unfetched,
            expired_unfetched: p.expired_unfetched,
            reclaimed: p.reclaimed,
            conn_bytes: self.conn_budget.used() as u64,
            conn_limit: self.conn_budget.limit() as u64,
            ..self.stats
        }
    }

    /// The settings, with the memory limit as it is now (`cache_memlimit`
    /// changes it).
    pub fn settings(&self) -> Settings {
        Settings {
            maxbytes: self.partition.stats().limit * self.workers() as u64,
            ..self.settings
        }
    }

    /// The reply encoder for this worker's connections.
    pub fn encoder(&self) -> Encoder {
        Encoder {
            started: self.started,
            threads: self.workers(),
            max_connections: self.settings.maxconns,
            unix_now: self.unix_now(),
        }
    }
}

/// Counts one executed command under memcached's stat names.
fn count(s: &mut WorkerStats, op: &Op, outcome: &Outcome<&[u8]>) {
    let hit = !matches!(
        outcome,
        Outcome::Miss | Outcome::NotFound | Outcome::NotStored | Outcome::Exists
    );
    match op {
        Op::Get => {
            s.cmd_get += 1;
            if hit {
                s.get_hits += 1
            } else {
                s.get_misses += 1
            }
        }
        // memcached counts GAT as a touch, not a get.
        Op::GetAndTouch { .. } | Op::Touch { .. } => {
            s.cmd_touch += 1;
            if hit {
                s.touch_hits += 1
            } else {
                s.touch_misses += 1
            }
        }
        Op::Store { cas, .. } => {
            s.cmd_set += 1;
            if cas.is_some() {
                match outcome {
                    Outcome::Stored { .. } => s.cas_hits += 1,
                    Outcome::Exists => s.cas_badval += 1,
                    Outcome::NotFound => s.cas_misses += 1,
                    _ => {}
                }
            }
        }
        Op::Delete { .. } => {
            s.cmd_delete += 1;
            match outcome {
                Outcome::Deleted => s.delete_hits += 1,
                Outcome::NotFound => s.delete_misses += 1,
                _ => {}
            }
        }
        Op::Unlink => {}
        Op::MetaRead(read) => {
            let found = matches!(
                outcome,
                Outcome::Meta {
                    status: MetaStatus::Hit,
                    ..
                }
            );
            s.cmd_get += 1;
            if found {
                s.get_hits += 1
            } else {
                s.get_misses += 1
            }
            if read.touch.is_some() {
                s.cmd_touch += 1;
                if found {
                    s.touch_hits += 1
                } else {
                    s.touch_misses += 1
                }
            }
        }
        Op::MetaStore(store) => {
            s.cmd_set += 1;
            if store.cas.is_some()
                && let Outcome::Meta { status, .. } = outcome
            {
                match status {
                    MetaStatus::Stored => s.cas_hits += 1,
                    MetaStatus::Exists => s.cas_badval += 1,
                    MetaStatus::NotFound => s.cas_misses += 1,
                    _ => {}
                }
            }
        }
        Op::MetaDelete(delete) => {
            s.cmd_delete += 1;
            match outcome {
                // memcached counts an invalidation as no delete hit.
                Outcome::Meta {
                    status: MetaStatus::Deleted,
                    ..
                } if !delete.invalidate => s.delete_hits += 1,
                Outcome::Meta {
                    status: MetaStatus::NotFound,
                    ..
                } => s.delete_misses += 1,
                _ => {}
            }
        }
        Op::MetaArith(arith) => {
            let status = match outcome {
                Outcome::Meta { status, .. } => Some(*status),
                _ => None,
            };
            match (arith.incr, status) {
                (true, Some(MetaStatus::Stored)) => s.incr_hits += 1,
                (true, Some(MetaStatus::NotFound)) => s.incr_misses += 1,
                (false, Some(MetaStatus::Stored)) => s.decr_hits += 1,
                (false, Some(MetaStatus::NotFound)) => s.decr_misses += 1,
                _ => {}
            }
        }
        Op::Arith { incr, .. } => match (incr, outcome) {
            (true, Outcome::Counter { .. }) => s.incr_hits += 1,
            (true, Outcome::NotFound) => s.incr_misses += 1,
            (false, Outcome::Counter { .. }) => s.decr_hits += 1,
            (false, Outcome::NotFound) => s.decr_misses += 1,
            _ => {}
        },
    }
}
