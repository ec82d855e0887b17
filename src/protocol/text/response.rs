//! Replies of the text and meta protocols, appended to the caller's
//! buffer: status lines, `VALUE` lines, counters, `STAT` lines, and the
//! meta replies with the return flags each meta command echoes.
//!
//! Which flags memcached echoes, in the order the request sent them:
//!
//! | command | item facts known (hit, counter updated, any `ms`) | otherwise |
//! |---|---|---|
//! | `mg` | `O k s t c f l h`, then `Z`, `X`, `W` | `O k` |
//! | `ms` | `O k c s` | `O k` |
//! | `md` | `O k` | `O k` |
//! | `ma` | `O k c t` | `O k` |
//!
//! `k` writes the key, base64-encoded again and followed by ` b` when the
//! request had `b`; `t` writes -1 for an item that never expires. (memcached
//! decides `b` from how the item was stored where it has one; a key here is
//! binary when the request said so.) `ms` writes `c` and `s` whatever the
//! outcome, from the facts given: memcached's `c` is 0 when nothing was
//! stored.
//!
//! Numbers are written by a small decimal writer, not `format!`.
//!
//! Must not: decide outcomes, parse requests, or allocate beyond growing
//! the output buffer.

use std::fmt::Display;
use std::io::Write as _;

use super::base64;
use super::error::TextError;
use super::line::Tokens;
use super::meta::MetaCmd;

/// What a meta reply reports of an item.
pub use crate::command::ItemInfo as ItemView;

/// `STORED`.
pub const STORED: &[u8] = b"STORED\r\n";
/// `NOT_STORED`.
pub const NOT_STORED: &[u8] = b"NOT_STORED\r\n";
/// `EXISTS`.
pub const EXISTS: &[u8] = b"EXISTS\r\n";
/// `NOT_FOUND`.
pub const NOT_FOUND: &[u8] = b"NOT_FOUND\r\n";
/// `DELETED`.
pub const DELETED: &[u8] = b"DELETED\r\n";
/// `TOUCHED`.
pub const TOUCHED: &[u8] = b"TOUCHED\r\n";
/// `OK` (`flush_all`, `verbosity`, `cache_memlimit`).
pub const OK: &[u8] = b"OK\r\n";
/// `END`, after the items of a read and the lines of `stats`.
pub const END: &[u8] = b"END\r\n";
/// `RESET`, the answer to `stats reset`.
pub const RESET: &[u8] = b"RESET\r\n";
/// `MN`, the answer to `mn`.
pub const MN: &[u8] = b"MN\r\n";
/// `incr`/`decr`/`ma` of a value that is not a decimal number.
pub const NON_NUMERIC: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
/// A store that found no memory.
pub const OUT_OF_MEMORY: &[u8] = b"SERVER_ERROR out of memory storing object\r\n";
/// An item too large to store (also a refused [`TextError::TooLarge`]).
pub const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
/// `shutdown` on a server started without it enabled; memcached checks
/// this before the argument, so it also answers `shutdown <junk>`.
pub const SHUTDOWN_DISABLED: &[u8] = b"ERROR: shutdown not enabled\r\n";
/// `flush_all` on a server with flushing disabled (checked before the
/// delay; suppressed by `noreply`).
pub const FLUSH_DISABLED: &[u8] = b"CLIENT_ERROR flush_all not allowed\r\n";
/// A connection over `--max-connections`, sent as soon as it is accepted
/// and before anything is read, so in the text protocol whatever the
/// client speaks (memcached's answer over its `-c`); then the server
/// closes.
pub const TOO_MANY_CONNECTIONS: &[u8] = b"ERROR Too many open connections\r\n";
/// `cache_memlimit` below 8.
pub const MEMLIMIT_TOO_SMALL: &[u8] = b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n";
/// `cache_memlimit` over 1000000000.
pub const MEMLIMIT_NOT_BYTES: &[u8] =
    b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n";

/// The meta status codes.
pub mod code {
    /// A value follows (`mg` with `v`, `ma` with `v`).
    pub const VA: &[u8; 2] = b"VA";
    /// Success without a value.
    pub const HD: &[u8; 2] = b"HD";
    /// `mg` miss.
    pub const EN: &[u8; 2] = b"EN";
    /// Not stored.
    pub const NS: &[u8; 2] = b"NS";
    /// The CAS did not match.
    pub const EX: &[u8; 2] = b"EX";
    /// Not found.
    pub const NF: &[u8; 2] = b"NF";
}

/// Appends `v` in decimal.
pub fn decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `v` in decimal, with a `-` when negative.
pub fn signed(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    decimal(out, v.unsigned_abs());
}

/// Appends a fixed reply line (one of this module's constants, or
/// [`TextError::reply`]).
pub fn line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
}

/// Appends a refusal's reply, or nothing where memcached suppresses it.
pub fn error(out: &mut Vec<u8>, error: &TextError<'_>) {
    if !error.noreply() {
        out.extend_from_slice(error.reply());
    }
}

/// `STORED`.
pub fn stored(out: &mut Vec<u8>) {
    line(out, STORED);
}

/// `NOT_STORED`.
pub fn not_stored(out: &mut Vec<u8>) {
    line(out, NOT_STORED);
}

/// `EXISTS`.
pub fn exists(out: &mut Vec<u8>) {
    line(out, EXISTS);
}

/// `NOT_FOUND`.
pub fn not_found(out: &mut Vec<u8>) {
    line(out, NOT_FOUND);
}

/// `DELETED`.
pub fn deleted(out: &mut Vec<u8>) {
    line(out, DELETED);
}

/// `TOUCHED`.
pub fn touched(out: &mut Vec<u8>) {
    line(out, TOUCHED);
}

/// `OK`.
pub fn ok(out: &mut Vec<u8>) {
    line(out, OK);
}

/// `END`.
pub fn end(out: &mut Vec<u8>) {
    line(out, END);
}

/// `VALUE <key> <flags> <bytes>[ <cas>]`: the line before an item's data
/// block in a `get` family reply (`cas` for `gets` and `gats`).
pub fn value_line(out: &mut Vec<u8>, key: &[u8], flags: u32, len: usize, cas: Option<u64>) {
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    decimal(out, flags.into());
    out.push(b' ');
    decimal(out, len as u64);
    if let Some(cas) = cas {
        out.push(b' ');
        decimal(out, cas);
    }
    out.extend_from_slice(b"\r\n");
}

/// A data block: the value, then `\r\n`.
pub fn data(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A counter's new value, the answer to `incr` and `decr`.
pub fn counter(out: &mut Vec<u8>, value: u64) {
    decimal(out, value);
    out.extend_from_slice(b"\r\n");
}

/// `VERSION <version>`.
pub fn version(out: &mut Vec<u8>, version: &str) {
    out.extend_from_slice(b"VERSION ");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `STAT <name> <value>`.
pub fn stat(out: &mut Vec<u8>, name: &str, value: impl Display) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "STAT {name} {value}\r\n");
}

/// `MN`.
pub fn meta_noop(out: &mut Vec<u8>) {
    line(out, MN);
}

/// ` k<key>`, and ` b` after it for a binary key.
fn key_flag(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        base64::encode(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

/// A space, a flag byte and a number.
fn number_flag(out: &mut Vec<u8>, flag: u8, v: u64) {
    out.extend_from_slice(&[b' ', flag]);
    decimal(out, v);
}

/// A meta reply line: `code` (for `VA`, followed by the item's size), the
/// return flags `cmd` echoes for the request flags `flags_raw` (see the
/// module docs), and `\r\n`. `item` is `None` where memcached has no item
/// to report on (an `mg` miss, an `ma` that found or created nothing);
/// `key` is the decoded key and `base64` whether the request had `b`.
/// A `VA` reply's data block follows with [`data`].
pub fn meta_reply(
    out: &mut Vec<u8>,
    cmd: MetaCmd,
    code: &[u8; 2],
    flags_raw: &[u8],
    item: Option<&ItemView>,
    key: &[u8],
    base64: bool,
) {
    out.extend_from_slice(code);
    if code == code::VA {
        out.push(b' ');
        decimal(out, item.map_or(0, |i| i.size.into()));
    }
    for token in Tokens::new(flags_raw) {
        let Some(&flag) = token.first() else { continue };
        if flag == b'O' {
            out.push(b' ');
            out.extend_from_slice(token);
            continue;
        }
        if flag == b'k' {
            key_flag(out, key, base64);
            continue;
        }
        let Some(i) = item else { continue };
        match (cmd, flag) {
            (MetaCmd::Get | MetaCmd::Set, b's') => number_flag(out, b's', i.size.into()),
            (MetaCmd::Get | MetaCmd::Arith, b't') => match i.ttl {
                Some(ttl) => number_flag(out, b't', ttl.into()),
                None => out.extend_from_slice(b" t-1"),
            },
            (MetaCmd::Get | MetaCmd::Set | MetaCmd::Arith, b'c') => number_flag(out, b'c', i.cas),
            (MetaCmd::Get, b'f') => number_flag(out, b'f', i.flags.into()),
            (MetaCmd::Get, b'l') => number_flag(out, b'l', i.idle.into()),
            (MetaCmd::Get, b'h') => number_flag(out, b'h', i.fetched.into()),
            _ => {}
        }
    }
    if let (MetaCmd::Get, Some(i)) = (cmd, item) {
        for (set, flag) in [(i.win_sent, b" Z"), (i.stale, b" X"), (i.won, b" W")] {
            if set {
                out.extend_from_slice(flag);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The `me` reply: `ME <key> exp=<e> la=<idle> cas=<cas> fetch=<yes|no>
/// cls=1 size=<size>`. As in memcached 1.6.18, `exp` is -1 for an item
/// that never expires and otherwise the expiry time relative to now, so
/// negative for a live item; there are no slab classes here, so `cls` is
/// 1, and `size` is the value's.
pub fn meta_debug(out: &mut Vec<u8>, key: &[u8], binary: bool, item: &ItemView) {
    out.extend_from_slice(b"ME ");
    if binary {
        base64::encode(key, out);
    } else {
        out.extend_from_slice(key);
    }
    out.extend_from_slice(b" exp=");
    signed(out, item.ttl.map_or(-1, |t| -i64::from(t)));
    out.extend_from_slice(b" la=");
    decimal(out, item.idle.into());
    out.extend_from_slice(b" cas=");
    decimal(out, item.cas);
    out.extend_from_slice(if item.fetched {
        b" fetch=yes"
    } else {
        b" fetch=no"
    });
    out.extend_from_slice(b" cls=1 size=");
    decimal(out, item.size.into());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(
        cmd: MetaCmd,
        code: &[u8; 2],
        flags: &[u8],
        item: Option<&ItemView>,
        key: &[u8],
        b64: bool,
    ) -> String {
        let mut out = Vec::new();
        meta_reply(&mut out, cmd, code, flags, item, key, b64);
        out.escape_ascii().to_string()
    }

    fn item() -> ItemView {
        ItemView {
            flags: 5,
            cas: 13,
            ttl: None,
            idle: 0,
            size: 3,
            ..ItemView::default()
        }
    }

    /// Each expected line is what memcached 1.6.18 answered to the same
    /// request and item.
    #[test]
    fn meta_replies_echo_flags_in_request_order() {
        let hit = item();
        assert_eq!(
            reply(
                MetaCmd::Get,
                code::VA,
                b"s v t c f l h k Oabc u",
                Some(&hit),
                b"foo",
                false
            ),
            "VA 3 s3 t-1 c13 f5 l0 h0 kfoo Oabc\\r\\n"
        );
        assert_eq!(
            reply(MetaCmd::Get, code::EN, b"k O1 s v", None, b"missing", false),
            "EN kmissing O1\\r\\n"
        );
        let stale = ItemView {
            cas: 43,
            ttl: Some(30),
            size: 1,
            stale: true,
            won: true,
            ..ItemView::default()
        };
        assert_eq!(
            reply(
                MetaCmd::Get,
                code::VA,
                b"b k v c t",
                Some(&stale),
                b"foo",
                true
            ),
            "VA 1 kZm9v b c43 t30 X W\\r\\n"
        );
        let lost = ItemView {
            won: false,
            win_sent: true,
            ..stale
        };
        assert_eq!(
            reply(
                MetaCmd::Get,
                code::VA,
                b"b k v c t",
                Some(&lost),
                b"foo",
                true
            ),
            "VA 1 kZm9v b c43 t30 Z X\\r\\n"
        );
        let counter = ItemView {
            cas: 41,
            size: 1,
            ..ItemView::default()
        };
        assert_eq!(
            reply(
                MetaCmd::Arith,
                code::VA,
                b"N0 J5 v t c k O1 s f",
                Some(&counter),
                b"cnt",
                false
            ),
            "VA 1 t-1 c41 kcnt O1\\r\\n"
        );
        assert_eq!(
            reply(
                MetaCmd::Arith,
                code::NF,
                b"k O2 c t v",
                None,
                b"nothere",
                false
            ),
            "NF knothere O2\\r\\n"
        );
        assert_eq!(
            reply(
                MetaCmd::Delete,
                code::NF,
                b"k O3 c t s",
                Some(&hit),
                b"cnt",
                false
            ),
            "NF kcnt O3\\r\\n"
        );
        // 1.6.18 echoes `O k c`; newer releases add `s`, which is kept.
        let stored = ItemView {
            cas: 40,
            size: 1,
            ..ItemView::default()
        };
        assert_eq!(
            reply(
                MetaCmd::Set,
                code::HD,
                b"b k c O5 s T0 F3 f t",
                Some(&stored),
                b"foo",
                true
            ),
            "HD kZm9v b c40 O5 s1\\r\\n"
        );
        assert_eq!(
            reply(MetaCmd::Set, code::HD, b"", None, b"k", false),
            "HD\\r\\n"
        );
        assert_eq!(
            reply(MetaCmd::Get, code::HD, b"O", Some(&hit), b"a", false),
            "HD O\\r\\n"
        );
    }

    #[test]
    fn classic_lines() {
        let mut out = Vec::new();
        value_line(&mut out, b"k", 0, 3, None);
        data(&mut out, b"abc");
        value_line(&mut out, b"k", u32::MAX, 0, Some(u64::MAX));
        data(&mut out, b"");
        end(&mut out);
        counter(&mut out, 0);
        version(&mut out, "1.6.18");
        stat(&mut out, "pid", 42);
        stat(&mut out, "rusage_user", "0.5");
        for write in [
            stored, not_stored, exists, not_found, deleted, touched, ok, meta_noop,
        ] {
            write(&mut out);
        }
        assert_eq!(
            out.escape_ascii().to_string(),
            "VALUE k 0 3\\r\\nabc\\r\\nVALUE k 4294967295 0 18446744073709551615\\r\\n\\r\\nEND\\r\\n\
             0\\r\\nVERSION 1.6.18\\r\\nSTAT pid 42\\r\\nSTAT rusage_user 0.5\\r\\nSTORED\\r\\n\
             NOT_STORED\\r\\nEXISTS\\r\\nNOT_FOUND\\r\\nDELETED\\r\\nTOUCHED\\r\\nOK\\r\\nMN\\r\\n"
        );
    }

    #[test]
    fn numbers_and_errors() {
        let mut out = Vec::new();
        for v in [0, 9, 10, 12345, u64::MAX] {
            decimal(&mut out, v);
            out.push(b' ');
        }
        for v in [i64::MIN, -1, 0, i64::MAX] {
            signed(&mut out, v);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8_lossy(&out),
            "0 9 10 12345 18446744073709551615 -9223372036854775808 -1 0 9223372036854775807 "
        );
        out.clear();
        error(&mut out, &TextError::BadFormat { noreply: true });
        assert!(out.is_empty());
        error(&mut out, &TextError::InvalidFlag);
        assert_eq!(out, b"CLIENT_ERROR invalid flag\r\n");
    }

    #[test]
    fn meta_debug_line() {
        let mut out = Vec::new();
        let it = ItemView {
            cas: 49,
            ttl: Some(100),
            size: 3,
            ..ItemView::default()
        };
        meta_debug(&mut out, b"dbg", false, &it);
        meta_debug(
            &mut out,
            b"foo",
            true,
            &ItemView {
                fetched: true,
                ..it
            },
        );
        meta_debug(&mut out, b"k", false, &ItemView { ttl: None, ..it });
        assert_eq!(
            out.escape_ascii().to_string(),
            "ME dbg exp=-100 la=0 cas=49 fetch=no cls=1 size=3\\r\\n\
             ME Zm9v exp=-100 la=0 cas=49 fetch=yes cls=1 size=3\\r\\n\
             ME k exp=-1 la=0 cas=49 fetch=no cls=1 size=3\\r\\n"
        );
    }
}
