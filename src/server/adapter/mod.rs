//! Protocol adapters: each wire protocol's server side behind one small
//! interface the connection calls.
//!
//! An adapter owns its protocol's decode step, its error policy (answer and
//! keep the connection, answer and skip the rest of a refused frame, answer
//! and close) and its reply encoding. The connection hands it the unread
//! input and gets back a [`Step`]; requests run through [`Route`], which
//! knows where each key lives. The protocol is fixed by a connection's
//! first byte ([`Protocol::detect`]); this file is the one place that lists
//! the protocols.
//!
//! Must not: read or write sockets, or manage buffers (the connection
//! does), or decide where a key lives (the routing does).

mod binary;
mod meta;
mod native;
mod text;

use crate::protocol::peek;
use std::time::Instant;

use crate::command::{Broadcast, Outcome};
use crate::limits::Limits;
use crate::protocol::memcache::REQUEST_MAGIC;
use crate::protocol::native::MAGIC_FIRST_BYTE;
use crate::stats::{ServerInfo, WorkerStats};

use super::replies::{Echo, Encode};
use super::routing::Route;

/// What one decoding step found. Borrows nothing, so the connection can
/// move its buffer afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A request was handled; its `consumed` bytes can go.
    Done { consumed: usize },
    /// A request asked to close once the replies owed are written.
    Quit { consumed: usize },
    /// More bytes are needed: `needed` in total from the start of the
    /// input. `framed`: the frame's length is known (its header or command
    /// line is complete), so `needed` is exact.
    Incomplete { needed: usize, framed: bool },
    /// A request was refused and answered; `skip` bytes from the start of
    /// the input belong to it, possibly more than have arrived.
    Refused { skip: u64 },
    /// The stream cannot be framed: the error reply, if the protocol has
    /// one, is queued; close once the replies owed are written.
    Fatal,
    /// The connection has no memory room for the `need` bytes the request
    /// would add: nothing was consumed; the first `keys_done` keys of a
    /// multi-key read were answered, and the frame resumes after them.
    Blocked { keys_done: usize, need: usize },
}

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// The native 0xCAFE protocol.
    Native,
    /// The memcached binary protocol.
    Binary,
    /// memcached's text protocol, meta commands included.
    Text,
}

impl Protocol {
    /// The protocol a connection's first byte starts: 0xCA native, 0x80
    /// memcached binary, anything else text, as memcached decides (so that
    /// garbage and HTTP get a text error instead of a silent close).
    pub fn detect(first: u8) -> Protocol {
        match first {
            MAGIC_FIRST_BYTE => Protocol::Native,
            REQUEST_MAGIC => Protocol::Binary,
            _ => Protocol::Text,
        }
    }

    /// Decodes and runs the first request in `data`.
    pub fn step(self, data: &[u8], route: &mut Route<'_>, limits: &Limits) -> Step {
        match self {
            Protocol::Native => native::step(data, route, limits),
            Protocol::Binary => binary::step(data, route, limits),
            Protocol::Text => text::step(data, route, limits),
        }
    }

    /// Finds the keys of the requests at the front of `data` without
    /// decoding them, for prefetching; returns the bytes of the whole
    /// requests looked at ([`crate::protocol::peek`]).
    pub fn peek_keys<'a>(self, data: &'a [u8], keys: &mut peek::Keys<'a>) -> usize {
        match self {
            Protocol::Native => peek::native(data, keys),
            Protocol::Binary => peek::binary(data, keys),
            Protocol::Text => peek::text(data, keys),
        }
    }
}

/// How a reply must be encoded once its outcome is known: whatever the
/// protocol needs to remember from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyCtx {
    /// A native-protocol request.
    Native(native::Ctx),
    /// A memcached binary request.
    Binary(binary::Ctx),
    /// A classic text command.
    Text(text::Ctx),
    /// A meta command.
    Meta(meta::Ctx),
}

#[cfg(test)]
impl ReplyCtx {
    /// Any context, for tests of the reply queue, which never looks inside.
    pub(crate) const ANY: ReplyCtx = ReplyCtx::Native(native::Ctx::Reply);
}

/// The encoder a connection hands to its reply queue. Server facts are read
/// only when a STATS reply is written, not per reply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoder {
    pub started: Instant,
    pub threads: usize,
    pub max_connections: usize,
    pub unix_now: u64,
}

impl Encoder {
    pub fn info(&self) -> ServerInfo {
        ServerInfo {
            pid: std::process::id(),
            uptime: self.started.elapsed().as_secs(),
            time: self.unix_now,
            threads: self.threads,
            max_connections: self.max_connections,
        }
    }
}

impl Encode for Encoder {
    fn outcome(&self, ctx: ReplyCtx, echo: Echo<'_>, outcome: &Outcome<&[u8]>, out: &mut Vec<u8>) {
        match ctx {
            ReplyCtx::Native(ctx) => native::encode_outcome(ctx, outcome, out),
            ReplyCtx::Binary(ctx) => binary::encode_outcome(ctx, echo.key, outcome, out),
            ReplyCtx::Text(ctx) => text::encode_outcome(ctx, echo.key, outcome, out),
            ReplyCtx::Meta(ctx) => meta::encode_outcome(ctx, echo, outcome, out),
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
            ReplyCtx::Native(_) => native::encode_stats(&self.info(), parts, out),
            ReplyCtx::Binary(ctx) => binary::encode_applied(ctx, what, self, parts, out),
            ReplyCtx::Text(ctx) => text::encode_applied(ctx, what, self, parts, out),
            // Meta commands are all keyed.
            ReplyCtx::Meta(_) => {}
        }
    }
}
