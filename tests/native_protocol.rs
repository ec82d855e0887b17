//! The native protocol over real sockets, against `docs/PROTOCOL.md`.
//!
//! Every test starts its own server in-process on 127.0.0.1 port 0 and runs
//! twice: at 1 worker, where every key is local, and at 4 workers, where
//! keys are chosen (with the crate's public, fixed [`Router`]) so that every
//! worker owns some, and most requests are forwarded to another worker.
//!
//! Requests are built byte by byte here, and responses are read and checked
//! byte by byte here, independently of `cafe::protocol::native`, so a bug the
//! codec's encoder and decoder share cannot hide. The reason texts of
//! RESP_ERR come from the codec's `Display` impls, which are what the spec
//! defines; a few tests also compare whole responses to the hex examples of
//! the spec, byte for byte.
//!
//! Nothing here sleeps: `Server::start` returns once the server listens,
//! expiry is driven by a `ManualClock`, and every socket has a read timeout
//! so a server that fails to answer fails the test instead of hanging it.

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cafe::protocol::native::{FrameError, Limits, RequestError, opcode};
use cafe::router::Router;
use cafe::server::ServerHandle;

mod common;
use common::{
    Rng, fill, for_each_worker_count, spread_keys, start, start_with_clock, start_with_limits,
};

/// Largest response value this file is willing to allocate for.
const MAX_RESPONSE: usize = 4 << 20;

/// Limits small enough that refusing an oversize key or value is cheap.
const SMALL_LIMITS: Limits = Limits {
    max_key_len: 16,
    max_value_len: 64,
};

/// Every stat the spec lists (§3, "STATS body"), in the spec's order.
const SPEC_STATS: [&str; 22] = [
    "pid",
    "uptime",
    "time",
    "version",
    "threads",
    "curr_connections",
    "total_connections",
    "cmd_get",
    "cmd_set",
    "cmd_delete",
    "get_hits",
    "get_misses",
    "get_expired",
    "delete_hits",
    "delete_misses",
    "curr_items",
    "total_items",
    "bytes",
    "forwarded",
    "executed_for_peers",
    "request_errors",
    "framing_errors",
];

// ---------------------------------------------------------------------------
// Responses and connections

/// One response as read off the wire. Reading it checks that the header is
/// a well-formed v1 response header.
#[derive(Clone, PartialEq, Eq)]
struct Resp {
    opcode: u8,
    flags: u16,
    value: Vec<u8>,
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.opcode {
            opcode::RESP_OK => "RESP_OK",
            opcode::RESP_ERR => "RESP_ERR",
            opcode::RESP_NOT_FOUND => "RESP_NOT_FOUND",
            _ => "UNKNOWN",
        };
        write!(
            f,
            "{name}({}) flags=0x{:04x} value[{}]=\"{}\"",
            self.opcode,
            self.flags,
            self.value.len(),
            common::escape_cut(&self.value, 100)
        )
    }
}

/// RESP_OK with an empty value: a SET, SET_TTL, DELETE or NOOP
/// acknowledgement (or a GET hit on an empty value with flags 0).
fn ok() -> Resp {
    hit(0, b"")
}

/// RESP_OK for a GET hit.
fn hit(flags: u16, value: impl AsRef<[u8]>) -> Resp {
    Resp {
        opcode: opcode::RESP_OK,
        flags,
        value: value.as_ref().to_vec(),
    }
}

fn not_found() -> Resp {
    Resp {
        opcode: opcode::RESP_NOT_FOUND,
        flags: 0,
        value: Vec::new(),
    }
}

/// RESP_ERR whose value is `reason` as the codec displays it.
fn err(reason: impl fmt::Display) -> Resp {
    Resp {
        opcode: opcode::RESP_ERR,
        flags: 0,
        value: reason.to_string().into_bytes(),
    }
}

/// A client connection with timeouts and TCP_NODELAY, so that every write is
/// sent at once as its own segment.
struct Conn {
    stream: TcpStream,
}

impl Conn {
    fn open(server: &ServerHandle) -> Conn {
        Conn {
            stream: common::connect(server),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
        self.stream.flush().expect("flush");
    }

    /// Sends `bytes` one byte per write.
    fn dribble(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.send(std::slice::from_ref(b));
        }
    }

    fn recv(&mut self) -> Resp {
        let mut h = [0u8; 12];
        if let Err(e) = self.stream.read_exact(&mut h) {
            panic!("reading a response header: {e} ({:?})", e.kind());
        }
        assert_eq!(&h[..3], [0xCA, 0xFE, 1], "magic and version of {h:02x?}");
        let key_len = u16::from_be_bytes([h[6], h[7]]);
        assert_eq!(key_len, 0, "a response carries no key: {h:02x?}");
        let value_len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        assert!(value_len <= MAX_RESPONSE, "response too long: {h:02x?}");
        let mut value = vec![0; value_len];
        if let Err(e) = self.stream.read_exact(&mut value) {
            panic!("reading a {value_len}-byte response value: {e}");
        }
        Resp {
            opcode: h[3],
            flags: u16::from_be_bytes([h[4], h[5]]),
            value,
        }
    }

    fn call(&mut self, bytes: &[u8]) -> Resp {
        self.send(bytes);
        self.recv()
    }

    /// Reads exactly `n` raw bytes.
    fn recv_raw(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        if let Err(e) = self.stream.read_exact(&mut buf) {
            panic!("reading {n} raw bytes: {e}");
        }
        buf
    }

    fn stats(&mut self) -> Stats {
        Stats::parse(&self.call(&req::stats()))
    }

    /// The server closed gracefully: a read returns end of stream, not a
    /// reset and not more bytes.
    fn expect_eof(&mut self) {
        common::expect_eof(&mut self.stream);
    }
}

// ---------------------------------------------------------------------------
// Requests, built by hand

/// Request frames, written out from the spec's header layout (§2).
mod req {
    use cafe::protocol::native::opcode;

    /// A 12-byte header with arbitrary field values, for frames that break
    /// the rules (the caller sends whatever body it announced).
    pub fn header(op: u8, flags: u16, key_len: u16, value_len: u32) -> Vec<u8> {
        let mut h = Vec::with_capacity(12);
        h.extend_from_slice(&[0xCA, 0xFE, 1, op]);
        h.extend_from_slice(&flags.to_be_bytes());
        h.extend_from_slice(&key_len.to_be_bytes());
        h.extend_from_slice(&value_len.to_be_bytes());
        h
    }

    /// A whole frame whose lengths match its key and value.
    pub fn frame(op: u8, flags: u16, key: &[u8], value: &[u8]) -> Vec<u8> {
        let key_len = u16::try_from(key.len()).expect("key fits u16");
        let value_len = u32::try_from(value.len()).expect("value fits u32");
        let mut f = header(op, flags, key_len, value_len);
        f.extend_from_slice(key);
        f.extend_from_slice(value);
        f
    }

    pub fn get(key: &[u8]) -> Vec<u8> {
        frame(opcode::GET, 0, key, b"")
    }

    pub fn set(key: &[u8], value: &[u8], flags: u16) -> Vec<u8> {
        frame(opcode::SET, flags, key, value)
    }

    pub fn set_ttl(key: &[u8], value: &[u8], flags: u16, ttl: u32) -> Vec<u8> {
        let mut v = ttl.to_be_bytes().to_vec();
        v.extend_from_slice(value);
        frame(opcode::SET_TTL, flags, key, &v)
    }

    pub fn delete(key: &[u8]) -> Vec<u8> {
        frame(opcode::DELETE, 0, key, b"")
    }

    pub fn noop() -> Vec<u8> {
        frame(opcode::NOOP, 0, b"", b"")
    }

    pub fn stats() -> Vec<u8> {
        frame(opcode::STATS, 0, b"", b"")
    }
}

/// Parses spec-style hex ("ca fe 01 ..."); `│` and other separators are
/// ignored.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    assert_eq!(digits.len() % 2, 0, "odd number of hex digits in {s:?}");
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(text, 16).expect("hex")
        })
        .collect()
}

// ---------------------------------------------------------------------------
// STATS

/// A STATS body, checked against the format of §3: UTF-8 `name value`
/// lines, each ending in `\n`, no blank line, every value an unsigned
/// decimal integer except `version`.
struct Stats {
    names: Vec<String>,
    values: HashMap<String, String>,
}

impl Stats {
    fn parse(resp: &Resp) -> Stats {
        assert_eq!((resp.opcode, resp.flags), (opcode::RESP_OK, 0), "{resp:?}");
        let text = std::str::from_utf8(&resp.value).expect("STATS body is UTF-8");
        assert!(text.ends_with('\n'), "last line unterminated: {text:?}");
        let mut names = Vec::new();
        let mut values = HashMap::new();
        for line in text.split_terminator('\n') {
            assert!(!line.is_empty(), "blank line in {text:?}");
            let (name, value) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("line {line:?} is not `name value`"));
            assert!(!name.is_empty(), "line {line:?} has no name");
            if name != "version" {
                assert!(
                    value.parse::<u64>().is_ok(),
                    "{name} is not an unsigned integer: {value:?}"
                );
            }
            let previous = values.insert(name.to_owned(), value.to_owned());
            assert!(previous.is_none(), "{name} appears twice in {text:?}");
            names.push(name.to_owned());
        }
        Stats { names, values }
    }

    fn text(&self, name: &str) -> &str {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("no stat {name} among {:?}", self.names))
    }

    fn get(&self, name: &str) -> u64 {
        self.text(name).parse().expect("checked by parse")
    }

    /// How much `name` grew since `before`.
    fn delta(&self, before: &Stats, name: &str) -> u64 {
        let (now, then) = (self.get(name), before.get(name));
        now.checked_sub(then)
            .unwrap_or_else(|| panic!("{name} went down from {then} to {now}"))
    }
}

// ---------------------------------------------------------------------------
// Storage commands

#[test]
fn set_then_get_returns_the_value_and_flags_and_overwrite_replaces_both() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let flags = [0u16, 1, 0x8000, 0xFFFF, 0xBEEF, 0x00FF, 0x0100, 0x1234];
        let keys = spread_keys("k", threads, flags.len());
        for (key, &f) in keys.iter().zip(&flags) {
            let value = format!("first value of {}", key.escape_ascii());
            assert_eq!(c.call(&req::set(key, value.as_bytes(), f)), ok());
            assert_eq!(c.call(&req::get(key)), hit(f, &value));
        }
        // Overwrites with a shorter, a same-length and a longer value: the
        // new data and the new flags replace the old ones.
        for (i, key) in keys.iter().enumerate() {
            let old_len = format!("first value of {}", key.escape_ascii()).len();
            let new_len = [1, old_len, old_len + 100][i % 3];
            let value = fill(format!("{i}").as_bytes(), new_len);
            let f = !flags[i];
            assert_eq!(c.call(&req::set(key, &value, f)), ok());
            assert_eq!(c.call(&req::get(key)), hit(f, &value));
        }
        // Another connection sees the same items.
        let mut other = Conn::open(&server);
        for (i, key) in keys.iter().enumerate() {
            let resp = other.call(&req::get(key));
            assert_eq!((resp.opcode, resp.flags), (opcode::RESP_OK, !flags[i]));
        }
    });
}

#[test]
fn get_miss_and_delete_hit_and_miss() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        for key in spread_keys("d", threads, 8) {
            assert_eq!(c.call(&req::get(&key)), not_found());
            assert_eq!(c.call(&req::delete(&key)), not_found());
            assert_eq!(c.call(&req::set(&key, b"v", 5)), ok());
            assert_eq!(c.call(&req::delete(&key)), ok());
            assert_eq!(c.call(&req::get(&key)), not_found());
            assert_eq!(c.call(&req::delete(&key)), not_found());
        }
    });
}

#[test]
fn empty_and_binary_keys_and_values_round_trip() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("b", threads, 4);

        // An empty value is a hit (RESP_OK), not a miss.
        assert_eq!(c.call(&req::set(&keys[0], b"", 9)), ok());
        assert_eq!(c.call(&req::get(&keys[0])), hit(9, b""));
        assert_eq!(c.call(&req::set(&keys[1], b"", 0)), ok());
        assert_eq!(c.call(&req::get(&keys[1])), hit(0, b""));

        // Every byte value, in both orders, so each byte sits at an odd and
        // an even offset.
        let mut all: Vec<u8> = (0..=255u8).collect();
        all.extend((0..=255u8).rev());
        assert_eq!(c.call(&req::set(&keys[2], &all, 0xA5A5)), ok());
        assert_eq!(c.call(&req::get(&keys[2])), hit(0xA5A5, &all));

        // A value that is itself a valid frame is stored, never executed.
        let inner = req::set(b"inner", b"evil", 1);
        assert_eq!(c.call(&req::set(&keys[3], &inner, 2)), ok());
        assert_eq!(c.call(&req::get(&keys[3])), hit(2, &inner));
        assert_eq!(c.call(&req::get(b"inner")), not_found());

        // Binary keys, including bytes that look like a header and line
        // breaks; keys that differ only in their last byte are distinct.
        let key_a = [0x00, 0xFF, b' ', b'\n', 0xCA, 0xFE, 0x01, 0x02];
        let key_b = [0x00, 0xFF, b' ', b'\n', 0xCA, 0xFE, 0x01, 0x03];
        assert_eq!(c.call(&req::set(&key_a, b"a", 1)), ok());
        assert_eq!(c.call(&req::set(&key_b, b"b", 2)), ok());
        assert_eq!(c.call(&req::get(&key_a)), hit(1, b"a"));
        assert_eq!(c.call(&req::get(&key_b)), hit(2, b"b"));
        let all_bytes_key: Vec<u8> = (0..=255u8).take(250).collect();
        assert_eq!(c.call(&req::set(&all_bytes_key, &all, 3)), ok());
        assert_eq!(c.call(&req::get(&all_bytes_key)), hit(3, &all));
    });
}

#[test]
fn default_limits_accept_the_maximum_and_refuse_one_more() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let limits = Limits::default();
        let mut c = Conn::open(&server);
        let smuggle = req::set(b"smuggled", b"!", 0);

        // A key of exactly max_key_len (250) and a value of exactly
        // max_item_size (1 MiB) are accepted.
        let max_key = fill(b"K0123456789", limits.max_key_len);
        let max_value = fill(b"V0123456789abcdef", limits.max_value_len);
        assert_eq!(c.call(&req::set(&max_key, &max_value, 1)), ok());
        assert_eq!(c.call(&req::get(&max_key)), hit(1, &max_value));
        // SET_TTL's 4 TTL bytes do not count toward the limit.
        let ttl_key = spread_keys("ttl-max", threads, 1).remove(0);
        assert_eq!(c.call(&req::set_ttl(&ttl_key, &max_value, 2, 3600)), ok());
        assert_eq!(c.call(&req::get(&ttl_key)), hit(2, &max_value));

        // One more is refused, with the whole body sent and skipped.
        let long_key = fill(b"K0123456789", limits.max_key_len + 1);
        let too_big = fill(&smuggle, limits.max_value_len + 1);
        let refused: Vec<(Vec<u8>, RequestError)> = vec![
            (
                req::set(&long_key, b"v", 0),
                RequestError::KeyTooLong {
                    len: limits.max_key_len + 1,
                    max: limits.max_key_len,
                },
            ),
            (
                req::get(&long_key),
                RequestError::KeyTooLong {
                    len: limits.max_key_len + 1,
                    max: limits.max_key_len,
                },
            ),
            (
                req::set(&fill(b"K", 65535), &smuggle, 0),
                RequestError::KeyTooLong {
                    len: 65535,
                    max: limits.max_key_len,
                },
            ),
            (
                req::set(&max_key, &too_big, 0),
                RequestError::ValueTooLarge {
                    len: too_big.len() as u64,
                    max: limits.max_value_len,
                },
            ),
            (
                req::set_ttl(&ttl_key, &too_big, 0, 60),
                RequestError::ValueTooLarge {
                    len: too_big.len() as u64,
                    max: limits.max_value_len,
                },
            ),
        ];
        for (i, (bytes, error)) in refused.iter().enumerate() {
            assert_eq!(c.call(bytes), err(error), "refused case {i}");
            let probe = format!("probe{i}");
            assert_eq!(c.call(&req::set(probe.as_bytes(), b"p", 7)), ok());
            assert_eq!(c.call(&req::get(probe.as_bytes())), hit(7, b"p"));
        }
        // The SETs refused as too large removed the old values; the
        // others changed nothing.
        assert_eq!(c.call(&req::get(&max_key)), not_found());
        assert_eq!(c.call(&req::get(&ttl_key)), not_found());
        assert_eq!(c.call(&req::get(b"smuggled")), not_found());
    });
}

// ---------------------------------------------------------------------------
// SET_TTL and expiry

#[test]
fn set_ttl_expires_with_the_clock_and_ttl_zero_or_a_later_set_never_expire() {
    for_each_worker_count(|threads| {
        let (server, clock) = start_with_clock(threads);
        let mut c = Conn::open(&server);

        let short = spread_keys("short", threads, 4);
        let forever = spread_keys("forever", threads, 4);
        let cleared = spread_keys("cleared", threads, 4);
        let huge = spread_keys("huge", threads, 4);
        let deleted = spread_keys("deleted", threads, 4);
        for key in &short {
            assert_eq!(c.call(&req::set_ttl(key, b"short", 0x11, 10)), ok());
            assert_eq!(c.call(&req::get(key)), hit(0x11, b"short"));
        }
        for key in &forever {
            assert_eq!(c.call(&req::set_ttl(key, b"forever", 0x22, 0)), ok());
        }
        for key in &cleared {
            assert_eq!(c.call(&req::set_ttl(key, b"old", 0x01, 5)), ok());
            assert_eq!(c.call(&req::set(key, b"cleared", 0x33)), ok());
        }
        for key in &huge {
            // Relative, never read as an absolute Unix time.
            assert_eq!(c.call(&req::set_ttl(key, b"huge", 0x44, u32::MAX)), ok());
        }
        for key in &deleted {
            assert_eq!(c.call(&req::set_ttl(key, b"deleted", 0, 10)), ok());
        }
        let before = c.stats();

        // One millisecond short of the TTL: still there.
        clock.advance_ms(9_999);
        for key in &short {
            assert_eq!(c.call(&req::get(key)), hit(0x11, b"short"));
        }
        // At the TTL: gone, for GET and for DELETE.
        clock.advance_ms(1);
        for key in &short {
            assert_eq!(c.call(&req::get(key)), not_found());
        }
        for key in &deleted {
            assert_eq!(c.call(&req::delete(key)), not_found());
        }
        let after = c.stats();
        let n = short.len() as u64;
        // Each expired item is reclaimed exactly once: by the GET or DELETE
        // that finds it (counted in get_expired for a GET), or earlier by
        // the worker's background sweep.
        assert!(after.delta(&before, "get_expired") <= n);
        assert_eq!(after.delta(&before, "reclaimed"), n + deleted.len() as u64);
        assert_eq!(after.delta(&before, "get_misses"), n);
        assert_eq!(after.delta(&before, "get_hits"), n);
        assert_eq!(after.delta(&before, "delete_misses"), deleted.len() as u64);
        assert_eq!(
            after.get("curr_items"),
            (forever.len() + cleared.len() + huge.len()) as u64
        );

        // A new SET_TTL counts from now, not from the server's start.
        assert_eq!(c.call(&req::set_ttl(&short[0], b"again", 5, 1)), ok());
        clock.advance_ms(999);
        assert_eq!(c.call(&req::get(&short[0])), hit(5, b"again"));
        clock.advance_ms(1);
        assert_eq!(c.call(&req::get(&short[0])), not_found());

        // A year later: TTL 0, a SET after a SET_TTL, and a huge TTL are all
        // still there.
        clock.advance_ms(365 * 24 * 3600 * 1000);
        for key in &forever {
            assert_eq!(c.call(&req::get(key)), hit(0x22, b"forever"));
        }
        for key in &cleared {
            assert_eq!(c.call(&req::get(key)), hit(0x33, b"cleared"));
        }
        for key in &huge {
            assert_eq!(c.call(&req::get(key)), hit(0x44, b"huge"));
        }
    });
}

#[test]
fn the_background_sweep_reclaims_expired_items_nobody_asks_for() {
    for_each_worker_count(|threads| {
        let (server, clock) = start_with_clock(threads);
        let mut c = Conn::open(&server);
        let short = spread_keys("swept", threads, 8);
        let kept = spread_keys("kept", threads, 8);
        for key in &short {
            assert_eq!(c.call(&req::set_ttl(key, b"short", 1, 5)), ok());
        }
        for key in &kept {
            assert_eq!(c.call(&req::set(key, b"kept", 2)), ok());
        }
        let before = c.stats();
        assert_eq!(before.get("curr_items"), (short.len() + kept.len()) as u64);

        clock.advance_ms(5_000);
        // Each STATS gives every worker a loop turn with the new time; a
        // worker sweeps at the end of a turn, after answering, so the
        // first STATS may still count the dead items and the second may not.
        c.stats();
        let after = c.stats();
        assert_eq!(after.get("curr_items"), kept.len() as u64);
        assert_eq!(after.delta(&before, "reclaimed"), short.len() as u64);
        assert_eq!(after.delta(&before, "get_expired"), 0, "no GET found them");
        for key in &kept {
            assert_eq!(c.call(&req::get(key)), hit(2, b"kept"));
        }
    });
}

// ---------------------------------------------------------------------------
// NOOP and STATS

#[test]
fn noop_answers_ok_after_every_earlier_pipelined_reply() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("fence", threads, 32);
        assert_eq!(c.call(&req::noop()), ok());

        // SETs, then GETs whose replies are distinguishable (distinct
        // values), then NOOP, all in one write.
        let mut bytes = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            bytes.extend(req::set(key, format!("value{i}").as_bytes(), i as u16));
        }
        for key in &keys {
            bytes.extend(req::get(key));
        }
        bytes.extend(req::noop());
        bytes.extend(req::get(b"fence-missing"));
        c.send(&bytes);
        for i in 0..keys.len() {
            assert_eq!(c.recv(), ok(), "SET {i}");
        }
        for i in 0..keys.len() {
            assert_eq!(c.recv(), hit(i as u16, format!("value{i}")), "GET {i}");
        }
        assert_eq!(c.recv(), ok(), "NOOP");
        assert_eq!(c.recv(), not_found(), "GET after NOOP");

        // Once the NOOP is answered, everything before it has been executed:
        // another connection sees every write.
        let mut bytes = Vec::new();
        for key in &keys {
            bytes.extend(req::set(key, b"second", 0x5EC));
        }
        bytes.extend(req::noop());
        c.send(&bytes);
        for _ in &keys {
            assert_eq!(c.recv(), ok());
        }
        assert_eq!(c.recv(), ok(), "NOOP");
        let mut other = Conn::open(&server);
        for key in &keys {
            assert_eq!(other.call(&req::get(key)), hit(0x5EC, b"second"));
        }
    });
}

#[test]
fn stats_describe_the_server_and_count_what_the_test_did() {
    for_each_worker_count(|threads| {
        let started = Instant::now();
        let server = start(threads);
        let mut c = Conn::open(&server);
        let mut idle = [Conn::open(&server), Conn::open(&server)];
        // A NOOP answered proves its connection was accepted.
        assert_eq!(c.call(&req::noop()), ok());
        for conn in &mut idle {
            assert_eq!(conn.call(&req::noop()), ok());
        }

        let unix_now = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("after 1970")
                .as_secs()
        };
        let earliest = unix_now();
        let s0 = c.stats();
        let latest = unix_now();

        // Every stat of the spec is there; the five server lines come first.
        for name in SPEC_STATS {
            s0.text(name);
        }
        assert_eq!(&s0.names[..5], &SPEC_STATS[..5]);
        assert_eq!(s0.get("pid"), u64::from(std::process::id()));
        assert!(s0.get("uptime") <= started.elapsed().as_secs());
        assert!((earliest..=latest).contains(&s0.get("time")));
        assert_eq!(s0.text("version"), cafe::stats::VERSION);
        assert_eq!(s0.get("threads"), threads as u64);
        assert_eq!(s0.get("curr_connections"), 3);
        assert_eq!(s0.get("total_connections"), 3);
        for name in &SPEC_STATS[7..] {
            assert_eq!(s0.get(name), 0, "{name} on a fresh server");
        }

        // Known requests on keys owned by every worker.
        let keys = spread_keys("s", threads, 8);
        let missing = spread_keys("missing", threads, 3);
        let ttl_key = b"s-ttl".to_vec();
        let mut keyed: Vec<&[u8]> = Vec::new();
        let mut stored_bytes = 0;
        for key in &keys {
            assert_eq!(c.call(&req::set(key, b"value", 1)), ok());
            keyed.push(key);
        }
        assert_eq!(c.call(&req::set_ttl(&ttl_key, b"ttl-value", 2, 3600)), ok());
        keyed.push(&ttl_key);
        assert_eq!(c.call(&req::set(&keys[0], b"overwritten", 3)), ok());
        keyed.push(&keys[0]);
        for key in &keys {
            assert_eq!(c.call(&req::get(key)).opcode, opcode::RESP_OK);
            keyed.push(key);
        }
        for key in &missing {
            assert_eq!(c.call(&req::get(key)), not_found());
            keyed.push(key);
        }
        for key in &keys[..2] {
            assert_eq!(c.call(&req::delete(key)), ok());
            keyed.push(key);
        }
        assert_eq!(c.call(&req::delete(&missing[0])), not_found());
        keyed.push(&missing[0]);
        assert_eq!(
            c.call(&req::frame(9, 0, b"", b"")),
            err(RequestError::UnknownOpcode(9))
        );
        assert_eq!(
            c.call(&req::frame(opcode::GET, 1, b"k", b"")),
            err(RequestError::UnexpectedFlags)
        );
        for key in &keys[2..] {
            stored_bytes += key.len() + b"value".len();
        }
        stored_bytes += ttl_key.len() + b"ttl-value".len();

        let s1 = c.stats();
        let expect = [
            ("cmd_set", keys.len() + 2),
            ("total_items", keys.len() + 2),
            ("cmd_get", keys.len() + missing.len()),
            ("get_hits", keys.len()),
            ("get_misses", missing.len()),
            ("get_expired", 0),
            ("cmd_delete", 3),
            ("delete_hits", 2),
            ("delete_misses", 1),
            ("request_errors", 2),
            ("framing_errors", 0),
            ("total_connections", 0),
        ];
        for (name, n) in expect {
            assert_eq!(s1.delta(&s0, name), n as u64, "{name}");
        }
        let live = keys.len() + 1 - 2;
        assert_eq!(s1.get("curr_items"), live as u64);
        assert!(
            s1.get("bytes") >= stored_bytes as u64,
            "bytes {} < {stored_bytes} bytes of keys and values",
            s1.get("bytes")
        );
        assert_eq!(s1.get("curr_connections"), 3);
        assert_eq!(s1.get("threads"), threads as u64);
        assert_eq!(s1.get("pid"), s0.get("pid"));

        // Forwarded requests: none with one worker; with more, the keyed
        // requests whose key another worker owns than the connection's
        // (which one that is, the kernel decided).
        let forwarded = s1.delta(&s0, "forwarded");
        assert_eq!(s1.delta(&s0, "executed_for_peers"), forwarded);
        let router = Router::new(threads);
        let candidates: Vec<u64> = (0..threads)
            .map(|w| keyed.iter().filter(|k| router.owner(k) != w).count() as u64)
            .collect();
        assert!(
            candidates.contains(&forwarded),
            "forwarded {forwarded}, expected one of {candidates:?}"
        );
        if threads > 1 {
            assert!(forwarded > 0);
        }

        // STATS answers in order: it sees the SET before it in the pipeline.
        let mut bytes = req::set(&keys[0], b"v", 0);
        bytes.extend(req::stats());
        c.send(&bytes);
        assert_eq!(c.recv(), ok());
        let s2 = Stats::parse(&c.recv());
        assert_eq!(s2.delta(&s1, "cmd_set"), 1);

        // Removing everything brings items and bytes back to zero.
        for key in keys[2..].iter().chain([&ttl_key, &keys[0]]) {
            assert_eq!(c.call(&req::delete(key)), ok());
        }
        let s3 = c.stats();
        assert_eq!(s3.get("curr_items"), 0);
        assert_eq!(s3.get("bytes"), 0);
    });
}

// ---------------------------------------------------------------------------
// Refused requests (§5b)

/// One refused request: its bytes (the whole announced frame) and why it is
/// refused.
struct Refused {
    what: &'static str,
    bytes: Vec<u8>,
    error: RequestError,
}

/// Every rule of §5b against [`SMALL_LIMITS`], plus frames that break
/// several rules (only the first, in the spec's order, is reported). Bodies
/// hold `smuggle`, a valid frame, wherever the length allows: if the server
/// ever parsed a refused body as frames, it would execute it.
fn refused_requests(smuggle: &[u8]) -> Vec<Refused> {
    use req::{frame, header};
    let max_key = SMALL_LIMITS.max_key_len;
    let max_value = SMALL_LIMITS.max_value_len;
    let long_key = fill(b"L", max_key + 1);
    let big = fill(smuggle, max_value + 1);
    let mut ttl_big = 60u32.to_be_bytes().to_vec();
    ttl_big.extend(&big);
    let key_too_long = RequestError::KeyTooLong {
        len: max_key + 1,
        max: max_key,
    };
    let value_too_large = RequestError::ValueTooLarge {
        len: big.len() as u64,
        max: max_value,
    };
    let r = |what, bytes, error| Refused { what, bytes, error };
    let mut cases = vec![
        // 1. Unknown opcodes, response opcodes included.
        r(
            "opcode 9",
            frame(9, 0, b"k", smuggle),
            RequestError::UnknownOpcode(9),
        ),
        r(
            "opcode 0",
            frame(0, 0, b"", b""),
            RequestError::UnknownOpcode(0),
        ),
        r(
            "opcode 7",
            frame(7, 0, smuggle, b""),
            RequestError::UnknownOpcode(7),
        ),
        r(
            "opcode 127",
            frame(127, 3, b"k", b"v"),
            RequestError::UnknownOpcode(127),
        ),
        r(
            "RESP_OK as a request",
            frame(opcode::RESP_OK, 0, b"k", smuggle),
            RequestError::UnknownOpcode(128),
        ),
        r(
            "RESP_ERR as a request",
            frame(opcode::RESP_ERR, 0, b"", b"reason"),
            RequestError::UnknownOpcode(129),
        ),
        r(
            "RESP_NOT_FOUND as a request",
            frame(opcode::RESP_NOT_FOUND, 0, b"", b""),
            RequestError::UnknownOpcode(130),
        ),
        r(
            "opcode 255",
            frame(255, 0, b"k", b""),
            RequestError::UnknownOpcode(255),
        ),
        // 2. Empty keys.
        r(
            "GET, empty key",
            frame(opcode::GET, 0, b"", b""),
            RequestError::EmptyKey,
        ),
        r(
            "SET, empty key",
            frame(opcode::SET, 0, b"", smuggle),
            RequestError::EmptyKey,
        ),
        r(
            "DELETE, empty key",
            frame(opcode::DELETE, 0, b"", b""),
            RequestError::EmptyKey,
        ),
        r(
            "SET_TTL, empty key",
            req::set_ttl(b"", smuggle, 0, 60),
            RequestError::EmptyKey,
        ),
        // 3. Keys over the limit.
        r("GET, long key", req::get(&long_key), key_too_long),
        r(
            "SET, long key",
            req::set(&long_key, smuggle, 0),
            key_too_long,
        ),
        r("DELETE, long key", req::delete(&long_key), key_too_long),
        r(
            "SET_TTL, long key",
            req::set_ttl(&long_key, smuggle, 0, 60),
            key_too_long,
        ),
        // 4. Keys where none is allowed.
        r(
            "NOOP with a key",
            frame(opcode::NOOP, 0, smuggle, b""),
            RequestError::UnexpectedKey,
        ),
        r(
            "STATS with a key",
            frame(opcode::STATS, 0, b"k", b""),
            RequestError::UnexpectedKey,
        ),
        // 5. Values where none is allowed.
        r(
            "GET with a value",
            frame(opcode::GET, 0, b"victim", smuggle),
            RequestError::UnexpectedValue,
        ),
        r(
            "DELETE with a value",
            frame(opcode::DELETE, 0, b"victim", smuggle),
            RequestError::UnexpectedValue,
        ),
        r(
            "NOOP with a value",
            frame(opcode::NOOP, 0, b"", smuggle),
            RequestError::UnexpectedValue,
        ),
        r(
            "STATS with a value",
            frame(opcode::STATS, 0, b"", b"x"),
            RequestError::UnexpectedValue,
        ),
        // 6. Flags where they must be 0.
        r(
            "GET with flags",
            frame(opcode::GET, 1, b"victim", b""),
            RequestError::UnexpectedFlags,
        ),
        r(
            "DELETE with flags",
            frame(opcode::DELETE, 0x8000, b"victim", b""),
            RequestError::UnexpectedFlags,
        ),
        r(
            "NOOP with flags",
            frame(opcode::NOOP, 0xFFFF, b"", b""),
            RequestError::UnexpectedFlags,
        ),
        r(
            "STATS with flags",
            frame(opcode::STATS, 2, b"", b""),
            RequestError::UnexpectedFlags,
        ),
        // 8. Values over the limit (data length, TTL not counted).
        r(
            "SET, value too large",
            req::set(b"victim", &big, 0),
            value_too_large,
        ),
        r(
            "SET_TTL, value too large",
            frame(opcode::SET_TTL, 0, b"victim", &ttl_big),
            value_too_large,
        ),
        // Several rules broken: only the first is reported.
        r(
            "opcode 9, empty key, flags, value",
            frame(9, 1, b"", smuggle),
            RequestError::UnknownOpcode(9),
        ),
        r(
            "GET, empty key, value, flags",
            frame(opcode::GET, 1, b"", smuggle),
            RequestError::EmptyKey,
        ),
        r(
            "GET, long key, value, flags",
            frame(opcode::GET, 1, &long_key, smuggle),
            key_too_long,
        ),
        r(
            "NOOP, key, value, flags",
            frame(opcode::NOOP, 1, b"k", smuggle),
            RequestError::UnexpectedKey,
        ),
        r(
            "DELETE, value, flags",
            frame(opcode::DELETE, 1, b"victim", smuggle),
            RequestError::UnexpectedValue,
        ),
        r(
            "SET_TTL, empty key, 2-byte value",
            frame(opcode::SET_TTL, 0, b"", b"ab"),
            RequestError::EmptyKey,
        ),
        r(
            "SET_TTL, long key, 2-byte value",
            frame(opcode::SET_TTL, 0, &long_key, b"ab"),
            key_too_long,
        ),
    ];
    // 7. SET_TTL too short to hold its TTL (flags are allowed on SET_TTL).
    for len in 0..4u32 {
        let mut bytes = header(opcode::SET_TTL, 0x0F0F, 6, len);
        bytes.extend_from_slice(b"victim");
        bytes.extend(fill(b"\x00\x00\x00\x01", len as usize));
        cases.push(r("SET_TTL, short value", bytes, RequestError::MissingTtl));
    }
    cases
}

#[test]
fn refused_requests_are_answered_with_the_reason_and_the_connection_stays_usable() {
    for_each_worker_count(|threads| {
        let server = start_with_limits(threads, SMALL_LIMITS);
        let mut c = Conn::open(&server);
        let smuggle = req::set(b"smuggled", b"!", 0);
        let cases = refused_requests(&smuggle);
        let probes = spread_keys("p", threads, cases.len());
        assert_eq!(c.call(&req::set(b"victim", b"original", 1)), ok());

        // Exactly at the limits is accepted (SET_TTL's TTL not counted).
        let max_key = fill(b"K", SMALL_LIMITS.max_key_len);
        let max_value = fill(b"V", SMALL_LIMITS.max_value_len);
        assert_eq!(c.call(&req::set(&max_key, &max_value, 2)), ok());
        assert_eq!(c.call(&req::get(&max_key)), hit(2, &max_value));
        assert_eq!(c.call(&req::set_ttl(&max_key, &max_value, 3, 60)), ok());
        assert_eq!(c.call(&req::get(&max_key)), hit(3, &max_value));
        assert_eq!(c.call(&req::delete(&max_key)), ok());

        // One refused request per write, each followed by a SET and a GET
        // that must be framed and answered correctly.
        for (i, (case, probe)) in cases.iter().zip(&probes).enumerate() {
            assert_eq!(c.call(&case.bytes), err(case.error), "{}", case.what);
            let value = format!("first {i}");
            assert_eq!(c.call(&req::set(probe, value.as_bytes(), i as u16)), ok());
            assert_eq!(
                c.call(&req::get(probe)),
                hit(i as u16, &value),
                "{}",
                case.what
            );
        }

        // All of them again in one write, interleaved with SETs and GETs:
        // each refusal takes its request's place in the reply order.
        let mut bytes = Vec::new();
        for (i, (case, probe)) in cases.iter().zip(&probes).enumerate() {
            bytes.extend(&case.bytes);
            bytes.extend(req::set(
                probe,
                format!("second {i}").as_bytes(),
                !(i as u16),
            ));
            bytes.extend(req::get(probe));
        }
        c.send(&bytes);
        for (i, case) in cases.iter().enumerate() {
            assert_eq!(c.recv(), err(case.error), "pipelined {}", case.what);
            assert_eq!(c.recv(), ok(), "SET after {}", case.what);
            let value = format!("second {i}");
            assert_eq!(
                c.recv(),
                hit(!(i as u16), &value),
                "GET after {}",
                case.what
            );
        }

        // Refused requests had no effect beyond one: a SET refused as too
        // large removed the victim's old value, so a cache never serves the
        // value its client just tried to replace. The counters saw only the
        // probes and the SETs, GETs and DELETE above.
        let s = c.stats();
        let n = cases.len() as u64;
        assert_eq!(s.get("request_errors"), 2 * n);
        assert_eq!(s.get("cmd_set"), 2 * n + 3);
        assert_eq!(s.get("cmd_get"), 2 * n + 2);
        assert_eq!(s.get("cmd_delete"), 1);
        assert_eq!(s.get("framing_errors"), 0);
        assert_eq!(c.call(&req::get(b"victim")), not_found());
        assert_eq!(c.call(&req::get(b"smuggled")), not_found());
    });
}

#[test]
fn reason_texts_match_the_spec() {
    // The reasons the tests expect come from the codec's Display impls;
    // this pins those to the strings of §5.
    let cases: [(String, &str); 10] = [
        (
            RequestError::UnknownOpcode(128).to_string(),
            "unknown opcode 128",
        ),
        (RequestError::EmptyKey.to_string(), "empty key"),
        (
            RequestError::KeyTooLong { len: 251, max: 250 }.to_string(),
            "key of 251 bytes is over the limit of 250",
        ),
        (
            RequestError::UnexpectedKey.to_string(),
            "this opcode takes no key",
        ),
        (
            RequestError::UnexpectedValue.to_string(),
            "this opcode takes no value",
        ),
        (
            RequestError::UnexpectedFlags.to_string(),
            "flags must be 0 for this opcode",
        ),
        (
            RequestError::MissingTtl.to_string(),
            "SET_TTL value must start with a 4-byte TTL",
        ),
        (
            RequestError::ValueTooLarge { len: 65, max: 64 }.to_string(),
            "value of 65 bytes is over the limit of 64",
        ),
        (
            FrameError::BadMagic(0x4745).to_string(),
            "bad magic 0x4745, expected 0xcafe",
        ),
        (
            FrameError::UnsupportedVersion(2).to_string(),
            "unsupported protocol version 2, this server speaks 1",
        ),
    ];
    for (got, spec) in cases {
        assert_eq!(got, spec);
    }
}

#[test]
fn oversize_body_sent_in_chunks_is_skipped_not_parsed() {
    for_each_worker_count(|threads| {
        let server = start_with_limits(threads, SMALL_LIMITS);
        let mut c = Conn::open(&server);
        let max = SMALL_LIMITS.max_value_len;
        // The body is valid frames back to back: SETs of a key that must
        // never exist, and NOOPs that would draw extra replies.
        let mut pattern = req::set(b"smuggled", b"!", 0);
        pattern.extend(req::noop());
        let keys = spread_keys("o", threads, 2);

        for (i, ttl) in [None, Some(60u32)].into_iter().enumerate() {
            let data_len = 4096;
            let body = fill(&pattern, data_len);
            let (head, error) = match ttl {
                None => (
                    req::header(opcode::SET, 0, keys[i].len() as u16, data_len as u32),
                    RequestError::ValueTooLarge {
                        len: data_len as u64,
                        max,
                    },
                ),
                Some(_) => (
                    req::header(opcode::SET_TTL, 0, keys[i].len() as u16, data_len as u32),
                    RequestError::ValueTooLarge {
                        len: (data_len - 4) as u64,
                        max,
                    },
                ),
            };
            // The refusal comes from the header (and key) alone.
            c.send(&head);
            c.send(&keys[i]);
            assert_eq!(c.recv(), err(error));
            // Then the body, in uneven chunks.
            let mut rest = &body[..];
            for size in [1, 2, 11, 12, 13, 100, 1000].into_iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at(size.min(rest.len()));
                c.send(chunk);
                rest = tail;
            }
            // The next request is read as a request: nothing smuggled ran.
            assert_eq!(c.call(&req::get(b"smuggled")), not_found());
            assert_eq!(c.call(&req::get(&keys[i])), not_found());
            assert_eq!(c.call(&req::set(&keys[i], b"fits", 4)), ok());
            assert_eq!(c.call(&req::get(&keys[i])), hit(4, b"fits"));
        }
        let s = c.stats();
        assert_eq!(s.get("cmd_set"), 2);
        assert_eq!(s.get("request_errors"), 2);
    });
}

#[test]
fn a_four_gib_value_claim_is_refused_from_the_header_alone() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let max = Limits::default().max_value_len;
        let mut hostile = Vec::new();
        for (op, data_len) in [
            (opcode::SET, u64::from(u32::MAX)),
            (opcode::SET_TTL, u64::from(u32::MAX) - 4),
        ] {
            let mut conn = Conn::open(&server);
            let mut head = req::header(op, 0, 1, u32::MAX);
            head.push(b'k');
            conn.send(&head);
            assert_eq!(
                conn.recv(),
                err(RequestError::ValueTooLarge { len: data_len, max })
            );
            // A little of the body; the server swallows it and answers
            // nothing more.
            conn.send(&fill(&req::noop(), 64 << 10));
            hostile.push(conn);
        }

        // While both claims are still being swallowed, the server serves
        // other connections normally.
        let mut c = Conn::open(&server);
        let keys = spread_keys("healthy", threads, 4);
        for key in &keys {
            assert_eq!(c.call(&req::set(key, b"fine", 8)), ok());
            assert_eq!(c.call(&req::get(key)), hit(8, b"fine"));
        }
        assert_eq!(c.stats().get("request_errors"), 2);
        drop(hostile);
        assert_eq!(c.call(&req::noop()), ok());
        let mut fresh = Conn::open(&server);
        assert_eq!(fresh.call(&req::get(&keys[0])), hit(8, b"fine"));
    });
}

// ---------------------------------------------------------------------------
// Unframeable streams (§5a)

#[test]
fn bad_magic_or_version_answers_earlier_requests_then_the_error_then_closes() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let keys = spread_keys("kept", threads, 8);
        let mut bad_frames: Vec<(Vec<u8>, FrameError)> = vec![
            (
                b"GET / HTTP/1.1\r\nHost: cafe\r\n\r\n".to_vec(),
                FrameError::BadMagic(0x4745),
            ),
            (req::get(b"k")[1..].to_vec(), FrameError::BadMagic(0xFE01)),
        ];
        for version in [0u8, 2, 255] {
            let mut f = req::set(b"after", b"never", 0);
            f[2] = version;
            bad_frames.push((f, FrameError::UnsupportedVersion(version)));
        }

        for (i, (bad, error)) in bad_frames.iter().enumerate() {
            // A SET answered on its own, then SETs pipelined with the bad
            // bytes and a valid frame after them.
            let mut c = Conn::open(&server);
            let first = format!("first{i}");
            assert_eq!(c.call(&req::set(first.as_bytes(), b"stored", 1)), ok());
            let mut bytes = Vec::new();
            for key in &keys {
                bytes.extend(req::set(key, format!("before {i}").as_bytes(), i as u16));
            }
            bytes.extend(bad);
            bytes.extend(req::set(b"after", b"never", 0));
            c.send(&bytes);
            for key in &keys {
                assert_eq!(c.recv(), ok(), "SET {} before {error}", key.escape_ascii());
            }
            assert_eq!(c.recv(), err(error));
            c.expect_eof();

            // What came before is stored; nothing after the bad bytes ran.
            let mut other = Conn::open(&server);
            assert_eq!(other.call(&req::get(first.as_bytes())), hit(1, b"stored"));
            for key in &keys {
                let value = format!("before {i}");
                assert_eq!(other.call(&req::get(key)), hit(i as u16, &value));
            }
            assert_eq!(other.call(&req::get(b"after")), not_found());
        }
        let mut c = Conn::open(&server);
        let s = c.stats();
        assert_eq!(s.get("framing_errors"), bad_frames.len() as u64);
        assert_eq!(s.get("request_errors"), 0);
    });
}

#[test]
fn bad_magic_is_refused_after_two_bytes_and_bad_version_after_three() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let cases: [(&[u8], FrameError); 2] = [
            (&[0xCA, 0xFF], FrameError::BadMagic(0xCAFF)),
            (&[0xCA, 0xFE, 0x02], FrameError::UnsupportedVersion(2)),
        ];
        for (bytes, error) in cases {
            // Nothing more is sent: the error must come without a header.
            let mut c = Conn::open(&server);
            c.send(bytes);
            assert_eq!(c.recv(), err(error));
            c.expect_eof();
        }
        // Any other first byte selects memcached's text protocol, which
        // answers a line it does not know with ERROR and goes on.
        for bytes in [
            &[0x12, 0x34, b'\n'][..],
            &[0xFE, 0xCA, b'\n'],
            &[0x00, b'\n'],
        ] {
            let mut c = Conn::open(&server);
            c.send(bytes);
            assert_eq!(c.recv_raw(7), b"ERROR\r\n");
        }
        let mut c = Conn::open(&server);
        assert_eq!(c.call(&req::set(b"k", b"v", 0)), ok());
    });
}

#[test]
fn the_framing_error_reply_survives_a_client_that_keeps_sending() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let key = spread_keys("g", threads, 2).remove(1);
        c.send(&req::set(&key, b"before", 6));
        c.send(b"\x00\x01garbage");
        // Keep writing garbage (1 MiB) before reading anything; the server
        // must drain it rather than reset the connection.
        let garbage = fill(b"GARBAGE \xCA\xFE\x01\x02", 64 << 10);
        for _ in 0..16 {
            c.send(&garbage);
        }
        assert_eq!(c.recv(), ok());
        assert_eq!(c.recv(), err(FrameError::BadMagic(0x0001)));
        c.expect_eof();
        let mut other = Conn::open(&server);
        assert_eq!(other.call(&req::get(&key)), hit(6, b"before"));
    });
}

// ---------------------------------------------------------------------------
// Framing: any split, any coalescing

#[test]
fn every_opcode_sent_one_byte_at_a_time() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("byte", threads, 4);
        for key in &keys {
            c.dribble(&req::set(key, b"dribbled value", 0x0A0B));
            assert_eq!(c.recv(), ok());
            c.dribble(&req::get(key));
            assert_eq!(c.recv(), hit(0x0A0B, b"dribbled value"));
            c.dribble(&req::set_ttl(key, b"with ttl", 7, 3600));
            assert_eq!(c.recv(), ok());
            c.dribble(&req::get(key));
            assert_eq!(c.recv(), hit(7, b"with ttl"));
            c.dribble(&req::delete(key));
            assert_eq!(c.recv(), ok());
            c.dribble(&req::get(key));
            assert_eq!(c.recv(), not_found());
            c.dribble(&req::delete(key));
            assert_eq!(c.recv(), not_found());
        }
        c.dribble(&req::noop());
        assert_eq!(c.recv(), ok());
        // A refused request and its body, byte by byte.
        c.dribble(&req::frame(opcode::GET, 0, b"k", &req::noop()));
        assert_eq!(c.recv(), err(RequestError::UnexpectedValue));
        c.dribble(&req::stats());
        let s = Stats::parse(&c.recv());
        assert_eq!(s.get("threads"), threads as u64);
        assert_eq!(s.get("cmd_set"), 2 * keys.len() as u64);
        assert_eq!(s.get("cmd_get"), 3 * keys.len() as u64);
        assert_eq!(s.get("cmd_delete"), 2 * keys.len() as u64);
        assert_eq!(s.get("request_errors"), 1);
    });
}

#[test]
fn a_request_split_at_every_point_is_answered_once_and_correctly() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let key = spread_keys("split", threads, threads).pop().expect("a key");
        let split = |c: &mut Conn, frame: &[u8], cut: usize| {
            c.send(&frame[..cut]);
            c.send(&frame[cut..]);
        };

        let set_len = req::set(&key, b"value-000", 0).len();
        for cut in 1..set_len {
            let value = format!("value-{cut:03}");
            split(&mut c, &req::set(&key, value.as_bytes(), cut as u16), cut);
            assert_eq!(c.recv(), ok(), "SET split at {cut}");
            let get = req::get(&key);
            split(&mut c, &get, cut.min(get.len() - 1));
            assert_eq!(c.recv(), hit(cut as u16, &value), "GET split at {cut}");
        }
        // Three pieces: the header cut anywhere, then the body cut anywhere.
        for a in 1..12 {
            for b in a + 1..set_len {
                let frame = req::set(&key, b"value-abc", a as u16);
                c.send(&frame[..a]);
                c.send(&frame[a..b]);
                c.send(&frame[b..]);
                assert_eq!(c.recv(), ok(), "SET split at {a} and {b}");
            }
        }
        let ttl = req::set_ttl(&key, b"ttl", 3, 3600);
        for cut in 1..ttl.len() {
            split(&mut c, &ttl, cut);
            assert_eq!(c.recv(), ok(), "SET_TTL split at {cut}");
        }
        assert_eq!(c.call(&req::get(&key)), hit(3, b"ttl"));
        let delete = req::delete(&key);
        for cut in 1..delete.len() {
            assert_eq!(c.call(&req::set(&key, b"x", 0)), ok());
            split(&mut c, &delete, cut);
            assert_eq!(c.recv(), ok(), "DELETE split at {cut}");
            split(&mut c, &req::get(&key), cut);
            assert_eq!(c.recv(), not_found(), "GET miss split at {cut}");
        }
        for cut in 1..12 {
            split(&mut c, &req::noop(), cut);
            assert_eq!(c.recv(), ok(), "NOOP split at {cut}");
            split(&mut c, &req::stats(), cut);
            Stats::parse(&c.recv());
        }
        let refused = req::frame(opcode::NOOP, 0, b"", b"body");
        for cut in 1..refused.len() {
            split(&mut c, &refused, cut);
            assert_eq!(c.recv(), err(RequestError::UnexpectedValue), "cut {cut}");
        }
        assert_eq!(c.call(&req::get(&key)), not_found());
    });
}

/// What one scripted request must be answered with.
enum Expect {
    Exact(Resp),
    /// A STATS reply that counts at least the SETs and GETs before it.
    Stats {
        min_set: u64,
        min_get: u64,
    },
}

/// A pipeline of every kind of request over `keys`, with the replies a
/// `HashMap` model says it must get (the server starts empty of these keys).
fn script(keys: &[Vec<u8>], n: usize, seed: u64) -> (Vec<u8>, Vec<Expect>) {
    let mut rng = Rng::new(seed);
    let mut model: HashMap<Vec<u8>, (u16, Vec<u8>)> = HashMap::new();
    let mut bytes = Vec::new();
    let mut expect = Vec::new();
    let (mut sets, mut gets) = (0, 0);
    for i in 0..n {
        let key = &keys[rng.below(keys.len())];
        let flags = rng.next_u64() as u16;
        let value = fill(format!("{i}:").as_bytes(), rng.below(64));
        let e = match rng.below(20) {
            0..=4 => {
                bytes.extend(req::set(key, &value, flags));
                model.insert(key.clone(), (flags, value));
                sets += 1;
                Expect::Exact(ok())
            }
            5..=6 => {
                bytes.extend(req::set_ttl(key, &value, flags, 3600));
                model.insert(key.clone(), (flags, value));
                sets += 1;
                Expect::Exact(ok())
            }
            7..=12 => {
                bytes.extend(req::get(key));
                gets += 1;
                Expect::Exact(match model.get(key) {
                    Some((f, v)) => hit(*f, v),
                    None => not_found(),
                })
            }
            13..=15 => {
                bytes.extend(req::delete(key));
                Expect::Exact(match model.remove(key) {
                    Some(_) => ok(),
                    None => not_found(),
                })
            }
            16..=17 => {
                bytes.extend(req::noop());
                Expect::Exact(ok())
            }
            18 => {
                bytes.extend(req::stats());
                Expect::Stats {
                    min_set: sets,
                    min_get: gets,
                }
            }
            _ => {
                bytes.extend(req::frame(opcode::DELETE, flags | 1, key, b""));
                Expect::Exact(err(RequestError::UnexpectedFlags))
            }
        };
        expect.push(e);
    }
    (bytes, expect)
}

fn check_script_replies(c: &mut Conn, expect: &[Expect]) {
    for (i, e) in expect.iter().enumerate() {
        let resp = c.recv();
        match e {
            Expect::Exact(want) => assert_eq!(&resp, want, "reply {i}"),
            Expect::Stats { min_set, min_get } => {
                let s = Stats::parse(&resp);
                assert!(s.get("cmd_set") >= *min_set, "reply {i}");
                assert!(s.get("cmd_get") >= *min_get, "reply {i}");
            }
        }
    }
}

#[test]
fn many_requests_of_every_kind_in_one_write() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("m", threads, 12);
        let (bytes, expect) = script(&keys, 300, 0x5EED_0001);
        c.send(&bytes);
        check_script_replies(&mut c, &expect);
        assert_eq!(c.call(&req::noop()), ok());
    });
}

#[test]
fn many_requests_in_uneven_chunks() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);
        let keys = spread_keys("u", threads, 12);
        let (bytes, expect) = script(&keys, 300, 0x5EED_0002);
        let mut rest = &bytes[..];
        let mut size = 1;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            c.send(chunk);
            rest = tail;
            size = size % 29 + 1;
        }
        check_script_replies(&mut c, &expect);
        assert_eq!(c.call(&req::noop()), ok());
    });
}

// ---------------------------------------------------------------------------
// Connection lifecycle

#[test]
fn half_close_still_gets_every_reply_then_end_of_stream() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let keys = spread_keys("h", threads, 8);
        let mut c = Conn::open(&server);
        let mut bytes = Vec::new();
        let mut expect = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let value = format!("half {i}");
            bytes.extend(req::set(key, value.as_bytes(), i as u16));
            expect.push(ok());
            bytes.extend(req::get(key));
            expect.push(hit(i as u16, &value));
        }
        bytes.extend(req::get(b"h-missing"));
        expect.push(not_found());
        bytes.extend(req::delete(&keys[0]));
        expect.push(ok());
        bytes.extend(req::frame(opcode::GET, 0, b"", b""));
        expect.push(err(RequestError::EmptyKey));
        bytes.extend(req::noop());
        expect.push(ok());
        bytes.extend(req::stats());
        // A trailing partial frame: a whole header, part of the body.
        let partial = req::set(b"partial", b"never stored", 0);
        bytes.extend(&partial[..partial.len() - 3]);
        c.send(&bytes);
        c.stream.shutdown(Shutdown::Write).expect("half-close");

        for (i, want) in expect.iter().enumerate() {
            assert_eq!(&c.recv(), want, "reply {i}");
        }
        let s = Stats::parse(&c.recv());
        assert_eq!(s.get("cmd_set"), keys.len() as u64);
        c.expect_eof();

        let mut other = Conn::open(&server);
        assert_eq!(other.call(&req::get(b"partial")), not_found());
        assert_eq!(other.call(&req::get(&keys[0])), not_found());
        assert_eq!(other.call(&req::get(&keys[1])), hit(1, b"half 1"));
    });
}

// ---------------------------------------------------------------------------
// The spec's examples, byte for byte

#[test]
fn spec_examples_byte_for_byte() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut c = Conn::open(&server);

        // §4, the pipelined exchange.
        let requests = hex(
            "ca fe 01 02 00 01 00 02 00 00 00 05 │ 6b 31 │ 68 65 6c 6c 6f
             ca fe 01 01 00 00 00 02 00 00 00 00 │ 6b 31
             ca fe 01 01 00 00 00 02 00 00 00 00 │ 6b 32
             ca fe 01 03 00 00 00 02 00 00 00 00 │ 6b 31
             ca fe 01 05 00 00 00 00 00 00 00 00",
        );
        let replies = hex("ca fe 01 80 00 00 00 00 00 00 00 00
             ca fe 01 80 00 01 00 00 00 00 00 05 68 65 6c 6c 6f
             ca fe 01 82 00 00 00 00 00 00 00 00
             ca fe 01 80 00 00 00 00 00 00 00 00
             ca fe 01 80 00 00 00 00 00 00 00 00");
        c.send(&requests);
        assert_eq!(c.recv_raw(replies.len()), replies);

        // §4, SET_TTL examples (TTL 60 and TTL 0), then a GET hit.
        let requests = hex(
            "ca fe 01 04 00 00 00 02 00 00 00 09 │ 6b 31 │ 00 00 00 3c 68 65 6c 6c 6f
             ca fe 01 04 00 02 00 02 00 00 00 09 │ 6b 31 │ 00 00 00 00 68 65 6c 6c 6f
             ca fe 01 01 00 00 00 02 00 00 00 00 │ 6b 31",
        );
        let replies = hex("ca fe 01 80 00 00 00 00 00 00 00 00
             ca fe 01 80 00 00 00 00 00 00 00 00
             ca fe 01 80 00 02 00 00 00 00 00 05 │ 68 65 6c 6c 6f");
        c.send(&requests);
        assert_eq!(c.recv_raw(replies.len()), replies);

        // §4, the RESP_ERR examples: `empty key` and `unknown opcode 9`.
        c.send(&hex("ca fe 01 01 00 00 00 00 00 00 00 00"));
        let want = hex("ca fe 01 81 00 00 00 00 00 00 00 09 │ 65 6d 70 74 79 20 6b 65 79");
        assert_eq!(c.recv_raw(want.len()), want);
        c.send(&hex("ca fe 01 09 00 00 00 00 00 00 00 00"));
        let want = hex("ca fe 01 81 00 00 00 00 00 00 00 10 │
             75 6e 6b 6e 6f 77 6e 20 6f 70 63 6f 64 65 20 39");
        assert_eq!(c.recv_raw(want.len()), want);
        // Nothing else was sent: the next reply is the NOOP's.
        c.send(&hex("ca fe 01 05 00 00 00 00 00 00 00 00"));
        assert_eq!(c.recv_raw(12), hex("ca fe 01 80 00 00 00 00 00 00 00 00"));

        // §5a, an HTTP request: its first byte selects the text protocol,
        // which answers ERROR and closes.
        let mut http = Conn::open(&server);
        http.send(b"GET / HTTP/1.1\r\nHost: cafe\r\n\r\n");
        assert_eq!(http.recv_raw(7), b"ERROR\r\n");
        http.expect_eof();
        // The same bytes after a native frame: a bad magic, answered.
        let mut late = Conn::open(&server);
        late.send(&hex("ca fe 01 05 00 00 00 00 00 00 00 00"));
        assert_eq!(
            late.recv_raw(12),
            hex("ca fe 01 80 00 00 00 00 00 00 00 00")
        );
        late.send(b"GET / HTTP/1.1\r\nHost: cafe\r\n\r\n");
        let want = hex(
            "ca fe 01 81 00 00 00 00 00 00 00 21 │ 62 61 64 20 6d 61 67 69 63
             20 30 78 34 37 34 35 2c 20 65 78 70 65 63 74 65 64 20 30 78 63 61 66 65",
        );
        assert_eq!(late.recv_raw(want.len()), want);
        late.expect_eof();
        let mut v2 = Conn::open(&server);
        v2.send(&hex("ca fe 02 01 00 00 00 02 00 00 00 00 6b 31"));
        let want = hex(
            "ca fe 01 81 00 00 00 00 00 00 00 34 │ 75 6e 73 75 70 70 6f 72 74
             65 64 20 70 72 6f 74 6f 63 6f 6c 20 76 65 72 73 69 6f 6e 20 32 2c 20 74 68
             69 73 20 73 65 72 76 65 72 20 73 70 65 61 6b 73 20 31",
        );
        assert_eq!(v2.recv_raw(want.len()), want);
        v2.expect_eof();
    });
}
