//! What a run measured: each load thread's tally, merged, and printed as
//! a markdown table or one JSON object.
//!
//! Must not: measure anything itself, or change the JSON field names
//! (scripts/bench-lib.sh and the comparison scripts read them).

use hdrhistogram::Histogram;

use crate::args::Args;
use crate::cpu::Usage;
use crate::load::Plan;

/// One thread's results.
#[derive(Debug)]
pub struct Tally {
    pub latency_ns: Histogram<u64>,
    /// Open loop: how late, after its intended time, the loader queued each
    /// request for sending. Near the latency itself, the loader and not
    /// the server is what the run measured.
    pub send_lag_ns: Histogram<u64>,
    /// Open loop: requests issued (sent, or still waiting for the socket to
    /// take them) but unanswered when the run ended. Their
    /// age at the end is in `latency_ns` (a lower bound), so a server that
    /// stops answering shows in the tail, not as a short run.
    pub unanswered: u64,
    pub requests: u64,
    pub errors: u64,
    pub verify_failures: u64,
    pub hits: u64,
    pub misses: u64,
    /// CPU time over the window of the thread (merged: of the busiest).
    pub busiest_thread_cpu_us: u64,
}

impl Tally {
    pub fn new() -> Tally {
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
            busiest_thread_cpu_us: 0,
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        let _ = self.latency_ns.add(&other.latency_ns);
        let _ = self.send_lag_ns.add(&other.send_lag_ns);
        self.unanswered += other.unanswered;
        self.requests += other.requests;
        self.errors += other.errors;
        self.verify_failures += other.verify_failures;
        self.hits += other.hits;
        self.misses += other.misses;
        self.busiest_thread_cpu_us = self.busiest_thread_cpu_us.max(other.busiest_thread_cpu_us);
    }
}

pub fn report(args: &Args, plan: &Plan, t: &Tally, usage: &Usage) {
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
    let protocol = args.protocol.name();
    let lag = &t.send_lag_ns;
    let lag_q = |p: f64| us(lag.value_at_quantile(p));
    let [mean, p50, p90, p99, p999, p9999, max] = [
        h.mean() / 1000.0,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        q(0.9999),
        us(h.max()),
    ];
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
            "{{\"protocol\":\"{protocol}\",\"mode\":\"{mode}\",\"connections\":{},\"pipeline\":{},\"rate\":{},\"duration_s\":{secs},\"requests\":{},\"errors\":{},\"verify_failures\":{},\"hits\":{},\"misses\":{},\"unanswered\":{},\"throughput\":{throughput:.1},\"latency_us\":{{\"mean\":{mean:.2},\"p50\":{p50:.2},\"p90\":{p90:.2},\"p99\":{p99:.2},\"p999\":{p999:.2},\"p9999\":{p9999:.2},\"max\":{max:.2}}},\"send_lag_us\":{send_lag},{}}}",
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
            cpu_json(usage, throughput, plan.interval.is_none()),
        );
        if plan.interval.is_none() && usage.loader_bound() {
            eprintln!("cafe-bench: {}", loader_warning(usage));
        }
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
        "| | {mean:.1} | {p50:.1} | {p90:.1} | {p99:.1} | {p999:.1} | {p9999:.1} | {max:.1} |"
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
    cpu_table(usage, throughput, plan.interval.is_none(), secs);
}

/// Server CPU per request (µs) and capacity (requests per server CPU
/// second), if the server's CPU was measured and neither it nor the
/// throughput is zero. Both are rates over the window (throughput over
/// `--duration`, CPU over the span actually sampled, which a busy machine
/// can make start late), so a late sample does not skew the quotient; on
/// time, it is exactly requests / server CPU seconds.
fn capacity(usage: &Usage, throughput: f64) -> Option<(f64, f64)> {
    let cores = usage.server_s()? / usage.wall_s;
    let capacity = (cores > 0.0 && throughput > 0.0).then(|| throughput / cores)?;
    Some((1e6 / capacity, capacity))
}

/// The `server_cpu` and `loader_cpu` fields, and the window they cover.
/// Whether the loader was the limit is judged in closed loop only: in open
/// loop it spins between sends by design, and its send lag says more.
fn cpu_json(usage: &Usage, throughput: f64, closed: bool) -> String {
    let server = match (&usage.server, capacity(usage, throughput)) {
        (Some((pids, cpu_s)), measured) => {
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            let (per_request, capacity) = match measured {
                Some((p, c)) => (format!("{p:.3}"), format!("{c:.1}")),
                None => ("null".into(), "null".into()),
            };
            format!(
                "{{\"pids\":[{}],\"server_cpu_s\":{cpu_s:.3},\"us_per_request\":{per_request},\"requests_per_cpu_s\":{capacity}}}",
                pids.join(",")
            )
        }
        (None, _) => "null".into(),
    };
    let opt = |x: Option<f64>| x.map_or_else(|| "null".into(), |x| format!("{x:.1}"));
    format!(
        "\"cpu_window_s\":{:.3},\"server_cpu\":{server},\"loader_cpu\":{{\"threads\":{},\"loader_cpu_s\":{:.3},\"percent\":{:.1},\"percent_per_thread\":{:.1},\"busiest_thread_percent\":{},\"loader_bound\":{}}}",
        usage.wall_s,
        usage.threads,
        usage.loader_s,
        usage.loader_percent(),
        usage.loader_percent_per_thread(),
        opt(usage.busiest_thread_percent()),
        if closed {
            usage.loader_bound().to_string()
        } else {
            "null".into()
        },
    )
}

fn cpu_table(usage: &Usage, throughput: f64, closed: bool, secs: f64) {
    println!();
    if (usage.wall_s - secs).abs() > 0.1 * secs {
        println!(
            "note: CPU sampled over {:.3} s of the {secs} s measured (a busy machine woke the sampler late); its figures are rates over that span",
            usage.wall_s
        );
    }
    if let Some((pids, cpu_s)) = &usage.server {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        println!(
            "| server CPU (s, pid {}) | server CPU per request (µs) | capacity (req per server CPU second) |",
            pids.join(", ")
        );
        println!("|---:|---:|---:|");
        match capacity(usage, throughput) {
            Some((per_request, capacity)) => {
                println!("| {cpu_s:.3} | {per_request:.2} | {capacity:.0} |")
            }
            None => println!("| {cpu_s:.3} | - | - |"),
        }
        println!();
    }
    let busiest = usage
        .busiest_thread_percent()
        .map(|b| format!(", busiest {b:.0}%"))
        .unwrap_or_default();
    println!(
        "loader CPU: {:.0}% of a core over {} load thread(s) ({:.0}% per thread{busiest})",
        usage.loader_percent(),
        usage.threads,
        usage.loader_percent_per_thread(),
    );
    if closed && usage.loader_bound() {
        println!("{}", loader_warning(usage));
    } else if !closed {
        println!(
            "(open loop: load threads spin between sends, so their CPU is no verdict; the send lag is)"
        );
    }
}

fn loader_warning(usage: &Usage) -> String {
    let share = usage
        .busiest_thread_percent()
        .unwrap_or_else(|| usage.loader_percent_per_thread());
    format!(
        "warning: a load thread used {share:.0}% of a core: the loader, not the server, may have set this throughput (more --threads, on cores of their own)"
    )
}
