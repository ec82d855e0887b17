//! A worker's listener and the accepting of new connections, with a back
//! off when accepting fails.
//!
//! The listener is edge-triggered: one event per burst of arrivals, after
//! which the worker must accept until `WouldBlock`. When accepting fails
//! instead (out of descriptors: EMFILE, ENFILE; out of kernel memory), the
//! connections still queued raise no new event, so the acceptor arms a
//! retry timer (10 ms, doubling up to 100 ms) and the worker accepts again
//! when it fires, until the queue drains: it resumes by itself once
//! descriptors free up, however few new connections arrive.
//!
//! The number of open connections is bounded server-wide by one atomic
//! counter that every worker's acceptor shares ([`ConnectionLimit`]),
//! touched once per accept and once per close, never per request. A
//! connection past the limit is answered memcached's
//! `ERROR Too many open connections` and closed at once.
//!
//! Must not: read or write an accepted connection (except to turn one
//! away), or log per event (failures and refusals are counted and logged
//! through [`LogThrottle`]).

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixListener};

use crate::protocol::text::response::TOO_MANY_CONNECTIONS;
use crate::stats::WorkerStats;

use super::log_throttle::LogThrottle;
use super::stream::Stream;

/// Client connections open now over all workers, and how many may be.
#[derive(Debug)]
pub(crate) struct ConnectionLimit {
    open: AtomicUsize,
    max: usize,
}

impl ConnectionLimit {
    pub fn new(max: usize) -> Self {
        ConnectionLimit {
            open: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes a slot for a new connection; false when all are taken. The
    /// counter guards no other memory, so relaxed ordering suffices.
    fn try_open(&self) -> bool {
        self.open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives a connection's slot back.
    fn close(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// First retry delay after a failed accept: short, as descriptors are
/// often freed within milliseconds (a burst of clients closing).
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest retry delay: connections waiting in the queue wait at most this
/// long once descriptors are free again.
const BACKOFF_MAX: Duration = Duration::from_millis(100);

/// A listener and its back-off state.
#[derive(Debug)]
pub(crate) struct Acceptor {
    /// One per listen address (memcached's `-l` may name several).
    listeners: Vec<TcpListener>,
    /// The UNIX domain socket every worker shares, if one is served.
    unix: Option<UnixListener>,
    /// This worker's own port (`--port-per-worker`), if one is served.
    own: Option<TcpListener>,
    /// While accepting fails: when to try again, and the delay after that.
    retry: Option<(Instant, Duration)>,
    failures: LogThrottle,
    limit: Arc<ConnectionLimit>,
    refusals: LogThrottle,
}

impl Acceptor {
    pub fn new(
        listeners: Vec<TcpListener>,
        unix: Option<UnixListener>,
        limit: Arc<ConnectionLimit>,
    ) -> Self {
        Acceptor {
            listeners,
            unix,
            own: None,
            retry: None,
            failures: LogThrottle::new("accept failed"),
            limit,
            refusals: LogThrottle::new("refused a connection"),
        }
    }

    /// The TCP listeners, to register; none once closed.
    pub fn listeners(&mut self) -> impl Iterator<Item = &mut TcpListener> {
        self.listeners.iter_mut()
    }

    /// The UNIX listener, to register or deregister; `None` if none is
    /// served or once closed.
    pub fn unix_listener(&mut self) -> Option<&mut UnixListener> {
        self.unix.as_mut()
    }

    /// Adds this worker's own port (`--port-per-worker`).
    pub fn with_own_port(mut self, listener: Option<TcpListener>) -> Self {
        self.own = listener;
        self
    }

    /// This worker's own listener, to register; `None` if none.
    pub fn own_listener(&mut self) -> Option<&mut TcpListener> {
        self.own.as_mut()
    }

    /// Stops accepting for good (shutdown).
    pub fn close(&mut self) -> (Vec<TcpListener>, Option<UnixListener>, Option<TcpListener>) {
        self.retry = None;
        (
            std::mem::take(&mut self.listeners),
            self.unix.take(),
            self.own.take(),
        )
    }

    /// Whether accepting failed and waits for its retry timer: readiness
    /// events are ignored meanwhile, as accepting now would fail again.
    pub fn backing_off(&self) -> bool {
        self.retry.is_some()
    }

    /// When the worker must call [`Acceptor::next`] without a readiness
    /// event, or flush a throttled warning; `None` if nothing is pending.
    pub fn deadline(&self) -> Option<Instant> {
        let retry = self.retry.map(|(at, _)| at);
        [retry, self.failures.due(), self.refusals.due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the retry timer has fired; also writes a throttled warning
    /// that has come due.
    pub fn retry_due(&mut self, now: Instant) -> bool {
        self.failures.flush_due(now);
        self.refusals.flush_due(now);
        self.retry.is_some_and(|(at, _)| at <= now)
    }

    /// The next connection waiting in the queue, within the limit (it
    /// holds a slot until [`Acceptor::closed`]); connections past the
    /// limit are turned away meanwhile. `None` when the queue is empty or
    /// accepting failed (a retry is then armed).
    pub fn next(&mut self, stats: &mut WorkerStats) -> Option<Accepted> {
        loop {
            // Every TCP listener, the UNIX socket, then this worker's own
            // port: one readiness event may stand for arrivals on several,
            // and each is drained to WouldBlock.
            let accepted = self
                .listeners
                .iter()
                .find_map(|l| ready(l.accept().map(|(s, _)| (Stream::Tcp(s), false))))
                .or_else(|| {
                    let l = self.unix.as_ref()?;
                    ready(l.accept().map(|(s, _)| (Stream::Unix(s), false)))
                })
                .or_else(|| {
                    let l = self.own.as_ref()?;
                    ready(l.accept().map(|(s, _)| (Stream::Tcp(s), true)))
                });
            let Some(accepted) = accepted else {
                self.retry = None;
                return None;
            };
            match accepted {
                Ok((sock, local_only)) if self.limit.try_open() => {
                    self.retry = None;
                    return Some(Accepted { sock, local_only });
                }
                Ok((sock, _)) => {
                    self.retry = None;
                    turn_away(sock);
                    stats.rejected_connections += 1;
                    let max = self.limit.max;
                    self.refusals.warn(
                        Instant::now(),
                        format_args!("too many open connections (--max-connections {max})"),
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.retry = None;
                    return None;
                }
                // A signal, or a connection reset while it waited in the
                // queue: the next one may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    self.failed(e);
                    return None;
                }
            }
        }
    }

    /// Gives back the slot of a connection [`Acceptor::next`] returned, once
    /// it is closed.
    pub fn closed(&self) {
        self.limit.close();
    }

    /// Counts a failure to take a connection on (accepting it, or
    /// registering it with the poll) and arms the retry timer.
    pub fn failed(&mut self, error: io::Error) {
        let now = Instant::now();
        self.failures.warn(now, error);
        let delay = match self.retry {
            Some((_, delay)) => delay,
            None => BACKOFF_MIN,
        };
        self.retry = Some((now + delay, (delay * 2).min(BACKOFF_MAX)));
    }
}

/// A connection taken on.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub sock: Stream,
    /// It came in on this worker's own port (`--port-per-worker`): its
    /// keys are served here, never routed.
    pub local_only: bool,
}

/// `None` for WouldBlock (this listener is drained), else the result.
fn ready<T>(result: io::Result<T>) -> Option<io::Result<T>> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        other => Some(other),
    }
}

/// Answers a connection over the limit and closes it. A fresh socket's
/// send buffer is empty, so the line goes in one write; what the client
/// has already sent is read away first, as closing a socket with unread
/// input sends a reset, which could destroy the line before the client
/// reads it.
fn turn_away(mut sock: Stream) {
    let _ = sock.write(TOO_MANY_CONNECTIONS);
    let _ = sock.shutdown(Shutdown::Write);
    let mut scratch = [0u8; 1024];
    let _ = sock.read(&mut scratch);
}
