//! The native 0xCAFE protocol, version 1: a pure, incremental codec.
//!
//! This module owns the byte layout (see `docs/PROTOCOL.md`) and nothing
//! else: it never touches a socket, never allocates on decode (frames borrow
//! from the input) and treats "need more bytes" as a normal answer, not an
//! error.
//!
//! Every frame is a 12-byte header in network byte order followed by the key
//! and the value:
//!
//! ```text
//! 0      2     3      4      6        8            12
//! +------+-----+------+------+--------+------------+---------+-----------+
//! |magic |ver  |opcode|flags |key_len | value_len  |   key   |   value   |
//! |0xCAFE|0x01 |  u8  | u16  |  u16   |    u32     |         |           |
//! +------+-----+------+------+--------+------------+---------+-----------+
//! ```
//!
//! Requests are validated as soon as their header is complete, so a request
//! that will be refused (unknown opcode, key or value over the limit, …) is
//! answered before its body arrives and the body can be skipped as it streams
//! in: the peer's length claims never decide what we allocate.

use std::convert::Infallible;
use std::fmt;
use std::io::Write as _;

pub use super::Decoded;

/// First two bytes of every frame; a cheap check that both ends speak this
/// protocol and that framing has not slipped.
pub const MAGIC: u16 = 0xCAFE;
/// The only version this codec speaks. A peer that sends another version
/// cannot be framed (a later version may lay the body out differently).
pub const VERSION: u8 = 1;
/// The first byte of every frame: enough to tell this protocol from others
/// on a fresh connection.
pub const MAGIC_FIRST_BYTE: u8 = (MAGIC >> 8) as u8;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 12;
/// Bytes of TTL that lead the value of a SET_TTL request.
pub const TTL_LEN: usize = 4;

/// Opcode values on the wire.
pub mod opcode {
    /// Look a key up.
    pub const GET: u8 = 1;
    /// Store a value (no expiry).
    pub const SET: u8 = 2;
    /// Remove a key.
    pub const DELETE: u8 = 3;
    /// Store a value that expires; the value starts with a u32 TTL in seconds.
    pub const SET_TTL: u8 = 4;
    /// Do nothing and answer RESP_OK: a pipeline fence.
    pub const NOOP: u8 = 5;
    /// Answer server-wide counters as `name value\n` lines.
    pub const STATS: u8 = 6;
    /// Success; carries the value of a GET hit.
    pub const RESP_OK: u8 = 128;
    /// Failure; the value is a human-readable reason.
    pub const RESP_ERR: u8 = 129;
    /// GET or DELETE of a key that does not exist.
    pub const RESP_NOT_FOUND: u8 = 130;
}

pub use crate::limits::Limits;

/// The 12-byte header, decoded but not yet interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Should be [`MAGIC`].
    pub magic: u16,
    /// Should be [`VERSION`].
    pub version: u8,
    /// See [`opcode`].
    pub opcode: u8,
    /// Request: the payload flags of a SET; responses: the stored flags.
    pub flags: u16,
    /// Bytes of key after the header.
    pub key_len: u16,
    /// Bytes of value after the key.
    pub value_len: u32,
}

impl Header {
    /// Reads a header from the first [`HEADER_LEN`] bytes, if present.
    pub fn parse(buf: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            magic: u16::from_be_bytes([h[0], h[1]]),
            version: h[2],
            opcode: h[3],
            flags: u16::from_be_bytes([h[4], h[5]]),
            key_len: u16::from_be_bytes([h[6], h[7]]),
            value_len: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        })
    }

    /// The header's wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..2].copy_from_slice(&self.magic.to_be_bytes());
        h[2] = self.version;
        h[3] = self.opcode;
        h[4..6].copy_from_slice(&self.flags.to_be_bytes());
        h[6..8].copy_from_slice(&self.key_len.to_be_bytes());
        h[8..12].copy_from_slice(&self.value_len.to_be_bytes());
        h
    }

    /// Appends the header to `out`: built on the stack and copied once,
    /// as one capacity check instead of one per field (this runs for
    /// every reply).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// Header plus body, as a u64 so a hostile `value_len` cannot overflow.
    pub fn frame_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.key_len) + u64::from(self.value_len)
    }

    fn check_framing(&self) -> Result<(), FrameError> {
        if self.magic != MAGIC {
            return Err(FrameError::BadMagic(self.magic));
        }
        if self.version != VERSION {
            return Err(FrameError::UnsupportedVersion(self.version));
        }
        Ok(())
    }
}

/// The stream cannot be framed any further: the connection must answer once
/// and close, because nothing after this point can be trusted to be a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The first two bytes were not 0xCAFE.
    BadMagic(u16),
    /// A version this codec does not speak.
    UnsupportedVersion(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadMagic(m) => write!(f, "bad magic 0x{m:04x}, expected 0xcafe"),
            FrameError::UnsupportedVersion(v) => {
                write!(f, "unsupported protocol version {v}, this server speaks 1")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// A well-framed request that will not be executed. The connection answers
/// RESP_ERR, skips the frame's body and carries on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// An opcode this version does not define (or a response opcode).
    UnknownOpcode(u8),
    /// A keyed request with `key_len = 0`.
    EmptyKey,
    /// NOOP or STATS with a key.
    UnexpectedKey,
    /// GET, DELETE, NOOP or STATS with `value_len != 0`.
    UnexpectedValue,
    /// Non-zero flags on a request other than SET or SET_TTL; reserved so a
    /// later version can give them meaning without old servers ignoring them.
    UnexpectedFlags,
    /// A key longer than the server's limit.
    KeyTooLong {
        /// Claimed key length.
        len: usize,
        /// The server's limit.
        max: usize,
    },
    /// A value larger than the server's limit.
    ValueTooLarge {
        /// Claimed value length.
        len: u64,
        /// The server's limit.
        max: usize,
    },
    /// A SET_TTL whose value is too short to hold the TTL.
    MissingTtl,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            RequestError::EmptyKey => f.write_str("empty key"),
            RequestError::UnexpectedKey => f.write_str("this opcode takes no key"),
            RequestError::UnexpectedValue => f.write_str("this opcode takes no value"),
            RequestError::UnexpectedFlags => f.write_str("flags must be 0 for this opcode"),
            RequestError::KeyTooLong { len, max } => {
                write!(f, "key of {len} bytes is over the limit of {max}")
            }
            RequestError::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes is over the limit of {max}")
            }
            RequestError::MissingTtl => f.write_str("SET_TTL value must start with a 4-byte TTL"),
        }
    }
}

impl std::error::Error for RequestError {}

/// A request, borrowing its key and value from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// GET key.
    Get {
        /// The key.
        key: &'a [u8],
    },
    /// SET key value, with payload flags and an optional TTL (SET_TTL on the
    /// wire when `ttl` is `Some`).
    Set {
        /// The key.
        key: &'a [u8],
        /// The value, without the TTL prefix.
        value: &'a [u8],
        /// Payload flags, returned unchanged by GET.
        flags: u16,
        /// Seconds to live; `None` is a plain SET, `Some(0)` never expires.
        ttl: Option<u32>,
    },
    /// DELETE key.
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// A pipeline fence: answered RESP_OK after every earlier request.
    Noop,
    /// Server-wide counters.
    Stats,
}

/// Refuses a stream that is not ours from its first two or three bytes,
/// without waiting for a header that may never come.
fn check_prefix(buf: &[u8]) -> Result<(), FrameError> {
    if let [a, b, ..] = *buf {
        let magic = u16::from_be_bytes([a, b]);
        if magic != MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
    }
    match buf.get(2) {
        Some(&v) if v != VERSION => Err(FrameError::UnsupportedVersion(v)),
        _ => Ok(()),
    }
}

fn validate_request(h: &Header, limits: &Limits) -> Result<(), RequestError> {
    let key_len = usize::from(h.key_len);
    let value_len = u64::from(h.value_len);
    let keyed = matches!(
        h.opcode,
        opcode::GET | opcode::SET | opcode::DELETE | opcode::SET_TTL
    );
    let storing = matches!(h.opcode, opcode::SET | opcode::SET_TTL);
    match h.opcode {
        opcode::GET
        | opcode::SET
        | opcode::DELETE
        | opcode::SET_TTL
        | opcode::NOOP
        | opcode::STATS => {}
        other => return Err(RequestError::UnknownOpcode(other)),
    }
    if keyed {
        if key_len == 0 {
            return Err(RequestError::EmptyKey);
        }
        if key_len > limits.max_key_len {
            return Err(RequestError::KeyTooLong {
                len: key_len,
                max: limits.max_key_len,
            });
        }
    } else if key_len != 0 {
        return Err(RequestError::UnexpectedKey);
    }
    if !storing {
        if value_len != 0 {
            return Err(RequestError::UnexpectedValue);
        }
        if h.flags != 0 {
            return Err(RequestError::UnexpectedFlags);
        }
        return Ok(());
    }
    let data_len = if h.opcode == opcode::SET_TTL {
        value_len
            .checked_sub(TTL_LEN as u64)
            .ok_or(RequestError::MissingTtl)?
    } else {
        value_len
    };
    if data_len > limits.max_value_len as u64 {
        return Err(RequestError::ValueTooLarge {
            len: data_len,
            max: limits.max_value_len,
        });
    }
    Ok(())
}

/// Decodes one request from the front of `buf`.
///
/// `Err` means the stream cannot be framed (answer and close); `Rejected`
/// means this one request is refused (answer, skip, continue).
pub fn decode_request<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Decoded<Request<'a>, RequestError>, FrameError> {
    let Some(h) = Header::parse(buf) else {
        check_prefix(buf)?;
        return Ok(Decoded::Incomplete { needed: HEADER_LEN });
    };
    h.check_framing()?;
    if let Err(error) = validate_request(&h, limits) {
        return Ok(Decoded::Rejected {
            error,
            skip: h.frame_len(),
        });
    }
    // Validation bounded key and value by the limits, so this fits a usize.
    let total = h.frame_len() as usize;
    if buf.len() < total {
        return Ok(Decoded::Incomplete { needed: total });
    }
    let key_end = HEADER_LEN + usize::from(h.key_len);
    let key = &buf[HEADER_LEN..key_end];
    let value = &buf[key_end..total];
    let frame = match h.opcode {
        opcode::GET => Request::Get { key },
        opcode::DELETE => Request::Delete { key },
        opcode::SET => Request::Set {
            key,
            value,
            flags: h.flags,
            ttl: None,
        },
        opcode::SET_TTL => {
            let (ttl, value) = value.split_at(TTL_LEN);
            Request::Set {
                key,
                value,
                flags: h.flags,
                ttl: Some(u32::from_be_bytes([ttl[0], ttl[1], ttl[2], ttl[3]])),
            }
        }
        opcode::NOOP => Request::Noop,
        _ => Request::Stats,
    };
    Ok(Decoded::Complete {
        frame,
        consumed: total,
    })
}

fn header(opcode: u8, flags: u16, key_len: u16, value_len: u32) -> Header {
    Header {
        magic: MAGIC,
        version: VERSION,
        opcode,
        flags,
        key_len,
        value_len,
    }
}

/// A request the wire format cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The key does not fit the 16-bit length field.
    KeyTooLong(usize),
    /// The value (with its TTL prefix) does not fit the 32-bit length field.
    ValueTooLarge(usize),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::KeyTooLong(len) => {
                write!(f, "key of {len} bytes does not fit a 16-bit length")
            }
            EncodeError::ValueTooLarge(len) => {
                write!(f, "value of {len} bytes does not fit a 32-bit length")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

/// Appends a request frame to `out`. On error nothing is written, so a
/// stream never carries a frame whose body disagrees with its header.
pub fn encode_request(req: &Request<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let (op, flags, key, prefix, value): (u8, u16, &[u8], Option<u32>, &[u8]) = match *req {
        Request::Get { key } => (opcode::GET, 0, key, None, b""),
        Request::Delete { key } => (opcode::DELETE, 0, key, None, b""),
        Request::Set {
            key,
            value,
            flags,
            ttl: None,
        } => (opcode::SET, flags, key, None, value),
        Request::Set {
            key,
            value,
            flags,
            ttl: Some(ttl),
        } => (opcode::SET_TTL, flags, key, Some(ttl), value),
        Request::Noop => (opcode::NOOP, 0, b"", None, b""),
        Request::Stats => (opcode::STATS, 0, b"", None, b""),
    };
    let prefix_len = if prefix.is_some() { TTL_LEN } else { 0 };
    let key_len = u16::try_from(key.len()).map_err(|_| EncodeError::KeyTooLong(key.len()))?;
    let value_len = value
        .len()
        .checked_add(prefix_len)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(EncodeError::ValueTooLarge(value.len()))?;
    header(op, flags, key_len, value_len).write(out);
    out.extend_from_slice(key);
    if let Some(ttl) = prefix {
        out.extend_from_slice(&ttl.to_be_bytes());
    }
    out.extend_from_slice(value);
    Ok(())
}

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// RESP_OK.
    Ok,
    /// RESP_ERR: the value is the reason.
    Err,
    /// RESP_NOT_FOUND.
    NotFound,
    /// An opcode a v1 client does not know; kept so a client can report it.
    /// Only opcodes outside 128..=130 decode to this.
    Unknown(u8),
}

impl Status {
    /// The opcode that carries this status.
    pub fn opcode(self) -> u8 {
        match self {
            Status::Ok => opcode::RESP_OK,
            Status::Err => opcode::RESP_ERR,
            Status::NotFound => opcode::RESP_NOT_FOUND,
            Status::Unknown(op) => op,
        }
    }

    fn from_opcode(op: u8) -> Status {
        match op {
            opcode::RESP_OK => Status::Ok,
            opcode::RESP_ERR => Status::Err,
            opcode::RESP_NOT_FOUND => Status::NotFound,
            other => Status::Unknown(other),
        }
    }
}

/// A response, borrowing its value from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// How the request ended.
    pub status: Status,
    /// Stored flags of a GET hit; 0 otherwise.
    pub flags: u16,
    /// GET hit: the value; RESP_ERR: the reason; STATS: the counters.
    pub value: &'a [u8],
}

/// Why a response cannot be decoded: the server broke framing or sent more
/// than the client is willing to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// Framing is lost.
    Frame(FrameError),
    /// Responses never carry a key.
    UnexpectedKey,
    /// A response value over the client's limit.
    TooLarge {
        /// Claimed length.
        len: u64,
        /// The client's limit.
        max: usize,
    },
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Frame(e) => e.fmt(f),
            ResponseError::UnexpectedKey => f.write_str("response carries a key"),
            ResponseError::TooLarge { len, max } => {
                write!(f, "response of {len} bytes is over the limit of {max}")
            }
        }
    }
}

impl std::error::Error for ResponseError {}

impl From<FrameError> for ResponseError {
    fn from(e: FrameError) -> Self {
        ResponseError::Frame(e)
    }
}

/// Decodes one response from the front of `buf`; a response whose value is
/// over `max_value_len` is refused before its body is awaited.
pub fn decode_response(
    buf: &[u8],
    max_value_len: usize,
) -> Result<Decoded<Response<'_>, Infallible>, ResponseError> {
    let Some(h) = Header::parse(buf) else {
        check_prefix(buf)?;
        return Ok(Decoded::Incomplete { needed: HEADER_LEN });
    };
    h.check_framing()?;
    if h.key_len != 0 {
        return Err(ResponseError::UnexpectedKey);
    }
    if h.value_len as u64 > max_value_len as u64 {
        return Err(ResponseError::TooLarge {
            len: u64::from(h.value_len),
            max: max_value_len,
        });
    }
    let total = h.frame_len() as usize;
    if buf.len() < total {
        return Ok(Decoded::Incomplete { needed: total });
    }
    Ok(Decoded::Complete {
        frame: Response {
            status: Status::from_opcode(h.opcode),
            flags: h.flags,
            value: &buf[HEADER_LEN..total],
        },
        consumed: total,
    })
}

/// Appends a response frame to `out`.
///
/// The caller guarantees the value fits a u32 length: a server's values are
/// bounded by its item-size limit, which the configuration caps below 4 GiB.
pub fn encode_response(resp: &Response<'_>, out: &mut Vec<u8>) {
    debug_assert!(u32::try_from(resp.value.len()).is_ok());
    let value_len = u32::try_from(resp.value.len()).unwrap_or(u32::MAX);
    header(resp.status.opcode(), resp.flags, 0, value_len).write(out);
    out.extend_from_slice(resp.value);
}

/// Appends a RESP_ERR whose value is `reason`, formatted straight into `out`
/// (errors are rare; the formatting cost is paid only on them).
pub fn encode_error(reason: &dyn fmt::Display, out: &mut Vec<u8>) {
    let start = out.len();
    header(opcode::RESP_ERR, 0, 0, 0).write(out);
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{reason}");
    patch_value_len(out, start);
}

/// Sets the value length of the response that starts at `out[start]` to
/// everything after its header, for bodies written in place.
pub fn patch_value_len(out: &mut [u8], start: usize) {
    let len = (out.len() - start - HEADER_LEN) as u32;
    out[start + 8..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn get_request_bytes_are_exact() {
        let mut out = Vec::new();
        encode_request(&Request::Get { key: b"k1" }, &mut out).expect("fits");
        assert_eq!(out, [0xCA, 0xFE, 1, 1, 0, 0, 0, 2, 0, 0, 0, 0, b'k', b'1']);
    }

    #[test]
    fn set_ttl_puts_ttl_before_data() {
        let mut out = Vec::new();
        let req = Request::Set {
            key: b"k",
            value: b"v",
            flags: 0x0102,
            ttl: Some(60),
        };
        encode_request(&req, &mut out).expect("fits");
        assert_eq!(
            out,
            [
                0xCA, 0xFE, 1, 4, 1, 2, 0, 1, 0, 0, 0, 5, b'k', 0, 0, 0, 60, b'v'
            ]
        );
        assert_eq!(
            decode_request(&out, &limits()),
            Ok(Decoded::Complete {
                frame: req,
                consumed: out.len()
            })
        );
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let mut out = Vec::new();
        encode_request(
            &Request::Set {
                key: b"key",
                value: b"value",
                flags: 3,
                ttl: None,
            },
            &mut out,
        )
        .expect("fits");
        for cut in 0..out.len() {
            match decode_request(&out[..cut], &limits()) {
                Ok(Decoded::Incomplete { needed }) => {
                    assert!(needed > cut);
                    if cut >= HEADER_LEN {
                        assert_eq!(needed, out.len());
                    }
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn huge_claims_are_rejected_from_the_header_alone() {
        let mut h = Vec::new();
        header(opcode::SET, 0, 1, u32::MAX).write(&mut h);
        assert_eq!(
            decode_request(&h, &limits()),
            Ok(Decoded::Rejected {
                error: RequestError::ValueTooLarge {
                    len: u64::from(u32::MAX),
                    max: 1 << 20
                },
                skip: HEADER_LEN as u64 + 1 + u64::from(u32::MAX),
            })
        );
    }

    #[test]
    fn bad_magic_and_version_are_fatal_early() {
        assert_eq!(
            decode_request(&[0xCA, 0xFF], &limits()),
            Err(FrameError::BadMagic(0xCAFF))
        );
        assert_eq!(
            decode_request(&[0xCA, 0xFE, 2], &limits()),
            Err(FrameError::UnsupportedVersion(2))
        );
        assert_eq!(
            decode_request(&[0xCA], &limits()),
            Ok(Decoded::Incomplete { needed: HEADER_LEN })
        );
    }

    #[test]
    fn semantic_errors() {
        let cases: &[(u8, u16, usize, usize, RequestError)] = &[
            (9, 0, 1, 0, RequestError::UnknownOpcode(9)),
            (opcode::RESP_OK, 0, 0, 0, RequestError::UnknownOpcode(128)),
            (opcode::GET, 0, 0, 0, RequestError::EmptyKey),
            (opcode::GET, 0, 1, 1, RequestError::UnexpectedValue),
            (opcode::DELETE, 1, 1, 0, RequestError::UnexpectedFlags),
            (opcode::NOOP, 0, 1, 0, RequestError::UnexpectedKey),
            (opcode::SET_TTL, 0, 1, 3, RequestError::MissingTtl),
            (
                opcode::SET,
                0,
                251,
                0,
                RequestError::KeyTooLong { len: 251, max: 250 },
            ),
        ];
        for &(op, flags, key_len, value_len, err) in cases {
            let mut h = Vec::new();
            header(op, flags, key_len as u16, value_len as u32).write(&mut h);
            assert_eq!(
                decode_request(&h, &limits()),
                Ok(Decoded::Rejected {
                    error: err,
                    skip: (HEADER_LEN + key_len + value_len) as u64
                }),
                "opcode {op}"
            );
        }
    }

    #[test]
    fn unencodable_requests_write_nothing() {
        let mut out = Vec::new();
        let key = vec![b'k'; 70_000];
        assert_eq!(
            encode_request(&Request::Get { key: &key }, &mut out),
            Err(EncodeError::KeyTooLong(70_000))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn response_decoder_refuses_foreign_bytes_early() {
        assert_eq!(
            decode_response(&[0x80, 0x01], 1024),
            Err(ResponseError::Frame(FrameError::BadMagic(0x8001)))
        );
    }

    #[test]
    fn error_response_carries_reason() {
        let mut out = Vec::new();
        encode_error(&RequestError::EmptyKey, &mut out);
        let Ok(Decoded::Complete { frame, consumed }) = decode_response(&out, 1024) else {
            panic!("not a frame");
        };
        assert_eq!(consumed, out.len());
        assert_eq!(frame.status, Status::Err);
        assert_eq!(frame.value, b"empty key");
    }
}
