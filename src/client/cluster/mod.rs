//! A client for a fleet of cache servers: keys placed by libmemcached's
//! ketama continuum ([`crate::client::ketama`]), so this client,
//! libmemcached (pylibmc, PHP's memcached, ...) with `ketama_weighted` and
//! twemproxy with `distribution: ketama`, `hash: md5` all agree on where
//! a key lives; one lazily opened connection per server, in cafe's native
//! protocol or memcached's binary protocol; failing servers ejected and
//! retried ([`health`]); multi-gets grouped by server and pipelined.
//!
//! Failure behaviour, as `docs/SCALE-OUT.md` documents and
//! `tests/cluster_client.rs` measures:
//!
//! - A request waits on a server at most the connect timeout (to open a
//!   connection) plus the I/O timeout per read or write: a dead or hung
//!   server can never hold a caller longer.
//! - A failed request is returned as an error, never retried on another
//!   server (the caller treats it as a miss). After `failure_limit`
//!   consecutive failures the server is ejected: its keys move to the
//!   others (about 1/n of the keys, each a miss there the first time), and
//!   nobody's requests touch it until `retry_timeout` has passed.
//! - Requests for other servers' keys never wait on a failing one, except
//!   within a multi-get, which reads each server's replies in turn.
//! - After `retry_timeout` the server rejoins on probation: its keys go
//!   back to it (they miss, as it restarted empty, and warm up as they are
//!   set); one more failure ejects it again at once.
//!
//! Must not: retry a request on a second server (a SET that timed out may
//! have been applied; only the caller can say whether to write it again),
//! share connections between threads (a `Cluster` is one thread's, like
//! [`crate::client::Client`]), or block without a timeout.

mod conn;
pub mod health;

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

pub use conn::{NodeError, Protocol};
pub use health::{EjectPolicy, ServerState};

use super::ketama::{Ring, parse_server, server_name};
use super::memcache::Item;
use conn::Conn;
use health::Health;

/// Most keys a multi-get sends to one server before reading its replies:
/// their requests stay well inside the socket buffers, so writing to every
/// server before reading any cannot block on a server that has stopped
/// reading until its replies are read.
const MULTI_GET_BATCH: usize = 128;

/// How a [`Cluster`] talks to its servers and judges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The protocol spoken to every server.
    pub protocol: Protocol,
    /// Longest wait to open a connection.
    pub connect_timeout: Duration,
    /// Longest wait for one read or write on a connection.
    pub io_timeout: Duration,
    /// Eject failing servers (twemproxy's `auto_eject_hosts`). When off, a
    /// failing server keeps its keys and each request for them fails.
    pub auto_eject: bool,
    /// When servers leave and rejoin.
    pub eject: EjectPolicy,
}

impl Default for ClusterConfig {
    /// memcached's binary protocol; timeouts of 250 ms; ejection after 2
    /// consecutive failures for 30 s (twemproxy's defaults for
    /// `server_failure_limit` and `server_retry_timeout`).
    fn default() -> Self {
        ClusterConfig {
            protocol: Protocol::Memcache,
            connect_timeout: Duration::from_millis(250),
            io_timeout: Duration::from_millis(250),
            auto_eject: true,
            eject: EjectPolicy {
                failure_limit: 2,
                retry_timeout: Duration::from_secs(30),
            },
        }
    }
}

/// Why a cluster request failed.
#[derive(Debug)]
pub enum ClusterError {
    /// A server in the list is not `host[:port]` or does not resolve.
    BadServer(String),
    /// No server is in the continuum: every one is ejected.
    NoServers,
    /// The server the key belongs to failed or refused the request.
    Server {
        /// The server's index in the list given to [`Cluster::new`].
        index: usize,
        /// The server as given.
        server: String,
        /// What went wrong.
        error: NodeError,
    },
}

impl ClusterError {
    /// Whether the server failed (as opposed to refusing this request).
    pub fn is_failure(&self) -> bool {
        match self {
            ClusterError::Server { error, .. } => error.is_failure(),
            ClusterError::NoServers => true,
            ClusterError::BadServer(_) => false,
        }
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::BadServer(s) => write!(f, "server {s:?} is not a reachable host:port"),
            ClusterError::NoServers => f.write_str("every server is ejected"),
            ClusterError::Server { server, error, .. } => write!(f, "{server}: {error}"),
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::Server { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// What a multi-get found.
#[derive(Debug, Default)]
pub struct MultiGet {
    /// One entry per key asked for, in order: `None` for a miss or a key
    /// whose server failed.
    pub items: Vec<Option<Item>>,
    /// Indices of the keys whose server failed or refused them.
    pub failed: Vec<usize>,
    /// What went wrong, one entry per server that did.
    pub errors: Vec<ClusterError>,
}

#[derive(Debug)]
struct Server {
    spec: String,
    addr: SocketAddr,
    conn: Option<Conn>,
    health: Health,
}

/// A fleet of servers behind one continuum. See the module docs.
#[derive(Debug)]
pub struct Cluster {
    servers: Vec<Server>,
    names: Vec<String>,
    ring: Ring,
    config: ClusterConfig,
    /// Whether some server is ejected, so that the clock is read only then.
    any_ejected: bool,
}

impl Cluster {
    /// A cluster over `servers`, each `host[:port]` (11211 if no port), in
    /// the order every client of the fleet lists them (the order does not
    /// change placement, but indices follow it). Names are resolved now;
    /// connections are opened on first use.
    pub fn new<S: AsRef<str>>(
        servers: &[S],
        config: ClusterConfig,
    ) -> Result<Cluster, ClusterError> {
        let mut list = Vec::with_capacity(servers.len());
        let mut names = Vec::with_capacity(servers.len());
        for spec in servers {
            let spec = spec.as_ref();
            let bad = || ClusterError::BadServer(spec.to_owned());
            let (host, port) = parse_server(spec).ok_or_else(bad)?;
            let addr = (host, port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(bad)?;
            names.push(server_name(host, port));
            list.push(Server {
                spec: spec.to_owned(),
                addr,
                conn: None,
                health: Health::new(),
            });
        }
        let ring = Ring::new(&names);
        Ok(Cluster {
            servers: list,
            names,
            ring,
            config,
            any_ejected: false,
        })
    }

    /// How many servers the cluster was given.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether it was given none.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Server `index`'s name on the continuum (`host:port`, or `host` for
    /// port 11211).
    pub fn name(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(String::as_str)
    }

    /// Where server `index` stands.
    pub fn state(&self, index: usize) -> Option<ServerState> {
        self.servers.get(index).map(|s| s.health.state())
    }

    /// The server `key` goes to now (after any ejection), or `None` if
    /// every server is ejected.
    pub fn server_for(&mut self, key: &[u8]) -> Option<usize> {
        self.refresh(Instant::now());
        self.ring.server_for(key)
    }

    /// Rejoins servers whose retry time has come.
    fn refresh(&mut self, now: Instant) {
        if !self.any_ejected {
            return;
        }
        let mut changed = false;
        for s in &mut self.servers {
            changed |= s.health.retry_due(now);
        }
        if changed {
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        let live: Vec<bool> = self.servers.iter().map(|s| s.health.in_ring()).collect();
        self.any_ejected = live.iter().any(|l| !l);
        self.ring = Ring::weighted(&self.names, &[], &live);
    }

    /// Runs `op` on server `index`'s connection, opening it if need be,
    /// and records the outcome in its health.
    fn on_server<T>(
        &mut self,
        index: usize,
        op: impl FnOnce(&mut Conn) -> Result<T, NodeError>,
    ) -> Result<T, ClusterError> {
        let config = self.config;
        let server = &mut self.servers[index];
        let conn = match &mut server.conn {
            Some(conn) => Ok(conn),
            slot => Conn::open(
                server.addr,
                config.protocol,
                config.connect_timeout,
                config.io_timeout,
            )
            .map(|c| slot.insert(c)),
        };
        let result = conn.and_then(op);
        match result {
            Ok(v) => {
                server.health.success();
                Ok(v)
            }
            Err(error) => {
                if error.is_failure() {
                    self.fail(index);
                }
                Err(ClusterError::Server {
                    index,
                    server: self.servers[index].spec.clone(),
                    error,
                })
            }
        }
    }

    /// Drops server `index`'s connection (its place in the reply stream
    /// is lost) and counts a failure, ejecting it at the limit.
    fn fail(&mut self, index: usize) {
        let server = &mut self.servers[index];
        server.conn = None;
        if self.config.auto_eject && server.health.failure(Instant::now(), &self.config.eject) {
            log::warn!(
                "{}: ejected after {} consecutive failures, retried in {:?}",
                server.spec,
                server.health.failures(),
                self.config.eject.retry_timeout
            );
            self.rebuild();
        }
    }

    fn route(&mut self, key: &[u8]) -> Result<usize, ClusterError> {
        self.server_for(key).ok_or(ClusterError::NoServers)
    }

    /// Looks `key` up on its server.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Item>, ClusterError> {
        let index = self.route(key)?;
        self.on_server(index, |c| c.get(key))
    }

    /// Stores `value` under `key` on its server; `exptime` 0 never
    /// expires.
    pub fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
    ) -> Result<(), ClusterError> {
        let index = self.route(key)?;
        self.on_server(index, |c| c.set(key, value, flags, exptime))
    }

    /// Removes `key` from its server; `true` if it was there.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, ClusterError> {
        let index = self.route(key)?;
        self.on_server(index, |c| c.delete(key))
    }

    /// Looks every key up: keys grouped by server, each group pipelined in
    /// batches, every server's batch written before any is read, so the
    /// servers work in parallel and a multi-get costs about one round trip
    /// per batch. A failing server fails only its own keys.
    pub fn get_multi<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> MultiGet {
        let mut result = MultiGet {
            items: vec![None; keys.len()],
            ..MultiGet::default()
        };
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.servers.len()];
        for (i, key) in keys.iter().enumerate() {
            match self.server_for(key.as_ref()) {
                Some(s) => groups[s].push(i),
                None => result.failed.push(i),
            }
        }
        if !result.failed.is_empty() {
            result.errors.push(ClusterError::NoServers);
        }
        let mut next = vec![0; groups.len()];
        loop {
            // Write one batch to every server that has keys left.
            let mut sent = Vec::new();
            for (s, group) in groups.iter().enumerate() {
                let batch = &group[next[s]..(next[s] + MULTI_GET_BATCH).min(group.len())];
                if batch.is_empty() {
                    continue;
                }
                let batch_keys: Vec<&[u8]> = batch.iter().map(|&i| keys[i].as_ref()).collect();
                match self.on_server(s, |c| c.send_gets(&batch_keys)) {
                    Ok(()) => sent.push((s, batch)),
                    Err(e) => {
                        abandon(&mut result, e, &group[next[s]..]);
                        next[s] = group.len();
                    }
                }
            }
            if sent.is_empty() {
                break;
            }
            for (s, batch) in sent {
                let mut found = vec![None; batch.len()];
                match self.on_server(s, |c| c.recv_gets(&mut found)) {
                    Ok(()) => {
                        for (&i, item) in batch.iter().zip(found) {
                            result.items[i] = item;
                        }
                        next[s] += batch.len();
                    }
                    // A refusal (a key the server will not take) fails this
                    // batch; the connection is still in step.
                    Err(e) if !e.is_failure() => {
                        abandon(&mut result, e, batch);
                        next[s] += batch.len();
                    }
                    Err(e) => {
                        abandon(&mut result, e, &groups[s][next[s]..]);
                        next[s] = groups[s].len();
                    }
                }
            }
        }
        result.failed.sort_unstable();
        result.failed.dedup();
        result
    }
}

/// Marks `keys` failed because of `error`.
fn abandon(result: &mut MultiGet, error: ClusterError, keys: &[usize]) {
    result.failed.extend_from_slice(keys);
    result.errors.push(error);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_libmemcached() {
        let c = Cluster::new(&["127.0.0.2", "127.0.0.3:7070"], ClusterConfig::default())
            .expect("cluster");
        assert_eq!(c.name(0), Some("127.0.0.2"));
        assert_eq!(c.name(1), Some("127.0.0.3:7070"));
        assert!(matches!(
            Cluster::new(&["127.0.0.2:nope"], ClusterConfig::default()),
            Err(ClusterError::BadServer(_))
        ));
    }
}
