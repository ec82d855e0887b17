//! Request encoding, the client's side: [`encode_request`] writes the frame
//! that [`decode_request`](super::decode_request) reads back as the same
//! request (where it can differ from bytes once decoded is in the parent
//! module's docs).
//!
//! Must not: write part of a frame, or check a server's limits (a server
//! refuses what it will not take; the encoder only refuses what the wire
//! cannot carry).

use std::fmt;

use super::opcode::{self, ARITH_EXTRAS};
use super::{Command, Header, REQUEST_MAGIC, Request, StoreMode};

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

/// Appends a request frame to `out`: the inverse of
/// [`decode_request`](super::decode_request) (data type and vbucket id 0).
/// On error nothing is written, so a stream never carries a frame whose body
/// disagrees with its header.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::memcache::testing::{complete, encode, header};

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
}
