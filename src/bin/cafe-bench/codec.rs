//! Requests encoded and responses decoded, one protocol per run: a GET or
//! a SET in, what the reply said out.
//!
//! Must not: allocate per request (requests are appended to the
//! connection's buffer, hit values are borrowed from its input), touch a
//! socket, or count anything.

use cafe::protocol::Decoded;
use cafe::protocol::memcache::{self, StoreMode, opcode};
use cafe::protocol::native;

use crate::args::Protocol;

/// Largest response accepted (a GET of the largest value, with room).
pub const MAX_RESPONSE: usize = 64 << 20;

/// Encodes requests and decodes responses of one protocol.
#[derive(Debug, Clone, Copy)]
pub struct Codec(pub Protocol);

/// What one response said.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The value, borrowed from the input buffer.
    Hit(&'a [u8]),
    Miss,
    Stored,
    Error,
}

impl Codec {
    pub fn get(self, key: &[u8], out: &mut Vec<u8>) {
        let ok = match self.0 {
            Protocol::Native => native::encode_request(&native::Request::Get { key }, out).is_ok(),
            Protocol::Memcache => memcache::encode_request(
                &memcache::Request {
                    opcode: opcode::GET,
                    opaque: 0,
                    cmd: memcache::Command::Get { key },
                },
                out,
            )
            .is_ok(),
        };
        debug_assert!(ok, "keys and values are sized by the workload");
    }

    pub fn set(self, key: &[u8], value: &[u8], out: &mut Vec<u8>) {
        let ok = match self.0 {
            Protocol::Native => native::encode_request(
                &native::Request::Set {
                    key,
                    value,
                    flags: 0,
                    ttl: None,
                },
                out,
            )
            .is_ok(),
            Protocol::Memcache => memcache::encode_request(
                &memcache::Request {
                    opcode: opcode::SET,
                    opaque: 0,
                    cmd: memcache::Command::Store {
                        mode: StoreMode::Set,
                        key,
                        value,
                        flags: 0,
                        exptime: 0,
                        cas: 0,
                    },
                },
                out,
            )
            .is_ok(),
        };
        debug_assert!(ok, "keys and values are sized by the workload");
    }

    /// The next response in `buf`: `Ok(None)` if incomplete, `Err` if the
    /// stream is broken.
    pub fn decode(self, buf: &[u8], get: bool) -> Result<Option<(Answer<'_>, usize)>, String> {
        match self.0 {
            Protocol::Native => match native::decode_response(buf, MAX_RESPONSE) {
                Ok(Decoded::Complete { frame, consumed }) => {
                    let answer = match (frame.status, get) {
                        (native::Status::Ok, true) => Answer::Hit(frame.value),
                        (native::Status::NotFound, true) => Answer::Miss,
                        (native::Status::Ok, false) => Answer::Stored,
                        _ => Answer::Error,
                    };
                    Ok(Some((answer, consumed)))
                }
                Ok(Decoded::Incomplete { .. }) => Ok(None),
                Ok(Decoded::Rejected { error, .. }) => match error {},
                Err(e) => Err(e.to_string()),
            },
            Protocol::Memcache => match memcache::decode_response(buf, MAX_RESPONSE) {
                Ok(Decoded::Complete { frame, consumed }) => {
                    let answer = match (frame.status, get) {
                        (memcache::status::NO_ERROR, true) => Answer::Hit(frame.value),
                        (memcache::status::KEY_ENOENT, true) => Answer::Miss,
                        (memcache::status::NO_ERROR, false) => Answer::Stored,
                        _ => Answer::Error,
                    };
                    Ok(Some((answer, consumed)))
                }
                Ok(Decoded::Incomplete { .. }) => Ok(None),
                Ok(Decoded::Rejected { error, .. }) => match error {},
                Err(e) => Err(e.to_string()),
            },
        }
    }
}
