//! Memory given back after a burst: a `cafe-server` process made to hold
//! tens of MiB of replies for clients that do not read returns to near its
//! earlier resident size once those clients are gone, instead of keeping
//! its peak (glibc's malloc did; the binary's allocator, jemalloc, gives
//! unused pages back on a timer, see src/allocator.rs).
//!
//! The server runs as a child process so that its resident size is its
//! own; conditions are polled, bounded, never slept for.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;
use common::IO_TIMEOUT;
use common::process::{listening_addr, spawn_server};
use common::text::TextConn;

const MIB: usize = 1 << 20;

/// The process's resident size, from /proc.
fn rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Polls the resident size until `ok` holds, for at most `limit`.
fn wait_rss(pid: u32, limit: Duration, ok: impl Fn(usize) -> bool) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let now = rss(pid);
        if ok(now) || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn resident_memory_falls_back_after_clients_that_never_read_are_gone() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("no /proc: skipped");
        return;
    }
    let p = spawn_server(&[
        "--listen",
        "127.0.0.1:0",
        "--no-pin",
        "--threads",
        "2",
        "--memory",
        "64m",
    ]);
    let pid = p.child.id();
    let addr = listening_addr(&p);
    let mut kept = TextConn::open(addr);
    kept.set("kept", 3, b"stays");

    // Clients that pipeline reads of a large value and never read the
    // replies: the server holds replies up to its connection budget, and
    // the kernel's socket buffers take more as the clients' windows allow.
    let value = vec![b'v'; MIB - 512];
    kept.set("big", 0, &value);
    let before = rss(pid);
    let gets = "get big\r\n".repeat(200);
    let clients: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut c = common::connect_to(addr, IO_TIMEOUT);
            c.write_all(gets.as_bytes()).expect("send");
            c
        })
        .collect();
    let peak = wait_rss(pid, IO_TIMEOUT, |r| r >= before + 40 * MIB);
    assert!(
        peak >= before + 40 * MIB,
        "the burst never showed: {} MiB before, {} MiB now",
        before / MIB,
        peak / MIB
    );

    // The clients go away; the server frees their replies, and the pages
    // go back to the system (glibc's malloc kept about 40 MiB of them for
    // as long as the test waited).
    drop(clients);
    let after = wait_rss(pid, 3 * IO_TIMEOUT, |r| r <= before + 8 * MIB);
    assert!(
        after <= before + 8 * MIB,
        "resident size stayed at {} MiB after the burst ({} MiB before, {} MiB at the peak)",
        after / MIB,
        before / MIB,
        peak / MIB
    );
    assert_eq!(kept.get("kept"), Some((b"stays".to_vec(), 3)));
}
