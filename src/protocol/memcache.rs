//! The memcached binary protocol: a pure, incremental codec.
//!
//! Like [`native`](super::native), this module owns the byte layout and
//! nothing else: it never touches a socket, never allocates on decode (frames
//! borrow from the input) and treats "need more bytes" as a normal answer.
//!
//! Every frame is a 24-byte header in network byte order followed by the
//! extras, the key and the value; `body_len` counts all three:
//!
//! ```text
//! 0      1      2        4        5         6               8          12       16      24
//! +------+------+--------+--------+---------+---------------+----------+--------+-------+--------+-----+-------+
//! |magic |opcode|key_len |ext_len |data_type|vbucket/status |body_len  |opaque  |cas    | extras | key | value |
//! |u8    |u8    |u16     |u8      |u8       |u16            |u32       |u32     |u64    |        |     |       |
//! +------+------+--------+--------+---------+---------------+----------+--------+-------+--------+-----+-------+
//! ```
//!
//! Requests carry magic 0x80 and a vbucket id (ignored here), responses 0x81
//! and a status. The layout, opcodes and statuses are those of memcached's
//! `protocol_binary.h` and the BinaryProtocolRevamped wiki page.
//!
//! # Validation, as memcached does it
//!
//! memcached checks a request in `proto_bin.c` in this order, and so does
//! [`decode_request`], which reports the first rule broken:
//!
//! 1. `try_read_command_binary`: a first byte other than 0x80 closes the
//!    connection without a reply ([`FrameError::BadMagic`]). We look at the
//!    first byte as soon as it arrives rather than waiting for a header.
//! 2. `key_len + extras_len > body_len`: we answer `EINVAL` and close
//!    ([`ErrorKind::Malformed`]). memcached's source routes this to
//!    `UNKNOWN_COMMAND`, but memcached 1.6.18 in practice answers nothing and
//!    waits for bytes that can never make the frame consistent, so the
//!    connection hangs; a malformed frame deserves the malformed-frame
//!    answer.
//! 3. `dispatch_bin_command`: a key over `KEY_MAX_LENGTH` (250) goes to
//!    `handle_binary_protocol_error`, which answers `EINVAL` and closes. This
//!    comes before the opcode is looked at, so it applies to unknown opcodes
//!    too. We compare against [`Limits::max_key_len`].
//! 4. `dispatch_bin_command`'s opcode switch: a request whose extras, key or
//!    value do not fit its opcode also goes to `handle_binary_protocol_error`
//!    (`EINVAL`, close). The shapes:
//!
//!    | opcodes                                | extras | key      | value |
//!    |----------------------------------------|--------|----------|-------|
//!    | GET GETQ GETK GETKQ                    | 0      | required | none  |
//!    | SET ADD REPLACE (and Q)                | 8      | required | any   |
//!    | APPEND PREPEND (and Q)                 | 0      | required | any   |
//!    | DELETE DELETEQ                         | 0      | required | none  |
//!    | INCREMENT DECREMENT (and Q)            | 20     | required | none  |
//!    | TOUCH GAT GATQ GATK GATKQ              | 4      | required | none* |
//!    | FLUSH FLUSHQ                           | 0 or 4 | none     | none  |
//!    | NOOP VERSION QUIT QUITQ                | 0      | none     | none  |
//!    | VERBOSITY                              | 4*     | none     | none  |
//!    | STAT                                   | 0      | optional | none* |
//!
//!    (* marks a difference, below.)
//! 5. The switch's `default`: any other opcode answers `UNKNOWN_COMMAND`,
//!    swallows the body and keeps the connection ([`ErrorKind::UnknownCommand`]).
//! 6. `process_bin_update` and `process_bin_append_prepend`: an item too
//!    large to store answers `E2BIG`, swallows the value and keeps the
//!    connection ([`ErrorKind::TooLarge`]).
//!
//! Error replies carry no extras or key; their value is a short text, which
//! [`RequestError`]'s `Display` and [`status::text`] give exactly as
//! memcached's `write_bin_error` writes it ("Unknown command", "Invalid
//! arguments", "Too large.", ...).
//!
//! # Deliberate differences
//!
//! - Refusals are decided from the header alone: memcached waits for the
//!   extras and key first. The answers are the same; a refused body is never
//!   buffered.
//! - `skip` is always the whole frame. memcached's `UNKNOWN_COMMAND` swallows
//!   `body_len` bytes counted *after* the extras and key it has already
//!   consumed, so an unknown request with a key eats the start of the next
//!   one.
//! - TOUCH and GAT*: memcached checks only `extras_len == 4` and a key, and
//!   STAT only `extras_len == 0`; a value sent with them would be read as the
//!   next header. We refuse the value (`EINVAL`), as the wiki says "MUST NOT
//!   have value".
//! - VERBOSITY: memcached 1.6's switch has no case for it (it answers
//!   `UNKNOWN_COMMAND`); we accept the wiki's shape (4-byte extras, no key,
//!   no value), which memcached's engine branch also enforced.
//! - SASL opcodes (0x20..=0x22) are unknown commands, as in a memcached
//!   started without SASL (which swallows a slightly different length).
//! - The size limit: memcached's `item_size_ok` weighs key, value and item
//!   header against its item size; we compare the value alone with
//!   [`Limits::max_value_len`].
//! - Like memcached, the data type, the vbucket id and the cas of a request
//!   that has no use for one are ignored. Re-encoding a decoded request
//!   writes zeros there, and writes FLUSH with a zero delay without extras;
//!   these are the only ways it can differ from the bytes decoded.

use std::convert::Infallible;
use std::fmt;

pub use super::Decoded;
pub use super::native::Limits;

/// First byte of every request; memcached also picks the binary protocol
/// for a connection by this byte.
pub const REQUEST_MAGIC: u8 = 0x80;
/// First byte of every response.
pub const RESPONSE_MAGIC: u8 = 0x81;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 24;

/// Opcode values on the wire. A name ending in Q is the quiet form of the
/// same command: see [`Request::is_quiet`].
pub mod opcode {
    /// Look a key up.
    pub const GET: u8 = 0x00;
    /// Store unconditionally.
    pub const SET: u8 = 0x01;
    /// Store only if the key is absent.
    pub const ADD: u8 = 0x02;
    /// Store only if the key is present.
    pub const REPLACE: u8 = 0x03;
    /// Remove a key.
    pub const DELETE: u8 = 0x04;
    /// Add to a counter.
    pub const INCREMENT: u8 = 0x05;
    /// Subtract from a counter (never below zero).
    pub const DECREMENT: u8 = 0x06;
    /// Answer, then close the connection.
    pub const QUIT: u8 = 0x07;
    /// Invalidate every item, now or after a delay.
    pub const FLUSH: u8 = 0x08;
    /// Quiet GET: a miss is not answered.
    pub const GETQ: u8 = 0x09;
    /// Do nothing; answered, so it fences a run of quiet requests.
    pub const NOOP: u8 = 0x0a;
    /// Answer the server version as text.
    pub const VERSION: u8 = 0x0b;
    /// GET whose answer carries the key.
    pub const GETK: u8 = 0x0c;
    /// Quiet GETK.
    pub const GETKQ: u8 = 0x0d;
    /// Add bytes after a stored value.
    pub const APPEND: u8 = 0x0e;
    /// Add bytes before a stored value.
    pub const PREPEND: u8 = 0x0f;
    /// Server statistics, one response per counter, then an empty one.
    pub const STAT: u8 = 0x10;
    /// Quiet SET.
    pub const SETQ: u8 = 0x11;
    /// Quiet ADD.
    pub const ADDQ: u8 = 0x12;
    /// Quiet REPLACE.
    pub const REPLACEQ: u8 = 0x13;
    /// Quiet DELETE.
    pub const DELETEQ: u8 = 0x14;
    /// Quiet INCREMENT.
    pub const INCREMENTQ: u8 = 0x15;
    /// Quiet DECREMENT.
    pub const DECREMENTQ: u8 = 0x16;
    /// Close the connection without answering.
    pub const QUITQ: u8 = 0x17;
    /// Quiet FLUSH.
    pub const FLUSHQ: u8 = 0x18;
    /// Quiet APPEND.
    pub const APPENDQ: u8 = 0x19;
    /// Quiet PREPEND.
    pub const PREPENDQ: u8 = 0x1a;
    /// Set the server's log verbosity.
    pub const VERBOSITY: u8 = 0x1b;
    /// Set a new expiry on an item without reading it.
    pub const TOUCH: u8 = 0x1c;
    /// Get and touch.
    pub const GAT: u8 = 0x1d;
    /// Quiet GAT.
    pub const GATQ: u8 = 0x1e;
    /// GAT whose answer carries the key.
    pub const GATK: u8 = 0x23;
    /// Quiet GATK.
    pub const GATKQ: u8 = 0x24;
}

/// Response status values on the wire.
pub mod status {
    /// Success.
    pub const NO_ERROR: u16 = 0x00;
    /// The key does not exist.
    pub const KEY_ENOENT: u16 = 0x01;
    /// The key exists (ADD), or its cas does not match.
    pub const KEY_EEXISTS: u16 = 0x02;
    /// The value is too large to store.
    pub const E2BIG: u16 = 0x03;
    /// The request's extras, key or value do not fit its opcode.
    pub const EINVAL: u16 = 0x04;
    /// APPEND or PREPEND to a missing key, or a failed store.
    pub const NOT_STORED: u16 = 0x05;
    /// INCREMENT or DECREMENT of a value that is not a number.
    pub const DELTA_BADVAL: u16 = 0x06;
    /// The opcode is not one the server runs.
    pub const UNKNOWN_COMMAND: u16 = 0x81;
    /// No memory to run the request.
    pub const ENOMEM: u16 = 0x82;
    /// A known opcode the server chooses not to run.
    pub const NOT_SUPPORTED: u16 = 0x83;

    /// The text memcached's `write_bin_error` sends as the value of an error
    /// response with this status. memcached has no text for NOT_SUPPORTED
    /// (it never sends it); we use "Not supported".
    pub fn text(status: u16) -> &'static str {
        match status {
            NO_ERROR => "",
            KEY_ENOENT => "Not found",
            KEY_EEXISTS => "Data exists for key.",
            E2BIG => "Too large.",
            EINVAL => "Invalid arguments",
            NOT_STORED => "Not stored.",
            DELTA_BADVAL => "Non-numeric server-side value for incr or decr",
            UNKNOWN_COMMAND => "Unknown command",
            ENOMEM => "Out of memory",
            NOT_SUPPORTED => "Not supported",
            _ => "Unknown error",
        }
    }
}

/// Bytes of SET, ADD and REPLACE extras: flags u32, exptime u32.
const STORE_EXTRAS: u8 = 8;
/// Bytes of INCREMENT and DECREMENT extras: delta u64, initial u64,
/// exptime u32.
const ARITH_EXTRAS: u8 = 20;
/// Bytes of TOUCH, GAT*, VERBOSITY and (optional) FLUSH extras: one u32.
const U32_EXTRAS: u8 = 4;

/// The 24-byte header, decoded but not yet interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// [`REQUEST_MAGIC`] or [`RESPONSE_MAGIC`].
    pub magic: u8,
    /// See [`opcode`]; a response copies its request's.
    pub opcode: u8,
    /// Bytes of key after the extras.
    pub key_len: u16,
    /// Bytes of extras after the header.
    pub extras_len: u8,
    /// 0 (raw bytes) is the only type defined; ignored on decode.
    pub data_type: u8,
    /// Request: the vbucket id (ignored); response: the [`status`].
    pub vbucket_or_status: u16,
    /// Extras plus key plus value.
    pub body_len: u32,
    /// Copied from request to response untouched.
    pub opaque: u32,
    /// Request: compare-and-swap token (0: none); response: the item's cas.
    pub cas: u64,
}

impl Header {
    /// Reads a header from the first [`HEADER_LEN`] bytes, if present,
    /// whatever its magic.
    pub fn parse(buf: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            magic: h[0],
            opcode: h[1],
            key_len: u16::from_be_bytes([h[2], h[3]]),
            extras_len: h[4],
            data_type: h[5],
            vbucket_or_status: u16::from_be_bytes([h[6], h[7]]),
            body_len: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
            opaque: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
            cas: u64::from_be_bytes([h[16], h[17], h[18], h[19], h[20], h[21], h[22], h[23]]),
        })
    }

    /// The header's wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = self.magic;
        h[1] = self.opcode;
        h[2..4].copy_from_slice(&self.key_len.to_be_bytes());
        h[4] = self.extras_len;
        h[5] = self.data_type;
        h[6..8].copy_from_slice(&self.vbucket_or_status.to_be_bytes());
        h[8..12].copy_from_slice(&self.body_len.to_be_bytes());
        h[12..16].copy_from_slice(&self.opaque.to_be_bytes());
        h[16..24].copy_from_slice(&self.cas.to_be_bytes());
        h
    }

    /// Appends the header to `out`: built on the stack and copied once,
    /// as one capacity check instead of one per field (this runs for
    /// every reply).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// Header plus body, as a u64 so a hostile `body_len` cannot overflow.
    pub fn frame_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.body_len)
    }
}

/// Which of the storing commands a [`Command::Store`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// SET: store whether or not the key exists.
    Set,
    /// ADD: store only if the key does not exist.
    Add,
    /// REPLACE: store only if the key exists.
    Replace,
}

/// One request, borrowing its key and value from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The wire opcode: tells the quiet and key-returning forms apart, and
    /// is copied into the response.
    pub opcode: u8,
    /// Copied into the response.
    pub opaque: u32,
    /// What to do.
    pub cmd: Command<'a>,
}

impl Request<'_> {
    /// Whether this request is a quiet form: see [`is_quiet`].
    pub fn is_quiet(&self) -> bool {
        is_quiet(self.opcode)
    }

    /// Whether the response carries the key: see [`returns_key`].
    pub fn returns_key(&self) -> bool {
        returns_key(self.opcode)
    }
}

/// Whether `opcode` is a quiet form (GETQ GETKQ SETQ ADDQ REPLACEQ DELETEQ
/// INCREMENTQ DECREMENTQ QUITQ FLUSHQ APPENDQ PREPENDQ GATQ GATKQ). A quiet
/// request's success is not answered; for the quiet reads (GETQ, GETKQ,
/// GATQ, GATKQ) that means a miss is not answered, while a hit is. Errors
/// are always answered (memcached: `write_bin_response` skips only
/// successes, `write_bin_error` never). QUITQ closes without answering.
///
/// Takes the bare opcode, so a server that keeps only the opcode of a
/// request sent to another worker can still decide.
pub fn is_quiet(opcode: u8) -> bool {
    use opcode::*;
    matches!(
        opcode,
        GETQ | GETKQ
            | SETQ
            | ADDQ
            | REPLACEQ
            | DELETEQ
            | INCREMENTQ
            | DECREMENTQ
            | QUITQ
            | FLUSHQ
            | APPENDQ
            | PREPENDQ
            | GATQ
            | GATKQ
    )
}

/// Whether the response to `opcode` (hit or miss) carries the request's key:
/// GETK, GETKQ, GATK, GATKQ.
pub fn returns_key(opcode: u8) -> bool {
    use opcode::*;
    matches!(opcode, GETK | GETKQ | GATK | GATKQ)
}

/// What a request asks for, independent of its quiet or key-returning form.
/// Expiry times are as sent: seconds from now, or a Unix time when over 30
/// days, as in memcached's `realtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// GET, GETQ, GETK, GETKQ.
    Get {
        /// The key.
        key: &'a [u8],
    },
    /// GAT, GATQ, GATK, GATKQ: read the item and set its expiry.
    GetAndTouch {
        /// The key.
        key: &'a [u8],
        /// New expiry.
        exptime: u32,
    },
    /// TOUCH: set an item's expiry; the response carries no value.
    Touch {
        /// The key.
        key: &'a [u8],
        /// New expiry.
        exptime: u32,
    },
    /// SET, ADD, REPLACE and their quiet forms.
    Store {
        /// Which condition applies.
        mode: StoreMode,
        /// The key.
        key: &'a [u8],
        /// The value (may be empty).
        value: &'a [u8],
        /// Opaque client flags, returned by GET.
        flags: u32,
        /// Expiry; 0 never expires.
        exptime: u32,
        /// Store only if the item's cas is this; 0: unconditionally.
        cas: u64,
    },
    /// APPEND, PREPEND and their quiet forms.
    Concat {
        /// APPEND (true) or PREPEND (false).
        append: bool,
        /// The key.
        key: &'a [u8],
        /// The bytes to add (may be empty).
        value: &'a [u8],
        /// Only if the item's cas is this; 0: unconditionally.
        cas: u64,
    },
    /// DELETE, DELETEQ.
    Delete {
        /// The key.
        key: &'a [u8],
        /// Only if the item's cas is this; 0: unconditionally.
        cas: u64,
    },
    /// INCREMENT, DECREMENT and their quiet forms.
    Arith {
        /// INCREMENT (true) or DECREMENT (false).
        incr: bool,
        /// The key.
        key: &'a [u8],
        /// Amount to add or subtract.
        delta: u64,
        /// Value to create a missing counter with.
        initial: u64,
        /// Expiry of a created counter; 0xffffffff: do not create, miss.
        exptime: u32,
        /// Only if the item's cas is this; 0: unconditionally.
        cas: u64,
    },
    /// FLUSH, FLUSHQ. The delay is optional on the wire (extras of 0 or 4
    /// bytes); absent reads as 0, and 0 is encoded without extras.
    Flush {
        /// Invalidate after this expiry; 0: now.
        delay: u32,
    },
    /// NOOP.
    Noop,
    /// VERSION.
    Version,
    /// QUIT, QUITQ: close after answering (QUIT) or at once (QUITQ).
    Quit,
    /// VERBOSITY.
    Verbosity {
        /// The requested level.
        level: u32,
    },
    /// STAT.
    Stat {
        /// The statistics group (the key); empty for the default set.
        group: &'a [u8],
    },
}

/// Why a well-framed request is refused, and what the connection does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An opcode this codec does not run: answer, skip the frame, go on.
    UnknownCommand,
    /// The frame's lengths do not fit its opcode, or the key is too long:
    /// answer EINVAL, then close, as memcached's
    /// `handle_binary_protocol_error` does.
    Malformed,
    /// A value over [`Limits::max_value_len`]: answer E2BIG, skip the
    /// frame, go on.
    TooLarge,
}

/// A well-framed request that is refused. The reply copies `opcode` and
/// `opaque`, carries `status` and, as its value, this error's `Display`
/// text (memcached's own wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestError {
    /// The request's opcode.
    pub opcode: u8,
    /// The request's opaque.
    pub opaque: u32,
    /// The [`status`] to answer with.
    pub status: u16,
    /// What the connection does after answering.
    pub kind: ErrorKind,
}

impl RequestError {
    /// Whether memcached closes the connection once the reply is written.
    /// The frame's `skip` is then moot.
    pub fn closes_connection(&self) -> bool {
        self.kind == ErrorKind::Malformed
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(status::text(self.status))
    }
}

impl std::error::Error for RequestError {}

/// The stream cannot be framed: no reply is possible, close the connection
/// (memcached closes without writing anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The first byte was not [`REQUEST_MAGIC`].
    BadMagic(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadMagic(m) => write!(f, "bad magic 0x{m:02x}, expected 0x80"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Whether a request of some opcode has a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRule {
    Required,
    Optional,
    Forbidden,
}

/// The body an opcode takes: the extras lengths allowed, its key, and
/// whether it may have a value.
#[derive(Debug, Clone, Copy)]
struct Shape {
    extras: [u8; 2],
    key: KeyRule,
    value: bool,
}

/// The shape of every opcode this codec runs (the table in the module docs).
fn shape(op: u8) -> Option<Shape> {
    use KeyRule::*;
    use opcode::*;
    let (extras, key, value) = match op {
        GET | GETQ | GETK | GETKQ => ([0, 0], Required, false),
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ => ([STORE_EXTRAS; 2], Required, true),
        APPEND | APPENDQ | PREPEND | PREPENDQ => ([0, 0], Required, true),
        DELETE | DELETEQ => ([0, 0], Required, false),
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ => ([ARITH_EXTRAS; 2], Required, false),
        TOUCH | GAT | GATQ | GATK | GATKQ => ([U32_EXTRAS; 2], Required, false),
        FLUSH | FLUSHQ => ([0, U32_EXTRAS], Forbidden, false),
        NOOP | VERSION | QUIT | QUITQ => ([0, 0], Forbidden, false),
        VERBOSITY => ([U32_EXTRAS; 2], Forbidden, false),
        STAT => ([0, 0], Optional, false),
        _ => return None,
    };
    Some(Shape { extras, key, value })
}

/// memcached's checks, in its order (see the module docs).
fn validate(h: &Header, limits: &Limits) -> Result<(), RequestError> {
    let refuse = |status, kind| RequestError {
        opcode: h.opcode,
        opaque: h.opaque,
        status,
        kind,
    };
    let key_len = u64::from(h.key_len);
    let extras_len = u64::from(h.extras_len);
    let body_len = u64::from(h.body_len);
    if key_len + extras_len > body_len {
        return Err(refuse(status::EINVAL, ErrorKind::Malformed));
    }
    if usize::from(h.key_len) > limits.max_key_len {
        return Err(refuse(status::EINVAL, ErrorKind::Malformed));
    }
    let Some(shape) = shape(h.opcode) else {
        return Err(refuse(status::UNKNOWN_COMMAND, ErrorKind::UnknownCommand));
    };
    let value_len = body_len - key_len - extras_len;
    let key_ok = match shape.key {
        KeyRule::Required => key_len > 0,
        KeyRule::Optional => true,
        KeyRule::Forbidden => key_len == 0,
    };
    if !shape.extras.contains(&h.extras_len) || !key_ok || (!shape.value && value_len != 0) {
        return Err(refuse(status::EINVAL, ErrorKind::Malformed));
    }
    if value_len > u64::try_from(limits.max_value_len).unwrap_or(u64::MAX) {
        return Err(refuse(status::E2BIG, ErrorKind::TooLarge));
    }
    Ok(())
}

/// Reads a big-endian u32 at `at`; validation has checked the length, so
/// the fallback is never taken (it keeps this path free of panics).
fn be_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

/// As [`be_u32`], for a u64.
fn be_u64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// Builds the command of a validated frame.
fn command<'a>(h: &Header, extras: &[u8], key: &'a [u8], value: &'a [u8]) -> Command<'a> {
    use opcode::*;
    let cas = h.cas;
    match h.opcode {
        GET | GETQ | GETK | GETKQ => Command::Get { key },
        GAT | GATQ | GATK | GATKQ => Command::GetAndTouch {
            key,
            exptime: be_u32(extras, 0),
        },
        TOUCH => Command::Touch {
            key,
            exptime: be_u32(extras, 0),
        },
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ => Command::Store {
            mode: match h.opcode {
                SET | SETQ => StoreMode::Set,
                ADD | ADDQ => StoreMode::Add,
                _ => StoreMode::Replace,
            },
            key,
            value,
            flags: be_u32(extras, 0),
            exptime: be_u32(extras, 4),
            cas,
        },
        APPEND | APPENDQ | PREPEND | PREPENDQ => Command::Concat {
            append: matches!(h.opcode, APPEND | APPENDQ),
            key,
            value,
            cas,
        },
        DELETE | DELETEQ => Command::Delete { key, cas },
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ => Command::Arith {
            incr: matches!(h.opcode, INCREMENT | INCREMENTQ),
            key,
            delta: be_u64(extras, 0),
            initial: be_u64(extras, 8),
            exptime: be_u32(extras, 16),
            cas,
        },
        FLUSH | FLUSHQ => Command::Flush {
            delay: if extras.is_empty() {
                0
            } else {
                be_u32(extras, 0)
            },
        },
        VERBOSITY => Command::Verbosity {
            level: be_u32(extras, 0),
        },
        STAT => Command::Stat { group: key },
        QUIT | QUITQ => Command::Quit,
        VERSION => Command::Version,
        // Only NOOP is left: validation refused every other opcode.
        _ => Command::Noop,
    }
}

/// Decodes one request from the front of `buf`.
///
/// `Err` means the stream cannot be framed (close without a reply);
/// `Rejected` means this one request is refused, decided from its header
/// alone: answer, then either close ([`RequestError::closes_connection`]) or
/// discard `skip` bytes and go on.
pub fn decode_request<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Decoded<Request<'a>, RequestError>, FrameError> {
    match buf.first() {
        Some(&m) if m != REQUEST_MAGIC => return Err(FrameError::BadMagic(m)),
        _ => {}
    }
    let Some(h) = Header::parse(buf) else {
        return Ok(Decoded::Incomplete { needed: HEADER_LEN });
    };
    let rejected = |error| {
        Ok(Decoded::Rejected {
            error,
            skip: h.frame_len(),
        })
    };
    if let Err(error) = validate(&h, limits) {
        return rejected(error);
    }
    // Validation bounded the body by the limits, so this fits a usize unless
    // the limits themselves are near usize::MAX on a 32-bit target.
    let Ok(total) = usize::try_from(h.frame_len()) else {
        return rejected(RequestError {
            opcode: h.opcode,
            opaque: h.opaque,
            status: status::E2BIG,
            kind: ErrorKind::TooLarge,
        });
    };
    if buf.len() < total {
        return Ok(Decoded::Incomplete { needed: total });
    }
    let extras_end = HEADER_LEN + usize::from(h.extras_len);
    let key_end = extras_end + usize::from(h.key_len);
    let extras = &buf[HEADER_LEN..extras_end];
    let key = &buf[extras_end..key_end];
    let value = &buf[key_end..total];
    Ok(Decoded::Complete {
        frame: Request {
            opcode: h.opcode,
            opaque: h.opaque,
            cmd: command(&h, extras, key, value),
        },
        consumed: total,
    })
}

/// A request the wire format cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The key does not fit the 16-bit length field.
    KeyTooLong(usize),
    /// Extras, key and value do not fit the 32-bit body length field.
    BodyTooLarge(usize),
    /// The opcode is not one of the command's (GET with a
    /// [`Command::Store`], ...), so no frame decodes to this request.
    OpcodeMismatch(u8),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::KeyTooLong(len) => {
                write!(f, "key of {len} bytes does not fit a 16-bit length")
            }
            EncodeError::BodyTooLarge(len) => {
                write!(f, "body of {len} bytes does not fit a 32-bit length")
            }
            EncodeError::OpcodeMismatch(op) => {
                write!(f, "opcode 0x{op:02x} does not carry this command")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

/// Extras being built for an encoded request: at most 20 bytes (INCREMENT).
#[derive(Debug, Default)]
struct Extras {
    buf: [u8; ARITH_EXTRAS as usize],
    len: usize,
}

impl Extras {
    fn put(mut self, bytes: &[u8]) -> Self {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        self
    }

    fn u32(self, v: u32) -> Self {
        self.put(&v.to_be_bytes())
    }

    fn u64(self, v: u64) -> Self {
        self.put(&v.to_be_bytes())
    }

    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A request's body and header cas, or `None` where its opcode does not
/// carry its command.
fn layout<'a>(req: &Request<'a>) -> Option<(Extras, &'a [u8], &'a [u8], u64)> {
    use opcode::*;
    let none = Extras::default();
    let op = req.opcode;
    let (ok, parts) = match req.cmd {
        Command::Get { key } => (
            matches!(op, GET | GETQ | GETK | GETKQ),
            (none, key, &[][..], 0),
        ),
        Command::GetAndTouch { key, exptime } => (
            matches!(op, GAT | GATQ | GATK | GATKQ),
            (none.u32(exptime), key, &[][..], 0),
        ),
        Command::Touch { key, exptime } => (op == TOUCH, (none.u32(exptime), key, &[][..], 0)),
        Command::Store {
            mode,
            key,
            value,
            flags,
            exptime,
            cas,
        } => (
            match mode {
                StoreMode::Set => matches!(op, SET | SETQ),
                StoreMode::Add => matches!(op, ADD | ADDQ),
                StoreMode::Replace => matches!(op, REPLACE | REPLACEQ),
            },
            (none.u32(flags).u32(exptime), key, value, cas),
        ),
        Command::Concat {
            append,
            key,
            value,
            cas,
        } => (
            if append {
                matches!(op, APPEND | APPENDQ)
            } else {
                matches!(op, PREPEND | PREPENDQ)
            },
            (none, key, value, cas),
        ),
        Command::Delete { key, cas } => (matches!(op, DELETE | DELETEQ), (none, key, &[][..], cas)),
        Command::Arith {
            incr,
            key,
            delta,
            initial,
            exptime,
            cas,
        } => (
            if incr {
                matches!(op, INCREMENT | INCREMENTQ)
            } else {
                matches!(op, DECREMENT | DECREMENTQ)
            },
            (none.u64(delta).u64(initial).u32(exptime), key, &[][..], cas),
        ),
        Command::Flush { delay } => (
            matches!(op, FLUSH | FLUSHQ),
            (
                if delay == 0 { none } else { none.u32(delay) },
                &[][..],
                &[][..],
                0,
            ),
        ),
        Command::Noop => (op == NOOP, (none, &[][..], &[][..], 0)),
        Command::Version => (op == VERSION, (none, &[][..], &[][..], 0)),
        Command::Quit => (matches!(op, QUIT | QUITQ), (none, &[][..], &[][..], 0)),
        Command::Verbosity { level } => (op == VERBOSITY, (none.u32(level), &[][..], &[][..], 0)),
        Command::Stat { group } => (op == STAT, (none, group, &[][..], 0)),
    };
    ok.then_some(parts)
}

/// Appends a request frame to `out`: the inverse of [`decode_request`]
/// (data type and vbucket id 0). On error nothing is written, so a stream
/// never carries a frame whose body disagrees with its header.
///
/// Lengths are checked only against the wire's fields, not against any
/// server's limits: a key of 300 bytes encodes, and a server refuses it.
pub fn encode_request(req: &Request<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let (extras, key, value, cas) = layout(req).ok_or(EncodeError::OpcodeMismatch(req.opcode))?;
    let key_len = u16::try_from(key.len()).map_err(|_| EncodeError::KeyTooLong(key.len()))?;
    let body = extras.len + key.len() + value.len();
    let body_len = u32::try_from(body).map_err(|_| EncodeError::BodyTooLarge(body))?;
    Header {
        magic: REQUEST_MAGIC,
        opcode: req.opcode,
        key_len,
        extras_len: extras.len as u8,
        data_type: 0,
        vbucket_or_status: 0,
        body_len,
        opaque: req.opaque,
        cas,
    }
    .write(out);
    out.extend_from_slice(extras.as_slice());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    Ok(())
}

/// A response, borrowing its parts from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The request's opcode.
    pub opcode: u8,
    /// See [`status`].
    pub status: u16,
    /// The request's opaque.
    pub opaque: u32,
    /// The item's cas after the command (0 where none).
    pub cas: u64,
    /// GET hits: the flags (4 bytes); otherwise empty.
    pub extras: &'a [u8],
    /// GETK hits and misses, STAT entries; otherwise empty.
    pub key: &'a [u8],
    /// The value, counter (8 bytes), version text, stat value or error text.
    pub value: &'a [u8],
}

/// Appends a response frame to `out` (data type 0).
///
/// The caller guarantees the sizes fit: a key under 64 KiB, extras under
/// 256 bytes and a body under 4 GiB (a server's keys and values are bounded
/// by its limits, which stay below these).
pub fn encode_response(resp: &Response<'_>, out: &mut Vec<u8>) {
    let body = resp.extras.len() + resp.key.len() + resp.value.len();
    debug_assert!(resp.extras.len() <= usize::from(u8::MAX));
    debug_assert!(resp.key.len() <= usize::from(u16::MAX));
    debug_assert!(u32::try_from(body).is_ok());
    out.reserve(HEADER_LEN + body);
    Header {
        magic: RESPONSE_MAGIC,
        opcode: resp.opcode,
        key_len: u16::try_from(resp.key.len()).unwrap_or(u16::MAX),
        extras_len: u8::try_from(resp.extras.len()).unwrap_or(u8::MAX),
        data_type: 0,
        vbucket_or_status: resp.status,
        body_len: u32::try_from(body).unwrap_or(u32::MAX),
        opaque: resp.opaque,
        cas: resp.cas,
    }
    .write(out);
    out.extend_from_slice(resp.extras);
    out.extend_from_slice(resp.key);
    out.extend_from_slice(resp.value);
}

/// Sets the body length of the response that starts at `out[start]` to
/// everything after its header, for bodies written in place (a header
/// written with `body_len` 0, then extras, key and value appended).
pub fn patch_body_len(out: &mut [u8], start: usize) {
    debug_assert!(out.len() >= start + HEADER_LEN);
    let len = out.len().saturating_sub(start + HEADER_LEN);
    debug_assert!(u32::try_from(len).is_ok());
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    if let Some(field) = out.get_mut(start + 8..start + 12) {
        field.copy_from_slice(&len.to_be_bytes());
    }
}

/// Why a response cannot be decoded: the server broke framing or sent more
/// than the client is willing to hold. The connection cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// The first byte was not [`RESPONSE_MAGIC`].
    BadMagic(u8),
    /// A body over the client's limit.
    TooLarge {
        /// Claimed body length.
        len: u64,
        /// The client's limit.
        max: usize,
    },
    /// Extras plus key are longer than the body.
    Malformed,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::BadMagic(m) => write!(f, "bad magic 0x{m:02x}, expected 0x81"),
            ResponseError::TooLarge { len, max } => {
                write!(f, "response body of {len} bytes is over the limit of {max}")
            }
            ResponseError::Malformed => f.write_str("response extras and key exceed its body"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// Decodes one response from the front of `buf`; a body over
/// `max_body_len` is refused before it is awaited. The data type is ignored.
pub fn decode_response(
    buf: &[u8],
    max_body_len: usize,
) -> Result<Decoded<Response<'_>, Infallible>, ResponseError> {
    match buf.first() {
        Some(&m) if m != RESPONSE_MAGIC => return Err(ResponseError::BadMagic(m)),
        _ => {}
    }
    let Some(h) = Header::parse(buf) else {
        return Ok(Decoded::Incomplete { needed: HEADER_LEN });
    };
    let body_len = u64::from(h.body_len);
    if body_len > u64::try_from(max_body_len).unwrap_or(u64::MAX) {
        return Err(ResponseError::TooLarge {
            len: body_len,
            max: max_body_len,
        });
    }
    if u64::from(h.extras_len) + u64::from(h.key_len) > body_len {
        return Err(ResponseError::Malformed);
    }
    // Fits unless max_body_len is within a header of usize::MAX (32-bit).
    let Ok(total) = usize::try_from(h.frame_len()) else {
        return Err(ResponseError::TooLarge {
            len: body_len,
            max: max_body_len,
        });
    };
    if buf.len() < total {
        return Ok(Decoded::Incomplete { needed: total });
    }
    let extras_end = HEADER_LEN + usize::from(h.extras_len);
    let key_end = extras_end + usize::from(h.key_len);
    Ok(Decoded::Complete {
        frame: Response {
            opcode: h.opcode,
            status: h.vbucket_or_status,
            opaque: h.opaque,
            cas: h.cas,
            extras: &buf[HEADER_LEN..extras_end],
            key: &buf[extras_end..key_end],
            value: &buf[key_end..total],
        },
        consumed: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    fn encode(req: Request<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        encode_request(&req, &mut out).expect("fits");
        out
    }

    /// A request header with the given lengths (body = extras + key +
    /// value), followed by no body.
    fn header(op: u8, extras_len: u8, key_len: u16, value_len: u32) -> Vec<u8> {
        let mut out = Vec::new();
        Header {
            magic: REQUEST_MAGIC,
            opcode: op,
            key_len,
            extras_len,
            data_type: 0,
            vbucket_or_status: 0,
            body_len: u32::from(extras_len) + u32::from(key_len) + value_len,
            opaque: 0x0102_0304,
            cas: 0,
        }
        .write(&mut out);
        out
    }

    fn rejected(buf: &[u8]) -> (RequestError, u64) {
        match decode_request(buf, &limits()) {
            Ok(Decoded::Rejected { error, skip }) => (error, skip),
            other => panic!("not rejected: {other:?}"),
        }
    }

    fn complete(buf: &[u8]) -> Request<'_> {
        match decode_request(buf, &limits()) {
            Ok(Decoded::Complete { frame, consumed }) => {
                assert_eq!(consumed, buf.len());
                frame
            }
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn get_hello_is_the_wiki_example() {
        let req = Request {
            opcode: opcode::GET,
            opaque: 0,
            cmd: Command::Get { key: b"Hello" },
        };
        let bytes = [
            0x80, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x48, 0x65, 0x6c, 0x6c,
            0x6f,
        ];
        assert_eq!(encode(req), bytes);
        assert_eq!(complete(&bytes), req);
    }

    #[test]
    fn add_is_the_wiki_example() {
        let req = Request {
            opcode: opcode::ADD,
            opaque: 0,
            cmd: Command::Store {
                mode: StoreMode::Add,
                key: b"Hello",
                value: b"World",
                flags: 0xdead_beef,
                exptime: 0x0e10,
                cas: 0,
            },
        };
        let mut bytes = vec![0x80, 0x02, 0x00, 0x05, 0x08, 0x00, 0x00, 0x00];
        bytes.extend_from_slice(&[0, 0, 0, 0x12]);
        bytes.extend_from_slice(&[0; 12]);
        bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x0e, 0x10]);
        bytes.extend_from_slice(b"HelloWorld");
        assert_eq!(bytes.len(), 42);
        assert_eq!(encode(req), bytes);
        assert_eq!(complete(&bytes), req);
    }

    #[test]
    fn increment_is_the_wiki_example() {
        let req = Request {
            opcode: opcode::INCREMENT,
            opaque: 0,
            cmd: Command::Arith {
                incr: true,
                key: b"counter",
                delta: 1,
                initial: 0,
                exptime: 0x0e10,
                cas: 0,
            },
        };
        let mut bytes = vec![0x80, 0x05, 0x00, 0x07, 0x14, 0x00, 0x00, 0x00];
        bytes.extend_from_slice(&[0, 0, 0, 0x1b]);
        bytes.extend_from_slice(&[0; 12]);
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&[0x00, 0x00, 0x0e, 0x10]);
        bytes.extend_from_slice(b"counter");
        assert_eq!(bytes.len(), 51);
        assert_eq!(encode(req), bytes);
        assert_eq!(complete(&bytes), req);
    }

    #[test]
    fn flush_delay_is_optional() {
        let mut delayed = vec![0x80, 0x08, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00];
        delayed.extend_from_slice(&[0, 0, 0, 4]);
        delayed.extend_from_slice(&[0; 12]);
        delayed.extend_from_slice(&[0x00, 0x00, 0x0e, 0x10]);
        let req = Request {
            opcode: opcode::FLUSH,
            opaque: 0,
            cmd: Command::Flush { delay: 0x0e10 },
        };
        assert_eq!(encode(req), delayed);
        assert_eq!(complete(&delayed), req);

        // No extras reads as delay 0, and delay 0 encodes without extras.
        let now = header(opcode::FLUSHQ, 0, 0, 0);
        let req = Request {
            opcode: opcode::FLUSHQ,
            opaque: 0x0102_0304,
            cmd: Command::Flush { delay: 0 },
        };
        assert_eq!(complete(&now), req);
        assert_eq!(encode(req), now);
        let mut zero = header(opcode::FLUSHQ, 4, 0, 0);
        zero.extend_from_slice(&[0; 4]);
        assert_eq!(complete(&zero), req);
    }

    #[test]
    fn get_hit_response_is_the_wiki_example() {
        let resp = Response {
            opcode: opcode::GET,
            status: status::NO_ERROR,
            opaque: 0,
            cas: 1,
            extras: &[0xde, 0xad, 0xbe, 0xef],
            key: b"",
            value: b"World",
        };
        let mut bytes = vec![0x81, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00];
        bytes.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        bytes.extend_from_slice(b"World");
        let mut out = Vec::new();
        encode_response(&resp, &mut out);
        assert_eq!(out, bytes);
        assert_eq!(
            decode_response(&bytes, 1024),
            Ok(Decoded::Complete {
                frame: resp,
                consumed: 33
            })
        );
    }

    #[test]
    fn not_found_response_is_the_wiki_example() {
        let mut out = Vec::new();
        encode_response(
            &Response {
                opcode: opcode::GET,
                status: status::KEY_ENOENT,
                opaque: 0,
                cas: 0,
                extras: b"",
                key: b"",
                value: status::text(status::KEY_ENOENT).as_bytes(),
            },
            &mut out,
        );
        let mut bytes = vec![0x81, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
        bytes.extend_from_slice(&[0, 0, 0, 9]);
        bytes.extend_from_slice(&[0; 12]);
        bytes.extend_from_slice(b"Not found");
        assert_eq!(out, bytes);
    }

    #[test]
    fn bodies_written_in_place_are_patched() {
        let mut out = vec![0xAA; 3];
        let start = out.len();
        encode_response(
            &Response {
                opcode: opcode::STAT,
                status: status::NO_ERROR,
                opaque: 7,
                cas: 0,
                extras: b"",
                key: b"pid",
                value: b"",
            },
            &mut out,
        );
        out.extend_from_slice(b"3078");
        patch_body_len(&mut out, start);
        // The key length stays; only the body length grows.
        let Ok(Decoded::Complete { frame, consumed }) = decode_response(&out[start..], 64) else {
            panic!("not a frame");
        };
        assert_eq!(consumed, out.len() - start);
        assert_eq!((frame.key, frame.value), (&b"pid"[..], &b"3078"[..]));
    }

    #[test]
    fn every_prefix_is_incomplete_and_needed_is_exact() {
        let bytes = encode(Request {
            opcode: opcode::SETQ,
            opaque: 9,
            cmd: Command::Store {
                mode: StoreMode::Set,
                key: b"key",
                value: b"value",
                flags: 3,
                exptime: 0,
                cas: 77,
            },
        });
        for cut in 0..bytes.len() {
            match decode_request(&bytes[..cut], &limits()) {
                Ok(Decoded::Incomplete { needed }) => {
                    assert!(needed > cut);
                    if cut >= HEADER_LEN {
                        assert_eq!(needed, bytes.len());
                    }
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_magic_is_fatal_at_the_first_byte() {
        assert_eq!(
            decode_request(&[0x81], &limits()),
            Err(FrameError::BadMagic(0x81))
        );
        assert_eq!(
            decode_request(b"get foo\r\n", &limits()),
            Err(FrameError::BadMagic(b'g'))
        );
        assert_eq!(
            decode_request(&[], &limits()),
            Ok(Decoded::Incomplete { needed: HEADER_LEN })
        );
        assert_eq!(
            decode_request(&[0x80], &limits()),
            Ok(Decoded::Incomplete { needed: HEADER_LEN })
        );
        assert_eq!(
            decode_response(&[0x80], 64),
            Err(ResponseError::BadMagic(0x80))
        );
    }

    /// Every EINVAL rule of every opcode: (opcodes, extras, key, value).
    #[test]
    fn shapes_that_do_not_fit_the_opcode_are_invalid_and_close() {
        use opcode::*;
        let gets: &[u8] = &[GET, GETQ, GETK, GETKQ];
        let stores: &[u8] = &[SET, SETQ, ADD, ADDQ, REPLACE, REPLACEQ];
        let concats: &[u8] = &[APPEND, APPENDQ, PREPEND, PREPENDQ];
        let deletes: &[u8] = &[DELETE, DELETEQ];
        let ariths: &[u8] = &[INCREMENT, INCREMENTQ, DECREMENT, DECREMENTQ];
        let touches: &[u8] = &[TOUCH, GAT, GATQ, GATK, GATKQ];
        let flushes: &[u8] = &[FLUSH, FLUSHQ];
        let bare: &[u8] = &[NOOP, VERSION, QUIT, QUITQ];
        let cases: &[(&[u8], u8, u16, u32, &str)] = &[
            (gets, 0, 0, 0, "missing key"),
            (gets, 4, 3, 0, "extras"),
            (gets, 0, 3, 2, "value"),
            (stores, 0, 3, 2, "missing extras"),
            (stores, 4, 3, 2, "short extras"),
            (stores, 20, 3, 2, "long extras"),
            (stores, 8, 0, 2, "missing key"),
            (concats, 8, 3, 2, "extras"),
            (concats, 0, 0, 2, "missing key"),
            (deletes, 0, 0, 0, "missing key"),
            (deletes, 4, 3, 0, "extras"),
            (deletes, 0, 3, 1, "value"),
            (ariths, 8, 3, 0, "short extras"),
            (ariths, 0, 3, 0, "missing extras"),
            (ariths, 20, 0, 0, "missing key"),
            (ariths, 20, 3, 8, "value"),
            (touches, 0, 3, 0, "missing extras"),
            (touches, 8, 3, 0, "long extras"),
            (touches, 4, 0, 0, "missing key"),
            (touches, 4, 3, 1, "value"),
            (flushes, 8, 0, 0, "extras other than 0 or 4"),
            (flushes, 0, 3, 0, "key"),
            (flushes, 0, 0, 1, "value"),
            (flushes, 4, 0, 1, "value after delay"),
            (bare, 4, 0, 0, "extras"),
            (bare, 0, 3, 0, "key"),
            (bare, 0, 0, 1, "value"),
            (&[VERBOSITY], 0, 0, 0, "missing extras"),
            (&[VERBOSITY], 4, 3, 0, "key"),
            (&[VERBOSITY], 4, 0, 1, "value"),
            (&[STAT], 4, 0, 0, "extras"),
            (&[STAT], 0, 3, 1, "value"),
            (&[STAT], 0, 0, 1, "value without key"),
        ];
        for &(ops, extras, key, value, why) in cases {
            for &op in ops {
                let bytes = header(op, extras, key, value);
                let (error, skip) = rejected(&bytes);
                assert_eq!(
                    error,
                    RequestError {
                        opcode: op,
                        opaque: 0x0102_0304,
                        status: status::EINVAL,
                        kind: ErrorKind::Malformed,
                    },
                    "opcode 0x{op:02x}: {why}"
                );
                assert_eq!(
                    skip,
                    (HEADER_LEN as u64) + u64::from(extras) + u64::from(key) + u64::from(value)
                );
                assert!(error.closes_connection());
                assert_eq!(error.to_string(), "Invalid arguments");
            }
        }
    }

    #[test]
    fn well_shaped_edge_cases_are_accepted() {
        let mut empty_set = header(opcode::SET, 8, 1, 0);
        empty_set.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, b'k']);
        assert!(matches!(
            complete(&empty_set).cmd,
            Command::Store {
                value: b"",
                flags: 1,
                exptime: 2,
                ..
            }
        ));
        let all_stats = header(opcode::STAT, 0, 0, 0);
        assert_eq!(complete(&all_stats).cmd, Command::Stat { group: b"" });
        let mut items = header(opcode::STAT, 0, 5, 0);
        items.extend_from_slice(b"items");
        assert_eq!(complete(&items).cmd, Command::Stat { group: b"items" });
        let mut verbosity = header(opcode::VERBOSITY, 4, 0, 0);
        verbosity.extend_from_slice(&2u32.to_be_bytes());
        assert_eq!(complete(&verbosity).cmd, Command::Verbosity { level: 2 });
    }

    #[test]
    fn lengths_that_contradict_the_body_are_invalid_and_close() {
        // key_len + extras_len > body_len: EINVAL, then close (memcached
        // 1.6.18 hangs instead; see the module docs).
        let mut bytes = Vec::new();
        Header {
            magic: REQUEST_MAGIC,
            opcode: opcode::SET,
            key_len: 3,
            extras_len: 8,
            data_type: 0,
            vbucket_or_status: 0,
            body_len: 10,
            opaque: 5,
            cas: 0,
        }
        .write(&mut bytes);
        let (error, skip) = rejected(&bytes);
        assert_eq!(
            (error.status, error.kind, skip),
            (status::EINVAL, ErrorKind::Malformed, 34)
        );
        assert!(error.closes_connection());
        assert_eq!(error.to_string(), "Invalid arguments");
    }

    #[test]
    fn long_keys_are_invalid_for_every_opcode() {
        for op in [opcode::GET, opcode::NOOP, 0x42] {
            let (error, skip) = rejected(&header(op, 0, 251, 0));
            assert_eq!(
                (error.status, error.kind),
                (status::EINVAL, ErrorKind::Malformed)
            );
            assert_eq!(skip, 24 + 251);
        }
        let mut ok = header(opcode::GET, 0, 250, 0);
        ok.extend_from_slice(&[b'k'; 250]);
        assert_eq!(complete(&ok).cmd, Command::Get { key: &[b'k'; 250] });
    }

    #[test]
    fn unknown_opcodes_are_answered_and_skipped() {
        for op in [0x1f, 0x20, 0x21, 0x22, 0x25, 0x80, 0x81, 0xff] {
            let (error, skip) = rejected(&header(op, 2, 3, 100));
            assert_eq!(
                error,
                RequestError {
                    opcode: op,
                    opaque: 0x0102_0304,
                    status: status::UNKNOWN_COMMAND,
                    kind: ErrorKind::UnknownCommand,
                }
            );
            assert_eq!(skip, 24 + 105);
            assert!(!error.closes_connection());
            assert_eq!(error.to_string(), "Unknown command");
        }
    }

    #[test]
    fn huge_claims_are_refused_from_the_header_alone() {
        let limits = limits();
        let mut h = Header {
            magic: REQUEST_MAGIC,
            opcode: opcode::SET,
            key_len: 5,
            extras_len: 8,
            data_type: 0,
            vbucket_or_status: 0,
            body_len: u32::MAX,
            opaque: 1,
            cas: 0,
        };
        let mut bytes = Vec::new();
        h.write(&mut bytes);
        let (error, skip) = rejected(&bytes);
        assert_eq!(
            (error.status, error.kind),
            (status::E2BIG, ErrorKind::TooLarge)
        );
        assert_eq!(skip, 24 + u64::from(u32::MAX));
        assert!(!error.closes_connection());
        assert_eq!(error.to_string(), "Too large.");

        // One byte over the limit, and exactly at it.
        h.body_len = 8 + 5 + limits.max_value_len as u32 + 1;
        bytes.clear();
        h.write(&mut bytes);
        assert_eq!(rejected(&bytes).0.kind, ErrorKind::TooLarge);
        h.body_len -= 1;
        bytes.clear();
        h.write(&mut bytes);
        assert_eq!(
            decode_request(&bytes, &limits),
            Ok(Decoded::Incomplete {
                needed: 24 + 13 + limits.max_value_len
            })
        );

        // A GET claiming 4 GiB has a value where none is allowed.
        h.opcode = opcode::GET;
        h.extras_len = 0;
        h.body_len = u32::MAX;
        bytes.clear();
        h.write(&mut bytes);
        assert_eq!(rejected(&bytes).0.status, status::EINVAL);
    }

    #[test]
    fn ignored_header_fields_do_not_change_the_request() {
        let plain = encode(Request {
            opcode: opcode::GETK,
            opaque: 3,
            cmd: Command::Get { key: b"k" },
        });
        let mut noisy = plain.clone();
        noisy[5] = 0x01; // data type
        noisy[6..8].copy_from_slice(&[0x12, 0x34]); // vbucket
        noisy[16..24].copy_from_slice(&9u64.to_be_bytes()); // cas
        assert_eq!(complete(&noisy), complete(&plain));
    }

    #[test]
    fn cas_travels_in_the_header() {
        let bytes = encode(Request {
            opcode: opcode::DELETEQ,
            opaque: 0,
            cmd: Command::Delete {
                key: b"k",
                cas: 0x0102_0304_0506_0708,
            },
        });
        assert_eq!(&bytes[16..24], &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn quiet_and_key_returning_forms() {
        let req = |opcode| Request {
            opcode,
            opaque: 0,
            cmd: Command::Noop,
        };
        let quiet: Vec<u8> = (0..=u8::MAX).filter(|&op| req(op).is_quiet()).collect();
        assert_eq!(
            quiet,
            [
                0x09, 0x0d, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1e, 0x24
            ]
        );
        let keyed: Vec<u8> = (0..=u8::MAX).filter(|&op| req(op).returns_key()).collect();
        assert_eq!(keyed, [0x0c, 0x0d, 0x23, 0x24]);
    }

    #[test]
    fn unencodable_requests_write_nothing() {
        let mut out = Vec::new();
        let key = vec![b'k'; 70_000];
        let long = Request {
            opcode: opcode::GET,
            opaque: 0,
            cmd: Command::Get { key: &key },
        };
        assert_eq!(
            encode_request(&long, &mut out),
            Err(EncodeError::KeyTooLong(70_000))
        );
        let mismatched = Request {
            opcode: opcode::GET,
            opaque: 0,
            cmd: Command::Delete { key: b"k", cas: 0 },
        };
        assert_eq!(
            encode_request(&mismatched, &mut out),
            Err(EncodeError::OpcodeMismatch(opcode::GET))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn response_decoder_refuses_what_it_cannot_hold() {
        let mut h = Header {
            magic: RESPONSE_MAGIC,
            opcode: opcode::GET,
            key_len: 0,
            extras_len: 4,
            data_type: 0,
            vbucket_or_status: 0,
            body_len: 65,
            opaque: 0,
            cas: 0,
        };
        let mut bytes = Vec::new();
        h.write(&mut bytes);
        assert_eq!(
            decode_response(&bytes, 64),
            Err(ResponseError::TooLarge { len: 65, max: 64 })
        );
        h.body_len = 3;
        bytes.clear();
        h.write(&mut bytes);
        assert_eq!(decode_response(&bytes, 64), Err(ResponseError::Malformed));
    }

    #[test]
    fn status_texts_are_memcacheds() {
        assert_eq!(status::text(status::EINVAL), "Invalid arguments");
        assert_eq!(status::text(status::UNKNOWN_COMMAND), "Unknown command");
        assert_eq!(status::text(status::E2BIG), "Too large.");
        assert_eq!(status::text(status::KEY_ENOENT), "Not found");
        assert_eq!(status::text(status::KEY_EEXISTS), "Data exists for key.");
        assert_eq!(status::text(status::NOT_STORED), "Not stored.");
        assert_eq!(
            status::text(status::DELTA_BADVAL),
            "Non-numeric server-side value for incr or decr"
        );
        assert_eq!(status::text(status::ENOMEM), "Out of memory");
    }
}
