//! The load generator against a real server: both protocols, closed and
//! open loop, with every GET hit verified. Short runs; the numbers are not
//! checked (benchmarks live in scripts/), only that the load is correct.

use std::process::Command;

mod common;
use common::start;

fn field(json: &str, name: &str) -> f64 {
    let at = json
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("{name} missing in {json}"));
    let rest = &json[at + name.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {json}"))
}

#[test]
fn cafe_bench_runs_both_protocols_and_both_loops_without_errors() {
    let server = start(2);
    let addr = server.local_addr().to_string();
    for protocol in ["memcache", "native"] {
        for mode in [&["--pipeline", "4"][..], &["--rate", "2000"]] {
            let out = Command::new(env!("CARGO_BIN_EXE_cafe-bench"))
                .args(["--server", &addr, "--protocol", protocol, "--no-pin"])
                .args(["--connections", "4", "--threads", "2", "--keys", "500"])
                .args([
                    "--value-size",
                    "10-300",
                    "--duration",
                    "0.5",
                    "--warmup",
                    "0.1",
                ])
                .args(["--preload", "--verify", "--json"])
                .args(mode)
                .output()
                .expect("cafe-bench runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{protocol} {mode:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(field(&stdout, "requests") > 0.0, "{stdout}");
            assert_eq!(field(&stdout, "errors"), 0.0, "{stdout}");
            assert_eq!(field(&stdout, "verify_failures"), 0.0, "{stdout}");
            // Everything was preloaded: every GET hits.
            assert_eq!(field(&stdout, "misses"), 0.0, "{stdout}");
            assert!(field(&stdout, "hits") > 0.0, "{stdout}");
        }
    }
}

/// Coordinated omission, end to end: against a server that accepts
/// connections and never answers, an open-loop run must not look like a
/// short quiet run. Every request it sent is unanswered, and each one's age
/// at the end is in the latency, so the median is about half the run.
#[test]
fn an_open_loop_run_against_a_silent_server_reports_every_request_unanswered() {
    // The kernel completes the handshakes on its own; nothing reads.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("local addr").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_cafe-bench"))
        .args(["--server", &addr, "--no-pin", "--connections", "2"])
        .args(["--rate", "1000", "--duration", "0.6", "--warmup", "0"])
        .arg("--json")
        .output()
        .expect("cafe-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(field(&stdout, "requests"), 0.0, "{stdout}");
    let unanswered = field(&stdout, "unanswered");
    // 1000 req/s for 0.6 s, give or take the first and last interval.
    assert!((590.0..=610.0).contains(&unanswered), "{stdout}");
    let p50 = field(&stdout, "p50");
    assert!((200_000.0..=400_000.0).contains(&p50), "{stdout}");
}
