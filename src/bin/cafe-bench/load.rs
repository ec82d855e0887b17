//! One load thread: its `mio` loop over its connections, the closed- or
//! open-loop schedule, matching each response to the request at the front
//! of its connection's queue, and the tally of what came back.
//!
//! Must not: parse flags, print, or know a protocol's bytes (the codec
//! encodes and decodes; this loop only keeps requests and replies in
//! order).

use std::io;
use std::time::{Duration, Instant};

use cafe::workload::Rng;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::codec::{Answer, Codec};
use crate::conn::{Conn, InFlight};
use crate::cpu;
use crate::fleet::Fleet;
use crate::report::Tally;
use crate::workload::Workload;

/// What every load thread shares.
#[derive(Debug, Clone)]
pub struct Plan {
    pub codec: Codec,
    pub workload: Workload,
    /// The nodes, and which one each key lives on.
    pub fleet: Fleet,
    pub pipeline: usize,
    /// Open loop: the interval between two requests on one connection.
    pub interval: Option<Duration>,
    pub warmup: Duration,
    pub duration: Duration,
    pub verify: bool,
}

/// Where one load thread's connections sit among all of them, and when
/// every thread's schedule starts: connections are made before any thread
/// starts, so connecting is never charged to the first requests.
#[derive(Debug, Clone, Copy)]
pub struct Share {
    pub start: Instant,
    /// Index of this thread's first connection among all connections.
    pub first: usize,
    pub total: usize,
}

/// Runs one load thread over its connections. With a fleet of N nodes,
/// connection c is the sockets `c*N..c*N+N`, one per node: its requests
/// go to their keys' nodes, and `--pipeline` bounds what is in flight on
/// the connection as a whole, as a client with a pool per node would.
pub fn run_thread(
    plan: &Plan,
    socks: Vec<TcpStream>,
    share: Share,
    seed: u64,
) -> io::Result<Tally> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let mut rng = Rng::new(seed);
    let start = share.start;
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let nodes = plan.fleet.len();
    let mut conns = Vec::with_capacity(socks.len());
    for (i, mut sock) in socks.into_iter().enumerate() {
        poll.registry()
            .register(&mut sock, Token(i), Interest::READABLE)?;
        // Spread every connection's schedule over one interval, across all
        // threads, so the offered load is smooth rather than bursts.
        let offset = plan
            .interval
            .map(|iv| iv.mul_f64((share.first + i / nodes) as f64 / share.total as f64))
            .unwrap_or_default();
        conns.push(Conn::new(sock, start + offset));
    }
    // Connection c's schedule is kept by its first socket.
    let connections = conns.len() / nodes;
    let mut tally = Tally::new();
    let (mut key, mut value) = (Vec::new(), Vec::new());
    let mut expected = Vec::new();
    // Queues the next request of connection `c` on its key's node.
    let mut enqueue = |conns: &mut [Conn], c: usize, intended: Instant, rng: &mut Rng| {
        let (get, id) = plan.workload.next(rng);
        let conn = &mut conns[c * nodes + plan.fleet.node(id)];
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
        for c in 0..connections {
            for _ in 0..plan.pipeline.max(1) {
                enqueue(&mut conns, c, now, &mut rng);
            }
        }
    }
    // The thread's own CPU time from its first turn in the window: a thread
    // near a whole core was the limit, whatever the server had to spare.
    let thread_cpu = || cpu::thread_cpu_us().map_err(|e| io::Error::other(e.to_string()));
    let mut cpu_from = None;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if cpu_from.is_none() && now >= measure_from {
            cpu_from = Some(thread_cpu()?);
        }
        // Open loop: queue everything that is due, whatever is in flight.
        if let Some(interval) = plan.interval {
            for c in 0..connections {
                while conns[c * nodes].next_due <= now {
                    let due = conns[c * nodes].next_due;
                    enqueue(&mut conns, c, due, &mut rng);
                    conns[c * nodes].next_due += interval;
                    if due >= measure_from {
                        let lag = now.duration_since(due).as_nanos() as u64;
                        let _ = tally.send_lag_ns.record(lag.max(1));
                    }
                }
            }
        }
        for (i, conn) in conns.iter_mut().enumerate() {
            conn.flush(&poll, i)?;
        }
        let wake_at = plan
            .interval
            .and_then(|_| conns.iter().step_by(nodes).map(|c| c.next_due).min())
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
                conn.flush(&poll, i)?;
            }
            if !(event.is_readable() || event.is_read_closed()) {
                continue;
            }
            conn.fill()?;
            // Everything this read brought arrived together: one clock
            // reading serves every reply in it.
            let done = Instant::now();
            let mut answered = 0;
            while let Some(front) = conn.queue.front().copied() {
                // Past the end: left queued, so an open-loop run counts it
                // as unanswered at its age rather than losing it.
                if done >= end {
                    break;
                }
                let decoded = plan
                    .codec
                    .decode(conn.received(), front.get)
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
                conn.consume(consumed);
                conn.queue.pop_front();
                answered += 1;
            }
            conn.compact();
            // Closed loop: one new request of the same connection for each
            // answer, to whichever node its key is on.
            let c = i / nodes;
            if plan.interval.is_none() {
                for _ in 0..answered {
                    enqueue(&mut conns, c, done, &mut rng);
                }
            }
            for (j, sub) in conns.iter_mut().enumerate().skip(c * nodes).take(nodes) {
                sub.flush(&poll, j)?;
            }
        }
    }
    let cpu_to = thread_cpu()?;
    tally.busiest_thread_cpu_us = cpu_to - cpu_from.unwrap_or(cpu_to).min(cpu_to);
    if let Some(interval) = plan.interval {
        let unanswered = |intended: Instant, tally: &mut Tally| {
            if intended >= measure_from {
                tally.unanswered += 1;
                let age = end.duration_since(intended).as_nanos() as u64;
                let _ = tally.latency_ns.record(age.max(1));
            }
        };
        for conn in &conns {
            for front in &conn.queue {
                unanswered(front.intended, &mut tally);
            }
        }
        for conn in conns.iter_mut().step_by(nodes) {
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
