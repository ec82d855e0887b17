//! Micro-benchmarks of the hot path's parts, in nanoseconds per operation:
//! the binary codecs, the text codec's `get` and `mg` hit (decode the line,
//! write the reply), a partition's GET and SET, and the cross-worker hop
//! through the real mailbox (channel, coalesced `mio::Waker`, drain).
//!
//! Every benchmark checks its result inside the timed loop (decoded frame
//! and `consumed`, encoded bytes, hit value, CAS, echoed sequence number),
//! so a broken codec or table cannot post a good number; the check is part
//! of the time, a few nanoseconds of compares. Codec calls and the
//! partition's GET and same-size overwrite are also checked to allocate
//! nothing (a thread-local allocation counter, no atomics); so is a text
//! `get` or `mg` hit from its line to its reply, once the reply buffer has
//! grown to a reply's size.
//!
//! Run: `cargo bench --bench micro` (about a minute); criterion's filters
//! work as usual, e.g. `cargo bench --bench micro -- mailbox`, or
//! `-- text` for the text codec alone (about 10 s).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;
use std::hint::black_box;
use std::thread::JoinHandle;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use mio::{Events, Poll, Token, Waker};

use cafe::command::{Command, Expiry, ItemInfo, Op, Outcome, OwnedCommand, StoreMode};
use cafe::protocol::memcache::{self, StoreMode as McStoreMode};
use cafe::protocol::text::{self, GetKind, MAX_KEY, MetaCmd, response};
use cafe::protocol::{Decoded, native};
use cafe::server::mailbox::{self, Inbox, Message, Outbox, ReplyTo};
use cafe::storage::{Partition, Policy};

mod support;
use support::shuffled;

/// Key and value sizes of every benchmark: a typical small cache item.
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 64;
/// Items in the partition for hit, miss and overwrite: ~14 MB of items and
/// table, more than L2, so a lookup pays the cache misses a server would.
const ITEMS: usize = 100_000;
/// Budget of the evicting partition: full long before the timed loop.
const EVICT_BUDGET: u64 = 8 << 20;
/// Messages per wake in the batched mailbox benchmark.
const BATCH: usize = 32;
/// How long a mailbox wait may take before the benchmark calls it a lost
/// wake and fails, rather than hanging.
const LOST_WAKE: Duration = Duration::from_secs(5);

/// The system allocator, counting this thread's allocations so a benchmark
/// can assert that an operation allocates nothing. A thread-local counter:
/// no atomic on the allocation path, and no effect where nothing allocates.
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    // `try_with`: a thread being torn down may still free and allocate.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// Allocations (and reallocations) made by this thread so far.
fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every call is forwarded unchanged to `System`; the counter
// neither allocates nor touches the memory.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's guarantees for `layout` are passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: `ptr` and `layout` came from this allocator, i.e. `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// The `i`th 16-byte key with a prefix of 4 bytes, e.g. `key:000000000042`.
fn key(prefix: &str, i: usize) -> [u8; KEY_LEN] {
    let text = format!("{prefix}{i:0width$}", width = KEY_LEN - prefix.len());
    text.as_bytes().try_into().expect("16-byte key")
}

/// A 64-byte value that starts with its key, so a hit can be checked to be
/// the right item's.
fn value_for(key: &[u8; KEY_LEN]) -> [u8; VALUE_LEN] {
    let mut v = [b'v'; VALUE_LEN];
    v[..KEY_LEN].copy_from_slice(key);
    v
}

// ----- codecs -----

/// Times appending one frame to a reused buffer (with room, so it must
/// not allocate), checking the bytes.
fn bench_encode(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    expected: &[u8],
    encode: impl Fn(&mut Vec<u8>),
) {
    let mut out = Vec::with_capacity(256);
    g.bench_function(name, |b| {
        b.iter(|| {
            out.clear();
            let before = allocations();
            encode(&mut out);
            assert_eq!(allocations(), before, "{name} allocated");
            assert_eq!(black_box(&out).as_slice(), expected);
        })
    });
}

/// Times decoding one whole frame, checking frame and `consumed`, and
/// that decoding allocated nothing (frames borrow from the input).
fn bench_decode<'a, T: PartialEq + Debug>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    bytes: &'a [u8],
    expected: T,
    decode: impl Fn(&'a [u8]) -> T,
) {
    g.bench_function(name, |b| {
        b.iter(|| {
            let before = allocations();
            let decoded = decode(black_box(bytes));
            assert_eq!(allocations(), before, "{name} allocated");
            assert_eq!(decoded, expected);
        })
    });
}

fn native_codec(c: &mut Criterion) {
    let limits = native::Limits::default();
    let key = key("key:", 42);
    let value = value_for(&key);
    let get = native::Request::Get { key: &key };
    let set = native::Request::Set {
        key: &key,
        value: &value,
        flags: 7,
        ttl: None,
    };
    let hit = native::Response {
        status: native::Status::Ok,
        flags: 7,
        value: &value,
    };
    let encoded = |req: &native::Request<'_>| {
        let mut out = Vec::new();
        native::encode_request(req, &mut out).expect("encodable");
        out
    };
    let get_bytes = encoded(&get);
    let set_bytes = encoded(&set);
    let mut hit_bytes = Vec::new();
    native::encode_response(&hit, &mut hit_bytes);
    assert_eq!(get_bytes.len(), native::HEADER_LEN + KEY_LEN);
    assert_eq!(set_bytes.len(), native::HEADER_LEN + KEY_LEN + VALUE_LEN);
    assert_eq!(hit_bytes.len(), native::HEADER_LEN + VALUE_LEN);

    let mut g = c.benchmark_group("native");
    bench_encode(&mut g, "encode_get_request", &get_bytes, |out| {
        native::encode_request(black_box(&get), out).expect("encodable")
    });
    bench_encode(&mut g, "encode_set_request", &set_bytes, |out| {
        native::encode_request(black_box(&set), out).expect("encodable")
    });
    bench_encode(&mut g, "encode_get_hit_response", &hit_bytes, |out| {
        native::encode_response(black_box(&hit), out)
    });
    let complete = |frame, consumed| Ok(Decoded::Complete { frame, consumed });
    bench_decode(
        &mut g,
        "decode_get_request",
        &get_bytes,
        complete(get, get_bytes.len()),
        |buf| native::decode_request(buf, &limits),
    );
    bench_decode(
        &mut g,
        "decode_set_request",
        &set_bytes,
        complete(set, set_bytes.len()),
        |buf| native::decode_request(buf, &limits),
    );
    bench_decode(
        &mut g,
        "decode_get_hit_response",
        &hit_bytes,
        Ok(Decoded::Complete {
            frame: hit,
            consumed: hit_bytes.len(),
        }),
        |buf| native::decode_response(buf, limits.max_value_len),
    );
    g.finish();
}

fn memcache_codec(c: &mut Criterion) {
    let limits = native::Limits::default();
    let key = key("key:", 42);
    let value = value_for(&key);
    let flags = 7u32.to_be_bytes();
    let get = memcache::Request {
        opcode: memcache::opcode::GET,
        opaque: 0x1234_5678,
        cmd: memcache::Command::Get { key: &key },
    };
    let set = memcache::Request {
        opcode: memcache::opcode::SET,
        opaque: 0x1234_5679,
        cmd: memcache::Command::Store {
            mode: McStoreMode::Set,
            key: &key,
            value: &value,
            flags: 7,
            exptime: 0,
            cas: 0,
        },
    };
    let hit = memcache::Response {
        opcode: memcache::opcode::GET,
        status: memcache::status::NO_ERROR,
        opaque: 0x1234_5678,
        cas: 99,
        extras: &flags,
        key: &[],
        value: &value,
    };
    let encoded = |req: &memcache::Request<'_>| {
        let mut out = Vec::new();
        memcache::encode_request(req, &mut out).expect("encodable");
        out
    };
    let get_bytes = encoded(&get);
    let set_bytes = encoded(&set);
    let mut hit_bytes = Vec::new();
    memcache::encode_response(&hit, &mut hit_bytes);
    assert_eq!(get_bytes.len(), memcache::HEADER_LEN + KEY_LEN);
    assert_eq!(
        set_bytes.len(),
        memcache::HEADER_LEN + 8 + KEY_LEN + VALUE_LEN
    );
    assert_eq!(hit_bytes.len(), memcache::HEADER_LEN + 4 + VALUE_LEN);

    let mut g = c.benchmark_group("memcache");
    bench_encode(&mut g, "encode_get_request", &get_bytes, |out| {
        memcache::encode_request(black_box(&get), out).expect("encodable")
    });
    bench_encode(&mut g, "encode_set_request", &set_bytes, |out| {
        memcache::encode_request(black_box(&set), out).expect("encodable")
    });
    bench_encode(&mut g, "encode_get_hit_response", &hit_bytes, |out| {
        memcache::encode_response(black_box(&hit), out)
    });
    let complete = |frame, consumed| Ok(Decoded::Complete { frame, consumed });
    bench_decode(
        &mut g,
        "decode_get_request",
        &get_bytes,
        complete(get, get_bytes.len()),
        |buf| memcache::decode_request(buf, &limits),
    );
    bench_decode(
        &mut g,
        "decode_set_request",
        &set_bytes,
        complete(set, set_bytes.len()),
        |buf| memcache::decode_request(buf, &limits),
    );
    bench_decode(
        &mut g,
        "decode_get_hit_response",
        &hit_bytes,
        Ok(Decoded::Complete {
            frame: hit,
            consumed: hit_bytes.len(),
        }),
        |buf| memcache::decode_response(buf, limits.max_value_len),
    );
    g.finish();
}

/// Decodes a whole `get` line, checking it is a plain `get`; its keys.
fn decode_text_get<'a>(buf: &'a [u8], limits: &text::Limits) -> text::Keys<'a> {
    match text::decode_request(buf, limits) {
        Ok(Decoded::Complete {
            frame:
                text::Request::Get {
                    kind: GetKind::Get,
                    exptime: 0,
                    keys,
                },
            consumed,
        }) if consumed == buf.len() => keys,
        other => panic!("expected a get, got {other:?}"),
    }
}

/// Decodes a whole `mg <key> v f` line, checking its flags; key and flags.
fn decode_text_mg<'a>(
    buf: &'a [u8],
    limits: &text::Limits,
) -> (text::Key<'a>, text::MetaFlags<'a>) {
    match text::decode_request(buf, limits) {
        Ok(Decoded::Complete {
            frame: text::Request::MetaGet { key, flags },
            consumed,
        }) if consumed == buf.len()
            && !key.base64
            && flags.raw == b"v f"
            && flags.value()
            && flags.has(b'f') =>
        {
            (key, flags)
        }
        other => panic!("expected mg <key> v f, got {other:?}"),
    }
}

/// The text codec's two reads, as the server runs them for a hit: decode
/// the request line, then append the reply to a reused output buffer
/// (`VALUE` line, data block and `END` for `get`; the `VA` line with its
/// return flags and the data block for `mg`). `decode_*` time the decode
/// alone, `*_hit` the decode and the reply; every one checks the frame,
/// `consumed`, the reply's bytes (spelled out here, not by the codec) and
/// that nothing was allocated.
fn text_codec(c: &mut Criterion) {
    let limits = text::Limits::default();
    let key = key("key:", 42);
    let value = value_for(&key);
    let flags = 7u32;
    let info = ItemInfo {
        flags,
        cas: 99,
        size: VALUE_LEN as u32,
        ..ItemInfo::default()
    };
    let get_line = [&b"get "[..], &key, b"\r\n"].concat();
    let mg_line = [&b"mg "[..], &key, b" v f\r\n"].concat();
    let get_reply = [
        &b"VALUE "[..],
        &key,
        format!(" {flags} {VALUE_LEN}\r\n").as_bytes(),
        &value,
        b"\r\nEND\r\n",
    ]
    .concat();
    let mg_reply = [
        format!("VA {VALUE_LEN} f{flags}\r\n").as_bytes(),
        &value,
        b"\r\n",
    ]
    .concat();

    let decode_get = |buf| decode_text_get(buf, &limits);
    let decode_mg = |buf| decode_text_mg(buf, &limits);
    // The server's reply to a `get` hit, for every key of the line.
    let reply_get = |keys: text::Keys<'_>, out: &mut Vec<u8>| {
        for k in keys {
            assert_eq!(k, key);
            response::value_line(out, k, flags, value.len(), None);
            response::data(out, &value);
        }
        response::end(out);
    };
    // The server's reply to an `mg` hit: the key decoded (a no-op without
    // `b`), the `VA` line, the data block.
    let reply_mg = |key: text::Key<'_>, flags: text::MetaFlags<'_>, out: &mut Vec<u8>| {
        let mut scratch = [0u8; MAX_KEY];
        let k = key.decode(&mut scratch).expect("a plain key");
        response::meta_reply(
            out,
            MetaCmd::Get,
            response::code::VA,
            flags.raw,
            Some(&info),
            k,
            key.base64,
        );
        response::data(out, &value);
    };

    let mut g = c.benchmark_group("text");
    g.bench_function("decode_get_request", |b| {
        b.iter(|| {
            let before = allocations();
            let keys = decode_get(black_box(&get_line));
            assert_eq!(allocations(), before, "decoding get allocated");
            assert_eq!(keys.as_bytes(), key);
        })
    });
    g.bench_function("decode_mg_request", |b| {
        b.iter(|| {
            let before = allocations();
            let (k, _) = decode_mg(black_box(&mg_line));
            assert_eq!(allocations(), before, "decoding mg allocated");
            assert_eq!(k.raw, key);
        })
    });
    // Starts empty and is warmed by one reply, as a connection's output
    // buffer grows to its high-water mark and is then reused. That first
    // reply must be seen to allocate: the counter is live on this thread,
    // so the zero counted in the loop is not vacuous.
    let mut out = Vec::new();
    let before = allocations();
    reply_get(decode_get(&get_line), &mut out);
    assert!(allocations() > before, "the allocation counter saw nothing");
    assert_eq!(out, get_reply);
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            out.clear();
            let before = allocations();
            reply_get(decode_get(black_box(&get_line)), &mut out);
            assert_eq!(allocations(), before, "a get hit allocated");
            assert_eq!(black_box(&out), &get_reply);
        })
    });
    let mut out = Vec::new();
    let (k, f) = decode_mg(&mg_line);
    reply_mg(k, f, &mut out);
    assert_eq!(out, mg_reply);
    g.bench_function("mg_hit", |b| {
        b.iter(|| {
            out.clear();
            let before = allocations();
            let (k, f) = decode_mg(black_box(&mg_line));
            reply_mg(k, f, &mut out);
            assert_eq!(allocations(), before, "an mg hit allocated");
            assert_eq!(black_box(&out), &mg_reply);
        })
    });
    g.finish();
}

// ----- partition -----

/// An unconditional store that never expires: a plain SET.
const SET: Op = Op::Store {
    mode: StoreMode::Set,
    flags: 0,
    expiry: Expiry::Never,
    cas: None,
};

fn partition(c: &mut Criterion) {
    let keys: Vec<[u8; KEY_LEN]> = (0..ITEMS).map(|i| key("key:", i)).collect();
    let absent: Vec<[u8; KEY_LEN]> = (0..ITEMS).map(|i| key("nok:", i)).collect();
    let order = shuffled(ITEMS, 1);
    let mut p = Partition::new();
    let mut last_cas = 0;
    for k in &keys {
        let cmd = Command {
            op: SET,
            key: k,
            value: &value_for(k),
        };
        last_cas = match p.execute(&cmd, 0) {
            Outcome::Stored { cas } => cas,
            other => panic!("setup store: {other:?}"),
        };
    }
    assert_eq!(p.len(), ITEMS);

    let mut g = c.benchmark_group("partition");
    let mut i = 0;
    let mut next = move || {
        i = if i + 1 == ITEMS { 0 } else { i + 1 };
        order[i] as usize
    };
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            let key = &keys[next()];
            let cmd = Command {
                op: Op::Get,
                key: black_box(key),
                value: &[],
            };
            let before = allocations();
            let outcome = black_box(p.execute(&cmd, 0));
            assert_eq!(allocations(), before, "a GET allocated");
            match outcome {
                Outcome::Hit {
                    flags: 0, value, ..
                } => {
                    assert!(value.len() == VALUE_LEN && value[..KEY_LEN] == key[..])
                }
                other => panic!("expected a hit, got {other:?}"),
            }
        })
    });
    g.bench_function("get_miss", |b| {
        b.iter(|| {
            let cmd = Command {
                op: Op::Get,
                key: black_box(&absent[next()]),
                value: &[],
            };
            let before = allocations();
            assert_eq!(black_box(p.execute(&cmd, 0)), Outcome::Miss);
            assert_eq!(allocations(), before, "a GET allocated");
        })
    });
    // Same size as the stored value, so the item's allocation is reused.
    let mut value = [b'v'; VALUE_LEN];
    g.bench_function("set_overwrite", |b| {
        b.iter(|| {
            let key = &keys[next()];
            value[..KEY_LEN].copy_from_slice(key);
            let cmd = Command {
                op: SET,
                key: black_box(key),
                value: black_box(&value),
            };
            let before = allocations();
            // A lone partition hands out CAS 1, 2, 3, …: one per store.
            match black_box(p.execute(&cmd, 0)) {
                Outcome::Stored { cas } if cas == last_cas + 1 => last_cas = cas,
                other => panic!("expected Stored {{ cas: {} }}, got {other:?}", last_cas + 1),
            }
            assert_eq!(allocations(), before, "a same-size overwrite allocated");
        })
    });
    assert_eq!(p.len(), ITEMS);
    assert_eq!(p.stats().evictions, 0);

    // A full partition: every store of a new key evicts (SIEVE; nothing is
    // ever read, so the hand takes the first item it looks at).
    let mut p = Partition::with_budget(Policy::Sieve, EVICT_BUDGET);
    let mut fresh = 0u64;
    let mut new_key = move || {
        fresh += 1;
        let mut k = *b"evict:\0\0\0\0\0\0\0\0\0\0";
        k[8..].copy_from_slice(&fresh.to_be_bytes());
        k
    };
    let value = [b'v'; VALUE_LEN];
    while p.stats().evictions == 0 {
        let k = new_key();
        let cmd = Command {
            op: SET,
            key: &k,
            value: &value,
        };
        assert!(matches!(p.execute(&cmd, 0), Outcome::Stored { .. }));
    }
    let full = p.len();
    g.bench_function("set_new_evicting", |b| {
        b.iter(|| {
            let k = new_key();
            let cmd = Command {
                op: SET,
                key: black_box(&k),
                value: black_box(&value),
            };
            assert!(matches!(
                black_box(p.execute(&cmd, 0)),
                Outcome::Stored { .. }
            ));
            // The budget holds: a store never grows the item count much
            // past where eviction began.
            assert!(p.len() <= full + 1);
        })
    });
    let stats = p.stats();
    assert!(stats.evictions > 0 && stats.bytes + stats.hash_bytes <= EVICT_BUDGET);
    g.finish();
}

// ----- cross-worker hop -----

/// The token of each side's waker.
const WAKE: Token = Token(0);

/// A second thread standing in for a key's owning worker: it waits in its
/// own `Poll`, drains its inbox on each wake, answers every `Execute`
/// (alone or in a `Batch`) with an `Executed` that returns the command's
/// buffer (as a worker does after running the command), and sends the
/// drain's answers as the server does: one message, a `Batch` if more than
/// one (reusing the batch that came in), and one wake.
fn owner(mut poll: Poll, inbox: Inbox, origin: Outbox) {
    let mut events = Events::with_capacity(8);
    let mut replies: Vec<Message> = Vec::new();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "poll: {e}");
            continue;
        }
        inbox.start_drain();
        while let Some(msg) = inbox.try_recv() {
            match msg {
                Message::Batch(mut batch) => {
                    // Answered in place: the batch carries the replies back.
                    for msg in batch.iter_mut() {
                        *msg = answer(std::mem::replace(msg, Message::Shutdown));
                    }
                    if replies.is_empty() {
                        replies = batch;
                    } else {
                        replies.append(&mut batch);
                    }
                }
                Message::Shutdown => return,
                msg => replies.push(answer(msg)),
            }
        }
        let msg = match replies.len() {
            0 => continue,
            1 => replies.pop().expect("one reply"),
            _ => Message::Batch(std::mem::take(&mut replies)),
        };
        assert!(origin.send(msg));
        origin.wake().expect("wake the origin");
    }
}

/// The owner's answer to one `Execute`.
fn answer(msg: Message) -> Message {
    match msg {
        Message::Execute { reply_to, cmd, .. } => Message::Executed {
            reply_to,
            outcome: Outcome::Hit {
                flags: 0,
                cas: reply_to.seq,
                value: cmd.into_buffer(),
            },
        },
        other => panic!("owner: unexpected {other:?}"),
    }
}

/// The origin's end: both mailboxes, its own `Poll`, and the key buffers
/// that travel out in `Execute` and come back in `Executed`, so the
/// steady state allocates nothing (as in the server, where the reply
/// reuses the request's buffer).
struct Hop {
    to_owner: Outbox,
    inbox: Inbox,
    poll: Poll,
    events: Events,
    buffers: Vec<Vec<u8>>,
    /// The batch that carries commands out, back with the replies.
    batch: Vec<Message>,
    seq: u64,
    owner: Option<JoinHandle<()>>,
}

impl Hop {
    /// Builds both polls, wakers and mailboxes before the owner thread
    /// starts, as the server does.
    fn start() -> Hop {
        let owner_poll = Poll::new().expect("poll");
        let owner_waker = Waker::new(owner_poll.registry(), WAKE).expect("waker");
        let (to_owner, owner_inbox) = mailbox::mailbox(owner_waker);
        let poll = Poll::new().expect("poll");
        let waker = Waker::new(poll.registry(), WAKE).expect("waker");
        let (to_origin, inbox) = mailbox::mailbox(waker);
        let owner = std::thread::Builder::new()
            .name("micro-owner".into())
            .spawn(move || owner(owner_poll, owner_inbox, to_origin))
            .expect("spawn");
        Hop {
            to_owner,
            inbox,
            poll,
            events: Events::with_capacity(8),
            buffers: (0..BATCH).map(|i| key("hop:", i).to_vec()).collect(),
            batch: Vec::new(),
            seq: 0,
            owner: Some(owner),
        }
    }

    /// Sends `n` commands (in one `Batch` if more than one, as a worker
    /// sends a turn's), wakes the owner once, and waits for all `n`
    /// replies, checking each is the answer to the next command sent.
    fn round_trip(&mut self, n: usize) {
        let first = self.seq + 1;
        let mut batch = std::mem::take(&mut self.batch);
        for _ in 0..n {
            self.seq += 1;
            let buf = self.buffers.pop().expect("a free buffer");
            let reply_to = ReplyTo {
                worker: 0,
                conn: 0,
                generation: 0,
                seq: self.seq,
            };
            let cmd = OwnedCommand {
                op: Op::Get,
                key_len: buf.len(),
                buf,
            };
            batch.push(Message::Execute {
                reply_to,
                cmd,
                reply_cap: usize::MAX,
            });
        }
        let msg = if batch.len() == 1 {
            batch.pop().expect("one command")
        } else {
            Message::Batch(batch)
        };
        assert!(self.to_owner.send(msg));
        self.to_owner.wake().expect("wake the owner");
        let mut expect = first;
        while expect <= self.seq {
            self.poll
                .poll(&mut self.events, Some(LOST_WAKE))
                .expect("poll");
            assert!(!self.events.is_empty(), "no wake within {LOST_WAKE:?}");
            self.inbox.start_drain();
            while let Some(msg) = self.inbox.try_recv() {
                match msg {
                    Message::Batch(mut replies) => {
                        for msg in replies.drain(..) {
                            self.take_reply(msg, expect);
                            expect += 1;
                        }
                        self.batch = replies;
                    }
                    msg => {
                        self.take_reply(msg, expect);
                        expect += 1;
                    }
                }
            }
        }
    }

    /// Checks that `msg` answers command `expect` and keeps its buffer.
    fn take_reply(&mut self, msg: Message, expect: u64) {
        match msg {
            Message::Executed {
                reply_to,
                outcome: Outcome::Hit { cas, value, .. },
            } if reply_to.seq == expect && cas == expect => {
                assert_eq!(&value[..4], b"hop:");
                self.buffers.push(value);
            }
            other => panic!("expected the reply to {expect}, got {other:?}"),
        }
    }
}

impl Drop for Hop {
    fn drop(&mut self) {
        // Nothing else reads this mailbox: `Shutdown` only ends `owner`.
        self.to_owner
            .send_and_wake(Message::Shutdown)
            .expect("wake the owner");
        if let Some(t) = self.owner.take() {
            t.join().expect("owner thread");
        }
    }
}

fn cross_worker(c: &mut Criterion) {
    let mut hop = Hop::start();
    let mut g = c.benchmark_group("mailbox");
    g.throughput(Throughput::Elements(1));
    g.bench_function("round_trip", |b| b.iter(|| hop.round_trip(1)));
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function(format!("round_trip_batch{BATCH}"), |b| {
        b.iter(|| hop.round_trip(BATCH))
    });
    g.finish();
}

fn config() -> Criterion {
    // 22 benchmarks at 2.5 s each: about a minute in all.
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = micro;
    config = config();
    targets = native_codec, memcache_codec, text_codec, partition, cross_worker
}
criterion_main!(micro);
