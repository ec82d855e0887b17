//! `--port-per-worker`: each worker's own port serves every key that
//! arrives there itself, with no hop to another worker, so a client that
//! places keys (ketama over the N ports) gets thread-per-core without
//! routing.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use cafe::config::Config;
use cafe::router::Router;
use cafe::server::Server;
use common::IO_TIMEOUT;

fn conn(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

fn exchange(s: &mut TcpStream, script: &str, last: &[u8]) -> String {
    s.write_all(script.as_bytes()).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(last) {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).expect("utf-8")
}

fn stat(s: &mut TcpStream, name: &str) -> u64 {
    let stats = exchange(s, "stats\r\n", b"END\r\n");
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

#[test]
fn keys_are_served_where_they_arrive_with_no_hop() {
    let threads = 4;
    let mut config = Config::ephemeral(threads);
    config.port_per_worker = Some(0);
    let server = Server::start(config).expect("server starts");
    let ports = server.worker_addrs().to_vec();
    assert_eq!(ports.len(), threads);
    // Keys owned, by the shared port's routing, by every worker; each
    // stored through worker 0's own port.
    let router = Router::new(threads);
    let keys: Vec<String> = (0..200).map(|i| format!("ppw-{i}")).collect();
    assert!((0..threads).all(|w| keys.iter().any(|k| router.owner(k.as_bytes()) == w)));
    let mut w0 = conn(ports[0]);
    let mut script = String::new();
    for k in &keys {
        script.push_str(&format!("set {k} 0 0 2\r\nok\r\n"));
    }
    script.push_str(&format!("get {}\r\n", keys.join(" ")));
    let got = exchange(&mut w0, &script, b"END\r\n");
    assert_eq!(got.matches("STORED\r\n").count(), keys.len());
    assert_eq!(
        got.matches("VALUE ").count(),
        keys.len(),
        "every key read back"
    );
    // Nothing hopped: every key was served by worker 0.
    assert_eq!(stat(&mut w0, "forwarded"), 0);
    assert_eq!(stat(&mut w0, "executed_for_peers"), 0);
    // Another worker's port is another key space.
    let mut w1 = conn(ports[1]);
    assert_eq!(
        exchange(&mut w1, &format!("get {}\r\n", keys[0]), b"END\r\n"),
        "END\r\n"
    );
    // The shared port still routes by key, as without the flag.
    let mut shared = common::connect(&server);
    let got = exchange(
        &mut shared,
        "set routed 0 0 1\r\nx\r\nget routed\r\n",
        b"END\r\n",
    );
    assert!(got.ends_with("VALUE routed 0 1\r\nx\r\nEND\r\n"), "{got}");
}
