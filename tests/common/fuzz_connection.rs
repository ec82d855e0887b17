//! The connection fuzz target's check (`fuzz/fuzz_targets/connection.rs`),
//! shared with `tests/fuzz_corpus.rs`: one input is one client of an
//! in-process server, which writes the input's stream in chunks the input
//! chooses, half-closes, and reads whatever comes back; the server must
//! then still answer a fresh connection. A panic on a worker thread is a
//! finding too: the fuzz target aborts on any panic, and
//! [`Harness::finish`] reports one. Included by path, like `fuzz.rs`.
//!
//! Input layout:
//!
//! - byte 0: bits 0-2, how many chunk-size bytes follow (0 to 7); bit 3,
//!   pause briefly after each of the first [`PAUSES`] chunks, so the server
//!   reads them apart rather than as one;
//! - the chunk-size bytes: each chunk is one more byte than its size byte,
//!   taking them in turn; with none, the stream goes in one write;
//! - the rest: the stream, in any protocol (its first byte picks one).
//!
//! Must not: use a fixed port, wait for a reply without a timeout, or
//! depend on anything but `cafe` and std.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use cafe::config::Config;
use cafe::server::{Server, ServerHandle};

/// How long a client waits for more replies after its half-close. The
/// server closes once it has answered, so this is only reached if it
/// stalls, which the liveness check that follows then shows.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The pause between chunks when byte 0 asks for one: long enough for the
/// server to read a chunk alone, most of the time.
const CHUNK_PAUSE: Duration = Duration::from_micros(100);

/// Most pauses in one input: enough to split the first few frames, and a
/// byte-by-byte input still takes milliseconds, not a second.
const PAUSES: usize = 16;

/// Workers of the server: two, so requests are forwarded between them.
const WORKERS: usize = 2;

/// A server for one fuzzing process or one test.
#[derive(Debug)]
pub struct Harness {
    server: ServerHandle,
}

/// How one input is sent.
struct Plan<'a> {
    sizes: &'a [u8],
    pause: bool,
    stream: &'a [u8],
}

impl<'a> Plan<'a> {
    fn new(input: &'a [u8]) -> Self {
        let Some((&control, rest)) = input.split_first() else {
            return Plan {
                sizes: &[],
                pause: false,
                stream: &[],
            };
        };
        let (sizes, stream) = rest.split_at(usize::from(control & 7).min(rest.len()));
        Plan {
            sizes,
            pause: control & 8 != 0,
            stream,
        }
    }

    /// The stream in the chunks the plan says.
    fn chunks(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut sizes = self.sizes.iter().cycle();
        let mut rest = self.stream;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let size = sizes.next().map_or(rest.len(), |&s| usize::from(s) + 1);
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            rest = tail;
            Some(chunk)
        })
    }
}

impl Harness {
    /// Starts a server on an ephemeral loopback port.
    pub fn start() -> Harness {
        let server = Server::start(Config::ephemeral(WORKERS)).expect("server starts");
        Harness { server }
    }

    /// Sends `input` as one client (see the module docs), then checks the
    /// server still answers.
    pub fn feed(&self, input: &[u8]) {
        let plan = Plan::new(input);
        let stream = self.connect();
        let mut reader = stream.try_clone().expect("clone the client socket");
        // Replies are drained while the stream is written, so a server
        // that answers a lot never waits on this client.
        let drain = thread::spawn(move || {
            let mut buf = [0; 64 * 1024];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
        });
        let mut writer = &stream;
        for (i, chunk) in plan.chunks().enumerate() {
            // The server may close first (a fatal error, `quit`): the rest
            // of the stream then has nowhere to go.
            if writer.write_all(chunk).is_err() {
                break;
            }
            if plan.pause && i < PAUSES {
                thread::sleep(CHUNK_PAUSE);
            }
        }
        let _ = stream.shutdown(Shutdown::Write);
        drain.join().expect("reader thread");
        drop(stream);
        self.assert_alive();
    }

    /// A fresh connection is answered: `version` gets a `VERSION` line.
    pub fn assert_alive(&self) {
        let mut stream = self.connect();
        stream
            .write_all(b"version\r\n")
            .expect("the server takes a fresh connection's request");
        let mut line = Vec::new();
        let read = BufReader::new(&stream).read_until(b'\n', &mut line);
        assert!(
            read.is_ok() && line.starts_with(b"VERSION "),
            "the server no longer answers version on a fresh connection: {read:?} {:?}",
            String::from_utf8_lossy(&line)
        );
    }

    /// Stops the server and asserts no worker panicked.
    pub fn finish(self) {
        self.server.shutdown();
        assert!(self.server.join(), "a server worker panicked");
    }

    fn connect(&self) -> TcpStream {
        let stream =
            TcpStream::connect(self.server.local_addr()).expect("the server accepts a connection");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(READ_TIMEOUT))
            .expect("write timeout");
        stream
    }
}
