//! Connection timeouts: the idle timeout (no request for a while,
//! memcached's `idle_timeout`) and the frame timeout (a request whose
//! first byte arrived but which is still incomplete: a slowloris client
//! holding a connection, and the buffer of its partial request, by
//! dribbling bytes).
//!
//! Times are the server clock's milliseconds (a manual clock in tests), as
//! read at the start of each loop turn. A worker checks its connections on
//! a tick (a quarter of the shortest timeout, between 10 ms and 1 s), and
//! only while a check could find something: some connection is open and
//! the idle timeout is on, or some connection has been mid-request since
//! the last check. So a timeout fires up to one tick late, and an idle
//! server, or one whose requests arrive whole, arms no timer.
//!
//! Must not: touch sockets, or cost more than a field write per read on
//! the request path.

use std::time::{Duration, Instant};

use slab::Slab;

use super::connection::Connection;
use super::log_throttle::LogThrottle;

/// The check never runs more often than this, however short the timeouts.
const MIN_TICK: Duration = Duration::from_millis(10);
/// Nor less often than this, however long: a timeout fires at most this
/// late.
const MAX_TICK: Duration = Duration::from_secs(1);

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// No request for the idle timeout.
    Idle,
    /// A request begun and not finished within the frame timeout.
    Frame,
}

/// What a connection's timeouts are measured from.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Activity {
    /// When bytes last arrived (or the connection was accepted).
    pub last_read_ms: u64,
    /// When the first byte of the request being received arrived; `None`
    /// between requests, and while the server is not reading the
    /// connection (it owes too much), which is not the client's delay.
    pub frame_started_ms: Option<u64>,
}

impl Activity {
    pub fn new(now_ms: u64) -> Self {
        Activity {
            last_read_ms: now_ms,
            frame_started_ms: None,
        }
    }

    /// After the received bytes were framed: `mid_frame` if a request is
    /// partly received, `completed` if a request completed meanwhile (so a
    /// partial one is a new request, started now).
    pub fn framed(&mut self, mid_frame: bool, completed: bool, now_ms: u64) {
        self.frame_started_ms = match (mid_frame, self.frame_started_ms) {
            (false, _) => None,
            (true, Some(start)) if !completed => Some(start),
            (true, _) => Some(now_ms),
        };
    }
}

/// The timeouts in force, in clock milliseconds; `None` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub idle_ms: Option<u64>,
    pub frame_ms: Option<u64>,
}

impl Timeouts {
    pub fn new(idle: Option<Duration>, frame: Option<Duration>) -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        Timeouts {
            idle_ms: idle.map(ms),
            frame_ms: frame.map(ms),
        }
    }

    /// How often to check, while a check could find something.
    pub fn tick(&self) -> Duration {
        let shortest = match (self.idle_ms, self.frame_ms) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(u64::MAX),
        };
        Duration::from_millis(shortest / 4).clamp(MIN_TICK, MAX_TICK)
    }

    /// Whether a check could find something: any connection open with the
    /// idle timeout on, or any mid-request with the frame timeout on.
    pub fn armed(&self, open: bool, mid_frame: bool) -> bool {
        (self.idle_ms.is_some() && open) || (self.frame_ms.is_some() && mid_frame)
    }

    /// Whether a connection has timed out. `waiting` says it is open,
    /// owes nothing and has nothing buffered: only then can it be idle (a
    /// client waiting for its replies is not).
    pub fn check(&self, activity: &Activity, waiting: bool, now_ms: u64) -> Option<Expired> {
        if let (Some(limit), Some(start)) = (self.frame_ms, activity.frame_started_ms)
            && now_ms.saturating_sub(start) >= limit
        {
            return Some(Expired::Frame);
        }
        match self.idle_ms {
            Some(limit) if waiting && now_ms.saturating_sub(activity.last_read_ms) >= limit => {
                Some(Expired::Idle)
            }
            _ => None,
        }
    }
}

/// A worker's side of the timeouts: when to check next, whether a check
/// could find anything, and the warning about slow requests.
#[derive(Debug)]
pub(crate) struct Watch {
    pub timeouts: Timeouts,
    next_check_ms: u64,
    /// Some connection was mid-request at the last check or since.
    frames_pending: bool,
    expired: Vec<(usize, Expired)>,
    slow: LogThrottle,
}

impl Watch {
    pub fn new(timeouts: Timeouts) -> Self {
        Watch {
            timeouts,
            next_check_ms: 0,
            frames_pending: false,
            expired: Vec::new(),
            slow: LogThrottle::new("frame timeout"),
        }
    }

    /// Notes a connection left mid-request, so the checks start.
    pub fn mid_frame(&mut self) {
        self.frames_pending = true;
    }

    fn armed(&self, conns: &Slab<Connection>) -> bool {
        self.timeouts.armed(!conns.is_empty(), self.frames_pending)
    }

    /// How long the worker may sleep before the next check; `None` while
    /// no check could find anything.
    pub fn wait(&self, conns: &Slab<Connection>, now_ms: u64) -> Option<Duration> {
        if !self.armed(conns) {
            return None;
        }
        let tick = self.timeouts.tick();
        let wait = Duration::from_millis(self.next_check_ms.saturating_sub(now_ms));
        Some(wait.clamp(Duration::from_millis(1), tick))
    }

    /// When the throttled warning is next due to be written.
    pub fn log_due(&self) -> Option<Instant> {
        self.slow.due()
    }

    /// The connections that have timed out, if a check is due; hand the
    /// vector back with [`Watch::give_back`] so checks do not allocate.
    pub fn check(&mut self, conns: &Slab<Connection>, now_ms: u64) -> Vec<(usize, Expired)> {
        let mut expired = std::mem::take(&mut self.expired);
        if self.slow.due().is_some() {
            self.slow.flush_due(Instant::now());
        }
        if !self.armed(conns) || now_ms < self.next_check_ms {
            return expired;
        }
        self.next_check_ms = now_ms.saturating_add(self.timeouts.tick().as_millis() as u64);
        let mut mid_frame = false;
        for (key, conn) in conns {
            match self
                .timeouts
                .check(&conn.activity, conn.waiting_for_request(), now_ms)
            {
                Some(why) => expired.push((key, why)),
                None => mid_frame |= conn.activity.frame_started_ms.is_some(),
            }
        }
        self.frames_pending = mid_frame;
        for &(_, why) in &expired {
            match why {
                Expired::Idle => log::debug!("closed an idle connection (--idle-timeout)"),
                Expired::Frame => {
                    let limit = Duration::from_millis(self.timeouts.frame_ms.unwrap_or(0));
                    self.slow.warn(
                        Instant::now(),
                        format_args!(
                            "closed a connection whose request was still incomplete after {limit:?} (--frame-timeout)"
                        ),
                    );
                }
            }
        }
        expired
    }

    /// Returns the vector [`Watch::check`] handed out, emptied.
    pub fn give_back(&mut self, mut expired: Vec<(usize, Expired)>) {
        expired.clear();
        self.expired = expired;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn a_frame_is_timed_from_its_first_byte() {
        let t = Timeouts::new(None, secs(30));
        let mut a = Activity::new(0);
        a.framed(true, false, 1_000);
        // More bytes of the same request do not restart the clock.
        a.framed(true, false, 20_000);
        assert_eq!(t.check(&a, false, 30_999), None);
        assert_eq!(t.check(&a, false, 31_000), Some(Expired::Frame));
        // A request completed and the next one begun: timed from now.
        a.framed(true, true, 25_000);
        assert_eq!(t.check(&a, false, 54_999), None);
        assert_eq!(t.check(&a, false, 55_000), Some(Expired::Frame));
        // Between requests nothing is timed.
        a.framed(false, true, 60_000);
        assert_eq!(t.check(&a, false, 1_000_000), None);
    }

    #[test]
    fn only_a_connection_waiting_for_a_request_can_be_idle() {
        let t = Timeouts::new(secs(10), None);
        let a = Activity::new(5_000);
        assert_eq!(t.check(&a, true, 14_999), None);
        assert_eq!(t.check(&a, true, 15_000), Some(Expired::Idle));
        assert_eq!(t.check(&a, false, 1_000_000), None, "replies owed");
        let off = Timeouts::new(None, None);
        assert_eq!(off.check(&a, true, u64::MAX), None);
    }

    #[test]
    fn the_tick_follows_the_shortest_timeout_within_bounds() {
        assert_eq!(
            Timeouts::new(secs(1), secs(30)).tick(),
            Duration::from_millis(250)
        );
        assert_eq!(Timeouts::new(None, secs(30)).tick(), MAX_TICK);
        let tiny = Timeouts::new(Some(Duration::from_millis(1)), None);
        assert_eq!(tiny.tick(), MIN_TICK);
        assert!(!Timeouts::new(None, secs(30)).armed(true, false));
        assert!(Timeouts::new(None, secs(30)).armed(false, true));
        assert!(Timeouts::new(secs(1), None).armed(true, false));
        assert!(!Timeouts::new(None, None).armed(true, true));
    }
}
