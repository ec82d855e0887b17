//! Why a text or meta request is refused, as memcached words it.
//!
//! Each [`TextError`] is one of memcached's reply lines; [`TextError::reply`]
//! gives it byte for byte (checked against memcached 1.6.18) and
//! [`TextError::noreply`] says whether memcached swallows it because the
//! request ended in `noreply`. [`Fatal`] is a stream that cannot go on.
//!
//! Must not: decide what is refused (that is the decoders'), write replies
//! other than these error lines, or allocate.

use std::fmt;

use super::meta::Key;

/// A request memcached refuses with an error line; the connection carries
/// on after discarding the request's bytes (`skip` of
/// [`Decoded::Rejected`](super::Decoded::Rejected)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError<'a> {
    /// `ERROR`: no such command, or a command with the wrong number of
    /// tokens. Never suppressed: memcached counts tokens before it looks
    /// for `noreply`.
    UnknownCommand,
    /// `ERROR`, for a `cache_memlimit` argument that is not a number: the
    /// one `ERROR` that `noreply` suppresses.
    BadMemlimit {
        /// The line ended in `noreply`.
        noreply: bool,
    },
    /// `CLIENT_ERROR bad command line format`: a key over the limit, a
    /// field that is not a number, a bad length, a bad binary key (`me`).
    BadFormat {
        /// The line ended in `noreply`.
        noreply: bool,
    },
    /// `CLIENT_ERROR bad command line format.  Usage: delete <key>
    /// [noreply]`: `delete` with an argument other than `0` or `noreply`.
    DeleteUsage {
        /// The line ended in `noreply`.
        noreply: bool,
    },
    /// `CLIENT_ERROR invalid exptime argument` (`touch`, `gat`, `gats`,
    /// `flush_all`).
    InvalidExptime {
        /// The line ended in `noreply`.
        noreply: bool,
    },
    /// `CLIENT_ERROR invalid numeric delta argument` (`incr`, `decr`).
    InvalidDelta {
        /// The line ended in `noreply`.
        noreply: bool,
    },
    /// `CLIENT_ERROR bad data chunk`: the data block was not followed by
    /// `\r\n`. memcached has consumed exactly the declared length plus two
    /// bytes and reads the next command right after them.
    BadDataChunk {
        /// A classic store ended in `noreply` (an `ms` error is always
        /// sent).
        noreply: bool,
    },
    /// `SERVER_ERROR object too large for cache`: the value is over
    /// [`Limits::max_value_len`](super::Limits::max_value_len). Decided from
    /// the line alone; the data block is skipped unread.
    TooLarge {
        /// The key the value was meant for.
        key: Key<'a>,
        /// The line ended in `noreply` (`ms` errors are always sent).
        noreply: bool,
        /// memcached removes the key's current item, so that a reader
        /// never gets the value the client just failed to replace: `set`
        /// and every `ms`, not `add`, `replace`, `append`, `prepend`,
        /// `cas`.
        unlink: bool,
    },
    /// `CLIENT_ERROR invalid shutdown mode`: `shutdown` with an argument
    /// other than `graceful`.
    InvalidShutdownMode,
    /// `CLIENT_ERROR options flags are too long`: an `mg` with more than
    /// 17 flags.
    GetFlagsTooLong,
    /// `CLIENT_ERROR options flags too long`: an `ms` with more than 16
    /// flags, or an `md` or `ma` with more than 17.
    FlagsTooLong,
    /// `CLIENT_ERROR bad token in command line format`: a flag's number
    /// (`C`, `E`, `N`, `R`, `T`) is not one.
    BadToken,
    /// `CLIENT_ERROR invalid flag`: a flag memcached does not know.
    InvalidFlag,
    /// `CLIENT_ERROR duplicate flag`: a flag given twice, or one that is
    /// not ASCII.
    DuplicateFlag,
    /// `CLIENT_ERROR invalid or duplicate flag`: what `md` and `ma` answer
    /// for any bad flag.
    InvalidOrDuplicateFlag,
    /// `CLIENT_ERROR error decoding key`: `b` with a key that is not
    /// base64.
    KeyDecode,
    /// `CLIENT_ERROR opaque token too long`: an `O` token over 32 bytes,
    /// its `O` included.
    OpaqueTooLong,
    /// `CLIENT_ERROR incorrect length for M token`: `M` not followed by
    /// exactly one byte.
    ModeLength,
    /// `CLIENT_ERROR invalid mode for ms M token`.
    InvalidSetMode,
    /// `CLIENT_ERROR invalid mode for ma M token`.
    InvalidArithMode,
    /// `CLIENT_ERROR invalid numeric initial value` (`J`).
    InvalidInitial,
    /// `CLIENT_ERROR invalid numeric delta value` (`D`).
    InvalidDeltaValue,
}

impl TextError<'_> {
    /// memcached's reply line, `\r\n` included.
    pub fn reply(&self) -> &'static [u8] {
        match self {
            TextError::UnknownCommand | TextError::BadMemlimit { .. } => b"ERROR\r\n",
            TextError::BadFormat { .. } => b"CLIENT_ERROR bad command line format\r\n",
            TextError::DeleteUsage { .. } => {
                b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            }
            TextError::InvalidExptime { .. } => b"CLIENT_ERROR invalid exptime argument\r\n",
            TextError::InvalidDelta { .. } => b"CLIENT_ERROR invalid numeric delta argument\r\n",
            TextError::BadDataChunk { .. } => b"CLIENT_ERROR bad data chunk\r\n",
            TextError::TooLarge { .. } => b"SERVER_ERROR object too large for cache\r\n",
            TextError::InvalidShutdownMode => b"CLIENT_ERROR invalid shutdown mode\r\n",
            TextError::GetFlagsTooLong => b"CLIENT_ERROR options flags are too long\r\n",
            TextError::FlagsTooLong => b"CLIENT_ERROR options flags too long\r\n",
            TextError::BadToken => b"CLIENT_ERROR bad token in command line format\r\n",
            TextError::InvalidFlag => b"CLIENT_ERROR invalid flag\r\n",
            TextError::DuplicateFlag => b"CLIENT_ERROR duplicate flag\r\n",
            TextError::InvalidOrDuplicateFlag => b"CLIENT_ERROR invalid or duplicate flag\r\n",
            TextError::KeyDecode => b"CLIENT_ERROR error decoding key\r\n",
            TextError::OpaqueTooLong => b"CLIENT_ERROR opaque token too long\r\n",
            TextError::ModeLength => b"CLIENT_ERROR incorrect length for M token\r\n",
            TextError::InvalidSetMode => b"CLIENT_ERROR invalid mode for ms M token\r\n",
            TextError::InvalidArithMode => b"CLIENT_ERROR invalid mode for ma M token\r\n",
            TextError::InvalidInitial => b"CLIENT_ERROR invalid numeric initial value\r\n",
            TextError::InvalidDeltaValue => b"CLIENT_ERROR invalid numeric delta value\r\n",
        }
    }

    /// Whether memcached sends nothing for this error, because the
    /// request ended in `noreply`. Meta errors are always sent.
    pub fn noreply(&self) -> bool {
        match *self {
            TextError::BadMemlimit { noreply }
            | TextError::BadFormat { noreply }
            | TextError::DeleteUsage { noreply }
            | TextError::InvalidExptime { noreply }
            | TextError::InvalidDelta { noreply }
            | TextError::BadDataChunk { noreply }
            | TextError::TooLarge { noreply, .. } => noreply,
            _ => false,
        }
    }
}

impl fmt::Display for TextError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.reply();
        let text = line.strip_suffix(b"\r\n").unwrap_or(line);
        f.write_str(std::str::from_utf8(text).unwrap_or_default())
    }
}

impl std::error::Error for TextError<'_> {}

/// The stream cannot be read any further. memcached 1.6.18 closes such a
/// connection without a word; [`Fatal::reply`] is a line a server may send
/// first, so that a person at a terminal sees why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fatal {
    /// A line longer than `limit` bytes (its `\r\n` not counted):
    /// [`MAX_LINE`](super::MAX_LINE), or
    /// [`MAX_GET_LINE`](super::MAX_GET_LINE) for multi-key reads.
    LineTooLong {
        /// The bound that was passed.
        limit: usize,
    },
}

impl Fatal {
    /// `CLIENT_ERROR line too long`, `\r\n` included.
    pub fn reply(&self) -> &'static [u8] {
        match self {
            Fatal::LineTooLong { .. } => b"CLIENT_ERROR line too long\r\n",
        }
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fatal::LineTooLong { limit } => {
                write!(f, "command line longer than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for Fatal {}
