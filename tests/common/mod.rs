//! Helpers shared by the integration test files (each `tests/*.rs` is its
//! own crate, so shared code lives in this module, which cargo does not
//! build as a test of its own).

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

pub mod codec;
pub mod fleet;
pub mod memcache;
pub mod process;
pub mod text;
pub mod text_cases;
pub mod tool;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use cafe::client::Client;
use cafe::clock::ManualClock;
use cafe::config::Config;
use cafe::protocol::native::Limits;
use cafe::router::Router;
use cafe::server::{Server, ServerHandle};

/// Long enough for a loaded CI machine, short enough that a server bug
/// fails a test instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Every behaviour runs with one worker and with several: routing between
/// workers must never show.
pub const WORKER_COUNTS: [usize; 2] = [1, 4];

/// Runs `test` once per worker count. The count is printed first, so a
/// failure's captured output says which run failed.
pub fn for_each_worker_count(test: impl Fn(usize)) {
    for threads in WORKER_COUNTS {
        eprintln!("--- {threads} worker(s)");
        test(threads);
    }
}

/// A server with the default configuration on 127.0.0.1 port 0.
pub fn start(threads: usize) -> ServerHandle {
    start_config(Config::ephemeral(threads))
}

/// A server whose expiry clock moves only when the test says so.
pub fn start_with_clock(threads: usize) -> (ServerHandle, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let mut config = Config::ephemeral(threads);
    config.clock = clock.clone();
    (start_config(config), clock)
}

pub fn start_with_limits(threads: usize, limits: Limits) -> ServerHandle {
    let mut config = Config::ephemeral(threads);
    config.limits = limits;
    start_config(config)
}

/// A server with `config`, which the caller built (usually from
/// `Config::ephemeral`).
pub fn start_config(config: Config) -> ServerHandle {
    Server::start(config).expect("server starts")
}

/// A raw connection to the server: no delay, read and write timeouts.
pub fn connect(server: &ServerHandle) -> TcpStream {
    connect_to(server.local_addr(), IO_TIMEOUT)
}

/// A raw connection to `addr` (a server not started in-process, or a test
/// that needs another timeout): no delay, read and write timeouts.
pub fn connect_to(addr: SocketAddr, timeout: Duration) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    set_timeouts(&stream, timeout);
    stream
}

/// Sets both timeouts, so that a stalled server fails a test instead of
/// hanging it.
pub fn set_timeouts(stream: &TcpStream, timeout: Duration) {
    stream
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(timeout))
        .expect("write timeout");
}

/// A native blocking client on a [`connect`] connection.
pub fn client(server: &ServerHandle) -> Client {
    Client::from_stream(connect(server))
}

/// A native blocking client on a [`connect_to`] connection.
pub fn client_to(addr: SocketAddr, timeout: Duration) -> Client {
    Client::from_stream(connect_to(addr, timeout))
}

/// Asserts that the server closed the connection gracefully: a read
/// returns 0, not more bytes and not a reset.
pub fn expect_eof(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!(
            "expected end of stream, got {n} more bytes: \"{}\"",
            buf[..n].escape_ascii()
        ),
        Err(e) => panic!(
            "expected a graceful close (read = 0), got {e} ({:?})",
            e.kind()
        ),
    }
}

/// `bytes` escaped for a failure message, cut after `limit` bytes (then
/// "...") so that a large value does not drown the message.
pub fn escape_cut(bytes: &[u8], limit: usize) -> String {
    let shown = &bytes[..bytes.len().min(limit)];
    let more = if bytes.len() > limit { "..." } else { "" };
    format!("{}{more}", shown.escape_ascii())
}

/// `pattern` repeated (and cut) to exactly `len` bytes.
pub fn fill(pattern: &[u8], len: usize) -> Vec<u8> {
    pattern.iter().copied().cycle().take(len).collect()
}

/// `n` keys `{prefix}{i}`, chosen so that their owners go round-robin over
/// the `threads` workers: at 4 workers, whichever worker a connection lands
/// on, most of these keys are forwarded to another one.
pub fn spread_keys(prefix: &str, threads: usize, n: usize) -> Vec<Vec<u8>> {
    let router = Router::new(threads);
    let mut keys = Vec::with_capacity(n);
    let mut i = 0u64;
    while keys.len() < n {
        let key = format!("{prefix}{i}").into_bytes();
        if router.owner(&key) == keys.len() % threads {
            keys.push(key);
        }
        i += 1;
    }
    keys
}

/// The crate's seeded generator (SplitMix64): every run sends the same
/// requests, so a failure can be replayed. The tests use seeds for variety
/// only; no assertion depends on the exact numbers drawn.
pub use cafe::workload::Rng;

/// What the tests draw beyond the crate's [`Rng`]; a trait, so that
/// `rng.pick(..)` reads like the generator's own methods.
pub trait RngExt {
    /// One of `items` (not empty).
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T;
}

impl RngExt for Rng {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
