//! memcached's meta commands (`mg`, `ms`, `md`, `ma`, `me`, `mn`): their
//! keys (plain or base64), their flags, and the checks memcached 1.6.18
//! makes, in its order (`process_m*_command` and `_meta_flag_preparse`):
//!
//! 1. Fewer than two tokens (`mg` alone): `ERROR`; `me` alone:
//!    `CLIENT_ERROR bad command line format`.
//! 2. A key over the limit (as sent, before base64 decoding):
//!    `CLIENT_ERROR bad command line format`.
//! 3. `ms` only: no length token, `CLIENT_ERROR bad command line format`.
//! 4. Too many flags: over 17 (`mg`, `md`, `ma`) or 16 (`ms`).
//! 5. `ms` only: a length that is not a number, negative, or over
//!    `i32::MAX - 2`: `CLIENT_ERROR bad command line format`. From here on
//!    an `ms` refusal swallows the data block as well as the line.
//! 6. The flags, left to right. A flag is a token's first byte, the rest of
//!    the token is its argument. A byte of 127 or more, or a flag seen
//!    before, stops at once with `duplicate flag`; an unknown flag stops
//!    with `invalid flag`. Bad arguments do not stop the walk: the last one
//!    names the error (`bad token in command line format` for C, E, N, R,
//!    T; `invalid numeric initial value` for J; `invalid numeric delta
//!    value` for D; `incorrect length for M token`; `error decoding key`
//!    for b), except that a bad F changes no name, leaving `bad command line
//!    format` if nothing else failed. `md` and `ma` answer every flag
//!    error with `invalid or duplicate flag`.
//! 7. `ma`: a mode other than I, +, D, -; `ms`: other than E, A, P, R, S.
//! 8. An `O` token over 32 bytes, its `O` included: `opaque token too
//!    long` (memcached finds this while writing the reply, after running
//!    `mg` and `ma`; refusing first leaves the item untouched).
//! 9. `ms`: a value over the limit, `SERVER_ERROR object too large for
//!    cache`.
//!
//! `E` and `x` are taken from memcached's newer releases (1.6.18 answers
//! `invalid flag`); everything else is 1.6.18's.
//!
//! Must not: run commands, resolve expiry times, write replies, or
//! allocate.

use super::base64;
use super::error::TextError;
use super::line::{Tokens, parse_i32, parse_length, parse_u32, parse_u64};
use super::request::Request;
use super::{Limits, Parse, Refuse};

/// Size of the scratch buffer a base64 key decodes into: memcached's
/// `KEY_MAX_LENGTH`.
pub const MAX_KEY: usize = 250;

/// Longest `O` token, its leading `O` included.
pub const MAX_OPAQUE: usize = 32;

/// Most flags an `mg`, `md` or `ma` may carry (memcached allows 20 tokens,
/// counting the command, the key and an end marker).
const MAX_FLAGS: usize = 17;

/// A meta command's key, as sent. With the `b` flag it is base64 and
/// [`Key::decode`] gives the bytes it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Key<'a> {
    /// The key token.
    pub raw: &'a [u8],
    /// `raw` is base64 (the request had the `b` flag).
    pub base64: bool,
}

impl<'a> Key<'a> {
    /// A key used as sent.
    pub fn plain(raw: &'a [u8]) -> Self {
        Key { raw, base64: false }
    }

    /// The key's bytes: `raw` itself, or `raw` decoded into `scratch`.
    /// Keys from [`decode_request`](super::decode_request) always decode.
    pub fn decode<'b>(&self, scratch: &'b mut [u8; MAX_KEY]) -> Result<&'b [u8], TextError<'static>>
    where
        'a: 'b,
    {
        if !self.base64 {
            return Ok(self.raw);
        }
        let len = base64::decode(self.raw, scratch).ok_or(TextError::KeyDecode)?;
        Ok(&scratch[..len])
    }
}

/// Which meta command a reply answers; each echoes different flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCmd {
    /// `mg`.
    Get,
    /// `ms`.
    Set,
    /// `md`.
    Delete,
    /// `ma`.
    Arith,
}

/// The flags of a meta command. `raw` keeps them as sent, in order, for the
/// reply writer; the fields hold the parsed arguments. Numbers were checked
/// as memcached checks them; expiry times are as sent (relative seconds, or
/// a Unix time over 30 days), truncated to 32 bits as memcached does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetaFlags<'a> {
    /// Every flag token as sent, space-separated.
    pub raw: &'a [u8],
    /// One bit per ASCII flag byte present.
    present: u128,
    /// `C`: compare this CAS.
    pub cas: Option<u64>,
    /// `E`: the CAS to give a created or changed item.
    pub new_cas: Option<u64>,
    /// `N`: create on a miss, with this expiry.
    pub vivify: Option<i64>,
    /// `R`: win the recache if fewer seconds than this remain.
    pub recache: Option<i64>,
    /// `T`: new expiry.
    pub ttl: Option<i64>,
    /// `F`: client flags to store.
    pub client_flags: Option<u32>,
    /// `M`: the mode byte, checked for `ms` and `ma`.
    pub mode: Option<u8>,
    /// `D`: counter delta.
    pub delta: Option<u64>,
    /// `J`: initial counter value.
    pub initial: Option<u64>,
    /// `O`: the opaque, without its `O` (at most 31 bytes).
    pub opaque: Option<&'a [u8]>,
}

impl<'a> MetaFlags<'a> {
    /// Whether the flag `flag` was sent (`b'q'`, `b'k'`, `b'T'`, …).
    pub fn has(&self, flag: u8) -> bool {
        flag < 128 && self.present & (1u128 << flag) != 0
    }

    /// The flag tokens, in request order.
    pub fn tokens(&self) -> Tokens<'a> {
        Tokens::new(self.raw)
    }

    /// `q`: suppress the nominal reply (`EN` for `mg`, `HD` for the
    /// others).
    pub fn quiet(&self) -> bool {
        self.has(b'q')
    }

    /// `b`: the key is base64.
    pub fn base64(&self) -> bool {
        self.has(b'b')
    }

    /// `v`: return the value.
    pub fn value(&self) -> bool {
        self.has(b'v')
    }

    fn set(&mut self, flag: u8) {
        self.present |= 1u128 << flag;
    }
}

/// memcached's `_meta_flag_preparse` over `raw`, for a command whose key
/// token is `key` (decoded when `b` is present, to check it).
fn parse_flags<'a>(raw: &'a [u8], key: &[u8]) -> Result<MetaFlags<'a>, TextError<'static>> {
    let mut flags = MetaFlags {
        raw,
        ..MetaFlags::default()
    };
    // memcached keeps one error string and carries on after a bad
    // argument, so the last bad argument names the error.
    let mut failed = false;
    let mut error = TextError::BadFormat { noreply: false };
    let mut fail = |e: Option<TextError<'static>>| {
        failed = true;
        if let Some(e) = e {
            error = e;
        }
    };
    for token in Tokens::new(raw) {
        let Some((&flag, arg)) = token.split_first() else {
            continue;
        };
        if flag >= 127 || flags.has(flag) {
            return Err(TextError::DuplicateFlag);
        }
        flags.set(flag);
        match flag {
            b'b' => {
                if base64::decode(key, &mut [0; MAX_KEY]).is_none() {
                    fail(Some(TextError::KeyDecode));
                }
            }
            b'N' | b'T' | b'R' => match parse_i32(arg) {
                Some(v) => {
                    let slot = match flag {
                        b'N' => &mut flags.vivify,
                        b'T' => &mut flags.ttl,
                        _ => &mut flags.recache,
                    };
                    *slot = Some(i64::from(v));
                }
                None => fail(Some(TextError::BadToken)),
            },
            b'C' | b'E' => match parse_u64(arg) {
                Some(v) if flag == b'C' => flags.cas = Some(v),
                Some(v) => flags.new_cas = Some(v),
                None => fail(Some(TextError::BadToken)),
            },
            b'F' => match parse_u32(arg) {
                Some(v) => flags.client_flags = Some(v),
                None => fail(None),
            },
            b'M' => match arg {
                [mode] => flags.mode = Some(*mode),
                _ => fail(Some(TextError::ModeLength)),
            },
            b'J' => match parse_u64(arg) {
                Some(v) => flags.initial = Some(v),
                None => fail(Some(TextError::InvalidInitial)),
            },
            b'D' => match parse_u64(arg) {
                Some(v) => flags.delta = Some(v),
                None => fail(Some(TextError::InvalidDeltaValue)),
            },
            b'O' => flags.opaque = Some(arg),
            b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'v' | b'h' | b'l' | b'u' | b'q'
            | b'I' | b'x' => {}
            _ => return Err(TextError::InvalidFlag),
        }
    }
    if failed { Err(error) } else { Ok(flags) }
}

/// Refuses an `O` token longer than memcached echoes.
fn check_opaque(flags: &MetaFlags<'_>) -> Result<(), TextError<'static>> {
    match flags.opaque {
        Some(o) if o.len() + 1 > MAX_OPAQUE => Err(TextError::OpaqueTooLong),
        _ => Ok(()),
    }
}

/// Decodes the meta command `m<sub>` whose remaining tokens are `args`.
pub(crate) fn decode<'a>(
    sub: u8,
    mut args: Tokens<'a>,
    limits: &Limits,
) -> Result<Parse<'a>, Refuse<'a>> {
    let cmd = match sub {
        b'n' => return Ok(Parse::Line(Request::MetaNoop)),
        b'e' => return debug(args, limits),
        b's' => return set(args, limits),
        b'g' => MetaCmd::Get,
        b'd' => MetaCmd::Delete,
        b'a' => MetaCmd::Arith,
        _ => return Err(Refuse::line(TextError::UnknownCommand)),
    };
    let key = args.next().ok_or(Refuse::line(TextError::UnknownCommand))?;
    if key.len() > limits.max_key_len {
        return Err(Refuse::line(TextError::BadFormat { noreply: false }));
    }
    let raw = args.remainder();
    if Tokens::new(raw).count() > MAX_FLAGS {
        return Err(Refuse::line(match cmd {
            MetaCmd::Get => TextError::GetFlagsTooLong,
            _ => TextError::FlagsTooLong,
        }));
    }
    let flags = parse_flags(raw, key).map_err(|e| {
        Refuse::line(match cmd {
            MetaCmd::Get => e,
            _ => TextError::InvalidOrDuplicateFlag,
        })
    })?;
    if cmd == MetaCmd::Arith && !matches!(flags.mode, None | Some(b'I' | b'+' | b'D' | b'-')) {
        return Err(Refuse::line(TextError::InvalidArithMode));
    }
    check_opaque(&flags).map_err(Refuse::line)?;
    let key = Key {
        raw: key,
        base64: flags.base64(),
    };
    Ok(Parse::Line(match cmd {
        MetaCmd::Get => Request::MetaGet { key, flags },
        MetaCmd::Delete => Request::MetaDelete { key, flags },
        _ => Request::MetaArith { key, flags },
    }))
}

/// `ms <key> <datalen> <flags>*`.
fn set<'a>(mut args: Tokens<'a>, limits: &Limits) -> Result<Parse<'a>, Refuse<'a>> {
    let bad_format = Refuse::line(TextError::BadFormat { noreply: false });
    let key = args.next().ok_or(Refuse::line(TextError::UnknownCommand))?;
    if key.len() > limits.max_key_len {
        return Err(bad_format);
    }
    let len = args.next().ok_or(bad_format)?;
    let raw = args.remainder();
    if Tokens::new(raw).count() > MAX_FLAGS - 1 {
        return Err(Refuse::line(TextError::FlagsTooLong));
    }
    let len = parse_length(len).ok_or(bad_format)?;
    // From here memcached knows the length and swallows the data block
    // with the refusal.
    let body = len as u64 + 2;
    let refuse = |error| Refuse { error, body };
    let flags = parse_flags(raw, key).map_err(refuse)?;
    check_opaque(&flags).map_err(refuse)?;
    if !matches!(flags.mode, None | Some(b'E' | b'A' | b'P' | b'R' | b'S')) {
        return Err(refuse(TextError::InvalidSetMode));
    }
    let key = Key {
        raw: key,
        base64: flags.base64(),
    };
    if len > limits.max_value_len {
        return Err(refuse(TextError::TooLarge {
            key,
            noreply: false,
            unlink: true,
        }));
    }
    Ok(Parse::Body {
        request: Request::MetaSet {
            key,
            flags,
            value: &[],
        },
        len,
        noreply: false,
    })
}

/// `me <key> [b]`: memcached looks at nothing but a `b` right after the
/// key, so the flags are kept as sent and not parsed.
fn debug<'a>(mut args: Tokens<'a>, limits: &Limits) -> Result<Parse<'a>, Refuse<'a>> {
    let bad_format = Refuse::line(TextError::BadFormat { noreply: false });
    let key = args
        .next()
        .filter(|k| k.len() <= limits.max_key_len)
        .ok_or(bad_format)?;
    let raw = args.remainder();
    let binary = args.next() == Some(&b"b"[..]);
    if binary && base64::decode(key, &mut [0; MAX_KEY]).is_none() {
        return Err(bad_format);
    }
    Ok(Parse::Line(Request::MetaDebug {
        key: Key {
            raw: key,
            base64: binary,
        },
        flags: MetaFlags {
            raw,
            ..MetaFlags::default()
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(raw: &[u8]) -> Result<MetaFlags<'_>, TextError<'static>> {
        parse_flags(raw, b"Zm9v")
    }

    #[test]
    fn arguments_are_parsed_and_presence_kept() {
        let f = flags(b"v C5 E6 N-1 R30 T0 F4294967297 MA D7 J8 Oab q k b s t c f h l u I x P L")
            .expect("valid flags");
        assert_eq!(f.cas, Some(5));
        assert_eq!(f.new_cas, Some(6));
        assert_eq!(f.vivify, Some(-1));
        assert_eq!(f.recache, Some(30));
        assert_eq!(f.ttl, Some(0));
        assert_eq!(f.client_flags, Some(1));
        assert_eq!(f.mode, Some(b'A'));
        assert_eq!(f.delta, Some(7));
        assert_eq!(f.initial, Some(8));
        assert_eq!(f.opaque, Some(&b"ab"[..]));
        for flag in b"vCENRTFMDJOqkbstcfhluIxPL" {
            assert!(f.has(*flag), "{}", *flag as char);
        }
        assert!(!f.has(b'z') && !f.has(200));
        assert!(f.quiet() && f.base64() && f.value());
        let tokens: Vec<&[u8]> = f.tokens().collect();
        assert_eq!(tokens.len(), 25);
    }

    #[test]
    fn errors_follow_memcacheds_walk() {
        assert_eq!(flags(b"k k").err(), Some(TextError::DuplicateFlag));
        assert_eq!(flags(b"P Pxx").err(), Some(TextError::DuplicateFlag));
        assert_eq!(flags("é".as_bytes()).err(), Some(TextError::DuplicateFlag));
        assert_eq!(flags(b"\x7f").err(), Some(TextError::DuplicateFlag));
        assert_eq!(flags(b"!").err(), Some(TextError::InvalidFlag));
        assert_eq!(flags(b"v zz").err(), Some(TextError::InvalidFlag));
        assert_eq!(flags(b"T").err(), Some(TextError::BadToken));
        assert_eq!(flags(b"Tabc").err(), Some(TextError::BadToken));
        assert_eq!(flags(b"C-1").err(), Some(TextError::BadToken));
        assert_eq!(
            flags(b"Fabc").err(),
            Some(TextError::BadFormat { noreply: false })
        );
        assert_eq!(flags(b"M").err(), Some(TextError::ModeLength));
        assert_eq!(flags(b"MEE").err(), Some(TextError::ModeLength));
        assert_eq!(flags(b"Dx").err(), Some(TextError::InvalidDeltaValue));
        assert_eq!(flags(b"Jx").err(), Some(TextError::InvalidInitial));
        // A bad argument does not stop the walk: the last one names it,
        // and an unknown or repeated flag overrides all.
        assert_eq!(flags(b"Tx Dx").err(), Some(TextError::InvalidDeltaValue));
        assert_eq!(flags(b"Tx Fx").err(), Some(TextError::BadToken));
        assert_eq!(flags(b"Tx !").err(), Some(TextError::InvalidFlag));
        assert_eq!(flags(b"Tx k k").err(), Some(TextError::DuplicateFlag));
        assert_eq!(parse_flags(b"b", b"foo").err(), Some(TextError::KeyDecode));
        assert!(parse_flags(b"b", b"Zm9v").is_ok());
    }

    #[test]
    fn keys_decode_into_scratch() {
        let mut scratch = [0u8; MAX_KEY];
        assert_eq!(Key::plain(b"foo").decode(&mut scratch), Ok(&b"foo"[..]));
        let b64 = Key {
            raw: b"Zm9v",
            base64: true,
        };
        assert_eq!(b64.decode(&mut scratch), Ok(&b"foo"[..]));
        let bad = Key {
            raw: b"foo",
            base64: true,
        };
        assert_eq!(bad.decode(&mut scratch), Err(TextError::KeyDecode));
    }
}
