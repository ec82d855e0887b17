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
//! With `--server-pid`, the server's CPU time over the measured window
//! gives its capacity per core (requests per second of server CPU); the
//! loader's own CPU, per thread, says when the loader was the limit.
//!
//! Values are a function of their key (length and bytes), so `--verify`
//! can check every GET hit even while many connections write the same keys.
//!
//! It speaks cafe's native protocol or memcached's binary, text or meta
//! protocol. No request carries an opaque: replies are matched to requests
//! by their order on a connection, which every protocol keeps (and the
//! text protocol has no opaque to match by).
//!
//! With `--servers` it drives a fleet: each connection is one socket per
//! node, and each request goes to its key's node by libmemcached's ketama
//! ring, as a client-side-hashing client would send it.
//!
//! Modules: `args` (flags), `workload` (keys and values), `fleet` (nodes
//! and key placement), `codec` (the protocols' bytes), `decimal` (numbers
//! as ASCII), `conn` (a socket and its buffers), `load` (one load thread's
//! loop), `preload`, `cpu` (server and loader CPU time over the measured
//! window), `report` (tally and output). This file checks the flags
//! together, connects, starts the threads and merges their results.
//!
//! Must not: hold protocol, socket or measuring logic of its own.

mod args;
mod codec;
mod conn;
mod cpu;
mod decimal;
mod fleet;
mod load;
mod preload;
mod report;
mod workload;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use cafe::config::parse_core_list;

use crate::args::{Args, Distribution, parse_value_size};
use crate::codec::{Codec, MAX_RESPONSE};
use crate::conn::connect;
use crate::fleet::Fleet;
use crate::load::{Plan, Share, run_thread};
use crate::preload::preload;
use crate::report::{Tally, report};
use crate::workload::Workload;

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
    // A reply must fit what the loader accepts. Checked here: an
    // unencodable request would desync the in-flight queue from the wire.
    let codec = Codec(args.protocol);
    if args.key_size > codec.max_key_len() || value_max > MAX_RESPONSE - 1024 {
        return Err(format!(
            "--key-size is at most {} with --protocol {}, and values at most {} bytes",
            codec.max_key_len(),
            args.protocol.name(),
            MAX_RESPONSE - 1024
        ));
    }
    cpu::check_pids(&args.server_pid).map_err(|e| e.to_string())?;
    let workload = Workload::new(args, value_min, value_max);
    let fleet = Fleet::new(args, &workload)?;
    if args.preload {
        for (n, &addr) in fleet.addrs.iter().enumerate() {
            preload(addr, codec, &workload, |id| fleet.node(id) == n)
                .map_err(|e| format!("preload of {addr}: {e}"))?;
        }
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
    let addrs = fleet.addrs.clone();
    let plan = Plan {
        codec,
        workload,
        fleet,
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
        // Connection c of the thread is sockets c*N..c*N+N, one per node.
        let mut group = Vec::with_capacity(n * addrs.len());
        for _ in 0..n {
            for &addr in &addrs {
                group.push(connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?);
            }
        }
        socks.push(group);
    }
    let start = Instant::now();
    let (usage, results) = std::thread::scope(|scope| {
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
                first += group.len() / addrs.len();
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
        let from = start + plan.warmup;
        let usage = cpu::measure(
            &args.server_pid,
            args.threads,
            from,
            from + plan.duration,
            || handles.iter().any(|h| h.is_finished()),
        );
        let results: Vec<Result<Tally, String>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a load thread panicked".into()))
            })
            .collect();
        (usage, results)
    });
    let mut total = Tally::new();
    for r in results {
        total.merge(&r?);
    }
    // A load thread that ended early has reported its error above.
    let mut usage = usage
        .map_err(|e| e.to_string())?
        .ok_or("the load ended before the measured window did")?;
    usage.set_busiest_thread(total.busiest_thread_cpu_us as f64 / 1e6, plan.duration);
    report(args, &plan, &total, &usage);
    Ok(())
}
