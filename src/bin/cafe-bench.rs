//! `cafe-bench`: a load generator for cafe-server and memcached.
//!
//! Each load thread runs its own `mio` loop over its share of the
//! connections, pinned like the server's workers. Closed loop keeps
//! `--pipeline` requests in flight per connection; open loop (`--rate`)
//! sends on a fixed schedule and measures each latency from the request's
//! intended send time, so a stalled server shows in the tail instead of
//! slowing the load down (coordinated omission, as wrk2 corrects it).
//! Requests still unanswered when an open-loop run ends count at their age
//! then, and the loader's own lateness (send lag) is reported beside the
//! latency, so a run the loader could not keep up with says so.
//! Latencies go into HDR histograms, merged at the end.
//!
//! Values are a function of their key (length and bytes), so `--verify`
//! can check every GET hit even while many connections write the same keys.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use cafe::config::parse_core_list;
use cafe::protocol::Decoded;
use cafe::protocol::memcache::{self, StoreMode, opcode};
use cafe::protocol::native;
use cafe::workload::{Rng, Zipf};

/// Largest response accepted (a GET of the largest value, with room).
const MAX_RESPONSE: usize = 64 << 20;
/// Requests per preload batch: well under the server's cap on replies
/// owed, so writing a batch before reading it cannot deadlock.
const PRELOAD_BATCH: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// cafe's native 0xCAFE protocol.
    Native,
    /// The memcached binary protocol.
    Memcache,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Distribution {
    Uniform,
    Zipf,
}

/// Load generator for cafe-server (native or memcached binary protocol)
/// and memcached.
#[derive(Debug, Parser)]
#[command(name = "cafe-bench", version)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:7070")]
    server: String,
    /// Protocol to speak.
    #[arg(long, value_enum, default_value = "memcache")]
    protocol: Protocol,
    /// Load threads, each with its own event loop.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Cores to pin load threads to, e.g. `1` or `2-3` (thread i on the
    /// i-th listed core, wrapping). Default: from the last core this
    /// process may use down (thread 0 on the last), so that the load stays
    /// off cafe-server's default cores, which count up from core 0.
    #[arg(long, value_name = "LIST")]
    cores: Option<String>,
    /// Do not pin load threads.
    #[arg(long, conflicts_with = "cores")]
    no_pin: bool,
    /// Connections in all, spread over the threads.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Closed loop: requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Open loop: requests per second in all, evenly spaced on each
    /// connection; latency is measured from each request's intended send
    /// time. `--pipeline` is then ignored.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keys: u32,
    /// Key length in bytes (at least enough for the key number).
    #[arg(long, default_value_t = 16)]
    key_size: usize,
    /// Value length: bytes, or MIN-MAX (each key's length is fixed within
    /// the range).
    #[arg(long, default_value = "64")]
    value_size: String,
    /// Fraction of requests that are GETs; the rest are SETs.
    #[arg(long, default_value_t = 0.9)]
    get_ratio: f64,
    /// Key popularity.
    #[arg(long, value_enum, default_value = "uniform")]
    distribution: Distribution,
    /// Zipf exponent.
    #[arg(long, default_value_t = 1.0)]
    zipf_alpha: f64,
    /// Store every key before the run.
    #[arg(long)]
    preload: bool,
    /// Check every GET hit against the value for its key.
    #[arg(long)]
    verify: bool,
    /// Seed for key choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// The request stream: which key, GET or SET, and what a key's value is.
#[derive(Debug, Clone)]
struct Workload {
    keys: u32,
    key_size: usize,
    value_min: usize,
    value_max: usize,
    get_ratio: f64,
    zipf: Option<Zipf>,
    /// Rank to key, so popularity is unrelated to key order.
    permutation: Vec<u32>,
}

impl Workload {
    /// `key:` then `id` in decimal, zero-padded to `key_size`. Written by
    /// hand: this runs once per request, and `format!` allocates.
    fn key(&self, id: u32, out: &mut Vec<u8>) {
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut n = id;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let digits = &digits[at..];
        let width = self.key_size.max(digits.len() + 4);
        out.clear();
        out.extend_from_slice(b"key:");
        out.resize(width - digits.len(), b'0');
        out.extend_from_slice(digits);
    }

    /// The value stored under key `id`: its length and bytes depend on the
    /// key alone.
    fn value(&self, id: u32, out: &mut Vec<u8>) {
        out.clear();
        let span = self.value_max - self.value_min + 1;
        let mix = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let len = self.value_min + (mix >> 33) as usize % span;
        out.extend((0..len).map(|i| (mix >> (i % 7 * 8)) as u8 ^ i as u8));
    }

    fn next(&self, rng: &mut Rng) -> (bool, u32) {
        let id = match &self.zipf {
            Some(zipf) => self.permutation[zipf.sample(rng) as usize - 1],
            None => rng.below(self.keys as usize) as u32,
        };
        (rng.unit() < self.get_ratio, id)
    }
}

/// Encodes requests and decodes responses of one protocol.
#[derive(Debug, Clone, Copy)]
struct Codec(Protocol);

/// What one response said.
#[derive(Debug, PartialEq, Eq)]
enum Answer<'a> {
    /// The value, borrowed from the input buffer.
    Hit(&'a [u8]),
    Miss,
    Stored,
    Error,
}

impl Codec {
    fn get(self, key: &[u8], out: &mut Vec<u8>) {
        let ok = match self.0 {
            Protocol::Native => native::encode_request(&native::Request::Get { key }, out).is_ok(),
            Protocol::Memcache => memcache::encode_request(
                &memcache::Request {
                    opcode: opcode::GET,
                    opaque: 0,
                    cmd: memcache::Command::Get { key },
                },
                out,
            )
            .is_ok(),
        };
        debug_assert!(ok, "keys and values are sized by the workload");
    }

    fn set(self, key: &[u8], value: &[u8], out: &mut Vec<u8>) {
        let ok = match self.0 {
            Protocol::Native => native::encode_request(
                &native::Request::Set {
                    key,
                    value,
                    flags: 0,
                    ttl: None,
                },
                out,
            )
            .is_ok(),
            Protocol::Memcache => memcache::encode_request(
                &memcache::Request {
                    opcode: opcode::SET,
                    opaque: 0,
                    cmd: memcache::Command::Store {
                        mode: StoreMode::Set,
                        key,
                        value,
                        flags: 0,
                        exptime: 0,
                        cas: 0,
                    },
                },
                out,
            )
            .is_ok(),
        };
        debug_assert!(ok, "keys and values are sized by the workload");
    }

    /// The next response in `buf`: `Ok(None)` if incomplete, `Err` if the
    /// stream is broken.
    fn decode(self, buf: &[u8], get: bool) -> Result<Option<(Answer<'_>, usize)>, String> {
        match self.0 {
            Protocol::Native => match native::decode_response(buf, MAX_RESPONSE) {
                Ok(Decoded::Complete { frame, consumed }) => {
                    let answer = match (frame.status, get) {
                        (native::Status::Ok, true) => Answer::Hit(frame.value),
                        (native::Status::NotFound, true) => Answer::Miss,
                        (native::Status::Ok, false) => Answer::Stored,
                        _ => Answer::Error,
                    };
                    Ok(Some((answer, consumed)))
                }
                Ok(Decoded::Incomplete { .. }) => Ok(None),
                Ok(Decoded::Rejected { error, .. }) => match error {},
                Err(e) => Err(e.to_string()),
            },
            Protocol::Memcache => match memcache::decode_response(buf, MAX_RESPONSE) {
                Ok(Decoded::Complete { frame, consumed }) => {
                    let answer = match (frame.status, get) {
                        (memcache::status::NO_ERROR, true) => Answer::Hit(frame.value),
                        (memcache::status::KEY_ENOENT, true) => Answer::Miss,
                        (memcache::status::NO_ERROR, false) => Answer::Stored,
                        _ => Answer::Error,
                    };
                    Ok(Some((answer, consumed)))
                }
                Ok(Decoded::Incomplete { .. }) => Ok(None),
                Ok(Decoded::Rejected { error, .. }) => match error {},
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

/// A request in flight: when it was meant to leave, whether it is a GET,
/// and its key.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    intended: Instant,
    get: bool,
    key: u32,
}

#[derive(Debug)]
struct Conn {
    sock: TcpStream,
    out: Vec<u8>,
    sent: usize,
    /// Received bytes are `inbuf[start..end]`; the vector stays zeroed to
    /// its full length so reads go straight into it, without clearing it
    /// again per read.
    inbuf: Vec<u8>,
    end: usize,
    start: usize,
    queue: VecDeque<InFlight>,
    /// Open loop: when the next request is due.
    next_due: Instant,
    write_interest: bool,
}

/// One thread's results.
#[derive(Debug)]
struct Tally {
    latency_ns: Histogram<u64>,
    /// Open loop: how late, after its intended time, the loader queued each
    /// request for sending. Near the latency itself, the loader and not
    /// the server is what the run measured.
    send_lag_ns: Histogram<u64>,
    /// Open loop: requests issued (sent, or still waiting for the socket to
    /// take them) but unanswered when the run ended. Their
    /// age at the end is in `latency_ns` (a lower bound), so a server that
    /// stops answering shows in the tail, not as a short run.
    unanswered: u64,
    requests: u64,
    errors: u64,
    verify_failures: u64,
    hits: u64,
    misses: u64,
}

impl Tally {
    fn new() -> Tally {
        // 1 ns to 60 s at 3 significant digits.
        let histogram =
            || Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("constant bounds are valid");
        Tally {
            latency_ns: histogram(),
            send_lag_ns: histogram(),
            unanswered: 0,
            requests: 0,
            errors: 0,
            verify_failures: 0,
            hits: 0,
            misses: 0,
        }
    }

    fn merge(&mut self, other: &Tally) {
        let _ = self.latency_ns.add(&other.latency_ns);
        let _ = self.send_lag_ns.add(&other.send_lag_ns);
        self.unanswered += other.unanswered;
        self.requests += other.requests;
        self.errors += other.errors;
        self.verify_failures += other.verify_failures;
        self.hits += other.hits;
        self.misses += other.misses;
    }
}

/// What every load thread shares.
#[derive(Debug, Clone)]
struct Plan {
    codec: Codec,
    workload: Workload,
    pipeline: usize,
    /// Open loop: the interval between two requests on one connection.
    interval: Option<Duration>,
    warmup: Duration,
    duration: Duration,
    verify: bool,
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let std = StdStream::connect(addr)?;
    std.set_nodelay(true)?;
    std.set_nonblocking(true)?;
    Ok(TcpStream::from_std(std))
}

/// Where one load thread's connections sit among all of them, and when
/// every thread's schedule starts: connections are made before any thread
/// starts, so connecting is never charged to the first requests.
#[derive(Debug, Clone, Copy)]
struct Share {
    start: Instant,
    /// Index of this thread's first connection among all connections.
    first: usize,
    total: usize,
}

/// Runs one load thread over its connections.
fn run_thread(plan: &Plan, socks: Vec<TcpStream>, share: Share, seed: u64) -> io::Result<Tally> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let mut rng = Rng::new(seed);
    let start = share.start;
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let mut conns = Vec::with_capacity(socks.len());
    for (i, mut sock) in socks.into_iter().enumerate() {
        poll.registry()
            .register(&mut sock, Token(i), Interest::READABLE)?;
        // Spread every connection's schedule over one interval, across all
        // threads, so the offered load is smooth rather than bursts.
        let offset = plan
            .interval
            .map(|iv| iv.mul_f64((share.first + i) as f64 / share.total as f64))
            .unwrap_or_default();
        conns.push(Conn {
            sock,
            out: Vec::with_capacity(4096),
            sent: 0,
            inbuf: vec![0; 64 << 10],
            end: 0,
            start: 0,
            queue: VecDeque::new(),
            next_due: start + offset,
            write_interest: false,
        });
    }
    let mut tally = Tally::new();
    let (mut key, mut value) = (Vec::new(), Vec::new());
    let mut expected = Vec::new();
    let mut enqueue = |conn: &mut Conn, intended: Instant, rng: &mut Rng| {
        let (get, id) = plan.workload.next(rng);
        plan.workload.key(id, &mut key);
        if get {
            plan.codec.get(&key, &mut conn.out);
        } else {
            plan.workload.value(id, &mut value);
            plan.codec.set(&key, &value, &mut conn.out);
        }
        conn.queue.push_back(InFlight {
            intended,
            get,
            key: id,
        });
    };
    if plan.interval.is_none() {
        let now = Instant::now();
        for conn in &mut conns {
            for _ in 0..plan.pipeline.max(1) {
                enqueue(conn, now, &mut rng);
            }
        }
    }
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Open loop: queue everything that is due, whatever is in flight.
        if let Some(interval) = plan.interval {
            for conn in &mut conns {
                while conn.next_due <= now {
                    let due = conn.next_due;
                    enqueue(conn, due, &mut rng);
                    conn.next_due += interval;
                    if due >= measure_from {
                        let lag = now.duration_since(due).as_nanos() as u64;
                        let _ = tally.send_lag_ns.record(lag.max(1));
                    }
                }
            }
        }
        for (i, conn) in conns.iter_mut().enumerate() {
            flush(conn, &poll, i)?;
        }
        let wake_at = plan
            .interval
            .and_then(|_| conns.iter().map(|c| c.next_due).min())
            .unwrap_or(end)
            .min(end);
        let mut timeout = wake_at.saturating_duration_since(Instant::now());
        // mio rounds a timeout up to whole milliseconds: a send would leave
        // up to a millisecond late, and open-loop latency counts from the
        // intended time, so the load generator's own lateness would be
        // charged to the server. Sleep until 2 ms before, then spin (load
        // threads have their own cores).
        if plan.interval.is_some() {
            timeout = timeout.saturating_sub(Duration::from_millis(2));
        }
        poll.poll(&mut events, Some(timeout))?;
        for event in events.iter() {
            let i = event.token().0;
            let Some(conn) = conns.get_mut(i) else {
                continue;
            };
            if event.is_writable() {
                flush(conn, &poll, i)?;
            }
            if !(event.is_readable() || event.is_read_closed()) {
                continue;
            }
            fill(conn)?;
            // Everything this read brought arrived together: one clock
            // reading serves every reply in it.
            let done = Instant::now();
            while let Some(front) = conn.queue.front().copied() {
                // Past the end: left queued, so an open-loop run counts it
                // as unanswered at its age rather than losing it.
                if done >= end {
                    break;
                }
                let decoded = plan
                    .codec
                    .decode(&conn.inbuf[conn.start..conn.end], front.get)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let Some((answer, consumed)) = decoded else {
                    break;
                };
                if front.intended >= measure_from {
                    tally.requests += 1;
                    let ns = done.duration_since(front.intended).as_nanos() as u64;
                    let _ = tally.latency_ns.record(ns.max(1));
                    match &answer {
                        Answer::Hit(got) => {
                            tally.hits += 1;
                            if plan.verify {
                                plan.workload.value(front.key, &mut expected);
                                if *got != expected.as_slice() {
                                    tally.verify_failures += 1;
                                }
                            }
                        }
                        Answer::Miss => tally.misses += 1,
                        Answer::Stored => {}
                        Answer::Error => tally.errors += 1,
                    }
                }
                conn.start += consumed;
                conn.queue.pop_front();
                if plan.interval.is_none() {
                    enqueue(conn, done, &mut rng);
                }
            }
            compact(conn);
            flush(conn, &poll, i)?;
        }
    }
    if let Some(interval) = plan.interval {
        let unanswered = |intended: Instant, tally: &mut Tally| {
            if intended >= measure_from {
                tally.unanswered += 1;
                let age = end.duration_since(intended).as_nanos() as u64;
                let _ = tally.latency_ns.record(age.max(1));
            }
        };
        for conn in &mut conns {
            for front in &conn.queue {
                unanswered(front.intended, &mut tally);
            }
            // Due, but the loader never got to them: late by at least this.
            while conn.next_due < end {
                unanswered(conn.next_due, &mut tally);
                let lag = end.duration_since(conn.next_due).as_nanos() as u64;
                let _ = tally.send_lag_ns.record(lag.max(1));
                conn.next_due += interval;
            }
        }
    }
    Ok(tally)
}

/// Reads what the socket has into the connection's buffer.
fn fill(conn: &mut Conn) -> io::Result<()> {
    loop {
        if conn.end == conn.inbuf.len() {
            if conn.start > 0 {
                compact(conn);
            } else {
                // A response larger than the buffer: grow, zeroing once.
                let len = conn.inbuf.len() * 2;
                conn.inbuf.resize(len, 0);
            }
        }
        let want = conn.inbuf.len() - conn.end;
        match conn.sock.read(&mut conn.inbuf[conn.end..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                conn.end += n;
                // A short read emptied the socket; edge-triggered epoll
                // reports whatever arrives next.
                if n < want {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Moves unconsumed bytes to the front of the input buffer.
fn compact(conn: &mut Conn) {
    if conn.start == conn.end {
        conn.start = 0;
        conn.end = 0;
    } else if conn.start > 0 {
        conn.inbuf.copy_within(conn.start..conn.end, 0);
        conn.end -= conn.start;
        conn.start = 0;
    }
}

/// Writes what is queued; asks for WRITABLE only while some is left.
fn flush(conn: &mut Conn, poll: &Poll, i: usize) -> io::Result<()> {
    while conn.sent < conn.out.len() {
        match conn.sock.write(&conn.out[conn.sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => conn.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if conn.sent == conn.out.len() {
        conn.out.clear();
        conn.sent = 0;
    }
    let want = conn.sent < conn.out.len() || !conn.out.is_empty();
    if want != conn.write_interest {
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        poll.registry()
            .reregister(&mut conn.sock, Token(i), interest)?;
        conn.write_interest = want;
    }
    Ok(())
}

/// Stores every key, in batches, over one blocking connection.
fn preload(addr: SocketAddr, codec: Codec, workload: &Workload) -> io::Result<()> {
    let mut stream = StdStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let (mut key, mut value, mut out) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    let mut id = 0;
    while id < workload.keys {
        let batch_end = (id + PRELOAD_BATCH as u32).min(workload.keys);
        out.clear();
        for k in id..batch_end {
            workload.key(k, &mut key);
            workload.value(k, &mut value);
            codec.set(&key, &value, &mut out);
        }
        stream.write_all(&out)?;
        let mut answers = 0;
        while answers < (batch_end - id) as usize {
            let mut start = 0;
            while let Some((answer, consumed)) = codec
                .decode(&buf[start..filled], false)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                if answer != Answer::Stored {
                    return Err(io::Error::other("preload: a SET was refused"));
                }
                start += consumed;
                answers += 1;
            }
            buf.copy_within(start..filled, 0);
            filled -= start;
            if answers < (batch_end - id) as usize {
                let n = stream.read(&mut buf[filled..])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                filled += n;
            }
        }
        id = batch_end;
    }
    Ok(())
}

fn parse_value_size(s: &str) -> Option<(usize, usize)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => {
            let n = s.trim().parse().ok()?;
            Some((n, n))
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cafe-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let addr = args
        .server
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("--server {:?} is not a host:port", args.server))?;
    let (value_min, value_max) = parse_value_size(&args.value_size)
        .ok_or_else(|| format!("--value-size {:?} is not N or MIN-MAX", args.value_size))?;
    if args.threads == 0 || args.connections < args.threads || args.keys == 0 {
        return Err("--threads, --connections and --keys must be positive, with at least one connection per thread".into());
    }
    if !(0.0..=1.0).contains(&args.get_ratio) {
        return Err("--get-ratio must be between 0 and 1".into());
    }
    if args.distribution == Distribution::Zipf
        && !(args.zipf_alpha > 0.0 && args.zipf_alpha.is_finite())
    {
        return Err("--zipf-alpha must be a positive number".into());
    }
    // Both protocols give a key 16 bits of length; a reply must fit what the
    // loader accepts. Checked here: an unencodable request would desync the
    // in-flight queue from the wire.
    if args.key_size > usize::from(u16::MAX) || value_max > MAX_RESPONSE - 1024 {
        return Err(format!(
            "--key-size is at most {} and values at most {} bytes",
            u16::MAX,
            MAX_RESPONSE - 1024
        ));
    }
    let mut rng = Rng::new(args.seed ^ 0x5EED);
    let zipf =
        (args.distribution == Distribution::Zipf).then(|| Zipf::new(args.keys, args.zipf_alpha));
    let mut permutation: Vec<u32> = (0..args.keys).collect();
    if zipf.is_some() {
        for i in (1..permutation.len()).rev() {
            permutation.swap(i, rng.below(i + 1));
        }
    }
    let workload = Workload {
        keys: args.keys,
        key_size: args.key_size,
        value_min,
        value_max,
        get_ratio: args.get_ratio,
        zipf,
        permutation,
    };
    let codec = Codec(args.protocol);
    if args.preload {
        preload(addr, codec, &workload).map_err(|e| format!("preload: {e}"))?;
    }
    let interval = match args.rate {
        // Below a microsecond between a connection's requests, the schedule
        // could never be kept and would only queue without end.
        Some(rate) if rate.is_finite() && rate > 0.0 && args.connections as f64 / rate >= 1e-6 => {
            Some(Duration::from_secs_f64(args.connections as f64 / rate))
        }
        Some(_) => {
            return Err(
                "--rate must be positive and leave each connection at least 1 µs between requests"
                    .into(),
            );
        }
        None => None,
    };
    let plan = Plan {
        codec,
        workload,
        pipeline: args.pipeline,
        interval,
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        duration: Duration::from_secs_f64(args.duration.max(0.001)),
        verify: args.verify,
    };
    let cores: Option<Vec<usize>> = if args.no_pin {
        None
    } else {
        match &args.cores {
            Some(list) => Some(parse_core_list(list).map_err(|e| e.to_string())?),
            // The cores this process may run on, last first.
            None => match core_affinity::get_core_ids() {
                Some(ids) if !ids.is_empty() => Some(
                    (0..args.threads)
                        .map(|t| ids[ids.len() - 1 - t % ids.len()].id)
                        .collect(),
                ),
                _ => None,
            },
        }
    };
    let mut socks = Vec::with_capacity(args.threads);
    for t in 0..args.threads {
        let n = args.connections / args.threads + usize::from(t < args.connections % args.threads);
        let group = (0..n)
            .map(|_| connect(addr))
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        socks.push(group);
    }
    let start = Instant::now();
    let results: Vec<Result<Tally, String>> = std::thread::scope(|scope| {
        let mut first = 0;
        let handles: Vec<_> = socks
            .into_iter()
            .enumerate()
            .map(|(t, group)| {
                let plan = &plan;
                let share = Share {
                    start,
                    first,
                    total: args.connections,
                };
                first += group.len();
                let core = cores.as_ref().map(|c| c[t % c.len()]);
                let seed = args.seed.wrapping_add(t as u64 * 0x1000_0000);
                scope.spawn(move || {
                    if let Some(core) = core
                        && !core_affinity::set_for_current(core_affinity::CoreId { id: core })
                    {
                        eprintln!("cafe-bench: could not pin load thread {t} to core {core}; it runs unpinned");
                    }
                    run_thread(plan, group, share, seed).map_err(|e| format!("load thread {t}: {e}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a load thread panicked".into()))
            })
            .collect()
    });
    let mut total = Tally::new();
    for r in results {
        total.merge(&r?);
    }
    report(args, &plan, &total);
    Ok(())
}

fn report(args: &Args, plan: &Plan, t: &Tally) {
    let secs = plan.duration.as_secs_f64();
    let throughput = t.requests as f64 / secs;
    let h = &t.latency_ns;
    let us = |ns: u64| ns as f64 / 1000.0;
    let q = |p: f64| us(h.value_at_quantile(p));
    let mode = if plan.interval.is_some() {
        "open"
    } else {
        "closed"
    };
    let protocol = match args.protocol {
        Protocol::Native => "native",
        Protocol::Memcache => "memcache",
    };
    let lag = &t.send_lag_ns;
    let lag_q = |p: f64| us(lag.value_at_quantile(p));
    if args.json {
        let send_lag = if plan.interval.is_some() {
            format!(
                "{{\"p50\":{:.2},\"p99\":{:.2},\"p999\":{:.2},\"max\":{:.2}}}",
                lag_q(0.5),
                lag_q(0.99),
                lag_q(0.999),
                us(lag.max())
            )
        } else {
            "null".into()
        };
        println!(
            "{{\"protocol\":\"{protocol}\",\"mode\":\"{mode}\",\"connections\":{},\"pipeline\":{},\"rate\":{},\"duration_s\":{secs},\"requests\":{},\"errors\":{},\"verify_failures\":{},\"hits\":{},\"misses\":{},\"unanswered\":{},\"throughput\":{throughput:.1},\"latency_us\":{{\"mean\":{:.2},\"p50\":{:.2},\"p90\":{:.2},\"p99\":{:.2},\"p999\":{:.2},\"p9999\":{:.2},\"max\":{:.2}}},\"send_lag_us\":{send_lag}}}",
            args.connections,
            args.pipeline,
            args.rate
                .map(|r| format!("{r}"))
                .unwrap_or_else(|| "null".into()),
            t.requests,
            t.errors,
            t.verify_failures,
            t.hits,
            t.misses,
            t.unanswered,
            h.mean() / 1000.0,
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            q(0.9999),
            us(h.max()),
        );
        return;
    }
    println!(
        "{protocol} {mode} loop, {} connections{}, {secs:.1} s measured",
        args.connections,
        match args.rate {
            Some(r) => format!(", offered {r:.0} req/s"),
            None => format!(", pipeline {}", args.pipeline),
        }
    );
    println!("| requests | throughput (req/s) | errors | verify failures | hit ratio |");
    println!("|---:|---:|---:|---:|---:|");
    let lookups = (t.hits + t.misses).max(1);
    println!(
        "| {} | {throughput:.0} | {} | {} | {:.4} |",
        t.requests,
        t.errors,
        t.verify_failures,
        t.hits as f64 / lookups as f64
    );
    println!();
    println!("| latency (µs) | mean | p50 | p90 | p99 | p99.9 | p99.99 | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        h.mean() / 1000.0,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        q(0.9999),
        us(h.max())
    );
    if plan.interval.is_some() {
        println!();
        println!(
            "send lag (µs, the loader's own lateness): p50 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}; {} unanswered at the end (in the latency, at their age then)",
            lag_q(0.5),
            lag_q(0.99),
            lag_q(0.999),
            us(lag.max()),
            t.unanswered
        );
    }
}
