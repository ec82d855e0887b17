//! The server's side of memcached's meta commands (`mg`, `ms`, `md`, `ma`,
//! `me`, `mn`): what their flags ask of the worker, and how the outcome
//! becomes a meta reply, return flags in the order the client sent them.
//!
//! A reply echoes parts of its request (the key for `k`, the opaque for
//! `O`, which return flags were asked for): the raw key and flag tokens
//! travel with the reply as its [`Echo`], borrowed from the read buffer
//! when the key is local, copied once when it is forwarded, and the flags
//! are read again when the reply is written.
//!
//! Must not: read sockets or manage buffers.

use crate::command::{
    Command, Expiry, MetaArith, MetaDelete, MetaRead, MetaStatus, MetaStore, Op, Outcome, StoreMode,
};
use crate::protocol::text::response::{self, code};
use crate::protocol::text::{Key, MAX_KEY, MetaCmd, MetaFlags, Request, TextError, Tokens};

use super::super::replies::Echo;
use super::super::routing::{NoRoom, Route};
use super::ReplyCtx;

/// What a meta reply needs to remember of its request, beside its echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ctx {
    /// Which command, for its reply codes and return flags.
    pub cmd: Cmd,
    /// The key was sent in base64, so `k` returns it so.
    pub base64: bool,
}

/// The meta commands that act on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// `mg`, `ms`, `md`, `ma`.
    Reply(MetaCmd),
    /// `me`.
    Debug,
}

/// Runs a meta command (any other request is a codec error, never sent
/// here).
pub(crate) fn run(req: Request<'_>, route: &mut Route<'_>) -> Result<(), NoRoom> {
    let now = route.shard.unix_now();
    let expiry = |secs: i64| Expiry::memcached(secs, now);
    let (cmd, key, flags, op, value): (Cmd, Key<'_>, MetaFlags<'_>, Op, &[u8]) = match req {
        Request::MetaNoop => {
            route.reply(response::meta_noop);
            return Ok(());
        }
        Request::MetaGet { key, flags } => {
            let read = MetaRead {
                value: flags.has(b'v'),
                touch: flags.ttl.map(expiry),
                vivify: flags.vivify.map(expiry),
                recache_below: flags
                    .recache
                    .map(|secs| u32::try_from(secs.max(0)).unwrap_or(u32::MAX)),
                no_bump: flags.has(b'u'),
                new_cas: flags.new_cas.unwrap_or(0),
            };
            (
                Cmd::Reply(MetaCmd::Get),
                key,
                flags,
                Op::MetaRead(read),
                &[],
            )
        }
        Request::MetaDebug { key, flags } => {
            let read = MetaRead {
                no_bump: true,
                ..MetaRead::default()
            };
            (Cmd::Debug, key, flags, Op::MetaRead(read), &[])
        }
        Request::MetaSet { key, flags, value } => {
            let mode = match flags.mode {
                Some(b'E' | b'e') => StoreMode::Add,
                Some(b'A' | b'a') => StoreMode::Append,
                Some(b'P' | b'p') => StoreMode::Prepend,
                Some(b'R' | b'r') => StoreMode::Replace,
                _ => StoreMode::Set,
            };
            // memcached checks an append's or prepend's CAS only when it
            // is not 0 (a set's or replace's C0 still checks).
            let cas = match mode {
                StoreMode::Append | StoreMode::Prepend => flags.cas.filter(|&c| c != 0),
                _ => flags.cas,
            };
            let store = MetaStore {
                mode,
                flags: flags.client_flags.unwrap_or(0),
                expiry: flags.ttl.map_or(Expiry::Never, expiry),
                cas,
                new_cas: flags.new_cas.unwrap_or(0),
                invalidate: flags.has(b'I'),
                vivify: flags.vivify.map(expiry),
            };
            (
                Cmd::Reply(MetaCmd::Set),
                key,
                flags,
                Op::MetaStore(store),
                value,
            )
        }
        Request::MetaDelete { key, flags } => {
            let delete = MetaDelete {
                cas: flags.cas,
                new_cas: flags.new_cas.unwrap_or(0),
                invalidate: flags.has(b'I'),
                expiry: flags.ttl.map(expiry),
                clear_value: flags.has(b'x'),
            };
            (
                Cmd::Reply(MetaCmd::Delete),
                key,
                flags,
                Op::MetaDelete(delete),
                &[],
            )
        }
        Request::MetaArith { key, flags } => {
            let arith = MetaArith {
                incr: !matches!(flags.mode, Some(b'D' | b'd' | b'-')),
                delta: flags.delta.unwrap_or(1),
                initial: flags.initial.unwrap_or(0),
                vivify: flags.vivify.map(expiry),
                // As memcached's incr and decr: a CAS of 0 checks nothing.
                cas: flags.cas.filter(|&c| c != 0),
                new_cas: flags.new_cas.unwrap_or(0),
                touch: flags.ttl.map(expiry),
            };
            (
                Cmd::Reply(MetaCmd::Arith),
                key,
                flags,
                Op::MetaArith(arith),
                &[],
            )
        }
        // The text adapter runs every classic command itself.
        _ => {
            route.reply(|out| out.extend_from_slice(TextError::UnknownCommand.reply()));
            return Ok(());
        }
    };
    keyed(route, cmd, key, flags, op, value)
}

/// Decodes the key (base64 into a stack buffer: no allocation) and runs
/// the command where the key lives.
fn keyed(
    route: &mut Route<'_>,
    cmd: Cmd,
    key: Key<'_>,
    flags: MetaFlags<'_>,
    op: Op,
    value: &[u8],
) -> Result<(), NoRoom> {
    // The scratch buffer is only set up for base64 keys: most keys are
    // used as sent, and zeroing 250 bytes per request shows in a profile.
    let mut scratch;
    let decoded = if key.base64 {
        scratch = [0u8; MAX_KEY];
        match key.decode(&mut scratch) {
            Ok(decoded) => decoded,
            Err(error) => {
                route.reply(|out| out.extend_from_slice(error.reply()));
                return Ok(());
            }
        }
    } else {
        key.raw
    };
    let ctx = ReplyCtx::Meta(Ctx {
        cmd,
        base64: key.base64,
    });
    let command = Command {
        op,
        key: decoded,
        value,
    };
    let echo = Echo {
        key: key.raw,
        extra: flags.raw,
    };
    route.keyed(ctx, &command, echo)
}

/// Appends a meta reply.
pub(crate) fn encode_outcome(
    ctx: Ctx,
    echo: Echo<'_>,
    outcome: &Outcome<&[u8]>,
    out: &mut Vec<u8>,
) {
    let Outcome::Meta {
        status,
        info,
        value,
    } = *outcome
    else {
        out.extend_from_slice(b"SERVER_ERROR unexpected outcome\r\n");
        return;
    };
    let mut scratch;
    let key = if ctx.base64 {
        scratch = [0u8; MAX_KEY];
        let raw_key = Key {
            raw: echo.key,
            base64: true,
        };
        // The key decoded when the request was read, so it decodes again.
        raw_key.decode(&mut scratch).unwrap_or(echo.key)
    } else {
        echo.key
    };
    let cmd = match ctx.cmd {
        Cmd::Debug => {
            match status {
                MetaStatus::Hit => response::meta_debug(out, key, ctx.base64, &info),
                _ => response::line(out, b"EN\r\n"),
            }
            return;
        }
        Cmd::Reply(cmd) => cmd,
    };
    let flags = echo.extra;
    // One walk over the flags for every question asked of them below.
    let present = Tokens::new(flags)
        .filter_map(|token| token.first())
        .filter(|&&flag| flag < 128)
        .fold(0u128, |set, &flag| set | 1 << flag);
    let has = |flag: u8| present & (1 << flag) != 0;
    let quiet = has(b'q');
    // memcached reports on an item whenever it has one; `ms` writes its
    // return flags whatever happened (`c0` when nothing was stored).
    let found = cmd == MetaCmd::Set || !matches!(status, MetaStatus::Miss | MetaStatus::NotFound);
    let reply = |out: &mut Vec<u8>, code: &[u8; 2]| {
        response::meta_reply(
            out,
            cmd,
            code,
            flags,
            found.then_some(&info),
            key,
            ctx.base64,
        )
    };
    // `q` hides what a pipeline need not hear: a read's miss, and the
    // success of a store, delete or counter update (a counter's value
    // included), as memcached does. A read's hit is always answered.
    match (cmd, status) {
        (MetaCmd::Get, MetaStatus::Hit) => {
            if has(b'v') {
                reply(out, code::VA);
                response::data(out, value);
            } else {
                reply(out, code::HD);
            }
        }
        (_, MetaStatus::Stored | MetaStatus::Deleted | MetaStatus::Miss) if quiet => {}
        (MetaCmd::Arith, MetaStatus::Stored) if has(b'v') => {
            reply(out, code::VA);
            response::data(out, value);
        }
        (_, MetaStatus::Stored | MetaStatus::Deleted | MetaStatus::Hit) => reply(out, code::HD),
        (_, MetaStatus::Miss) => reply(out, code::EN),
        (_, MetaStatus::NotStored) => reply(out, code::NS),
        (_, MetaStatus::Exists) => reply(out, code::EX),
        (_, MetaStatus::NotFound) => reply(out, code::NF),
        (_, MetaStatus::NonNumeric) => out.extend_from_slice(response::NON_NUMERIC),
        (_, MetaStatus::TooLarge) => out.extend_from_slice(response::TOO_LARGE),
        (_, MetaStatus::NoRoom) => out.extend_from_slice(response::OUT_OF_MEMORY),
    }
}
