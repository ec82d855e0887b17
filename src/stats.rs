//! Counters. Each worker owns a [`WorkerStats`] and bumps it without any
//! sharing (plain integers, no atomics on the hot path); a STATS request
//! gathers a copy from every worker and sums them.

use std::fmt;
use std::io::Write as _;

/// Defines the counter struct once so names, merge and listing cannot drift.
macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// One worker's counters (or, after [`WorkerStats::merge`], a sum).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct WorkerStats {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl WorkerStats {
            /// Adds `other` into `self`.
            pub fn merge(&mut self, other: &WorkerStats) {
                $( self.$name += other.$name; )*
            }

            /// Each counter with its wire name, in a fixed order.
            pub fn fields(&self) -> [(&'static str, u64); counters!(@count $($name)*)] {
                [ $( (stringify!($name), self.$name), )* ]
            }
        }
    };
    (@count) => { 0 };
    (@count $head:ident $($tail:ident)*) => { 1 + counters!(@count $($tail)*) };
}

counters! {
    /// Connections open now.
    curr_connections,
    /// Connections accepted since start.
    total_connections,
    /// Connections turned away because `max_connections` were open.
    rejected_connections,
    /// Connections closed by the idle timeout (memcached's name).
    idle_kicks,
    /// Connections closed because a request stayed incomplete past the
    /// frame timeout.
    frame_timeouts,
    /// GET requests.
    cmd_get,
    /// SET and SET_TTL requests.
    cmd_set,
    /// DELETE requests.
    cmd_delete,
    /// GETs that found a live item.
    get_hits,
    /// GETs that found nothing.
    get_misses,
    /// GETs that found only an expired item (also counted in get_misses).
    get_expired,
    /// DELETEs that removed an item.
    delete_hits,
    /// DELETEs that found nothing.
    delete_misses,
    /// Items stored now, expired ones not yet reclaimed included.
    curr_items,
    /// Items stored since start.
    total_items,
    /// Bytes the items stored now cost: keys, values, allocator rounding
    /// and per-item metadata.
    bytes,
    /// Requests this worker sent to another worker's partition.
    forwarded,
    /// Requests this worker executed for another worker.
    executed_for_peers,
    /// Requests refused with an error (the connection stayed).
    request_errors,
    /// Connections closed because their stream could not be framed.
    framing_errors,
    /// INCRs that found their counter.
    incr_hits,
    /// INCRs that found no counter.
    incr_misses,
    /// DECRs that found their counter.
    decr_hits,
    /// DECRs that found no counter.
    decr_misses,
    /// Stores with a CAS that matched.
    cas_hits,
    /// Stores with a CAS whose key was missing.
    cas_misses,
    /// Stores with a CAS that did not match.
    cas_badval,
    /// TOUCH and GAT requests.
    cmd_touch,
    /// TOUCHes and GATs that found their item.
    touch_hits,
    /// TOUCHes and GATs that found nothing.
    touch_misses,
    /// FLUSH requests (counted once per worker reached).
    cmd_flush,
    /// Requests that found only a flushed item.
    get_flushed,
    /// Live items removed to make room for others.
    evictions,
    /// Bytes of items the server may hold (the sum of the workers' shares).
    limit_maxbytes,
    /// Bytes the hash tables and free item slots cost beyond the items;
    /// `bytes + hash_bytes` stays within `limit_maxbytes`.
    hash_bytes,
    /// Evicted items that were never read.
    evicted_unfetched,
    /// Expired items that were never read, when reclaimed.
    expired_unfetched,
    /// Dead items (expired or flushed) reclaimed: on access, by the
    /// background sweep, or by the eviction hand.
    reclaimed,
    /// Connections holding input between reads (part of a frame, or
    /// frames left when they yielded), as memcached's `read_buf_count`.
    read_buf_count,
    /// Bytes of that input, as allocated.
    read_buf_bytes,
    /// Bytes the connections hold in all (input, replies, forwarded
    /// requests), counted against `conn_limit`.
    conn_bytes,
    /// The connections' memory budget (`--connection-memory`).
    conn_limit,
    /// Times a connection gave up its turn after `--reqs-per-event`
    /// requests or its bytes of work, memcached's `conn_yields`.
    conn_yields,
    /// Forwarded reads this worker sent back because the value was larger
    /// than the reply room their origin had reserved.
    deferred_for_peers,
}

/// Server-wide facts that are not counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerInfo {
    /// Process id.
    pub pid: u32,
    /// Seconds since the server started.
    pub uptime: u64,
    /// Unix time now, in seconds.
    pub time: u64,
    /// Number of workers.
    pub threads: usize,
    /// Client connections the server keeps open at once.
    pub max_connections: usize,
}

macro_rules! memcached_version {
    () => {
        "1.6.38"
    };
}

/// The memcached release whose protocols this server speaks, text, meta
/// and binary: clients and tools (libmemcached's `memcstat`, for one)
/// parse the version as `major.minor.patch` and refuse a major of 0.
pub const MEMCACHED_VERSION: &str = memcached_version!();

/// The version VERSION and STATS report: memcached's first, so that every
/// parser of `major.minor.patch` reads it, then cafe's own after a dash,
/// where those parsers stop reading (`1.6.38-cafe-0.1.0`).
pub const VERSION: &str = concat!(memcached_version!(), "-cafe-", env!("CARGO_PKG_VERSION"));

impl WorkerStats {
    /// Zeroes the counters a STAT reset clears, keeping the gauges (what is
    /// open and stored now), as memcached does.
    pub fn reset_counters(&mut self) {
        *self = WorkerStats {
            curr_connections: self.curr_connections,
            curr_items: self.curr_items,
            bytes: self.bytes,
            limit_maxbytes: self.limit_maxbytes,
            hash_bytes: self.hash_bytes,
            read_buf_count: self.read_buf_count,
            read_buf_bytes: self.read_buf_bytes,
            conn_bytes: self.conn_bytes,
            conn_limit: self.conn_limit,
            ..WorkerStats::default()
        };
    }
}

/// What `stats settings` reports: the configuration, under memcached's
/// names where memcached has the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Bytes of items the server may hold (`--memory`, or the last
    /// `cache_memlimit`).
    pub maxbytes: u64,
    /// Number of workers.
    pub threads: usize,
    /// Largest value accepted.
    pub item_size_max: usize,
    /// Longest key accepted.
    pub key_max_length: usize,
    /// Connections each listener's kernel queue holds before refusing
    /// (`--listen-backlog`).
    pub tcp_backlog: u32,
    /// Client connections open at once (`--max-connections`).
    pub maxconns: usize,
    /// Seconds without a request before a connection is closed; 0: never.
    pub idle_timeout: u64,
    /// Seconds a request may take to arrive once begun; 0: forever.
    pub frame_timeout: u64,
    /// Whether a client may stop the server (`--enable-shutdown`).
    pub shutdown_command: bool,
    /// Whether clients may flush the cache (not `--disable-flush`).
    pub flush_enabled: bool,
    /// Requests a connection runs per loop turn (`--reqs-per-event`).
    pub reqs_per_event: usize,
}

fn yes_no(on: bool) -> &'static str {
    if on { "yes" } else { "no" }
}

/// Calls `f` with every setting, in a fixed order: the one list the text
/// and binary protocols render.
pub fn for_each_setting(s: &Settings, mut f: impl FnMut(&str, &dyn fmt::Display)) {
    f("maxbytes", &s.maxbytes);
    f("maxconns", &s.maxconns);
    f("tcp_backlog", &s.tcp_backlog);
    f("num_threads", &s.threads);
    f("item_size_max", &s.item_size_max);
    f("key_max_length", &s.key_max_length);
    f("cas_enabled", &"yes");
    f("binding_protocol", &"auto-negotiate");
    f("evictions", &"on");
    f("eviction_policy", &"sieve");
    f("shutdown_command", &yes_no(s.shutdown_command));
    f("flush_enabled", &yes_no(s.flush_enabled));
    f("idle_timeout", &s.idle_timeout);
    f("frame_timeout", &s.frame_timeout);
    f("reqs_per_event", &s.reqs_per_event);
}

/// Calls `f` with every stat, server facts first, in a fixed order: the one
/// list both protocols render.
pub fn for_each(info: &ServerInfo, sum: &WorkerStats, mut f: impl FnMut(&str, &dyn fmt::Display)) {
    f("pid", &info.pid);
    f("uptime", &info.uptime);
    f("time", &info.time);
    f("version", &VERSION);
    f("threads", &info.threads);
    f("pointer_size", &(usize::BITS));
    f("max_connections", &info.max_connections);
    for (name, value) in sum.fields() {
        f(name, &value);
    }
}

impl WorkerStats {
    /// The memory counters reported per worker as well as in total.
    pub fn memory_fields(&self) -> [(&'static str, u64); 8] {
        [
            ("bytes", self.bytes),
            ("hash_bytes", self.hash_bytes),
            ("limit_maxbytes", self.limit_maxbytes),
            ("curr_items", self.curr_items),
            ("evictions", self.evictions),
            ("expired_unfetched", self.expired_unfetched),
            ("evicted_unfetched", self.evicted_unfetched),
            ("reclaimed", self.reclaimed),
        ]
    }
}

/// Calls `f` with each worker's memory counters, named `worker:ID:NAME`.
pub fn for_each_worker(parts: &[(u32, WorkerStats)], mut f: impl FnMut(&str, u64)) {
    let mut name = String::with_capacity(40);
    for (id, stats) in parts {
        for (field, value) in stats.memory_fields() {
            name.clear();
            // Writing into a String cannot fail.
            let _ = std::fmt::Write::write_fmt(&mut name, format_args!("worker:{id}:{field}"));
            f(&name, value);
        }
    }
}

/// Calls `f` with memcached's `stats items` names. There are no slab
/// classes here, so every item is reported under class 1, and only when
/// there is one, as memcached lists only classes that hold items.
pub fn for_each_items(sum: &WorkerStats, mut f: impl FnMut(&str, u64)) {
    if sum.curr_items == 0 {
        return;
    }
    f("items:1:number", sum.curr_items);
    f("items:1:evicted", sum.evictions);
    f("items:1:evicted_unfetched", sum.evicted_unfetched);
    f("items:1:expired_unfetched", sum.expired_unfetched);
    f("items:1:reclaimed", sum.reclaimed);
    f("items:1:outofmemory", 0);
}

/// Calls `f` with memcached's `stats slabs` names, all memory as class 1
/// (see [`for_each_items`]).
pub fn for_each_slabs(sum: &WorkerStats, mut f: impl FnMut(&str, u64)) {
    let active = u64::from(sum.curr_items > 0);
    if active == 1 {
        f("1:used_chunks", sum.curr_items);
        f("1:mem_requested", sum.bytes);
    }
    f("active_slabs", active);
    f("total_malloced", sum.bytes + sum.hash_bytes);
}

/// The sum of every worker's counters.
pub fn total(parts: &[(u32, WorkerStats)]) -> WorkerStats {
    let mut sum = WorkerStats::default();
    for (_, part) in parts {
        sum.merge(part);
    }
    sum
}

/// Renders the native STATS body: one `name value` pair per line,
/// `\n`-terminated: the totals, then each worker's memory counters.
pub fn render(info: &ServerInfo, parts: &[(u32, WorkerStats)], out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    for_each(info, &total(parts), |name, value| {
        let _ = writeln!(out, "{name} {value}");
    });
    for_each_worker(parts, |name, value| {
        let _ = writeln!(out, "{name} {value}");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_every_counter() {
        let mut a = WorkerStats {
            cmd_get: 1,
            bytes: 10,
            ..Default::default()
        };
        let b = WorkerStats {
            cmd_get: 2,
            framing_errors: 1,
            ..Default::default()
        };
        a.merge(&b);
        assert_eq!(a.cmd_get, 3);
        assert_eq!(a.bytes, 10);
        assert_eq!(a.framing_errors, 1);
    }

    #[test]
    fn render_lists_names_and_values() {
        let info = ServerInfo {
            pid: 42,
            uptime: 3,
            time: 1_700_000_000,
            threads: 2,
            max_connections: 1024,
        };
        let parts = [
            (
                0,
                WorkerStats {
                    get_hits: 5,
                    bytes: 100,
                    ..Default::default()
                },
            ),
            (
                1,
                WorkerStats {
                    get_hits: 2,
                    bytes: 30,
                    ..Default::default()
                },
            ),
        ];
        let mut out = Vec::new();
        render(&info, &parts, &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("pid 42\n"));
        assert!(text.contains("threads 2\n"));
        assert!(text.contains("max_connections 1024\n"));
        assert!(text.contains("get_hits 7\n"), "totals are summed");
        assert!(text.contains("\nbytes 130\n"));
        assert!(text.contains("worker:0:bytes 100\n"));
        assert!(text.contains("worker:1:bytes 30\n"));
        assert!(text.ends_with('\n'));
    }
}
