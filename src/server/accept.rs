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
//! Must not: read or write a connection, or log per failure (failures are
//! counted and logged through [`LogThrottle`]).

use std::io;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};

use super::log_throttle::LogThrottle;

/// First retry delay after a failed accept: short, as descriptors are
/// often freed within milliseconds (a burst of clients closing).
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest retry delay: connections waiting in the queue wait at most this
/// long once descriptors are free again.
const BACKOFF_MAX: Duration = Duration::from_millis(100);

/// A listener and its back-off state.
#[derive(Debug)]
pub(crate) struct Acceptor {
    listener: Option<TcpListener>,
    /// While accepting fails: when to try again, and the delay after that.
    retry: Option<(Instant, Duration)>,
    failures: LogThrottle,
}

impl Acceptor {
    pub fn new(listener: TcpListener) -> Self {
        Acceptor {
            listener: Some(listener),
            retry: None,
            failures: LogThrottle::new("accept failed"),
        }
    }

    /// The listener, to register or deregister; `None` once closed.
    pub fn listener(&mut self) -> Option<&mut TcpListener> {
        self.listener.as_mut()
    }

    /// Stops accepting for good (shutdown).
    pub fn close(&mut self) -> Option<TcpListener> {
        self.retry = None;
        self.listener.take()
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
        match (retry, self.failures.due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the retry timer has fired; also writes a throttled warning
    /// that has come due.
    pub fn retry_due(&mut self, now: Instant) -> bool {
        self.failures.flush_due(now);
        self.retry.is_some_and(|(at, _)| at <= now)
    }

    /// The next connection waiting in the queue; `None` when the queue is
    /// empty or accepting failed (a retry is then armed).
    pub fn next(&mut self) -> Option<TcpStream> {
        let listener = self.listener.as_ref()?;
        loop {
            match listener.accept() {
                Ok((sock, _)) => {
                    self.retry = None;
                    return Some(sock);
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
