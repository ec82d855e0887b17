//! Fail-stop: a worker that dies, by a panic or by an error from its
//! loop, stops the whole server instead of leaving its share of the keys
//! hanging. The failure is injected through a hidden test hook
//! (`ServerHandle::inject_worker_failure`).

use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;
use common::text::TextConn;
use common::{IO_TIMEOUT, spread_keys, start};

const WORKERS: usize = 4;

fn worker_death_stops_the_server(panic: bool) {
    let server = start(WORKERS);
    let addr = server.local_addr();
    // Clients on every worker, each having reached every worker's keys.
    let keys = spread_keys("fail-stop-", WORKERS, WORKERS);
    let mut clients: Vec<TextConn> = (0..2 * WORKERS).map(|_| TextConn::open(addr)).collect();
    for c in &mut clients {
        for key in &keys {
            let key = String::from_utf8_lossy(key);
            assert_eq!(c.call(format!("set {key} 0 0 1\r\nv\r\n")), "STORED");
        }
    }

    server.inject_worker_failure(2, panic);

    // Every connection, on every worker, is closed: none is left waiting
    // on the dead worker's keys.
    for c in &mut clients {
        assert!(c.is_closed(), "a connection survived a worker's death");
    }
    // The handle reports the failure, and does not wait on the dead
    // worker: the others have stopped.
    let started = Instant::now();
    assert!(!server.join(), "join reports the dead worker");
    assert!(started.elapsed() < IO_TIMEOUT);
    // Nothing listens any more.
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn a_panicking_worker_stops_the_server() {
    worker_death_stops_the_server(true);
}

#[test]
fn a_worker_whose_loop_fails_stops_the_server() {
    worker_death_stops_the_server(false);
}
