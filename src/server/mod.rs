//! The server: builds every worker's poll, waker, inbox and listener before
//! any thread starts, then spawns one pinned thread per worker.
//!
//! [`Server::start`] returns a [`ServerHandle`] with the bound address, so a
//! test or an embedding program can run a server in-process on port 0.
//!
//! Must not: parse protocols or touch storage directly; it only wires
//! workers together.

mod adapter;
mod budget;
mod connection;
mod listener;
#[doc(hidden)]
pub mod mailbox;
mod readbuf;
mod replies;
mod routing;
mod shard;
mod worker;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use mio::{Poll, Waker};

use crate::config::{Config, ConfigError};
use mailbox::{Message, Outbox};
use shard::Shard;
use worker::{Shared, WAKER, Worker};

/// Why a server could not start.
#[derive(Debug)]
pub enum StartError {
    /// Binding or listening on the address failed.
    Bind(SocketAddr, io::Error),
    /// Creating a poll or waker failed.
    Poll(io::Error),
    /// A core in `--cores` is not one this process may run on.
    UnknownCore {
        /// The core asked for.
        core: usize,
        /// The cores available.
        available: Vec<usize>,
    },
    /// The configuration is inconsistent.
    Config(ConfigError),
    /// A worker thread could not be spawned.
    Spawn(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Poll(e) => write!(f, "cannot create an event loop: {e}"),
            StartError::UnknownCore { core, available } => {
                write!(
                    f,
                    "core {core} is not available; available cores: {available:?}"
                )
            }
            StartError::Config(e) => e.fmt(f),
            StartError::Spawn(e) => write!(f, "cannot spawn a worker thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Starts servers.
#[derive(Debug)]
pub struct Server;

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    outboxes: Vec<Outbox>,
    threads: Vec<JoinHandle<()>>,
}

/// Which core each worker is pinned to, or `None` for no pinning.
fn plan_pinning(config: &Config) -> Result<Option<Vec<usize>>, StartError> {
    if !config.pin {
        return Ok(None);
    }
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if available.is_empty() {
        log::warn!("cannot read the available cores; workers are not pinned");
        return Ok(None);
    }
    let cores = match &config.cores {
        Some(list) => {
            if let Some(&core) = list.iter().find(|c| !available.contains(c)) {
                return Err(StartError::UnknownCore { core, available });
            }
            list.clone()
        }
        None => available,
    };
    Ok(Some(
        (0..config.threads)
            .map(|i| cores[i % cores.len()])
            .collect(),
    ))
}

impl Server {
    /// Binds, builds every worker, and starts them. Returns once the
    /// listeners accept connections.
    pub fn start(config: Config) -> Result<ServerHandle, StartError> {
        config.validate().map_err(StartError::Config)?;
        let n = config.threads;
        let pinning = plan_pinning(&config)?;
        let (listeners, addr) =
            listener::bind_all(config.listen, n).map_err(|e| StartError::Bind(config.listen, e))?;

        let mut polls = Vec::with_capacity(n);
        let mut outboxes = Vec::with_capacity(n);
        let mut inboxes = Vec::with_capacity(n);
        for _ in 0..n {
            let poll = Poll::new().map_err(StartError::Poll)?;
            let waker = Waker::new(poll.registry(), WAKER).map_err(StartError::Poll)?;
            let (outbox, inbox) = mailbox::mailbox(waker);
            polls.push(poll);
            outboxes.push(outbox);
            inboxes.push(inbox);
        }

        // Wall-clock time at the server clock's zero, for protocols that
        // speak in absolute Unix times (memcached expiry, STATS `time`).
        let unix_base_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
            .saturating_sub(config.clock.now_ms());
        let shared = Arc::new(Shared::default());
        let mut threads = Vec::with_capacity(n);
        let workers = polls.into_iter().zip(inboxes).zip(listeners).enumerate();
        for (id, ((poll, inbox), listener)) in workers {
            let mut shard = Shard::new(
                id,
                outboxes.clone(),
                config.limits.max_value_len,
                config.memory_per_worker(),
                unix_base_ms,
            );
            shard.shutdown_command = config.enable_shutdown;
            shard.conn_budget = budget::Budget::new(config.connection_memory_per_worker());
            shard.reqs_per_event = config.reqs_per_event;
            let worker = Worker::new(
                poll,
                listener,
                inbox,
                shard,
                config.limits,
                config.clock.clone(),
                shared.clone(),
            );
            let core = pinning.as_ref().map(|cores| cores[id]);
            let spawned = std::thread::Builder::new()
                .name(format!("cafe-worker-{id}"))
                .spawn(move || {
                    if let Some(core) = core
                        && !core_affinity::set_for_current(core_affinity::CoreId { id: core })
                    {
                        log::warn!("worker {id}: could not pin to core {core}");
                    }
                    if let Err(e) = worker.run() {
                        log::error!("worker {id} stopped: {e}");
                    }
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    let partial = ServerHandle {
                        addr,
                        outboxes,
                        threads,
                    };
                    partial.shutdown();
                    return Err(StartError::Spawn(e));
                }
            }
        }
        match &pinning {
            Some(cores) => {
                log::info!("listening on {addr}: {n} worker threads pinned to cores {cores:?}")
            }
            None => log::info!("listening on {addr}: {n} worker threads, not pinned"),
        }
        Ok(ServerHandle {
            addr,
            outboxes,
            threads,
        })
    }
}

impl ServerHandle {
    /// The address the server listens on (with the real port if port 0
    /// was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that can start the shutdown from another thread (a signal
    /// handler's) while this one waits in [`ServerHandle::join`].
    pub fn stopper(&self) -> Stopper {
        Stopper {
            outboxes: self.outboxes.clone(),
        }
    }

    /// Starts a graceful shutdown and returns at once: workers stop
    /// accepting and reading, write the replies they owe, and exit within
    /// about a second.
    pub fn shutdown(&self) {
        self.stopper().stop();
    }

    /// Waits for every worker to exit. True if all exited cleanly (none
    /// panicked).
    pub fn join(mut self) -> bool {
        self.join_threads()
    }

    fn join_threads(&mut self) -> bool {
        let mut clean = true;
        for t in self.threads.drain(..) {
            clean &= t.join().is_ok();
        }
        clean
    }
}

/// Starts a server's graceful shutdown from any thread.
#[derive(Debug, Clone)]
pub struct Stopper {
    outboxes: Vec<Outbox>,
}

impl Stopper {
    /// Starts a graceful shutdown and returns at once (see
    /// [`ServerHandle::shutdown`]).
    pub fn stop(&self) {
        for outbox in &self.outboxes {
            if let Err(e) = outbox.send_and_wake(Message::Shutdown) {
                log::error!("cannot wake a worker for shutdown: {e}");
            }
        }
    }
}

impl Drop for ServerHandle {
    /// A dropped handle shuts its server down, so a failing test cannot
    /// leave threads serving behind it.
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
            self.join_threads();
        }
    }
}
