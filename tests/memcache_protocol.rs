//! The memcached binary protocol over real sockets, against memcached's
//! `protocol_binary.h`, the BinaryProtocolRevamped wiki page, and what
//! memcached's `proto_bin.c` does.
//!
//! Every test starts its own server in-process on 127.0.0.1 port 0 and runs
//! twice: at 1 worker, where every key is local, and at 4 workers, where
//! keys are chosen (with the crate's public, fixed [`Router`]) so that every
//! worker owns some, and most requests are forwarded to another worker.
//!
//! Requests are built byte by byte (24-byte header, then extras, key and
//! value, big-endian), and responses are read and taken apart byte by byte,
//! by `common::memcache`, independently of `cafe::protocol::memcache`, so a
//! bug the codec's encoder and decoder share cannot hide. Opcodes and
//! statuses there, and the error texts here, are written out from
//! memcached's `protocol_binary.h` and `write_bin_error`.
//!
//! Nothing here sleeps: `Server::start` returns once the server listens,
//! expiry is driven by a `ManualClock`, and every socket has a read timeout
//! so a server that fails to answer fails the test instead of hanging it.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use cafe::client::Value;
use cafe::clock::ManualClock;
use cafe::protocol::native::Limits;
use cafe::server::ServerHandle;

mod common;
use common::memcache::{Conn, Resp, empty, op, req, status};
use common::{
    Rng, RngExt, fill, for_each_worker_count, spread_keys, start, start_with_clock,
    start_with_limits,
};

/// memcached reads an expiry above this many seconds (30 days) as a Unix
/// time (`REALTIME_MAXDELTA`).
const THIRTY_DAYS: u32 = 60 * 60 * 24 * 30;

/// The INCR/DECR expiry that says "do not create a missing counter".
const NO_CREATE: u32 = 0xffff_ffff;

/// memcached's key limit, and a value limit small enough that a value over
/// it is cheap to send.
const SMALL_VALUES: Limits = Limits {
    max_key_len: 250,
    max_value_len: 64,
};

/// The value of an error response: the text memcached's `write_bin_error`
/// sends for the status.
fn error_text(code: u16) -> &'static str {
    match code {
        status::KEY_ENOENT => "Not found",
        status::KEY_EEXISTS => "Data exists for key.",
        status::E2BIG => "Too large.",
        status::EINVAL => "Invalid arguments",
        status::NOT_STORED => "Not stored.",
        status::DELTA_BADVAL => "Non-numeric server-side value for incr or decr",
        status::UNKNOWN_COMMAND => "Unknown command",
        other => panic!("no error text for status 0x{other:02x}"),
    }
}

// ---------------------------------------------------------------------------
// Expected responses

/// An error as `write_bin_error` writes it: no extras or key, cas 0, the
/// status text as value.
fn error(opcode: u8, opaque: u32, code: u16) -> Resp {
    Resp {
        status: code,
        value: error_text(code).as_bytes().to_vec(),
        ..empty(opcode, opaque)
    }
}

/// A read that found the item: flags in 4 bytes of extras, the key only for
/// GETK/GATK and their quiet forms, the value except for TOUCH.
fn hit(opcode: u8, opaque: u32, cas: u64, flags: u32, key: &[u8], value: &[u8]) -> Resp {
    Resp {
        cas,
        extras: flags.to_be_bytes().to_vec(),
        key: key.to_vec(),
        value: value.to_vec(),
        ..empty(opcode, opaque)
    }
}

/// A GETK or GATK miss: KEY_ENOENT carrying the key and nothing else.
fn key_miss(opcode: u8, opaque: u32, key: &[u8]) -> Resp {
    Resp {
        status: status::KEY_ENOENT,
        key: key.to_vec(),
        ..empty(opcode, opaque)
    }
}

/// An INCR or DECR result: the new value as 8 bytes, the item's cas.
fn counter(opcode: u8, opaque: u32, cas: u64, value: u64) -> Resp {
    Resp {
        cas,
        value: value.to_be_bytes().to_vec(),
        ..empty(opcode, opaque)
    }
}

/// Checks a store's success (empty, non-zero cas) and returns the cas.
fn stored_cas(r: &Resp, opcode: u8, opaque: u32) -> u64 {
    assert_eq!(r.with_cas(0), empty(opcode, opaque), "a stored reply");
    assert_ne!(r.cas, 0, "a store returns the item's cas: {r:?}");
    r.cas
}

/// Checks a counter reply with a non-zero cas and returns the cas.
fn counter_cas(r: &Resp, opcode: u8, opaque: u32, value: u64) -> u64 {
    assert_eq!(r.with_cas(0), counter(opcode, opaque, 0, value));
    assert_ne!(r.cas, 0, "a counter reply carries the item's cas: {r:?}");
    r.cas
}

/// Moves the server's clock forward by whole seconds.
fn advance(clock: &ManualClock, secs: u64) {
    clock.advance_ms(secs * 1000);
}

// The expiry tests store a set of keys, move the clock, and read them all
// back; these do it with opaque = the key's index, so a reply out of place
// shows.

/// SETs every key to `value` with `flags` and `exptime`, and checks each is
/// stored.
fn store_all(c: &mut Conn, keys: &[Vec<u8>], value: &[u8], flags: u32, exptime: u32) {
    for (i, key) in keys.iter().enumerate() {
        let o = i as u32;
        let r = c.call(&req::store(op::SET, o, 0, key, value, flags, exptime));
        stored_cas(&r, op::SET, o);
    }
}

/// Reads every key with GET or GETK and checks it holds `value` with
/// `flags` (whatever its cas).
fn expect_all_hit(c: &mut Conn, opcode: u8, keys: &[Vec<u8>], flags: u32, value: &[u8]) {
    for (i, key) in keys.iter().enumerate() {
        let o = i as u32;
        let echoed: &[u8] = if opcode == op::GETK { key } else { b"" };
        let r = c.call(&req::get(opcode, o, key));
        assert_eq!(r.with_cas(0), hit(opcode, o, 0, flags, echoed, value));
    }
}

/// Reads every key with GET or GETK and checks it is gone: KEY_ENOENT,
/// with the key for GETK.
fn expect_all_gone(c: &mut Conn, opcode: u8, keys: &[Vec<u8>], when: &str) {
    for (i, key) in keys.iter().enumerate() {
        let o = i as u32;
        let want = if opcode == op::GETK {
            key_miss(op::GETK, o, key)
        } else {
            error(opcode, o, status::KEY_ENOENT)
        };
        assert_eq!(c.call(&req::get(opcode, o, key)), want, "{when}");
    }
}

// The closing tests (QUIT, malformed frames, bad magic) send a batch that
// stores and reads every key before the frame that ends the connection, so
// that the replies owed before it are seen to come.

/// A SET of every key (opaque `i`) and a GETK of it (opaque `0x100 + i`).
fn set_and_getk_all(keys: &[Vec<u8>], value: &[u8], flags: u32) -> Vec<u8> {
    let mut batch = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        batch.extend(req::set(i as u32, key, value, flags));
        batch.extend(req::get(op::GETK, 0x100 + i as u32, key));
    }
    batch
}

/// Reads the replies to [`set_and_getk_all`]: every SET stored, every GETK
/// a hit on what that SET stored.
fn expect_set_and_getk_all(c: &mut Conn, keys: &[Vec<u8>], value: &[u8], flags: u32, when: &str) {
    for (i, key) in keys.iter().enumerate() {
        let cas = stored_cas(&c.recv(), op::SET, i as u32);
        let o = 0x100 + i as u32;
        assert_eq!(c.recv(), hit(op::GETK, o, cas, flags, key, value), "{when}");
    }
}

/// Checks from a new connection that `key`, stored only after a frame that
/// closed the connection, was never stored.
fn expect_never_stored(server: &ServerHandle, key: &[u8], when: &str) {
    let mut other = Conn::open(server);
    assert_eq!(
        other.call(&req::get(op::GETK, 1, key)),
        key_miss(op::GETK, 1, key),
        "{when}"
    );
}

// ---------------------------------------------------------------------------
// Reads

#[test]
fn get_forms_hit_with_32_bit_flags_and_cas() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let flags = [
            0u32,
            1,
            0xFFFF,
            0x1_0000,
            0x8000_0000,
            0xDEAD_BEEF,
            u32::MAX,
            0x0102_0304,
        ];
        let keys = spread_keys("get", threads, flags.len());
        for (i, (key, &f)) in keys.iter().zip(&flags).enumerate() {
            let o = 0x100 * i as u32;
            // An empty value, and values with bytes a text protocol would
            // choke on.
            let value = match i {
                0 => Vec::new(),
                _ => [format!("value {i}\0\r\n").as_bytes(), b"\x80\xff"].concat(),
            };
            let cas = stored_cas(&c.call(&req::set(o, key, &value, f)), op::SET, o);
            assert_eq!(
                c.call(&req::get(op::GET, o + 1, key)),
                hit(op::GET, o + 1, cas, f, b"", &value)
            );
            assert_eq!(
                c.call(&req::get(op::GETK, o + 2, key)),
                hit(op::GETK, o + 2, cas, f, key, &value)
            );
            // The quiet forms answer a hit like the loud ones.
            let mut batch = req::get(op::GETQ, o + 3, key);
            batch.extend(req::get(op::GETKQ, o + 4, key));
            c.send(&batch);
            assert_eq!(c.recv(), hit(op::GETQ, o + 3, cas, f, b"", &value));
            assert_eq!(c.recv(), hit(op::GETKQ, o + 4, cas, f, key, &value));
            c.fence(o + 5);
        }
    });
}

#[test]
fn get_forms_miss_and_quiet_misses_send_nothing() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        for (i, key) in spread_keys("absent", threads, 8).iter().enumerate() {
            let o = 0xABC0_0000 + 0x10 * i as u32;
            assert_eq!(
                c.call(&req::get(op::GET, o, key)),
                error(op::GET, o, status::KEY_ENOENT)
            );
            // GETK's miss carries the key instead of a message.
            assert_eq!(
                c.call(&req::get(op::GETK, o + 1, key)),
                key_miss(op::GETK, o + 1, key)
            );
            let mut batch = req::get(op::GETQ, o + 2, key);
            batch.extend(req::get(op::GETKQ, o + 3, key));
            c.send(&batch);
            c.fence(o + 4);
        }
    });
}

// ---------------------------------------------------------------------------
// Stores

#[test]
fn add_and_replace_are_conditional_and_quiet_forms_answer_only_failures() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("cond", threads, 8);
        for (i, key) in keys.iter().enumerate() {
            let o = 0x1000 * i as u32;
            assert_eq!(
                c.call(&req::store(op::REPLACE, o, 0, key, b"r", 1, 0)),
                error(op::REPLACE, o, status::KEY_ENOENT)
            );
            assert_eq!(
                c.call(&req::get(op::GET, o + 1, key)),
                error(op::GET, o + 1, status::KEY_ENOENT)
            );
            let r = c.call(&req::store(op::ADD, o + 2, 0, key, b"added", 0xA, 0));
            let added = stored_cas(&r, op::ADD, o + 2);
            assert_eq!(
                c.call(&req::store(op::ADD, o + 3, 0, key, b"again", 0xB, 0)),
                error(op::ADD, o + 3, status::KEY_EEXISTS)
            );
            assert_eq!(
                c.call(&req::get(op::GET, o + 4, key)),
                hit(op::GET, o + 4, added, 0xA, b"", b"added")
            );
            let r = c.call(&req::store(op::REPLACE, o + 5, 0, key, b"replaced", 0xC, 0));
            let replaced = stored_cas(&r, op::REPLACE, o + 5);
            assert_ne!(replaced, added);
            assert_eq!(
                c.call(&req::get(op::GET, o + 6, key)),
                hit(op::GET, o + 6, replaced, 0xC, b"", b"replaced")
            );
            let r = c.call(&req::set(o + 7, key, b"set", 0xD));
            let set = stored_cas(&r, op::SET, o + 7);
            assert_eq!(
                c.call(&req::get(op::GETK, o + 8, key)),
                hit(op::GETK, o + 8, set, 0xD, key, b"set")
            );

            // Quiet: successes say nothing, failures are answered.
            let mut batch = req::store(op::SETQ, o + 10, 0, key, b"quiet set", 0xE, 0);
            batch.extend(req::store(op::ADDQ, o + 11, 0, key, b"no", 0, 0));
            batch.extend(req::store(
                op::REPLACEQ,
                o + 12,
                0,
                key,
                b"quiet replace",
                0xF,
                0,
            ));
            c.send(&batch);
            assert_eq!(c.recv(), error(op::ADDQ, o + 11, status::KEY_EEXISTS));
            c.fence(o + 13);
            let r = c.call(&req::get(op::GET, o + 14, key));
            assert_eq!(
                r.with_cas(0),
                hit(op::GET, o + 14, 0, 0xF, b"", b"quiet replace")
            );
            assert!(r.cas != 0 && r.cas != set, "{r:?}");
        }
        for (i, key) in spread_keys("cond-fresh", threads, 4).iter().enumerate() {
            let o = 0xF000 + 0x10 * i as u32;
            let mut batch = req::store(op::REPLACEQ, o, 0, key, b"no", 0, 0);
            batch.extend(req::store(op::ADDQ, o + 1, 0, key, b"quiet add", 0x77, 0));
            c.send(&batch);
            assert_eq!(c.recv(), error(op::REPLACEQ, o, status::KEY_ENOENT));
            c.fence(o + 2);
            let r = c.call(&req::get(op::GET, o + 3, key));
            assert_eq!(
                r.with_cas(0),
                hit(op::GET, o + 3, 0, 0x77, b"", b"quiet add")
            );
        }
    });
}

#[test]
fn every_modification_gets_a_new_cas_unique_across_workers() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("cas", threads, 4 * threads);
        let mut seen = HashSet::new();
        let mut fresh = |cas: u64, what: &str| {
            assert!(seen.insert(cas), "cas {cas} handed out twice ({what})");
            cas
        };
        let mut current = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let o = 0x10 * i as u32;
            let r = c.call(&req::set(o, key, b"7", 0));
            current.push(fresh(stored_cas(&r, op::SET, o), "set"));
        }
        for (i, key) in keys.iter().enumerate() {
            let o = 0x1_0000 + 0x100 * i as u32;
            let mut cas = current[i];
            // Reads and touches leave the cas alone.
            assert_eq!(
                c.call(&req::get(op::GET, o, key)),
                hit(op::GET, o, cas, 0, b"", b"7")
            );
            assert_eq!(
                c.call(&req::touch(op::TOUCH, o + 1, key, 0)),
                hit(op::TOUCH, o + 1, cas, 0, b"", b"")
            );
            assert_eq!(
                c.call(&req::touch(op::GAT, o + 2, key, 0)),
                hit(op::GAT, o + 2, cas, 0, b"", b"7")
            );
            // Every kind of modification hands out a new one.
            let steps: [(u8, Vec<u8>, &str); 6] = [
                (op::SET, req::set(o + 3, key, b"8", 0), "set"),
                (
                    op::REPLACE,
                    req::store(op::REPLACE, o + 3, 0, key, b"9", 0, 0),
                    "replace",
                ),
                (
                    op::APPEND,
                    req::concat(op::APPEND, o + 3, 0, key, b"1"),
                    "append",
                ),
                (
                    op::PREPEND,
                    req::concat(op::PREPEND, o + 3, 0, key, b"1"),
                    "prepend",
                ),
                (
                    op::INCREMENT,
                    req::arith(op::INCREMENT, o + 3, 0, key, 1, 0, 0),
                    "incr",
                ),
                (
                    op::DECREMENT,
                    req::arith(op::DECREMENT, o + 3, 0, key, 1, 0, 0),
                    "decr",
                ),
            ];
            for (opcode, frame, what) in steps {
                let r = c.call(&frame);
                let new = match opcode {
                    op::INCREMENT => counter_cas(&r, opcode, o + 3, 192),
                    op::DECREMENT => counter_cas(&r, opcode, o + 3, 191),
                    _ => stored_cas(&r, opcode, o + 3),
                };
                assert_ne!(new, cas, "{what} must change the cas");
                cas = fresh(new, what);
            }
            assert_eq!(
                c.call(&req::get(op::GETK, o + 4, key)),
                hit(op::GETK, o + 4, cas, 0, key, b"191")
            );
        }
    });
}

#[test]
fn cas_guards_every_modification() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        for (i, key) in spread_keys("guard", threads, 2 * threads)
            .iter()
            .enumerate()
        {
            let o = 0x1000 * i as u32;
            // A cas on a missing key: not found, and nothing is created.
            let on_missing = [
                (
                    op::SET,
                    req::store(op::SET, o, 99, key, b"x", 0, 0),
                    status::KEY_ENOENT,
                ),
                (
                    op::REPLACE,
                    req::store(op::REPLACE, o, 99, key, b"x", 0, 0),
                    status::KEY_ENOENT,
                ),
                // memcached turns any store with a cas into a compare-and-swap.
                (
                    op::ADD,
                    req::store(op::ADD, o, 99, key, b"x", 0, 0),
                    status::KEY_ENOENT,
                ),
                (
                    op::DELETE,
                    req::delete(op::DELETE, o, 99, key),
                    status::KEY_ENOENT,
                ),
                (
                    op::INCREMENT,
                    req::arith(op::INCREMENT, o, 99, key, 1, 0, NO_CREATE),
                    status::KEY_ENOENT,
                ),
                (
                    op::APPEND,
                    req::concat(op::APPEND, o, 99, key, b"x"),
                    status::NOT_STORED,
                ),
                (
                    op::SETQ,
                    req::store(op::SETQ, o, 99, key, b"x", 0, 0),
                    status::KEY_ENOENT,
                ),
            ];
            for (opcode, frame, code) in on_missing {
                assert_eq!(
                    c.call(&frame),
                    error(opcode, o, code),
                    "cas on a missing key"
                );
            }
            assert_eq!(
                c.call(&req::get(op::GETK, o + 1, key)),
                key_miss(op::GETK, o + 1, key)
            );

            let r = c.call(&req::set(o + 2, key, b"0", 2));
            let stale = stored_cas(&r, op::SET, o + 2);
            let r = c.call(&req::set(o + 3, key, b"1", 3));
            let cas = stored_cas(&r, op::SET, o + 3);

            // A stale cas: refused, quiet or not, and nothing changes.
            let o = o + 0x10;
            let refused = [
                (op::SET, req::store(op::SET, o, stale, key, b"x", 0, 0)),
                (op::SETQ, req::store(op::SETQ, o, stale, key, b"x", 0, 0)),
                (
                    op::REPLACE,
                    req::store(op::REPLACE, o, stale, key, b"x", 0, 0),
                ),
                (op::ADD, req::store(op::ADD, o, stale, key, b"x", 0, 0)),
                (op::APPEND, req::concat(op::APPEND, o, stale, key, b"x")),
                (op::PREPENDQ, req::concat(op::PREPENDQ, o, stale, key, b"x")),
                (op::DELETE, req::delete(op::DELETE, o, stale, key)),
                (op::DELETEQ, req::delete(op::DELETEQ, o, stale, key)),
                (
                    op::INCREMENT,
                    req::arith(op::INCREMENT, o, stale, key, 1, 0, 0),
                ),
                (
                    op::DECREMENTQ,
                    req::arith(op::DECREMENTQ, o, stale, key, 1, 0, 0),
                ),
            ];
            for (opcode, frame) in refused {
                assert_eq!(
                    c.call(&frame),
                    error(opcode, o, status::KEY_EEXISTS),
                    "stale cas"
                );
            }
            assert_eq!(
                c.call(&req::get(op::GET, o + 1, key)),
                hit(op::GET, o + 1, cas, 3, b"", b"1")
            );

            // The current cas: each succeeds and hands out the next one.
            let o = o + 0x10;
            let r = c.call(&req::store(op::SET, o, cas, key, b"10", 4, 0));
            let cas = stored_cas(&r, op::SET, o);
            let r = c.call(&req::store(op::REPLACE, o + 1, cas, key, b"20", 5, 0));
            let cas = stored_cas(&r, op::REPLACE, o + 1);
            let r = c.call(&req::concat(op::APPEND, o + 2, cas, key, b"0"));
            let cas = stored_cas(&r, op::APPEND, o + 2);
            let r = c.call(&req::concat(op::PREPEND, o + 3, cas, key, b"1"));
            let cas = stored_cas(&r, op::PREPEND, o + 3);
            let r = c.call(&req::arith(op::INCREMENT, o + 4, cas, key, 5, 0, 0));
            let cas = counter_cas(&r, op::INCREMENT, o + 4, 1205);
            assert_eq!(
                c.call(&req::get(op::GET, o + 5, key)),
                hit(op::GET, o + 5, cas, 5, b"", b"1205")
            );
            let r = c.call(&req::store(op::ADD, o + 6, cas, key, b"add-cas", 6, 0));
            let cas = stored_cas(&r, op::ADD, o + 6);
            assert_eq!(
                c.call(&req::get(op::GET, o + 7, key)),
                hit(op::GET, o + 7, cas, 6, b"", b"add-cas")
            );
            assert_eq!(
                c.call(&req::delete(op::DELETE, o + 8, cas, key)),
                empty(op::DELETE, o + 8)
            );
            assert_eq!(
                c.call(&req::get(op::GET, o + 9, key)),
                error(op::GET, o + 9, status::KEY_ENOENT)
            );
            // Quiet forms with the current cas succeed silently.
            let r = c.call(&req::set(o + 10, key, b"q", 7));
            let cas = stored_cas(&r, op::SET, o + 10);
            c.send(&req::store(op::SETQ, o + 11, cas, key, b"qq", 8, 0));
            c.fence(o + 12);
            let r = c.call(&req::get(op::GET, o + 13, key));
            assert_eq!(r.with_cas(0), hit(op::GET, o + 13, 0, 8, b"", b"qq"));
            c.send(&req::delete(op::DELETEQ, o + 14, r.cas, key));
            c.fence(o + 15);
            assert_eq!(
                c.call(&req::get(op::GETK, o + 16, key)),
                key_miss(op::GETK, o + 16, key)
            );
        }
    });
}

#[test]
fn delete_and_deleteq() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        for (i, key) in spread_keys("del", threads, 8).iter().enumerate() {
            let o = 0x100 * i as u32;
            assert_eq!(
                c.call(&req::delete(op::DELETE, o, 0, key)),
                error(op::DELETE, o, status::KEY_ENOENT)
            );
            stored_cas(&c.call(&req::set(o + 1, key, b"v", 1)), op::SET, o + 1);
            assert_eq!(
                c.call(&req::delete(op::DELETE, o + 2, 0, key)),
                empty(op::DELETE, o + 2)
            );
            assert_eq!(
                c.call(&req::get(op::GETK, o + 3, key)),
                key_miss(op::GETK, o + 3, key)
            );
            // DELETEQ: a hit is silent, a miss is answered.
            stored_cas(&c.call(&req::set(o + 4, key, b"v", 1)), op::SET, o + 4);
            let mut batch = req::delete(op::DELETEQ, o + 5, 0, key);
            batch.extend(req::delete(op::DELETEQ, o + 6, 0, key));
            c.send(&batch);
            assert_eq!(c.recv(), error(op::DELETEQ, o + 6, status::KEY_ENOENT));
            c.fence(o + 7);
            assert_eq!(
                c.call(&req::get(op::GET, o + 8, key)),
                error(op::GET, o + 8, status::KEY_ENOENT)
            );
        }
    });
}

#[test]
fn incr_and_decr_create_wrap_stop_at_zero_and_refuse_text() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        for (i, key) in spread_keys("ctr", threads, 2 * threads).iter().enumerate() {
            let o = 0x1000 * i as u32;
            let call = |c: &mut Conn, opcode, o, cas, delta, initial, exptime| {
                c.call(&req::arith(opcode, o, cas, key, delta, initial, exptime))
            };
            // Missing, with the "do not create" expiry.
            for opcode in [op::INCREMENT, op::DECREMENT] {
                assert_eq!(
                    call(&mut c, opcode, o, 0, 1, 5, NO_CREATE),
                    error(opcode, o, status::KEY_ENOENT)
                );
            }
            assert_eq!(
                c.call(&req::get(op::GETK, o, key)),
                key_miss(op::GETK, o, key)
            );
            // Missing otherwise: created with `initial`, delta not applied.
            let r = call(&mut c, op::INCREMENT, o + 1, 0, 7, 100, 0);
            let cas = counter_cas(&r, op::INCREMENT, o + 1, 100);
            assert_eq!(
                c.call(&req::get(op::GET, o + 2, key)),
                hit(op::GET, o + 2, cas, 0, b"", b"100")
            );
            let r = call(&mut c, op::INCREMENT, o + 3, 0, 7, 0, 0);
            let cas = counter_cas(&r, op::INCREMENT, o + 3, 107);
            assert_eq!(
                c.call(&req::get(op::GET, o + 4, key)),
                hit(op::GET, o + 4, cas, 0, b"", b"107")
            );
            // DECR stops at zero.
            let r = call(&mut c, op::DECREMENT, o + 5, 0, 200, 0, 0);
            counter_cas(&r, op::DECREMENT, o + 5, 0);
            let r = call(&mut c, op::DECREMENT, o + 6, 0, 1, 0, 0);
            counter_cas(&r, op::DECREMENT, o + 6, 0);
            // INCR wraps at 2^64.
            let r = call(&mut c, op::INCREMENT, o + 7, 0, u64::MAX, 0, 0);
            let cas = counter_cas(&r, op::INCREMENT, o + 7, u64::MAX);
            assert_eq!(
                c.call(&req::get(op::GET, o + 8, key)),
                hit(op::GET, o + 8, cas, 0, b"", b"18446744073709551615")
            );
            let r = call(&mut c, op::INCREMENT, o + 9, 0, 3, 0, 0);
            counter_cas(&r, op::INCREMENT, o + 9, 2);
            // Quiet successes are silent.
            let mut batch = req::arith(op::INCREMENTQ, o + 10, 0, key, 10, 0, 0);
            batch.extend(req::arith(op::DECREMENTQ, o + 11, 0, key, 1, 0, 0));
            c.send(&batch);
            c.fence(o + 12);
            let r = call(&mut c, op::INCREMENT, o + 13, 0, 0, 0, 0);
            counter_cas(&r, op::INCREMENT, o + 13, 11);

            // A value that is not a number.
            stored_cas(
                &c.call(&req::set(o + 14, key, b"12abc", 9)),
                op::SET,
                o + 14,
            );
            assert_eq!(
                call(&mut c, op::INCREMENT, o + 15, 0, 1, 0, 0),
                error(op::INCREMENT, o + 15, status::DELTA_BADVAL)
            );
            assert_eq!(
                call(&mut c, op::DECREMENTQ, o + 16, 0, 1, 0, 0),
                error(op::DECREMENTQ, o + 16, status::DELTA_BADVAL)
            );
            let r = c.call(&req::get(op::GET, o + 17, key));
            assert_eq!(r.with_cas(0), hit(op::GET, o + 17, 0, 9, b"", b"12abc"));
            // memcached's order: an empty value is not a number, whatever
            // the CAS; a non-empty one is checked against the CAS first.
            stored_cas(&c.call(&req::set(o + 30, key, b"", 0)), op::SET, o + 30);
            assert_eq!(
                call(&mut c, op::INCREMENT, o + 31, 12345, 1, 0, 0),
                error(op::INCREMENT, o + 31, status::DELTA_BADVAL)
            );
            stored_cas(&c.call(&req::set(o + 32, key, b"zz", 0)), op::SET, o + 32);
            assert_eq!(
                call(&mut c, op::INCREMENT, o + 33, 12345, 1, 0, 0),
                error(op::INCREMENT, o + 33, status::KEY_EEXISTS)
            );

            // The flags of a counter set by SET are kept.
            let flags = 0xABCD_1234;
            stored_cas(
                &c.call(&req::set(o + 18, key, b"10", flags)),
                op::SET,
                o + 18,
            );
            let r = call(&mut c, op::INCREMENT, o + 19, 0, 5, 0, 0);
            let cas = counter_cas(&r, op::INCREMENT, o + 19, 15);
            assert_eq!(
                c.call(&req::get(op::GET, o + 20, key)),
                hit(op::GET, o + 20, cas, flags, b"", b"15")
            );

            // Quiet misses are answered; a DECR creates with `initial` too.
            assert_eq!(
                c.call(&req::delete(op::DELETE, o + 21, 0, key)),
                empty(op::DELETE, o + 21)
            );
            assert_eq!(
                call(&mut c, op::INCREMENTQ, o + 22, 0, 1, 0, NO_CREATE),
                error(op::INCREMENTQ, o + 22, status::KEY_ENOENT)
            );
            let r = call(&mut c, op::DECREMENT, o + 23, 0, 3, 9, 0);
            counter_cas(&r, op::DECREMENT, o + 23, 9);
        }
    });
}

#[test]
fn append_and_prepend_need_an_item_and_keep_its_flags() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        for (i, key) in spread_keys("cat", threads, 2 * threads).iter().enumerate() {
            let o = 0x100 * i as u32;
            for (k, opcode) in [op::APPEND, op::PREPEND, op::APPENDQ, op::PREPENDQ]
                .into_iter()
                .enumerate()
            {
                let o = o + k as u32;
                assert_eq!(
                    c.call(&req::concat(opcode, o, 0, key, b"x")),
                    error(opcode, o, status::NOT_STORED)
                );
            }
            assert_eq!(
                c.call(&req::get(op::GETK, o + 4, key)),
                key_miss(op::GETK, o + 4, key)
            );
            let flags = 0xCAFE_BABE;
            stored_cas(
                &c.call(&req::set(o + 5, key, b"middle", flags)),
                op::SET,
                o + 5,
            );
            let r = c.call(&req::concat(op::APPEND, o + 6, 0, key, b">>"));
            stored_cas(&r, op::APPEND, o + 6);
            let r = c.call(&req::concat(op::PREPEND, o + 7, 0, key, b"<<"));
            let cas = stored_cas(&r, op::PREPEND, o + 7);
            assert_eq!(
                c.call(&req::get(op::GET, o + 8, key)),
                hit(op::GET, o + 8, cas, flags, b"", b"<<middle>>")
            );
            let mut batch = req::concat(op::APPENDQ, o + 9, 0, key, b"!");
            batch.extend(req::concat(op::PREPENDQ, o + 10, 0, key, b"\0"));
            batch.extend(req::concat(op::APPEND, o + 11, 0, key, b""));
            c.send(&batch);
            stored_cas(&c.recv(), op::APPEND, o + 11);
            c.fence(o + 12);
            let r = c.call(&req::get(op::GET, o + 13, key));
            assert_eq!(
                r.with_cas(0),
                hit(op::GET, o + 13, 0, flags, b"", b"\0<<middle>>!")
            );
        }
    });
}

// ---------------------------------------------------------------------------
// Touch and expiry

#[test]
fn touch_and_gat_forms_answer_like_gets_and_set_a_new_expiry() {
    for_each_worker_count(|threads| {
        let (server, clock) = start_with_clock(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("touch", threads, 2 * threads);
        let flags = 0xF00D_0001;
        for (i, key) in keys.iter().enumerate() {
            let o = 0x100 * i as u32;
            assert_eq!(
                c.call(&req::touch(op::TOUCH, o, key, 10)),
                error(op::TOUCH, o, status::KEY_ENOENT)
            );
            assert_eq!(
                c.call(&req::touch(op::GAT, o + 1, key, 10)),
                error(op::GAT, o + 1, status::KEY_ENOENT)
            );
            assert_eq!(
                c.call(&req::touch(op::GATK, o + 2, key, 10)),
                key_miss(op::GATK, o + 2, key)
            );
            let mut batch = req::touch(op::GATQ, o + 3, key, 10);
            batch.extend(req::touch(op::GATKQ, o + 4, key, 10));
            c.send(&batch);
            c.fence(o + 5);

            let r = c.call(&req::set(o + 6, key, b"touched", flags));
            let cas = stored_cas(&r, op::SET, o + 6);
            // TOUCH answers with the flags and the cas, no key and no value.
            assert_eq!(
                c.call(&req::touch(op::TOUCH, o + 7, key, 10)),
                hit(op::TOUCH, o + 7, cas, flags, b"", b"")
            );
            assert_eq!(
                c.call(&req::touch(op::GAT, o + 8, key, 10)),
                hit(op::GAT, o + 8, cas, flags, b"", b"touched")
            );
            assert_eq!(
                c.call(&req::touch(op::GATK, o + 9, key, 10)),
                hit(op::GATK, o + 9, cas, flags, key, b"touched")
            );
            let mut batch = req::touch(op::GATQ, o + 10, key, 10);
            batch.extend(req::touch(op::GATKQ, o + 11, key, 10));
            c.send(&batch);
            assert_eq!(c.recv(), hit(op::GATQ, o + 10, cas, flags, b"", b"touched"));
            assert_eq!(
                c.recv(),
                hit(op::GATKQ, o + 11, cas, flags, key, b"touched")
            );
            c.fence(o + 12);
        }
        // Every item was set to never expire, then touched to 10 s.
        advance(&clock, 9);
        for (i, key) in keys.iter().enumerate() {
            let r = c.call(&req::get(op::GET, i as u32, key));
            assert_eq!(r.status, status::NO_ERROR, "at 9 s: {r:?}");
        }
        advance(&clock, 2);
        expect_all_gone(&mut c, op::GET, &keys, "at 11 s");

        // Each form sets the expiry it carries: half the keys are made to
        // live for ever, half to die in 3 s.
        for (i, key) in keys.iter().enumerate() {
            let o = 0x8000 + 0x10 * i as u32;
            stored_cas(
                &c.call(&req::store(op::SET, o, 0, key, b"v", 1, 5)),
                op::SET,
                o,
            );
            let (opcode, exptime) = [
                (op::TOUCH, 0),
                (op::GAT, 3),
                (op::GATK, 0),
                (op::GATQ, 3),
                (op::GATKQ, 0),
                (op::TOUCH, 3),
                (op::GAT, 0),
                (op::GATK, 3),
            ][i % 8];
            let r = c.call(&req::touch(opcode, o + 1, key, exptime));
            assert_eq!(
                (r.opcode, r.status, r.opaque),
                (opcode, status::NO_ERROR, o + 1)
            );
        }
        advance(&clock, 4);
        for (i, key) in keys.iter().enumerate() {
            let o = 0x9000 + i as u32;
            let r = c.call(&req::get(op::GET, o, key));
            let lives = [true, false, true, false, true, false, true, false][i % 8];
            let want = if lives {
                status::NO_ERROR
            } else {
                status::KEY_ENOENT
            };
            assert_eq!(r.status, want, "key {i} at 4 s after its touch: {r:?}");
        }
        advance(&clock, 100);
        for (i, key) in keys.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            let r = c.call(&req::get(op::GET, i as u32, key));
            assert_eq!(r.with_cas(0), hit(op::GET, i as u32, 0, 1, b"", b"v"));
        }
    });
}

#[test]
fn relative_expiry_counts_seconds_up_to_thirty_days() {
    for_each_worker_count(|threads| {
        let (server, clock) = start_with_clock(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("rel", threads, 2 * threads);
        store_all(&mut c, &keys, b"short", 2, 10);
        advance(&clock, 9);
        expect_all_hit(&mut c, op::GET, &keys, 2, b"short");
        advance(&clock, 2);
        for (i, key) in keys.iter().enumerate() {
            let o = 0x100 + i as u32;
            assert_eq!(
                c.call(&req::get(op::GETK, o, key)),
                key_miss(op::GETK, o, key)
            );
            // An expired item does not block ADD.
            let r = c.call(&req::store(op::ADD, o, 0, key, b"long", 3, THIRTY_DAYS));
            stored_cas(&r, op::ADD, o);
        }
        // Exactly 30 days is still a number of seconds.
        advance(&clock, u64::from(THIRTY_DAYS) - 1);
        expect_all_hit(&mut c, op::GET, &keys, 3, b"long");
        advance(&clock, 2);
        expect_all_gone(&mut c, op::GET, &keys, "a second past 30 days");
    });
}

#[test]
fn expiry_beyond_thirty_days_is_a_unix_time() {
    for_each_worker_count(|threads| {
        let (server, clock) = start_with_clock(threads);
        let mut c = Conn::open(&server);
        let now = c.server_time();
        assert!(now > THIRTY_DAYS, "the server's time {now} is a Unix time");
        let keys = spread_keys("abs", threads, 2 * threads);
        store_all(&mut c, &keys, b"dated", 4, now + 100);
        advance(&clock, 99);
        expect_all_hit(&mut c, op::GET, &keys, 4, b"dated");
        advance(&clock, 2);
        expect_all_gone(&mut c, op::GET, &keys, "a second past the Unix time");
    });
}

#[test]
fn an_absolute_time_in_the_past_is_stored_but_never_returned() {
    for_each_worker_count(|threads| {
        let (server, _clock) = start_with_clock(threads);
        let mut c = Conn::open(&server);
        let now = c.server_time();
        let keys = spread_keys("past", threads, 2 * threads);
        // An hour ago, and the first second memcached reads as a Unix time
        // (1970).
        for (i, key) in keys.iter().enumerate() {
            let o = 0x100 * i as u32;
            let past = if i % 2 == 0 {
                now - 3600
            } else {
                THIRTY_DAYS + 1
            };
            stored_cas(&c.call(&req::set(o, key, b"old", 1)), op::SET, o);
            let r = c.call(&req::store(op::SET, o + 1, 0, key, b"new", 2, past));
            stored_cas(&r, op::SET, o + 1);
            // The new item replaced the old one and is already dead.
            assert_eq!(
                c.call(&req::get(op::GET, o + 2, key)),
                error(op::GET, o + 2, status::KEY_ENOENT)
            );
            assert_eq!(
                c.call(&req::get(op::GETK, o + 3, key)),
                key_miss(op::GETK, o + 3, key)
            );
            let r = c.call(&req::store(op::ADD, o + 4, 0, key, b"added", 3, 0));
            let cas = stored_cas(&r, op::ADD, o + 4);
            assert_eq!(
                c.call(&req::get(op::GET, o + 5, key)),
                hit(op::GET, o + 5, cas, 3, b"", b"added")
            );
        }
    });
}

// ---------------------------------------------------------------------------
// FLUSH

#[test]
fn flush_and_flushq_invalidate_every_worker_at_once() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("flush", threads, 4 * threads);
        for (round, opcode) in [op::FLUSH, op::FLUSHQ].into_iter().enumerate() {
            let base = 0x1_0000 * round as u32;
            for (i, key) in keys.iter().enumerate() {
                let o = base + i as u32;
                stored_cas(&c.call(&req::set(o, key, b"doomed", 1)), op::SET, o);
            }
            c.send(&req::flush(opcode, base + 0x1000, None));
            if opcode == op::FLUSH {
                assert_eq!(c.recv(), empty(op::FLUSH, base + 0x1000));
            }
            c.fence(base + 0x1001);
            for (i, key) in keys.iter().enumerate() {
                let o = base + 0x2000 + i as u32;
                assert_eq!(
                    c.call(&req::get(op::GETK, o, key)),
                    key_miss(op::GETK, o, key)
                );
            }
            // Items stored after the flush live.
            for (i, key) in keys.iter().enumerate().step_by(2) {
                let o = base + 0x3000 + i as u32;
                let cas = stored_cas(&c.call(&req::set(o, key, b"after", 2)), op::SET, o);
                assert_eq!(
                    c.call(&req::get(op::GET, o, key)),
                    hit(op::GET, o, cas, 2, b"", b"after")
                );
            }
        }
    });
}

#[test]
fn a_delayed_flush_takes_effect_when_the_clock_passes_the_delay() {
    for_each_worker_count(|threads| {
        let (server, clock) = start_with_clock(threads);
        let mut c = Conn::open(&server);
        let early = spread_keys("early", threads, 2 * threads);
        let middle = spread_keys("middle", threads, 2 * threads);
        let late = spread_keys("late", threads, 2 * threads);
        let set_all = |c: &mut Conn, keys: &[Vec<u8>], base: u32| {
            for (i, key) in keys.iter().enumerate() {
                let o = base + i as u32;
                stored_cas(&c.call(&req::set(o, key, b"v", 5)), op::SET, o);
            }
        };
        let expect_all = |c: &mut Conn, keys: &[Vec<u8>], present: bool, when: &str| {
            for (i, key) in keys.iter().enumerate() {
                let o = 0x5000 + i as u32;
                let r = c.call(&req::get(op::GETK, o, key));
                if present {
                    assert_eq!(r.with_cas(0), hit(op::GETK, o, 0, 5, key, b"v"), "{when}");
                } else {
                    assert_eq!(r, key_miss(op::GETK, o, key), "{when}");
                }
            }
        };
        set_all(&mut c, &early, 0x100);
        assert_eq!(
            c.call(&req::flush(op::FLUSH, 0xF1, Some(10))),
            empty(op::FLUSH, 0xF1)
        );
        expect_all(&mut c, &early, true, "just after the delayed flush");
        advance(&clock, 5);
        set_all(&mut c, &middle, 0x200);
        // memcached's clock counts whole seconds and flushes a second early;
        // 8 s is before the deadline either way.
        advance(&clock, 3);
        expect_all(&mut c, &early, true, "8 s into a 10 s delay");
        expect_all(&mut c, &middle, true, "8 s into a 10 s delay");
        advance(&clock, 3);
        expect_all(&mut c, &early, false, "past the delay");
        expect_all(&mut c, &middle, false, "past the delay (stored before it)");
        advance(&clock, 1);
        set_all(&mut c, &late, 0x300);
        advance(&clock, 60);
        expect_all(&mut c, &late, true, "stored after the deadline");

        // FLUSHQ with a delay: silent, same rule.
        c.send(&req::flush(op::FLUSHQ, 0xF2, Some(20)));
        c.fence(0xF3);
        advance(&clock, 18);
        expect_all(&mut c, &late, true, "18 s into a 20 s delay");
        advance(&clock, 3);
        expect_all(&mut c, &late, false, "past the FLUSHQ delay");
    });
}

#[test]
fn a_flush_delay_beyond_thirty_days_is_a_unix_time() {
    // memcached's process_bin_flush reads the delay with realtime(), like
    // every expiry.
    for_each_worker_count(|threads| {
        let (server, clock) = start_with_clock(threads);
        let mut c = Conn::open(&server);
        let now = c.server_time();
        let keys = spread_keys("absflush", threads, 2 * threads);
        store_all(&mut c, &keys, b"v", 0, 0);
        assert_eq!(
            c.call(&req::flush(op::FLUSH, 1, Some(now + 10))),
            empty(op::FLUSH, 1)
        );
        advance(&clock, 8);
        expect_all_hit(&mut c, op::GETK, &keys, 0, b"v");
        advance(&clock, 3);
        expect_all_gone(&mut c, op::GETK, &keys, "past the flush's Unix time");
    });
}

// ---------------------------------------------------------------------------
// Commands without a key

#[test]
fn noop_version_and_verbosity() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        assert_eq!(
            c.call(&req::bare(op::NOOP, 0xDEAD_BEEF)),
            empty(op::NOOP, 0xDEAD_BEEF)
        );
        let r = c.call(&req::bare(op::VERSION, 0x0102_0304));
        assert_eq!(
            (
                r.opcode,
                r.status,
                r.opaque,
                r.cas,
                r.extras.len(),
                r.key.len()
            ),
            (op::VERSION, status::NO_ERROR, 0x0102_0304, 0, 0, 0),
            "{r:?}"
        );
        assert!(!r.value.is_empty(), "VERSION has a value: {r:?}");
        assert!(
            r.value.iter().all(|b| b.is_ascii_graphic()),
            "VERSION is printable text: {r:?}"
        );
        // STAT reports the same version.
        let stats = c.stats(b"", 9);
        assert_eq!(stats.text("version").as_bytes(), &r.value[..]);
        for level in [0, 1, 2, u32::MAX] {
            assert_eq!(
                c.call(&req::verbosity(0x77, level)),
                empty(op::VERBOSITY, 0x77)
            );
        }
    });
}

#[test]
fn quit_answers_then_closes_and_quitq_closes_silently() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let keys = spread_keys("quit", threads, 2 * threads);
        for (opcode, answered) in [(op::QUIT, true), (op::QUITQ, false)] {
            let mut c = Conn::open(&server);
            // Earlier requests are answered, what follows the QUIT is not run.
            let mut batch = set_and_getk_all(&keys, b"before quit", 1);
            batch.extend(req::bare(opcode, 0xC105E));
            batch.extend(req::set(0xAF7E, b"after-quit", b"never", 0));
            batch.extend(req::bare(op::NOOP, 0xAF7F));
            c.send(&batch);
            expect_set_and_getk_all(&mut c, &keys, b"before quit", 1, "before the QUIT");
            if answered {
                assert_eq!(c.recv(), empty(op::QUIT, 0xC105E));
            }
            c.expect_eof();
            expect_never_stored(&server, b"after-quit", "nothing after the QUIT ran");
        }
    });
}

// ---------------------------------------------------------------------------
// STAT

/// The statistics memcached's general group has that this file checks.
const GENERAL_STATS: [&str; 24] = [
    "pid",
    "uptime",
    "time",
    "version",
    "threads",
    "curr_connections",
    "total_connections",
    "curr_items",
    "total_items",
    "bytes",
    "cmd_get",
    "cmd_set",
    "get_hits",
    "get_misses",
    "delete_hits",
    "delete_misses",
    "incr_hits",
    "incr_misses",
    "decr_hits",
    "decr_misses",
    "cas_hits",
    "cas_misses",
    "cas_badval",
    "evictions",
];

/// Counters `stats reset` sets back to 0 (memcached's `stats_reset` and
/// `threadlocal_stats_reset`).
const RESET_COUNTERS: [&str; 19] = [
    "total_connections",
    "total_items",
    "cmd_touch",
    "touch_hits",
    "touch_misses",
    "cmd_get",
    "cmd_set",
    "get_hits",
    "get_misses",
    "delete_hits",
    "delete_misses",
    "incr_hits",
    "incr_misses",
    "decr_hits",
    "decr_misses",
    "cas_hits",
    "cas_misses",
    "cas_badval",
    "evictions",
];

#[test]
fn stat_reports_the_server_and_counts_summed_over_workers() {
    for_each_worker_count(|threads| {
        let started = std::time::Instant::now();
        let server = start(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("st", threads, 8);
        let absent = spread_keys("st-absent", threads, 3);

        let mut cas = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let r = c.call(&req::set(i as u32, key, b"stat value", 0));
            cas.push(stored_cas(&r, op::SET, i as u32));
        }
        for (i, key) in keys.iter().enumerate() {
            let r = c.call(&req::get(op::GET, i as u32, key));
            assert_eq!(r.status, status::NO_ERROR);
        }
        for (i, key) in absent.iter().enumerate() {
            let r = c.call(&req::get(op::GETK, i as u32, key));
            assert_eq!(r.status, status::KEY_ENOENT);
        }
        for key in &keys[..2] {
            assert_eq!(
                c.call(&req::delete(op::DELETE, 1, 0, key)),
                empty(op::DELETE, 1)
            );
        }
        let r = c.call(&req::delete(op::DELETE, 2, 0, &absent[0]));
        assert_eq!(r.status, status::KEY_ENOENT);
        // Counters on an existing item (in place, same number of digits).
        stored_cas(&c.call(&req::set(3, &keys[2], b"5", 0)), op::SET, 3);
        for (opcode, value) in [(op::INCREMENT, 6), (op::INCREMENT, 7), (op::DECREMENT, 6)] {
            counter_cas(
                &c.call(&req::arith(opcode, 4, 0, &keys[2], 1, 0, 0)),
                opcode,
                4,
                value,
            );
        }
        for opcode in [op::INCREMENT, op::DECREMENT] {
            let r = c.call(&req::arith(opcode, 5, 0, &absent[1], 1, 0, NO_CREATE));
            assert_eq!(r, error(opcode, 5, status::KEY_ENOENT));
        }
        // Compare-and-swap: a hit, a stale cas, a missing key.
        let r = c.call(&req::store(op::SET, 6, cas[3], &keys[3], b"swapped", 0, 0));
        stored_cas(&r, op::SET, 6);
        let r = c.call(&req::store(op::SET, 7, cas[3], &keys[3], b"stale", 0, 0));
        assert_eq!(r, error(op::SET, 7, status::KEY_EEXISTS));
        let r = c.call(&req::store(op::SET, 8, 12345, &absent[2], b"gone", 0, 0));
        assert_eq!(r, error(op::SET, 8, status::KEY_ENOENT));
        // Refused deltas are neither hits nor misses.
        let r = c.call(&req::arith(op::INCREMENT, 10, 0, &keys[4], 1, 0, 0));
        assert_eq!(r, error(op::INCREMENT, 10, status::DELTA_BADVAL));
        let r = c.call(&req::arith(op::DECREMENT, 11, cas[2], &keys[2], 1, 0, 0));
        assert_eq!(r, error(op::DECREMENT, 11, status::KEY_EEXISTS));
        // GAT and TOUCH count as touches, not gets.
        let r = c.call(&req::touch(op::GAT, 12, &keys[5], 0));
        assert_eq!(r.with_cas(0), hit(op::GAT, 12, 0, 0, b"", b"stat value"));
        let r = c.call(&req::touch(op::TOUCH, 13, &absent[0], 0));
        assert_eq!(r, error(op::TOUCH, 13, status::KEY_ENOENT));

        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let s = c.stats(b"", 0x5747_0001);
        for name in GENERAL_STATS {
            if name != "version" {
                s.get(name);
            }
        }
        let expected: [(&str, u64); 22] = [
            ("threads", threads as u64),
            ("pid", u64::from(std::process::id())),
            ("curr_connections", 1),
            ("total_connections", 1),
            ("cmd_get", 11),
            ("get_hits", 8),
            ("get_misses", 3),
            ("delete_hits", 2),
            ("delete_misses", 1),
            ("incr_hits", 2),
            ("incr_misses", 1),
            ("decr_hits", 1),
            ("decr_misses", 1),
            // 8 SETs, the counter's SET and the three with a cas.
            ("cmd_set", 12),
            ("cas_hits", 1),
            ("cas_misses", 1),
            ("cas_badval", 1),
            ("curr_items", 6),
            // 8 new items, the counter's SET and the swap replace items.
            ("total_items", 10),
            ("cmd_touch", 2),
            ("touch_hits", 1),
            ("touch_misses", 1),
        ];
        for (name, value) in expected {
            assert_eq!((name, s.get(name)), (name, value));
        }
        assert_eq!(s.get("evictions"), 0);
        assert!(s.get("bytes") > 0);
        assert!(
            s.get("uptime") <= started.elapsed().as_secs(),
            "uptime {}",
            s.get("uptime")
        );
        let time = s.get("time");
        assert!(
            time.abs_diff(before) <= 5,
            "server time {time}, test time {before}"
        );

        // A second connection is counted once the server has answered it.
        let mut other = Conn::open(&server);
        other.fence(1);
        let s = c.stats(b"", 0x5747_0002);
        assert_eq!(s.get("curr_connections"), 2);
        assert_eq!(s.get("total_connections"), 2);
        let bytes = s.get("bytes");

        // `stats reset`: only the terminator; counters back to 0, what the
        // server holds now unchanged.
        assert!(c.stats(b"reset", 0x5747_0003).names.is_empty());
        let s = other.stats(b"", 0x5747_0004);
        for name in RESET_COUNTERS {
            assert_eq!((name, s.get(name)), (name, 0));
        }
        assert_eq!(s.get("curr_items"), 6);
        assert_eq!(s.get("curr_connections"), 2);
        assert_eq!(s.get("bytes"), bytes);
        assert_eq!(s.get("threads"), threads as u64);
        // And they count again from there.
        let r = c.call(&req::get(op::GET, 9, &keys[4]));
        assert_eq!(r.status, status::NO_ERROR);
        let s = c.stats(b"", 0x5747_0005);
        assert_eq!((s.get("cmd_get"), s.get("get_hits")), (1, 1));
    });
}

#[test]
fn stat_groups_settings_items_slabs_and_unknown() {
    for_each_worker_count(|threads| {
        let limits = Limits {
            max_key_len: 250,
            max_value_len: 4096,
        };
        let server = start_with_limits(threads, limits);
        let mut c = Conn::open(&server);
        let s = c.stats(b"settings", 0x5E77);
        assert_eq!(s.get("num_threads"), threads as u64);
        assert_eq!(s.get("item_size_max"), 4096);
        assert_eq!(s.get("tcp_backlog"), 1024);
        assert_eq!(s.text("shutdown_command"), "no");
        // items and slabs report everything as one class, items only once
        // there is one, as memcached lists only classes that hold items.
        let s = c.stats(b"items", 0x1735);
        assert!(s.names.is_empty(), "{:?}", s.names);
        assert_eq!(c.stats(b"slabs", 0x1736).get("active_slabs"), 0);
        c.call(&req::set(0x1737, b"one", b"item", 0));
        assert_eq!(c.stats(b"items", 0x1738).get("items:1:number"), 1);
        let s = c.stats(b"slabs", 0x1739);
        assert_eq!((s.get("active_slabs"), s.get("1:used_chunks")), (1, 1));
        assert!(s.get("total_malloced") > 0);
        assert_eq!(
            c.call(&req::stat(b"bogus", 0xB06)),
            error(op::STAT, 0xB06, status::KEY_ENOENT)
        );
        // The connection stays.
        c.fence(0xF);
        assert!(c.stats(b"", 0x10).get("threads") > 0);
    });
}

// ---------------------------------------------------------------------------
// Refused requests

#[test]
fn unknown_opcodes_are_answered_and_their_body_skipped() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        // The body is valid frames: a SET that must never run and a NOOP
        // that would draw an extra reply.
        let mut body = req::set(0x5E7, b"smuggled", b"!", 0);
        body.extend(req::bare(op::NOOP, 0x5E8));
        let len = body.len() as u32;
        for (i, opcode) in [0x1f, 0x25, 0x3c, 0x50, 0x80, 0xc0, 0xfe, 0xff]
            .into_iter()
            .enumerate()
        {
            let o = 0x4000 + i as u32;
            // Answered from the header, before the body arrives.
            c.send(&req::header(opcode, 0, 0, len, o, 0));
            assert_eq!(c.recv(), error(opcode, o, status::UNKNOWN_COMMAND));
            c.send_in_chunks(&body, &[1, 5, 24]);
            c.fence(o);
            // The same in one write.
            let mut batch = req::header(opcode, 0, 0, len, o + 0x100, 0);
            batch.extend(&body);
            c.send(&batch);
            assert_eq!(c.recv(), error(opcode, o + 0x100, status::UNKNOWN_COMMAND));
            c.fence(o + 0x100);
            // Without a body.
            let r = c.call(&req::bare(opcode, o + 0x200));
            assert_eq!(r, error(opcode, o + 0x200, status::UNKNOWN_COMMAND));
        }
        assert_eq!(
            c.call(&req::get(op::GETK, 1, b"smuggled")),
            key_miss(op::GETK, 1, b"smuggled")
        );
    });
}

/// Frames whose extras, key or value do not fit their opcode: (what,
/// opcode, opaque, frame).
fn malformed_frames() -> Vec<(&'static str, u8, u32, Vec<u8>)> {
    let o = 0xBAD0_0000;
    let with_body = |opcode, key_len, extras_len, body: &[u8]| {
        let mut f = req::header(opcode, key_len, extras_len, body.len() as u32, o, 0);
        f.extend_from_slice(body);
        f
    };
    vec![
        (
            "GET with extras",
            op::GET,
            o,
            with_body(op::GET, 3, 4, b"\0\0\0\0abc"),
        ),
        (
            "GET with a value",
            op::GET,
            o,
            with_body(op::GET, 3, 0, b"abcxy"),
        ),
        (
            "GET without a key",
            op::GET,
            o,
            with_body(op::GET, 0, 0, b""),
        ),
        (
            "GETKQ without a key",
            op::GETKQ,
            o,
            with_body(op::GETKQ, 0, 0, b""),
        ),
        (
            "SET with 4 bytes of extras",
            op::SET,
            o,
            with_body(op::SET, 3, 4, b"\0\0\0\0abcvv"),
        ),
        (
            "SETQ without extras",
            op::SETQ,
            o,
            with_body(op::SETQ, 3, 0, b"abcvv"),
        ),
        (
            "SET without a key",
            op::SET,
            o,
            with_body(op::SET, 0, 8, b"\0\0\0\0\0\0\0\0vv"),
        ),
        (
            "APPEND with extras",
            op::APPEND,
            o,
            with_body(op::APPEND, 3, 8, b"\0\0\0\0\0\0\0\0abcvv"),
        ),
        (
            "DELETE without a key",
            op::DELETE,
            o,
            with_body(op::DELETE, 0, 0, b""),
        ),
        (
            "INCREMENT with 8 bytes of extras",
            op::INCREMENT,
            o,
            with_body(op::INCREMENT, 3, 8, b"\0\0\0\0\0\0\0\x01abc"),
        ),
        (
            "TOUCH without extras",
            op::TOUCH,
            o,
            with_body(op::TOUCH, 3, 0, b"abc"),
        ),
        (
            "FLUSH with 8 bytes of extras",
            op::FLUSH,
            o,
            with_body(op::FLUSH, 0, 8, &[0; 8]),
        ),
        (
            "FLUSH with a key",
            op::FLUSH,
            o,
            with_body(op::FLUSH, 3, 0, b"abc"),
        ),
        (
            "NOOP with a key",
            op::NOOP,
            o,
            with_body(op::NOOP, 3, 0, b"abc"),
        ),
        (
            "VERSION with a value",
            op::VERSION,
            o,
            with_body(op::VERSION, 0, 0, b"xy"),
        ),
        (
            "QUIT with extras",
            op::QUIT,
            o,
            with_body(op::QUIT, 0, 4, b"\0\0\0\0"),
        ),
        (
            "STAT with extras",
            op::STAT,
            o,
            with_body(op::STAT, 0, 4, b"\0\0\0\0"),
        ),
        (
            "a body shorter than extras and key",
            op::SET,
            o,
            with_body(op::SET, 3, 8, b"\0\0\0\0\0\0\0\0ab"),
        ),
        (
            "a key over 250 bytes",
            op::GET,
            o,
            with_body(op::GET, 251, 0, &[b'k'; 251]),
        ),
    ]
}

#[test]
fn malformed_frames_answer_einval_after_earlier_replies_then_close() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let keys = spread_keys("mal", threads, 2 * threads);
        for (what, opcode, opaque, bad) in malformed_frames() {
            let mut c = Conn::open(&server);
            let mut batch = set_and_getk_all(&keys, what.as_bytes(), 7);
            batch.extend(&bad);
            batch.extend(req::set(0xAF7E, b"after-bad", b"never", 0));
            batch.extend(req::bare(op::NOOP, 0xAF7F));
            c.send(&batch);
            let before = format!("before {what}");
            expect_set_and_getk_all(&mut c, &keys, what.as_bytes(), 7, &before);
            assert_eq!(c.recv(), error(opcode, opaque, status::EINVAL), "{what}");
            c.expect_eof();
            expect_never_stored(&server, b"after-bad", &format!("nothing after {what} ran"));
        }
    });
}

#[test]
fn oversize_values_answer_e2big_and_their_body_is_swallowed() {
    for_each_worker_count(|threads| {
        let server = start_with_limits(threads, SMALL_VALUES);
        let mut c = Conn::open(&server);
        let keys = spread_keys("big", threads, 2 * threads);
        for (i, key) in keys.iter().enumerate() {
            let o = 0x1000 * i as u32;
            // Exactly at the limit is stored; one byte more is not.
            let at_limit = fill(b"0123456789", 64);
            let cas = stored_cas(&c.call(&req::set(o, key, &at_limit, 1)), op::SET, o);
            assert_eq!(
                c.call(&req::get(op::GET, o + 1, key)),
                hit(op::GET, o + 1, cas, 1, b"", &at_limit)
            );
            let over = fill(b"abcdefghij", 65);
            let fresh = format!("fresh-{}", key.escape_ascii()).into_bytes();
            for opcode in [op::SET, op::SETQ, op::ADD, op::REPLACEQ] {
                let r = c.call(&req::store(opcode, o + 2, 0, &fresh, &over, 0, 0));
                assert_eq!(r, error(opcode, o + 2, status::E2BIG));
            }
            for opcode in [op::APPEND, op::PREPENDQ] {
                let r = c.call(&req::concat(opcode, o + 3, 0, key, &over));
                assert_eq!(r, error(opcode, o + 3, status::E2BIG));
            }
            assert_eq!(
                c.call(&req::get(op::GETK, o + 4, &fresh)),
                key_miss(op::GETK, o + 4, &fresh)
            );
            // Values within the limit whose result would not be: memcached
            // cannot allocate the grown item and answers NOT_STORED.
            for opcode in [op::APPEND, op::PREPENDQ] {
                let r = c.call(&req::concat(opcode, o + 4, 0, key, b"+"));
                assert_eq!(r, error(opcode, o + 4, status::NOT_STORED));
            }
            assert_eq!(
                c.call(&req::get(op::GET, o + 5, key)),
                hit(op::GET, o + 5, cas, 1, b"", &at_limit),
                "a refused APPEND or PREPEND leaves the item alone"
            );

            // A long body made of valid frames, sent in chunks once the
            // refusal has arrived: none of it may be read as requests.
            let mut pattern = req::set(0x5E7, b"smuggled", b"!", 0);
            pattern.extend(req::bare(op::NOOP, 0x5E8));
            pattern.extend(req::get(op::GETK, 0x5E9, key));
            let body = fill(&pattern, 10_000);
            let body_len = (8 + fresh.len() + body.len()) as u32;
            let mut head = req::header(op::SET, fresh.len() as u16, 8, body_len, o + 6, 0);
            head.extend_from_slice(&[0; 8]);
            head.extend_from_slice(&fresh);
            c.send(&head);
            assert_eq!(c.recv(), error(op::SET, o + 6, status::E2BIG));
            c.send_in_chunks(&body, &[1, 2, 23, 24, 25, 100, 1000]);
            c.fence(o + 7);
            assert_eq!(
                c.call(&req::get(op::GETK, o + 8, b"smuggled")),
                key_miss(op::GETK, o + 8, b"smuggled")
            );
            // The connection is still good for storing.
            let cas = stored_cas(
                &c.call(&req::set(o + 9, &fresh, b"fits", 2)),
                op::SET,
                o + 9,
            );
            assert_eq!(
                c.call(&req::get(op::GET, o + 10, &fresh)),
                hit(op::GET, o + 10, cas, 2, b"", b"fits")
            );
        }
    });
}

#[test]
fn a_four_gib_body_claim_is_answered_from_the_header_alone() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        // A SET claiming a 4 GiB body: E2BIG once its extras and key are
        // in (the key's old value is removed first, as memcached does),
        // without waiting for the body. The server then swallows what
        // comes, for ever.
        let mut set = Conn::open(&server);
        let mut head = req::header(op::SET, 1, 8, u32::MAX, 0x4_61B, 0);
        head.extend_from_slice(&[0; 8]);
        head.push(b'k');
        set.send(&head);
        assert_eq!(set.recv(), error(op::SET, 0x4_61B, status::E2BIG));
        set.send(&fill(&req::bare(op::NOOP, 1), 64 << 10));
        // An unknown opcode with the same claim: UNKNOWN_COMMAND at once.
        let mut unknown = Conn::open(&server);
        unknown.send(&req::header(0xEE, 0, 0, u32::MAX, 0x4_61C, 0));
        assert_eq!(
            unknown.recv(),
            error(0xEE, 0x4_61C, status::UNKNOWN_COMMAND)
        );
        // A GET may have no value at all: EINVAL at once, then close.
        let mut get = Conn::open(&server);
        get.send(&req::header(op::GET, 1, 0, u32::MAX, 0x4_61D, 0));
        assert_eq!(get.recv(), error(op::GET, 0x4_61D, status::EINVAL));
        get.expect_eof();

        // Meanwhile other connections are served.
        let mut c = Conn::open(&server);
        for (i, key) in spread_keys("healthy", threads, 2 * threads)
            .iter()
            .enumerate()
        {
            let o = i as u32;
            let cas = stored_cas(&c.call(&req::set(o, key, b"fine", 8)), op::SET, o);
            assert_eq!(
                c.call(&req::get(op::GET, o, key)),
                hit(op::GET, o, cas, 8, b"", b"fine")
            );
        }
    });
}

#[test]
fn bad_magic_after_valid_frames_closes_after_their_replies() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let keys = spread_keys("magic", threads, 2 * threads);
        // A response's magic, the native protocol's, text, zero.
        for first in [0x81u8, 0xCA, b'g', 0x00] {
            let mut c = Conn::open(&server);
            let flags = u32::from(first);
            let mut batch = set_and_getk_all(&keys, b"kept", flags);
            batch.extend(req::bare(op::NOOP, 0xAAAA));
            let mut bad = req::set(0xBAD, b"after-magic", b"never", 0);
            bad[0] = first;
            batch.extend(bad);
            batch.extend(req::set(0xBAE, b"after-magic", b"never", 0));
            c.send(&batch);
            let before = format!("before first byte 0x{first:02x}");
            expect_set_and_getk_all(&mut c, &keys, b"kept", flags, &before);
            assert_eq!(c.recv(), empty(op::NOOP, 0xAAAA));
            c.expect_eof();
            expect_never_stored(&server, b"after-magic", "nothing after the bad magic ran");
        }
        // Any other first byte is memcached's text protocol, which answers
        // what it does not know with ERROR and keeps the connection.
        let mut c = Conn::open(&server);
        c.send(&[0x81, b'\r', b'\n', b'm', b'n', b'\r', b'\n']);
        let mut answer = [0u8; 11];
        c.read_exact(&mut answer, "text answers");
        assert_eq!(&answer, b"ERROR\r\nMN\r\n");
    });
}

// ---------------------------------------------------------------------------
// Ordering

#[test]
fn thousands_of_getkq_return_exactly_the_hits_in_order_then_the_noop() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let n = 4000;
        let keys = spread_keys("kq", threads, n);
        let mut rng = Rng::new(0x6E7B_0001 + threads as u64);
        let present: Vec<bool> = (0..n).map(|_| rng.below(2) == 0).collect();
        let value = |i: usize| fill(format!("{i}:").as_bytes(), i % 97);
        let flags = |i: usize| (i as u32).wrapping_mul(0x9E37_79B9);

        let mut batch = Vec::new();
        for (i, key) in keys.iter().enumerate().filter(|&(i, _)| present[i]) {
            batch.extend(req::store(
                op::SETQ,
                i as u32,
                0,
                key,
                &value(i),
                flags(i),
                0,
            ));
        }
        batch.extend(req::bare(op::NOOP, 0xFE11));
        let writer = c.send_in_background(batch);
        assert_eq!(c.recv(), empty(op::NOOP, 0xFE11));
        writer.join().expect("writer");

        let mut batch = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            batch.extend(req::get(op::GETKQ, 0x10_0000 + i as u32, key));
        }
        batch.extend(req::bare(op::NOOP, 0xFE12));
        let writer = c.send_in_background(batch);
        for (i, key) in keys.iter().enumerate().filter(|&(i, _)| present[i]) {
            let r = c.recv();
            let want = hit(op::GETKQ, 0x10_0000 + i as u32, 0, flags(i), key, &value(i));
            assert_eq!(r.with_cas(0), want, "hit {i}");
            assert_ne!(r.cas, 0);
        }
        assert_eq!(c.recv(), empty(op::NOOP, 0xFE12));
        writer.join().expect("writer");
        c.fence(0xFE13);
    });
}

/// What the model knows of one key.
#[derive(Clone)]
struct Item {
    flags: u32,
    value: Vec<u8>,
}

/// How the cas of an expected reply is checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CasRule {
    /// Errors, DELETE, NOOP.
    Zero,
    /// A modification: a cas never seen before, which becomes the key's.
    New,
    /// A read or touch: the key's cas, if the test has seen it.
    Current,
}

/// One scripted request: the reply it must get (`None` for a quiet
/// success), and what it does to the key's known cas.
struct Expect {
    key: usize,
    reply: Option<(Resp, CasRule)>,
    /// The key was modified or removed without a reply telling the new cas.
    forgets_cas: bool,
}

/// A value the counters see the same way memcached does: a canonical
/// decimal (no leading zeros) counts; anything not a number is refused.
/// `None` for a number memcached would rewrite padded with spaces (leading
/// zeros), which the script avoids.
#[derive(Clone, Copy)]
enum Counter {
    Number(u64),
    NotNumber,
}

fn counter_of(value: &[u8]) -> Option<Counter> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Some(Counter::NotNumber);
    }
    match std::str::from_utf8(value).ok()?.parse::<u64>() {
        Ok(n) if n.to_string().as_bytes() == value => Some(Counter::Number(n)),
        Ok(_) => None,
        Err(_) => Some(Counter::NotNumber),
    }
}

fn random_value(rng: &mut Rng) -> Vec<u8> {
    const TEXT: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:";
    match rng.below(4) {
        0 => (1 + rng.below(100_000)).to_string().into_bytes(),
        1 => (1 + rng.below(9)).to_string().into_bytes(),
        _ => (0..rng.below(40)).map(|_| *rng.pick(TEXT)).collect(),
    }
}

/// A long pipeline of every keyed request, quiet and not, over `keys`, with
/// the replies a `HashMap` model says it must get (the keys start absent).
fn mixed_script(keys: &[Vec<u8>], n: usize, seed: u64) -> (Vec<u8>, Vec<Expect>) {
    use op::*;
    let mut rng = Rng::new(seed);
    let mut model: HashMap<usize, Item> = HashMap::new();
    let mut bytes = Vec::new();
    let mut script = Vec::new();
    for i in 0..n {
        let k = rng.below(keys.len());
        let key = &keys[k][..];
        let o = 0x5000_0000 + i as u32;
        let quiet = rng.below(2) == 0;
        let pick = |loud: u8, q: u8| if quiet { q } else { loud };
        let stored = |opcode: u8| {
            if quiet {
                None
            } else {
                Some((empty(opcode, o), CasRule::New))
            }
        };
        let fail = |opcode: u8, code: u16| Some((error(opcode, o, code), CasRule::Zero));
        let exists = model.contains_key(&k);
        let (reply, forgets_cas) = match rng.below(13) {
            0 | 1 => {
                let opcode = pick(SET, SETQ);
                let (value, flags) = (random_value(&mut rng), rng.next_u64() as u32);
                bytes.extend(req::store(opcode, o, 0, key, &value, flags, 0));
                model.insert(k, Item { flags, value });
                (stored(opcode), quiet)
            }
            2 => {
                let opcode = pick(ADD, ADDQ);
                let (value, flags) = (random_value(&mut rng), rng.next_u64() as u32);
                bytes.extend(req::store(opcode, o, 0, key, &value, flags, 0));
                if exists {
                    (fail(opcode, status::KEY_EEXISTS), false)
                } else {
                    model.insert(k, Item { flags, value });
                    (stored(opcode), quiet)
                }
            }
            3 => {
                let opcode = pick(REPLACE, REPLACEQ);
                let (value, flags) = (random_value(&mut rng), rng.next_u64() as u32);
                bytes.extend(req::store(opcode, o, 0, key, &value, flags, 0));
                if exists {
                    model.insert(k, Item { flags, value });
                    (stored(opcode), quiet)
                } else {
                    (fail(opcode, status::KEY_ENOENT), false)
                }
            }
            4 => {
                let append = rng.below(2) == 0;
                let opcode = match append {
                    true => pick(APPEND, APPENDQ),
                    false => pick(PREPEND, PREPENDQ),
                };
                let extra = random_value(&mut rng);
                bytes.extend(req::concat(opcode, o, 0, key, &extra));
                match model.get_mut(&k) {
                    Some(item) => {
                        item.value = match append {
                            true => [&item.value[..], &extra].concat(),
                            false => [&extra[..], &item.value].concat(),
                        };
                        (stored(opcode), quiet)
                    }
                    None => (fail(opcode, status::NOT_STORED), false),
                }
            }
            5 => {
                let opcode = pick(DELETE, DELETEQ);
                bytes.extend(req::delete(opcode, o, 0, key));
                match model.remove(&k) {
                    Some(_) if quiet => (None, true),
                    Some(_) => (Some((empty(opcode, o), CasRule::Zero)), true),
                    None => (fail(opcode, status::KEY_ENOENT), false),
                }
            }
            6 | 7 => {
                let incr = rng.below(2) == 0;
                let opcode = match incr {
                    true => pick(INCREMENT, INCREMENTQ),
                    false => pick(DECREMENT, DECREMENTQ),
                };
                let create = rng.below(2) == 0;
                let exptime = if create { 0 } else { NO_CREATE };
                let initial = rng.below(1000) as u64;
                let current = model.get(&k).map(|item| counter_of(&item.value));
                // The new value, or None for a refusal; the delta keeps the
                // number of digits of a decrement (memcached pads a shorter
                // number with spaces) and an increment from wrapping.
                let outcome: Option<(u64, u64)> = match current {
                    None => create.then_some((rng.below(1000) as u64, initial)),
                    Some(Some(Counter::Number(n))) => Some(if incr {
                        let delta = rng.below(1000) as u64;
                        match n.checked_add(delta) {
                            Some(v) => (delta, v),
                            None => (0, n),
                        }
                    } else {
                        let floor = match n {
                            0..=9 => 0,
                            _ => 10u64.pow(n.ilog10()),
                        };
                        let delta = match n {
                            0..=9 => rng.below(20) as u64,
                            _ => rng.below((n - floor + 1).min(1 << 20) as usize) as u64,
                        };
                        (delta, n.saturating_sub(delta))
                    }),
                    Some(Some(Counter::NotNumber)) | Some(None) => None,
                };
                match (current, outcome) {
                    // Leading zeros: read it instead.
                    (Some(None), _) => {
                        bytes.extend(req::get(GET, o, key));
                        let item = &model[&k];
                        let r = hit(GET, o, 0, item.flags, b"", &item.value);
                        (Some((r, CasRule::Current)), false)
                    }
                    (_, Some((delta, value))) => {
                        bytes.extend(req::arith(opcode, o, 0, key, delta, initial, exptime));
                        let flags = model.get(&k).map_or(0, |item| item.flags);
                        let text = value.to_string().into_bytes();
                        model.insert(k, Item { flags, value: text });
                        match quiet {
                            true => (None, true),
                            false => (Some((counter(opcode, o, 0, value), CasRule::New)), false),
                        }
                    }
                    (None, None) => {
                        bytes.extend(req::arith(opcode, o, 0, key, 1, initial, exptime));
                        (fail(opcode, status::KEY_ENOENT), false)
                    }
                    (Some(Some(_)), None) => {
                        bytes.extend(req::arith(opcode, o, 0, key, 1, initial, exptime));
                        (fail(opcode, status::DELTA_BADVAL), false)
                    }
                }
            }
            8..=10 => {
                let opcode = *rng.pick(&[GET, GETQ, GETK, GETKQ]);
                bytes.extend(req::get(opcode, o, key));
                let echo = if matches!(opcode, GETK | GETKQ) {
                    key
                } else {
                    &[][..]
                };
                let reply = match model.get(&k) {
                    Some(item) => Some((
                        hit(opcode, o, 0, item.flags, echo, &item.value),
                        CasRule::Current,
                    )),
                    None => match opcode {
                        GET => fail(GET, status::KEY_ENOENT),
                        GETK => Some((key_miss(GETK, o, key), CasRule::Zero)),
                        _ => None,
                    },
                };
                (reply, false)
            }
            11 => {
                // Expiry 0 keeps every item immortal.
                let opcode = *rng.pick(&[TOUCH, GAT, GATQ, GATK, GATKQ]);
                bytes.extend(req::touch(opcode, o, key, 0));
                let echo = if matches!(opcode, GATK | GATKQ) {
                    key
                } else {
                    &[][..]
                };
                let reply = match model.get(&k) {
                    Some(item) => {
                        let value = if opcode == TOUCH {
                            &[][..]
                        } else {
                            &item.value[..]
                        };
                        Some((hit(opcode, o, 0, item.flags, echo, value), CasRule::Current))
                    }
                    None => match opcode {
                        TOUCH | GAT => fail(opcode, status::KEY_ENOENT),
                        GATK => Some((key_miss(GATK, o, key), CasRule::Zero)),
                        _ => None,
                    },
                };
                (reply, false)
            }
            _ => {
                bytes.extend(req::bare(NOOP, o));
                (Some((empty(NOOP, o), CasRule::Zero)), false)
            }
        };
        script.push(Expect {
            key: k,
            reply,
            forgets_cas,
        });
    }
    (bytes, script)
}

#[test]
fn a_long_mixed_pipeline_of_quiet_and_loud_requests_matches_a_model() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("mix", threads, 24);
        let (bytes, script) = mixed_script(&keys, 3000, 0x313C_0000 + threads as u64);
        assert!(script.iter().filter(|e| e.reply.is_none()).count() > 500);
        let writer = c.send_in_background(bytes);
        let mut known: HashMap<usize, u64> = HashMap::new();
        let mut seen = HashSet::new();
        for (i, e) in script.iter().enumerate() {
            if let Some((want, rule)) = &e.reply {
                let got = c.recv();
                assert_eq!(got.with_cas(0), want.with_cas(0), "request {i}");
                match rule {
                    CasRule::Zero => assert_eq!(got.cas, 0, "request {i}: {got:?}"),
                    CasRule::New => {
                        assert!(seen.insert(got.cas), "request {i}: cas reused: {got:?}");
                        assert_ne!(got.cas, 0, "request {i}");
                        known.insert(e.key, got.cas);
                    }
                    CasRule::Current => {
                        assert_ne!(got.cas, 0, "request {i}");
                        if let Some(&cas) = known.get(&e.key) {
                            assert_eq!(got.cas, cas, "request {i}: {got:?}");
                        }
                    }
                }
            }
            if e.forgets_cas {
                known.remove(&e.key);
            }
        }
        c.fence(0xE2D);
        writer.join().expect("writer");
    });
}

#[test]
fn flush_and_stat_mid_pipeline_are_answered_in_place_and_see_earlier_writes() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("mid", threads, 40);
        let half = keys.len() / 2;
        let mut batch = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            batch.extend(req::store(op::SETQ, i as u32, 0, key, b"first", 1, 0));
        }
        batch.extend(req::stat(b"", 0x57A1));
        batch.extend(req::flush(op::FLUSH, 0xF1, None));
        for (i, key) in keys.iter().enumerate() {
            batch.extend(req::get(op::GETKQ, 0x100 + i as u32, key));
        }
        for (i, key) in keys.iter().enumerate().skip(half) {
            batch.extend(req::store(
                op::SETQ,
                0x200 + i as u32,
                0,
                key,
                b"second",
                2,
                0,
            ));
        }
        batch.extend(req::stat(b"", 0x57A2));
        for (i, key) in keys.iter().enumerate() {
            batch.extend(req::get(op::GETK, 0x300 + i as u32, key));
        }
        batch.extend(req::bare(op::NOOP, 0xE2D));
        c.send(&batch);

        let n = keys.len() as u64;
        let s = c.recv_stats(0x57A1);
        assert_eq!(s.get("cmd_set"), n);
        assert_eq!(s.get("curr_items"), n);
        assert_eq!(s.get("total_items"), n);
        assert_eq!(s.get("cmd_get"), 0);
        assert_eq!(s.get("cmd_flush"), 0);
        assert_eq!(c.recv(), empty(op::FLUSH, 0xF1));
        let s = c.recv_stats(0x57A2);
        assert_eq!(s.get("cmd_get"), n);
        assert_eq!(s.get("get_misses"), n);
        assert_eq!(s.get("get_hits"), 0);
        // One FLUSH, however many workers applied it.
        assert_eq!(s.get("cmd_flush"), 1);
        assert_eq!(s.get("cmd_set"), n + (n - half as u64));
        assert_eq!(s.get("total_items"), n + (n - half as u64));
        for (i, key) in keys.iter().enumerate() {
            let o = 0x300 + i as u32;
            let r = c.recv();
            if i < half {
                assert_eq!(r, key_miss(op::GETK, o, key));
            } else {
                assert_eq!(r.with_cas(0), hit(op::GETK, o, 0, 2, key, b"second"));
            }
        }
        assert_eq!(c.recv(), empty(op::NOOP, 0xE2D));
    });
}

// ---------------------------------------------------------------------------
// Across protocols, and byte by byte

#[test]
fn items_cross_between_memcached_and_native_connections() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let mut native = common::client(&server);
        let keys = spread_keys("cross", threads, 4 * threads);
        for (i, key) in keys.iter().enumerate() {
            let o = 0x100 * i as u32;
            let value = format!("cross value {i}").into_bytes();
            if i % 2 == 0 {
                // Flags up to 0xFFFF come back whole; above, native flags
                // are the low 16 bits.
                let flags = [0xBE00 + i as u32, 0xABCD_0042][i / 2 % 2];
                stored_cas(&c.call(&req::set(o, key, &value, flags)), op::SET, o);
                let got = native.get(key).expect("native GET");
                let want = Value {
                    data: value,
                    flags: flags as u16,
                };
                assert_eq!(got, Some(want));
            } else {
                let flags = 0xF00 + i as u16;
                native.set(key, &value, flags).expect("native SET");
                let r = c.call(&req::get(op::GETK, o, key));
                assert_eq!(
                    r.with_cas(0),
                    hit(op::GETK, o, 0, u32::from(flags), key, &value)
                );
                assert_ne!(r.cas, 0);
            }
        }
        for (i, key) in keys.iter().enumerate() {
            let o = 0x8000 + i as u32;
            if i % 2 == 0 {
                assert!(native.delete(key).expect("native DELETE"));
                assert_eq!(
                    c.call(&req::get(op::GET, o, key)),
                    error(op::GET, o, status::KEY_ENOENT)
                );
            } else {
                assert_eq!(
                    c.call(&req::delete(op::DELETE, o, 0, key)),
                    empty(op::DELETE, o)
                );
                assert_eq!(native.get(key).expect("native GET"), None);
            }
        }
    });
}

#[test]
fn every_kind_of_frame_sent_one_byte_at_a_time() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        for (i, key) in spread_keys("byte", threads, 2 * threads).iter().enumerate() {
            let o = 0x100 * i as u32;
            c.dribble(&req::store(op::SET, o, 0, key, b"dribbled", 0x0A0B_0C0D, 0));
            let cas = stored_cas(&c.recv(), op::SET, o);
            c.dribble(&req::get(op::GETK, o + 1, key));
            assert_eq!(
                c.recv(),
                hit(op::GETK, o + 1, cas, 0x0A0B_0C0D, key, b"dribbled")
            );
            c.dribble(&req::concat(op::APPENDQ, o + 2, 0, key, b"!"));
            c.dribble(&req::bare(op::NOOP, o + 3));
            assert_eq!(c.recv(), empty(op::NOOP, o + 3));
            c.dribble(&req::touch(op::GAT, o + 4, key, 0));
            let r = c.recv();
            assert_eq!(
                r.with_cas(0),
                hit(op::GAT, o + 4, 0, 0x0A0B_0C0D, b"", b"dribbled!")
            );
            c.dribble(&req::delete(op::DELETE, o + 5, 0, key));
            assert_eq!(c.recv(), empty(op::DELETE, o + 5));
            c.dribble(&req::arith(op::INCREMENT, o + 6, 0, key, 1, 41, 0));
            counter_cas(&c.recv(), op::INCREMENT, o + 6, 41);
            c.dribble(&req::arith(op::INCREMENT, o + 7, 0, key, 1, 0, 0));
            counter_cas(&c.recv(), op::INCREMENT, o + 7, 42);
            c.dribble(&req::get(op::GETKQ, o + 8, b"byte-missing"));
            c.dribble(&req::bare(op::NOOP, o + 9));
            assert_eq!(c.recv(), empty(op::NOOP, o + 9));
        }
        let mut unknown = req::header(0x42, 0, 0, 24, 0x42, 0);
        unknown.extend(req::bare(op::NOOP, 0x43));
        c.dribble(&unknown);
        assert_eq!(c.recv(), error(0x42, 0x42, status::UNKNOWN_COMMAND));
        c.dribble(&req::flush(op::FLUSH, 0x44, Some(0)));
        assert_eq!(c.recv(), empty(op::FLUSH, 0x44));
        c.dribble(&req::bare(op::VERSION, 0x45));
        assert_eq!(c.recv().opaque, 0x45);
        c.dribble(&req::stat(b"", 0x46));
        let s = c.recv_stats(0x46);
        assert_eq!(s.get("threads"), threads as u64);
        c.dribble(&req::bare(op::QUIT, 0x47));
        assert_eq!(c.recv(), empty(op::QUIT, 0x47));
        c.expect_eof();
    });
}

// ---------------------------------------------------------------------------
// A refused SET

#[test]
fn a_set_refused_as_too_large_removes_the_old_value() {
    // As memcached's process_bin_update: a cache must not serve the value
    // its client just failed to replace. The refusal itself is E2BIG.
    for_each_worker_count(|threads| {
        let server = start_with_limits(threads, SMALL_VALUES);
        let mut c = Conn::open(&server);
        for (i, key) in spread_keys("stale", threads, 2 * threads)
            .iter()
            .enumerate()
        {
            let o = 0x10 * i as u32;
            stored_cas(&c.call(&req::set(o, key, b"old", 0)), op::SET, o);
            let r = c.call(&req::set(o + 1, key, &[b'x'; 65], 0));
            assert_eq!(r, error(op::SET, o + 1, status::E2BIG));
            let r = c.call(&req::get(op::GET, o + 2, key));
            assert_eq!(r.status, status::KEY_ENOENT, "the old value is gone");
        }
    });
}
