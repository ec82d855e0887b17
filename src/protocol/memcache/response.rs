//! Responses: [`encode_response`] for the server, [`decode_response`] for
//! clients, and [`patch_body_len`] for replies whose body is written in
//! place after their header.
//!
//! Must not: decide which status or parts a reply carries (the server's
//! memcache adapter does), or allocate on decode.

use std::convert::Infallible;
use std::fmt;

use super::{Decoded, HEADER_LEN, Header, RESPONSE_MAGIC};

/// A response, borrowing its parts from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The request's opcode.
    pub opcode: u8,
    /// See [`status`](super::status).
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
    use crate::protocol::memcache::{opcode, status};

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
    fn bad_magic_is_fatal_at_the_first_byte() {
        assert_eq!(
            decode_response(&[0x80], 64),
            Err(ResponseError::BadMagic(0x80))
        );
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
}
