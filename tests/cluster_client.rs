//! The library's cluster client (`cafe::client::Cluster`) over a fleet of
//! in-process cafe servers on loopback ephemeral ports, in both binary
//! protocols:
//!
//! - keys spread evenly, each on exactly the node the ring names, and read
//!   back through the cluster and straight from that node;
//! - placement is libmemcached's: keys written by pylibmc
//!   (`ketama_weighted`, libmemcached itself) are found where the cluster
//!   looks, and keys the cluster wrote are found by pylibmc;
//! - a stopped node costs only its own keys, is ejected after the failure
//!   limit, and rejoins empty when it comes back; a node that accepts but
//!   never answers holds a request no longer than the I/O timeout.
//!
//! The pylibmc check runs `$CAFE_PYTHON` (`.ci/run` installs pylibmc into
//! its virtual environment), else `python3`; without pylibmc it prints a
//! notice and passes, except under `CI=true`, where it fails. The timings
//! printed are the ones `docs/SCALE-OUT.md` quotes; none is asserted
//! beyond "no request outlives its timeouts" (a hang detector).

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use cafe::client::cluster::{EjectPolicy, Protocol, ServerState};
use cafe::client::{Cluster, ClusterConfig, MemcacheClient};

mod common;
use common::fleet::{Fleet, Reaper, assert_balanced, find_program, free_port, wait_until};
use common::{IO_TIMEOUT, tool};

/// The script's exit status when pylibmc is not installed.
const MISSING_MODULE: i32 = 3;

const PROTOCOLS: [Protocol; 2] = [Protocol::Memcache, Protocol::Native];

fn config(protocol: Protocol, io_ms: u64, retry: Duration) -> ClusterConfig {
    ClusterConfig {
        protocol,
        connect_timeout: Duration::from_millis(io_ms),
        io_timeout: Duration::from_millis(io_ms),
        auto_eject: true,
        eject: EjectPolicy {
            failure_limit: 2,
            retry_timeout: retry,
        },
    }
}

fn key(prefix: &str, i: usize) -> Vec<u8> {
    format!("{prefix}{i}").into_bytes()
}

fn value(i: usize) -> Vec<u8> {
    format!("cafe:{i}").into_bytes()
}

/// Which keys of `keys` each node of `addrs` holds, read straight from
/// the node.
fn holdings(addrs: &[std::net::SocketAddr], keys: &[Vec<u8>]) -> Vec<HashSet<usize>> {
    addrs
        .iter()
        .map(|addr| {
            let mut c = MemcacheClient::connect(addr).expect("connect to a node");
            common::set_timeouts(c.stream(), IO_TIMEOUT);
            let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            let mut held = HashSet::new();
            for (chunk, part) in refs.chunks(512).enumerate() {
                for (j, item) in c
                    .get_multi(part)
                    .expect("node multi-get")
                    .iter()
                    .enumerate()
                {
                    if item.is_some() {
                        held.insert(chunk * 512 + j);
                    }
                }
            }
            held
        })
        .collect()
}

/// Asserts every key is on exactly the node `cluster` places it on.
fn assert_placed(cluster: &mut Cluster, fleet: &Fleet, keys: &[Vec<u8>]) {
    let held = holdings(&fleet.addrs, keys);
    let mut wrong = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let want = cluster.server_for(k).expect("a live node");
        let on: Vec<usize> = (0..held.len()).filter(|&n| held[n].contains(&i)).collect();
        if on != [want] {
            wrong.push(format!(
                "{} on {on:?}, ring says {want}",
                String::from_utf8_lossy(k)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} keys misplaced, e.g. {:?}",
        wrong.len(),
        keys.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[test]
fn keys_spread_evenly_and_read_back_from_their_node() {
    for protocol in PROTOCOLS {
        eprintln!("--- {protocol:?}");
        let fleet = Fleet::start(3);
        let mut cluster = Cluster::new(
            &fleet.specs(),
            config(protocol, 2000, Duration::from_secs(30)),
        )
        .expect("cluster");
        let keys: Vec<Vec<u8>> = (0..10_000).map(|i| key("spread:", i)).collect();
        for (i, k) in keys.iter().enumerate() {
            cluster
                .set(k, &value(i), i as u32 & 0xffff, 0)
                .expect("set");
        }
        let counts: Vec<u64> = (0..3).map(|i| fleet.curr_items(i)).collect();
        eprintln!("curr_items per node: {counts:?}");
        assert_eq!(counts.iter().sum::<u64>(), 10_000);
        assert_balanced(&counts, 10_000, 0.25);

        let got = cluster.get_multi(&keys);
        assert!(got.failed.is_empty(), "{:?}", got.errors);
        for (i, item) in got.items.iter().enumerate() {
            let item = item.as_ref().unwrap_or_else(|| panic!("key {i} missed"));
            assert_eq!(item.data, value(i));
            assert_eq!(item.flags, i as u32 & 0xffff);
        }
        assert_eq!(
            cluster.get(&keys[7]).expect("get").map(|v| v.data),
            Some(value(7))
        );
        assert_placed(&mut cluster, &fleet, &keys);
        assert!(cluster.delete(&keys[7]).expect("delete"));
        assert_eq!(cluster.get(&keys[7]).expect("get"), None);
    }
}

#[test]
fn placement_is_libmemcacheds() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/ketama_pylibmc.py");
    let script = script.to_str().expect("a UTF-8 path");
    let python = std::env::var("CAFE_PYTHON").unwrap_or_else(|_| "python3".to_string());
    for nodes in [3, 5] {
        let fleet = Fleet::start(nodes);
        let servers = fleet.specs().join(",");
        let pylibmc = |prefix: &str, mode: &str| {
            let args = [script, "--servers", &servers, "--prefix", prefix];
            let args = [&args[..], &["--count", "4000", mode]].concat();
            tool::run(&python, &args, Duration::from_secs(120))
        };
        let run = pylibmc("lib:", "--write");
        if run.code == Some(MISSING_MODULE) {
            let why = run.stderr.trim();
            assert!(
                !tool::in_ci(),
                "{why} for {python}: .ci/run installs pylibmc into its virtual environment"
            );
            eprintln!("SKIPPED placement_is_libmemcacheds: {why} (pip install pylibmc)");
            return;
        }
        assert!(
            run.success,
            "pylibmc write: {}\n{}\n{}",
            run.status, run.stdout, run.stderr
        );
        eprint!("{}", run.stdout);

        // Where libmemcached put each key is where the cluster looks.
        let mut cluster = Cluster::new(
            &fleet.specs(),
            config(Protocol::Memcache, 2000, Duration::from_secs(30)),
        )
        .expect("cluster");
        let lib_keys: Vec<Vec<u8>> = (0..4000).map(|i| key("lib:", i)).collect();
        assert_placed(&mut cluster, &fleet, &lib_keys);
        let got = cluster.get_multi(&lib_keys);
        let hits = got.items.iter().flatten().count();
        assert_eq!(hits, lib_keys.len(), "the cluster finds what pylibmc wrote");

        // And libmemcached finds what the cluster wrote.
        for i in 0..4000 {
            cluster.set(&key("ours:", i), &value(i), 0, 0).expect("set");
        }
        let run = pylibmc("ours:", "--read");
        assert!(
            run.success,
            "pylibmc read: {}\n{}\n{}",
            run.status, run.stdout, run.stderr
        );
        eprintln!("{nodes} nodes: {}", run.stdout.trim());
    }
}

#[test]
fn a_stopped_node_costs_only_its_keys_then_rejoins_empty() {
    for protocol in PROTOCOLS {
        eprintln!("--- {protocol:?}");
        let retry = Duration::from_secs(3);
        let mut fleet = Fleet::start(3);
        let mut cluster =
            Cluster::new(&fleet.specs(), config(protocol, 200, retry)).expect("cluster");
        let keys: Vec<Vec<u8>> = (0..3000).map(|i| key("fail:", i)).collect();
        let home: Vec<usize> = keys
            .iter()
            .map(|k| cluster.server_for(k).expect("live"))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            cluster.set(k, &value(i), 0, 0).expect("set");
        }

        fleet.stop(1);
        let stopped = Instant::now();

        // A multi-get fails exactly the stopped node's keys.
        let got = cluster.get_multi(&keys);
        let on_1: Vec<usize> = (0..keys.len()).filter(|&i| home[i] == 1).collect();
        assert_eq!(got.failed, on_1, "failed keys are node 1's");
        for (i, item) in got.items.iter().enumerate() {
            if home[i] != 1 {
                assert_eq!(item.as_ref().map(|v| v.data.clone()), Some(value(i)));
            }
        }

        // Single gets: the others' keys all hit; node 1's fail until it is
        // ejected, then move and miss.
        let (mut errors, mut moved_misses, mut slowest) = (1, 0, Duration::ZERO);
        for (i, k) in keys.iter().enumerate() {
            let t = Instant::now();
            let got = cluster.get(k);
            slowest = slowest.max(t.elapsed());
            match (home[i], got) {
                (1, Err(e)) => {
                    assert!(e.is_failure(), "{e}");
                    errors += 1;
                }
                (1, Ok(None)) => moved_misses += 1,
                (1, Ok(Some(_))) => panic!("a key of the stopped node hit"),
                (_, got) => {
                    let got = got.unwrap_or_else(|e| panic!("a live node's key failed: {e}"));
                    assert_eq!(got.map(|v| v.data), Some(value(i)));
                }
            }
        }
        let phase = stopped.elapsed();
        eprintln!(
            "node 1 stopped: {errors} failed requests before ejection, then {moved_misses} \
             misses elsewhere; slowest request {slowest:?}; phase took {phase:?}"
        );
        assert!(matches!(
            cluster.state(1),
            Some(ServerState::Ejected { .. })
        ));
        if phase < retry {
            assert_eq!(errors, 2, "ejected after the failure limit of 2");
        }
        assert!(
            slowest < Duration::from_secs(3),
            "a request hung: {slowest:?}"
        );

        // Writes of node 1's keys go to the survivors while it is out.
        let k1 = on_1[0];
        cluster
            .set(&keys[k1], b"rehashed", 0, 0)
            .expect("set while ejected");
        let now_on = cluster.server_for(&keys[k1]).expect("live");
        assert_ne!(now_on, 1);
        let mut direct = MemcacheClient::connect(fleet.addrs[now_on]).expect("connect");
        common::set_timeouts(direct.stream(), IO_TIMEOUT);
        assert_eq!(
            direct.get(&keys[k1]).expect("direct get").map(|v| v.data),
            Some(b"rehashed".to_vec())
        );

        // Back, empty, on the same port: after the retry timeout it gets its
        // keys again.
        fleet.restart(1);
        let restarted = Instant::now();
        let probe = &keys[on_1[1]];
        wait_until("node 1 to rejoin", retry + IO_TIMEOUT, || {
            cluster.set(probe, b"back", 0, 0).is_ok() && cluster.state(1) == Some(ServerState::Live)
        });
        eprintln!(
            "node 1 rejoined {:?} after its restart",
            restarted.elapsed()
        );
        assert_eq!(cluster.server_for(probe), Some(1));
        let mut direct = MemcacheClient::connect(fleet.addrs[1]).expect("connect");
        common::set_timeouts(direct.stream(), IO_TIMEOUT);
        assert_eq!(
            direct.get(probe).expect("direct").map(|v| v.data),
            Some(b"back".to_vec())
        );
        // Its other keys miss until they are written again (warm-up).
        let cold = &keys[on_1[2]];
        assert_eq!(cluster.get(cold).expect("get"), None);
        cluster.set(cold, b"warm", 0, 0).expect("set");
        assert_eq!(
            cluster.get(cold).expect("get").map(|v| v.data),
            Some(b"warm".to_vec())
        );
        // The others' keys never moved.
        let k0 = (0..keys.len())
            .find(|&i| home[i] == 0)
            .expect("a key on node 0");
        assert_eq!(
            cluster.get(&keys[k0]).expect("get").map(|v| v.data),
            Some(value(k0))
        );
    }
}

#[test]
fn a_node_that_never_answers_holds_a_request_no_longer_than_the_timeout() {
    let fleet = Fleet::start(2);
    // Accepts connections (the kernel completes them) but never reads or
    // answers: a hung server.
    let hung = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut servers = fleet.specs();
    servers.push(hung.local_addr().expect("addr").to_string());
    let io = Duration::from_millis(300);
    let mut cluster = Cluster::new(
        &servers,
        config(
            Protocol::Memcache,
            io.as_millis() as u64,
            Duration::from_secs(60),
        ),
    )
    .expect("cluster");
    let keys: Vec<Vec<u8>> = (0..600).map(|i| key("hung:", i)).collect();
    let home: Vec<usize> = keys
        .iter()
        .map(|k| cluster.server_for(k).expect("live"))
        .collect();
    let on_hung: Vec<usize> = (0..keys.len()).filter(|&i| home[i] == 2).collect();
    let elsewhere: Vec<usize> = (0..keys.len()).filter(|&i| home[i] != 2).collect();
    for &i in &elsewhere {
        cluster.set(&keys[i], &value(i), 0, 0).expect("set");
    }

    // A multi-get returns the others' keys; the hung node's fail after
    // one I/O timeout.
    let t = Instant::now();
    let got = cluster.get_multi(&keys);
    let multi = t.elapsed();
    assert_eq!(got.failed, on_hung);
    assert_eq!(got.items.iter().flatten().count(), elsewhere.len());

    // One more failure ejects it (limit 2); then its keys move, at once.
    let t = Instant::now();
    let err = cluster
        .get(&keys[on_hung[0]])
        .expect_err("the hung node fails");
    let single = t.elapsed();
    assert!(err.is_failure(), "{err}");
    assert!(matches!(
        cluster.state(2),
        Some(ServerState::Ejected { .. })
    ));
    let t = Instant::now();
    assert_eq!(cluster.get(&keys[on_hung[1]]).expect("moved"), None);
    let after = t.elapsed();
    eprintln!(
        "hung node, {io:?} timeouts: multi-get {multi:?}, failing get {single:?}, \
         get after ejection {after:?}"
    );
    for d in [multi, single] {
        assert!(d >= io, "failed before its timeout: {d:?}");
        assert!(
            d < io * 2 + Duration::from_secs(2),
            "held past its timeout: {d:?}"
        );
    }
    drop(hung);
}

/// The cluster client over real memcached nodes: the same spread, and
/// every key read back (its binary client against memcached's own).
#[test]
fn memcached_nodes_serve_the_cluster_client() {
    let Some(memcached) = find_program("memcached") else {
        assert!(
            !tool::in_ci(),
            "memcached not found: apt-get install memcached"
        );
        eprintln!("SKIPPED memcached_nodes_serve_the_cluster_client: memcached not found");
        return;
    };
    let mut nodes = Vec::new();
    let mut specs = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let child = std::process::Command::new(&memcached)
            .args(["-u", "root", "-U", "0", "-t", "1", "-l", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("memcached starts");
        nodes.push(Reaper(child));
        specs.push(format!("127.0.0.1:{port}"));
        wait_until("memcached to listen", IO_TIMEOUT, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }
    let mut cluster = Cluster::new(
        &specs,
        config(Protocol::Memcache, 2000, Duration::from_secs(30)),
    )
    .expect("cluster");
    let keys: Vec<Vec<u8>> = (0..6000).map(|i| key("mc:", i)).collect();
    for (i, k) in keys.iter().enumerate() {
        cluster.set(k, &value(i), 7, 0).expect("set on memcached");
    }
    let counts: Vec<u64> = specs
        .iter()
        .map(|s| common::fleet::text_stat(s.parse().expect("addr"), "curr_items"))
        .collect();
    eprintln!("memcached curr_items per node: {counts:?}");
    assert_balanced(&counts, 6000, 0.25);
    let got = cluster.get_multi(&keys);
    assert!(got.failed.is_empty(), "{:?}", got.errors);
    for (i, item) in got.items.iter().enumerate() {
        let item = item.as_ref().unwrap_or_else(|| panic!("key {i} missed"));
        assert_eq!((item.data.clone(), item.flags), (value(i), 7));
    }
}
