//! Fairness between clients whose commands travel to the same worker: one
//! client's flood of expensive commands forwarded to a key's owner must not
//! make another client's command, forwarded to the same owner, wait for
//! all of them. The owner runs what it cannot finish in a turn round-robin
//! by client connection, each client's commands in their order.
//!
//! Observed without timing: the flood appends one byte per command to a
//! 512 KiB item (each append copies the item, so the owner needs many turns
//! for them); once every append has been forwarded, another client reads
//! the item's size. Waiting behind the whole flood it would see every
//! append applied; served in its turn, it sees only some.

use cafe::server::ServerHandle;

mod common;
use common::text::TextConn;
use common::{IO_TIMEOUT, spread_keys, start};

const APPENDS: usize = 1000;

fn stat(server: &ServerHandle, name: &str) -> u64 {
    TextConn::open(server.local_addr()).stats("").get(name)
}

/// The size of `key`'s value, by a meta get that returns no value.
fn size(c: &mut TextConn, key: &str) -> usize {
    let line = c.call(format!("mg {key} s\r\n"));
    line.strip_prefix("HD s")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("mg {key} s: {line}"))
}

/// A connection on the worker that does not own `remote` (a key of the
/// other of two workers): its reads of `remote` are forwarded.
fn conn_away_from(server: &ServerHandle, remote: &str) -> TextConn {
    for _ in 0..64 {
        let mut c = TextConn::open(server.local_addr());
        let before = stat(server, "forwarded");
        assert_eq!(c.call(format!("mg {remote} s\r\n")).get(..4), Some("HD s"));
        if stat(server, "forwarded") > before {
            return c;
        }
    }
    panic!("64 connections all landed on the worker owning {remote}");
}

#[test]
fn a_flood_forwarded_to_one_owner_does_not_hold_up_another_client() {
    let server = start(2);
    let keys = spread_keys("fair", 2, 2);
    let flood_key = String::from_utf8(keys[1].clone()).expect("ascii");
    let mut setup = TextConn::open(server.local_addr());
    let base = 512 << 10;
    setup.set(&flood_key, 0, &vec![b'a'; base]);

    // The flooder and the probe both sit on worker 0, the item on worker 1.
    let mut flooder = conn_away_from(&server, &flood_key);
    let mut probe = conn_away_from(&server, &flood_key);
    let forwarded = stat(&server, "forwarded");
    let appends = format!("append {flood_key} 0 0 1 noreply\r\nx\r\n").repeat(APPENDS);
    let writer = flooder.send_in_background(appends.into_bytes());
    // Every append is on its way to the owner (bounded wait: the origin
    // forwards them far faster than the owner copies 1 MiB items).
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    let mut watcher = TextConn::open(server.local_addr());
    while watcher.stats("").get("forwarded") < forwarded + APPENDS as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the appends were never all forwarded"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    writer.join().expect("the flood was written");

    let seen = size(&mut probe, &flood_key);
    assert!(
        seen < base + APPENDS,
        "the probe waited for the whole flood ({} of {APPENDS} appends applied)",
        seen - base
    );
    // Nothing of the flood was lost or reordered: it all lands, in order,
    // before the flooder's own next command.
    assert_eq!(size(&mut flooder, &flood_key), base + APPENDS);
}
