//! Server settings: the flags of `cafe-server`, their defaults with the
//! reasons for them, and their validation. Nothing here opens a socket or
//! starts a thread.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::clock::{Clock, SystemClock};
use crate::protocol::native::Limits;

/// memcached's default `-m 64`.
pub const DEFAULT_MEMORY: u64 = 64 << 20;

/// What all connections together may hold by default: 64 MiB, beside the
/// items' 64 MiB, or more where more workers each need their minimum
/// ([`Config::connection_memory_total`]). Enough for hundreds of clients
/// each with a large value in flight, and a known bound on what a crowd
/// of slow or hostile clients can make the server hold.
pub const DEFAULT_CONNECTION_MEMORY: u64 = 64 << 20;

/// memcached's `-R` default: requests a connection runs per turn.
pub const DEFAULT_REQS_PER_EVENT: usize = 20;

/// memcached's default `-c 1024`: client connections open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// How long a request may take to arrive once its first byte has: far
/// beyond any honest client (a 1 MiB value at 1 Mbit/s takes 8 s), short
/// enough that a slowloris client cannot hold connections for long.
pub const DEFAULT_FRAME_TIMEOUT_SECS: u64 = 30;

/// memcached's default `-b 1024`: connections each listener's kernel queue
/// holds before refusing more.
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;
/// `listen(2)` takes an int.
const MAX_LISTEN_BACKLOG: u32 = i32::MAX as u32;

/// Keys are u16-length-prefixed on the wire.
const MAX_KEY_LEN: usize = u16::MAX as usize;
/// Values are u32-length-prefixed, and SET_TTL spends 4 of those bytes on
/// the TTL.
const MAX_ITEM_SIZE: u64 = u32::MAX as u64 - 4;

/// Everything a server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address every worker listens on (SO_REUSEPORT). Port 0 picks one.
    pub listen: SocketAddr,
    /// Number of workers, each with its own loop and partition.
    pub threads: usize,
    /// Cores to pin to, worker `i` on `cores[i % len]`; `None`: core `i`.
    pub cores: Option<Vec<usize>>,
    /// Whether to pin workers to cores at all.
    pub pin: bool,
    /// Largest key and value accepted.
    pub limits: Limits,
    /// Bytes of items the server may hold, split evenly over the workers.
    pub memory: u64,
    /// The time source for expiry.
    pub clock: Arc<dyn Clock>,
    /// Whether the text protocol's `shutdown` command stops the server
    /// (memcached's `-A`); off by default, as there.
    pub enable_shutdown: bool,
    /// Bytes all connections together may hold (input, replies, forwarded
    /// requests), split evenly over the workers; `None`: the default
    /// ([`Config::connection_memory_total`]).
    pub connection_memory: Option<u64>,
    /// Requests a connection runs per loop turn before the others get
    /// theirs (memcached's `-R`).
    pub reqs_per_event: usize,
    /// Where the admin listener serves `GET /metrics`; `None`: no admin
    /// listener.
    pub metrics_listen: Option<SocketAddr>,
    /// More addresses to listen on (memcached's `-l` given several times).
    pub also_listen: Vec<SocketAddr>,
    /// Worker i also listens on this port + i, on the first listen
    /// address, and serves every key that arrives there itself, with no
    /// routing: for clients that place keys (ketama over the N ports).
    /// 0 picks free ports.
    pub port_per_worker: Option<u16>,
    /// A UNIX domain socket served beside TCP (memcached's `-s`).
    pub unix_socket: Option<std::path::PathBuf>,
    /// The UNIX socket's permissions (memcached's `-a`, default 0700:
    /// only the server's own user may connect).
    pub unix_mode: u32,
    /// Connections each listener's kernel queue holds before refusing more
    /// (memcached's `-b`); Linux caps it at `net.core.somaxconn`.
    pub listen_backlog: u32,
    /// Client connections open at once, over all workers (memcached's
    /// `-c`). One more is answered `ERROR Too many open connections` and
    /// closed.
    pub max_connections: usize,
    /// Close a connection that sent no request for this long (memcached's
    /// `idle_timeout`); `None`, the default, never.
    pub idle_timeout: Option<Duration>,
    /// Close a connection whose request, once its first byte arrived, is
    /// still incomplete after this long (a slowloris client); `None`:
    /// never.
    pub frame_timeout: Option<Duration>,
    /// Refuse every client's FLUSH (memcached's `-F`): off by default, as
    /// there.
    pub disable_flush: bool,
}

/// The admin listener's default address: loopback, Prometheus's
/// registered port for memcached exporters, so a scrape config written for
/// a memcached exporter finds cafe where it looked.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9150);

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            threads: default_threads(available_cores(), DEFAULT_MEMORY, None, &Limits::default())
                .map_or(1, |plan| plan.threads),
            cores: None,
            pin: true,
            limits: Limits::default(),
            memory: DEFAULT_MEMORY,
            clock: Arc::new(SystemClock::new()),
            enable_shutdown: false,
            connection_memory: None,
            reqs_per_event: DEFAULT_REQS_PER_EVENT,
            metrics_listen: Some(DEFAULT_METRICS_LISTEN),
            also_listen: Vec::new(),
            port_per_worker: None,
            unix_socket: None,
            unix_mode: 0o700,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: None,
            frame_timeout: Some(Duration::from_secs(DEFAULT_FRAME_TIMEOUT_SECS)),
            disable_flush: false,
        }
    }
}

impl Config {
    /// Checks what flags and code alike can get wrong: no workers, or limits
    /// of zero or beyond what the wire format can express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.threads == 0 {
            return Err(ConfigError::NoThreads);
        }
        if self.limits.max_key_len == 0 {
            return Err(ConfigError::ZeroLimit("--max-key-len"));
        }
        if self.limits.max_value_len == 0 {
            return Err(ConfigError::ZeroLimit("--max-item-size"));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::ZeroLimit("--max-connections"));
        }
        if self.listen_backlog == 0 {
            return Err(ConfigError::ZeroLimit("--listen-backlog"));
        }
        if self.listen_backlog > MAX_LISTEN_BACKLOG {
            return Err(ConfigError::LimitTooLarge(
                "--listen-backlog",
                u64::from(MAX_LISTEN_BACKLOG),
            ));
        }
        if self.limits.max_key_len > MAX_KEY_LEN {
            return Err(ConfigError::LimitTooLarge(
                "--max-key-len",
                MAX_KEY_LEN as u64,
            ));
        }
        if self.limits.max_value_len as u64 > MAX_ITEM_SIZE {
            return Err(ConfigError::LimitTooLarge("--max-item-size", MAX_ITEM_SIZE));
        }
        let share = self.memory_per_worker();
        let needed = min_worker_memory(&self.limits);
        if share < needed {
            return Err(ConfigError::MemoryTooSmall {
                threads: self.threads,
                share,
                needed,
                fit: (self.memory / needed) as usize,
            });
        }
        if self.reqs_per_event == 0 {
            return Err(ConfigError::ZeroLimit("--reqs-per-event"));
        }
        // A connection alone must be able to hold a largest value twice
        // over (a request arriving, a reply leaving), or a client could
        // wait for room that never comes.
        let share = self.connection_memory_per_worker() as u64;
        let needed = min_worker_memory(&self.limits);
        if share < needed {
            return Err(ConfigError::ConnectionMemoryTooSmall { share, needed });
        }
        Ok(())
    }

    /// What all connections together may hold: `--connection-memory`, or
    /// by default 64 MiB, raised where more workers need their minimum
    /// (a largest request and reply each, [`min_worker_memory`]), so that
    /// a worker count `--memory` has room for always starts.
    pub fn connection_memory_total(&self) -> u64 {
        self.connection_memory.unwrap_or_else(|| {
            let floor = min_worker_memory(&self.limits).saturating_mul(self.threads as u64);
            DEFAULT_CONNECTION_MEMORY.max(floor)
        })
    }

    /// Each worker's share of the connections' budget.
    pub fn connection_memory_per_worker(&self) -> usize {
        usize::try_from(self.connection_memory_total() / self.threads.max(1) as u64)
            .unwrap_or(usize::MAX)
    }

    /// Each worker's byte budget.
    pub fn memory_per_worker(&self) -> u64 {
        self.memory / self.threads.max(1) as u64
    }

    /// A configuration for tests and embedding: `threads` workers on an
    /// ephemeral loopback port, unpinned (tests share cores with the test
    /// runner and must not fight over them).
    pub fn ephemeral(threads: usize) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            threads,
            pin: false,
            metrics_listen: None,
            ..Config::default()
        }
    }
}

/// The smallest share of `--memory` a worker may have: two items of the
/// largest size, with room for the table and slots around them. A server
/// that refused items its own limit accepts would be misconfigured, and
/// with room for one only, every large store would evict the last.
pub fn min_worker_memory(limits: &Limits) -> u64 {
    2 * (limits.max_value_len as u64 + limits.max_key_len as u64) + (64 << 10)
}

/// The default number of workers, and what it was chosen from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadPlan {
    /// Workers to run.
    pub threads: usize,
    /// Cores available.
    pub cores: usize,
}

impl ThreadPlan {
    /// Whether memory, not the cores, set the number: fewer workers than
    /// cores.
    pub fn capped_by_memory(&self) -> bool {
        self.threads < self.cores
    }
}

/// The default worker count: one per core, but no more than `memory` can
/// give each its minimum share ([`min_worker_memory`]), so that the
/// default flags start on any machine (64 MiB over 64 cores would give
/// each worker 1 MiB, less than two items of 1 MiB). An explicit
/// `connection_memory` caps it the same way: each worker's share of it
/// must hold a largest request and a largest reply (the default grows
/// with the workers instead). Fails only if even one worker does not fit.
pub fn default_threads(
    cores: usize,
    memory: u64,
    connection_memory: Option<u64>,
    limits: &Limits,
) -> Result<ThreadPlan, ConfigError> {
    let needed = min_worker_memory(limits);
    let fits = |bytes: u64| usize::try_from(bytes / needed).unwrap_or(usize::MAX);
    let fit = fits(memory);
    if fit == 0 {
        return Err(ConfigError::MemoryTooSmall {
            threads: 1,
            share: memory,
            needed,
            fit,
        });
    }
    let connection_fit = connection_memory.map_or(usize::MAX, fits);
    if let (0, Some(share)) = (connection_fit, connection_memory) {
        return Err(ConfigError::ConnectionMemoryTooSmall { share, needed });
    }
    Ok(ThreadPlan {
        threads: cores.clamp(1, fit.min(connection_fit)),
        cores,
    })
}

/// The number of cores this process may run on.
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A flag that cannot be turned into a [`Config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `--listen` did not resolve to an address.
    BadListen(String),
    /// `--cores` is not a list like `0-3` or `0,2`.
    BadCoreList(String),
    /// `--threads 0`.
    NoThreads,
    /// A limit of zero.
    ZeroLimit(&'static str),
    /// A limit the wire format cannot express.
    LimitTooLarge(&'static str, u64),
    /// A size flag is not a size like `64m`: the flag and what it got.
    BadSize(&'static str, String),
    /// `-U` asked for UDP, which is not served.
    Udp(u16),
    /// `--unix-mode` is not an octal mode like `0700`.
    BadMode(String),
    /// `--memory` too small to give each worker room for two largest
    /// items.
    MemoryTooSmall {
        /// Workers asked for.
        threads: usize,
        /// Bytes per worker.
        share: u64,
        /// Bytes a worker needs ([`min_worker_memory`]).
        needed: u64,
        /// How many workers `--memory` has room for.
        fit: usize,
    },
    /// `--connection-memory` too small for one connection to hold a
    /// largest value coming in and one going out.
    ConnectionMemoryTooSmall {
        /// Bytes per worker.
        share: u64,
        /// Bytes needed.
        needed: u64,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadListen(s) => write!(f, "--listen {s:?} is not a host:port"),
            ConfigError::BadCoreList(s) => {
                write!(f, "--cores {s:?} is not a core list like 0-3 or 0,2,4")
            }
            ConfigError::NoThreads => f.write_str("--threads must be at least 1"),
            ConfigError::ZeroLimit(flag) => write!(f, "{flag} must be at least 1"),
            ConfigError::LimitTooLarge(flag, max) => write!(f, "{flag} must be at most {max}"),
            ConfigError::BadSize(flag, s) => {
                write!(f, "{flag} {s:?} is not a size like 64m, 4g or 1048576")
            }
            ConfigError::Udp(port) => write!(
                f,
                "-U {port}: UDP is not served; -U 0 (memcached's default since 1.5.6) is accepted"
            ),
            ConfigError::BadMode(s) => {
                write!(
                    f,
                    "--unix-mode {s:?} is not an octal mode like 0700 or 0770"
                )
            }
            ConfigError::MemoryTooSmall {
                threads,
                share,
                needed,
                fit: 0,
            } => write!(
                f,
                "--memory gives {threads} worker(s) {share} bytes each, less than the {needed} \
                 one worker needs for two items of --max-item-size: \
                 give more --memory or a smaller --max-item-size"
            ),
            ConfigError::MemoryTooSmall {
                threads,
                share,
                needed,
                fit,
            } => write!(
                f,
                "--memory gives {threads} workers (--threads) {share} bytes each, less than the \
                 {needed} a worker needs for two items of --max-item-size: \
                 give more --memory, a smaller --max-item-size, or at most --threads {fit}"
            ),
            ConfigError::ConnectionMemoryTooSmall { share, needed } => write!(
                f,
                "--connection-memory gives each worker {share} bytes, less than the {needed} \
                 a request and a reply of --max-item-size need: give more \
                 --connection-memory, a smaller --max-item-size, or fewer --threads"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses a size: bytes, or a number with a binary suffix `k`, `m`, `g` or
/// `t` (any case, an optional trailing `b` or `ib`): `64m` is 64 MiB.
pub fn parse_size(s: &str) -> Result<u64, ConfigError> {
    parse_size_for("--memory", s)
}

/// [`parse_size`], naming `flag` in its error.
fn parse_size_for(flag: &'static str, s: &str) -> Result<u64, ConfigError> {
    let bad = || ConfigError::BadSize(flag, s.to_string());
    let lower = s.trim().to_ascii_lowercase();
    let unit_start = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(unit_start);
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(bad()),
    };
    number.checked_mul(1 << shift).ok_or_else(bad)
}

/// `--memory`/`-m`: a bare number is megabytes, as memcached's `-m`;
/// otherwise a size with its unit (`64m`, `4g`, `1048576b`).
pub fn parse_memory(s: &str) -> Result<u64, ConfigError> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return parse_size_for("--memory", &format!("{t}m"));
    }
    parse_size_for("--memory", s)
}

/// Parses a core list: comma-separated core ids and inclusive ranges, e.g.
/// `0-3`, `0,2`, `0-1,6`.
pub fn parse_core_list(s: &str) -> Result<Vec<usize>, ConfigError> {
    let bad = || ConfigError::BadCoreList(s.to_string());
    let mut cores = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if a > b || b - a > 4096 {
                    return Err(bad());
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cores.is_empty() {
        return Err(bad());
    }
    Ok(cores)
}

/// `cafe-server`: a thread-per-core in-memory cache speaking the native
/// 0xCAFE protocol and the memcached binary protocol on one port.
#[derive(Debug, Parser)]
#[command(name = "cafe-server", version, about, long_about = None)]
pub struct Cli {
    /// Addresses to listen on, `host:port` or a bare IP (memcached's `-l`,
    /// repeatable or comma-separated). Loopback by default: exposing a
    /// cache to a network is a decision to make on purpose. Port 0 picks a
    /// free port.
    #[arg(
        long,
        short = 'l',
        default_value = "127.0.0.1:7070",
        value_delimiter = ',',
        action = clap::ArgAction::Append
    )]
    pub listen: Vec<String>,

    /// Worker i also listens on PORT + i and serves every key that
    /// arrives there itself, with no hop to another worker: list the N
    /// ports as N servers in a ketama client or twemproxy for
    /// thread-per-core without routing. Keys there and on the shared port
    /// are separate; use one or the other for a key space.
    #[arg(long, value_name = "PORT")]
    pub port_per_worker: Option<u16>,

    /// TCP port for every listen address (memcached's `-p`): overrides the
    /// port `--listen` gives; a bare IP in `--listen` needs it or gets 7070.
    #[arg(long, short = 'p', value_name = "PORT")]
    pub port: Option<u16>,

    /// Worker threads, each with its own event loop, connections and share
    /// of the keys (memcached's `-t`). Default: the cores available to the
    /// process, as many as `--memory` has room for.
    #[arg(long, short = 't')]
    pub threads: Option<usize>,

    /// Cores to pin workers to, e.g. `0-3` or `0,2`. Worker i runs on the
    /// i-th listed core, wrapping around if there are more workers than
    /// cores. Default: worker i on core i.
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,

    /// Do not pin workers to cores (let the scheduler move them).
    #[arg(long, conflicts_with = "cores")]
    pub no_pin: bool,

    /// Longest key accepted, in bytes (memcached's limit by default).
    #[arg(long, default_value_t = 250, value_name = "BYTES")]
    pub max_key_len: usize,

    /// Memory for items, split evenly over the workers: `64m`, `4g`, or a
    /// bare number of megabytes as memcached's `-m` (memcached's 64 MiB
    /// by default). Keys, values, per-item metadata and the hash tables
    /// all count; a full worker evicts (SIEVE).
    #[arg(long, short = 'm', default_value = "64m", value_name = "SIZE")]
    pub memory: String,

    /// More messages: `-v` logs refused requests and closed connections
    /// with their peers, `-vv` every request (memcached's `-v`, `-vv`).
    /// `RUST_LOG`, when set, decides instead.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// UDP port (memcached's `-U`): only 0, UDP off, is accepted, as
    /// memcached's own default since 1.5.6.
    #[arg(short = 'U', long = "udp-port", value_name = "0")]
    pub udp_port: Option<u16>,

    /// Also serve a UNIX domain socket at PATH (memcached's `-s`), with the
    /// same workers and answers as TCP.
    #[arg(long, short = 's', value_name = "PATH")]
    pub unix_socket: Option<std::path::PathBuf>,

    /// The UNIX socket's permissions, octal (memcached's `-a`): 0700 lets
    /// only the server's user connect.
    #[arg(long, short = 'a', default_value = "0700", value_name = "MODE")]
    pub unix_mode: String,

    /// Largest value accepted: bytes, or `512k`, `2m` (memcached's `-I`,
    /// 1 MiB by default). Larger values are refused from their header and
    /// never buffered.
    #[arg(long, short = 'I', default_value = "1m", value_name = "SIZE")]
    pub max_item_size: String,

    /// Let a client stop the server with the text protocol's `shutdown`
    /// command (memcached's `-A`). Off by default: any client could.
    #[arg(long, short = 'A')]
    pub enable_shutdown: bool,

    /// Memory all connections together may hold (partial requests, unsent
    /// replies, requests forwarded between workers), split evenly over the
    /// workers: `64m`, `1g` or bytes. A worker at its share stops reading
    /// from the connections that hold the most until they drain, and goes
    /// on serving the others. Default: 64 MiB, or two items of
    /// --max-item-size per worker if more.
    #[arg(long, value_name = "SIZE")]
    pub connection_memory: Option<String>,

    /// Requests one connection runs per loop turn before the others on its
    /// worker get theirs (memcached's `-R`).
    #[arg(long, short = 'R', default_value_t = DEFAULT_REQS_PER_EVENT, value_name = "N")]
    pub reqs_per_event: usize,

    /// Connections each worker's listening socket queues in the kernel
    /// before refusing more (memcached's `-b`); Linux caps it at
    /// `net.core.somaxconn`.
    #[arg(long, short = 'b', default_value_t = DEFAULT_LISTEN_BACKLOG, value_name = "N")]
    pub listen_backlog: u32,

    /// Client connections open at once, over all workers (memcached's
    /// `-c`). One more is answered `ERROR Too many open connections` and
    /// closed. The open-files limit is raised to fit at start.
    #[arg(long, short = 'c', default_value_t = DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: usize,

    /// Close a connection that has sent no request for this many seconds
    /// (memcached's `idle_timeout`). 0, the default, never closes one.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub idle_timeout: u64,

    /// Close a connection whose request is still incomplete this many
    /// seconds after its first byte arrived, as a slowloris client's
    /// would be. 0 never closes one.
    #[arg(long, default_value_t = DEFAULT_FRAME_TIMEOUT_SECS, value_name = "SECS")]
    pub frame_timeout: u64,

    /// Refuse `flush_all` and FLUSH from every client (memcached's `-F`):
    /// text `CLIENT_ERROR flush_all not allowed`, binary status 0x20.
    #[arg(long, short = 'F')]
    pub disable_flush: bool,

    /// Where the admin listener serves Prometheus metrics (`GET
    /// /metrics`), or `off`. Loopback by default, as the cache port.
    #[arg(long, default_value = "127.0.0.1:9150", value_name = "ADDR|off")]
    pub metrics_listen: String,
}

/// A `--listen` value as an address: `host:port`, or a bare IP or host
/// that takes `port` (or 7070). `port`, when given, overrides any port.
fn listen_addr(addr: &str, port: Option<u16>) -> Result<SocketAddr, ConfigError> {
    let mut resolved = match addr.parse::<std::net::IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port.unwrap_or(7070)),
        Err(_) => {
            resolve(addr).or_else(|_| resolve(&format!("{addr}:{}", port.unwrap_or(7070))))?
        }
    };
    if let Some(port) = port {
        resolved.set_port(port);
    }
    Ok(resolved)
}

/// The first address `addr` resolves to.
fn resolve(addr: &str) -> Result<SocketAddr, ConfigError> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| ConfigError::BadListen(addr.to_string()))
}

impl Cli {
    /// Validates the flags into a [`Config`].
    pub fn into_config(self) -> Result<Config, ConfigError> {
        if let Some(port) = self.udp_port.filter(|&p| p != 0) {
            return Err(ConfigError::Udp(port));
        }
        let mut addrs = self
            .listen
            .iter()
            .map(|a| listen_addr(a, self.port))
            .collect::<Result<Vec<_>, _>>()?;
        if addrs.is_empty() {
            addrs.push(listen_addr("127.0.0.1", self.port)?);
        }
        let listen = addrs.remove(0);
        let cores = self.cores.as_deref().map(parse_core_list).transpose()?;
        let memory = parse_memory(&self.memory)?;
        let max_item = parse_size_for("--max-item-size", &self.max_item_size)?;
        let connection_memory = self
            .connection_memory
            .as_deref()
            .map(|size| parse_size_for("--connection-memory", size))
            .transpose()?;
        let limits = Limits {
            max_key_len: self.max_key_len,
            max_value_len: usize::try_from(max_item)
                .map_err(|_| ConfigError::LimitTooLarge("--max-item-size", MAX_ITEM_SIZE))?,
        };
        let unix_mode = u32::from_str_radix(self.unix_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| ConfigError::BadMode(self.unix_mode.clone()))?;
        let threads = match self.threads {
            Some(threads) => threads,
            None => {
                let plan = default_threads(available_cores(), memory, connection_memory, &limits)?;
                if plan.capped_by_memory() {
                    log::info!(
                        "{} cores, but --memory {memory} (and --connection-memory, if \
                         given) has room for {} workers (two items of --max-item-size \
                         each): running {}; --threads or more memory to choose",
                        plan.cores,
                        plan.threads,
                        plan.threads
                    );
                }
                plan.threads
            }
        };
        let config = Config {
            listen,
            also_listen: addrs,
            port_per_worker: self.port_per_worker,
            unix_socket: self.unix_socket,
            unix_mode,
            threads,
            cores,
            pin: !self.no_pin,
            limits,
            memory,
            enable_shutdown: self.enable_shutdown,
            connection_memory,
            reqs_per_event: self.reqs_per_event,
            metrics_listen: match self.metrics_listen.as_str() {
                "off" | "none" | "" => None,
                addr => Some(resolve(addr)?),
            },
            listen_backlog: self.listen_backlog,
            max_connections: self.max_connections,
            idle_timeout: seconds(self.idle_timeout),
            frame_timeout: seconds(self.frame_timeout),
            disable_flush: self.disable_flush,
            ..Config::default()
        };
        config.validate()?;
        Ok(config)
    }
}

/// memcached flags cafe-server does not take, and what to do instead: an
/// operator moving a unit file over gets a reason, not just "unexpected
/// argument".
const MEMCACHED_ONLY: &[(&str, &str)] = &[
    (
        "-d",
        "-d (run as a daemon): run cafe-server under a supervisor (contrib/cafe-server.service)",
    ),
    (
        "-u",
        "-u (switch user): run cafe-server as that user (systemd User= or DynamicUser=)",
    ),
    (
        "-P",
        "-P (pid file): a supervisor knows the pid (systemd MAINPID)",
    ),
    ("-k", "-k (lock memory): not supported"),
    (
        "-M",
        "-M (no eviction): cafe always evicts (SIEVE) when full",
    ),
    (
        "-r",
        "-r (core file limit): set it in the supervisor (LimitCORE=)",
    ),
    ("-f", "-f (slab growth factor): cafe has no slab classes"),
    ("-n", "-n (minimum slab space): cafe has no slab classes"),
    (
        "-L",
        "-L (large pages): start cafe-server with _RJEM_MALLOC_CONF=thp:always in its environment (README, \"Huge pages\")",
    ),
    (
        "-D",
        "-D (stats prefix delimiter): no detailed prefix stats",
    ),
    (
        "-B",
        "-B (binding protocol): cafe picks the protocol per connection, as memcached's -B auto",
    ),
    ("-S", "-S (SASL): not supported"),
    ("-o", "-o (extended options): none are supported"),
    ("-e", "-e (memory file): not supported"),
    ("-Y", "-Y (authentication file): not supported"),
    ("-Z", "-Z (TLS): not supported"),
    ("-X", "-X (disable dump commands): cafe has none to disable"),
    (
        "-W",
        "-W (disable watch commands): cafe has none to disable",
    ),
];

/// If `arg` is a memcached flag cafe-server refuses, why (the message
/// names the flag).
pub fn unsupported_memcached_flag(arg: &std::ffi::OsStr) -> Option<String> {
    let arg = arg.to_str()?;
    MEMCACHED_ONLY
        .iter()
        .find(|(flag, _)| {
            arg == *flag || (arg.starts_with(flag) && arg.len() > 2 && !arg.starts_with("--"))
        })
        .map(|(_, why)| format!("memcached's {why}"))
}

/// A timeout flag in seconds: 0 is off.
fn seconds(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists() {
        assert_eq!(parse_core_list("0-3"), Ok(vec![0, 1, 2, 3]));
        assert_eq!(parse_core_list("0,2"), Ok(vec![0, 2]));
        assert_eq!(parse_core_list("1, 4-5"), Ok(vec![1, 4, 5]));
        for bad in ["", "a", "3-1", "1-", "-1", "1,,2"] {
            assert!(parse_core_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_become_config() {
        let cli = Cli::parse_from([
            "cafe-server",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "3",
            "--cores",
            "0,1",
            "--max-key-len",
            "100",
        ]);
        let cfg = cli.into_config().expect("valid flags");
        assert_eq!(cfg.threads, 3);
        assert_eq!(cfg.cores, Some(vec![0, 1]));
        assert!(cfg.pin);
        assert_eq!(cfg.limits.max_key_len, 100);
        assert_eq!(cfg.limits.max_value_len, 1 << 20);
    }

    #[test]
    fn memcached_flags_map_to_the_same_settings() {
        let cli = Cli::parse_from([
            "cafe-server",
            "-p",
            "11311",
            "-l",
            "127.0.0.1,127.0.0.2",
            "-l",
            "::1",
            "-m",
            "128",
            "-c",
            "500",
            "-t",
            "2",
            "-I",
            "2m",
            "-U",
            "0",
            "-F",
            "-b",
            "64",
            "-A",
            "-s",
            "/tmp/cafe.sock",
            "-a",
            "0770",
            "-vv",
        ]);
        assert_eq!(cli.verbose, 2);
        let cfg = cli.into_config().expect("memcached's flags are valid");
        assert_eq!(cfg.listen, "127.0.0.1:11311".parse().expect("addr"));
        let more: Vec<SocketAddr> = vec![
            "127.0.0.2:11311".parse().expect("addr"),
            "[::1]:11311".parse().expect("addr"),
        ];
        assert_eq!(cfg.also_listen, more);
        assert_eq!(
            cfg.memory,
            128 << 20,
            "a bare -m is megabytes, as memcached"
        );
        assert_eq!(cfg.max_connections, 500);
        assert_eq!(cfg.threads, 2);
        assert_eq!(cfg.limits.max_value_len, 2 << 20);
        assert!(cfg.disable_flush && cfg.enable_shutdown);
        assert_eq!(cfg.listen_backlog, 64);
        assert_eq!(
            cfg.unix_socket.as_deref(),
            Some(std::path::Path::new("/tmp/cafe.sock"))
        );
        assert_eq!(cfg.unix_mode, 0o770);
        // cafe's own spellings mean the same.
        let long = Cli::parse_from(["cafe-server", "--listen", "127.0.0.1:0", "--memory", "64m"]);
        assert_eq!(long.into_config().expect("valid").memory, 64 << 20);
    }

    #[test]
    fn memcached_flags_cafe_refuses_say_why() {
        let udp = Cli::parse_from(["cafe-server", "-U", "11211"]).into_config();
        assert_eq!(udp.err(), Some(ConfigError::Udp(11211)));
        let mode = Cli::parse_from(["cafe-server", "-a", "999"]).into_config();
        assert!(matches!(mode, Err(ConfigError::BadMode(_))));
        let item = Cli::parse_from(["cafe-server", "-I", "2x"]).into_config();
        assert!(
            item.err()
                .is_some_and(|e| e.to_string().contains("--max-item-size"))
        );
        for flag in ["-d", "-u", "-P", "-o", "-M", "-B"] {
            let why = unsupported_memcached_flag(std::ffi::OsStr::new(flag))
                .unwrap_or_else(|| panic!("{flag} is refused"));
            assert!(why.contains(flag), "{why}");
        }
        for ok in ["-m", "-p", "--memory", "-vv", "-l"] {
            assert_eq!(unsupported_memcached_flag(std::ffi::OsStr::new(ok)), None);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("2kb"), Ok(2048));
        for bad in ["", "m", "64x", "-1", "1.5g", "99999999999t"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn memory_must_hold_a_largest_item_per_worker() {
        let mut cfg = Config::ephemeral(4);
        cfg.memory = 4 << 20;
        assert!(matches!(
            cfg.validate(),
            Err(ConfigError::MemoryTooSmall { .. })
        ));
        cfg.limits.max_value_len = 64 << 10;
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn default_flags_start_on_any_number_of_cores() {
        let limits = Limits::default();
        for cores in 1..=256 {
            let plan =
                default_threads(cores, DEFAULT_MEMORY, None, &limits).expect("one worker fits");
            assert!(
                (1..=cores).contains(&plan.threads),
                "{cores} cores: {plan:?}"
            );
            let mut cfg = Config::ephemeral(plan.threads);
            assert_eq!(cfg.validate(), Ok(()), "{cores} cores: {plan:?}");
            // As many as fit: one more worker would not.
            if plan.capped_by_memory() {
                cfg.threads += 1;
                assert!(cfg.validate().is_err(), "{cores} cores: {plan:?}");
            }
        }
        // 64 MiB over workers of two 1 MiB items each: 31 at most.
        let plan = |cores| default_threads(cores, DEFAULT_MEMORY, None, &limits);
        assert_eq!(
            plan(8),
            Ok(ThreadPlan {
                threads: 8,
                cores: 8
            })
        );
        assert_eq!(plan(31).map(|p| p.capped_by_memory()), Ok(false));
        assert_eq!(
            plan(64),
            Ok(ThreadPlan {
                threads: 31,
                cores: 64
            })
        );
        // More memory, more workers, and the connections' default budget
        // grows to give each its minimum; an explicit one caps them too.
        let big = default_threads(64, 4 << 30, None, &limits);
        assert_eq!(big.map(|p| p.threads), Ok(64));
        let mut cfg = Config::ephemeral(64);
        cfg.memory = 4 << 30;
        assert_eq!(cfg.validate(), Ok(()));
        assert!(cfg.connection_memory_total() > DEFAULT_CONNECTION_MEMORY);
        let capped = default_threads(64, 4 << 30, Some(DEFAULT_CONNECTION_MEMORY), &limits);
        assert_eq!(capped.map(|p| p.threads), Ok(31));
        // Not even one worker fits.
        assert!(matches!(
            default_threads(4, 1 << 20, None, &limits),
            Err(ConfigError::MemoryTooSmall { fit: 0, .. })
        ));
        assert!(matches!(
            default_threads(4, DEFAULT_MEMORY, Some(1 << 20), &limits),
            Err(ConfigError::ConnectionMemoryTooSmall { .. })
        ));
    }

    #[test]
    fn explicit_threads_that_do_not_fit_fail_with_what_would() {
        let cli = Cli::parse_from(["cafe-server", "--threads", "64"]);
        let err = cli
            .into_config()
            .expect_err("64 workers do not fit in 64 MiB");
        assert!(matches!(
            err,
            ConfigError::MemoryTooSmall {
                threads: 64,
                fit: 31,
                ..
            }
        ));
        let text = err.to_string();
        for part in ["--memory", "--max-item-size", "at most --threads 31"] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
        let cli = Cli::parse_from(["cafe-server", "--memory", "1m"]);
        let text = cli.into_config().expect_err("too small").to_string();
        assert!(text.contains("give more --memory"), "{text}");
    }

    #[test]
    fn configs_built_in_code_are_validated_too() {
        let mut cfg = Config::ephemeral(1);
        assert_eq!(cfg.validate(), Ok(()));
        cfg.limits.max_key_len = 70_000;
        assert_eq!(
            cfg.validate(),
            Err(ConfigError::LimitTooLarge("--max-key-len", 65_535))
        );
        let cfg = Config::ephemeral(0);
        assert_eq!(cfg.validate(), Err(ConfigError::NoThreads));
    }

    #[test]
    fn bad_flags_are_refused() {
        let cli = Cli::parse_from(["cafe-server", "--threads", "0"]);
        assert_eq!(cli.into_config().err(), Some(ConfigError::NoThreads));
        let cli = Cli::parse_from(["cafe-server", "--max-key-len", "70000"]);
        assert!(matches!(
            cli.into_config(),
            Err(ConfigError::LimitTooLarge("--max-key-len", _))
        ));
        let cli = Cli::parse_from(["cafe-server", "--listen", "nowhere"]);
        assert!(matches!(cli.into_config(), Err(ConfigError::BadListen(_))));
        let cli = Cli::parse_from(["cafe-server", "-b", "0"]);
        assert_eq!(
            cli.into_config().err(),
            Some(ConfigError::ZeroLimit("--listen-backlog"))
        );
        let cli = Cli::parse_from(["cafe-server", "--listen-backlog", "3000000000"]);
        assert!(matches!(
            cli.into_config(),
            Err(ConfigError::LimitTooLarge("--listen-backlog", _))
        ));
    }

    #[test]
    fn connection_flags_have_memcacheds_defaults() {
        let cfg = Cli::parse_from(["cafe-server"])
            .into_config()
            .expect("defaults");
        assert_eq!((cfg.max_connections, cfg.listen_backlog), (1024, 1024));
        let cli = Cli::parse_from(["cafe-server", "-c", "10", "-b", "64"]);
        let cfg = cli.into_config().expect("valid flags");
        assert_eq!((cfg.max_connections, cfg.listen_backlog), (10, 64));
        assert_eq!(cfg.idle_timeout, None);
        assert_eq!(cfg.frame_timeout, Some(Duration::from_secs(30)));
        let cli = Cli::parse_from(["cafe-server", "--idle-timeout", "5", "--frame-timeout", "0"]);
        let cfg = cli.into_config().expect("valid flags");
        assert_eq!(cfg.idle_timeout, Some(Duration::from_secs(5)));
        assert_eq!(cfg.frame_timeout, None);
        let cli = Cli::parse_from(["cafe-server", "--max-connections", "0"]);
        assert_eq!(
            cli.into_config().err(),
            Some(ConfigError::ZeroLimit("--max-connections"))
        );
    }
}
