//! The server's side of the memcached binary protocol: what each decoded
//! request asks of the worker, and how outcomes become memcached responses
//! (status codes, quiet commands, echoed keys and opaques, STAT frames).
//!
//! The codec (`crate::protocol::memcache`) knows bytes; this module knows
//! memcached's semantics. Must not: read sockets or manage buffers.

use std::fmt;
use std::io::Write as _;

use crate::command::{Command, Expiry, Op, Outcome, StoreMode};
use crate::protocol::memcache::{
    self, Command as Mc, Request, RequestError, Response, opcode, status,
};
use crate::protocol::native::Limits;
use crate::stats::{self, ServerInfo, WorkerStats};

use super::mailbox::Broadcast;

/// memcached reads an expiry above this many seconds (30 days) as an
/// absolute Unix time.
const RELATIVE_LIMIT: u32 = 60 * 60 * 24 * 30;
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

/// Resolves memcached's expiry encoding against the server's Unix time: 0
/// never, up to 30 days relative seconds, beyond that an absolute time (in
/// the past: already expired).
pub(crate) fn expiry(exptime: u32, unix_now: u64) -> Expiry {
    if exptime == 0 {
        Expiry::Never
    } else if exptime <= RELATIVE_LIMIT {
        Expiry::After(exptime)
    } else if u64::from(exptime) <= unix_now {
        Expiry::Immediately
    } else {
        Expiry::After((u64::from(exptime) - unix_now) as u32)
    }
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
                cas,
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
                cas,
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
            b"" => Action::Broadcast(Broadcast::Stats { per_worker: false }),
            b"workers" => Action::Broadcast(Broadcast::Stats { per_worker: true }),
            b"reset" => Action::Broadcast(Broadcast::ResetStats),
            b"settings" => Action::Local(Local::Settings),
            b"items" | b"slabs" | b"sizes" | b"conns" => Action::Local(Local::EmptyGroup),
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
pub(crate) fn encode_refusal(error: &RequestError, out: &mut Vec<u8>) {
    respond_error(out, error.opcode, error.opaque, error.status);
}

/// Appends the response to a keyed command (nothing, for a quiet success
/// or a quiet GET miss). `key` is the request's key, echoed by GETK.
pub(crate) fn encode_outcome(
    opcode: u8,
    opaque: u32,
    key: &[u8],
    outcome: &Outcome<&[u8]>,
    out: &mut Vec<u8>,
) {
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

/// What `stats settings` reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub limits: Limits,
    pub threads: usize,
    pub maxbytes: u64,
}

/// Appends the response to a request this worker answers alone.
pub(crate) fn encode_local(
    opcode: u8,
    opaque: u32,
    local: Local<'_>,
    settings: &Settings,
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
            let mut frame =
                |name: &str, value: &dyn fmt::Display| stat_frame(out, opcode, opaque, name, value);
            frame("maxbytes", &settings.maxbytes);
            frame("num_threads", &settings.threads);
            frame("item_size_max", &settings.limits.max_value_len);
            frame("key_max_length", &settings.limits.max_key_len);
            frame("cas_enabled", &"yes");
            frame("binding_protocol", &"auto-negotiate");
            frame("evictions", &"on");
            frame("eviction_policy", &"sieve");
            stat_end(out, opcode, opaque);
        }
        Local::EmptyGroup => stat_end(out, opcode, opaque),
        Local::UnknownGroup(_) => respond_error(out, opcode, opaque, status::KEY_ENOENT),
    }
}

/// Appends the response to a request every worker has applied.
pub(crate) fn encode_applied(
    opcode: u8,
    opaque: u32,
    what: Broadcast,
    info: &ServerInfo,
    parts: &[(u32, WorkerStats)],
    out: &mut Vec<u8>,
) {
    match what {
        Broadcast::Stats { per_worker: false } => {
            stats::for_each(info, &stats::total(parts), |name, value| {
                stat_frame(out, opcode, opaque, name, value)
            });
            stat_end(out, opcode, opaque);
        }
        Broadcast::Stats { per_worker: true } => {
            stats::for_each_worker(parts, |name, value| {
                stat_frame(out, opcode, opaque, name, &value)
            });
            stat_end(out, opcode, opaque);
        }
        Broadcast::ResetStats => stat_end(out, opcode, opaque),
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
    fn expiry_follows_memcached() {
        let now = 1_800_000_000;
        assert_eq!(expiry(0, now), Expiry::Never);
        assert_eq!(expiry(10, now), Expiry::After(10));
        assert_eq!(expiry(RELATIVE_LIMIT, now), Expiry::After(RELATIVE_LIMIT));
        assert_eq!(expiry(RELATIVE_LIMIT + 1, now), Expiry::Immediately);
        assert_eq!(expiry(now as u32 + 60, now), Expiry::After(60));
        assert_eq!(expiry(now as u32, now), Expiry::Immediately);
    }

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
