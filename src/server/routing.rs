//! Where a request runs: inline on this worker when it owns the key, on the
//! owner otherwise, or on every worker for a server-wide request; and how
//! its reply keeps its place in the connection's order either way.
//!
//! Must not: know a wire format (replies are encoded through [`Encode`]
//! with the protocol's [`ReplyCtx`]), or touch a socket.

use std::time::Instant;

use crate::command::{Broadcast, Command, Op};
use crate::metrics::CommandClass;

use super::adapter::ReplyCtx;
use super::budget::{REMOTE_RESERVE, Room};
use super::mailbox::ReplyTo;
use super::replies::{Echo, Encode, Replies};
use super::shard::Shard;

/// Bytes a reply adds beyond its value, at most: a header, a VALUE line
/// with its key, meta flags echoed.
const REPLY_OVERHEAD: usize = 1024;

/// A keyed request was not run: the connection has no memory room for
/// the bytes it would add (the field). It waits and runs the request again
/// once that much room is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoRoom(pub usize);

/// A connection as reply messages name it: its slab slot and generation,
/// so a reply for a connection that closed meanwhile is dropped instead of
/// reaching a newer one in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnId {
    pub slot: usize,
    pub generation: u32,
}

impl ConnId {
    pub fn reply_to(self, shard: &Shard, seq: u64) -> ReplyTo {
        ReplyTo {
            worker: shard.id as u32,
            conn: self.slot,
            generation: self.generation,
            seq,
        }
    }
}

/// What an adapter needs to run requests for one connection.
#[derive(Debug)]
pub(crate) struct Route<'a> {
    pub replies: &'a mut Replies,
    pub shard: &'a mut Shard,
    pub conn: ConnId,
    /// The connection's memory room this turn.
    pub room: Room,
    /// Bytes the connection holds outside its replies (its input).
    pub held: usize,
    /// Keys of the current frame already answered before it was suspended
    /// for want of room (a multi-key read resumes after them).
    pub keys_done: usize,
    /// Request bytes forwarded to other workers: work done this step.
    pub forwarded: usize,
    /// When the bytes of the request being run were read.
    pub read_at: Instant,
    /// The request's class for the latency histograms: set by its first
    /// keyed or server-wide command (a multi-key get is one get).
    pub class: Option<CommandClass>,
    /// Serve every key here (`--port-per-worker`): the client routes.
    pub local_only: bool,
}

/// The latency class of a command.
fn class_of(op: &Op) -> CommandClass {
    match op {
        Op::Get | Op::GetAndTouch { .. } | Op::MetaRead(_) => CommandClass::Get,
        Op::Store { .. } | Op::MetaStore(_) => CommandClass::Set,
        Op::Delete { .. } | Op::MetaDelete(_) | Op::Unlink => CommandClass::Delete,
        Op::Arith { .. } | Op::MetaArith(_) => CommandClass::Arith,
        Op::Touch { .. } => CommandClass::Other,
    }
}

impl Route<'_> {
    /// Runs a keyed command: inline if this worker owns the key, otherwise
    /// forwarded to the owner with a reply slot reserved in order. `echo`
    /// is what the reply repeats of the request (a key, meta flags), kept
    /// only while the reply is awaited.
    ///
    /// Refused, with nothing done, when the reply (or the forwarded request
    /// and its reply's reservation) would not fit the connection's memory
    /// room. A value read here is looked up first when it might not fit, so
    /// it is never copied into a reply the budget cannot hold.
    pub fn keyed(
        &mut self,
        ctx: ReplyCtx,
        cmd: &Command<'_>,
        echo: Echo<'_>,
    ) -> Result<(), NoRoom> {
        self.class.get_or_insert(class_of(&cmd.op));
        let owner = if self.local_only {
            self.shard.id
        } else {
            self.shard.router.owner(cmd.key)
        };
        let allowance = self.room.allowance(self.held + self.replies.memory());
        if owner == self.shard.id {
            if cmd.returns_value() && allowance < self.shard.settings.item_size_max + REPLY_OVERHEAD
            {
                let len = self
                    .shard
                    .partition
                    .value_len(cmd.key, self.shard.now_ms)
                    .unwrap_or(0);
                if len + REPLY_OVERHEAD > allowance {
                    return Err(NoRoom(len + REPLY_OVERHEAD));
                }
            }
            let enc = self.shard.encoder();
            let outcome = self.shard.execute(cmd);
            self.replies
                .push_ready(|out| enc.outcome(ctx, echo, &outcome, out));
        } else {
            let bytes = cmd.key.len() + cmd.value.len();
            let reply_cap = if cmd.returns_value() {
                REMOTE_RESERVE
            } else {
                0
            };
            let charge = bytes + reply_cap + REPLY_OVERHEAD;
            let need = charge + self.replies.slot_cost(echo);
            if need > allowance {
                return Err(NoRoom(need));
            }
            let seq = self.replies.push_remote(ctx, charge, echo, self.read_at);
            let to = self.conn.reply_to(self.shard, seq);
            self.shard.forward(owner, to, cmd, reply_cap);
            self.forwarded += bytes;
        }
        Ok(())
    }

    /// Applies a server-wide request here and, with more than one worker,
    /// on every other worker; the reply waits for all of them.
    pub fn broadcast(&mut self, ctx: ReplyCtx, what: Broadcast) {
        self.class.get_or_insert(CommandClass::Other);
        if matches!(what, Broadcast::Flush { .. }) {
            // Counted once, where the request arrived, as memcached counts it.
            self.shard.stats.cmd_flush += 1;
        }
        self.shard.apply(what);
        let own = (self.shard.id as u32, self.shard.snapshot());
        if self.shard.workers() == 1 {
            let enc = self.shard.encoder();
            self.replies
                .push_ready(|out| enc.applied(ctx, what, &[own], out));
        } else {
            let seq = self
                .replies
                .push_gather(ctx, what, self.shard.workers() - 1, own);
            let to = self.conn.reply_to(self.shard, seq);
            self.shard.broadcast_to_others(to, what);
        }
    }

    /// Adds a reply that needs nothing from any partition.
    pub fn reply(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        self.replies.push_ready(encode);
    }
}
