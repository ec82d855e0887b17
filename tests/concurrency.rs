//! Concurrency and lifecycle tests over real sockets: long mixed pipelines
//! checked against a sequential model, backpressure, slow readers, many
//! concurrent clients, connection resets with replies in flight, graceful
//! shutdown in-process, and the `cafe-server` binary's signals and flags.
//!
//! Every server listens on 127.0.0.1 port 0, in-process through
//! `Server::start` except where the binary itself is under test. Every socket
//! has a read timeout, so a stalled server fails a test instead of hanging
//! it. Nothing sleeps to wait for readiness: where a test must wait for the
//! server to catch up (a reset connection being closed, a process exiting),
//! it polls the real condition a bounded number of times.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cafe::client::{Client, ClientError, OwnedResponse};
use cafe::protocol::native::{Request, Status, encode_request};
use cafe::router::Router;

mod common;
use common::process::{BIN, Process, listening_addr, spawn_server, wait_for_exit};
use common::{Rng, RngExt, start};

/// Read and write timeout of every test socket: far above any honest wait
/// on a loaded 2-core machine, far below a hung CI job. Longer than
/// `common::IO_TIMEOUT` (10 s): pipelines here stall on backpressure, run
/// beside other clients, and tests wait on a spawned `cafe-server`.
const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// The server's per-connection backpressure thresholds
/// (`src/server/connection.rs`): a connection that owes this many replies,
/// or holds this many unwritten reply bytes, is not read until it drains.
const MAX_OWED: usize = 1024;
const MAX_BUFFERED_OUT: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// By address, not `ServerHandle`: some servers here are the spawned binary.
fn connect(addr: SocketAddr) -> Client {
    common::client_to(addr, IO_TIMEOUT)
}

/// `per_worker` keys owned by each of `workers` workers, grouped by owner
/// as the router assigns them: the first keys `{prefix}{i}` (i = 0, 1, ...)
/// that each worker owns. A test built on them touches every partition, and
/// knows which requests its connection's worker must forward.
fn keys_by_owner(prefix: &str, per_worker: usize, workers: usize) -> Vec<Vec<Vec<u8>>> {
    let router = Router::new(workers);
    let mut by_owner = vec![Vec::new(); workers];
    let mut i = 0;
    while by_owner
        .iter()
        .any(|keys: &Vec<Vec<u8>>| keys.len() < per_worker)
    {
        assert!(i < 1000 * per_worker * workers, "the router skips a worker");
        let key = format!("{prefix}{i}").into_bytes();
        let owner = router.owner(&key);
        if by_owner[owner].len() < per_worker {
            by_owner[owner].push(key);
        }
        i += 1;
    }
    by_owner
}

/// A value that names where it came from (`tag`) and is `len` bytes long,
/// padded with a pattern that depends on the tag, so a value returned for
/// the wrong request or a torn one is noticed anywhere in its length.
fn value_for(tag: &str, len: usize) -> Vec<u8> {
    let mut v = format!("{tag}|").into_bytes();
    let seed = v
        .iter()
        .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(*b));
    let mut i = 0u8;
    while v.len() < len {
        v.push(seed.wrapping_add(i));
        i = i.wrapping_add(1);
    }
    v.truncate(len);
    v
}

/// Parses a STATS body the way the protocol describes: `name value` lines.
fn parse_stats(body: &[u8]) -> HashMap<String, String> {
    std::str::from_utf8(body)
        .expect("STATS body is UTF-8")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn stat(client: &mut Client, name: &str) -> u64 {
    client
        .stats()
        .expect("stats")
        .get_u64(name)
        .unwrap_or_else(|| panic!("STATS has no counter {name}"))
}

/// Shows a response compactly in an assertion message.
fn show(resp: &OwnedResponse) -> String {
    let text = String::from_utf8_lossy(&resp.value[..resp.value.len().min(64)]).into_owned();
    format!(
        "{:?} flags={} len={} value={text:?}",
        resp.status,
        resp.flags,
        resp.value.len()
    )
}

// ---------------------------------------------------------------------------
// The sequential model
// ---------------------------------------------------------------------------

/// One request, owning its bytes.
#[derive(Debug, Clone)]
enum Op {
    Get(Vec<u8>),
    Set(Vec<u8>, Vec<u8>, u16),
    Delete(Vec<u8>),
    Noop,
    Stats,
}

impl Op {
    fn request(&self) -> Request<'_> {
        match self {
            Op::Get(key) => Request::Get { key },
            Op::Set(key, value, flags) => Request::Set {
                key,
                value,
                flags: *flags,
                ttl: None,
            },
            Op::Delete(key) => Request::Delete { key },
            Op::Noop => Request::Noop,
            Op::Stats => Request::Stats,
        }
    }

    fn key(&self) -> Option<&[u8]> {
        match self {
            Op::Get(k) | Op::Set(k, _, _) | Op::Delete(k) => Some(k),
            Op::Noop | Op::Stats => None,
        }
    }
}

fn encode_ops(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        encode_request(&op.request(), &mut out).expect("encodable request");
    }
    out
}

fn execute(client: &mut Client, ops: &[Op]) -> Vec<OwnedResponse> {
    let mut p = client.pipeline();
    for op in ops {
        p.request(&op.request());
    }
    let resps = p.execute().expect("pipeline executes");
    assert_eq!(resps.len(), ops.len(), "one response per request");
    resps
}

/// The counters a sequence of keyed requests must leave behind.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    cmd_get: u64,
    get_hits: u64,
    get_misses: u64,
    cmd_set: u64,
    cmd_delete: u64,
    delete_hits: u64,
    delete_misses: u64,
}

/// A HashMap applied in request order: what a correct server answers.
#[derive(Debug, Default, Clone)]
struct Model {
    map: HashMap<Vec<u8>, (Vec<u8>, u16)>,
    counts: Counts,
}

/// The answer the model expects to one request.
#[derive(Debug)]
enum Expect {
    Reply(Status, u16, Vec<u8>),
    /// A STATS body: these counters must have exactly these values.
    Stats(Vec<(&'static str, u64)>),
}

impl Model {
    /// Applies `op` and returns what the server must answer. `stats_extra`
    /// are counters the model cannot know itself (connections, threads).
    fn apply(&mut self, op: &Op, stats_extra: &[(&'static str, u64)]) -> Expect {
        let c = &mut self.counts;
        match op {
            Op::Get(key) => {
                c.cmd_get += 1;
                match self.map.get(key) {
                    Some((v, f)) => {
                        c.get_hits += 1;
                        Expect::Reply(Status::Ok, *f, v.clone())
                    }
                    None => {
                        c.get_misses += 1;
                        Expect::Reply(Status::NotFound, 0, Vec::new())
                    }
                }
            }
            Op::Set(key, value, flags) => {
                c.cmd_set += 1;
                self.map.insert(key.clone(), (value.clone(), *flags));
                Expect::Reply(Status::Ok, 0, Vec::new())
            }
            Op::Delete(key) => {
                c.cmd_delete += 1;
                if self.map.remove(key).is_some() {
                    c.delete_hits += 1;
                    Expect::Reply(Status::Ok, 0, Vec::new())
                } else {
                    c.delete_misses += 1;
                    Expect::Reply(Status::NotFound, 0, Vec::new())
                }
            }
            Op::Noop => Expect::Reply(Status::Ok, 0, Vec::new()),
            Op::Stats => {
                let mut want = vec![
                    ("cmd_get", c.cmd_get),
                    ("get_hits", c.get_hits),
                    ("get_misses", c.get_misses),
                    ("cmd_set", c.cmd_set),
                    ("cmd_delete", c.cmd_delete),
                    ("delete_hits", c.delete_hits),
                    ("delete_misses", c.delete_misses),
                    ("curr_items", self.map.len() as u64),
                ];
                want.extend_from_slice(stats_extra);
                Expect::Stats(want)
            }
        }
    }

    /// Applies every op in order and checks each response against it.
    fn check_all(
        &mut self,
        ops: &[Op],
        resps: &[OwnedResponse],
        stats_extra: &[(&'static str, u64)],
        ctx: &str,
    ) {
        assert_eq!(resps.len(), ops.len(), "{ctx}: response count");
        for (i, (op, resp)) in ops.iter().zip(resps).enumerate() {
            match self.apply(op, stats_extra) {
                Expect::Reply(status, flags, value) => {
                    assert!(
                        resp.status == status && resp.flags == flags && resp.value == value,
                        "{ctx}: request #{i} {}: expected {status:?} flags={flags} \
                         len={} {:?}, got {}",
                        describe(op),
                        value.len(),
                        String::from_utf8_lossy(&value[..value.len().min(64)]),
                        show(resp)
                    );
                }
                Expect::Stats(want) => {
                    assert_eq!(resp.status, Status::Ok, "{ctx}: STATS #{i}: {}", show(resp));
                    let got = parse_stats(&resp.value);
                    for (name, value) in want {
                        assert_eq!(
                            got.get(name).map(String::as_str),
                            Some(value.to_string().as_str()),
                            "{ctx}: STATS at request #{i}: counter {name}"
                        );
                    }
                }
            }
        }
    }
}

fn describe(op: &Op) -> String {
    let key = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
    match op {
        Op::Get(k) => format!("GET {}", key(k)),
        Op::Set(k, v, f) => format!("SET {} ({} bytes, flags {f})", key(k), v.len()),
        Op::Delete(k) => format!("DELETE {}", key(k)),
        Op::Noop => "NOOP".into(),
        Op::Stats => "STATS".into(),
    }
}

/// A random keyed request (or NOOP) over `keys`; `tag` makes SET values
/// unique to the request.
fn random_op(rng: &mut Rng, keys: &[Vec<u8>], tag: &str) -> Op {
    let key = rng.pick(keys).clone();
    match rng.below(20) {
        0..=7 => Op::Get(key),
        8..=14 => {
            // Some empty values: a hit on an empty value must still be a hit.
            let len = if rng.below(10) == 0 {
                0
            } else {
                1 + rng.below(200)
            };
            let flags = rng.next_u64() as u16;
            let value = value_for(tag, len);
            Op::Set(key, value, flags)
        }
        15..=18 => Op::Delete(key),
        _ => Op::Noop,
    }
}

/// A fresh connection reads back every key and finds exactly the model.
fn check_final_state(addr: SocketAddr, keys: &[Vec<u8>], model: &Model, ctx: &str) {
    let mut c = connect(addr);
    let ops: Vec<Op> = keys.iter().map(|k| Op::Get(k.clone())).collect();
    let resps = execute(&mut c, &ops);
    let mut read_only = model.clone();
    read_only.check_all(&ops, &resps, &[], &format!("{ctx}: final read-back"));
}

// ---------------------------------------------------------------------------
// 1. Thousands of mixed pipelined requests against the model
// ---------------------------------------------------------------------------

/// Requests in the stretch where consecutive requests alternate owners.
const ALTERNATING: usize = 1200;

/// Builds 5000 requests: a stretch where consecutive requests alternate
/// between owners, SET k; GET k and DELETE k; GET k pairs for keys of every
/// worker, STATS, random requests over all keys, and STATS again at the end.
fn mixed_ops(by_owner: &[Vec<Vec<u8>>], all: &[Vec<u8>], rng: &mut Rng) -> Vec<Op> {
    const TOTAL: usize = 5000;
    let workers = by_owner.len();
    let mut ops = Vec::with_capacity(TOTAL);
    // Consecutive requests walk the owners round-robin.
    for i in 0..ALTERNATING {
        let keys = &by_owner[i % workers];
        match random_op(rng, keys, &format!("alt{i}")) {
            Op::Noop => ops.push(Op::Get(rng.pick(keys).clone())),
            op => ops.push(op),
        }
    }
    // Read-your-writes across owners: each SET (or DELETE) is read by the
    // very next request, whichever worker owns the key.
    for i in 0..600 {
        let key = rng.pick(&by_owner[i % workers]).clone();
        if i % 3 == 2 {
            ops.push(Op::Delete(key.clone()));
        } else {
            let value = value_for(&format!("pair{i}"), 1 + rng.below(100));
            ops.push(Op::Set(key.clone(), value, i as u16));
        }
        ops.push(Op::Get(key));
    }
    ops.push(Op::Stats);
    while ops.len() < TOTAL - 1 {
        let i = ops.len();
        ops.push(random_op(rng, all, &format!("rnd{i}")));
    }
    ops.push(Op::Stats);
    ops
}

fn mixed_pipeline_matches_model(threads: usize) {
    let server = start(threads);
    let addr = server.local_addr();
    let by_owner = keys_by_owner("mix:", 16, threads);
    let all: Vec<Vec<u8>> = by_owner.concat();
    let mut rng = Rng::new(threads as u64);
    let ops = mixed_ops(&by_owner, &all, &mut rng);

    // The alternating stretch really alternates between owners.
    let router = Router::new(threads);
    if threads > 1 {
        let owners: Vec<Option<usize>> = ops[..ALTERNATING]
            .iter()
            .map(|op| op.key().map(|k| router.owner(k)))
            .collect();
        assert!(owners.windows(2).all(|w| w[0].is_some() && w[0] != w[1]));
    }
    let stats_at = ops.iter().position(|op| matches!(op, Op::Stats));
    assert!(
        stats_at.is_some_and(|i| i > 1000 && i < ops.len() - 1000),
        "STATS is mid-pipeline: {stats_at:?}"
    );

    let mut c = connect(addr);
    let resps = execute(&mut c, &ops);
    let extra = [
        ("threads", threads as u64),
        ("curr_connections", 1),
        ("total_connections", 1),
        ("pid", u64::from(std::process::id())),
        ("request_errors", 0),
    ];
    let mut model = Model::default();
    model.check_all(&ops, &resps, &extra, &format!("threads {threads}"));
    drop(c);
    check_final_state(addr, &all, &model, &format!("threads {threads}"));
    server.shutdown();
    assert!(server.join(), "workers exit cleanly");
}

#[test]
fn mixed_pipeline_matches_model_1_thread() {
    mixed_pipeline_matches_model(1);
}

#[test]
fn mixed_pipeline_matches_model_2_threads() {
    mixed_pipeline_matches_model(2);
}

#[test]
fn mixed_pipeline_matches_model_4_threads() {
    mixed_pipeline_matches_model(4);
}

// ---------------------------------------------------------------------------
// 2. A pipeline past both backpressure thresholds
// ---------------------------------------------------------------------------

fn backpressure_pipeline_completes_in_order(threads: usize) {
    const VALUE_LEN: usize = 1024;
    const GETS: usize = 20_000;
    let server = start(threads);
    let mut c = connect(server.local_addr());
    let all: Vec<Vec<u8>> = keys_by_owner("bp:", 12, threads).concat();

    let mut ops: Vec<Op> = all
        .iter()
        .enumerate()
        .map(|(i, k)| Op::Set(k.clone(), value_for(&format!("init{i}"), VALUE_LEN), 1))
        .collect();
    let mut gets = 0;
    for i in 0..GETS + GETS / 100 {
        let key = all[(i * 7) % all.len()].clone();
        if i % 100 == 99 {
            // An overwrite mid-stream: later GETs must see it, in order.
            ops.push(Op::Set(key, value_for(&format!("re{i}"), VALUE_LEN), 2));
        } else {
            ops.push(Op::Get(key));
            gets += 1;
        }
    }
    ops.push(Op::Noop);
    // Both thresholds are crossed many times over.
    assert!(gets > 10 * MAX_OWED);
    assert!(gets * VALUE_LEN > 10 * MAX_BUFFERED_OUT);

    let resps = execute(&mut c, &ops);
    let mut model = Model::default();
    model.check_all(
        &ops,
        &resps,
        &[],
        &format!("backpressure, threads {threads}"),
    );
    // Still in step afterwards.
    assert_eq!(stat(&mut c, "cmd_get"), model.counts.cmd_get);
}

#[test]
fn backpressure_pipeline_completes_in_order_1_thread() {
    backpressure_pipeline_completes_in_order(1);
}

#[test]
fn backpressure_pipeline_completes_in_order_4_threads() {
    backpressure_pipeline_completes_in_order(4);
}

// ---------------------------------------------------------------------------
// 3. A slow reader does not stall other connections
// ---------------------------------------------------------------------------

/// The worker serving `c`'s connection: the one whose key a GET reaches
/// without being forwarded (the server-wide `forwarded` counter stays put).
/// Nothing else may be using the server meanwhile.
fn serving_worker(c: &mut Client, threads: usize) -> usize {
    let probes = keys_by_owner("probe:", 1, threads);
    let mut local = Vec::new();
    for (w, keys) in probes.iter().enumerate() {
        let before = stat(c, "forwarded");
        c.get(&keys[0]).expect("probe GET");
        if stat(c, "forwarded") == before {
            local.push(w);
        }
    }
    assert_eq!(local.len(), 1, "GETs ran unforwarded on workers {local:?}");
    local[0]
}

/// Which keys the slow reader asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlowKeys {
    /// Keys of every worker, in equal shares.
    All,
    /// Only keys owned by workers other than the one serving the reader, so
    /// every reply comes back from another worker.
    Remote,
}

fn slow_reader_does_not_stall_others(threads: usize, which: SlowKeys) {
    const VALUE_LEN: usize = 256 << 10;
    // 48 MiB of replies: far more than the server buffers per connection
    // (MAX_BUFFERED_OUT) plus what the kernel holds for a receiver that never
    // reads (a few MiB on Linux loopback).
    const BURST: usize = 192;
    let server = start(threads);
    let addr = server.local_addr();
    let by_owner = keys_by_owner("slow:", 4, threads);
    let all: Vec<Vec<u8>> = by_owner.concat();
    let value_of = |key: &[u8]| value_for(&String::from_utf8_lossy(key), VALUE_LEN);
    let mut setup = connect(addr);
    for k in &all {
        setup.set(k, &value_of(k), 0).expect("set big value");
    }

    let mut a = connect(addr);
    let keys: Vec<Vec<u8>> = match which {
        SlowKeys::All => all,
        SlowKeys::Remote => {
            let mine = serving_worker(&mut a, threads);
            let others: Vec<Vec<Vec<u8>>> = (0..threads)
                .filter(|&w| w != mine)
                .map(|w| by_owner[w].clone())
                .collect();
            assert!(!others.is_empty(), "needs more than one worker");
            others.concat()
        }
    };
    let values: Vec<Vec<u8>> = keys.iter().map(|k| value_of(k)).collect();
    let gets_before = stat(&mut setup, "cmd_get");

    // A: a burst of GETs for big values, sent whole and not read. The step
    // 7 is coprime to the key count, so every key is asked for in turn.
    let order: Vec<usize> = (0..BURST).map(|i| (i * 7) % keys.len()).collect();
    let burst: Vec<Op> = order.iter().map(|&i| Op::Get(keys[i].clone())).collect();
    a.send_raw(&encode_ops(&burst)).expect("A sends its burst");

    // Wait (polling a real condition) until the server is busy answering A:
    // it has executed more of A's GETs than fit in its own output buffer.
    let busy = MAX_BUFFERED_OUT / VALUE_LEN + 1;
    let mut attempts = 0;
    while stat(&mut setup, "cmd_get") - gets_before < busy as u64 {
        attempts += 1;
        assert!(attempts < 2000, "the server never started answering A");
        std::thread::yield_now();
    }

    // B: SET/GET round trips on every worker's keys, and a STATS that visits
    // every worker, while A's replies pile up unread. Each must be answered
    // within B's read timeout (a timeout is an error here).
    let mut b = connect(addr);
    let b_keys: Vec<Vec<u8>> = keys_by_owner("slow-b:", 4, threads).concat();
    let mut b_gets = 0;
    for round in 0..20 {
        for (j, k) in b_keys.iter().enumerate() {
            let v = format!("b{round}:{j}").into_bytes();
            b.set(k, &v, 3).expect("B set while A stalls");
            let got = b.get(k).expect("B get while A stalls").expect("hit");
            b_gets += 1;
            assert_eq!((got.data, got.flags), (v, 3));
        }
    }
    let b_stats = b.stats().expect("B STATS while A stalls");
    // Backpressure held: the server stopped reading A instead of executing
    // the whole burst and buffering its replies.
    let a_gets = b_stats.get_u64("cmd_get").expect("cmd_get") - gets_before - b_gets;
    assert!(
        a_gets < BURST as u64,
        "all {BURST} of A's GETs ran while A read nothing: no backpressure"
    );

    // Now A reads everything, in order and intact.
    for (i, &k) in order.iter().enumerate() {
        let r = a.read_response().expect("A reads its replies");
        assert!(
            r.status == Status::Ok && r.value == values[k],
            "threads {threads}: A's reply #{i} (key {k}): {}",
            show(&r)
        );
    }
    a.noop().expect("A still in step");
}

#[test]
fn slow_reader_does_not_stall_others_1_thread() {
    slow_reader_does_not_stall_others(1, SlowKeys::All);
}

#[test]
fn slow_reader_does_not_stall_others_4_threads() {
    slow_reader_does_not_stall_others(4, SlowKeys::All);
}

/// Replies that other workers will send count against the connection's
/// limits too: forwarded requests in flight are capped by a window sized from
/// the item-size limit, so a client whose GETs all go to other workers and
/// who reads nothing cannot make the server hold its whole pipeline.
#[test]
fn slow_reader_of_remote_keys_is_held_to_the_buffer_limit() {
    slow_reader_does_not_stall_others(4, SlowKeys::Remote);
}

// ---------------------------------------------------------------------------
// 4. Many concurrent clients
// ---------------------------------------------------------------------------

#[test]
fn concurrent_clients_match_their_models() {
    const THREADS: usize = 4;
    const CLIENTS: usize = 8;
    const OPS: usize = 500;
    let server = start(THREADS);
    let addr = server.local_addr();
    let key_sets: Vec<Vec<Vec<u8>>> = (0..CLIENTS)
        .map(|id| keys_by_owner(&format!("c{id}:"), 6, THREADS).concat())
        .collect();

    let start_line = Barrier::new(CLIENTS);
    let models: Vec<Model> = std::thread::scope(|s| {
        let handles: Vec<_> = key_sets
            .iter()
            .enumerate()
            .map(|(id, keys)| {
                let start_line = &start_line;
                s.spawn(move || {
                    let mut rng = Rng::new(100 + id as u64);
                    let mut c = connect(addr);
                    let mut model = Model::default();
                    start_line.wait();
                    let mut done = 0;
                    while done < OPS {
                        // Batches of 1 to 16: single round trips and short
                        // pipelines, interleaved with the other clients.
                        let n = (1 + rng.below(16)).min(OPS - done);
                        let ops: Vec<Op> = (0..n)
                            .map(|j| random_op(&mut rng, keys, &format!("c{id}:{}", done + j)))
                            .collect();
                        let resps = execute(&mut c, &ops);
                        model.check_all(&ops, &resps, &[], &format!("client {id}"));
                        done += n;
                    }
                    model
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });

    let mut merged = Model::default();
    for m in models {
        merged.map.extend(m.map);
    }
    let all: Vec<Vec<u8>> = key_sets.concat();
    check_final_state(addr, &all, &merged, "concurrent clients");
}

#[test]
fn concurrent_writers_to_shared_keys_leave_a_last_write() {
    const THREADS: usize = 4;
    const WRITERS: usize = 4;
    const ROUNDS: usize = 20;
    let server = start(THREADS);
    let addr = server.local_addr();
    let keys: Vec<Vec<u8>> = keys_by_owner("shared:", 8, THREADS).concat();
    let value = |w: usize, r: usize, k: usize| format!("w{w}:r{r}:k{k}").into_bytes();

    let start_line = Barrier::new(WRITERS);
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let start_line = &start_line;
            let keys = &keys;
            s.spawn(move || {
                let mut c = connect(addr);
                start_line.wait();
                for r in 0..ROUNDS {
                    let mut p = c.pipeline();
                    for (k, key) in keys.iter().enumerate() {
                        p.set(key, &value(w, r, k), w as u16);
                    }
                    let resps = p.execute().expect("writer pipeline");
                    assert!(resps.iter().all(|r| r.status == Status::Ok));
                }
            });
        }
    });

    // Each writer's SETs to a key are ordered, so whatever interleaving won,
    // the key holds some writer's *last* value, with that writer's flags.
    let mut c = connect(addr);
    for (k, key) in keys.iter().enumerate() {
        let got = c.get(key).expect("get").expect("shared key is set");
        let w = (0..WRITERS)
            .find(|&w| got.data == value(w, ROUNDS - 1, k))
            .unwrap_or_else(|| {
                panic!(
                    "key {k} holds {:?}, not any writer's last value",
                    String::from_utf8_lossy(&got.data)
                )
            });
        assert_eq!(got.flags, w as u16, "key {k}: flags of another write");
    }
}

// ---------------------------------------------------------------------------
// 5. Connections reset with requests in flight at other workers
// ---------------------------------------------------------------------------

/// Writes as much of `bytes` as the socket takes without blocking.
fn write_what_fits(stream: &mut TcpStream, bytes: &[u8]) -> usize {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut at = 0;
    while at < bytes.len() {
        match stream.write(&bytes[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("burst write: {e}"),
        }
    }
    at
}

#[test]
fn resets_with_replies_in_flight_do_not_leak_into_other_connections() {
    const THREADS: usize = 4;
    const ITERATIONS: usize = 100;
    const CHECKERS: usize = 3;
    let server = start(THREADS);
    let addr = server.local_addr();
    let mut stats_conn = connect(addr);

    // Keys with values, so that every GET of a reset burst has a non-empty
    // reply that would be recognised if delivered to the wrong connection.
    let pre: Vec<Vec<u8>> = keys_by_owner("pre:", 8, THREADS).concat();
    let mut pre_model = Model::default();
    for (i, k) in pre.iter().enumerate() {
        let value = value_for(&format!("pre{i}"), 300);
        stats_conn.set(k, &value, 9).expect("set");
        pre_model.map.insert(k.clone(), (value, 9));
    }

    let mut rng = Rng::new(5);
    let mut reset_sets: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for iter in 0..ITERATIONS {
        // The burst: GETs and SETs over every worker, values unique to it.
        let mut burst = Vec::new();
        for j in 0..1500 {
            if j % 4 == 3 {
                let key = format!("rst{iter}:{}", j / 4).into_bytes();
                let value = value_for(&format!("rst{iter}:{j}"), 40);
                reset_sets.push((key.clone(), value.clone()));
                burst.push(Op::Set(key, value, 1));
            } else {
                burst.push(Op::Get(rng.pick(&pre).clone()));
            }
        }
        let mut sock = TcpStream::connect(addr).expect("connect");
        common::set_timeouts(&sock, IO_TIMEOUT);
        let sent = write_what_fits(&mut sock, &encode_ops(&burst));
        assert!(sent > 0, "nothing of the burst was sent");
        socket2::SockRef::from(&sock)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER 0");
        drop(sock); // RST, with replies owed and forwarded requests in flight

        // At once, new connections (one of them often in the slot just
        // freed, while the reset connection's forwarded requests are still
        // being answered) each with their own keys and values get exactly
        // their own answers.
        let checkers: Vec<Client> = (0..CHECKERS).map(|_| connect(addr)).collect();
        for (n, mut c) in checkers.into_iter().enumerate() {
            let tag = format!("chk{iter}.{n}:");
            let mine = keys_by_owner(&tag, 6, THREADS).concat();
            let mut ops = Vec::new();
            for (j, k) in mine.iter().enumerate() {
                let value = value_for(&format!("{tag}{j}"), 20 + j);
                ops.push(Op::Set(k.clone(), value, j as u16));
                ops.push(Op::Get(k.clone()));
                ops.push(Op::Get(rng.pick(&pre).clone()));
            }
            ops.push(Op::Noop);
            let resps = execute(&mut c, &ops);
            let mut model = pre_model.clone();
            model.check_all(&ops, &resps, &[], &format!("checker {tag}"));
            // Nothing after the NOOP: half-close, and the next thing is EOF.
            c.stream().shutdown(Shutdown::Write).expect("half-close");
            match c.read_response() {
                Err(ClientError::Closed) => {}
                other => panic!("checker {tag}: expected EOF after its replies, got {other:?}"),
            }
        }
    }

    // The server still works, and nothing was corrupted: each SET of a reset
    // burst either never ran or stored exactly its own value.
    let ops: Vec<Op> = reset_sets.iter().map(|(k, _)| Op::Get(k.clone())).collect();
    let resps = execute(&mut stats_conn, &ops);
    let mut applied = 0;
    for ((key, value), r) in reset_sets.iter().zip(&resps) {
        match r.status {
            Status::NotFound => {}
            Status::Ok => {
                assert!(
                    r.value == *value && r.flags == 1,
                    "{}: {}",
                    String::from_utf8_lossy(key),
                    show(r)
                );
                applied += 1;
            }
            _ => panic!("{}: {}", String::from_utf8_lossy(key), show(r)),
        }
    }
    assert!(applied > 0, "no SET of any reset burst ran");

    // Every reset connection is eventually closed: only the STATS
    // connection remains.
    let mut attempts = 0;
    loop {
        let open = stat(&mut stats_conn, "curr_connections");
        if open == 1 {
            break;
        }
        attempts += 1;
        assert!(attempts < 2000, "curr_connections stuck at {open}, want 1");
        std::thread::sleep(Duration::from_millis(2));
    }
    server.shutdown();
    assert!(server.join(), "workers exit cleanly");
}

// ---------------------------------------------------------------------------
// 6. Graceful shutdown in-process
// ---------------------------------------------------------------------------

/// A client pipelines `burst` GETs of 64 KiB values and does not read, so
/// replies pile up owed; another thread shuts the server down; the client
/// then reads a correct prefix of its replies, at least every one owed, and
/// a clean end of stream. Afterwards the port refuses connections, and all
/// of it takes well under the 1 s the server promises.
fn shutdown_delivers_owed_replies(burst: usize) {
    const THREADS: usize = 4;
    const VALUE_LEN: usize = 64 << 10;
    let server = start(THREADS);
    let addr = server.local_addr();
    let keys: Vec<Vec<u8>> = keys_by_owner("shut:", 2, THREADS).concat();
    let values: Vec<Vec<u8>> = (0..keys.len())
        .map(|i| value_for(&format!("shut{i}"), VALUE_LEN))
        .collect();
    let mut setup = connect(addr);
    for (k, v) in keys.iter().zip(&values) {
        setup.set(k, v, 0).expect("set");
    }
    let mut idle = connect(addr);

    // A pipelines GETs and does not read yet, so replies are owed.
    let mut a = connect(addr);
    let order: Vec<usize> = (0..burst).map(|i| (i * 3) % keys.len()).collect();
    let gets: Vec<Op> = order.iter().map(|&i| Op::Get(keys[i].clone())).collect();
    a.send_raw(&encode_ops(&gets)).expect("send");
    // Every GET executed has its reply owed to A, which has read nothing:
    // at least `owed` replies must arrive. Poll until the server has run more
    // than it buffers per connection and then stopped (under backpressure),
    // so that most of what is owed is held by the server, not the kernel.
    // Stopping early only makes `owed` smaller: it can never be too large.
    let mut owed = 0;
    let mut unchanged = 0;
    let mut attempts = 0;
    while owed <= (MAX_BUFFERED_OUT / VALUE_LEN) as u64 || unchanged < 20 {
        let now = stat(&mut setup, "cmd_get");
        unchanged = if now == owed { unchanged + 1 } else { 0 };
        owed = now;
        attempts += 1;
        assert!(attempts < 5000, "the server never settled answering A");
        std::thread::yield_now();
    }

    let t0 = Instant::now();
    let mut received = 0;
    std::thread::scope(|s| {
        s.spawn(|| server.shutdown());
        // A reads while the server shuts down: a correct prefix of its
        // replies, at least every one owed, then a clean end of stream.
        loop {
            match a.read_response() {
                Ok(r) => {
                    assert!(received < burst, "more replies than requests");
                    let k = order[received];
                    assert!(
                        r.status == Status::Ok && r.value == values[k],
                        "reply #{received} (key {k}): {}",
                        show(&r)
                    );
                    received += 1;
                }
                Err(ClientError::Closed) => break,
                Err(e) => panic!("A after {received} replies (owed {owed}): {e}"),
            }
        }
    });
    assert!(
        received as u64 >= owed,
        "{received} replies arrived, {owed} were owed"
    );

    // Idle connections are closed too.
    assert!(matches!(idle.read_response(), Err(ClientError::Closed)));

    let clean = server.join();
    let elapsed = t0.elapsed();
    assert!(clean, "a worker panicked");
    assert!(
        elapsed < Duration::from_secs(2),
        "shutdown took {elapsed:?}"
    );
    match TcpStream::connect(addr) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("a connection was accepted after shutdown"),
    }
}

#[test]
fn graceful_shutdown_delivers_owed_replies_then_refuses() {
    // 200 GETs are 3.8 KB: the server reads the whole burst at once, then
    // stops executing it when its output buffer fills.
    shutdown_delivers_owed_replies(200);
}

/// A connection with unread requests in the kernel's receive buffer (the
/// server stopped reading under backpressure) must not be closed with a
/// reset at shutdown: Linux would discard the replies not yet delivered.
/// The server shuts its write side and drains input before closing.
#[test]
fn graceful_shutdown_with_unread_input_delivers_owed_replies() {
    // 6000 GETs are 114 KB: more than the server reads before it pauses, so
    // the rest stays unread in its receive buffer.
    shutdown_delivers_owed_replies(6000);
}

// ---------------------------------------------------------------------------
// 7. The binary
// ---------------------------------------------------------------------------

/// Reads stderr until the `metrics on http://ADDR/metrics` line and
/// returns ADDR.
fn metrics_addr(p: &Process) -> SocketAddr {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = p
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no `metrics on` line ({e})"));
        if let Some((_, rest)) = line.split_once("metrics on http://") {
            let addr = rest.trim_end_matches("/metrics");
            return addr
                .parse()
                .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        }
    }
}

/// The body of a 200 answer to `GET path`.
fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the admin listener");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: cafe\r\n\r\n").as_bytes())
        .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

fn binary_serves_then_exits_on(signal: &str) {
    let mut p = spawn_server(&[
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "2",
        "--no-pin",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let addr = listening_addr(&p);
    assert_eq!(addr.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_ne!(addr.port(), 0);

    let mut c = connect(addr);
    let keys: Vec<Vec<u8>> = keys_by_owner("bin:", 4, 2).concat();
    for (i, k) in keys.iter().enumerate() {
        let v = format!("{signal}:{i}").into_bytes();
        c.set(k, &v, i as u16).expect("set");
        let got = c.get(k).expect("get").expect("hit");
        assert_eq!((got.data, got.flags), (v, i as u16));
    }
    let stats = c.stats().expect("stats");
    assert_eq!(stats.get_u64("threads"), Some(2));
    assert_eq!(stats.get_u64("pid"), Some(u64::from(p.child.id())));
    // The admin listener serves for the process's whole life.
    let metrics = metrics_addr(&p);
    let body = http_get(metrics, "/metrics");
    assert!(body.contains("cafe_workers 2\n"), "{body}");
    assert!(body.contains("cafe_cmd_set_total{worker=\"0\"}"), "{body}");

    let pid = p.child.id().to_string();
    let sent = Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill {signal} {pid} failed");
    let t = Instant::now();
    let status = wait_for_exit(&mut p.child, Duration::from_secs(2))
        .unwrap_or_else(|| panic!("still running 2 s after {signal}"));
    assert!(status.success(), "exit after {signal}: {status}");
    assert!(t.elapsed() < Duration::from_secs(2));
    // The open connection was closed, not abandoned.
    assert!(matches!(c.read_response(), Err(ClientError::Closed)));
}

#[test]
fn binary_exits_cleanly_on_sigterm() {
    binary_serves_then_exits_on("-TERM");
}

#[test]
fn binary_exits_cleanly_on_sigint() {
    binary_serves_then_exits_on("-INT");
}

#[test]
fn binary_help_lists_every_flag() {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success(), "--help: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--threads",
        "--cores",
        "--no-pin",
        "--max-key-len",
        "--max-item-size",
        "--max-connections",
        "--idle-timeout",
        "--frame-timeout",
        "--disable-flush",
        "--listen-backlog",
    ] {
        assert!(
            text.contains(flag),
            "--help does not mention {flag}:\n{text}"
        );
    }
}

#[test]
fn binary_refuses_bad_flag_values() {
    for (flag, value) in [("--threads", "0"), ("--threads", "x"), ("--cores", "x")] {
        let mut child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", flag, value])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let status = wait_for_exit(&mut child, IO_TIMEOUT);
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{flag} {value}: the server started instead of refusing");
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("read stderr");
        assert!(!status.success(), "{flag} {value}: exit {status}");
        assert!(
            err.contains(flag),
            "{flag} {value}: stderr does not name the flag: {err:?}"
        );
    }
}
