//! The Prometheus text exposition format (version 0.0.4) of a server
//! snapshot: every counter and gauge STATS reports, per worker, and the
//! latency histograms.
//!
//! Names are `cafe_` and memcached's stat name; counters end in `_total`
//! as Prometheus requires. Each series carries a `worker` label; the
//! server-wide value is `sum without (worker) (...)`. Only the gauges that
//! are server facts (build, start time, workers) have no worker label.
//!
//! Must not: read clocks, sockets or workers' state: it renders the
//! snapshot it is given.

use std::fmt::Write as _;

use crate::stats::WorkerStats;

use super::histogram::{BOUNDS_NS, CommandClass, Histogram, Latencies};

/// One worker's share of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSnapshot {
    /// The worker's id.
    pub id: u32,
    /// Its counters, its partition's folded in.
    pub stats: WorkerStats,
    /// Its latency histograms.
    pub latencies: Latencies,
}

/// Server facts that are not per worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    /// cafe's version.
    pub version: &'static str,
    /// The memcached version reported to clients.
    pub memcached_version: &'static str,
    /// Unix time the process started, in seconds.
    pub start_time: u64,
    /// Workers.
    pub workers: usize,
}

/// Counters that are gauges: what is open or stored now, and limits.
fn is_gauge(name: &str) -> bool {
    matches!(
        name,
        "curr_connections"
            | "curr_items"
            | "bytes"
            | "limit_maxbytes"
            | "hash_bytes"
            | "read_buf_count"
            | "read_buf_bytes"
            | "conn_bytes"
            | "conn_limit"
    )
}

/// A stat's series name, where memcached's name breaks Prometheus's
/// conventions: a gauge may not end in `_count`.
fn series(stat: &str) -> &str {
    match stat {
        "read_buf_count" => "read_buffers",
        other => other,
    }
}

/// What each stat means, for `# HELP`; the stat's doc in `WorkerStats`
/// is the long form.
fn help(name: &str) -> &'static str {
    match name {
        "curr_connections" => "Connections open now.",
        "total_connections" => "Connections accepted.",
        "curr_items" => "Items stored now.",
        "total_items" => "Items stored.",
        "bytes" => "Bytes the stored items cost.",
        "limit_maxbytes" => "Bytes of items the worker may hold (memory budget).",
        "hash_bytes" => "Bytes the hash table and free slots cost beyond the items.",
        "forwarded" => "Requests sent to the worker that owns their key.",
        "executed_for_peers" => "Requests executed for another worker.",
        "evictions" => "Live items removed to make room.",
        "request_errors" => "Requests refused with an error (connection kept).",
        "framing_errors" => "Connections closed because their stream could not be framed.",
        "read_buf_count" => "Connections holding input between reads.",
        "read_buf_bytes" => "Bytes of input held between reads.",
        "conn_bytes" => "Bytes the connections hold (input, replies, forwarded requests).",
        "conn_limit" => "Bytes the connections may hold (connection memory budget).",
        "conn_yields" => "Times a connection gave up its turn to the others.",
        "deferred_for_peers" => "Forwarded reads sent back for a value over their reservation.",
        _ => "memcached's stat of the same name.",
    }
}

/// Renders the snapshot into `out`.
pub fn render(facts: &ServerFacts, workers: &[WorkerSnapshot], out: &mut String) {
    // Writing into a String cannot fail.
    let _ = writeln!(
        out,
        "# HELP cafe_build_info cafe's version and the memcached version it reports.\n\
         # TYPE cafe_build_info gauge\n\
         cafe_build_info{{version=\"{}\",memcached_version=\"{}\"}} 1",
        facts.version, facts.memcached_version
    );
    let _ = writeln!(
        out,
        "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n\
         # TYPE process_start_time_seconds gauge\n\
         process_start_time_seconds {}",
        facts.start_time
    );
    let _ = writeln!(
        out,
        "# HELP cafe_workers Worker threads.\n# TYPE cafe_workers gauge\ncafe_workers {}",
        facts.workers
    );
    let Some(first) = workers.first() else {
        return;
    };
    for (i, (stat, _)) in first.stats.fields().iter().enumerate() {
        let gauge = is_gauge(stat);
        let name = series(stat);
        let suffix = if gauge { "" } else { "_total" };
        let kind = if gauge { "gauge" } else { "counter" };
        let _ = writeln!(
            out,
            "# HELP cafe_{name}{suffix} {}\n# TYPE cafe_{name}{suffix} {kind}",
            help(stat)
        );
        for w in workers {
            let value = w.stats.fields()[i].1;
            let _ = writeln!(out, "cafe_{name}{suffix}{{worker=\"{}\"}} {value}", w.id);
        }
    }
    let name = "cafe_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Server time per request, from read to reply written.\n# TYPE {name} histogram"
    );
    for w in workers {
        for class in CommandClass::ALL {
            let labels = format!("worker=\"{}\",command=\"{}\"", w.id, class.label());
            histogram(out, name, &labels, w.latencies.class(class));
        }
    }
    let name = "cafe_forward_wait_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time a forwarded request waits for the worker that owns its key.\n# TYPE {name} histogram"
    );
    for w in workers {
        let labels = format!("worker=\"{}\"", w.id);
        histogram(out, name, &labels, &w.latencies.forwarded);
    }
}

/// One histogram's `_bucket`, `_sum` and `_count` series.
fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (bound, count) in h.cumulative() {
        match bound {
            Some(ns) => {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels},le=\"{}\"}} {count}",
                    seconds(ns)
                );
            }
            None => {
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
            }
        }
    }
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", seconds(h.sum_ns()));
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count());
}

/// Nanoseconds as decimal seconds, exactly (no float rounding in `le`).
fn seconds(ns: u64) -> String {
    let (whole, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

// The bucket bounds render as 0.000001 … 10: checked once here so a change
// to BOUNDS_NS cannot silently produce an `le` Prometheus misreads.
const _: () = assert!(BOUNDS_NS[0] == 1_000);

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> (ServerFacts, Vec<WorkerSnapshot>) {
        let facts = ServerFacts {
            version: "0.1.0",
            memcached_version: "1.6.38",
            start_time: 1_800_000_000,
            workers: 2,
        };
        let mut latencies = Latencies::default();
        latencies.record(CommandClass::Get, 3_000);
        latencies.record(CommandClass::Get, 1_500_000);
        let workers = (0..2)
            .map(|id| WorkerSnapshot {
                id,
                stats: WorkerStats {
                    cmd_get: 10 + u64::from(id),
                    curr_items: 5,
                    ..WorkerStats::default()
                },
                latencies,
            })
            .collect();
        (facts, workers)
    }

    #[test]
    fn counters_gauges_and_histograms_per_worker() {
        let (facts, workers) = snapshot();
        let mut out = String::new();
        render(&facts, &workers, &mut out);
        assert!(out.contains("# TYPE cafe_cmd_get_total counter\n"));
        assert!(out.contains("cafe_cmd_get_total{worker=\"0\"} 10\n"));
        assert!(out.contains("cafe_cmd_get_total{worker=\"1\"} 11\n"));
        assert!(out.contains("# TYPE cafe_curr_items gauge\n"));
        assert!(out.contains("cafe_curr_items{worker=\"1\"} 5\n"));
        let get = "cafe_request_duration_seconds_bucket{worker=\"0\",command=\"get\"";
        assert!(out.contains(&format!("{get},le=\"0.000002\"}} 0\n")));
        assert!(out.contains(&format!("{get},le=\"0.000005\"}} 1\n")));
        assert!(out.contains(&format!("{get},le=\"0.002\"}} 2\n")));
        assert!(out.contains(&format!("{get},le=\"+Inf\"}} 2\n")));
        assert!(out.contains(
            "cafe_request_duration_seconds_sum{worker=\"0\",command=\"get\"} 0.001503\n"
        ));
        assert!(out.contains("cafe_build_info{version=\"0.1.0\",memcached_version=\"1.6.38\"} 1"));
        // Every line is a comment or `name{labels} value`.
        for line in out.lines() {
            assert!(
                line.starts_with('#') || line.split(' ').count() == 2,
                "{line}"
            );
        }
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(1_000), "0.000001");
        assert_eq!(seconds(500_000_000), "0.5");
        assert_eq!(seconds(10_000_000_000), "10");
        assert_eq!(seconds(1_503_000), "0.001503");
    }
}
