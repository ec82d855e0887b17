//! Helpers shared by the unit tests of the codec's files: building request
//! frames and decoding them with the default limits.
//!
//! Must not: hide a test's checks; a helper asserts only what it needs to
//! hand back a frame.

use super::{Decoded, Header, Limits, REQUEST_MAGIC, Request, decode_request, encode_request};

pub(super) fn limits() -> Limits {
    Limits::default()
}

pub(super) fn encode(req: Request<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(&req, &mut out).expect("fits");
    out
}

/// A request header with the given lengths (body = extras + key +
/// value), followed by no body.
pub(super) fn header(op: u8, extras_len: u8, key_len: u16, value_len: u32) -> Vec<u8> {
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

pub(super) fn complete(buf: &[u8]) -> Request<'_> {
    match decode_request(buf, &limits()) {
        Ok(Decoded::Complete { frame, consumed }) => {
            assert_eq!(consumed, buf.len());
            frame
        }
        other => panic!("not complete: {other:?}"),
    }
}
