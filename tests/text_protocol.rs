//! memcached's text protocol over real sockets, byte for byte as memcached
//! 1.6 answers it (`doc/protocol.txt`, and memcached itself where the text
//! is silent: every expected reply here was checked against a running
//! memcached; `tests/common/text.rs` says how to check them again).
//!
//! Every test starts its own server in-process on 127.0.0.1 port 0 and runs
//! at 1 worker and at 4 workers, with keys chosen by the crate's public
//! router so that every worker owns some. Nothing sleeps: `Server::start`
//! returns once the server listens, expiry is driven by a `ManualClock`,
//! and every read has a timeout.

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use cafe::client::Value;

mod common;
use common::memcache::{self, op, req, status};
use common::text::{
    ITEM_LIMIT, Item, Target, TextConn, each_cafe_server, each_server, each_server_with_clock,
    with_data,
};
use common::{fill, spread_keys};

/// memcached reads an expiry above this many seconds (30 days) as a Unix
/// time.
const THIRTY_DAYS: u64 = 60 * 60 * 24 * 30;

/// `n` spread keys joined by spaces.
fn joined(keys: &[String]) -> String {
    keys.join(" ")
}

fn hit(key: &str, flags: u32, value: &[u8]) -> Item {
    Item::new(key, flags, value)
}

// ---------------------------------------------------------------------------
// Retrieval

#[test]
fn get_returns_every_hit_in_request_order_and_skips_misses() {
    each_server(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-get-", 12);
        let missing = t.keys("tp-get-missing-", 4);
        for (i, key) in keys.iter().enumerate() {
            c.set(key, i as u32 * 1000, format!("value {i}").as_bytes());
        }
        // Hits and misses interleaved, and a key asked for twice: memcached
        // answers it twice.
        let mut asked = Vec::new();
        let mut expected = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            asked.push(key.clone());
            expected.push(hit(key, i as u32 * 1000, format!("value {i}").as_bytes()));
            if let Some(m) = missing.get(i) {
                asked.push(m.clone());
            }
        }
        asked.push(keys[3].clone());
        expected.push(hit(&keys[3], 3000, b"value 3"));
        assert_eq!(c.retrieve(&format!("get {}", joined(&asked))), expected);
        // Only misses: END alone.
        assert_eq!(c.retrieve(&format!("get {}", joined(&missing))), vec![]);
        // Extra spaces between keys and a bare \n ending are accepted.
        c.send(format!("get  {}   {} \n", keys[0], keys[1]));
        assert_eq!(
            c.items(),
            vec![
                hit(&keys[0], 0, b"value 0"),
                hit(&keys[1], 1000, b"value 1")
            ]
        );
    });
}

#[test]
fn gets_adds_a_cas_unique_per_item() {
    each_server(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-gets-", 8);
        for key in &keys {
            c.set(key, 7, key.as_bytes());
        }
        let first = c.retrieve(&format!("gets {} {}", joined(&keys), keys[0]));
        assert_eq!(first.len(), keys.len() + 1);
        for (item, key) in first.iter().zip(&keys) {
            assert_eq!(item.without_cas(), hit(key, 7, key.as_bytes()));
            assert!(item.cas.is_some(), "{item:?}");
        }
        let uniques: std::collections::HashSet<_> =
            first[..keys.len()].iter().map(|i| i.cas).collect();
        assert_eq!(uniques.len(), keys.len(), "one unique per item: {first:?}");
        assert_eq!(first[keys.len()].cas, first[0].cas, "same item, same cas");
        // Reading does not change it; `get` does not send it.
        assert_eq!(
            c.retrieve(&format!("gets {}", joined(&keys))),
            first[..keys.len()]
        );
        assert_eq!(
            c.retrieve(&format!("get {}", keys[0])),
            vec![hit(&keys[0], 7, keys[0].as_bytes())]
        );
    });
}

#[test]
fn a_get_of_hundreds_of_keys_may_exceed_the_line_limit() {
    // memcached closes a connection whose line passes 2048 bytes without a
    // newline unless it starts with "get " or "gets ": multigets are
    // unbounded.
    each_server(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-multiget-with-a-long-prefix-", 600);
        for (i, key) in keys.iter().enumerate().step_by(3) {
            c.set(key, i as u32, b"x");
        }
        let line = format!("get {}", joined(&keys));
        // Past memcached's 16 KiB read buffer too.
        assert!(line.len() > 16 * 1024, "{} bytes", line.len());
        let expected: Vec<Item> = keys
            .iter()
            .enumerate()
            .step_by(3)
            .map(|(i, k)| hit(k, i as u32, b"x"))
            .collect();
        assert_eq!(c.retrieve(&line), expected);
        let gets = c.retrieve(&format!("gets {}", joined(&keys)));
        assert_eq!(gets.len(), expected.len());
    });
}

#[test]
fn values_are_opaque_bytes() {
    each_server(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-bytes-", 4);
        let every_byte: Vec<u8> = (0..=255).collect();
        let cases: [&[u8]; 4] = [b"", b"a\r\nb", b"END\r\n", &every_byte];
        for (key, value) in keys.iter().zip(cases) {
            c.set(key, 0, value);
        }
        let expected: Vec<Item> = keys.iter().zip(cases).map(|(k, v)| hit(k, 0, v)).collect();
        assert_eq!(c.retrieve(&format!("get {}", joined(&keys))), expected);
        // The exact bytes of an empty value's block.
        c.send(format!("get {}\r\n", keys[0]));
        c.expect(format!("VALUE {} 0 0\r\n\r\nEND\r\n", keys[0]));
    });
}

// ---------------------------------------------------------------------------
// Storage

#[test]
fn set_add_and_replace() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("tp-store-", 4) {
            let fresh = format!("{key}-fresh");
            // add: only a new key.
            assert_eq!(
                c.call(with_data(&format!("add {key} 1 0 3"), b"abc")),
                "STORED"
            );
            assert_eq!(
                c.call(with_data(&format!("add {key} 2 0 3"), b"xyz")),
                "NOT_STORED"
            );
            assert_eq!(c.get(&key), Some((b"abc".to_vec(), 1)));
            // replace: only an existing key; it replaces flags too.
            assert_eq!(
                c.call(with_data(&format!("replace {key} 3 0 1"), b"r")),
                "STORED"
            );
            assert_eq!(c.get(&key), Some((b"r".to_vec(), 3)));
            assert_eq!(
                c.call(with_data(&format!("replace {fresh} 3 0 1"), b"r")),
                "NOT_STORED"
            );
            assert_eq!(c.get(&fresh), None);
            // set: always; flags are 32 bits.
            assert_eq!(
                c.call(with_data(&format!("set {key} 4294967295 0 2"), b"s!")),
                "STORED"
            );
            assert_eq!(c.get(&key), Some((b"s!".to_vec(), u32::MAX)));
            assert_eq!(
                c.call(with_data(&format!("set {fresh} 0 0 0"), b"")),
                "STORED"
            );
            assert_eq!(c.get(&fresh), Some((Vec::new(), 0)));
        }
    });
}

#[test]
fn append_and_prepend_keep_the_flags_and_need_an_item() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("tp-concat-", 4) {
            let fresh = format!("{key}-fresh");
            c.set(&key, 5, b"mid");
            // Their flags and exptime fields are read and ignored.
            assert_eq!(
                c.call(with_data(&format!("append {key} 9 9 4"), b"-end")),
                "STORED"
            );
            assert_eq!(
                c.call(with_data(&format!("prepend {key} 8 8 6"), b"start-")),
                "STORED"
            );
            assert_eq!(c.get(&key), Some((b"start-mid-end".to_vec(), 5)));
            for cmd in ["append", "prepend"] {
                assert_eq!(
                    c.call(with_data(&format!("{cmd} {fresh} 0 0 1"), b"x")),
                    "NOT_STORED",
                    "{cmd} of a missing key"
                );
            }
            assert_eq!(c.get(&fresh), None);
        }
    });
}

#[test]
fn cas_stores_only_against_the_current_unique() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("tp-cas-", 4) {
            let missing = format!("{key}-missing");
            c.set(&key, 1, b"one");
            let unique = |c: &mut TextConn| -> u64 {
                let items = c.retrieve(&format!("gets {key}"));
                assert_eq!(items.len(), 1, "{items:?}");
                items[0].cas.expect("gets sends the cas")
            };
            let first = unique(&mut c);
            assert_eq!(
                c.call(with_data(&format!("cas {key} 2 0 3 {first}"), b"two")),
                "STORED"
            );
            assert_eq!(c.get(&key), Some((b"two".to_vec(), 2)));
            let second = unique(&mut c);
            assert_ne!(second, first, "a store gives a new unique");
            // The old unique no longer matches: EXISTS, nothing stored.
            assert_eq!(
                c.call(with_data(&format!("cas {key} 3 0 5 {first}"), b"three")),
                "EXISTS"
            );
            assert_eq!(c.get(&key), Some((b"two".to_vec(), 2)));
            // No item: NOT_FOUND, nothing created.
            assert_eq!(
                c.call(with_data(&format!("cas {missing} 0 0 1 {second}"), b"x")),
                "NOT_FOUND"
            );
            assert_eq!(c.get(&missing), None);
            // A unique of 0 is checked too, as memcached does: it matches
            // no stored item, so EXISTS or NOT_FOUND, never a plain set.
            assert_eq!(
                c.call(with_data(&format!("cas {key} 0 0 1 0"), b"z")),
                "EXISTS"
            );
            assert_eq!(
                c.call(with_data(&format!("cas {missing} 0 0 1 0"), b"z")),
                "NOT_FOUND"
            );
            assert_eq!(c.get(&key), Some((b"two".to_vec(), 2)));
            assert_eq!(c.get(&missing), None);
            // Every modification gives a new unique.
            let mut seen = vec![first, second];
            for (request, reply) in [
                (with_data(&format!("append {key} 0 0 1"), b"!"), "STORED"),
                (with_data(&format!("prepend {key} 0 0 1"), b"!"), "STORED"),
                (with_data(&format!("set {key} 0 0 1"), b"7"), "STORED"),
                (format!("incr {key} 1\r\n").into_bytes(), "8"),
                (format!("decr {key} 1\r\n").into_bytes(), "7"),
            ] {
                assert_eq!(c.call(request), reply);
                let now = unique(&mut c);
                assert!(!seen.contains(&now), "{now} reused after {reply}");
                seen.push(now);
            }
        }
    });
}

#[test]
fn noreply_sends_nothing_whatever_the_outcome() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("tp-noreply-", 4) {
            let missing = format!("{key}-missing");
            let counter = format!("{key}-n");
            // Successes and failures alike, in one write, then a fence: the
            // fence's reply must be the very next line.
            let mut batch = Vec::new();
            for (line, data) in [
                (format!("set {key} 1 0 1 noreply"), &b"a"[..]),
                (format!("add {key} 2 0 1 noreply"), b"b"),
                (format!("replace {missing} 2 0 1 noreply"), b"c"),
                (format!("append {key} 0 0 1 noreply"), b"z"),
                (format!("prepend {key} 0 0 1 noreply"), b"y"),
                (format!("append {missing} 0 0 1 noreply"), b"z"),
                (format!("cas {key} 0 0 1 1 noreply"), b"q"),
                (format!("cas {missing} 0 0 1 1 noreply"), b"q"),
                (format!("set {counter} 0 0 2 noreply"), b"10"),
            ] {
                batch.extend(with_data(&line, data));
            }
            for line in [
                format!("incr {counter} 5 noreply"),
                format!("decr {counter} 2 noreply"),
                format!("incr {missing} 1 noreply"),
                format!("touch {key} 0 noreply"),
                format!("touch {missing} 0 noreply"),
                format!("delete {missing} noreply"),
                format!("delete {missing} 0 noreply"),
            ] {
                batch.extend(format!("{line}\r\n").into_bytes());
            }
            c.send(&batch);
            c.fence();
            assert_eq!(c.get(&key), Some((b"yaz".to_vec(), 1)));
            assert_eq!(c.get(&counter), Some((b"13".to_vec(), 0)));
            assert_eq!(c.get(&missing), None);
            c.send(format!("delete {key} noreply\r\n"));
            c.fence();
            assert_eq!(c.get(&key), None);
        }
    });
}

#[test]
fn delete_removes_once() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("tp-delete-", 4) {
            c.set(&key, 0, b"v");
            assert_eq!(c.call(format!("delete {key}\r\n")), "DELETED");
            assert_eq!(c.get(&key), None);
            assert_eq!(c.call(format!("delete {key}\r\n")), "NOT_FOUND");
            // A hold time of 0 is still accepted, as before 1.4; any other
            // is refused with memcached's usage text.
            c.set(&key, 0, b"v");
            assert_eq!(c.call(format!("delete {key} 0\r\n")), "DELETED");
            for extra in ["1", "x", "0 x"] {
                assert_eq!(
                    c.call(format!("delete {key} {extra}\r\n")),
                    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
                    "delete {key} {extra}"
                );
            }
        }
    });
}

// ---------------------------------------------------------------------------
// incr / decr

#[test]
fn incr_and_decr_count_in_decimal_and_need_an_item() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("tp-incr-", 4) {
            assert_eq!(c.call(format!("incr {key} 1\r\n")), "NOT_FOUND");
            assert_eq!(c.call(format!("decr {key} 1\r\n")), "NOT_FOUND");
            assert_eq!(c.get(&key), None, "incr never creates");
            c.set(&key, 42, b"10");
            assert_eq!(c.call(format!("incr {key} 5\r\n")), "15");
            assert_eq!(c.call(format!("incr {key} 0\r\n")), "15");
            assert_eq!(c.call(format!("decr {key} 3\r\n")), "12");
            // Growing by a digit; the flags stay.
            assert_eq!(c.call(format!("incr {key} 990\r\n")), "1002");
            assert_eq!(c.get(&key), Some((b"1002".to_vec(), 42)));
        }
    });
}

#[test]
fn decr_stops_at_zero_and_incr_wraps_at_64_bits() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("tp-wrap-", 4) {
            c.set(&key, 0, b"10");
            assert_eq!(c.call(format!("decr {key} 100\r\n")), "0");
            assert_eq!(c.call(format!("decr {key} 1\r\n")), "0");
            assert_eq!(
                c.call(format!("incr {key} 18446744073709551615\r\n")),
                "18446744073709551615"
            );
            assert_eq!(c.call(format!("incr {key} 1\r\n")), "0");
            c.set(&key, 0, b"18446744073709551615");
            assert_eq!(c.call(format!("incr {key} 2\r\n")), "1");
            // The shorter result may be stored space-padded (memcached
            // writes it in place, "1" and 19 spaces); it still counts.
            let (value, _) = c.get(&key).expect("the counter");
            assert_eq!(String::from_utf8_lossy(&value).trim_end(), "1", "{value:?}");
            assert_eq!(c.call(format!("incr {key} 1\r\n")), "2");
        }
    });
}

#[test]
fn a_shorter_result_may_be_space_padded() {
    // protocol.txt: "decrementing a number such that it loses length isn't
    // guaranteed to decrement its returned length. The number MAY be
    // space-padded at the end". memcached 1.6 stores "99 " here.
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("tp-shrink-", 4) {
            c.set(&key, 3, b"100");
            assert_eq!(c.call(format!("decr {key} 1\r\n")), "99");
            let (value, flags) = c.get(&key).expect("the counter");
            assert!(
                value == b"99" || value == b"99 ",
                "\"{}\"",
                value.escape_ascii()
            );
            assert_eq!(flags, 3);
            assert_eq!(c.call(format!("incr {key} 1\r\n")), "100");
            assert_eq!(c.get(&key), Some((b"100".to_vec(), 3)));
        }
    });
}

#[test]
fn counters_are_read_as_memcached_reads_them() {
    // memcached runs strtoull over the item's data: any number of leading
    // zeros, whitespace around, a sign, and anything after whitespace.
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("tp-strtoull-", 2) {
            for (value, read) in [
                (&b"018446744073709551615"[..], "18446744073709551615"),
                (b"0000000000000000000000012", "12"),
                (b" 12 ", "12"),
                (b"12 apples", "12"),
                (b"\t7", "7"),
                (b"+5", "5"),
                (b"-0", "0"),
            ] {
                c.set(&key, 0, value);
                assert_eq!(
                    c.call(format!("decr {key} 0\r\n")),
                    read,
                    "\"{}\"",
                    value.escape_ascii()
                );
                assert_eq!(c.get(&key), Some((read.as_bytes().to_vec(), 0)));
            }
        }
    });
}

#[test]
fn incr_refuses_non_numeric_values_and_bad_deltas() {
    each_server(|t| {
        let mut c = t.conn();
        for key in t.keys("tp-badincr-", 4) {
            for value in [&b"abc"[..], b"", b"-5", b"12a", b"18446744073709551616"] {
                c.set(&key, 0, value);
                for cmd in ["incr", "decr"] {
                    assert_eq!(
                        c.call(format!("{cmd} {key} 1\r\n")),
                        "CLIENT_ERROR cannot increment or decrement non-numeric value",
                        "{cmd} of \"{}\"",
                        value.escape_ascii()
                    );
                }
                assert_eq!(c.get(&key), Some((value.to_vec(), 0)), "left as it was");
            }
            c.set(&key, 0, b"5");
            for delta in ["abc", "-1", "18446744073709551616", "1x"] {
                assert_eq!(
                    c.call(format!("incr {key} {delta}\r\n")),
                    "CLIENT_ERROR invalid numeric delta argument",
                    "delta {delta}"
                );
            }
            assert_eq!(c.call(format!("incr {key}\r\n")), "ERROR");
            assert_eq!(c.get(&key), Some((b"5".to_vec(), 0)));
        }
    });
}

// ---------------------------------------------------------------------------
// Expiry: touch, gat, gats, flush_all

/// Asserts which of `keys` are live.
fn expect_live(c: &mut TextConn, keys: &[String], live: bool, when: &str) {
    for key in keys {
        assert_eq!(c.get(key).is_some(), live, "{key} {when}");
    }
}

#[test]
fn exptime_is_relative_up_to_thirty_days_then_absolute_and_negative_expires() {
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-exp-", 5);
        let now = c.server_time();
        let store = |c: &mut TextConn, key: &str, exptime: i64| {
            assert_eq!(
                c.call(with_data(&format!("set {key} 0 {exptime} 1"), b"v")),
                "STORED"
            );
        };
        store(&mut c, &keys[0], 10);
        store(&mut c, &keys[1], (now + 20) as i64);
        store(&mut c, &keys[2], THIRTY_DAYS as i64);
        // Above 30 days is a Unix time, here long past: expired at once.
        store(&mut c, &keys[3], THIRTY_DAYS as i64 + 1);
        store(&mut c, &keys[4], -1);
        expect_live(&mut c, &keys[3..], false, "with a past expiry");
        t.advance_secs(9);
        expect_live(&mut c, &keys[..3], true, "at 9 s");
        t.advance_secs(1);
        expect_live(&mut c, &keys[..1], false, "at 10 s");
        expect_live(&mut c, &keys[1..3], true, "at 10 s");
        t.advance_secs(10);
        expect_live(&mut c, &keys[1..2], false, "at its Unix time");
        expect_live(&mut c, &keys[2..3], true, "at 20 s");
    });
}

#[test]
fn append_and_prepend_keep_the_expiry() {
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-concat-exp-", 4);
        for key in &keys {
            assert_eq!(
                c.call(with_data(&format!("set {key} 0 10 1"), b"m")),
                "STORED"
            );
            assert_eq!(
                c.call(with_data(&format!("append {key} 0 0 1"), b"a")),
                "STORED"
            );
            assert_eq!(
                c.call(with_data(&format!("prepend {key} 0 0 1"), b"p")),
                "STORED"
            );
        }
        t.advance_secs(9);
        expect_live(&mut c, &keys, true, "at 9 s");
        t.advance_secs(1);
        expect_live(&mut c, &keys, false, "at 10 s");
    });
}

#[test]
fn touch_sets_a_new_expiry() {
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-touch-", 4);
        for key in &keys {
            c.set(key, 0, b"v");
            assert_eq!(c.call(format!("touch {key} 10\r\n")), "TOUCHED");
            assert_eq!(c.call(format!("touch {key}-missing 10\r\n")), "NOT_FOUND");
            assert_eq!(c.get(&format!("{key}-missing")), None);
            assert_eq!(
                c.call(format!("touch {key} abc\r\n")),
                "CLIENT_ERROR invalid exptime argument"
            );
            assert_eq!(c.call(format!("touch {key}\r\n")), "ERROR");
        }
        t.advance_secs(5);
        // Touching again restarts the count; noreply sends nothing.
        for key in &keys {
            c.send(format!("touch {key} 10 noreply\r\n"));
        }
        c.fence();
        t.advance_secs(9);
        expect_live(&mut c, &keys, true, "9 s after the second touch");
        // A touch to 0 makes an item immortal.
        c.send(format!("touch {} 0\r\n", keys[0]));
        assert_eq!(c.line(), "TOUCHED");
        t.advance_secs(1);
        expect_live(&mut c, &keys[..1], true, "touched to 0");
        expect_live(&mut c, &keys[1..], false, "10 s after the second touch");
    });
}

#[test]
fn gat_and_gats_return_items_and_set_their_expiry() {
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-gat-", 6);
        let missing = t.keys("tp-gat-missing-", 2);
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(
                c.call(with_data(&format!("set {key} {i} 5 2"), b"gv")),
                "STORED"
            );
        }
        let asked = format!(
            "{} {} {}",
            joined(&keys[..3]),
            missing[0],
            joined(&keys[3..])
        );
        let expected: Vec<Item> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| hit(k, i as u32, b"gv"))
            .collect();
        assert_eq!(c.retrieve(&format!("gat 100 {asked}")), expected);
        let with_cas = c.retrieve(&format!("gats 100 {asked}"));
        assert_eq!(
            with_cas.iter().map(Item::without_cas).collect::<Vec<_>>(),
            expected
        );
        let gets = c.retrieve(&format!("gets {}", joined(&keys)));
        assert_eq!(gets, with_cas, "gats sends the same cas as gets");
        assert_eq!(c.retrieve(&format!("gat 100 {}", joined(&missing))), vec![]);
        assert_eq!(
            c.call(format!("gat abc {}\r\n", keys[0])),
            "CLIENT_ERROR invalid exptime argument"
        );
        assert_eq!(c.call("gats\r\n"), "ERROR");
        // The items outlive their 5 s, up to gat's 100 s.
        t.advance_secs(99);
        expect_live(&mut c, &keys, true, "at 99 s");
        // gat with a negative expiry returns the item, then it is gone.
        assert_eq!(c.retrieve(&format!("gat -1 {}", keys[0])), expected[..1]);
        expect_live(&mut c, &keys[..1], false, "after gat -1");
        t.advance_secs(1);
        expect_live(&mut c, &keys, false, "at 100 s");
    });
}

#[test]
fn flush_all_invalidates_every_item_on_every_worker() {
    each_server(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-flush-", 8);
        for key in &keys {
            c.set(key, 0, b"v");
        }
        assert_eq!(c.call("flush_all\r\n"), "OK");
        expect_live(&mut c, &keys, false, "after flush_all");
        assert_eq!(c.retrieve(&format!("gets {}", joined(&keys))), vec![]);
        // Items stored after it live; add sees the flushed key as absent.
        for key in &keys {
            assert_eq!(
                c.call(with_data(&format!("add {key} 0 0 1"), b"n")),
                "STORED"
            );
        }
        c.send("flush_all noreply\r\n");
        c.fence();
        expect_live(&mut c, &keys, false, "after flush_all noreply");
        c.set(&keys[0], 0, b"v");
        assert_eq!(c.call("flush_all 0\r\n"), "OK");
        expect_live(&mut c, &keys[..1], false, "after flush_all 0");
        assert_eq!(
            c.call("flush_all abc\r\n"),
            "CLIENT_ERROR invalid exptime argument"
        );
    });
}

#[test]
fn flush_all_with_a_delay_takes_effect_when_the_clock_passes_it() {
    each_server_with_clock(|t| {
        let mut c = t.conn();
        let early = t.keys("tp-dflush-early-", 8);
        let middle = t.keys("tp-dflush-middle-", 8);
        let late = t.keys("tp-dflush-late-", 8);
        let set_all = |c: &mut TextConn, keys: &[String]| {
            for key in keys {
                c.set(key, 0, b"v");
            }
        };
        set_all(&mut c, &early);
        assert_eq!(c.call("flush_all 10\r\n"), "OK");
        expect_live(&mut c, &early, true, "just after flush_all 10");
        t.advance_secs(5);
        set_all(&mut c, &middle);
        // memcached counts whole seconds and flushes up to a second early;
        // 8 s is before the deadline either way.
        t.advance_secs(3);
        expect_live(&mut c, &early, true, "8 s into a 10 s delay");
        expect_live(&mut c, &middle, true, "8 s into a 10 s delay");
        t.advance_secs(3);
        expect_live(&mut c, &early, false, "past the delay");
        expect_live(&mut c, &middle, false, "past the delay (stored before it)");
        t.advance_secs(1);
        set_all(&mut c, &late);
        t.advance_secs(60);
        expect_live(&mut c, &late, true, "stored after the deadline");

        c.send("flush_all 20 noreply\r\n");
        c.fence();
        t.advance_secs(18);
        expect_live(&mut c, &late, true, "18 s into a 20 s delay");
        t.advance_secs(3);
        expect_live(&mut c, &late, false, "past the noreply delay");
    });
}

// ---------------------------------------------------------------------------
// version, verbosity, quit

#[test]
fn version_is_a_dotted_version_number() {
    each_server(|t| {
        let mut c = t.conn();
        let line = c.call("version\r\n");
        let version = line
            .strip_prefix("VERSION ")
            .unwrap_or_else(|| panic!("{line:?}"));
        let parts: Vec<&str> = version.splitn(3, '.').collect();
        assert_eq!(parts.len(), 3, "major.minor.patch: {line:?}");
        let number = |s: &str| -> u64 {
            let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap_or_else(|_| panic!("{line:?}"))
        };
        assert!(number(parts[0]) >= 1, "{line:?}");
        number(parts[1]);
        number(parts[2]);
        // The same as STAT version.
        assert_eq!(c.stats("").text("version"), version);
    });
}

#[test]
fn verbosity_answers_ok() {
    each_server(|t| {
        let mut c = t.conn();
        assert_eq!(c.call("verbosity 1\r\n"), "OK");
        assert_eq!(c.call("verbosity 0\r\n"), "OK");
        c.send("verbosity 0 noreply\r\n");
        c.fence();
        assert_eq!(c.call("verbosity\r\n"), "ERROR");
        assert_eq!(
            c.call("verbosity abc\r\n"),
            "CLIENT_ERROR bad command line format"
        );
    });
}

#[test]
fn quit_closes_the_connection_after_the_replies_before_it() {
    each_server(|t| {
        let key = &t.keys("tp-quit-", 1)[0];
        let mut c = t.conn();
        // Everything after quit in the same write is never run.
        c.send(format!(
            "set {key} 0 0 1\r\nq\r\nquit\r\nset {key} 0 0 1\r\nz\r\n"
        ));
        assert_eq!(c.line(), "STORED");
        c.expect_eof();
        let mut other = t.conn();
        assert_eq!(other.get(key), Some((b"q".to_vec(), 0)));
        let mut c = t.conn();
        c.send("quit\r\n");
        c.expect_eof();
    });
}

// ---------------------------------------------------------------------------
// stats

/// General stats both memcached and cafe report.
const GENERAL_STATS: [&str; 32] = [
    "pid",
    "uptime",
    "time",
    "version",
    "pointer_size",
    "curr_connections",
    "total_connections",
    "cmd_get",
    "cmd_set",
    "cmd_flush",
    "cmd_touch",
    "get_hits",
    "get_misses",
    "get_expired",
    "get_flushed",
    "delete_misses",
    "delete_hits",
    "incr_misses",
    "incr_hits",
    "decr_misses",
    "decr_hits",
    "cas_misses",
    "cas_hits",
    "cas_badval",
    "touch_hits",
    "touch_misses",
    "curr_items",
    "total_items",
    "bytes",
    "evictions",
    "limit_maxbytes",
    "threads",
];

#[test]
fn stats_reports_the_server_and_counts_commands() {
    each_server(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-stats-", 4);
        let missing = t.keys("tp-stats-missing-", 2);
        let before = c.stats("");
        for name in GENERAL_STATS {
            assert!(before.values.contains_key(name), "no {name}");
            if name != "version" {
                before.get(name);
            }
        }
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        assert!(
            before.get("time").abs_diff(wall) <= 5,
            "time {}",
            before.get("time")
        );
        assert!(before.get("curr_connections") >= 1);
        if t.is_cafe() {
            assert_eq!(before.get("pid"), u64::from(std::process::id()));
            assert_eq!(before.get("threads"), t.threads as u64);
        }

        for key in &keys {
            c.set(key, 0, b"12");
        }
        c.retrieve(&format!("get {} {} {}", keys[0], keys[1], missing[0]));
        assert_eq!(c.call(format!("delete {}\r\n", keys[2])), "DELETED");
        assert_eq!(c.call(format!("delete {}\r\n", missing[0])), "NOT_FOUND");
        assert_eq!(c.call(format!("incr {} 1\r\n", keys[3])), "13");
        assert_eq!(c.call(format!("incr {} 1\r\n", missing[1])), "NOT_FOUND");
        assert_eq!(c.call(format!("decr {} 1\r\n", keys[3])), "12");
        assert_eq!(c.call(format!("touch {} 0\r\n", keys[0])), "TOUCHED");
        assert_eq!(c.call(format!("touch {} 0\r\n", missing[1])), "NOT_FOUND");
        let gets = c.retrieve(&format!("gets {}", keys[1]));
        let unique = gets[0].cas.expect("a cas");
        assert_eq!(
            c.call(with_data(&format!("cas {} 0 0 1 {unique}", keys[1]), b"c")),
            "STORED"
        );
        assert_eq!(
            c.call(with_data(&format!("cas {} 0 0 1 {unique}", keys[1]), b"c")),
            "EXISTS"
        );
        assert_eq!(
            c.call(with_data(
                &format!("cas {} 0 0 1 {unique}", missing[1]),
                b"c"
            )),
            "NOT_FOUND"
        );

        let after = c.stats("");
        let delta = |name: &str| after.get(name) - before.get(name);
        for (name, want) in [
            ("cmd_set", 7),
            ("cmd_get", 4),
            ("get_hits", 3),
            ("get_misses", 1),
            ("delete_hits", 1),
            ("delete_misses", 1),
            ("incr_hits", 1),
            ("incr_misses", 1),
            ("decr_hits", 1),
            ("touch_hits", 1),
            ("touch_misses", 1),
            ("cmd_touch", 2),
            ("cas_hits", 1),
            ("cas_badval", 1),
            ("cas_misses", 1),
            ("total_items", 5),
        ] {
            assert_eq!((name, delta(name)), (name, want));
        }
        assert_eq!(after.get("curr_items"), before.get("curr_items") + 3);
        assert!(after.get("bytes") > before.get("bytes"));
    });
}

#[test]
fn stats_reset_zeroes_the_counters() {
    each_server(|t| {
        let mut c = t.conn();
        let key = &t.keys("tp-reset-", 1)[0];
        c.set(key, 0, b"v");
        c.get(key);
        assert_eq!(c.call("stats reset\r\n"), "RESET");
        let s = c.stats("");
        for name in ["cmd_get", "get_hits", "cmd_set", "total_connections"] {
            assert_eq!((name, s.get(name)), (name, 0));
        }
        assert!(s.get("curr_items") >= 1, "items stay");
        assert!(s.get("curr_connections") >= 1);
    });
}

#[test]
fn stats_settings_reports_the_limits() {
    each_server(|t| {
        let mut c = t.conn();
        let s = c.stats("settings");
        assert_eq!(s.get("item_size_max"), ITEM_LIMIT as u64);
        assert!(s.get("maxbytes") > 0);
        // memcached's `-b` and cafe's `--listen-backlog` default alike.
        assert_eq!(s.get("tcp_backlog"), 1024);
        if t.is_cafe() {
            assert_eq!(s.get("num_threads"), t.threads as u64);
        } else {
            assert!(s.get("num_threads") > 0);
        }
    });
}

/// Whether `name` is `DIGITS:WORD`.
fn numbered(name: &str) -> bool {
    name.split_once(':').is_some_and(|(n, w)| {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !w.is_empty()
    })
}

#[test]
fn stats_items_slabs_sizes_and_conns_are_well_formed_stat_lists() {
    // What these groups hold is memcached's slab allocator and connection
    // table: a server without them may report none. Whatever is reported
    // must have memcached's shape, and the connection stays usable.
    each_server(|t| {
        let mut c = t.conn();
        let key = &t.keys("tp-groups-", 1)[0];
        c.set(key, 0, b"v");
        let items = c.stats("items");
        for name in &items.names {
            let rest = name.strip_prefix("items:").unwrap_or(name);
            assert!(name.starts_with("items:") && numbered(rest), "{name}");
        }
        let slabs = c.stats("slabs");
        for name in &slabs.names {
            assert!(
                numbered(name) || name == "active_slabs" || name == "total_malloced",
                "{name}"
            );
        }
        let sizes = c.stats("sizes");
        for name in &sizes.names {
            assert!(
                name == "sizes_status"
                    || name == "sizes_error"
                    || name.bytes().all(|b| b.is_ascii_digit()),
                "{name}"
            );
        }
        let conns = c.stats("conns");
        for name in &conns.names {
            assert!(numbered(name), "{name}");
        }
        c.fence();
        assert_eq!(c.get(key), Some((b"v".to_vec(), 0)));
    });
}

#[test]
fn stats_of_an_unknown_group_is_an_error() {
    each_server(|t| {
        let mut c = t.conn();
        assert_eq!(c.call("stats bogus\r\n"), "ERROR");
        c.fence();
    });
}

#[test]
fn stats_workers_reports_each_worker() {
    // cafe's own group (memcached answers ERROR): each worker's memory
    // counters, named worker:ID:NAME, summing to the totals.
    each_cafe_server(|t| {
        let mut c = t.conn();
        for key in t.keys("tp-workers-", 4 * t.threads) {
            c.set(&key, 0, b"v");
        }
        let total = c.stats("").get("curr_items");
        let s = c.stats("workers");
        let mut sum = 0;
        for id in 0..t.threads {
            let items = s.get(&format!("worker:{id}:curr_items"));
            assert!(items >= 4, "worker {id} holds {items}");
            sum += items;
        }
        assert_eq!(sum, total);
        assert!(
            !s.values
                .contains_key(&format!("worker:{}:curr_items", t.threads)),
            "{:?}",
            s.names
        );
    });
}

// ---------------------------------------------------------------------------
// Refused requests

/// Sends `request` on a new connection and checks the reply bytes, then
/// that the connection still serves.
fn refused(t: &Target, request: &[u8], reply: &str) {
    let mut c = t.conn();
    c.send(request);
    c.expect(reply);
    c.fence();
}

#[test]
fn unknown_commands_are_answered_error() {
    each_server(|t| {
        for (request, reply) in [
            (&b"bogus\r\n"[..], "ERROR\r\n"),
            (b"bogus\n", "ERROR\r\n"),
            // Command names are case-sensitive; the data line that follows
            // is read as a command too.
            (b"SET k 0 0 1\r\nx\r\n", "ERROR\r\nERROR\r\n"),
            (b"GET k\r\n", "ERROR\r\n"),
            (b"GET /\r\n", "ERROR\r\n"),
            (b"\r\n", "ERROR\r\n"),
            (b"   \r\n", "ERROR\r\n"),
            // Known commands with too few arguments.
            (b"get\r\n", "ERROR\r\n"),
            (b"gets \r\n", "ERROR\r\n"),
            (b"gat\r\n", "ERROR\r\n"),
            (b"set k 0 0\r\n", "ERROR\r\n"),
            (b"cas k 0 0 1\r\nx\r\n", "ERROR\r\nERROR\r\n"),
            (b"delete\r\n", "ERROR\r\n"),
            (b"incr k\r\n", "ERROR\r\n"),
            (b"touch k\r\n", "ERROR\r\n"),
            // ... or too many.
            (b"set k 0 0 1 noreply x\r\nx\r\n", "ERROR\r\nERROR\r\n"),
        ] {
            refused(t, request, reply);
        }
    });
}

#[test]
fn bad_numbers_in_a_storage_command_are_client_errors() {
    // A refused storage line does not swallow its data block: the block is
    // then read as a command line (here "x": ERROR).
    each_server(|t| {
        let key = &t.keys("tp-badnum-", 1)[0];
        for line in [
            format!("set {key} 0 0 -1"),
            format!("set {key} 0 0 abc"),
            format!("set {key} 0 0 1x"),
            format!("set {key} abc 0 1"),
            format!("set {key} -1 0 1"),
            format!("set {key} 0 abc 1"),
            format!("add {key} 0 0 -5"),
            format!("cas {key} 0 0 1 abc"),
            format!("cas {key} 0 0 1 -1"),
        ] {
            refused(
                t,
                &with_data(&line, b"x"),
                "CLIENT_ERROR bad command line format\r\nERROR\r\n",
            );
        }
        let mut c = t.conn();
        assert_eq!(c.get(key), None, "nothing was stored");
    });
}

#[test]
fn keys_longer_than_250_bytes_are_refused() {
    each_server(|t| {
        let long = "k".repeat(251);
        let max = "m".repeat(250);
        let mut c = t.conn();
        c.set(&max, 9, b"250");
        assert_eq!(c.get(&max), Some((b"250".to_vec(), 9)));
        // The data block after a refused set is read as a command.
        refused(
            t,
            &with_data(&format!("set {long} 0 0 1"), b"x"),
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        );
        for line in [
            format!("get {long}"),
            format!("gets {long}"),
            // A long key anywhere refuses the whole get: no VALUE, no END.
            format!("get {max} {long}"),
            format!("gat 0 {long}"),
            format!("delete {long}"),
            format!("incr {long} 1"),
            format!("decr {long} 1"),
            format!("touch {long} 0"),
        ] {
            refused(
                t,
                format!("{line}\r\n").as_bytes(),
                "CLIENT_ERROR bad command line format\r\n",
            );
        }
    });
}

#[test]
fn a_data_block_not_ending_in_crlf_is_a_bad_data_chunk() {
    // memcached reads exactly <bytes> + 2 bytes, refuses the store if the
    // last two are not \r\n, and reads on from there: the leftover "\r\n"
    // (or "\n") is an empty command line, ERROR.
    each_server(|t| {
        for key in t.keys("tp-chunk-", 2) {
            let mut c = t.conn();
            c.set(&key, 1, b"old");
            for data in [&b"abcde"[..], b"ab\r\n"] {
                c.send(with_data(&format!("set {key} 0 0 3"), data));
                c.expect("CLIENT_ERROR bad data chunk\r\nERROR\r\n");
                assert_eq!(c.get(&key), Some((b"old".to_vec(), 1)), "unchanged");
            }
        }
    });
}

#[test]
fn a_value_over_the_item_limit_is_refused_and_a_set_drops_the_old_value() {
    // The block is read and thrown away (the reply may come only after it),
    // and the connection goes on. A refused set also unlinks the key's old
    // item, so that a reader cannot see stale data; memcached keeps it for
    // the other storage commands.
    each_server(|t| {
        let too_big = fill(b"0123456789", ITEM_LIMIT + 1);
        let keys = t.keys("tp-big-", 2);
        for key in &keys {
            let mut c = t.conn();
            c.set(key, 3, b"old");
            c.send(with_data(
                &format!("set {key} 0 0 {}", too_big.len()),
                &too_big,
            ));
            assert_eq!(c.line(), "SERVER_ERROR object too large for cache");
            assert_eq!(c.get(key), None, "the old value is gone");

            c.set(key, 3, b"old");
            let unique = c.retrieve(&format!("gets {key}"))[0].cas.expect("cas");
            for line in [
                format!("add {key} 0 0 {}", too_big.len()),
                format!("replace {key} 0 0 {}", too_big.len()),
                format!("append {key} 0 0 {}", too_big.len()),
                format!("prepend {key} 0 0 {}", too_big.len()),
                format!("cas {key} 0 0 {} {unique}", too_big.len()),
            ] {
                c.send(with_data(&line, &too_big));
                assert_eq!(
                    c.line(),
                    "SERVER_ERROR object too large for cache",
                    "{line}"
                );
                assert_eq!(c.get(key), Some((b"old".to_vec(), 3)), "after {line}");
            }
            // noreply hides nothing here: the error is still sent.
            c.fence();
        }
        // A value well under the limit is stored and read back whole.
        // (memcached's limit counts its item header too, so exactly 1 MiB
        // of value is already too large there.)
        let mut c = t.conn();
        let large = fill(b"abcdefghijklmnopqrstuvwxyz", ITEM_LIMIT - 4096);
        c.set(&keys[0], 0, &large);
        assert_eq!(c.get(&keys[0]), Some((large, 0)));
    });
}

#[test]
fn an_overlong_command_line_closes_only_that_connection() {
    // memcached gives up on a line that passes 2048 bytes without a newline
    // (other than a get or gets): it closes the connection without a word.
    // A server may say why first; nothing else may come.
    each_server(|t| {
        let key = &t.keys("tp-longline-", 1)[0];
        let mut other = t.conn();
        other.set(key, 0, b"v");
        for line in [
            format!("set {}", "k".repeat(4092)),
            "x".repeat(4096),
            format!("mg {} v", "k".repeat(4090)),
        ] {
            let mut c = t.conn();
            c.send(&line);
            let mut rest = Vec::new();
            c.stream
                .read_to_end(&mut rest)
                .unwrap_or_else(|e| panic!("a graceful close, got {e} ({:?})", e.kind()));
            let text = String::from_utf8_lossy(&rest);
            assert!(
                text.is_empty()
                    || (text.ends_with("\r\n")
                        && text.lines().count() == 1
                        && (text.starts_with("CLIENT_ERROR ")
                            || text.starts_with("SERVER_ERROR "))),
                "before the close: {text:?}"
            );
        }
        assert_eq!(other.get(key), Some((b"v".to_vec(), 0)));
    });
}

#[test]
fn an_http_request_is_answered_error_and_closed() {
    // memcached treats an unknown command whose last word starts with
    // "HTTP/" as a stray web client and closes the connection without a
    // word; cafe answers ERROR first (PROTOCOL.md §T6), so a person who
    // pointed a tool at the wrong port learns why.
    each_server(|t| {
        let key = &t.keys("tp-http-", 1)[0];
        let mut other = t.conn();
        other.set(key, 0, b"v");
        for request in [
            "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
            "POST /submit HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
        ] {
            let mut c = t.conn();
            c.send(request);
            if t.is_cafe() {
                assert_eq!(c.line(), "ERROR");
            }
            c.expect_eof();
        }
        assert_eq!(other.get(key), Some((b"v".to_vec(), 0)));
        assert_eq!(
            other.call("bogus http/1.1\r\n"),
            "ERROR",
            "the case matters"
        );
    });
}

// ---------------------------------------------------------------------------
// Pipelines and the other protocols

#[test]
fn a_pipeline_in_one_write_is_answered_in_order() {
    each_server(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-pipe-", 24);
        let mut batch = Vec::new();
        let mut expected = String::new();
        for (i, key) in keys.iter().enumerate() {
            let value = format!("{i}");
            batch.extend(with_data(
                &format!("set {key} {i} 0 {}", value.len()),
                value.as_bytes(),
            ));
            expected.push_str("STORED\r\n");
            if i % 3 == 0 {
                batch.extend(with_data(&format!("append {key} 0 0 1 noreply"), b"0"));
            }
        }
        for (i, key) in keys.iter().enumerate() {
            let value = if i % 3 == 0 {
                format!("{i}0")
            } else {
                format!("{i}")
            };
            batch.extend(format!("get {key} {key}-missing\r\n").into_bytes());
            expected.push_str(&format!(
                "VALUE {key} {i} {}\r\n{value}\r\nEND\r\n",
                value.len()
            ));
            batch.extend(format!("incr {key} 1\r\n").into_bytes());
            expected.push_str(&format!(
                "{}\r\n",
                value.parse::<u64>().expect("a number") + 1
            ));
            batch.extend(b"bogus\r\n");
            expected.push_str("ERROR\r\n");
            batch.extend(format!("delete {key}-missing\r\n").into_bytes());
            expected.push_str("NOT_FOUND\r\n");
        }
        let all: Vec<String> = keys.iter().map(|k| format!("{k}-missing")).collect();
        batch.extend(format!("get {}\r\n", joined(&all)).into_bytes());
        expected.push_str("END\r\n");
        c.send(&batch);
        c.expect(&expected);
        c.fence();
    });
}

#[test]
fn a_pipeline_of_thousands_of_gets_keeps_its_order() {
    each_server(|t| {
        let mut c = t.conn();
        let keys = t.keys("tp-bigpipe-", 64);
        for (i, key) in keys.iter().enumerate() {
            c.set(key, i as u32, key.as_bytes());
        }
        let mut batch = Vec::new();
        let mut expected = Vec::new();
        for n in 0..3000 {
            let key = &keys[(n * 7) % keys.len()];
            batch.extend(format!("get {key}\r\n").into_bytes());
            let i = keys.iter().position(|k| k == key).expect("a key");
            expected
                .extend(format!("VALUE {key} {i} {}\r\n{key}\r\nEND\r\n", key.len()).into_bytes());
        }
        let writer = c.send_in_background(batch);
        c.expect(&expected);
        writer.join().expect("the writer");
        c.fence();
    });
}

#[test]
fn text_binary_and_native_share_items() {
    each_cafe_server(|t| {
        let server = t.server();
        let mut text = t.conn();
        let mut bin = memcache::Conn::open(server);
        let mut native = common::client(server);
        for (i, key) in spread_keys("tp-mixed-", t.threads, 8).iter().enumerate() {
            let k = std::str::from_utf8(key).expect("ASCII");
            let flags = 0x0001_0000 + i as u32;
            // Text to binary and native (native sees the low 16 bits).
            text.set(k, flags, b"from text");
            let r = bin.call(&req::get(op::GET, 1, key));
            assert_eq!(r.status, status::NO_ERROR, "{r:?}");
            assert_eq!(
                (r.extras, r.value),
                (flags.to_be_bytes().to_vec(), b"from text".to_vec())
            );
            let gets = text.retrieve(&format!("gets {k}"));
            assert_eq!(gets[0].cas, Some(r.cas), "one cas for both protocols");
            assert_eq!(
                native.get(key).expect("native get"),
                Some(Value {
                    data: b"from text".to_vec(),
                    flags: flags as u16
                })
            );
            // Binary to text.
            let r = bin.call(&req::set(2, key, b"from binary", 0xBEEF_0001));
            assert_eq!(r.status, status::NO_ERROR, "{r:?}");
            assert_eq!(text.get(k), Some((b"from binary".to_vec(), 0xBEEF_0001)));
            // Native to text, then a text counter read by binary.
            native.set(key, b"41", 7).expect("native set");
            assert_eq!(text.get(k), Some((b"41".to_vec(), 7)));
            assert_eq!(text.call(format!("incr {k} 1\r\n")), "42");
            let r = bin.call(&req::get(op::GET, 3, key));
            assert_eq!(r.value, b"42");
            // A text delete is seen by both.
            assert_eq!(text.call(format!("delete {k}\r\n")), "DELETED");
            assert_eq!(native.get(key).expect("native get"), None);
            let r = bin.call(&req::get(op::GET, 4, key));
            assert_eq!(r.status, status::KEY_ENOENT);
        }
    });
}
