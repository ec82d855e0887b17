//! The invariants the codec fuzz targets check (`fuzz/fuzz_targets/`),
//! shared with `tests/fuzz_corpus.rs`, which replays the committed corpus
//! and every input that once failed on stable Rust. Both include this file
//! by path, so it uses nothing but `cafe` and std.
//!
//! One input is one peer's byte stream. Each decoder runs over it from the
//! front as a connection does (`Complete`: advance by `consumed`;
//! `Rejected`: advance by `skip`, or stop once that runs past the end;
//! `Incomplete` or an error: stop), under each of [`LIMIT_SETS`], and
//! every answer must hold:
//!
//! - no panic;
//! - `consumed` and `skip` are over 0, and `consumed` is at most what is
//!   there; `needed` is over what is there;
//! - every non-empty key, value or other slice a frame (or a refusal)
//!   holds lies inside that frame's bytes of the input (pointer ranges:
//!   the decoders never copy); an empty slice may point anywhere, as
//!   reading it reads nothing;
//! - keys and values are within the limits the decoder was given;
//! - the answer does not depend on the bytes after the frame, nor on how
//!   the frame was split into reads: every proper prefix of a complete or
//!   refused frame decodes as `Incomplete` with `needed` between the
//!   prefix's length and the frame's, or (a refusal decided from its
//!   header) as the same refusal. Checking every prefix costs the square
//!   of the frame's length, so this runs under the first (smallest) limit
//!   set only, where the most refusals are decided, and a frame over
//!   [`ALL_PREFIXES_MAX`] bytes has a sample checked: its first and last
//!   prefixes, those around every power of two (where the protocols'
//!   limits sit), and a stride.
//!
//! Must not: depend on anything but `cafe` and std; run into a peer's
//! claimed lengths (only what is in the input is ever touched).

#![allow(dead_code)]

use std::fmt::{self, Debug};
use std::hash::{DefaultHasher, Hasher};

use cafe::limits::Limits;
use cafe::protocol::Decoded;
use cafe::protocol::memcache::{self, Command};
use cafe::protocol::native;
use cafe::protocol::text::{self, Key, MetaFlags, Request, TextError};

/// Every input is decoded under each: limits small enough that the fuzzer
/// crosses them often, memcached's own, and keys longer than the 250 bytes
/// a base64 meta key decodes into.
pub const LIMIT_SETS: [Limits; 3] = [
    Limits {
        max_key_len: 16,
        max_value_len: 64,
    },
    Limits {
        max_key_len: 250,
        max_value_len: 1 << 20,
    },
    Limits {
        max_key_len: 1024,
        max_value_len: 1 << 20,
    },
];

/// Frames up to this length have every prefix re-decoded; longer ones a
/// sample (see [`prefix_lengths`]).
pub const ALL_PREFIXES_MAX: usize = 64;

/// What one decode of the front of a buffer said, without borrowing it.
/// Frames, refusals and errors are kept as a hash of their `Debug` text,
/// which shows every field and the bytes of every slice, so two answers
/// compare by content without an allocation (the fuzzer's sanitizer makes
/// every allocation slow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Complete { consumed: usize, frame: u64 },
    Incomplete { needed: usize },
    Rejected { skip: u64, error: u64 },
    Error(u64),
}

/// A decoder under test: decodes the front of `buf` under `limits`, checks
/// the limits on what it decoded, and pushes every slice the frame or the
/// refusal borrows into `parts`. The [`Answer`]'s hashes are 0 unless
/// `hash` (formatting a frame is most of the cost of a check).
pub type Decode = for<'a> fn(&'a [u8], &Limits, &mut Vec<&'a [u8]>, bool) -> Answer;

/// A fuzz target over one decoder.
#[derive(Clone, Copy)]
pub struct Codec {
    /// The fuzz target's name, which is also its corpus directory's.
    pub name: &'static str,
    decode: Decode,
}

/// Every codec target, by name.
pub const CODECS: [Codec; 5] = [
    Codec {
        name: "native_request",
        decode: native_request,
    },
    Codec {
        name: "memcache_request",
        decode: memcache_request,
    },
    Codec {
        name: "text_request",
        decode: text_request,
    },
    Codec {
        name: "native_response",
        decode: native_response,
    },
    Codec {
        name: "memcache_response",
        decode: memcache_response,
    },
];

/// The codec target called `name`.
pub fn codec(name: &str) -> Option<Codec> {
    CODECS.iter().copied().find(|c| c.name == name)
}

impl Codec {
    /// Runs the decoder over `input` under every limit set; panics, saying
    /// which invariant broke and where, if one does.
    pub fn check(&self, input: &[u8]) {
        for (i, limits) in LIMIT_SETS.iter().enumerate() {
            check_stream(self.decode, input, limits, i == 0);
        }
    }
}

fn check_stream(decode: Decode, input: &[u8], limits: &Limits, splits: bool) {
    let mut pos = 0;
    let mut parts = Vec::new();
    loop {
        let rest = &input[pos..];
        let at = |what: &str| format!("{what} at offset {pos} under {limits:?}");
        parts.clear();
        let answer = decode(rest, limits, &mut parts, splits);
        let frame_len = match &answer {
            Answer::Complete { consumed, .. } => {
                assert!(*consumed > 0, "{}: {answer:?}", at("consumed 0"));
                assert!(
                    *consumed <= rest.len(),
                    "{}: {answer:?} of {} bytes",
                    at("consumed past the input"),
                    rest.len()
                );
                *consumed
            }
            Answer::Rejected { skip, .. } => {
                assert!(*skip > 0, "{}: {answer:?}", at("skip 0"));
                usize::try_from(*skip).map_or(rest.len(), |s| s.min(rest.len()))
            }
            Answer::Incomplete { needed } => {
                assert!(
                    *needed > rest.len(),
                    "{}: {answer:?} with {} bytes there",
                    at("needed not over the input"),
                    rest.len()
                );
                0
            }
            Answer::Error(_) => 0,
        };
        check_parts(&rest[..frame_len], &parts, &at);
        match answer {
            Answer::Complete { consumed, .. } => {
                if splits {
                    check_prefixes(decode, &rest[..consumed], limits, &answer, &at);
                }
                pos += consumed;
            }
            Answer::Rejected { skip, .. } => {
                let whole = usize::try_from(skip).ok().filter(|&s| s <= rest.len());
                if splits {
                    let there = whole.unwrap_or(rest.len());
                    check_prefixes(decode, &rest[..there], limits, &answer, &at);
                }
                match whole {
                    Some(skip) => pos += skip,
                    None => break,
                }
            }
            Answer::Incomplete { .. } | Answer::Error(_) => break,
        }
    }
}

/// Every non-empty slice in `parts` lies inside `frame`.
fn check_parts(frame: &[u8], parts: &[&[u8]], at: &dyn Fn(&str) -> String) {
    let range = frame.as_ptr_range();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        let inside = range.start <= part.as_ptr() && part.as_ptr_range().end <= range.end;
        assert!(
            inside,
            "{}: {part:?} is not inside the frame {frame:?}",
            at("slice outside its frame")
        );
    }
}

/// `frame` is the bytes of `whole` that are there (all of them, or the
/// start of a refused frame whose `skip` runs past the input): decoding it
/// alone gives `whole` again, and every shorter prefix is `Incomplete`
/// with `needed` over its length and within the frame, or (for a refusal)
/// the same refusal.
fn check_prefixes(
    decode: Decode,
    frame: &[u8],
    limits: &Limits,
    whole: &Answer,
    at: &dyn Fn(&str) -> String,
) {
    let bound = match whole {
        Answer::Complete { consumed, .. } => *consumed as u64,
        Answer::Rejected { skip, .. } => *skip,
        _ => return,
    };
    let mut parts = Vec::new();
    let alone = decode(frame, limits, &mut parts, true);
    assert_eq!(
        &alone,
        whole,
        "{}: the frame alone decodes otherwise than with what follows it",
        at("split")
    );
    for len in prefix_lengths(frame.len()) {
        parts.clear();
        let answer = decode(&frame[..len], limits, &mut parts, true);
        let consistent = match &answer {
            Answer::Incomplete { needed } => *needed > len && *needed as u64 <= bound,
            Answer::Rejected { .. } => &answer == whole,
            _ => false,
        };
        assert!(
            consistent,
            "{}: its first {len} bytes {:?} decode as {answer:?}, the whole {} bytes as {whole:?}",
            at("split"),
            &frame[..len],
            frame.len()
        );
    }
}

/// The lengths of the proper prefixes of an `n`-byte frame to check: all
/// of them up to [`ALL_PREFIXES_MAX`], else the first and last 64, those
/// within one of a power of two, and every 61st.
fn prefix_lengths(n: usize) -> impl Iterator<Item = usize> {
    let all = n <= ALL_PREFIXES_MAX;
    (0..n).filter(move |&len| {
        all || len < 16
            || n - len <= 16
            || len % 61 == 0
            || [len - 1, len, len + 1].iter().any(|l| l.is_power_of_two())
    })
}

/// An [`Answer`] from a decoder's own.
fn answer<T: Debug, E: Debug, F: Debug>(decoded: &Result<Decoded<T, E>, F>, hash: bool) -> Answer {
    let hash = |value: &dyn Debug| if hash { debug_hash(value) } else { 0 };
    match decoded {
        Ok(Decoded::Complete { frame, consumed }) => Answer::Complete {
            consumed: *consumed,
            frame: hash(frame),
        },
        Ok(Decoded::Incomplete { needed }) => Answer::Incomplete { needed: *needed },
        Ok(Decoded::Rejected { error, skip }) => Answer::Rejected {
            skip: *skip,
            error: hash(error),
        },
        Err(e) => Answer::Error(hash(e)),
    }
}

/// A hash of `value`'s `Debug` text, written straight into the hasher.
fn debug_hash(value: &dyn Debug) -> u64 {
    struct Writer(DefaultHasher);
    impl fmt::Write for Writer {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut w = Writer(DefaultHasher::new());
    fmt::write(&mut w, format_args!("{value:?}")).expect("Debug into a hasher");
    w.0.finish()
}

fn key_within(key: &[u8], limits: &Limits, what: &str) {
    assert!(
        !key.is_empty() && key.len() <= limits.max_key_len,
        "{what}: key of {} bytes accepted under {limits:?}",
        key.len()
    );
}

fn value_within(value: &[u8], limits: &Limits, what: &str) {
    assert!(
        value.len() <= limits.max_value_len,
        "{what}: value of {} bytes accepted under {limits:?}",
        value.len()
    );
}

/// A stored key and value: both within the limits, both to be checked
/// against the frame.
fn stored<'a>(
    key: &'a [u8],
    value: &'a [u8],
    limits: &Limits,
    parts: &mut Vec<&'a [u8]>,
    what: &str,
) {
    key_within(key, limits, what);
    value_within(value, limits, what);
    parts.extend([key, value]);
}

fn native_request<'a>(
    buf: &'a [u8],
    limits: &Limits,
    parts: &mut Vec<&'a [u8]>,
    hash: bool,
) -> Answer {
    let decoded = native::decode_request(buf, limits);
    if let Ok(Decoded::Complete { frame, .. }) = decoded {
        match frame {
            native::Request::Get { key } | native::Request::Delete { key } => {
                key_within(key, limits, "native");
                parts.push(key);
            }
            native::Request::Set { key, value, .. } => {
                stored(key, value, limits, parts, "native SET");
            }
            native::Request::Noop | native::Request::Stats => {}
        }
    }
    answer(&decoded, hash)
}

fn memcache_request<'a>(
    buf: &'a [u8],
    limits: &Limits,
    parts: &mut Vec<&'a [u8]>,
    hash: bool,
) -> Answer {
    let decoded = memcache::decode_request(buf, limits);
    if let Ok(Decoded::Complete { frame, .. }) = decoded {
        match frame.cmd {
            Command::Get { key }
            | Command::GetAndTouch { key, .. }
            | Command::Touch { key, .. }
            | Command::Delete { key, .. }
            | Command::Arith { key, .. } => {
                key_within(key, limits, "memcache");
                parts.push(key);
            }
            Command::Store { key, value, .. } | Command::Concat { key, value, .. } => {
                stored(key, value, limits, parts, "memcache store");
            }
            Command::Stat { group } => {
                assert!(group.len() <= limits.max_key_len, "memcache STAT group");
                parts.push(group);
            }
            Command::Flush { .. }
            | Command::Noop
            | Command::Version
            | Command::Quit
            | Command::Verbosity { .. } => {}
        }
    }
    answer(&decoded, hash)
}

fn text_request<'a>(
    buf: &'a [u8],
    limits: &Limits,
    parts: &mut Vec<&'a [u8]>,
    hash: bool,
) -> Answer {
    let decoded = text::decode_request(buf, limits);
    match decoded {
        Ok(Decoded::Complete { frame, .. }) => text_parts(frame, limits, parts),
        Ok(Decoded::Rejected {
            error: TextError::TooLarge { key, .. },
            ..
        }) => parts.push(key.raw),
        _ => {}
    }
    answer(&decoded, hash)
}

fn text_parts<'a>(frame: Request<'a>, limits: &Limits, parts: &mut Vec<&'a [u8]>) {
    match frame {
        Request::Get { keys, .. } => {
            for key in keys {
                key_within(key, limits, "text get");
                parts.push(key);
            }
            parts.push(keys.as_bytes());
        }
        Request::Store { key, value, .. } => stored(key, value, limits, parts, "text store"),
        Request::Delete { key, .. } | Request::Arith { key, .. } | Request::Touch { key, .. } => {
            key_within(key, limits, "text");
            parts.push(key);
        }
        Request::Stats { args } => parts.push(args),
        Request::MetaGet { key, flags }
        | Request::MetaDelete { key, flags }
        | Request::MetaArith { key, flags }
        | Request::MetaDebug { key, flags } => meta_parts(key, flags, limits, parts),
        Request::MetaSet { key, flags, value } => {
            value_within(value, limits, "ms");
            meta_parts(key, flags, limits, parts);
            parts.push(value);
        }
        Request::FlushAll { .. }
        | Request::Version
        | Request::Verbosity { .. }
        | Request::Quit
        | Request::Shutdown { .. }
        | Request::CacheMemlimit { .. }
        | Request::MetaNoop => {}
    }
}

/// A meta key is within the limit as sent, and a base64 one decodes, as
/// [`Key::decode`] promises for keys from `decode_request`.
fn meta_parts<'a>(key: Key<'a>, flags: MetaFlags<'a>, limits: &Limits, parts: &mut Vec<&'a [u8]>) {
    key_within(key.raw, limits, "meta");
    let mut scratch = [0; text::MAX_KEY];
    if let Err(e) = key.decode(&mut scratch) {
        panic!(
            "meta key {:?} from decode_request does not decode: {e:?}",
            key.raw
        );
    }
    parts.extend([key.raw, flags.raw]);
    if let Some(opaque) = flags.opaque {
        assert!(opaque.len() < text::MAX_OPAQUE, "meta O token too long");
        parts.push(opaque);
    }
}

fn native_response<'a>(
    buf: &'a [u8],
    limits: &Limits,
    parts: &mut Vec<&'a [u8]>,
    hash: bool,
) -> Answer {
    let decoded = native::decode_response(buf, limits.max_value_len);
    if let Ok(Decoded::Complete { frame, .. }) = decoded {
        value_within(frame.value, limits, "native response");
        parts.push(frame.value);
    }
    answer(&decoded, hash)
}

fn memcache_response<'a>(
    buf: &'a [u8],
    limits: &Limits,
    parts: &mut Vec<&'a [u8]>,
    hash: bool,
) -> Answer {
    let decoded = memcache::decode_response(buf, limits.max_value_len);
    if let Ok(Decoded::Complete { frame, .. }) = decoded {
        let body = frame.extras.len() + frame.key.len() + frame.value.len();
        assert!(
            body <= limits.max_value_len,
            "memcache response body of {body} bytes accepted under {limits:?}"
        );
        parts.extend([frame.extras, frame.key, frame.value]);
    }
    answer(&decoded, hash)
}
