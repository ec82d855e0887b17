//! The decoded request ([`Request`]) and memcached's classic text commands:
//! `get` `gets` `gat` `gats` (and the ancient `bget`), `set` `add`
//! `replace` `append` `prepend` `cas`, `delete`, `incr` `decr`, `touch`,
//! `flush_all`, `version`, `verbosity`, `quit`, `shutdown`,
//! `cache_memlimit`, `stats`.
//!
//! Checks are memcached 1.6.18's (`process_command_ascii` and the
//! `process_*_command` functions), in its order:
//!
//! 1. The token count, per command; a wrong count is `ERROR`, whatever
//!    else is wrong, and is never suppressed by `noreply`.
//! 2. `noreply`: the last token, compared exactly.
//! 3. A key over the limit: `CLIENT_ERROR bad command line format`, for
//!    any key of a multi-key read too, which then answers nothing else.
//! 4. The numbers, each with its command's error line.
//! 5. Stores: a length that is negative or over `i32::MAX - 2` is a bad
//!    format; a value over the limit is `SERVER_ERROR object too large for
//!    cache` and the data block is swallowed. A refusal before that leaves
//!    the data block to be read as commands, as memcached does.
//!
//! Extra tokens memcached ignores are ignored (`set k 0 0 1 junk` stores;
//! `version x`, `quit x` run). Commands memcached has that this server
//! does not (`slabs`, `lru`, `lru_crawler`, `watch`, `extstore`, …) are
//! `ERROR`.
//!
//! Must not: run commands, resolve expiry times, write replies, or
//! allocate.

use super::error::TextError;
use super::line::{Tokens, parse_i32, parse_length, parse_u32, parse_u64};
use super::meta::{Key, MetaFlags};
use super::{Limits, Parse, Refuse};

/// One request, borrowing its keys and value from the input. Expiry times
/// are as sent (seconds from now, or a Unix time when over 30 days; 0
/// never; negative already expired), read as memcached reads them: a C
/// `long` truncated to 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `get`, `gets`, `gat`, `gats`: one `VALUE` per hit, then `END`.
    Get {
        /// Which of the four.
        kind: GetKind,
        /// The new expiry of `gat` and `gats`; 0 otherwise.
        exptime: i64,
        /// The keys, each within the limit. At least one, except for
        /// `gat` and `gats`, where memcached answers a bare `END` when
        /// none is given.
        keys: Keys<'a>,
    },
    /// `set`, `add`, `replace`, `append`, `prepend`, `cas`.
    Store {
        /// Which of the six.
        cmd: StoreCmd,
        /// The key.
        key: &'a [u8],
        /// Client flags (append and prepend ignore them).
        flags: u32,
        /// Expiry (append and prepend ignore it).
        exptime: i64,
        /// The CAS to compare (`cas` only; 0 otherwise).
        cas: u64,
        /// Send no reply on success or failure.
        noreply: bool,
        /// The data block, without its `\r\n`.
        value: &'a [u8],
    },
    /// `delete <key> [0] [noreply]`.
    Delete {
        /// The key.
        key: &'a [u8],
        /// Send no reply.
        noreply: bool,
    },
    /// `incr` (true) or `decr`.
    Arith {
        /// Increment rather than decrement.
        incr: bool,
        /// The key.
        key: &'a [u8],
        /// The amount.
        delta: u64,
        /// Send no reply.
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`.
    Touch {
        /// The key.
        key: &'a [u8],
        /// The new expiry.
        exptime: i64,
        /// Send no reply.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`.
    FlushAll {
        /// Invalidate items as of this expiry; 0: now.
        delay: i64,
        /// Send no reply.
        noreply: bool,
    },
    /// `version`.
    Version,
    /// `verbosity <level> [noreply]`.
    Verbosity {
        /// The level asked for.
        level: u32,
        /// Send no reply.
        noreply: bool,
    },
    /// `quit`: close without a reply.
    Quit,
    /// `shutdown [graceful]`.
    Shutdown {
        /// `shutdown graceful`.
        graceful: bool,
    },
    /// `cache_memlimit <megabytes> [noreply]`. memcached answers
    /// `MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m` below 8 and
    /// `MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes` over
    /// 1000000000 (see [`response`](super::response)).
    CacheMemlimit {
        /// The new limit in MiB (a 32-bit value).
        megabytes: u64,
        /// Send no reply.
        noreply: bool,
    },
    /// `stats [args]`.
    Stats {
        /// The rest of the line, without leading and trailing spaces;
        /// [`Tokens::new`] splits it.
        args: &'a [u8],
    },
    /// `mg <key> <flags>*`.
    MetaGet {
        /// The key.
        key: Key<'a>,
        /// The flags.
        flags: MetaFlags<'a>,
    },
    /// `ms <key> <datalen> <flags>*` and its data block.
    MetaSet {
        /// The key.
        key: Key<'a>,
        /// The flags; the mode, if any, is one of `E A P R S`.
        flags: MetaFlags<'a>,
        /// The data block, without its `\r\n`.
        value: &'a [u8],
    },
    /// `md <key> <flags>*`.
    MetaDelete {
        /// The key.
        key: Key<'a>,
        /// The flags.
        flags: MetaFlags<'a>,
    },
    /// `ma <key> <flags>*`.
    MetaArith {
        /// The key.
        key: Key<'a>,
        /// The flags; the mode, if any, is one of `I + D -`.
        flags: MetaFlags<'a>,
    },
    /// `me <key> [b]`. Only `flags.raw` is set: memcached reads no flag
    /// but a `b` right after the key, already applied to `key`.
    MetaDebug {
        /// The key.
        key: Key<'a>,
        /// The rest of the line, unparsed.
        flags: MetaFlags<'a>,
    },
    /// `mn`: answer `MN`.
    MetaNoop,
}

/// Which read a [`Request::Get`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetKind {
    /// `get` (and `bget`).
    Get,
    /// `gets`: `VALUE` lines carry the CAS.
    Gets,
    /// `gat`: get and touch.
    Gat,
    /// `gats`: get and touch, with the CAS.
    Gats,
}

impl GetKind {
    /// Whether `VALUE` lines carry the CAS.
    pub fn returns_cas(self) -> bool {
        matches!(self, GetKind::Gets | GetKind::Gats)
    }

    /// Whether the read sets a new expiry.
    pub fn touches(self) -> bool {
        matches!(self, GetKind::Gat | GetKind::Gats)
    }
}

/// Which store a [`Request::Store`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCmd {
    /// Store unconditionally.
    Set,
    /// Only if the key holds nothing.
    Add,
    /// Only if the key holds an item.
    Replace,
    /// After the item's value.
    Append,
    /// Before the item's value.
    Prepend,
    /// Only if the item's CAS is the one given.
    Cas,
}

/// The keys of a multi-key read: a cheap `Copy` iterator over the
/// space-separated tokens of the line, each already checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keys<'a> {
    tokens: Tokens<'a>,
}

impl<'a> Keys<'a> {
    /// The keys as they appear on the line, space-separated.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.tokens.remainder()
    }

    /// Whether there is no key (`gat <exptime>` alone).
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

impl<'a> Iterator for Keys<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.tokens.next()
    }
}

/// Up to the first 8 tokens of a line (the command at 0, as memcached
/// numbers them) and how many there are in all.
struct Fields<'a> {
    tokens: [&'a [u8]; 8],
    count: usize,
}

impl<'a> Fields<'a> {
    fn new(line: Tokens<'a>) -> Self {
        let mut fields = Fields {
            tokens: [&[]; 8],
            count: 0,
        };
        for token in line {
            if let Some(slot) = fields.tokens.get_mut(fields.count) {
                *slot = token;
            }
            fields.count += 1;
        }
        fields
    }

    fn get(&self, i: usize) -> &'a [u8] {
        self.tokens.get(i).copied().unwrap_or_default()
    }

    /// memcached's `set_noreply_maybe`: the last token is `noreply`.
    fn noreply(&self) -> bool {
        self.count > 1 && self.count <= self.tokens.len() && self.get(self.count - 1) == b"noreply"
    }
}

/// Decodes the classic command whose tokens (command first) are `line`.
pub(crate) fn decode<'a>(line: Tokens<'a>, limits: &Limits) -> Result<Parse<'a>, Refuse<'a>> {
    let mut rest = line;
    let cmd = rest.next().unwrap_or_default();
    // Reads go first: their lines are the long ones, and need no count.
    if matches!(cmd, b"get" | b"gets" | b"gat" | b"gats" | b"bget") {
        return get(cmd, rest, limits);
    }
    let f = Fields::new(line);
    let n = f.count;
    let counts = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(Refuse::line(TextError::UnknownCommand))
        }
    };
    let noreply = f.noreply();
    let bad_format = TextError::BadFormat { noreply };
    let key_ok = |key: &[u8]| {
        if key.len() > limits.max_key_len {
            Err(Refuse::line(bad_format))
        } else {
            Ok(())
        }
    };
    let request = match cmd {
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => {
            return store(&f, limits);
        }
        b"incr" | b"decr" => {
            counts(n == 3 || n == 4)?;
            let key = f.get(1);
            key_ok(key)?;
            let delta =
                parse_u64(f.get(2)).ok_or(Refuse::line(TextError::InvalidDelta { noreply }))?;
            Request::Arith {
                incr: cmd == b"incr",
                key,
                delta,
                noreply,
            }
        }
        b"delete" => {
            counts((2..=4).contains(&n))?;
            if n > 2 {
                let hold_is_zero = f.get(2) == b"0";
                let valid =
                    (n == 3 && (hold_is_zero || noreply)) || (n == 4 && hold_is_zero && noreply);
                if !valid {
                    return Err(Refuse::line(TextError::DeleteUsage { noreply }));
                }
            }
            let key = f.get(1);
            key_ok(key)?;
            Request::Delete { key, noreply }
        }
        b"touch" => {
            counts(n == 3 || n == 4)?;
            let key = f.get(1);
            key_ok(key)?;
            let exptime =
                parse_i32(f.get(2)).ok_or(Refuse::line(TextError::InvalidExptime { noreply }))?;
            Request::Touch {
                key,
                exptime: exptime.into(),
                noreply,
            }
        }
        b"flush_all" => {
            counts((1..=3).contains(&n))?;
            // A lone `noreply` is not a delay.
            let delay = if n == 1 || (n == 2 && noreply) {
                0
            } else {
                parse_i32(f.get(1)).ok_or(Refuse::line(TextError::InvalidExptime { noreply }))?
            };
            Request::FlushAll {
                delay: delay.into(),
                noreply,
            }
        }
        b"verbosity" => {
            counts(n == 2 || n == 3)?;
            let level = parse_u32(f.get(1)).ok_or(Refuse::line(bad_format))?;
            Request::Verbosity { level, noreply }
        }
        b"cache_memlimit" => {
            counts(n == 2 || n == 3)?;
            let megabytes =
                parse_u32(f.get(1)).ok_or(Refuse::line(TextError::BadMemlimit { noreply }))?;
            Request::CacheMemlimit {
                megabytes: megabytes.into(),
                noreply,
            }
        }
        b"shutdown" => match (n, f.get(1)) {
            (1, _) => Request::Shutdown { graceful: false },
            (2, b"graceful") => Request::Shutdown { graceful: true },
            _ => return Err(Refuse::line(TextError::InvalidShutdownMode)),
        },
        b"stats" => Request::Stats {
            args: rest.remainder(),
        },
        b"version" => Request::Version,
        b"quit" => Request::Quit,
        _ => return Err(Refuse::line(TextError::UnknownCommand)),
    };
    Ok(Parse::Line(request))
}

/// The multi-key reads; `rest` is the tokens after the command.
fn get<'a>(cmd: &[u8], rest: Tokens<'a>, limits: &Limits) -> Result<Parse<'a>, Refuse<'a>> {
    let mut keys = rest;
    let first = keys.next().ok_or(Refuse::line(TextError::UnknownCommand))?;
    let (kind, exptime, keys) = match cmd {
        b"gat" | b"gats" => {
            let exptime = parse_i32(first)
                .ok_or(Refuse::line(TextError::InvalidExptime { noreply: false }))?;
            let kind = if cmd == b"gat" {
                GetKind::Gat
            } else {
                GetKind::Gats
            };
            (kind, i64::from(exptime), keys)
        }
        b"gets" => (GetKind::Gets, 0, rest),
        _ => (GetKind::Get, 0, rest),
    };
    let mut all = keys;
    if all.any(|k| k.len() > limits.max_key_len) {
        return Err(Refuse::line(TextError::BadFormat { noreply: false }));
    }
    Ok(Parse::Line(Request::Get {
        kind,
        exptime,
        keys: Keys { tokens: keys },
    }))
}

/// `set`, `add`, `replace`, `append`, `prepend`: `<cmd> <key> <flags>
/// <exptime> <bytes> [noreply]`; `cas` has `<cas unique>` before
/// `[noreply]`.
fn store<'a>(f: &Fields<'a>, limits: &Limits) -> Result<Parse<'a>, Refuse<'a>> {
    let cmd = match f.get(0) {
        b"set" => StoreCmd::Set,
        b"add" => StoreCmd::Add,
        b"replace" => StoreCmd::Replace,
        b"append" => StoreCmd::Append,
        b"prepend" => StoreCmd::Prepend,
        _ => StoreCmd::Cas,
    };
    let fixed = if cmd == StoreCmd::Cas { 6 } else { 5 };
    if f.count != fixed && f.count != fixed + 1 {
        return Err(Refuse::line(TextError::UnknownCommand));
    }
    let noreply = f.noreply();
    let bad_format = Refuse::line(TextError::BadFormat { noreply });
    let key = f.get(1);
    if key.len() > limits.max_key_len {
        return Err(bad_format);
    }
    // memcached checks these one by one, but every failure is the same
    // line, so which fails first does not show.
    let (Some(flags), Some(exptime), Some(len), Some(cas)) = (
        parse_u32(f.get(2)),
        parse_i32(f.get(3)),
        parse_length(f.get(4)),
        if cmd == StoreCmd::Cas {
            parse_u64(f.get(5))
        } else {
            Some(0)
        },
    ) else {
        return Err(bad_format);
    };
    if len > limits.max_value_len {
        return Err(Refuse {
            error: TextError::TooLarge {
                key: Key::plain(key),
                noreply,
                unlink: cmd == StoreCmd::Set,
            },
            body: len as u64 + 2,
        });
    }
    Ok(Parse::Body {
        request: Request::Store {
            cmd,
            key,
            flags,
            exptime: exptime.into(),
            cas,
            noreply,
            value: &[],
        },
        len,
        noreply,
    })
}
