//! One server's health as the cluster client sees it: consecutive
//! failures, ejection after `failure_limit` of them, and the way back in.
//!
//! The rules, twemproxy's (`server_failure_limit`, `server_retry_timeout`,
//! `auto_eject_hosts`) with one change:
//!
//! - A success resets the failure count; a failure adds one. At
//!   `failure_limit` consecutive failures the server is ejected: it leaves
//!   the continuum for `retry_timeout` and its keys go to the others.
//! - When `retry_timeout` has passed it rejoins the continuum *on
//!   probation*: the next request for one of its keys decides. A success
//!   makes it live again; a failure ejects it again at once, not after
//!   another `failure_limit` failures (twemproxy starts counting afresh, so
//!   a server that stays down costs `failure_limit` failed requests every
//!   retry period; here it costs one).
//!
//! Must not: read the clock (the caller passes `now`), or do I/O.

use std::time::{Duration, Instant};

/// When a server leaves and rejoins the continuum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectPolicy {
    /// Consecutive failures that eject a server (at least 1).
    pub failure_limit: u32,
    /// How long an ejected server stays out before it is tried again.
    pub retry_timeout: Duration,
}

/// Where a server stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// In the continuum, serving.
    Live,
    /// Out of the continuum until the instant given.
    Ejected {
        /// When it rejoins on probation.
        until: Instant,
    },
    /// Back in the continuum; the next request decides.
    Probation,
}

/// A server's failures and state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Health {
    failures: u32,
    state: ServerState,
}

impl Health {
    pub(crate) fn new() -> Health {
        Health {
            failures: 0,
            state: ServerState::Live,
        }
    }

    pub(crate) fn state(&self) -> ServerState {
        self.state
    }

    /// Consecutive failures since the last success.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether keys may be placed on this server.
    pub(crate) fn in_ring(&self) -> bool {
        !matches!(self.state, ServerState::Ejected { .. })
    }

    /// A request succeeded.
    pub(crate) fn success(&mut self) {
        self.failures = 0;
        self.state = ServerState::Live;
    }

    /// A request failed (connect, I/O, timeout, broken framing). True if
    /// this ejected the server, so the continuum must be rebuilt.
    pub(crate) fn failure(&mut self, now: Instant, policy: &EjectPolicy) -> bool {
        self.failures = self.failures.saturating_add(1);
        let eject = match self.state {
            ServerState::Live => self.failures >= policy.failure_limit.max(1),
            ServerState::Probation => true,
            ServerState::Ejected { .. } => false,
        };
        if eject {
            self.state = ServerState::Ejected {
                until: now + policy.retry_timeout,
            };
        }
        eject
    }

    /// Moves an ejected server whose time is up to probation. True if it
    /// did, so the continuum must be rebuilt.
    pub(crate) fn retry_due(&mut self, now: Instant) -> bool {
        match self.state {
            ServerState::Ejected { until } if now >= until => {
                self.state = ServerState::Probation;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: EjectPolicy = EjectPolicy {
        failure_limit: 3,
        retry_timeout: Duration::from_secs(10),
    };

    #[test]
    fn ejected_after_the_limit_of_consecutive_failures() {
        let t0 = Instant::now();
        let mut h = Health::new();
        assert!(!h.failure(t0, &POLICY));
        assert!(!h.failure(t0, &POLICY));
        // A success in between starts the count again.
        h.success();
        assert!(!h.failure(t0, &POLICY));
        assert!(!h.failure(t0, &POLICY));
        assert!(h.in_ring());
        assert!(h.failure(t0, &POLICY));
        assert!(!h.in_ring());
        assert_eq!(
            h.state(),
            ServerState::Ejected {
                until: t0 + POLICY.retry_timeout
            }
        );
        // Failures while out change nothing.
        assert!(!h.failure(t0, &POLICY));
    }

    #[test]
    fn rejoins_on_probation_after_the_retry_timeout() {
        let t0 = Instant::now();
        let mut h = Health::new();
        for _ in 0..3 {
            h.failure(t0, &POLICY);
        }
        assert!(!h.retry_due(t0 + Duration::from_secs(9)));
        assert!(h.retry_due(t0 + POLICY.retry_timeout));
        assert_eq!(h.state(), ServerState::Probation);
        assert!(h.in_ring());
        assert!(!h.retry_due(t0 + Duration::from_secs(20)));

        // Still down: one failure ejects it again.
        let t1 = t0 + Duration::from_secs(11);
        assert!(h.failure(t1, &POLICY));
        assert_eq!(
            h.state(),
            ServerState::Ejected {
                until: t1 + POLICY.retry_timeout
            }
        );

        // Back up: one success makes it live, with a fresh count.
        assert!(h.retry_due(t1 + POLICY.retry_timeout));
        h.success();
        assert_eq!((h.state(), h.failures()), (ServerState::Live, 0));
        assert!(!h.failure(t1, &POLICY));
    }

    #[test]
    fn a_limit_of_zero_acts_as_one() {
        let policy = EjectPolicy {
            failure_limit: 0,
            ..POLICY
        };
        let mut h = Health::new();
        assert!(h.failure(Instant::now(), &policy));
    }
}
