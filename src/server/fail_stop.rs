//! Fail-stop: a worker that dies, by a panic or an error, stops the whole
//! server.
//!
//! Every worker owns a share of the keys, and every connection reaches
//! every share, so a server with a dead worker would leave a share of
//! nearly every client's requests hanging, forever. Stopping is the
//! honest failure: the other workers shut down gracefully (their clients
//! get the replies they are owed, then a close), [`super::ServerHandle::join`]
//! reports the failure, and `cafe-server` exits non-zero for its
//! supervisor to restart it.
//!
//! Must not: cost anything while the worker runs (the guard is only
//! dropped when the thread ends).

use super::Stopper;

/// Held by a worker thread for its whole life; stops the server when
/// dropped armed, which is on any exit but a clean one, unwinding
/// included.
#[derive(Debug)]
pub(crate) struct FailStop {
    worker: usize,
    stopper: Stopper,
    armed: bool,
}

impl FailStop {
    pub fn new(worker: usize, stopper: Stopper) -> Self {
        FailStop {
            worker,
            stopper,
            armed: true,
        }
    }

    /// The worker exited cleanly: nothing to stop.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for FailStop {
    fn drop(&mut self) {
        if self.armed {
            log::error!(
                "worker {} died: stopping the server (every worker owns a share of the keys)",
                self.worker
            );
            self.stopper.stop();
        }
    }
}
