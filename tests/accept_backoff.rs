//! Accepting resumes by itself after running out of descriptors.
//!
//! The listener is edge-triggered: a connection that arrives while the
//! process has no descriptor left raises one event, its accept fails with
//! EMFILE, and no later event comes for it. The server must retry on a
//! timer. This test runs out of descriptors for real, so it is the only
//! test in its file: cargo runs each test file as its own process, and
//! the lowered limit stays in this one.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Instant;

use cafe::fdlimit;
use cafe::stats::VERSION;

mod common;
use common::{IO_TIMEOUT, set_timeouts, start};

/// Hands the server's warnings to the test, which waits for the one that
/// says accepting failed.
struct Warnings(Mutex<Sender<String>>);

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata())
            && let Ok(tx) = self.0.lock()
        {
            let _ = tx.send(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn capture_warnings() -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let logger = Box::leak(Box::new(Warnings(Mutex::new(tx))));
    log::set_logger(logger).expect("the only logger in this process");
    log::set_max_level(log::LevelFilter::Warn);
    rx
}

/// Waits for a warning containing `text`; the others seen are returned in
/// the failure message.
fn wait_for_warning(rx: &Receiver<String>, text: &str) -> String {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(text) => return line,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no warning with {text:?} ({e}); seen: {seen:#?}"),
        }
    }
}

/// Descriptors open in this process now.
fn open_descriptors() -> u64 {
    // The directory listing itself holds one.
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count() as u64
        - 1
}

#[test]
fn accepting_resumes_by_itself_once_descriptors_free_up() {
    let warnings = capture_warnings();
    let server = start(1);
    let addr = server.local_addr();
    let limit = fdlimit::nofile().expect("getrlimit");

    // Leave a few descriptors free, then take every one of them.
    fdlimit::set_nofile_soft(open_descriptors() + 16).expect("lower the soft limit");
    let mut hog = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => hog.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
    }
    assert!(!hog.is_empty());

    // One descriptor for the client's socket; the kernel completes the
    // handshake and queues the connection, but the server has none left
    // to accept it with.
    hog.pop();
    let mut client = TcpStream::connect(addr).expect("connect");
    set_timeouts(&client, IO_TIMEOUT);
    client.write_all(b"version\r\n").expect("send");
    let warning = wait_for_warning(&warnings, "accept failed");
    assert!(warning.contains("Too many open files"), "{warning}");

    // Free the descriptors. No new connection arrives, so no new event:
    // only the server's own retry can accept the one waiting.
    drop(hog);
    let mut reply = Vec::new();
    let want = format!("VERSION {VERSION}\r\n");
    let mut buf = [0u8; 256];
    while reply.len() < want.len() {
        match client.read(&mut buf) {
            Ok(0) => panic!("closed; got {:?}", String::from_utf8_lossy(&reply)),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the waiting connection was never accepted")
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    assert_eq!(String::from_utf8_lossy(&reply), want);

    // And the server accepts new connections as before.
    fdlimit::set_nofile_soft(limit.soft).expect("restore the soft limit");
    let mut other = common::connect(&server);
    other.write_all(b"version\r\n").expect("send");
    let mut line = vec![0u8; want.len()];
    other.read_exact(&mut line).expect("reply");
    assert_eq!(String::from_utf8_lossy(&line), want);
}
