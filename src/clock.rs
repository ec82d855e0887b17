//! The time source handed to storage and the workers.
//!
//! Storage never reads the time itself: a worker reads the clock once per
//! loop turn and passes milliseconds in, so expiry is deterministic under
//! test (a [`ManualClock`] is advanced instead of sleeping).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Milliseconds on a monotonic scale whose zero is arbitrary but fixed for
/// the life of the clock.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in milliseconds.
    fn now_ms(&self) -> u64;
}

/// The real monotonic clock, counted from its creation.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// A clock that moves only when told to; for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock standing at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    pub fn advance_ms(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}
