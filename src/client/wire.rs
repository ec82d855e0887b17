//! A blocking client connection's socket and buffers, for any framed
//! binary protocol: the stream, the requests being written, the bytes
//! received but not yet decoded, and the loop that reads until the codec
//! says a frame is whole.
//!
//! Must not: know a protocol (the caller passes its decoder), or grow the
//! read buffer past what has arrived by more than the codec's claim for
//! the frame at hand (a peer's length claim is checked by the decoder,
//! against [`Wire::max_response_len`], before it reaches here).

use std::convert::Infallible;
use std::fmt;
use std::io::{self, Read};
use std::net::{TcpStream, ToSocketAddrs};

use crate::protocol::Decoded;

/// Default for a client's largest response: well above the server's
/// largest item (1 MiB by default) and STATS body, yet small enough that a
/// broken server cannot make a test or benchmark allocate without bound.
pub const DEFAULT_MAX_RESPONSE_LEN: usize = 64 << 20;

/// Connects and sets TCP_NODELAY, since every request is written whole and
/// waiting to coalesce would only add latency.
pub(crate) fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One connection: its stream, reused write and read buffers, and the
/// largest response it accepts.
pub(crate) struct Wire {
    pub(crate) stream: TcpStream,
    pub(crate) reader: ReadBuf,
    pub(crate) wbuf: Vec<u8>,
    pub(crate) max_response_len: usize,
}

impl Wire {
    /// Wraps a connected stream as is.
    pub(crate) fn new(stream: TcpStream) -> Wire {
        Wire {
            stream,
            reader: ReadBuf::new(),
            wbuf: Vec::new(),
            max_response_len: DEFAULT_MAX_RESPONSE_LEN,
        }
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wire")
            .field("stream", &self.stream)
            .field("buffered", &self.reader.buffered())
            .field("max_response_len", &self.max_response_len)
            .finish()
    }
}

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

/// Test support: model servers for the clients' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// A connection to a sequential model server on a loopback port: it
    /// reads, hands the bytes not yet handled to `answer` (which appends a
    /// reply to `out` for each whole request and returns the bytes it
    /// handled), writes the replies with blocking writes, and repeats. It
    /// stops reading while a write blocks, which is exactly what
    /// deadlocks a client that writes a large pipeline before reading.
    /// Reads and writes time out after 20 s, so a deadlock fails a test
    /// instead of hanging it.
    pub(crate) fn model_server(
        mut answer: impl FnMut(&[u8], &mut Vec<u8>) -> usize + Send + 'static,
    ) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let Ok((mut sock, _)) = listener.accept() else {
                return;
            };
            let (mut input, mut chunk, mut out) = (Vec::new(), vec![0; 4096], Vec::new());
            loop {
                let n = match sock.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                input.extend_from_slice(&chunk[..n]);
                out.clear();
                let handled = answer(&input, &mut out);
                input.drain(..handled);
                if sock.write_all(&out).is_err() {
                    return;
                }
            }
        });
        let stream = super::connect(addr).expect("connect");
        let t = Some(Duration::from_secs(20));
        stream.set_read_timeout(t).expect("timeout");
        stream.set_write_timeout(t).expect("timeout");
        stream
    }
}
