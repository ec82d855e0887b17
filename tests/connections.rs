//! How the server treats connections as a whole, over real sockets: its
//! listening sockets (backlog, one server per port), the limit on open
//! connections, and the stats that count them.
//!
//! Every test starts its own server in-process on 127.0.0.1 port 0.

use std::process::Command;

use cafe::config::Config;

mod common;
use common::text::TextConn;
use common::tool::in_ci;
use common::{for_each_worker_count, start_config};

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
