//! A fleet of cafe servers in-process for the scale-out tests: started on
//! loopback ephemeral ports, stopped one at a time, restarted on the same
//! port; each node's item count read through the text protocol's `stats`,
//! as an operator would; and the odds and ends of running a proxy beside
//! them (free ports, scratch directories, children killed on drop).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use cafe::config::Config;
use cafe::server::{Server, ServerHandle};

use super::{IO_TIMEOUT, set_timeouts};

/// In-process cafe servers, one worker each, on 127.0.0.1.
pub struct Fleet {
    pub addrs: Vec<SocketAddr>,
    servers: Vec<Option<ServerHandle>>,
}

impl Fleet {
    pub fn start(n: usize) -> Fleet {
        let servers: Vec<ServerHandle> = (0..n)
            .map(|_| Server::start(Config::ephemeral(1)).expect("server starts"))
            .collect();
        Fleet {
            addrs: servers.iter().map(ServerHandle::local_addr).collect(),
            servers: servers.into_iter().map(Some).collect(),
        }
    }

    /// `host:port` of every node, as a cluster or proxy lists them.
    pub fn specs(&self) -> Vec<String> {
        self.addrs.iter().map(SocketAddr::to_string).collect()
    }

    /// Stops node `i` and waits until it is gone: its port refuses
    /// connections from then on.
    pub fn stop(&mut self, i: usize) {
        if let Some(server) = self.servers[i].take() {
            server.shutdown();
            assert!(server.join(), "node {i} stopped cleanly");
        }
    }

    /// A new, empty server on node `i`'s port.
    pub fn restart(&mut self, i: usize) {
        self.stop(i);
        let mut config = Config::ephemeral(1);
        config.listen = self.addrs[i];
        // The old listener is closed; the port may still be settling.
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            match Server::start(config.clone()) {
                Ok(server) => {
                    self.servers[i] = Some(server);
                    return;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "restart node {i}: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Node `i`'s `curr_items`, from the text protocol's `stats`.
    pub fn curr_items(&self, i: usize) -> u64 {
        text_stat(self.addrs[i], "curr_items")
    }
}

/// One counter of a memcached-protocol server's text `stats`.
pub fn text_stat(addr: SocketAddr, name: &str) -> u64 {
    let mut s = TcpStream::connect(addr).expect("connect for stats");
    set_timeouts(&s, IO_TIMEOUT);
    s.write_all(b"stats\r\n").expect("send stats");
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    while !reply.ends_with(b"END\r\n") {
        match s.read(&mut buf) {
            Ok(0) => panic!("stats from {addr}: closed"),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) => panic!("stats from {addr}: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&reply);
    let prefix = format!("STAT {name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in stats from {addr}"))
}

/// Asserts that each count is within ±`tolerance` (a fraction) of an even
/// share of `total`.
pub fn assert_balanced(counts: &[u64], total: u64, tolerance: f64) {
    let share = total as f64 / counts.len() as f64;
    for (i, &c) in counts.iter().enumerate() {
        let off = (c as f64 - share).abs() / share;
        assert!(
            off <= tolerance,
            "node {i} holds {c} of {total} keys, {:.1}% off an even share {share:.0}: {counts:?}",
            off * 100.0
        );
    }
}

/// Polls `cond` every 20 ms until it holds, failing after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free loopback port, for programs that cannot pick one and report it.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    l.local_addr().expect("probe address").port()
}

/// `name` on PATH or in the usual system directories.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Kills the child when dropped, so a failing assertion leaves nothing.
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch directory removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("cafe-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
