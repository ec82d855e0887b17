//! `scripts/cluster.sh` end to end: two cafe nodes on 127.0.0.2 and
//! 127.0.0.3 and nutcracker on 127.0.0.1 (free ports, a scratch state
//! directory, this build's cafe-server); a key written through the proxy
//! is read back through it and found on the node the ketama ring names;
//! `status`, `stop-node`, `start-node` and `stop` do what they say, and
//! `stop` leaves no process behind.
//!
//! Without nutcracker (or bash) the test prints a notice and passes, except
//! under `CI=true`, where it fails.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cafe::client::MemcacheClient;
use cafe::client::ketama::Ring;

mod common;
use common::fleet::{Scratch, find_program, free_port};
use common::text::TextConn;
use common::{IO_TIMEOUT, tool};

const LIMIT: Duration = Duration::from_secs(60);

fn script(dir: &Path, args: &[&str]) -> tool::Run {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh");
    // This build's server, so that the script does not build one.
    let server = format!("CAFE_SERVER={}", env!("CARGO_BIN_EXE_cafe-server"));
    let mut all = vec![
        server.as_str(),
        "bash",
        script.to_str().expect("UTF-8 path"),
    ];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-d", dir.to_str().expect("UTF-8 path")]);
    tool::run("env", &all, LIMIT)
}

fn ok(run: &tool::Run, what: &str) {
    assert!(
        run.success,
        "cluster.sh {what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        run.status, run.stdout, run.stderr
    );
}

#[test]
fn cluster_script_starts_reports_and_stops_a_fleet() {
    if find_program("nutcracker").is_none() || find_program("bash").is_none() {
        assert!(
            !tool::in_ci(),
            "nutcracker or bash not found: apt-get install nutcracker"
        );
        eprintln!("SKIPPED cluster_script_starts_reports_and_stops_a_fleet: no nutcracker");
        return;
    }
    let state = Scratch::new("cluster-sh");
    let dir = state.path().join("fleet");
    let (port, proxy) = (free_port(), free_port());
    let (port_s, proxy_s, stats_s) = (port.to_string(), proxy.to_string(), free_port().to_string());
    let start = [
        "start", "-n", "2", "-p", &port_s, "-P", &proxy_s, "-S", &stats_s,
    ];
    let run = script(&dir, &start);
    // Whatever happens next, the fleet is stopped.
    struct Stop<'a>(&'a Path);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = script(self.0, &["stop"]);
        }
    }
    let _stop = Stop(&dir);
    ok(&run, "start");
    assert!(
        run.stdout
            .contains(&format!("--servers 127.0.0.2:{port},127.0.0.3:{port}"))
    );
    let yml = std::fs::read_to_string(dir.join("nutcracker.yml")).expect("config written");
    for line in [
        "distribution: ketama",
        "hash: md5",
        "auto_eject_hosts: true",
    ] {
        assert!(yml.contains(line), "{line} missing from\n{yml}");
    }

    // A key through the proxy lands where the ring says.
    let specs = [format!("127.0.0.2:{port}"), format!("127.0.0.3:{port}")];
    let ring = Ring::new(&specs);
    let mut conn = TextConn::open(SocketAddr::from(([127, 0, 0, 1], proxy)));
    for i in 0..20 {
        assert_eq!(conn.call(format!("set fleet:{i} 0 0 1\r\nv\r\n")), "STORED");
    }
    for (n, spec) in specs.iter().enumerate() {
        let mut c = MemcacheClient::connect(spec.as_str()).expect("connect to a node");
        common::set_timeouts(c.stream(), IO_TIMEOUT);
        for i in 0..20 {
            let key = format!("fleet:{i}");
            let home = ring.server_for(key.as_bytes()).expect("live");
            let held = c.get(key.as_bytes()).expect("get").is_some();
            assert_eq!(held, home == n, "{key} on node {n}, ring says {home}");
        }
    }

    let status = script(&dir, &["status"]);
    ok(&status, "status");
    assert_eq!(
        status.stdout.matches(" yes ").count(),
        3,
        "{}",
        status.stdout
    );

    ok(&script(&dir, &["stop-node", "1"]), "stop-node");
    let status = script(&dir, &["status"]);
    let node1: Vec<&str> = status
        .stdout
        .lines()
        .find(|l| l.starts_with("node1 "))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let want = format!("127.0.0.3:{port}");
    assert_eq!(
        node1.get(2..4),
        Some(&[want.as_str(), "no"][..]),
        "{}",
        status.stdout
    );
    ok(&script(&dir, &["start-node", "1"]), "start-node");
    let status = script(&dir, &["status"]);
    assert_eq!(
        status.stdout.matches(" yes ").count(),
        3,
        "{}",
        status.stdout
    );

    let pids: Vec<String> = ["node0", "node1", "proxy"]
        .iter()
        .map(|p| std::fs::read_to_string(dir.join(format!("{p}.pid"))).expect("pid file"))
        .collect();
    ok(&script(&dir, &["stop"]), "stop");
    for pid in pids {
        // Gone, or a zombie waiting for init to reap it.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
        let alive = stat.is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        });
        assert!(!alive, "process {} still runs after stop", pid.trim());
    }
    // Refuses anything but loopback, and bad input, before starting.
    let bad = script(&dir, &["start", "-n", "0"]);
    assert!(
        !bad.success && bad.stderr.contains("-n must be"),
        "{}",
        bad.stderr
    );
}
