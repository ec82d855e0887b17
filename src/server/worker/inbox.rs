//! A worker's inbox: the messages other workers send it (commands to run
//! for their clients, replies to commands it forwarded, server-wide
//! requests and their answers), handled within the turn's inbox budget,
//! with the forwarded commands past it waiting in the fair queue.
//!
//! Must not: touch sockets (replies go to the connections' queues and are
//! written by the loop), or run more than the turn's budget of forwarded
//! work.

use std::io;
use std::time::Instant;

use crate::metrics::WorkerSnapshot;
use crate::storage::PREFETCH_BATCH;

use super::super::budget::{INBOX_TURN_BYTES, MESSAGE_WORK};
use super::super::fair_queue::Forwarded;
use super::super::mailbox::{Message, ReplyTo};
use super::super::shard::Shard;
use super::{REUSE_SLACK, Worker, live_in};

impl Worker {
    /// Handles the messages waiting, running forwarded commands up to
    /// [`INBOX_TURN_BYTES`] of work: those left over wait in the fair
    /// queue and run first next turn, round-robin by client connection, so
    /// the worker's own clients are served between a flood's commands and
    /// another client's command does not wait behind all of them. Replies
    /// and control messages are handled as they come. An error only for an
    /// injected failure.
    pub(super) fn drain_inbox(&mut self) -> io::Result<()> {
        let mut drain = Drain {
            arrived: None,
            work: 0,
            written: self.shard.partition.bytes_written(),
        };
        while !drain.spent(&self.shard) {
            let Some(f) = self.fair.pop() else { break };
            drain.work += MESSAGE_WORK + self.execute_for_peer(f.reply_to, f.cmd, f.reply_cap);
        }
        // The whole channel is read, to see every client's commands; those
        // past the budget, or behind their connection's earlier ones, wait.
        while let Some(msg) = self.inbox.try_recv() {
            if let Message::Batch(mut batch) = msg {
                // A few at a time, their lookups prefetched together, as
                // a connection's pipelined requests are.
                while !batch.is_empty() {
                    let chunk = batch.len().min(PREFETCH_BATCH);
                    self.prefetch_forwarded(&batch[..chunk]);
                    for msg in batch.drain(..chunk) {
                        self.handle(msg, &mut drain)?;
                    }
                }
                self.shard.recycle(batch);
            } else {
                self.handle(msg, &mut drain)?;
            }
        }
        self.inbox_more = !self.fair.is_empty();
        Ok(())
    }

    /// Prefetches the lookups of the forwarded commands among `msgs` (all
    /// for keys this worker owns) when there are two or more to overlap.
    fn prefetch_forwarded(&self, msgs: &[Message]) {
        let mut keys: [&[u8]; PREFETCH_BATCH] = [&[]; PREFETCH_BATCH];
        let mut n = 0;
        for msg in msgs {
            if let Message::Execute { cmd, .. } = msg
                && n < keys.len()
            {
                keys[n] = cmd.as_command().key;
                n += 1;
            }
        }
        if n >= 2 {
            self.shard.partition.prefetch(&keys[..n]);
        }
    }

    /// Handles one message of an inbox drain.
    fn handle(&mut self, msg: Message, drain: &mut Drain) -> io::Result<()> {
        drain.work += MESSAGE_WORK;
        match msg {
            Message::Execute {
                reply_to,
                cmd,
                reply_cap,
            } => {
                if drain.spent(&self.shard) || self.fair.holds(&reply_to) {
                    self.fair.push(Forwarded {
                        reply_to,
                        cmd,
                        reply_cap,
                    });
                } else {
                    drain.work += self.execute_for_peer(reply_to, cmd, reply_cap);
                }
            }
            Message::Executed { reply_to, outcome } => {
                drain.work += outcome_value_len(&outcome);
                let enc = self.shard.encoder();
                let now = *drain.arrived.get_or_insert_with(Instant::now);
                let wait = &mut self.shard.latencies.forwarded;
                let conn_ref = (reply_to.conn, reply_to.generation);
                if let Some(conn) = live_in(&mut self.conns, conn_ref)
                    && conn
                        .replies
                        .fill_remote(reply_to.seq, outcome, &enc, now, wait)
                {
                    // A connection waiting for room tries again, and so
                    // does a deferred command now at the front: it may
                    // use the room of the replies behind it.
                    let retry = conn.replies.front_deferred() || conn.wants_room;
                    self.account(conn_ref);
                    self.queue_flush(conn_ref);
                    if retry {
                        self.queue_run(conn_ref);
                    }
                }
            }
            Message::Deferred {
                reply_to,
                cmd,
                value_len,
            } => {
                let conn_ref = (reply_to.conn, reply_to.generation);
                // A read that went past the budget and came back again (its
                // value grew meanwhile) gives the pass back; it is sent
                // again like any other.
                self.release_pass_if(|p| {
                    (p.slot, p.generation, p.seq)
                        == (reply_to.conn, reply_to.generation, reply_to.seq)
                });
                if let Some(conn) = live_in(&mut self.conns, conn_ref)
                    && conn.replies.defer(reply_to.seq, cmd, value_len)
                {
                    self.account(conn_ref);
                    self.queue_run(conn_ref);
                }
            }
            Message::Broadcast { reply_to, what } => {
                self.shard.apply(what);
                let stats = Box::new(self.shard.snapshot());
                let from = self.shard.id as u32;
                self.shard.send(
                    reply_to.worker as usize,
                    Message::Applied {
                        reply_to,
                        from,
                        stats,
                    },
                );
            }
            Message::Applied {
                reply_to,
                from,
                stats,
            } => {
                let enc = self.shard.encoder();
                if let Some(conn) = self.conns.get_mut(reply_to.conn)
                    && conn.generation == reply_to.generation
                    && conn.replies.fill_gather(reply_to.seq, from, &stats, &enc)
                {
                    self.queue_flush((reply_to.conn, reply_to.generation));
                }
            }
            Message::Gather { to } => {
                let snapshot = WorkerSnapshot {
                    id: self.shard.id as u32,
                    stats: self.shard.snapshot(),
                    latencies: self.shard.latencies,
                };
                // The admin thread may have given up waiting: fine.
                let _ = to.send(snapshot);
            }
            Message::Batch(batch) => {
                for msg in batch {
                    self.handle(msg, drain)?;
                }
            }
            Message::Shutdown => self.begin_shutdown(),
            Message::Fail { panic: true } => {
                panic!("worker {}: failure injected by a test", self.shard.id)
            }
            Message::Fail { panic: false } => {
                return Err(io::Error::other("failure injected by a test"));
            }
        }
        Ok(())
    }

    /// Runs a command another worker forwarded, unless it reads a value
    /// larger than the origin reserved room for: that command goes back,
    /// not run, to be sent again once the origin has room.
    fn execute_for_peer(
        &mut self,
        reply_to: ReplyTo,
        cmd: crate::command::OwnedCommand,
        reply_cap: usize,
    ) -> usize {
        let origin = reply_to.worker as usize;
        let command = cmd.as_command();
        if command.returns_value()
            && let Some(value_len) = self
                .shard
                .partition
                .value_len(command.key, self.shard.now_ms)
            && value_len > reply_cap
        {
            self.shard.stats.deferred_for_peers += 1;
            self.shard.send(
                origin,
                Message::Deferred {
                    reply_to,
                    cmd,
                    value_len,
                },
            );
            return 0;
        }
        let outcome = self.shard.execute(&command);
        let carried = match outcome {
            crate::command::Outcome::Hit { value, .. }
            | crate::command::Outcome::Meta { value, .. } => value.len(),
            _ => 0,
        };
        let mut buf = cmd.into_buffer();
        if buf.capacity() > carried + REUSE_SLACK {
            buf = Vec::new();
        }
        let outcome = outcome.to_owned_in(buf);
        self.shard.stats.executed_for_peers += 1;
        self.shard
            .send(origin, Message::Executed { reply_to, outcome });
        carried
    }
}

/// Value bytes a reply from another worker carries (copied into the
/// connection's replies).
fn outcome_value_len(outcome: &crate::command::Outcome<Vec<u8>>) -> usize {
    match outcome {
        crate::command::Outcome::Hit { value, .. }
        | crate::command::Outcome::Meta { value, .. } => value.len(),
        _ => 0,
    }
}

/// The state of one inbox drain: its work against [`INBOX_TURN_BYTES`].
struct Drain {
    /// Read once, when the first reply of the drain arrives.
    arrived: Option<Instant>,
    /// Work counted per message and per value byte copied.
    work: usize,
    /// The partition's bytes written when the drain began.
    written: u64,
}

impl Drain {
    fn spent(&self, shard: &Shard) -> bool {
        self.work + shard.partition.bytes_written().wrapping_sub(self.written) as usize
            >= INBOX_TURN_BYTES
    }
}
