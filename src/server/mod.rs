//! The server: builds every worker's poll, waker, inbox and listener before
//! any thread starts, then spawns one pinned thread per worker.
//!
//! [`Server::start`] returns a [`ServerHandle`] with the bound address, so a
//! test or an embedding program can run a server in-process on port 0.
//!
//! Must not: parse protocols or touch storage directly; it only wires
//! workers together.

mod accept;
mod adapter;
mod budget;
mod connection;
mod fail_stop;
mod fair_queue;
mod listener;
mod log_throttle;
#[doc(hidden)]
pub mod mailbox;
mod readbuf;
mod replies;
mod routing;
mod shard;
mod stream;
mod timeouts;
mod worker;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpListener;
use mio::{Poll, Waker};

use crate::config::{Config, ConfigError};
use crate::metrics::{self, AdminServer, ServerFacts, WorkerSnapshot};
use crate::stats::Settings;
use accept::{Acceptor, ConnectionLimit};
use fail_stop::FailStop;
use mailbox::{Message, Outbox};
use shard::Shard;
use timeouts::Timeouts;
use worker::{Shared, WAKER, Worker};

/// Why a server could not start.
#[derive(Debug)]
pub enum StartError {
    /// Another socket already listens on the address: another server, or
    /// another program.
    InUse(SocketAddr),
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
    /// More listen addresses than a worker can register.
    TooManyAddresses(usize),
    /// The UNIX socket's path is served by a running server.
    UnixInUse(std::path::PathBuf),
    /// Binding the UNIX socket failed.
    UnixBind(std::path::PathBuf, io::Error),
    /// The admin (metrics) listener could not start.
    Metrics(SocketAddr, io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::InUse(addr) => write!(
                f,
                "cannot listen on {addr}: address in use (is another server running there?)"
            ),
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
            StartError::TooManyAddresses(n) => write!(
                f,
                "{n} listen addresses; at most {} are served",
                worker::MAX_LISTEN_ADDRS
            ),
            StartError::UnixInUse(path) => write!(
                f,
                "cannot listen on {}: address in use (another server answers there)",
                path.display()
            ),
            StartError::UnixBind(path, e) => write!(f, "cannot listen on {}: {e}", path.display()),
            StartError::Metrics(addr, e) => {
                write!(
                    f,
                    "cannot serve metrics on {addr}: {e} (--metrics-listen off to go without)"
                )
            }
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
    /// Each returns whether its worker exited cleanly.
    threads: Vec<JoinHandle<bool>>,
    admin: Option<AdminServer>,
    /// Removed once the workers have exited.
    unix_socket: Option<std::path::PathBuf>,
    /// Worker i's own address (`--port-per-worker`), by worker.
    worker_addrs: Vec<SocketAddr>,
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
        let bind = |at: SocketAddr| {
            listener::bind_all(at, n, config.listen_backlog).map_err(|e| match e.kind() {
                io::ErrorKind::AddrInUse => StartError::InUse(at),
                _ => StartError::Bind(at, e),
            })
        };
        let (first, addr) = bind(config.listen)?;
        if config.also_listen.len() >= worker::MAX_LISTEN_ADDRS {
            return Err(StartError::TooManyAddresses(config.also_listen.len() + 1));
        }
        // Worker i gets listener i of every address.
        let mut listeners: Vec<Vec<TcpListener>> = first.into_iter().map(|l| vec![l]).collect();
        for &more in &config.also_listen {
            let (bound, _) = bind(more)?;
            for (mine, l) in listeners.iter_mut().zip(bound) {
                mine.push(l);
            }
        }

        let mut unix_listeners = match &config.unix_socket {
            Some(path) => {
                listener::bind_unix(path, config.unix_mode, n).map_err(|e| match e.kind() {
                    io::ErrorKind::AddrInUse => StartError::UnixInUse(path.clone()),
                    _ => StartError::UnixBind(path.clone(), e),
                })?
            }
            None => Vec::new(),
        }
        .into_iter();

        let own_ports = match config.port_per_worker {
            Some(base) => {
                listener::bind_per_worker(config.listen.ip(), base, n, config.listen_backlog)
                    .map_err(|e| StartError::Bind(SocketAddr::new(config.listen.ip(), base), e))?
            }
            None => Vec::new(),
        };
        let worker_addrs: Vec<SocketAddr> = own_ports
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let mut own_ports = own_ports.into_iter();

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
        let settings = Settings {
            maxbytes: config.memory,
            threads: n,
            item_size_max: config.limits.max_value_len,
            key_max_length: config.limits.max_key_len,
            maxconns: config.max_connections,
            tcp_backlog: config.listen_backlog,
            idle_timeout: config.idle_timeout.map_or(0, whole_seconds),
            frame_timeout: config.frame_timeout.map_or(0, whole_seconds),
            shutdown_command: config.enable_shutdown,
            flush_enabled: !config.disable_flush,
            reqs_per_event: config.reqs_per_event,
        };
        let shared = Arc::new(Shared::default());
        let limit = Arc::new(ConnectionLimit::new(config.max_connections));
        let mut threads = Vec::with_capacity(n);
        let workers = polls.into_iter().zip(inboxes).zip(listeners).enumerate();
        for (id, ((poll, inbox), listener)) in workers {
            let mut shard = Shard::new(
                id,
                outboxes.clone(),
                settings,
                config.memory_per_worker(),
                unix_base_ms,
            );
            shard.conn_budget = budget::Budget::new(config.connection_memory_per_worker());
            let worker = Worker::new(
                poll,
                Acceptor::new(listener, unix_listeners.next(), limit.clone())
                    .with_own_port(own_ports.next()),
                inbox,
                shard,
                config.limits,
                config.clock.clone(),
                shared.clone(),
                Timeouts::new(config.idle_timeout, config.frame_timeout),
            );
            let core = pinning.as_ref().map(|cores| cores[id]);
            let fail_stop = FailStop::new(
                id,
                Stopper {
                    outboxes: outboxes.clone(),
                },
            );
            let spawned = std::thread::Builder::new()
                .name(format!("cafe-worker-{id}"))
                .spawn(move || {
                    if let Some(core) = core
                        && !core_affinity::set_for_current(core_affinity::CoreId { id: core })
                    {
                        log::warn!("worker {id}: could not pin to core {core}");
                    }
                    // A panic in `run` unwinds through `fail_stop`, which
                    // stops the server as an error does.
                    match worker.run() {
                        Ok(()) => {
                            fail_stop.disarm();
                            true
                        }
                        Err(e) => {
                            log::error!("worker {id} stopped: {e}");
                            false
                        }
                    }
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    let partial = ServerHandle {
                        addr,
                        outboxes,
                        threads,
                        admin: None,
                        unix_socket: None,
                        worker_addrs: Vec::new(),
                    };
                    partial.shutdown();
                    return Err(StartError::Spawn(e));
                }
            }
        }
        let pinned = match &pinning {
            Some(cores) => format!("pinned to cores {cores:?}"),
            None => "not pinned".to_string(),
        };
        let more: String = config
            .also_listen
            .iter()
            .map(|a| format!(", and on {a}"))
            .chain(worker_addrs.first().map(|a| {
                format!(", and one port per worker from {a} (keys served where they arrive)")
            }))
            .collect();
        let unix = config.unix_socket.as_ref().map_or(String::new(), |p| {
            format!(", and on {} (mode {:o})", p.display(), config.unix_mode)
        });
        let metrics = config
            .metrics_listen
            .map_or("metrics off".to_string(), |a| format!("metrics on {a}"));
        log::info!(
            "listening on {addr}: {n} worker threads, {pinned}{more}{unix}; cafe {} speaking memcached {} \
             (text, meta, binary) and the native protocol; memory {} MiB, items up to {} bytes, \
             keys up to {} bytes, at most {} connections; {metrics}",
            env!("CARGO_PKG_VERSION"),
            crate::stats::MEMCACHED_VERSION,
            config.memory >> 20,
            config.limits.max_value_len,
            config.limits.max_key_len,
            config.max_connections,
        );
        let mut handle = ServerHandle {
            addr,
            outboxes,
            threads,
            admin: None,
            unix_socket: config.unix_socket.clone(),
            worker_addrs,
        };
        if let Some(metrics) = config.metrics_listen {
            let scraper = Scraper {
                outboxes: handle.outboxes.clone(),
                facts: ServerFacts {
                    version: env!("CARGO_PKG_VERSION"),
                    memcached_version: crate::stats::MEMCACHED_VERSION,
                    start_time: unix_base_ms.saturating_add(config.clock.now_ms()) / 1000,
                    workers: n,
                },
            };
            // A failure drops `handle`, which shuts the workers down.
            let admin = AdminServer::start(metrics, move || scraper.scrape())
                .map_err(|e| StartError::Metrics(metrics, e))?;
            log::info!("metrics on http://{}/metrics", admin.local_addr());
            handle.admin = Some(admin);
        }
        Ok(handle)
    }
}

/// How long a scrape waits for the workers' snapshots: a worker busy for
/// longer than this is reported as missing rather than stalling the scrape.
const SCRAPE_WAIT: Duration = Duration::from_secs(1);

/// Gathers every worker's counters and histograms over their inboxes, as
/// STATS does, and renders them.
struct Scraper {
    outboxes: Vec<Outbox>,
    facts: ServerFacts,
}

impl Scraper {
    fn scrape(&self) -> String {
        let (tx, rx) = crossbeam_channel::unbounded();
        for outbox in &self.outboxes {
            if let Err(e) = outbox.send_and_wake(Message::Gather { to: tx.clone() }) {
                log::debug!("cannot wake a worker for a scrape: {e}");
            }
        }
        drop(tx);
        let deadline = Instant::now() + SCRAPE_WAIT;
        let mut parts = Vec::with_capacity(self.outboxes.len());
        while parts.len() < self.outboxes.len() {
            match rx.recv_deadline(deadline) {
                Ok(part) => parts.push(part),
                Err(_) => break,
            }
        }
        parts.sort_unstable_by_key(|p: &WorkerSnapshot| p.id);
        let mut out = String::with_capacity(64 << 10);
        metrics::render(&self.facts, &parts, &mut out);
        out
    }
}

/// A timeout in whole seconds, rounded up: a timeout of a fraction of a
/// second (in-process configurations) must not read as 0, "off".
fn whole_seconds(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl ServerHandle {
    /// The address the server listens on (with the real port if port 0
    /// was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Each worker's own address, worker 0 first, when the server runs
    /// with a port per worker; empty otherwise.
    pub fn worker_addrs(&self) -> &[SocketAddr] {
        &self.worker_addrs
    }

    /// Where the admin listener serves `/metrics`, if it runs.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminServer::local_addr)
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

    /// Waits for every worker to exit. True if all exited cleanly; false
    /// if one died (a panic or an error), which stops the others too (see
    /// `fail_stop`), so this never waits on a server that lost a worker.
    pub fn join(mut self) -> bool {
        self.join_threads()
    }

    fn join_threads(&mut self) -> bool {
        let mut clean = true;
        for t in self.threads.drain(..) {
            clean &= t.join().unwrap_or(false);
        }
        // Metrics are served for as long as the workers run: `join` is
        // where a binary waits for the whole life of the server.
        if let Some(mut admin) = self.admin.take() {
            admin.stop();
        }
        if let Some(path) = self.unix_socket.take()
            && let Err(e) = std::fs::remove_file(&path)
        {
            log::warn!("cannot remove {}: {e}", path.display());
        }
        clean
    }

    /// Makes worker `worker` die, by a panic or by an error from its loop,
    /// as a bug or a failed system call would: for tests of the fail-stop
    /// rule. Costs nothing otherwise (one more message kind).
    #[doc(hidden)]
    pub fn inject_worker_failure(&self, worker: usize, panic: bool) {
        if let Some(outbox) = self.outboxes.get(worker)
            && let Err(e) = outbox.send_and_wake(Message::Fail { panic })
        {
            log::error!("cannot wake worker {worker}: {e}");
        }
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
