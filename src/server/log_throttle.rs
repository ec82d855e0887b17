//! Warnings about events any client can cause at will (failed accepts,
//! refused connections, timeouts): the first of a quiet spell is logged at
//! once, later ones are counted, and at most one line per window reports
//! how many there were, so no client can flood the log or slow a worker
//! down with logging.
//!
//! Must not: log per event, or allocate per event once its detail buffer
//! has grown to the longest detail seen.

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

/// How often a repeated warning may be logged.
pub(crate) const LOG_WINDOW: Duration = Duration::from_secs(10);

/// One kind of warning, throttled.
#[derive(Debug)]
pub(crate) struct LogThrottle {
    /// What happened, e.g. "accept failed"; the line starts with it.
    what: &'static str,
    window: Duration,
    /// When the last line was written.
    last_line: Option<Instant>,
    /// Events since the last line.
    unreported: u64,
    /// The latest event's detail (an error message), reported with its
    /// count.
    detail: String,
}

impl LogThrottle {
    pub fn new(what: &'static str) -> Self {
        LogThrottle::with_window(what, LOG_WINDOW)
    }

    pub fn with_window(what: &'static str, window: Duration) -> Self {
        LogThrottle {
            what,
            window,
            last_line: None,
            unreported: 0,
            detail: String::new(),
        }
    }

    /// Counts one event and logs a warning if one is due.
    pub fn warn(&mut self, now: Instant, detail: impl fmt::Display) {
        if let Some(line) = self.note(now, detail) {
            log::warn!("{line}");
        }
    }

    /// Logs the events counted since the last line, if a line is due.
    pub fn flush_due(&mut self, now: Instant) {
        if let Some(line) = self.flush(now) {
            log::warn!("{line}");
        }
    }

    /// Counts one event; the line to log, if one is due: the first event
    /// after a quiet window at once, then a count once per window.
    pub fn note(&mut self, now: Instant, detail: impl fmt::Display) -> Option<String> {
        self.unreported += 1;
        self.detail.clear();
        // Writing into a String cannot fail.
        let _ = write!(self.detail, "{detail}");
        self.flush(now)
    }

    /// The line reporting the events counted since the last line, if any
    /// were and the window since that line has passed.
    pub fn flush(&mut self, now: Instant) -> Option<String> {
        if self.unreported == 0 {
            return None;
        }
        let line = match self.last_line {
            None => format!(
                "{}: {} (repeats are counted and reported every {} s at most)",
                self.what,
                self.detail,
                self.window.as_secs()
            ),
            Some(last) if now.duration_since(last) >= self.window => format!(
                "{} {} time{} in the last {} s: {}",
                self.what,
                self.unreported,
                if self.unreported == 1 { "" } else { "s" },
                now.duration_since(last).as_secs(),
                self.detail
            ),
            Some(_) => return None,
        };
        self.last_line = Some(now);
        self.unreported = 0;
        Some(line)
    }

    /// When counted events are next due to be reported; `None` when there
    /// are none.
    pub fn due(&self) -> Option<Instant> {
        // The first event of all is logged at once, so counted events
        // always follow a line.
        let last = self.last_line?;
        (self.unreported > 0).then(|| last + self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(10);

    #[test]
    fn the_first_event_is_logged_then_counts_once_per_window() {
        let t0 = Instant::now();
        let mut t = LogThrottle::with_window("accept failed", W);
        let first = t.note(t0, "Too many open files").expect("first is logged");
        assert!(
            first.starts_with("accept failed: Too many open files"),
            "{first}"
        );
        for i in 1..=36 {
            let at = t0 + Duration::from_millis(i * 100);
            assert_eq!(t.note(at, "Too many open files"), None);
        }
        assert_eq!(t.due(), Some(t0 + W));
        assert_eq!(t.flush(t0 + W - Duration::from_millis(1)), None);
        let line = t.note(t0 + W, "Too many open files").expect("a count");
        assert_eq!(
            line,
            "accept failed 37 times in the last 10 s: Too many open files"
        );
        assert_eq!(t.due(), None);
    }

    #[test]
    fn counts_left_when_events_stop_are_flushed_when_due() {
        let t0 = Instant::now();
        let mut t = LogThrottle::with_window("rejected a connection", W);
        assert!(t.note(t0, "too many open connections").is_some());
        assert_eq!(t.note(t0 + Duration::from_secs(1), "x"), None);
        assert_eq!(t.note(t0 + Duration::from_secs(2), "y"), None);
        let line = t.flush(t0 + Duration::from_secs(12)).expect("due");
        assert_eq!(line, "rejected a connection 2 times in the last 12 s: y");
        assert_eq!(t.flush(t0 + Duration::from_secs(30)), None);
    }

    #[test]
    fn an_event_after_a_quiet_window_is_logged_at_once() {
        let t0 = Instant::now();
        let mut t = LogThrottle::with_window("frame timeout", W);
        assert!(t.note(t0, "a").is_some());
        let line = t.note(t0 + Duration::from_secs(25), "b").expect("at once");
        assert_eq!(line, "frame timeout 1 time in the last 25 s: b");
    }
}
