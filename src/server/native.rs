//! The server's side of the native protocol: what each decoded request asks
//! of the shard, and how outcomes are written back as native frames.
//!
//! The codec (`crate::protocol::native`) knows bytes; this module knows what
//! they mean to a worker. Must not: read sockets or manage buffers.

use crate::command::{Command, Expiry, Op, Outcome, StoreMode};
use crate::protocol::native::{self, Request, Response, Status};
use crate::stats::{self, ServerInfo, WorkerStats};

/// What a decoded request needs from the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action<'a> {
    /// A command on one key, run by the key's owner.
    Keyed(Command<'a>),
    /// NOOP: answered in order, touches nothing.
    Noop,
    /// STATS: gathered from every worker.
    Stats,
}

/// Maps a native request onto the protocol-neutral vocabulary.
pub(crate) fn action(req: Request<'_>) -> Action<'_> {
    match req {
        Request::Get { key } => Action::Keyed(Command {
            op: Op::Get,
            key,
            value: &[],
        }),
        Request::Set {
            key,
            value,
            flags,
            ttl,
        } => Action::Keyed(Command {
            op: Op::Store {
                mode: StoreMode::Set,
                flags: u32::from(flags),
                // Native TTLs are always relative seconds; 0 never expires.
                expiry: match ttl {
                    None | Some(0) => Expiry::Never,
                    Some(secs) => Expiry::After(secs),
                },
                cas: 0,
            },
            key,
            value,
        }),
        Request::Delete { key } => Action::Keyed(Command {
            op: Op::Delete { cas: 0 },
            key,
            value: &[],
        }),
        Request::Noop => Action::Noop,
        Request::Stats => Action::Stats,
    }
}

/// Appends the native reply for an outcome.
pub(crate) fn encode_outcome(outcome: &Outcome<&[u8]>, out: &mut Vec<u8>) {
    let (status, flags, value): (Status, u16, &[u8]) = match *outcome {
        // Native flags are 16 bits; flags stored through the memcached
        // protocol come back truncated to their low 16 bits.
        Outcome::Hit { flags, value, .. } => (Status::Ok, flags as u16, value),
        Outcome::Stored { .. } | Outcome::Deleted => (Status::Ok, 0, &[]),
        Outcome::Miss | Outcome::NotFound => (Status::NotFound, 0, &[]),
        // Native requests never ask for what yields these; answer plainly
        // rather than trust that forever.
        Outcome::NotStored
        | Outcome::Exists
        | Outcome::Touched { .. }
        | Outcome::Counter { .. }
        | Outcome::NonNumeric
        | Outcome::TooLarge
        | Outcome::Meta { .. } => {
            native::encode_error(&"unexpected outcome for a native request", out);
            return;
        }
        Outcome::NoRoom => {
            native::encode_error(
                &"out of memory: the item is larger than a worker's share of --memory",
                out,
            );
            return;
        }
    };
    native::encode_response(
        &Response {
            status,
            flags,
            value,
        },
        out,
    );
}

/// Appends an empty RESP_OK (NOOP's answer).
pub(crate) fn encode_ok(out: &mut Vec<u8>) {
    native::encode_response(
        &Response {
            status: Status::Ok,
            flags: 0,
            value: &[],
        },
        out,
    );
}

/// Appends the STATS reply: RESP_OK whose value is the rendered counters,
/// written in place (the length is patched in after rendering).
pub(crate) fn encode_stats(info: &ServerInfo, parts: &[(u32, WorkerStats)], out: &mut Vec<u8>) {
    let start = out.len();
    encode_ok(out);
    stats::render(info, parts, out);
    native::patch_value_len(out, start);
}
