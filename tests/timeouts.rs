//! Connection timeouts over real sockets: the idle timeout closes a
//! connection that sends no request; the frame timeout closes one whose
//! request, once begun, does not complete (a slowloris client).
//!
//! The server's clock is a `ManualClock`: a test moves it past a timeout
//! and then waits (every read has a timeout) for the close, which comes
//! within one check tick of real time. One test uses the real clock with
//! a timeout of a fraction of a second. A request paused because the
//! connections' memory is spent stays timed, so partial requests cannot
//! hold that memory, and their slots, for ever.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cafe::clock::ManualClock;
use cafe::config::Config;
use cafe::server::ServerHandle;

mod common;
use common::text::TextConn;
use common::{IO_TIMEOUT, fill, for_each_worker_count, start_config};

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

/// Whether the server has closed `conn`, looking for a moment only.
fn closed_now(conn: &mut TextConn) -> bool {
    conn.stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("read timeout");
    let mut b = [0u8; 1];
    let closed = match std::io::Read::read(&mut conn.stream, &mut b) {
        Ok(0) => true,
        Ok(_) => panic!("a partial request got a reply"),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    conn.stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("read timeout");
    closed
}

#[test]
fn partial_requests_waiting_for_memory_still_time_out() {
    for_each_worker_count(|threads| {
        // 256 KiB of connection memory per worker (enough for a largest
        // request and reply of 90 KiB), and 24 clients that each send
        // 70 KB of a 90 KB value and stop: the budget runs out, so the
        // server stops reading some of them mid-request.
        let clock = Arc::new(ManualClock::new());
        let server = start_config(Config {
            clock: clock.clone(),
            frame_timeout: SECOND,
            connection_memory: Some((256 << 10) * threads as u64),
            limits: cafe::protocol::native::Limits {
                max_value_len: 90 << 10,
                ..Default::default()
            },
            ..Config::ephemeral(threads)
        });
        let addr = server.local_addr();
        let mut kept = TextConn::open(addr);
        kept.set("kept", 7, b"before");
        const HALVES: usize = 24;
        let part = fill(b"half", 70_000);
        let mut open: Vec<TextConn> = (0..HALVES)
            .map(|i| {
                let mut c = TextConn::open(addr);
                c.send(format!("set half{i} 0 0 90000\r\n"));
                c.send(&part);
                c
            })
            .collect();

        // The clock moves on while the test watches: each timeout frees
        // memory, so the clients the server had stopped reading are read,
        // and time out in turn. Waiting for memory must not stop the
        // clock, or they would stay open for ever.
        let deadline = Instant::now() + 2 * IO_TIMEOUT;
        while !open.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} partial requests never timed out",
                open.len()
            );
            clock.advance_ms(250);
            open.retain_mut(|c| !closed_now(c));
        }
        assert_eq!(stat(&server, "frame_timeouts"), HALVES as u64);
        assert_eq!(stat(&server, "curr_items"), 1, "no partial value stored");

        // The memory is back: a whole large value is taken, and what was
        // stored before is intact.
        let big = fill(b"whole", 90_000);
        kept.set("big", 0, &big);
        assert_eq!(kept.get("big"), Some((big, 0)));
        assert_eq!(kept.get("kept"), Some((b"before".to_vec(), 7)));
    });
}
