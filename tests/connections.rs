//! How the server treats connections as a whole, over real sockets: its
//! listening sockets (backlog, one server per port), the limit on open
//! connections, and the stats that count them.
//!
//! Every test starts its own server in-process on 127.0.0.1 port 0.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Instant;

use cafe::config::Config;
use cafe::server::{Server, StartError};
use cafe::stats::VERSION;

mod common;
use common::memcache::Conn;
use common::text::TextConn;
use common::tool::in_ci;
use common::{IO_TIMEOUT, client, for_each_worker_count, start, start_config};

/// Whether the server at `addr` answers a request: the text protocol's
/// `version`.
fn serves(addr: SocketAddr) -> bool {
    TextConn::open(addr).call("version\r\n") == format!("VERSION {VERSION}")
}

#[test]
fn listen_backlog_is_each_listeners_queue_length() {
    for_each_worker_count(|threads| {
        let mut config = Config::ephemeral(threads);
        config.listen_backlog = 77;
        let server = start_config(config);
        let port = server.local_addr().port();
        let s = TextConn::open(server.local_addr()).stats("settings");
        assert_eq!(s.get("tcp_backlog"), 77);

        // What the kernel was told: `ss` shows a listening socket's
        // backlog in its Send-Q column, one line per worker's listener.
        let out = match Command::new("ss")
            .args(["-Hltn", &format!("sport = :{port}")])
            .output()
        {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            other => {
                assert!(!in_ci(), "`ss` (iproute2) is needed under CI: {other:?}");
                eprintln!("NOTICE: `ss` (iproute2) not found; the kernel's backlog is not checked");
                return;
            }
        };
        let backlogs: Vec<&str> = out
            .lines()
            .filter_map(|line| line.split_whitespace().nth(2))
            .collect();
        assert_eq!(backlogs, vec!["77"; threads], "ss says:\n{out}");
    });
}

#[test]
fn a_second_server_on_a_port_in_use_fails_to_start() {
    for_each_worker_count(|threads| {
        let first = start(threads);
        let addr = first.local_addr();
        let mut config = Config::ephemeral(threads);
        config.listen = addr;
        match Server::start(config.clone()) {
            Err(e @ StartError::InUse(at)) => {
                assert_eq!(at, addr);
                assert!(e.to_string().contains("address in use"), "{e}");
            }
            Err(e) => panic!("expected \"address in use\", got: {e}"),
            Ok(second) => panic!("a second server started on {}", second.local_addr()),
        }
        // The first one serves on, every worker of it.
        for _ in 0..2 * threads {
            assert!(serves(addr));
        }
        // Once it has stopped, the port is free for a new server at once,
        // its closed connections in TIME_WAIT notwithstanding.
        first.shutdown();
        assert!(first.join(), "workers exit cleanly");
        let again = start_config(config);
        assert_eq!(again.local_addr(), addr);
        assert!(serves(addr));
    });
}

#[test]
fn a_server_refuses_a_port_another_program_listens_on() {
    // A plain listener, as most programs open one: no SO_REUSEPORT.
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut config = Config::ephemeral(2);
    config.listen = other.local_addr().expect("local address");
    assert!(matches!(Server::start(config), Err(StartError::InUse(_))));
}

/// `max_connections`, `curr_connections` and `rejected_connections` as
/// each protocol's stats report them: native, memcached binary, text.
fn connection_stats(
    native: &mut cafe::client::Client,
    binary: &mut Conn,
    text: &mut TextConn,
) -> [[u64; 3]; 3] {
    const NAMES: [&str; 3] = [
        "max_connections",
        "curr_connections",
        "rejected_connections",
    ];
    let n = native.stats().expect("native stats");
    let b = binary.stats(b"", 0x5747);
    let t = text.stats("");
    [
        NAMES.map(|name| {
            n.get_u64(name)
                .unwrap_or_else(|| panic!("native stat {name}"))
        }),
        NAMES.map(|name| b.get(name)),
        NAMES.map(|name| t.get(name)),
    ]
}

#[test]
fn connections_past_the_limit_are_turned_away_with_an_error() {
    for_each_worker_count(|threads| {
        let mut config = Config::ephemeral(threads);
        config.max_connections = 3;
        let server = start_config(config);
        let addr = server.local_addr();
        // One connection per protocol, each answered: all three are open.
        let mut native = client(&server);
        native.noop().expect("native noop");
        let mut binary = Conn::open(&server);
        binary.fence(1);
        let mut text = TextConn::open(addr);
        assert_eq!(text.call("version\r\n"), format!("VERSION {VERSION}"));

        // The limit is server-wide, whichever worker accepts: a fourth is
        // told why in memcached's words, and closed gracefully.
        let mut fourth = TextConn::open(addr);
        assert_eq!(fourth.line(), "ERROR Too many open connections");
        fourth.expect_eof();
        assert_eq!(
            connection_stats(&mut native, &mut binary, &mut text),
            [[3, 3, 1]; 3],
            "max, current and rejected connections, in every protocol"
        );

        // A closed connection frees its slot.
        drop(text);
        let deadline = Instant::now() + IO_TIMEOUT;
        while native.stats().expect("stats").get_u64("curr_connections") != Some(2) {
            assert!(
                Instant::now() < deadline,
                "the closed connection still counts"
            );
        }
        assert!(serves(addr));
        let s = native.stats().expect("stats");
        assert_eq!(s.get_u64("total_connections"), Some(4));
        assert_eq!(s.get_u64("rejected_connections"), Some(1));
    });
}
