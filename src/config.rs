//! Server settings: the flags of `cafe-server`, their defaults with the
//! reasons for them, and their validation. Nothing here opens a socket or
//! starts a thread.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use clap::Parser;

use crate::clock::{Clock, SystemClock};
use crate::protocol::native::Limits;

/// memcached's default `-m 64`.
pub const DEFAULT_MEMORY: u64 = 64 << 20;

/// What all connections together may hold by default: 64 MiB, beside the
/// items' 64 MiB. Enough for hundreds of clients each with a large value
/// in flight, and a known bound on what a crowd of slow or hostile
/// clients can make the server hold.
pub const DEFAULT_CONNECTION_MEMORY: u64 = 64 << 20;

/// memcached's `-R` default: requests a connection runs per turn.
pub const DEFAULT_REQS_PER_EVENT: usize = 20;

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
    /// requests), split evenly over the workers.
    pub connection_memory: u64,
    /// Requests a connection runs per loop turn before the others get
    /// theirs (memcached's `-R`).
    pub reqs_per_event: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            threads: available_cores(),
            cores: None,
            pin: true,
            limits: Limits::default(),
            memory: DEFAULT_MEMORY,
            clock: Arc::new(SystemClock::new()),
            enable_shutdown: false,
            connection_memory: DEFAULT_CONNECTION_MEMORY,
            reqs_per_event: DEFAULT_REQS_PER_EVENT,
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
        if self.limits.max_key_len > MAX_KEY_LEN {
            return Err(ConfigError::LimitTooLarge(
                "--max-key-len",
                MAX_KEY_LEN as u64,
            ));
        }
        if self.limits.max_value_len as u64 > MAX_ITEM_SIZE {
            return Err(ConfigError::LimitTooLarge("--max-item-size", MAX_ITEM_SIZE));
        }
        // Each worker must be able to hold at least one largest item, with
        // room for the table and slab around it: a server that refuses
        // items its own limit accepts would be misconfigured.
        let share = self.memory_per_worker();
        let needed = 2 * (self.limits.max_value_len + self.limits.max_key_len) as u64 + (64 << 10);
        if share < needed {
            return Err(ConfigError::MemoryTooSmall { share, needed });
        }
        if self.reqs_per_event == 0 {
            return Err(ConfigError::ZeroLimit("--reqs-per-event"));
        }
        // A connection alone must be able to hold a largest value twice
        // over (a request arriving, a reply leaving), or a client could
        // wait for room that never comes.
        let share = self.connection_memory_per_worker() as u64;
        let needed = 2 * (self.limits.max_value_len + self.limits.max_key_len) as u64 + (64 << 10);
        if share < needed {
            return Err(ConfigError::ConnectionMemoryTooSmall { share, needed });
        }
        Ok(())
    }

    /// Each worker's share of the connections' budget.
    pub fn connection_memory_per_worker(&self) -> usize {
        usize::try_from(self.connection_memory / self.threads.max(1) as u64).unwrap_or(usize::MAX)
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
            ..Config::default()
        }
    }
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
    /// `--memory` is not a size like `64m`.
    BadSize(String),
    /// `--memory` too small to give each worker room for one largest item.
    MemoryTooSmall {
        /// Bytes per worker.
        share: u64,
        /// Bytes the largest item needs.
        needed: u64,
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
            ConfigError::BadSize(s) => {
                write!(f, "{s:?} is not a size like 64m, 4g or 1048576")
            }
            ConfigError::MemoryTooSmall { share, needed } => write!(
                f,
                "--memory gives each worker {share} bytes, less than the {needed} one item of --max-item-size needs"
            ),
            ConfigError::ConnectionMemoryTooSmall { share, needed } => write!(
                f,
                "--connection-memory gives each worker {share} bytes, less than the {needed} a request and a reply of --max-item-size need"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses a size: bytes, or a number with a binary suffix `k`, `m`, `g` or
/// `t` (any case, an optional trailing `b` or `ib`): `64m` is 64 MiB.
pub fn parse_size(s: &str) -> Result<u64, ConfigError> {
    let bad = || ConfigError::BadSize(s.to_string());
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
    /// Address to listen on. Loopback by default: exposing a cache to a
    /// network is a decision to make on purpose. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: String,

    /// Worker threads, each with its own event loop, connections and share
    /// of the keys. Default: the cores available to the process.
    #[arg(long)]
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

    /// Memory for items, split evenly over the workers: `64m`, `4g` or
    /// bytes (memcached's 64 MiB by default). Keys, values, per-item
    /// metadata and the hash tables all count; a full worker evicts (SIEVE).
    #[arg(long, default_value = "64m", value_name = "SIZE")]
    pub memory: String,

    /// Largest value accepted, in bytes (memcached's 1 MiB by default).
    /// Larger values are refused from their header and never buffered.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_item_size: usize,

    /// Let a client stop the server with the text protocol's `shutdown`
    /// command (memcached's `-A`). Off by default: any client could.
    #[arg(long, short = 'A')]
    pub enable_shutdown: bool,

    /// Memory all connections together may hold (partial requests, unsent
    /// replies, requests forwarded between workers), split evenly over the
    /// workers: `64m`, `1g` or bytes. A worker at its share stops reading
    /// from the connections that hold the most until they drain, and goes
    /// on serving the others.
    #[arg(long, default_value = "64m", value_name = "SIZE")]
    pub connection_memory: String,

    /// Requests one connection runs per loop turn before the others on its
    /// worker get theirs (memcached's `-R`).
    #[arg(long, short = 'R', default_value_t = DEFAULT_REQS_PER_EVENT, value_name = "N")]
    pub reqs_per_event: usize,
}

impl Cli {
    /// Validates the flags into a [`Config`].
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let listen = self
            .listen
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| ConfigError::BadListen(self.listen.clone()))?;
        let threads = self.threads.unwrap_or_else(available_cores);
        let cores = self.cores.as_deref().map(parse_core_list).transpose()?;
        let memory = parse_size(&self.memory)?;
        let connection_memory = parse_size(&self.connection_memory)?;
        let config = Config {
            listen,
            threads,
            cores,
            pin: !self.no_pin,
            limits: Limits {
                max_key_len: self.max_key_len,
                max_value_len: self.max_item_size,
            },
            memory,
            enable_shutdown: self.enable_shutdown,
            connection_memory,
            reqs_per_event: self.reqs_per_event,
            ..Config::default()
        };
        config.validate()?;
        Ok(config)
    }
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
    }
}
