//! Latency histograms a worker keeps for itself: fixed buckets from one
//! microsecond to ten seconds, plain integers bumped by the one thread that
//! owns them, merged only when an operator asks.
//!
//! Buckets are Prometheus's cumulative `le` bounds, 1-2-5 per decade, so
//! the exposition needs no conversion and `histogram_quantile` resolves
//! microseconds where a cache lives and seconds where it is in trouble.
//!
//! Must not: allocate, lock or read a clock (the caller passes durations).

/// Upper bounds of the buckets in nanoseconds, 1-2-5 per decade from 1 µs
/// to 10 s; a last, implicit bucket counts everything above (`+Inf`).
pub const BOUNDS_NS: [u64; 22] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
    2_000_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// One histogram: a count per bucket (not cumulative) and the sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram {
    counts: [u64; BOUNDS_NS.len() + 1],
    sum_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BOUNDS_NS.len() + 1],
            sum_ns: 0,
        }
    }
}

impl Histogram {
    /// Counts one observation of `ns` nanoseconds.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        let bucket = BOUNDS_NS.partition_point(|&bound| bound < ns);
        self.counts[bucket] += 1;
        self.sum_ns = self.sum_ns.wrapping_add(ns);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.sum_ns = self.sum_ns.wrapping_add(other.sum_ns);
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum of every observation, in nanoseconds.
    pub fn sum_ns(&self) -> u64 {
        self.sum_ns
    }

    /// Cumulative counts per bound, as Prometheus's `_bucket{le=...}`
    /// series: `(bound in nanoseconds, observations at or below it)`, then
    /// `(None, count)` for `+Inf`.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        let mut running = 0;
        self.counts.iter().enumerate().map(move |(i, &n)| {
            running += n;
            (BOUNDS_NS.get(i).copied(), running)
        })
    }
}

/// What a request was, for its latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandClass {
    /// Reads: get, gets, gat, mg, GET, GETK, …
    Get,
    /// Stores: set, add, replace, append, prepend, cas, ms, SET, …
    Set,
    /// Deletes and invalidations.
    Delete,
    /// Counters: incr, decr, ma.
    Arith,
    /// Everything else: touch, stats, flush, version, noop, …
    Other,
}

impl CommandClass {
    /// Every class, in exposition order.
    pub const ALL: [CommandClass; 5] = [
        CommandClass::Get,
        CommandClass::Set,
        CommandClass::Delete,
        CommandClass::Arith,
        CommandClass::Other,
    ];

    /// The `command` label value.
    pub fn label(self) -> &'static str {
        match self {
            CommandClass::Get => "get",
            CommandClass::Set => "set",
            CommandClass::Delete => "delete",
            CommandClass::Arith => "arithmetic",
            CommandClass::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A worker's latency histograms: server-side time per command class, and
/// the time forwarded requests wait for the worker that owns their key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latencies {
    by_class: [Histogram; 5],
    /// From forwarding a request to its owner's answer arriving back.
    pub forwarded: Histogram,
}

impl Latencies {
    /// Counts one request of `class` that took `ns` from being read to its
    /// reply being written.
    #[inline]
    pub fn record(&mut self, class: CommandClass, ns: u64) {
        self.by_class[class.index()].record(ns);
    }

    /// The histogram of one class.
    pub fn class(&self, class: CommandClass) -> &Histogram {
        &self.by_class[class.index()]
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Latencies) {
        for (a, b) in self.by_class.iter_mut().zip(other.by_class.iter()) {
            a.merge(b);
        }
        self.forwarded.merge(&other.forwarded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut h = Histogram::default();
        for ns in [
            0,
            1_000,
            1_001,
            2_000,
            10_000_000_000,
            10_000_000_001,
            u64::MAX / 4,
        ] {
            h.record(ns);
        }
        let cumulative: Vec<_> = h.cumulative().collect();
        assert_eq!(cumulative[0], (Some(1_000), 2), "0 and 1 µs are ≤ 1 µs");
        assert_eq!(cumulative[1], (Some(2_000), 4));
        assert_eq!(cumulative[21], (Some(10_000_000_000), 5));
        assert_eq!(cumulative[22], (None, 7), "+Inf counts everything");
        assert_eq!(h.count(), 7);
    }

    #[test]
    fn cumulative_counts_never_decrease_and_merge_adds() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for (i, ns) in (0..2_000u64).map(|i| (i, i * i * 997)).collect::<Vec<_>>() {
            if i % 2 == 0 {
                a.record(ns)
            } else {
                b.record(ns)
            }
        }
        let mut both = a;
        both.merge(&b);
        assert_eq!(both.count(), 2_000);
        assert_eq!(both.sum_ns(), a.sum_ns() + b.sum_ns());
        let counts: Vec<u64> = both.cumulative().map(|(_, n)| n).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn classes_are_kept_apart() {
        let mut l = Latencies::default();
        l.record(CommandClass::Get, 5_000);
        l.record(CommandClass::Get, 7_000);
        l.record(CommandClass::Arith, 1);
        assert_eq!(l.class(CommandClass::Get).count(), 2);
        assert_eq!(l.class(CommandClass::Arith).count(), 1);
        assert_eq!(l.class(CommandClass::Set).count(), 0);
    }
}
