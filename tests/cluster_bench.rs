//! `cafe-bench --servers`: a fleet of three in-process cafe servers driven
//! through the ketama ring, in the memcached binary and text protocols,
//! closed and open loop, preloaded and every hit verified; every key of
//! the run is on exactly the node the ring names. Short runs: the numbers
//! are not checked (benchmarks live in scripts/), only that the load is
//! correct and lands where a ketama client would put it.

use std::process::Command;

use cafe::client::MemcacheClient;
use cafe::client::ketama::Ring;

mod common;
use common::IO_TIMEOUT;
use common::fleet::Fleet;

const KEYS: u32 = 3000;

fn field(json: &str, name: &str) -> f64 {
    json.split(&format!("\"{name}\":"))
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {json}"))
}

/// cafe-bench's key for `id` with its default `--key-size 16`.
fn bench_key(id: u32) -> String {
    format!("key:{id:012}")
}

#[test]
fn bench_drives_a_fleet_through_the_ring() {
    for protocol in ["memcache", "text"] {
        let fleet = Fleet::start(3);
        let servers = fleet.specs().join(",");
        for mode in [["--pipeline", "4"], ["--rate", "3000"]] {
            let out = Command::new(env!("CARGO_BIN_EXE_cafe-bench"))
                .args(["--servers", &servers, "--protocol", protocol])
                .args(["--connections", "4", "--threads", "2", "--no-pin", "--json"])
                .args(["--keys", &KEYS.to_string(), "--value-size", "10-200"])
                .args([
                    "--duration",
                    "0.5",
                    "--warmup",
                    "0.1",
                    "--preload",
                    "--verify",
                ])
                .args(mode)
                .output()
                .expect("cafe-bench runs");
            let json = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{protocol} {mode:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(field(&json, "requests") > 0.0, "{json}");
            assert_eq!(field(&json, "errors"), 0.0, "{json}");
            assert_eq!(field(&json, "verify_failures"), 0.0, "{json}");
            assert_eq!(field(&json, "misses"), 0.0, "preloaded: {json}");
        }

        // Every key sits on the node the ring names, and on no other.
        let ring = Ring::new(&fleet.specs());
        let counts: Vec<u64> = (0..3).map(|i| fleet.curr_items(i)).collect();
        assert_eq!(counts.iter().sum::<u64>(), u64::from(KEYS), "{counts:?}");
        for (n, addr) in fleet.addrs.iter().enumerate() {
            let mut c = MemcacheClient::connect(addr).expect("connect");
            common::set_timeouts(c.stream(), IO_TIMEOUT);
            let keys: Vec<String> = (0..KEYS).map(bench_key).collect();
            for part in keys.chunks(500) {
                let refs: Vec<&[u8]> = part.iter().map(|k| k.as_bytes()).collect();
                for (k, item) in part.iter().zip(c.get_multi(&refs).expect("multi-get")) {
                    let home = ring.server_for(k.as_bytes()).expect("live");
                    assert_eq!(
                        item.is_some(),
                        home == n,
                        "{k} on node {n}, ring says {home}"
                    );
                }
            }
        }
    }
}

#[test]
fn servers_and_server_do_not_mix() {
    let out = Command::new(env!("CARGO_BIN_EXE_cafe-bench"))
        .args(["--servers", "127.0.0.1:1", "--server", "127.0.0.1:2"])
        .output()
        .expect("cafe-bench runs");
    assert!(!out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_cafe-bench"))
        .args(["--servers", "127.0.0.1:1,:x", "--duration", "0.1"])
        .output()
        .expect("cafe-bench runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--servers"));
}
