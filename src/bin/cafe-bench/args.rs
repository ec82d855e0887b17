//! The command line: every flag, its default and its help text, and the
//! parsing of flag values that clap cannot check alone.
//!
//! Must not: validate combinations of flags or act on them (`main` does),
//! or know how a protocol is spoken.

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// cafe's native 0xCAFE protocol.
    Native,
    /// The memcached binary protocol.
    Memcache,
    /// memcached's text protocol (`get`, `set`).
    Text,
    /// memcached's meta protocol (`mg`, `ms`).
    Meta,
}

impl Protocol {
    /// The name `--protocol` takes, as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::Memcache => "memcache",
            Protocol::Text => "text",
            Protocol::Meta => "meta",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Distribution {
    Uniform,
    Zipf,
}

/// Load generator for cafe-server and memcached: cafe's native protocol,
/// or memcached's binary, text or meta protocol.
#[derive(Debug, Parser)]
#[command(name = "cafe-bench", version)]
pub struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub server: String,
    /// A fleet instead of one server: its nodes, `host:port` each, comma
    /// separated. Each connection is then one socket per node, and each
    /// request goes to its key's node, placed by libmemcached's ketama
    /// ring as twemproxy and `cafe::client::Cluster` place it.
    #[arg(long, value_name = "A,B,...", conflicts_with = "server")]
    pub servers: Option<String>,
    /// Protocol to speak.
    #[arg(long, value_enum, default_value = "memcache")]
    pub protocol: Protocol,
    /// Load threads, each with its own event loop.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Cores to pin load threads to, e.g. `1` or `2-3` (thread i on the
    /// i-th listed core, wrapping). Default: from the last core this
    /// process may use down (thread 0 on the last), so that the load stays
    /// off cafe-server's default cores, which count up from core 0.
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
    /// Do not pin load threads.
    #[arg(long, conflicts_with = "cores")]
    pub no_pin: bool,
    /// Connections in all, spread over the threads.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Closed loop: requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Open loop: requests per second in all, evenly spaced on each
    /// connection; latency is measured from each request's intended send
    /// time. `--pipeline` is then ignored.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u32,
    /// Key length in bytes (at least enough for the key number).
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Value length: bytes, or MIN-MAX (each key's length is fixed within
    /// the range).
    #[arg(long, default_value = "64")]
    pub value_size: String,
    /// Fraction of requests that are GETs; the rest are SETs.
    #[arg(long, default_value_t = 0.9)]
    pub get_ratio: f64,
    /// Key popularity.
    #[arg(long, value_enum, default_value = "uniform")]
    pub distribution: Distribution,
    /// Zipf exponent.
    #[arg(long, default_value_t = 1.0)]
    pub zipf_alpha: f64,
    /// Store every key before the run.
    #[arg(long)]
    pub preload: bool,
    /// Check every GET hit against the value for its key.
    #[arg(long)]
    pub verify: bool,
    /// Seed for key choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A server process whose CPU time over the measured window to count
    /// (repeatable, or comma separated: a fleet's are summed). The report
    /// then gives the server CPU per request and the capacity: requests per
    /// second of server CPU, what one fully busy core of it would answer.
    #[arg(long, value_name = "PID", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub server_pid: Vec<u32>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--value-size`: `N` or `MIN-MAX`, as (min, max).
pub fn parse_value_size(s: &str) -> Option<(usize, usize)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => {
            let n = s.trim().parse().ok()?;
            Some((n, n))
        }
    }
}
