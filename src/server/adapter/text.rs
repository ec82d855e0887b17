//! The server's side of memcached's text protocol: its decode step and
//! error policy, what each classic command asks of the worker, and how
//! outcomes become text replies. Meta commands share the connection and the
//! codec; their semantics live in the meta adapter.
//!
//! Error policy, as memcached's: a malformed line is answered (`ERROR`,
//! `CLIENT_ERROR ...`) and the connection goes on; a store too large is
//! answered once the key's old value is removed, and its data block is
//! swallowed as it arrives, never buffered; a line longer than memcached
//! accepts is answered and the connection closed gracefully.
//!
//! Must not: read sockets or manage buffers.

use crate::command::{Broadcast, Command, Expiry, Op, Outcome, StatsGroup, StoreMode};
use crate::limits::Limits;
use crate::protocol::Decoded;
use crate::protocol::text::{
    self, GetKind, Key, Request, StoreCmd, TextError, line_complete, response,
};
use crate::stats::{self, WorkerStats};

use super::super::replies::Echo;
use super::super::routing::{NoRoom, Route};
use super::{Encoder, ReplyCtx, Step, meta};

/// What a classic text reply needs to remember of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctx {
    /// A retrieval: a VALUE block on a hit (with the CAS for `gets` and
    /// `gats`), nothing on a miss.
    Value { cas: bool },
    /// A store, delete, counter or touch: one status line, or nothing with
    /// `noreply`.
    Status { noreply: bool },
    /// A store refused as too large: this error once the key's old value
    /// is removed, whatever the removal found.
    TooLarge { noreply: bool },
    /// `flush_all`, `cache_memlimit`: `OK`.
    Ok { noreply: bool },
    /// A `stats` group.
    Stats,
}

/// Decodes the first command in `data` and runs it.
pub(crate) fn step(data: &[u8], route: &mut Route<'_>, limits: &Limits) -> Step {
    match text::decode_request(data, limits) {
        Ok(Decoded::Complete { frame, consumed }) => match run(frame, route) {
            Ok(Flow::Go) => Step::Done { consumed },
            Ok(Flow::Close) => Step::Quit { consumed },
            Err(Suspended { keys_done, need }) => Step::Blocked { keys_done, need },
        },
        Ok(Decoded::Incomplete { needed }) => Step::Incomplete {
            needed,
            framed: line_complete(data),
        },
        Ok(Decoded::Rejected {
            error:
                TextError::TooLarge {
                    key,
                    noreply,
                    unlink: true,
                },
            skip,
        }) => match refuse_store(key, noreply, route) {
            Ok(()) => Step::Refused { skip },
            Err(NoRoom(need)) => Step::Blocked { keys_done: 0, need },
        },
        Ok(Decoded::Rejected {
            error: TextError::UnknownCommand,
            ..
        }) if is_http(data) => {
            // memcached closes silently on what looks like HTTP, so that a
            // browser cannot be made to send commands; this answers first,
            // so a person who pointed a tool at the wrong port learns why.
            log::debug!("closing a text connection that sent an HTTP request");
            route.reply(|out| out.extend_from_slice(TextError::UnknownCommand.reply()));
            Step::Fatal
        }
        // memcached refuses a disabled flush before it reads the delay.
        Ok(Decoded::Rejected {
            error: TextError::InvalidExptime { noreply },
            skip,
        }) if !route.shard.settings.flush_enabled && data.starts_with(b"flush_all ") => {
            refuse_flush(route, noreply);
            Step::Refused { skip }
        }
        Ok(Decoded::Rejected { error, skip }) => {
            if !error.noreply() {
                route.reply(|out| out.extend_from_slice(error.reply()));
            }
            Step::Refused { skip }
        }
        Err(fatal) => {
            log::debug!("closing a text connection: {fatal}");
            route.reply(|out| out.extend_from_slice(fatal.reply()));
            Step::Fatal
        }
    }
}

/// `flush_all` on a server started with `--disable-flush`: counted, as
/// memcached counts it, and refused.
fn refuse_flush(route: &mut Route<'_>, noreply: bool) {
    route.shard.stats.cmd_flush += 1;
    if !noreply {
        route.reply(|out| out.extend_from_slice(response::FLUSH_DISABLED));
    }
}

/// Whether the first line of `data` is an HTTP request line: its last
/// token names an HTTP version (`GET / HTTP/1.1`).
fn is_http(data: &[u8]) -> bool {
    let line = text::line_end(data).map_or(data, |end| &data[..end]);
    line.trim_ascii_end()
        .rsplit(|&b| b == b' ')
        .next()
        .is_some_and(|last| last.starts_with(b"HTTP/"))
}

/// A store too large to keep removes the key's old value, as memcached
/// does for `set` and `ms`, so a cache never serves the value its client
/// just tried to replace; the error is written once the removal has run.
fn refuse_store(key: Key<'_>, noreply: bool, route: &mut Route<'_>) -> Result<(), NoRoom> {
    let mut scratch;
    let key = if key.base64 {
        scratch = [0u8; text::MAX_KEY];
        key.decode(&mut scratch)
    } else {
        Ok(key.raw)
    };
    let Ok(key) = key else {
        route.reply(|out| out.extend_from_slice(TextError::KeyDecode.reply()));
        return Ok(());
    };
    let cmd = Command {
        op: Op::Unlink,
        key,
        value: &[],
    };
    route.keyed(ReplyCtx::Text(Ctx::TooLarge { noreply }), &cmd, Echo::NONE)
}

/// A request suspended for want of `need` bytes of memory room, after
/// `keys_done` of its keys were answered.
struct Suspended {
    keys_done: usize,
    need: usize,
}

impl From<NoRoom> for Suspended {
    fn from(NoRoom(need): NoRoom) -> Self {
        Suspended { keys_done: 0, need }
    }
}

/// Whether the connection goes on after a command.
enum Flow {
    Go,
    /// `quit` or `shutdown`: close once the replies owed are written.
    Close,
}

fn run(req: Request<'_>, route: &mut Route<'_>) -> Result<Flow, Suspended> {
    let now = route.shard.unix_now();
    match req {
        Request::Get {
            kind,
            exptime,
            keys,
        } => {
            let op = match kind {
                GetKind::Get | GetKind::Gets => Op::Get,
                GetKind::Gat | GetKind::Gats => Op::GetAndTouch {
                    expiry: Expiry::memcached(exptime, now),
                },
            };
            let ctx = ReplyCtx::Text(Ctx::Value {
                cas: matches!(kind, GetKind::Gets | GetKind::Gats),
            });
            // A read suspended for want of room resumes after the keys it
            // answered, so none is answered twice.
            for (i, key) in keys.enumerate().skip(route.keys_done) {
                let cmd = Command {
                    op,
                    key,
                    value: &[],
                };
                route
                    .keyed(ctx, &cmd, Echo::key(key))
                    .map_err(|NoRoom(need)| Suspended { keys_done: i, need })?;
            }
            route.reply(response::end);
        }
        Request::Store {
            cmd,
            key,
            flags,
            exptime,
            cas,
            noreply,
            value,
        } => {
            let mode = match cmd {
                StoreCmd::Set | StoreCmd::Cas => StoreMode::Set,
                StoreCmd::Add => StoreMode::Add,
                StoreCmd::Replace => StoreMode::Replace,
                StoreCmd::Append => StoreMode::Append,
                StoreCmd::Prepend => StoreMode::Prepend,
            };
            let op = Op::Store {
                mode,
                flags,
                expiry: Expiry::memcached(exptime, now),
                // `cas` checks whatever its unique, 0 included: memcached
                // answers NOT_FOUND or EXISTS, never stores unchecked.
                cas: (cmd == StoreCmd::Cas).then_some(cas),
            };
            keyed(route, op, key, value, noreply)?;
        }
        Request::Delete { key, noreply } => keyed(route, Op::Delete { cas: 0 }, key, &[], noreply)?,
        Request::Arith {
            incr,
            key,
            delta,
            noreply,
        } => {
            let op = Op::Arith {
                incr,
                delta,
                initial: 0,
                create: false,
                expiry: Expiry::Never,
                cas: 0,
            };
            keyed(route, op, key, &[], noreply)?;
        }
        Request::Touch {
            key,
            exptime,
            noreply,
        } => {
            let op = Op::Touch {
                expiry: Expiry::memcached(exptime, now),
            };
            keyed(route, op, key, &[], noreply)?;
        }
        Request::FlushAll { noreply, .. } if !route.shard.settings.flush_enabled => {
            refuse_flush(route, noreply);
        }
        Request::FlushAll { delay, noreply } => {
            // memcached reads a flush delay with its expiry rules.
            let delay = match Expiry::memcached(delay, now) {
                Expiry::After(secs) => secs,
                Expiry::Never | Expiry::Immediately => 0,
            };
            route.broadcast(
                ReplyCtx::Text(Ctx::Ok { noreply }),
                Broadcast::Flush { delay },
            );
        }
        Request::CacheMemlimit { megabytes, noreply } => {
            // memcached's bounds: under 8 MiB is refused, and a number
            // this large was surely meant as bytes.
            let refusal = match megabytes {
                0..8 => Some(response::MEMLIMIT_TOO_SMALL),
                1_000_000_001.. => Some(response::MEMLIMIT_NOT_BYTES),
                _ => None,
            };
            if let Some(line) = refusal {
                if !noreply {
                    route.reply(|out| out.extend_from_slice(line));
                }
                return Ok(Flow::Go);
            }
            let bytes = megabytes.saturating_mul(1 << 20);
            route.broadcast(
                ReplyCtx::Text(Ctx::Ok { noreply }),
                Broadcast::MemLimit { bytes },
            );
        }
        Request::Version => route.reply(|out| response::version(out, stats::VERSION)),
        Request::Verbosity { noreply, .. } => {
            if !noreply {
                route.reply(response::ok);
            }
        }
        Request::Quit => return Ok(Flow::Close),
        Request::Shutdown { .. } => {
            if !route.shard.settings.shutdown_command {
                route.reply(|out| out.extend_from_slice(response::SHUTDOWN_DISABLED));
                return Ok(Flow::Go);
            }
            log::info!("shutdown requested by a client");
            route.shard.shutdown_server();
            return Ok(Flow::Close);
        }
        Request::Stats { args } => run_stats(args, route),
        other => meta::run(other, route)?,
    }
    Ok(Flow::Go)
}

/// A keyed command whose reply is one status line.
fn keyed(
    route: &mut Route<'_>,
    op: Op,
    key: &[u8],
    value: &[u8],
    noreply: bool,
) -> Result<(), NoRoom> {
    let cmd = Command { op, key, value };
    route.keyed(ReplyCtx::Text(Ctx::Status { noreply }), &cmd, Echo::NONE)
}

fn run_stats(args: &[u8], route: &mut Route<'_>) {
    let group = match args {
        b"" => StatsGroup::General,
        b"workers" => StatsGroup::Workers,
        b"items" => StatsGroup::Items,
        b"slabs" => StatsGroup::Slabs,
        b"reset" => {
            return route.broadcast(ReplyCtx::Text(Ctx::Stats), Broadcast::ResetStats);
        }
        b"settings" => {
            let settings = route.shard.settings();
            route.reply(|out| {
                stats::for_each_setting(&settings, |name, value| response::stat(out, name, value));
                response::end(out);
            });
            return;
        }
        // No size histogram is kept, as memcached without
        // `-o track_sizes`; and no per-connection listing.
        b"sizes" => {
            return route.reply(|out| {
                response::stat(out, "sizes_status", "disabled");
                response::end(out);
            });
        }
        b"conns" => return route.reply(response::end),
        _ => return route.reply(|out| out.extend_from_slice(b"ERROR\r\n")),
    };
    route.broadcast(ReplyCtx::Text(Ctx::Stats), Broadcast::Stats(group));
}

/// Appends the reply to a classic text command's keyed outcome.
pub(crate) fn encode_outcome(ctx: Ctx, key: &[u8], outcome: &Outcome<&[u8]>, out: &mut Vec<u8>) {
    let noreply = match ctx {
        Ctx::Value { cas } => {
            if let Outcome::Hit {
                flags,
                cas: item_cas,
                value,
            } = *outcome
            {
                response::value_line(out, key, flags, value.len(), cas.then_some(item_cas));
                response::data(out, value);
            }
            return;
        }
        Ctx::TooLarge { noreply } => {
            if !noreply {
                out.extend_from_slice(response::TOO_LARGE);
            }
            return;
        }
        Ctx::Status { noreply } | Ctx::Ok { noreply } => noreply,
        Ctx::Stats => false,
    };
    if noreply {
        return;
    }
    let line: &[u8] = match *outcome {
        Outcome::Stored { .. } => response::STORED,
        Outcome::NotStored => response::NOT_STORED,
        Outcome::Exists => response::EXISTS,
        Outcome::Miss | Outcome::NotFound => response::NOT_FOUND,
        Outcome::Deleted => response::DELETED,
        Outcome::Touched { .. } => response::TOUCHED,
        Outcome::Counter { value, .. } => return response::counter(out, value),
        Outcome::NonNumeric => response::NON_NUMERIC,
        // memcached cannot allocate the grown item and says so.
        Outcome::TooLarge | Outcome::NoRoom => response::OUT_OF_MEMORY,
        Outcome::Hit { .. } | Outcome::Meta { .. } => b"SERVER_ERROR unexpected outcome\r\n",
    };
    out.extend_from_slice(line);
}

/// Appends the reply to a server-wide request every worker has applied.
pub(crate) fn encode_applied(
    ctx: Ctx,
    what: Broadcast,
    enc: &Encoder,
    parts: &[(u32, WorkerStats)],
    out: &mut Vec<u8>,
) {
    match what {
        Broadcast::Flush { .. } | Broadcast::MemLimit { .. } => {
            if ctx != (Ctx::Ok { noreply: true }) {
                response::ok(out);
            }
        }
        Broadcast::ResetStats => out.extend_from_slice(response::RESET),
        Broadcast::Stats(group) => {
            let sum = stats::total(parts);
            let mut stat = |name: &str, value: u64| response::stat(out, name, value);
            match group {
                StatsGroup::General => {
                    stats::for_each(&enc.info(), &sum, |name, value| {
                        response::stat(out, name, value)
                    });
                }
                StatsGroup::Workers => {
                    stats::for_each(&enc.info(), &sum, |name, value| {
                        response::stat(out, name, value)
                    });
                    stats::for_each_worker(parts, |name, value| response::stat(out, name, value));
                }
                StatsGroup::Items => stats::for_each_items(&sum, &mut stat),
                StatsGroup::Slabs => stats::for_each_slabs(&sum, &mut stat),
            }
            response::end(out);
        }
    }
}
