//! The memcached binary protocol on cafe's port, judged from outside by
//! programs cafe did not write:
//!
//! - `memccapable` (Debian's name for libmemcached's `memcapable`, package
//!   libmemcached-tools), whose 27 binary tests and 27 ASCII tests must all
//!   pass, and `memcstat`, which must print the stats over either protocol;
//! - the `memcache` crate (rust-memcache), a synchronous client that speaks
//!   the binary protocol unless its URL says `?protocol=ascii`;
//! - a few raw frames built by hand (`common::memcache`), for what that
//!   client cannot express: opaque echo, a pipeline of quiet commands
//!   across workers, INCR with an initial value, GAT, and a first byte that
//!   arrives alone.
//!
//! Every test starts its own server in-process on 127.0.0.1 port 0 and runs
//! at 1 worker and at 4 workers, with keys chosen by the crate's public
//! [`Router`] so that every worker owns some. Nothing sleeps: `Server::start`
//! returns once the server listens, expiry is driven by a `ManualClock`, and
//! every socket has a read timeout, so a server that does not answer fails
//! the test instead of hanging it.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cafe::router::Router;
use cafe::server::ServerHandle;
use memcache::{CommandError, MemcacheError, ToMemcacheValue};

mod common;
use common::memcache::{Conn, Resp, op, req, status};
use common::{IO_TIMEOUT, for_each_worker_count, start, start_with_clock, tool};

/// `per_worker` keys owned by each of the `threads` workers, interleaved in
/// generation order.
fn keys_on_every_worker(threads: usize, prefix: &str, per_worker: usize) -> Vec<String> {
    let router = Router::new(threads);
    let mut count = vec![0; threads];
    let mut keys = Vec::new();
    for i in 0.. {
        if count.iter().all(|&c| c >= per_worker) {
            break;
        }
        let key = format!("{prefix}-{i}");
        let owner = router.owner(key.as_bytes());
        if count[owner] < per_worker {
            count[owner] += 1;
            keys.push(key);
        }
    }
    let owners: BTreeSet<usize> = keys.iter().map(|k| router.owner(k.as_bytes())).collect();
    assert_eq!(owners.len(), threads, "keys must cover every worker");
    keys
}

// ---------------------------------------------------------------------------
// The memcache crate

/// A client of the `memcache` crate: one pooled connection (the crate's
/// default), binary protocol (the crate's default), read and write timeouts.
/// Drop it before the server, so the server's shutdown does not wait for it.
fn mc(server: &ServerHandle) -> memcache::Client {
    let url = format!(
        "memcache://{}?timeout={}",
        server.local_addr(),
        IO_TIMEOUT.as_secs()
    );
    memcache::Client::builder()
        .add_server(url)
        .expect("a valid URL")
        .with_connection_timeout(IO_TIMEOUT)
        .build()
        .expect("the memcache client connects")
}

/// A value with explicit flags: the crate's own value types all send 0.
struct Flagged<'a> {
    data: &'a [u8],
    flags: u32,
}

impl<W: Write> ToMemcacheValue<W> for Flagged<'_> {
    fn get_flags(&self) -> u32 {
        self.flags
    }

    fn get_length(&self) -> usize {
        self.data.len()
    }

    fn write_to(&self, stream: &mut W) -> io::Result<()> {
        stream.write_all(self.data)
    }
}

fn flagged(data: &[u8], flags: u32) -> Flagged<'_> {
    Flagged { data, flags }
}

/// GET as (value, flags).
fn get(c: &memcache::Client, key: &str) -> Option<(Vec<u8>, u32)> {
    c.get(key).unwrap_or_else(|e| panic!("get {key}: {e:?}"))
}

/// GET as (value, flags, cas).
fn get_cas(c: &memcache::Client, key: &str) -> Option<(Vec<u8>, u32, u64)> {
    let got: Option<(Vec<u8>, u32, Option<u64>)> =
        c.get(key).unwrap_or_else(|e| panic!("get {key}: {e:?}"));
    got.map(|(v, f, cas)| (v, f, cas.expect("a binary GET hit carries a CAS")))
}

fn set(c: &memcache::Client, key: &str, value: &[u8], flags: u32, exptime: u32) {
    c.set(key, flagged(value, flags), exptime)
        .unwrap_or_else(|e| panic!("set {key}: {e:?}"));
}

fn is_command_error(r: &Result<(), MemcacheError>, want: CommandError) -> bool {
    matches!(r, Err(MemcacheError::CommandError(e)) if *e == want)
}

#[test]
fn set_and_get_keep_value_and_flags() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let c = mc(&server);
        let keys = keys_on_every_worker(threads, "sg", 3);
        let every_byte: Vec<u8> = (0..=255).collect();
        let cases: [(&[u8], u32); 6] = [
            (b"v", 0),
            (b"", 0),
            (b"flags", 1),
            (&every_byte, 0xFFFF),
            (b"wide flags", 0xDEAD_BEEF),
            (b"max flags", u32::MAX),
        ];
        for (i, key) in keys.iter().enumerate() {
            let (value, flags) = cases[i % cases.len()];
            set(&c, key, value, flags, 0);
        }
        for (i, key) in keys.iter().enumerate() {
            let (value, flags) = cases[i % cases.len()];
            assert_eq!(get(&c, key), Some((value.to_vec(), flags)), "{key}");
        }
        // A second SET replaces value and flags.
        set(&c, &keys[0], b"second", 42, 0);
        assert_eq!(get(&c, &keys[0]), Some((b"second".to_vec(), 42)));
        assert_eq!(get(&c, "sg-never-set"), None);
        drop(c);
    });
}

#[test]
fn add_stores_only_new_keys_and_replace_only_existing_ones() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let c = mc(&server);
        for key in keys_on_every_worker(threads, "ar", 2) {
            let fresh = format!("{key}-fresh");
            // ADD on a missing key stores; on an existing one it is refused
            // with KEY_EEXISTS and the item is untouched.
            c.add(&key, flagged(b"first", 1), 0)
                .unwrap_or_else(|e| panic!("add {key}: {e:?}"));
            let again = c.add(&key, flagged(b"second", 2), 0);
            assert!(
                is_command_error(&again, CommandError::KeyExists),
                "add of an existing key: {again:?}"
            );
            assert_eq!(get(&c, &key), Some((b"first".to_vec(), 1)));

            // REPLACE on an existing key stores; on a missing one it is
            // refused with KEY_ENOENT and nothing is created.
            c.replace(&key, flagged(b"replaced", 3), 0)
                .unwrap_or_else(|e| panic!("replace {key}: {e:?}"));
            assert_eq!(get(&c, &key), Some((b"replaced".to_vec(), 3)));
            let missing = c.replace(&fresh, flagged(b"x", 0), 0);
            assert!(
                is_command_error(&missing, CommandError::KeyNotFound),
                "replace of a missing key: {missing:?}"
            );
            assert_eq!(get(&c, &fresh), None);
        }
        drop(c);
    });
}

#[test]
fn delete_removes_once() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let c = mc(&server);
        for key in keys_on_every_worker(threads, "del", 2) {
            set(&c, &key, b"v", 0, 0);
            assert!(c.delete(&key).expect("delete"), "{key} was there");
            assert_eq!(get(&c, &key), None);
            assert!(!c.delete(&key).expect("delete"), "{key} is gone");
        }
        drop(c);
    });
}

#[test]
fn incr_and_decr_follow_memcached() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let c = mc(&server);
        for key in keys_on_every_worker(threads, "ctr", 2) {
            // The crate sends initial 0 and expiration 0: a missing counter
            // is created holding the initial value, the delta not applied.
            assert_eq!(c.increment(&key, 5).expect("incr missing"), 0);
            assert_eq!(get(&c, &key), Some((b"0".to_vec(), 0)));
            assert_eq!(c.increment(&key, 5).expect("incr"), 5);
            assert_eq!(c.increment(&key, 37).expect("incr"), 42);
            assert_eq!(get(&c, &key), Some((b"42".to_vec(), 0)));
            assert_eq!(c.decrement(&key, 2).expect("decr"), 40);
            // Decrements stop at zero.
            assert_eq!(c.decrement(&key, 100).expect("decr"), 0);
            assert_eq!(c.decrement(&key, 1).expect("decr"), 0);

            // A decimal value stored by SET counts, keeping its flags.
            let set_key = format!("{key}-set");
            set(&c, &set_key, b"41", 7, 0);
            assert_eq!(c.increment(&set_key, 1).expect("incr"), 42);
            assert_eq!(get(&c, &set_key), Some((b"42".to_vec(), 7)));

            // Increments wrap at 2^64.
            let max_key = format!("{key}-max");
            set(&c, &max_key, u64::MAX.to_string().as_bytes(), 0, 0);
            assert_eq!(c.increment(&max_key, 2).expect("incr wraps"), 1);

            // A value that is not a decimal number: DELTA_BADVAL (0x06),
            // value untouched.
            let text_key = format!("{key}-text");
            set(&c, &text_key, b"abc", 0, 0);
            let r = c.increment(&text_key, 1);
            assert!(
                matches!(
                    r,
                    Err(MemcacheError::CommandError(CommandError::Unknown(0x06)))
                ),
                "incr of a non-number: {r:?}"
            );
            assert_eq!(get(&c, &text_key), Some((b"abc".to_vec(), 0)));
        }
        drop(c);
    });
}

#[test]
fn append_and_prepend_extend_existing_items_only() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let c = mc(&server);
        for key in keys_on_every_worker(threads, "cat", 2) {
            set(&c, &key, b"hello", 7, 0);
            c.append(&key, " world").expect("append");
            c.prepend(&key, ">> ").expect("prepend");
            // Flags are the item's, not the (zero) flags of the requests.
            assert_eq!(get(&c, &key), Some((b">> hello world".to_vec(), 7)));

            // On a missing key both are refused (NOT_STORED, 0x05) and
            // create nothing. The crate ignores PREPEND's status, so only
            // APPEND's is checked here; the raw test checks PREPEND's.
            let missing = format!("{key}-missing");
            let r = c.append(&missing, "x");
            assert!(
                is_command_error(&r, CommandError::Unknown(0x05)),
                "append to a missing key: {r:?}"
            );
            let _ = c.prepend(&missing, "x");
            assert_eq!(get(&c, &missing), None);
        }
        drop(c);
    });
}

#[test]
fn cas_stores_only_with_the_current_cas() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let c = mc(&server);
        for key in keys_on_every_worker(threads, "cas", 2) {
            set(&c, &key, b"one", 1, 0);
            let (_, _, cas1) = get_cas(&c, &key).expect("stored");
            assert_ne!(cas1, 0, "a stored item has a non-zero CAS");

            // A wrong CAS is refused and changes nothing.
            assert!(!c.cas(&key, flagged(b"bad", 9), 0, cas1 + 1).expect("cas"));
            assert_eq!(get_cas(&c, &key), Some((b"one".to_vec(), 1, cas1)));

            // The current CAS stores, and the item gets a new CAS.
            assert!(c.cas(&key, flagged(b"two", 2), 0, cas1).expect("cas"));
            let (value, flags, cas2) = get_cas(&c, &key).expect("stored");
            assert_eq!((value.as_slice(), flags), (&b"two"[..], 2));
            assert_ne!(cas2, cas1, "a store changes the CAS");
            assert_ne!(cas2, 0);

            // The old CAS no longer matches.
            assert!(!c.cas(&key, flagged(b"three", 3), 0, cas1).expect("cas"));
            assert_eq!(get(&c, &key), Some((b"two".to_vec(), 2)));

            // Any store, even of the same bytes, changes the CAS.
            set(&c, &key, b"two", 2, 0);
            let (_, _, cas3) = get_cas(&c, &key).expect("stored");
            assert_ne!(cas3, cas2);

            // An increment changes it too.
            let ctr = format!("{key}-ctr");
            set(&c, &ctr, b"1", 0, 0);
            let (_, _, before) = get_cas(&c, &ctr).expect("stored");
            c.increment(&ctr, 1).expect("incr");
            let (_, _, after) = get_cas(&c, &ctr).expect("stored");
            assert_ne!(before, after, "INCR changes the CAS");

            // A CAS store on a missing key is refused and creates nothing,
            // as is one on a deleted key.
            let missing = format!("{key}-missing");
            assert!(!c.cas(&missing, flagged(b"x", 0), 0, cas3).expect("cas"));
            assert_eq!(get(&c, &missing), None);
            assert!(c.delete(&key).expect("delete"));
            assert!(!c.cas(&key, flagged(b"x", 0), 0, cas3).expect("cas"));
            assert_eq!(get(&c, &key), None);
        }
        drop(c);
    });
}

#[test]
fn flush_empties_every_worker() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let c = mc(&server);
        let keys = keys_on_every_worker(threads, "fl", 4);
        for key in &keys {
            set(&c, key, b"v", 0, 0);
        }
        let all: Vec<&str> = keys.iter().map(String::as_str).collect();
        let before: HashMap<String, (Vec<u8>, u32)> = c.gets(&all).expect("multi-get");
        assert_eq!(before.len(), keys.len());

        c.flush().expect("flush");
        for key in &keys {
            assert_eq!(get(&c, key), None, "{key} after flush");
        }
        // Stores after the flush are not flushed.
        set(&c, &keys[0], b"after", 0, 0);
        assert_eq!(get(&c, &keys[0]), Some((b"after".to_vec(), 0)));
        drop(c);
    });
}

#[test]
fn multi_get_spans_every_worker() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let c = mc(&server);
        // The crate sends one GETKQ per key and a NOOP, and stops reading at
        // the NOOP's reply: every hit, wherever its key lives, must come
        // before it.
        let keys = keys_on_every_worker(threads, "mg", 8);
        let missing = keys_on_every_worker(threads, "mg-missing", 2);
        let mut expected = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            let value = format!("value of {key}").repeat(i % 5 + 1);
            set(&c, key, value.as_bytes(), i as u32, 0);
            expected.insert(key.clone(), (value.into_bytes(), i as u32));
        }
        let mut asked: Vec<&str> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            asked.push(key);
            if let Some(m) = missing.get(i) {
                asked.push(m);
            }
        }
        let got: HashMap<String, (Vec<u8>, u32)> = c.gets(&asked).expect("multi-get");
        assert_eq!(got, expected);

        // Only misses: an empty answer, and the connection still in step.
        let only_missing: Vec<&str> = missing.iter().map(String::as_str).collect();
        let none: HashMap<String, (Vec<u8>, u32)> = c.gets(&only_missing).expect("multi-get");
        assert!(none.is_empty(), "{none:?}");
        assert_eq!(get(&c, &keys[0]), Some(expected[&keys[0]].clone()));
        drop(c);
    });
}

#[test]
fn version_and_stats() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let c = mc(&server);
        let versions = c.version().expect("version");
        assert_eq!(versions.len(), 1);
        let version = versions[0].1.clone();
        assert!(!version.is_empty(), "VERSION has a body");

        let keys = keys_on_every_worker(threads, "st", 3);
        for key in &keys {
            set(&c, key, b"v", 0, 0);
        }
        let stats = |c: &memcache::Client| -> HashMap<String, String> {
            let mut all = c.stats().expect("stats");
            assert_eq!(all.len(), 1);
            all.pop().expect("one server").1
        };
        let number = |s: &HashMap<String, String>, name: &str| -> u64 {
            let v = s
                .get(name)
                .unwrap_or_else(|| panic!("no stat {name} in {s:?}"));
            v.parse().unwrap_or_else(|_| panic!("stat {name} = {v:?}"))
        };
        let before = stats(&c);
        assert_eq!(number(&before, "pid"), u64::from(std::process::id()));
        assert_eq!(before.get("version"), Some(&version));
        assert_eq!(number(&before, "threads"), threads as u64);
        assert_eq!(number(&before, "curr_items"), keys.len() as u64);

        // Counts are summed over every worker.
        for key in &keys {
            assert!(get(&c, key).is_some());
        }
        for i in 0..2 {
            assert_eq!(get(&c, &format!("st-missing-{i}")), None);
        }
        let after = stats(&c);
        let delta = |name: &str| number(&after, name) - number(&before, name);
        assert_eq!(delta("get_hits"), keys.len() as u64);
        assert_eq!(delta("get_misses"), 2);
        assert_eq!(delta("cmd_get"), keys.len() as u64 + 2);
        drop(c);
    });
}

#[test]
fn relative_and_absolute_expiry_and_touch() {
    for_each_worker_count(|threads| {
        let (server, clock) = start_with_clock(threads);
        let c = mc(&server);
        let short = keys_on_every_worker(threads, "ttl-short", 2);
        let forever = keys_on_every_worker(threads, "ttl-forever", 2);
        let touched = keys_on_every_worker(threads, "ttl-touched", 2);
        let past = keys_on_every_worker(threads, "ttl-past", 2);
        let absolute = keys_on_every_worker(threads, "ttl-absolute", 2);
        // memcached reads an expiry over 30 days as a Unix time.
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs() as u32;
        for key in &short {
            set(&c, key, b"short", 1, 10);
        }
        for key in &forever {
            set(&c, key, b"forever", 2, 0);
        }
        for key in &touched {
            set(&c, key, b"touched", 3, 10);
            assert!(c.touch(key, 100).expect("touch"), "{key}");
        }
        for key in &past {
            // 30 days and one second: a Unix time in 1970, long past.
            set(&c, key, b"past", 4, 30 * 24 * 3600 + 1);
        }
        for key in &absolute {
            set(&c, key, b"absolute", 5, unix_now + 200);
        }
        assert!(!c.touch("ttl-never-set", 100).expect("touch"));
        for key in &past {
            assert_eq!(get(&c, key), None, "{key}: a past Unix time");
        }

        // One millisecond short of the TTL: still there.
        clock.advance_ms(9_999);
        for key in &short {
            assert_eq!(get(&c, key), Some((b"short".to_vec(), 1)), "{key}");
        }
        // At the TTL: gone.
        clock.advance_ms(1);
        for key in &short {
            assert_eq!(get(&c, key), None, "{key}");
        }
        // TOUCH moved the others' expiry to 100 s.
        for key in &touched {
            assert_eq!(get(&c, key), Some((b"touched".to_vec(), 3)), "{key}");
        }
        clock.advance_ms(89_999);
        for key in &touched {
            assert_eq!(get(&c, key), Some((b"touched".to_vec(), 3)), "{key}");
        }
        clock.advance_ms(1);
        for key in &touched {
            assert_eq!(get(&c, key), None, "{key}");
        }
        // The absolute expiry is 199 to 200 s after the server started.
        clock.advance_ms(98_000);
        for key in &absolute {
            assert_eq!(get(&c, key), Some((b"absolute".to_vec(), 5)), "{key}");
        }
        clock.advance_ms(3_000);
        for key in &absolute {
            assert_eq!(get(&c, key), None, "{key}");
        }
        // A year later, expiry 0 is still there.
        clock.advance_ms(365 * 24 * 3600 * 1000);
        for key in &forever {
            assert_eq!(get(&c, key), Some((b"forever".to_vec(), 2)), "{key}");
        }
        drop(c);
    });
}

#[test]
fn native_clients_see_memcache_writes_and_back() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let c = mc(&server);
        let mut native = common::client(&server);
        for (i, key) in keys_on_every_worker(threads, "x", 3).iter().enumerate() {
            // memcached flags up to 0xFFFF come back unchanged natively.
            let flags = [0u16, 1, 0xBEEF, 0xFFFF][i % 4];
            let value = format!("from memcache {i}");
            set(&c, key, value.as_bytes(), u32::from(flags), 0);
            let got = native.get(key.as_bytes()).expect("native get");
            let got = got.unwrap_or_else(|| panic!("{key} not visible natively"));
            assert_eq!((got.data, got.flags), (value.into_bytes(), flags), "{key}");

            // And the other way round.
            let value = format!("from native {i}");
            native
                .set(key.as_bytes(), value.as_bytes(), flags)
                .expect("native set");
            assert_eq!(get(&c, key), Some((value.into_bytes(), u32::from(flags))));
            assert!(native.delete(key.as_bytes()).expect("native delete"));
            assert_eq!(get(&c, key), None);
        }
        drop(c);
    });
}

// ---------------------------------------------------------------------------
// Raw frames

/// Checks a response's opcode, status and opaque, and that an error
/// response carries CAS 0 and no extras (as memcapable requires).
fn assert_reply(r: &Resp, opcode: u8, status: u16, opaque: u32) {
    assert_eq!(
        (r.opcode, r.status, r.opaque),
        (opcode, status, opaque),
        "{r:?}"
    );
    if status != status::NO_ERROR {
        assert_eq!(r.cas, 0, "an error carries CAS 0: {r:?}");
        assert!(r.extras.is_empty(), "an error carries no extras: {r:?}");
    }
}

#[test]
fn first_byte_alone_selects_the_protocol_per_connection() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        // A memcache connection whose first byte arrives on its own.
        let mut mc_conn = Conn::open(&server);
        let noop = req::bare(op::NOOP, 0x0102_0304);
        mc_conn.send(&noop[..1]);
        // Meanwhile a native connection works as before.
        let mut native = common::client(&server);
        native.noop().expect("native NOOP");
        mc_conn.dribble(&noop[1..]);
        let r = mc_conn.recv();
        assert_reply(&r, op::NOOP, status::NO_ERROR, 0x0102_0304);
        assert_eq!(
            (r.cas, r.key.len(), r.extras.len(), r.value.len()),
            (0, 0, 0, 0)
        );

        let r = mc_conn.call(&req::bare(op::VERSION, 7));
        assert_reply(&r, op::VERSION, status::NO_ERROR, 7);
        assert!(!r.value.is_empty(), "VERSION has a body");
        native.noop().expect("native NOOP");
    });
}

#[test]
fn quiet_pipeline_across_workers_keeps_request_order_and_opaques() {
    for_each_worker_count(|threads| {
        let server = start(threads);
        let mut conn = Conn::open(&server);
        let keys = keys_on_every_worker(threads, "pipe", 6);
        let missing = keys_on_every_worker(threads, "pipe-missing", 2);
        let value = |i: usize| format!("{i}:").repeat(i + 1).into_bytes();

        // One write: a SETQ per key (silent on success), then a GETKQ per
        // key with misses in between (silent on a miss), then a NOOP.
        let mut batch = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            batch.extend(req::store(
                op::SETQ,
                1000 + i as u32,
                0,
                key.as_bytes(),
                &value(i),
                i as u32 + 1,
                0,
            ));
        }
        for (i, key) in keys.iter().enumerate() {
            batch.extend(req::get(op::GETKQ, 2000 + i as u32, key.as_bytes()));
            if let Some(m) = missing.get(i) {
                batch.extend(req::get(op::GETKQ, 3000 + i as u32, m.as_bytes()));
            }
        }
        batch.extend(req::bare(op::NOOP, 0xFEED));
        conn.send(&batch);

        for (i, key) in keys.iter().enumerate() {
            let r = conn.recv();
            assert_reply(&r, op::GETKQ, status::NO_ERROR, 2000 + i as u32);
            assert_eq!(r.key, key.as_bytes(), "hits come in request order");
            assert_eq!(r.extras, (i as u32 + 1).to_be_bytes(), "flags of {key}");
            assert_eq!(r.value, value(i), "{key}");
            assert_ne!(r.cas, 0, "{key}");
        }
        let r = conn.recv();
        assert_reply(&r, op::NOOP, status::NO_ERROR, 0xFEED);
        // Nothing else was owed: the next reply is the next request's.
        let r = conn.call(&req::bare(op::VERSION, 0xABCD));
        assert_reply(&r, op::VERSION, status::NO_ERROR, 0xABCD);
    });
}

#[test]
fn incr_with_initial_value_prepend_status_and_gat() {
    for_each_worker_count(|threads| {
        let (server, clock) = start_with_clock(threads);
        let mut conn = Conn::open(&server);
        for (i, key) in keys_on_every_worker(threads, "raw", 2).iter().enumerate() {
            let k = key.as_bytes();
            let opaque = i as u32;
            let counter = |r: &Resp| -> u64 {
                assert_eq!(r.value.len(), 8, "a counter is 8 bytes: {r:?}");
                u64::from_be_bytes(r.value[..].try_into().expect("8 bytes"))
            };

            // Expiration 0xFFFFFFFF: never create, a miss is KEY_ENOENT.
            let r = conn.call(&req::arith(op::INCREMENT, opaque, 0, k, 3, 10, u32::MAX));
            assert_reply(&r, op::INCREMENT, status::KEY_ENOENT, opaque);
            // Otherwise a miss creates the counter at the initial value.
            let r = conn.call(&req::arith(op::INCREMENT, opaque, 0, k, 3, 10, 0));
            assert_reply(&r, op::INCREMENT, status::NO_ERROR, opaque);
            assert_eq!(counter(&r), 10);
            assert_ne!(r.cas, 0);
            let r = conn.call(&req::arith(op::INCREMENT, opaque, 0, k, 3, 10, 0));
            assert_eq!(counter(&r), 13);
            let r = conn.call(&req::arith(op::DECREMENT, opaque, 0, k, 20, 10, 0));
            assert_reply(&r, op::DECREMENT, status::NO_ERROR, opaque);
            assert_eq!(counter(&r), 0);
            let dkey = format!("{key}-d");
            let r = conn.call(&req::arith(
                op::DECREMENT,
                opaque,
                0,
                dkey.as_bytes(),
                1,
                7,
                0,
            ));
            assert_eq!(counter(&r), 7, "DECR creates at the initial value");

            // PREPEND to a missing key: NOT_STORED.
            let pkey = format!("{key}-p");
            let r = conn.call(&req::concat(op::PREPEND, opaque, 0, pkey.as_bytes(), b"x"));
            assert_reply(&r, op::PREPEND, status::NOT_STORED, opaque);
            let r = conn.call(&req::get(op::GET, opaque, pkey.as_bytes()));
            assert_reply(&r, op::GET, status::KEY_ENOENT, opaque);

            // GAT returns the item and gives it a new expiry.
            let gkey = format!("{key}-g");
            let g = gkey.as_bytes();
            let r = conn.call(&req::store(op::SET, opaque, 0, g, b"gat", 9, 10));
            assert_reply(&r, op::SET, status::NO_ERROR, opaque);
            let r = conn.call(&req::touch(op::GAT, opaque, g, 100));
            assert_reply(&r, op::GAT, status::NO_ERROR, opaque);
            assert_eq!(
                (r.extras.as_slice(), r.value.as_slice()),
                (&9u32.to_be_bytes()[..], &b"gat"[..])
            );
            assert_ne!(r.cas, 0);
            let missing = format!("{key}-never");
            let r = conn.call(&req::touch(op::GAT, opaque, missing.as_bytes(), 100));
            assert_reply(&r, op::GAT, status::KEY_ENOENT, opaque);
        }
        // Every GAT'ed item outlives its SET's 10 s, up to GAT's 100 s.
        let gat_keys: Vec<String> = keys_on_every_worker(threads, "raw", 2)
            .iter()
            .map(|k| format!("{k}-g"))
            .collect();
        clock.advance_ms(99_999);
        for key in &gat_keys {
            let r = conn.call(&req::get(op::GET, 1, key.as_bytes()));
            assert_reply(&r, op::GET, status::NO_ERROR, 1);
            assert_eq!(r.value, b"gat", "{key}");
        }
        clock.advance_ms(1);
        for key in &gat_keys {
            let r = conn.call(&req::get(op::GET, 1, key.as_bytes()));
            assert_reply(&r, op::GET, status::KEY_ENOENT, 1);
        }
    });
}

// ---------------------------------------------------------------------------
// memccapable

/// The binary tests of memcapable (libmemcached 1.1), in the order it runs
/// them.
const MEMCCAPABLE_BINARY_TESTS: [&str; 27] = [
    "binary noop",
    "binary quit",
    "binary quitq",
    "binary set",
    "binary setq",
    "binary flush",
    "binary flushq",
    "binary add",
    "binary addq",
    "binary replace",
    "binary replaceq",
    "binary delete",
    "binary deleteq",
    "binary get",
    "binary getq",
    "binary getk",
    "binary getkq",
    "binary incr",
    "binary incrq",
    "binary decr",
    "binary decrq",
    "binary version",
    "binary append",
    "binary appendq",
    "binary prepend",
    "binary prependq",
    "binary stat",
];

/// The ASCII tests of memcapable (`-a`), in the order it runs them.
const MEMCCAPABLE_ASCII_TESTS: [&str; 27] = [
    "ascii version",
    "ascii quit",
    "ascii verbosity",
    "ascii set",
    "ascii set noreply",
    "ascii get",
    "ascii gets",
    "ascii mget",
    "ascii flush",
    "ascii flush noreply",
    "ascii add",
    "ascii add noreply",
    "ascii replace",
    "ascii replace noreply",
    "ascii cas",
    "ascii cas noreply",
    "ascii delete",
    "ascii delete noreply",
    "ascii incr",
    "ascii incr noreply",
    "ascii decr",
    "ascii decr noreply",
    "ascii append",
    "ascii append noreply",
    "ascii prepend",
    "ascii prepend noreply",
    "ascii stat",
];

/// How long one memccapable or memcstat run may take. A passing run takes well under a
/// second; a failing one waits up to its 2 s I/O timeout per read.
const MEMCCAPABLE_LIMIT: Duration = Duration::from_secs(60);

/// A libmemcached tool on PATH, under Debian's name (`memccapable`,
/// `memcstat`) or upstream's (`memcapable`, `memstat`).
fn find_tool(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// The tool, or `None` after a notice; under `CI=true` a missing tool
/// fails the test instead.
fn require_tool(names: &[&str], test: &str) -> Option<PathBuf> {
    let found = find_tool(names);
    if found.is_none() {
        if tool::in_ci() {
            panic!(
                "{} not found on PATH: install libmemcached-tools \
                 (apt-get install libmemcached-tools)",
                names[0]
            );
        }
        eprintln!(
            "SKIPPED {test}: {} not found on PATH (apt-get install libmemcached-tools)",
            names[0]
        );
    }
    found
}

/// Checks memcapable's output. It prints each test's name padded to 40
/// columns on stdout, then `[pass]` on stdout or `[FAIL]` on stderr, and
/// ends with `All tests passed` on stdout or `N of M tests failed` on
/// stderr. Every test of the run must have its own `[pass]` line.
fn check_memccapable_output(tests: &[&str], stdout: &str, stderr: &str) -> Result<(), String> {
    let lines: Vec<&str> = stdout.lines().map(str::trim_end).collect();
    let mut problems = Vec::new();
    for name in tests {
        let passed = format!("{name:<40}[pass]");
        if !lines.contains(&passed.as_str()) {
            problems.push(format!("{name:?} did not pass"));
        }
    }
    let passes = lines.iter().filter(|l| l.ends_with("[pass]")).count();
    if passes != tests.len() {
        problems.push(format!("{passes} [pass] lines, expected {}", tests.len()));
    }
    if !lines.contains(&"All tests passed") {
        problems.push("no `All tests passed` summary".to_string());
    }
    if stderr.contains("[FAIL]") || stderr.contains("tests failed") {
        problems.push("stderr reports failures".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Runs memccapable's tests of one protocol (`-b` or `-a`) against a
/// server at each worker count; every one of `tests` must pass.
fn memccapable_passes(test: &str, protocol_flag: &str, tests: &[&str]) {
    let Some(bin) = require_tool(&["memccapable", "memcapable"], test) else {
        return;
    };
    for_each_worker_count(|threads| {
        let server = start(threads);
        let port = server.local_addr().port().to_string();
        let run = tool::run(
            &bin,
            &["-h", "127.0.0.1", "-p", &port, protocol_flag, "-t", "2"],
            MEMCCAPABLE_LIMIT,
        );
        let verdict = check_memccapable_output(tests, &run.stdout, &run.stderr);
        assert!(
            run.success && verdict.is_ok(),
            "memccapable {protocol_flag} at {threads} worker(s): exit {}, {}\n--- stdout\n{}\n--- stderr\n{}",
            run.status,
            verdict.err().unwrap_or_else(|| "output fine".to_string()),
            run.stdout,
            run.stderr
        );
    });
}

#[test]
fn memccapable_binary_passes_at_1_and_4_threads() {
    memccapable_passes(
        "memccapable_binary_passes_at_1_and_4_threads",
        "-b",
        &MEMCCAPABLE_BINARY_TESTS,
    );
}

#[test]
fn memccapable_ascii_passes_at_1_and_4_threads() {
    memccapable_passes(
        "memccapable_ascii_passes_at_1_and_4_threads",
        "-a",
        &MEMCCAPABLE_ASCII_TESTS,
    );
}

/// Checks memstat's report of one server: a `Server: HOST (PORT)` header,
/// then one tab-indented `name: value` line per stat, among them the
/// general ones.
fn check_memcstat_output(port: u16, stdout: &str) -> Result<(), String> {
    let mut lines = stdout.lines();
    let header = format!("Server: 127.0.0.1 ({port})");
    if lines.next() != Some(header.as_str()) {
        return Err(format!("no {header:?} first"));
    }
    let mut stats = HashMap::new();
    for line in lines {
        let Some((name, value)) = line.strip_prefix('\t').and_then(|l| l.split_once(": ")) else {
            return Err(format!("not a stat line: {line:?}"));
        };
        stats.insert(name, value);
    }
    for name in [
        "pid",
        "uptime",
        "version",
        "curr_items",
        "cmd_get",
        "threads",
    ] {
        if !stats.contains_key(name) {
            return Err(format!("no {name} among {} stats", stats.len()));
        }
    }
    match stats["curr_items"].parse::<u64>() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!("curr_items {:?}", stats["curr_items"])),
    }
}

#[test]
fn memcstat_prints_stats_over_text_and_binary() {
    let test = "memcstat_prints_stats_over_text_and_binary";
    let Some(bin) = require_tool(&["memcstat", "memstat"], test) else {
        return;
    };
    for_each_worker_count(|threads| {
        let server = start(threads);
        let port = server.local_addr().port();
        let servers = format!("--servers=127.0.0.1:{port}");
        for extra in [None, Some("--binary")] {
            let mut args = vec![servers.as_str()];
            args.extend(extra);
            let run = tool::run(&bin, &args, MEMCCAPABLE_LIMIT);
            let verdict = check_memcstat_output(port, &run.stdout);
            assert!(
                run.success && verdict.is_ok(),
                "memcstat {args:?} at {threads} worker(s): exit {}, {}\n--- stdout\n{}\n--- stderr\n{}",
                run.status,
                verdict.err().unwrap_or_else(|| "output fine".to_string()),
                run.stdout,
                run.stderr
            );
        }
    });
}

/// The parser above accepts memcapable's real passing output and refuses
/// its failing shapes, so the memccapable test cannot pass vacuously.
#[test]
fn memccapable_output_check_refuses_failures() {
    let passing: String = MEMCCAPABLE_BINARY_TESTS
        .iter()
        .map(|name| format!("{name:<40}[pass]\n"))
        .chain(["All tests passed\n".to_string()])
        .collect();
    let binary = &MEMCCAPABLE_BINARY_TESTS;
    assert_eq!(check_memccapable_output(binary, &passing, ""), Ok(()));
    // Another run's list does not pass for this one.
    assert!(check_memccapable_output(&MEMCCAPABLE_ASCII_TESTS, &passing, "").is_err());

    // A failing test leaves its name on stdout, unterminated, and its
    // `[FAIL]` on stderr.
    let failing = passing.replacen(
        &format!("{:<40}[pass]\n", "binary quit"),
        &format!("{:<40}", "binary quit"),
        1,
    );
    let failing = failing.replace("All tests passed\n", "");
    let err = check_memccapable_output(binary, &failing, "[FAIL]\n1 of 27 tests failed\n");
    let err = err.expect_err("a failed test is refused");
    assert!(err.contains("\"binary quit\" did not pass"), "{err}");

    // A run cut short, or one that says nothing.
    let first_half: String = passing.lines().take(10).map(|l| format!("{l}\n")).collect();
    assert!(check_memccapable_output(binary, &first_half, "").is_err());
    assert!(check_memccapable_output(binary, "", "").is_err());
    // The summary alone is not enough.
    assert!(check_memccapable_output(binary, "All tests passed\n", "").is_err());
}

/// The memstat check accepts memstat's real report (as it prints one for
/// memcached 1.6) and refuses what is not one.
#[test]
fn memcstat_output_check_refuses_failures() {
    let good = "Server: 127.0.0.1 (7070)\n\tpid: 4242\n\tuptime: 3\n\tversion: 1.6.18\n\
                \tcurr_items: 0\n\tcmd_get: 0\n\tthreads: 4\n";
    assert_eq!(check_memcstat_output(7070, good), Ok(()));
    assert!(check_memcstat_output(7071, good).is_err(), "another server");
    assert!(check_memcstat_output(7070, "").is_err());
    assert!(check_memcstat_output(7070, "Server: 127.0.0.1 (7070)\n").is_err());
    let missing = good.replace("\tcurr_items: 0\n", "");
    assert!(check_memcstat_output(7070, &missing).is_err());
    let garbled = good.replace("\tcmd_get: 0", "cmd_get 0");
    assert!(check_memcstat_output(7070, &garbled).is_err());
}
