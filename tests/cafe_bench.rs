//! The load generator against a real server (the binary protocols) and a
//! stand-in memcached (the text and meta protocols), closed and open loop,
//! with every GET hit verified. Short runs; the numbers are not checked
//! (benchmarks live in scripts/), only that the load is correct and that
//! the CPU figures agree with each other.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

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

/// A cafe-bench run with `args`, unpinned, its output in JSON.
fn bench_output(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cafe-bench"))
        .args(args)
        .args(["--no-pin", "--json"])
        .output()
        .expect("cafe-bench runs")
}

/// cafe-bench's JSON for a run with `args`, which must succeed.
fn bench(args: &[&str]) -> String {
    let out = bench_output(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs cafe-bench against `addr` in closed and open loop, two threads,
/// values of many sizes, preloaded and verified, and checks the run was
/// clean: no errors, no verify failures, every GET a hit.
fn runs_clean(addr: &str, protocol: &str) {
    for mode in [["--pipeline", "4"], ["--rate", "2000"]] {
        let stdout = bench(
            &[
                &["--server", addr, "--protocol", protocol][..],
                &["--connections", "4", "--threads", "2", "--keys", "500"],
                &["--value-size", "10-300", "--duration", "0.5"],
                &["--warmup", "0.1", "--preload", "--verify"],
                &mode,
            ]
            .concat(),
        );
        assert!(field(&stdout, "requests") > 0.0, "{stdout}");
        assert_eq!(field(&stdout, "errors"), 0.0, "{stdout}");
        assert_eq!(field(&stdout, "verify_failures"), 0.0, "{stdout}");
        // Everything was preloaded: every GET hits.
        assert_eq!(field(&stdout, "misses"), 0.0, "{stdout}");
        assert!(field(&stdout, "hits") > 0.0, "{stdout}");
        // No --server-pid: the loader's CPU only.
        assert!(stdout.contains("\"server_cpu\":null"), "{stdout}");
        assert!(field(&stdout, "loader_cpu_s") > 0.0, "{stdout}");
    }
}

#[test]
fn cafe_bench_runs_both_binary_protocols_and_both_loops_without_errors() {
    let server = start(2);
    let addr = server.local_addr().to_string();
    for protocol in ["memcache", "native"] {
        runs_clean(&addr, protocol);
    }
}

#[test]
fn cafe_bench_runs_the_text_and_meta_protocols_and_both_loops_without_errors() {
    let addr = fake_memcached().to_string();
    for protocol in ["text", "meta"] {
        runs_clean(&addr, protocol);
    }
}

/// A stand-in for memcached's text and meta protocols, as far as
/// cafe-bench speaks them (`get`, `set`, `mg <key> v f`, `ms <key> <len>
/// T0`), one thread per connection over one shared map. Each reply leaves
/// in two writes, cut in its middle, so the loader's parser also meets
/// replies that arrive in pieces.
fn fake_memcached() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let items: Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>> = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let items = Arc::clone(&items);
            std::thread::spawn(move || serve_text(stream, &items));
        }
    });
    addr
}

/// One connection of [`fake_memcached`], until the client closes it.
fn serve_text(stream: TcpStream, items: &Mutex<HashMap<Vec<u8>, Vec<u8>>>) {
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let (mut line, mut reply) = (Vec::new(), Vec::new());
    loop {
        line.clear();
        reply.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let words: Vec<&[u8]> = line.trim_ascii_end().split(|&b| b == b' ').collect();
        let lookup = |key: &[u8]| items.lock().expect("lock").get(key).cloned();
        match words[..] {
            [b"get", key] => {
                if let Some(value) = lookup(key) {
                    reply.extend_from_slice(b"VALUE ");
                    reply.extend_from_slice(key);
                    write!(reply, " 0 {}\r\n", value.len()).expect("vec");
                    reply.extend_from_slice(&value);
                    reply.extend_from_slice(b"\r\n");
                }
                reply.extend_from_slice(b"END\r\n");
            }
            [b"mg", key, b"v", b"f"] => match lookup(key) {
                Some(value) => {
                    write!(reply, "VA {} f0\r\n", value.len()).expect("vec");
                    reply.extend_from_slice(&value);
                    reply.extend_from_slice(b"\r\n");
                }
                None => reply.extend_from_slice(b"EN\r\n"),
            },
            [b"set", key, b"0", b"0", len] | [b"ms", key, len, b"T0"] => {
                let len: usize = std::str::from_utf8(len)
                    .ok()
                    .and_then(|l| l.parse().ok())
                    .expect("a length");
                let mut data = vec![0; len + 2];
                if reader.read_exact(&mut data).is_err() {
                    return;
                }
                assert_eq!(&data[len..], b"\r\n", "the data block's end");
                data.truncate(len);
                items.lock().expect("lock").insert(key.to_vec(), data);
                let stored: &[u8] = if words[0] == b"set" {
                    b"STORED\r\n"
                } else {
                    b"HD\r\n"
                };
                reply.extend_from_slice(stored);
            }
            _ => panic!("unexpected command {:?}", line.escape_ascii().to_string()),
        }
        let (first, second) = reply.split_at(reply.len() / 2);
        if writer.write_all(first).is_err() || writer.write_all(second).is_err() {
            return;
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
    let stdout = bench(&[
        "--server",
        &addr,
        "--connections",
        "2",
        "--rate",
        "1000",
        "--duration",
        "0.6",
        "--warmup",
        "0",
    ]);
    assert_eq!(field(&stdout, "requests"), 0.0, "{stdout}");
    let unanswered = field(&stdout, "unanswered");
    // 1000 req/s for 0.6 s, give or take the first and last interval.
    assert!((590.0..=610.0).contains(&unanswered), "{stdout}");
    let p50 = field(&stdout, "p50");
    assert!((200_000.0..=400_000.0).contains(&p50), "{stdout}");
}

/// Capacity per core: with the server's pid (here this test process, which
/// runs the server's workers), the server's CPU time over the measured
/// window, its CPU per request and requests per CPU second, which must
/// agree with each other and with the requests counted.
#[test]
fn cafe_bench_reports_the_server_cpu_and_capacity_over_the_measured_window() {
    let server = start(2);
    let addr = server.local_addr().to_string();
    let pid = std::process::id().to_string();
    let stdout = bench(&[
        "--server",
        &addr,
        "--connections",
        "4",
        "--pipeline",
        "8",
        "--duration",
        "0.5",
        "--warmup",
        "0.1",
        "--server-pid",
        &pid,
    ]);
    assert!(stdout.contains(&format!("\"pids\":[{pid}]")), "{stdout}");
    let requests = field(&stdout, "requests");
    let cpu_s = field(&stdout, "server_cpu_s");
    let per_request = field(&stdout, "us_per_request");
    let capacity = field(&stdout, "requests_per_cpu_s");
    assert!(requests > 0.0 && cpu_s > 0.0 && capacity > 0.0, "{stdout}");
    // Throughput over the server's busy cores, both over the measured
    // window: requests / CPU seconds when the CPU is sampled on time. Each
    // figure is rounded as printed, hence the percent of slack.
    // The span sampled is the measured one, about 0.5 s and without the
    // warm-up's 0.1 s (short only if a busy machine woke the sampler late).
    let window = field(&stdout, "cpu_window_s");
    assert!(window > 0.0 && window < 0.6, "{stdout}");
    let close = |a: f64, b: f64| (a - b).abs() <= 0.01 * b;
    let throughput = field(&stdout, "throughput");
    assert!(close(throughput, requests / 0.5), "{stdout}");
    assert!(close(capacity, throughput / (cpu_s / window)), "{stdout}");
    assert!(close(per_request, 1e6 / capacity), "{stdout}");
    assert_eq!(field(&stdout, "threads"), 1.0, "{stdout}");
    let loader = field(&stdout, "loader_cpu_s");
    assert!(loader > 0.0, "{stdout}");
    let percent = field(&stdout, "percent");
    assert!((percent - 100.0 * loader / window).abs() < 1.0, "{stdout}");
    assert!(field(&stdout, "busiest_thread_percent") > 0.0, "{stdout}");
    assert!(
        stdout.contains("\"loader_bound\":true") || stdout.contains("\"loader_bound\":false"),
        "{stdout}"
    );
}

/// A pid that names no process fails the run at once, with a message that
/// says so; one whose process exits during the run fails it at the end.
#[test]
fn cafe_bench_refuses_a_server_pid_that_is_not_a_live_process() {
    let server = start(1);
    let addr = server.local_addr().to_string();
    // Above the kernel's largest pid (PID_MAX_LIMIT, 2^22): never a process.
    let out = bench_output(&["--server", &addr, "--server-pid", "999999999"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--server-pid 999999999: no such process"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no report without the CPU asked for");

    let mut short = Command::new("sleep").arg("0.3").spawn().expect("sleep");
    let pid = short.id().to_string();
    let out = bench_output(&[
        "--server",
        &addr,
        "--connections",
        "2",
        "--duration",
        "1.5",
        "--warmup",
        "0",
        "--server-pid",
        &pid,
    ]);
    let _ = short.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("--server-pid {pid}: the process has exited")),
        "{stderr}"
    );
}
