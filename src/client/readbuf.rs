//! The read side of a blocking client connection, for any framed binary
//! protocol: bytes received but not yet decoded, and the loop that reads
//! until the codec says a frame is whole.
//!
//! Must not: know a protocol (the caller passes its decoder), or grow the
//! buffer past what has arrived by more than the codec's claim for the
//! frame at hand (a peer's length claim is checked by the decoder, before
//! it reaches here).

use std::convert::Infallible;
use std::io::{self, Read};
use std::net::TcpStream;

use crate::protocol::Decoded;

/// Smallest read buffer, and so the most one `read` takes at first: large
/// enough that a pipeline's small replies arrive in few system calls.
pub(crate) const MIN_READ_BUF: usize = 64 << 10;

/// Why no frame could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The socket failed or timed out.
    Io(io::Error),
    /// The peer closed before a whole frame arrived.
    Closed,
}

/// Bytes received but not yet decoded live in `buf[start..end]`. `buf` is
/// zero-filled up to its length once, when it grows, so reads go straight
/// into it without `unsafe`.
#[derive(Debug, Default)]
pub(crate) struct ReadBuf {
    pub(crate) buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    pub(crate) fn new() -> ReadBuf {
        ReadBuf::default()
    }

    /// How many bytes are received and not yet decoded.
    pub(crate) fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Decodes the next frame with `decode`, reading from `stream` until
    /// it is whole. `decode` sees the undecoded bytes and copies a complete
    /// frame out as an owned `T`; its error (a broken stream) ends the call.
    pub(crate) fn next<T, E, R>(&mut self, stream: &TcpStream, mut decode: R) -> Result<T, E>
    where
        R: FnMut(&[u8]) -> Result<Decoded<T, Infallible>, E>,
        E: From<ReadError>,
    {
        loop {
            let needed = match decode(&self.buf[self.start..self.end])? {
                Decoded::Complete { frame, consumed } => {
                    self.start += consumed;
                    if self.start == self.end {
                        self.start = 0;
                        self.end = 0;
                    }
                    return Ok(frame);
                }
                Decoded::Incomplete { needed } => needed,
                // Responses are never refused: the error type is empty.
                Decoded::Rejected { error, .. } => match error {},
            };
            self.fill(stream, needed)?;
        }
    }

    /// Reads at least one byte, making room for it first. `needed` is the
    /// codec's total for the frame at `start`; it caps growth so that a
    /// large frame is not over-allocated, while doubling keeps the buffer
    /// within twice what has actually arrived.
    fn fill(&mut self, mut stream: &TcpStream, needed: usize) -> Result<(), ReadError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let len = self.buf.len();
            let grown = len
                .saturating_mul(2)
                .min(needed.max(len + 1))
                .max(MIN_READ_BUF);
            self.buf.resize(grown, 0);
        }
        loop {
            match stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }
}

/// A decoder's answer with its borrowed frame copied out by `own`.
pub(crate) fn owned<F, T>(
    decoded: Decoded<F, Infallible>,
    own: impl FnOnce(F) -> T,
) -> Decoded<T, Infallible> {
    match decoded {
        Decoded::Complete { frame, consumed } => Decoded::Complete {
            frame: own(frame),
            consumed,
        },
        Decoded::Incomplete { needed } => Decoded::Incomplete { needed },
        Decoded::Rejected { error, .. } => match error {},
    }
}
