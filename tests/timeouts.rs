//! Connection timeouts over real sockets: the idle timeout closes a
//! connection that sends no request; the frame timeout closes one whose
//! request, once begun, does not complete (a slowloris client).
//!
//! The server's clock is a `ManualClock`: a test moves it past a timeout
//! and then waits (every read has a timeout) for the close, which comes
//! within one check tick of real time. One test uses the real clock with
//! a timeout of a fraction of a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cafe::clock::ManualClock;
use cafe::config::Config;
use cafe::server::ServerHandle;

mod common;
use common::text::TextConn;
use common::{IO_TIMEOUT, for_each_worker_count, start_config};

/// A server with these timeouts and a manual clock.
fn start_timed(
    threads: usize,
    idle: Option<Duration>,
    frame: Option<Duration>,
) -> (ServerHandle, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let mut config = Config::ephemeral(threads);
    config.clock = clock.clone();
    config.idle_timeout = idle;
    config.frame_timeout = frame;
    (start_config(config), clock)
}

const SECOND: Option<Duration> = Some(Duration::from_secs(1));

/// `stats` counter `name`, read on a fresh connection.
fn stat(server: &ServerHandle, name: &str) -> u64 {
    TextConn::open(server.local_addr()).stats("").get(name)
}

#[test]
fn the_idle_timeout_closes_connections_that_send_no_request() {
    for_each_worker_count(|threads| {
        let (server, clock) = start_timed(threads, SECOND, None);
        let addr = server.local_addr();
        let mut silent = TextConn::open(addr);
        let mut done = TextConn::open(addr);
        let mut busy = TextConn::open(addr);
        assert_eq!(done.call("set k 0 0 1\r\nv\r\n"), "STORED");
        assert_eq!(busy.call("set k 0 0 1\r\nw\r\n"), "STORED");
        // `silent` must have been accepted before the clock moves.
        let deadline = Instant::now() + IO_TIMEOUT;
        while busy.stats("").get("curr_connections") < 3 {
            assert!(Instant::now() < deadline, "a connection was never accepted");
        }

        clock.advance_ms(600);
        assert_eq!(busy.call("get nope\r\n"), "END");
        clock.advance_ms(600);
        // 1.2 s without a request: closed, gracefully. `busy` asked 0.6 s
        // ago and stays.
        silent.expect_eof();
        done.expect_eof();
        assert_eq!(busy.call("get nope\r\n"), "END");
        assert_eq!(stat(&server, "idle_kicks"), 2);
        let settings = busy.stats("settings");
        assert_eq!(settings.get("idle_timeout"), 1);
        assert_eq!(settings.get("frame_timeout"), 0);
    });
}

#[test]
fn the_frame_timeout_closes_connections_whose_request_stays_incomplete() {
    for_each_worker_count(|threads| {
        let (server, clock) = start_timed(threads, None, SECOND);
        let addr = server.local_addr();
        // A data block that stops short, and a command line with no end,
        // each after a whole request in the same small write: once that
        // is answered, the server has read the start of the slow one.
        let mut body = TextConn::open(addr);
        assert_eq!(body.call("get nope\r\nset slow 0 0 10\r\nhello"), "END");
        let mut line = TextConn::open(addr);
        assert_eq!(line.call("get nope\r\nget slo"), "END");
        // Requests that arrive whole, however idle their connection.
        let mut whole = TextConn::open(addr);
        assert_eq!(whole.call("set k 0 0 1\r\nv\r\n"), "STORED");

        clock.advance_ms(600);
        // More bytes of the same request do not restart its clock.
        body.send("wor");
        // A new request begun now is timed from now.
        let mut later = TextConn::open(addr);
        assert_eq!(later.call("get nope\r\nset later 0 0 5\r\nab"), "END");
        clock.advance_ms(600);

        body.expect_eof();
        line.expect_eof();
        later.send("cde\r\n");
        assert_eq!(later.line(), "STORED");
        assert_eq!(whole.get("later"), Some((b"abcde".to_vec(), 0)));
        assert_eq!(stat(&server, "frame_timeouts"), 2);
        assert_eq!(whole.stats("settings").get("frame_timeout"), 1);
    });
}

#[test]
fn a_short_idle_timeout_on_the_real_clock() {
    let mut config = Config::ephemeral(1);
    let idle = Duration::from_millis(300);
    config.idle_timeout = Some(idle);
    let server = start_config(config);
    let started = Instant::now();
    let mut c = TextConn::open(server.local_addr());
    // A fraction of a second reads as 1, not as 0 ("off").
    assert_eq!(c.stats("settings").get("idle_timeout"), 1);
    // Closed by the server's own timer: nothing else happens meanwhile.
    c.expect_eof();
    assert!(
        started.elapsed() >= idle,
        "closed after {:?}",
        started.elapsed()
    );
}
