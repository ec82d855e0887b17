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
use super::mailbox::ReplyTo;
use super::replies::{Echo, Encode, Replies};
use super::shard::Shard;

/// A connection as reply messages name it: its slab slot and generation,
/// so a reply for a connection that closed meanwhile is dropped instead of
/// reaching a newer one in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnId {
    pub slot: usize,
    pub generation: u32,
}

impl ConnId {
    fn reply_to(self, shard: &Shard, seq: u64) -> ReplyTo {
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
    /// When the bytes of the request being run were read.
    pub read_at: Instant,
    /// The request's class for the latency histograms: set by its first
    /// keyed or server-wide command (a multi-key get is one get).
    pub class: Option<CommandClass>,
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
    pub fn keyed(&mut self, ctx: ReplyCtx, cmd: &Command<'_>, echo: Echo<'_>) {
        self.class.get_or_insert(class_of(&cmd.op));
        let owner = self.shard.router.owner(cmd.key);
        if owner == self.shard.id {
            let enc = self.shard.encoder();
            let outcome = self.shard.execute(cmd);
            self.replies
                .push_ready(|out| enc.outcome(ctx, echo, &outcome, out));
        } else {
            let seq = self
                .replies
                .push_remote(ctx, cmd.returns_value(), echo, self.read_at);
            let to = self.conn.reply_to(self.shard, seq);
            self.shard.forward(owner, to, cmd);
        }
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
