//! The server's side of the native protocol: its decode step and error
//! policy, what each decoded request asks of the worker, and how outcomes
//! are written back as native frames.
//!
//! The codec (`crate::protocol::native`) knows bytes; this module knows what
//! they mean to a worker. Must not: read sockets or manage buffers.

use crate::command::{Broadcast, Command, Expiry, Op, Outcome, StatsGroup, StoreMode};
use crate::limits::Limits;
use crate::protocol::Decoded;
use crate::protocol::native::{self, HEADER_LEN, Request, RequestError, Response, Status};
use crate::stats::{self, ServerInfo, WorkerStats};

use super::super::replies::Echo;
use super::super::routing::{NoRoom, Route};
use super::{ReplyCtx, Step};

/// Decodes the first frame of `data` and runs it. A refused request is
/// answered and its frame skipped; a stream that cannot be framed is
/// answered once and closed.
pub(crate) fn step(data: &[u8], route: &mut Route<'_>, limits: &Limits) -> Step {
    match native::decode_request(data, limits) {
        Ok(Decoded::Complete { frame, consumed }) => match run(frame, route) {
            Ok(()) => Step::Done { consumed },
            Err(NoRoom(need)) => Step::Blocked { keys_done: 0, need },
        },
        Ok(Decoded::Incomplete { needed }) => Step::Incomplete {
            needed,
            framed: data.len() >= HEADER_LEN,
        },
        Ok(Decoded::Rejected {
            error: error @ RequestError::ValueTooLarge { .. },
            skip,
        }) => refuse_store(data, error, skip, route, limits),
        Ok(Decoded::Rejected { error, skip }) => {
            route.reply(|out| native::encode_error(&error, out));
            Step::Refused { skip }
        }
        Err(error) => {
            log::debug!("closing connection: {error}");
            route.reply(|out| native::encode_error(&error, out));
            Step::Fatal
        }
    }
}

/// A SET too large to store removes the key's old value, so a cache never
/// serves the value its client just tried to replace; the error is written
/// once the removal has run. The key must have arrived first.
fn refuse_store(
    data: &[u8],
    error: RequestError,
    skip: u64,
    route: &mut Route<'_>,
    limits: &Limits,
) -> Step {
    let key_len = match data.get(6..8) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => 0,
    };
    let key_end = HEADER_LEN + key_len;
    if key_len == 0 || key_len > limits.max_key_len {
        route.reply(|out| native::encode_error(&error, out));
        return Step::Refused { skip };
    }
    let Some(key) = data.get(HEADER_LEN..key_end) else {
        return Step::Incomplete {
            needed: key_end,
            framed: true,
        };
    };
    let cmd = Command {
        op: Op::Unlink,
        key,
        value: &[],
    };
    match route.keyed(ReplyCtx::Native(Ctx::Refused(error)), &cmd, Echo::NONE) {
        Ok(()) => Step::Refused { skip },
        Err(NoRoom(need)) => Step::Blocked { keys_done: 0, need },
    }
}

/// What a reply needs to remember of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctx {
    /// Answer the outcome.
    Reply,
    /// Answer this error whatever the outcome (of the removal that a
    /// refused store runs).
    Refused(RequestError),
}

fn run(frame: Request<'_>, route: &mut Route<'_>) -> Result<(), NoRoom> {
    let ctx = ReplyCtx::Native(Ctx::Reply);
    match action(frame) {
        Action::Keyed(cmd) => route.keyed(ctx, &cmd, Echo::NONE)?,
        Action::Noop => route.reply(encode_ok),
        Action::Stats => route.broadcast(ctx, Broadcast::Stats(StatsGroup::Workers)),
    }
    Ok(())
}

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
                cas: None,
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
pub(crate) fn encode_outcome(ctx: Ctx, outcome: &Outcome<&[u8]>, out: &mut Vec<u8>) {
    if let Ctx::Refused(error) = ctx {
        native::encode_error(&error, out);
        return;
    }
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
