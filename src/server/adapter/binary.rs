//! The server's side of the memcached binary protocol: its decode step and
//! error policy, what each decoded request asks of the worker, and how
//! outcomes become memcached responses (status codes, quiet commands,
//! echoed keys and opaques, STAT frames).
//!
//! The codec (`crate::protocol::memcache`) knows bytes; this module knows
//! memcached's semantics. Must not: read sockets or manage buffers.

use std::fmt;
use std::io::Write as _;

use crate::command::{Broadcast, Command, Expiry, Op, Outcome, StatsGroup, StoreMode};
use crate::limits::Limits;
use crate::protocol::Decoded;
use crate::protocol::memcache::{
    self, Command as Mc, HEADER_LEN, Request, RequestError, Response, opcode, status,
};
use crate::stats::{self, WorkerStats};

use super::super::replies::Echo;
use super::super::routing::{NoRoom, Route};
use super::{Encoder, ReplyCtx, Step};

/// What a reply needs to remember of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ctx {
    /// Quiet or not, key echoed or not.
    pub opcode: u8,
    /// Copied back.
    pub opaque: u32,
    /// Answer this status whatever the outcome (of the removal that a
    /// refused store runs).
    pub refused: Option<u16>,
}

/// Decodes the first frame of `data` and runs it, with memcached's error
/// policy: a refused request is answered and its frame skipped, a malformed
/// one is answered and the connection closed, and a stream that does not
/// frame memcached's way is closed without a reply.
pub(crate) fn step(data: &[u8], route: &mut Route<'_>, limits: &Limits) -> Step {
    match memcache::decode_request(data, limits) {
        Ok(Decoded::Complete { frame, consumed }) => match run(&frame, route) {
            Ok(true) => Step::Quit { consumed },
            Ok(false) => Step::Done { consumed },
            Err(NoRoom(need)) => Step::Blocked { keys_done: 0, need },
        },
        Ok(Decoded::Incomplete { needed }) => Step::Incomplete {
            needed,
            framed: data.len() >= HEADER_LEN,
        },
        Ok(Decoded::Rejected { error, skip })
            if error.status == status::E2BIG
                && matches!(error.opcode, opcode::SET | opcode::SETQ) =>
        {
            refuse_set(data, error, skip, route)
        }
        Ok(Decoded::Rejected { error, skip }) => {
            route.reply(|out| encode_refusal(&error, out));
            if error.closes_connection() {
                Step::Fatal
            } else {
                Step::Refused { skip }
            }
        }
        Err(error) => {
            // No reply is possible: the peer does not frame memcached's
            // way. Replies owed still go out first.
            log::debug!("closing connection: {error}");
            Step::Fatal
        }
    }
}

/// A SET too large to keep removes the key's old value, as memcached
/// does, so a cache never serves the value its client just tried to
/// replace; E2BIG is written once the removal has run. The key must have
/// arrived first. (memcached leaves the item alone for the other stores,
/// which do not replace it outright.)
fn refuse_set(data: &[u8], error: RequestError, skip: u64, route: &mut Route<'_>) -> Step {
    let (key_len, extras_len) = match (data.get(2..4), data.get(4)) {
        (Some(&[hi, lo]), Some(&extras)) => (
            usize::from(u16::from_be_bytes([hi, lo])),
            usize::from(extras),
        ),
        _ => (0, 0),
    };
    let key_start = HEADER_LEN + extras_len;
    if key_len == 0 {
        route.reply(|out| encode_refusal(&error, out));
        return Step::Refused { skip };
    }
    let Some(key) = data.get(key_start..key_start + key_len) else {
        return Step::Incomplete {
            needed: key_start + key_len,
            framed: true,
        };
    };
    let ctx = Ctx {
        opcode: error.opcode,
        opaque: error.opaque,
        refused: Some(error.status),
    };
    let cmd = Command {
        op: Op::Unlink,
        key,
        value: &[],
    };
    match route.keyed(ReplyCtx::Binary(ctx), &cmd, Echo::NONE) {
        Ok(()) => Step::Refused { skip },
        Err(NoRoom(need)) => Step::Blocked { keys_done: 0, need },
    }
}

/// Runs a decoded request. True when it was QUIT: the connection closes
/// after replying.
fn run(req: &Request<'_>, route: &mut Route<'_>) -> Result<bool, NoRoom> {
    let (opcode, opaque) = (req.opcode, req.opaque);
    let ctx = Ctx {
        opcode,
        opaque,
        refused: None,
    };
    match action(req, route.shard.unix_now()) {
        Action::Keyed(cmd) => {
            let echo = if req.returns_key() {
                Echo::key(cmd.key)
            } else {
                Echo::NONE
            };
            route.keyed(ReplyCtx::Binary(ctx), &cmd, echo)?;
        }
        Action::Local(local) => {
            let settings = route.shard.settings();
            route.reply(|out| encode_local(opcode, opaque, local, &settings, out));
        }
        // memcached's answer to a disabled flush, quiet or not; counted,
        // as its text protocol counts one.
        Action::Broadcast(Broadcast::Flush { .. }) if !route.shard.settings.flush_enabled => {
            route.shard.stats.cmd_flush += 1;
            route.reply(|out| respond_error(out, opcode, opaque, status::AUTH_ERROR));
        }
        Action::Broadcast(what) => route.broadcast(ReplyCtx::Binary(ctx), what),
        Action::Quit => {
            route.reply(|out| encode_quit(opcode, opaque, out));
            return Ok(true);
        }
    }
    Ok(false)
}

/// The expiry of an INCR or DECR that says "do not create the counter".
const NO_CREATE: u32 = 0xffff_ffff;

/// What a decoded request needs from the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action<'a> {
    /// A command on one key, run by the key's owner.
    Keyed(Command<'a>),
    /// Answered by this worker alone, at once.
    Local(Local<'a>),
    /// Applied by every worker, answered once all have.
    Broadcast(Broadcast),
    /// Answer (unless quiet), then close.
    Quit,
}

/// Requests this worker answers alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Local<'a> {
    /// NOOP and VERBOSITY: an empty success.
    Ok,
    /// VERSION.
    Version,
    /// `stats settings`.
    Settings,
    /// A STAT group memcached knows that has nothing to report here (no
    /// slab allocator): just the terminating frame.
    EmptyGroup,
    /// A STAT group nobody knows.
    UnknownGroup(&'a [u8]),
}

/// memcached's binary expiry: the shared rules, from an unsigned field.
pub(crate) fn expiry(exptime: u32, unix_now: u64) -> Expiry {
    Expiry::memcached(i64::from(exptime), unix_now)
}

/// Maps a memcached request onto the protocol-neutral vocabulary.
pub(crate) fn action<'a>(req: &Request<'a>, unix_now: u64) -> Action<'a> {
    let keyed = |op, key, value| Action::Keyed(Command { op, key, value });
    match req.cmd {
        Mc::Get { key } => keyed(Op::Get, key, &[]),
        Mc::GetAndTouch { key, exptime } => keyed(
            Op::GetAndTouch {
                expiry: expiry(exptime, unix_now),
            },
            key,
            &[],
        ),
        Mc::Touch { key, exptime } => keyed(
            Op::Touch {
                expiry: expiry(exptime, unix_now),
            },
            key,
            &[],
        ),
        Mc::Store {
            mode,
            key,
            value,
            flags,
            exptime,
            cas,
        } => keyed(
            Op::Store {
                mode: match mode {
                    memcache::StoreMode::Set => StoreMode::Set,
                    memcache::StoreMode::Add => StoreMode::Add,
                    memcache::StoreMode::Replace => StoreMode::Replace,
                },
                flags,
                expiry: expiry(exptime, unix_now),
                // The binary protocol's CAS of 0 means "no check".
                cas: (cas != 0).then_some(cas),
            },
            key,
            value,
        ),
        Mc::Concat {
            append,
            key,
            value,
            cas,
        } => keyed(
            Op::Store {
                mode: if append {
                    StoreMode::Append
                } else {
                    StoreMode::Prepend
                },
                flags: 0,
                expiry: Expiry::Never,
                cas: (cas != 0).then_some(cas),
            },
            key,
            value,
        ),
        Mc::Delete { key, cas } => keyed(Op::Delete { cas }, key, &[]),
        Mc::Arith {
            incr,
            key,
            delta,
            initial,
            exptime,
            cas,
        } => keyed(
            Op::Arith {
                incr,
                delta,
                initial,
                create: exptime != NO_CREATE,
                expiry: expiry(exptime, unix_now),
                cas,
            },
            key,
            &[],
        ),
        // memcached reads a flush delay with its expiry rules.
        Mc::Flush { delay } => Action::Broadcast(Broadcast::Flush {
            delay: match expiry(delay, unix_now) {
                Expiry::After(secs) => secs,
                Expiry::Never | Expiry::Immediately => 0,
            },
        }),
        Mc::Noop | Mc::Verbosity { .. } => Action::Local(Local::Ok),
        Mc::Version => Action::Local(Local::Version),
        Mc::Quit => Action::Quit,
        Mc::Stat { group } => match group {
            b"" => Action::Broadcast(Broadcast::Stats(StatsGroup::General)),
            b"workers" => Action::Broadcast(Broadcast::Stats(StatsGroup::Workers)),
            b"reset" => Action::Broadcast(Broadcast::ResetStats),
            b"settings" => Action::Local(Local::Settings),
            b"items" => Action::Broadcast(Broadcast::Stats(StatsGroup::Items)),
            b"slabs" => Action::Broadcast(Broadcast::Stats(StatsGroup::Slabs)),
            b"sizes" | b"conns" => Action::Local(Local::EmptyGroup),
            other => Action::Local(Local::UnknownGroup(other)),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn respond(
    out: &mut Vec<u8>,
    opcode: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    memcache::encode_response(
        &Response {
            opcode,
            status,
            opaque,
            cas,
            extras,
            key,
            value,
        },
        out,
    );
}

fn respond_error(out: &mut Vec<u8>, opcode: u8, opaque: u32, code: u16) {
    respond(
        out,
        opcode,
        code,
        opaque,
        0,
        &[],
        &[],
        status::text(code).as_bytes(),
    );
}

/// Appends the reply to a refused request (always sent, quiet or not).
fn encode_refusal(error: &RequestError, out: &mut Vec<u8>) {
    respond_error(out, error.opcode, error.opaque, error.status);
}

/// Appends the response to a keyed command (nothing, for a quiet success
/// or a quiet GET miss). `key` is the request's key, echoed by GETK.
pub(crate) fn encode_outcome(ctx: Ctx, key: &[u8], outcome: &Outcome<&[u8]>, out: &mut Vec<u8>) {
    let Ctx {
        opcode,
        opaque,
        refused,
    } = ctx;
    if let Some(code) = refused {
        respond_error(out, opcode, opaque, code);
        return;
    }
    let quiet = memcache::is_quiet(opcode);
    let echo = if memcache::returns_key(opcode) {
        key
    } else {
        &[]
    };
    match *outcome {
        Outcome::Hit { flags, cas, value } => respond(
            out,
            opcode,
            status::NO_ERROR,
            opaque,
            cas,
            &flags.to_be_bytes(),
            echo,
            value,
        ),
        Outcome::Miss if quiet => {}
        // memcached echoes the key of a GETK miss instead of a message.
        Outcome::Miss if !echo.is_empty() => {
            respond(out, opcode, status::KEY_ENOENT, opaque, 0, &[], echo, &[])
        }
        Outcome::Miss | Outcome::NotFound => respond_error(out, opcode, opaque, status::KEY_ENOENT),
        Outcome::Stored { .. } | Outcome::Deleted | Outcome::Counter { .. } if quiet => {}
        Outcome::Stored { cas } => {
            respond(out, opcode, status::NO_ERROR, opaque, cas, &[], &[], &[])
        }
        Outcome::Deleted => respond(out, opcode, status::NO_ERROR, opaque, 0, &[], &[], &[]),
        Outcome::Counter { value, cas } => respond(
            out,
            opcode,
            status::NO_ERROR,
            opaque,
            cas,
            &[],
            &[],
            &value.to_be_bytes(),
        ),
        Outcome::Touched { flags, cas } => respond(
            out,
            opcode,
            status::NO_ERROR,
            opaque,
            cas,
            &flags.to_be_bytes(),
            &[],
            &[],
        ),
        // memcached reports a failed condition by what was expected: an ADD
        // found the key, a REPLACE did not, an APPEND/PREPEND did not.
        Outcome::NotStored => {
            let code = match opcode {
                opcode::ADD | opcode::ADDQ => status::KEY_EEXISTS,
                opcode::REPLACE | opcode::REPLACEQ => status::KEY_ENOENT,
                _ => status::NOT_STORED,
            };
            respond_error(out, opcode, opaque, code);
        }
        Outcome::Exists => respond_error(out, opcode, opaque, status::KEY_EEXISTS),
        Outcome::NonNumeric => respond_error(out, opcode, opaque, status::DELTA_BADVAL),
        // memcached cannot allocate the grown item and answers NOT_STORED.
        Outcome::TooLarge => respond_error(out, opcode, opaque, status::NOT_STORED),
        // An item no slab class can hold is E2BIG in memcached.
        Outcome::NoRoom => respond_error(out, opcode, opaque, status::E2BIG),
        // Binary requests never ask for a meta answer; say so rather than
        // trust that forever.
        Outcome::Meta { .. } => respond_error(out, opcode, opaque, status::EINVAL),
    }
}

/// One STAT frame: the name as key, the value as decimal text.
fn stat_frame(out: &mut Vec<u8>, opcode: u8, opaque: u32, name: &str, value: &dyn fmt::Display) {
    let start = out.len();
    respond(
        out,
        opcode,
        status::NO_ERROR,
        opaque,
        0,
        &[],
        name.as_bytes(),
        &[],
    );
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
    memcache::patch_body_len(out, start);
}

/// The empty frame that ends a STAT reply.
fn stat_end(out: &mut Vec<u8>, opcode: u8, opaque: u32) {
    respond(out, opcode, status::NO_ERROR, opaque, 0, &[], &[], &[]);
}

/// Appends the response to a request this worker answers alone.
pub(crate) fn encode_local(
    opcode: u8,
    opaque: u32,
    local: Local<'_>,
    settings: &stats::Settings,
    out: &mut Vec<u8>,
) {
    match local {
        Local::Ok => respond(out, opcode, status::NO_ERROR, opaque, 0, &[], &[], &[]),
        Local::Version => respond(
            out,
            opcode,
            status::NO_ERROR,
            opaque,
            0,
            &[],
            &[],
            stats::VERSION.as_bytes(),
        ),
        Local::Settings => {
            stats::for_each_setting(settings, |name, value| {
                stat_frame(out, opcode, opaque, name, value)
            });
            stat_end(out, opcode, opaque);
        }
        Local::EmptyGroup => stat_end(out, opcode, opaque),
        Local::UnknownGroup(_) => respond_error(out, opcode, opaque, status::KEY_ENOENT),
    }
}

/// Appends the response to a request every worker has applied.
pub(crate) fn encode_applied(
    ctx: Ctx,
    what: Broadcast,
    enc: &Encoder,
    parts: &[(u32, WorkerStats)],
    out: &mut Vec<u8>,
) {
    let Ctx { opcode, opaque, .. } = ctx;
    match what {
        Broadcast::Stats(StatsGroup::General) => {
            stats::for_each(&enc.info(), &stats::total(parts), |name, value| {
                stat_frame(out, opcode, opaque, name, value)
            });
            stat_end(out, opcode, opaque);
        }
        Broadcast::Stats(group @ (StatsGroup::Items | StatsGroup::Slabs)) => {
            let sum = stats::total(parts);
            let frame = |name: &str, value: u64| stat_frame(out, opcode, opaque, name, &value);
            if group == StatsGroup::Items {
                stats::for_each_items(&sum, frame);
            } else {
                stats::for_each_slabs(&sum, frame);
            }
            stat_end(out, opcode, opaque);
        }
        Broadcast::Stats(StatsGroup::Workers) => {
            stats::for_each_worker(parts, |name, value| {
                stat_frame(out, opcode, opaque, name, &value)
            });
            stat_end(out, opcode, opaque);
        }
        Broadcast::ResetStats => stat_end(out, opcode, opaque),
        Broadcast::MemLimit { .. } => {
            respond(out, opcode, status::NO_ERROR, opaque, 0, &[], &[], &[])
        }
        Broadcast::Flush { .. } if memcache::is_quiet(opcode) => {}
        Broadcast::Flush { .. } => respond(out, opcode, status::NO_ERROR, opaque, 0, &[], &[], &[]),
    }
}

/// Appends QUIT's answer (nothing for QUITQ).
pub(crate) fn encode_quit(opcode: u8, opaque: u32, out: &mut Vec<u8>) {
    if !memcache::is_quiet(opcode) {
        respond(out, opcode, status::NO_ERROR, opaque, 0, &[], &[], &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_delay_follows_the_expiry_rules() {
        let now = 1_800_000_000;
        let flush = |delay| {
            action(
                &Request {
                    opcode: opcode::FLUSH,
                    opaque: 0,
                    cmd: Mc::Flush { delay },
                },
                now,
            )
        };
        let after = |delay| Action::Broadcast(Broadcast::Flush { delay });
        assert_eq!(flush(0), after(0));
        assert_eq!(flush(30), after(30));
        assert_eq!(flush(now as u32 + 90), after(90));
        assert_eq!(flush(now as u32 - 90), after(0));
    }
}
