//! What a request is ([`Request`], [`Command`]) and how one is decoded from
//! the front of a buffer, with the two ways a request can fail: a stream
//! that cannot be framed ([`FrameError`]) and a frame that is refused
//! ([`RequestError`]).
//!
//! Must not: allocate (a request borrows its key and value from the input),
//! wait for the body of a refused request, or decide what a refusal looks
//! like beyond its status and kind.

use std::fmt;

use super::validate::validate;
use super::{
    Decoded, HEADER_LEN, Header, Limits, REQUEST_MAGIC, is_quiet, opcode, returns_key, status,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::memcache::testing::{complete, encode, header, limits};

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
}
