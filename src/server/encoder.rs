//! Picks the protocol adapter that writes a finished reply, from the reply's
//! context; holds the server facts a STATS reply reports.
//!
//! Must not: decide what a reply says (the adapters do) or touch buffers
//! other than the one it appends to.

use std::time::Instant;

use crate::command::Outcome;
use crate::stats::{ServerInfo, WorkerStats};

use super::mailbox::Broadcast;
use super::replies::{Encode, ReplyCtx};
use super::{memcache, native};

/// The encoder a connection hands to its reply queue. Server facts are read
/// only when a STATS reply is written, not per reply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoder {
    pub started: Instant,
    pub threads: usize,
    pub unix_now: u64,
}

impl Encoder {
    pub fn info(&self) -> ServerInfo {
        ServerInfo {
            pid: std::process::id(),
            uptime: self.started.elapsed().as_secs(),
            time: self.unix_now,
            threads: self.threads,
        }
    }
}

impl Encode for Encoder {
    fn outcome(&self, ctx: ReplyCtx, key: &[u8], outcome: &Outcome<&[u8]>, out: &mut Vec<u8>) {
        match ctx {
            ReplyCtx::Native => native::encode_outcome(outcome, out),
            ReplyCtx::Memcache { opcode, opaque } => {
                memcache::encode_outcome(opcode, opaque, key, outcome, out)
            }
        }
    }

    fn applied(
        &self,
        ctx: ReplyCtx,
        what: Broadcast,
        parts: &[(u32, WorkerStats)],
        out: &mut Vec<u8>,
    ) {
        match ctx {
            ReplyCtx::Native => native::encode_stats(&self.info(), parts, out),
            ReplyCtx::Memcache { opcode, opaque } => {
                memcache::encode_applied(opcode, opaque, what, &self.info(), parts, out)
            }
        }
    }
}
