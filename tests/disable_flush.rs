//! `--disable-flush` (memcached's `-F`): every client's FLUSH is refused,
//! in memcached's words, and the cache keeps its items.
//!
//! The expected replies are memcached 1.6.18's, as `memcached -F` answers
//! them: text `CLIENT_ERROR flush_all not allowed` (before the delay is
//! read, so a bad delay gets it too; not with `noreply`), binary status
//! 0x20 with the text `Auth failure.`, quiet or not.

use cafe::config::Config;

mod common;
use common::memcache::{Conn, Resp, empty, op, req};
use common::text::TextConn;
use common::{for_each_worker_count, start_config};

/// memcached's "not allowed" status.
const AUTH_ERROR: u16 = 0x20;

fn refused(opcode: u8, opaque: u32) -> Resp {
    Resp {
        status: AUTH_ERROR,
        value: b"Auth failure.".to_vec(),
        ..empty(opcode, opaque)
    }
}

#[test]
fn flushes_are_refused_and_items_stay() {
    for_each_worker_count(|threads| {
        let mut config = Config::ephemeral(threads);
        config.disable_flush = true;
        let server = start_config(config);
        let mut text = TextConn::open(server.local_addr());
        assert_eq!(text.call("set k 0 0 1\r\nv\r\n"), "STORED");

        text.send("flush_all\r\nflush_all noreply\r\nflush_all 0\r\n");
        text.send("flush_all abc\r\nflush_all abc noreply\r\nflush_all 1 2 3\r\n");
        for want in [
            "CLIENT_ERROR flush_all not allowed",
            "CLIENT_ERROR flush_all not allowed",
            "CLIENT_ERROR flush_all not allowed",
            // Too many tokens is not a flush at all.
            "ERROR",
        ] {
            assert_eq!(text.line(), want);
        }

        let mut binary = Conn::open(&server);
        assert_eq!(
            binary.call(&req::flush(op::FLUSH, 7, None)),
            refused(op::FLUSH, 7)
        );
        // A quiet FLUSH is answered too: errors always are.
        binary.send(&req::flush(op::FLUSHQ, 8, Some(0)));
        binary.send(&req::bare(op::NOOP, 9));
        assert_eq!(binary.recv(), refused(op::FLUSHQ, 8));
        assert_eq!(binary.recv(), empty(op::NOOP, 9));

        assert_eq!(text.get("k"), Some((b"v".to_vec(), 0)));
        let s = text.stats("");
        // Refused flushes count as memcached's text protocol counts them
        // (its binary protocol does not: cafe counts them alike).
        assert_eq!(s.get("cmd_flush"), 7);
        assert_eq!(s.get("curr_items"), 1);
        assert_eq!(text.stats("settings").text("flush_enabled"), "no");
    });
}

#[test]
fn flushing_is_enabled_by_default() {
    let server = start_config(Config::ephemeral(1));
    let mut text = TextConn::open(server.local_addr());
    assert_eq!(text.stats("settings").text("flush_enabled"), "yes");
    assert_eq!(text.call("set k 0 0 1\r\nv\r\n"), "STORED");
    assert_eq!(text.call("flush_all\r\n"), "OK");
    assert_eq!(text.get("k"), None);
}
