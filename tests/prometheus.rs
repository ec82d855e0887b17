//! A real Prometheus reads cafe: `promtool check metrics` accepts the
//! exposition, and a Prometheus server scraping cafe under load answers a
//! request rate and a `histogram_quantile(0.99, ...)` that agrees with the
//! load generator's own p99.
//!
//! Needs Debian's `prometheus` package (`prometheus`, `promtool`): without
//! it the test prints a notice and passes, except under `CI=true`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cafe::config::Config;
use cafe::server::Server;
use common::{IO_TIMEOUT, set_timeouts};

/// The tool on PATH, or `None` (a failure under CI).
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is missing; .ci/run installs Debian's prometheus package"
        );
        eprintln!("notice: {name} not found; install Debian's prometheus package to run this test");
    }
    found
}

/// A GET over HTTP/1.1, returning the body of a 200 answer.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    set_timeouts(&s, IO_TIMEOUT);
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// A free loopback port for Prometheus's web listener (it cannot be told
/// to pick one and report it).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    l.local_addr().expect("probe address").port()
}

/// Kills the child when dropped, so a failing assertion leaves nothing.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("cafe-prom-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A number in cafe-bench's JSON (the first field of that name).
fn field(json: &str, name: &str) -> f64 {
    json.split(&format!("\"{name}\":"))
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {json}"))
}

/// The first sample's value in a Prometheus instant-query answer.
fn first_value(json: &str) -> Option<f64> {
    // "value":[<time>,"<number>"]
    let at = json.find("\"value\":[")?;
    let rest = &json[at..];
    let quoted = rest.split('"').nth(3)?;
    quoted.parse().ok()
}

fn query(prom: SocketAddr, expr: &str, at: Option<f64>) -> Option<f64> {
    let encoded: String = expr
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let time = at.map_or(String::new(), |t| format!("&time={t:.3}"));
    let body = http_get(prom, &format!("/api/v1/query?query={encoded}{time}"))?;
    first_value(&body)
}

#[test]
fn promtool_accepts_the_exposition_and_prometheus_reads_rate_and_p99() {
    let (Some(promtool), Some(prometheus)) = (tool("promtool"), tool("prometheus")) else {
        return;
    };
    let mut config = Config::ephemeral(2);
    config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = Server::start(config).expect("server starts");
    let admin = server.metrics_addr().expect("metrics listener");
    let cache = server.local_addr().to_string();

    // promtool lints the exposition itself.
    let exposition = http_get(admin, "/metrics").expect("a scrape");
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("feed promtool");
    let out = check.wait_with_output().expect("promtool finishes");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A Prometheus scraping every 500 ms.
    let scratch = Scratch::new();
    let yml = scratch.path().join("prometheus.yml");
    std::fs::write(
        &yml,
        format!(
            "global:\n  scrape_interval: 500ms\n  evaluation_interval: 500ms\n\
             scrape_configs:\n  - job_name: cafe\n    static_configs:\n      - targets: ['{admin}']\n"
        ),
    )
    .expect("write config");
    let web = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let child = Command::new(&prometheus)
        .arg(format!("--config.file={}", yml.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            scratch.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let _reaper = Reaper(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(web, "/-/ready").is_none() {
        assert!(Instant::now() < deadline, "prometheus never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The first scrape can come seconds after readiness: load only once
    // Prometheus sees cafe.
    while query(web, "up{job=\"cafe\"}", None) != Some(1.0) {
        assert!(Instant::now() < deadline, "prometheus never scraped cafe");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Load: text-protocol GETs and SETs at a fixed rate, 5 s.
    let out = Command::new(env!("CARGO_BIN_EXE_cafe-bench"))
        .args(["--server", &cache, "--protocol", "text", "--rate", "3000"])
        .args([
            "--duration",
            "5",
            "--warmup",
            "0.5",
            "--keys",
            "1000",
            "--preload",
        ])
        .args(["--no-pin", "--json"])
        .output()
        .expect("cafe-bench runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    let p99_us = field(&json, "p99");
    let throughput = field(&json, "throughput");
    let load_end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();

    // Wait until Prometheus has scraped the final counts, then ask about
    // the last seconds of the load.
    let final_gets: f64 = http_get(admin, "/metrics")
        .expect("a scrape")
        .lines()
        .filter(|l| l.starts_with("cafe_cmd_get_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    let deadline = Instant::now() + Duration::from_secs(20);
    while query(web, "sum(cafe_cmd_get_total)", None) != Some(final_gets) {
        assert!(
            Instant::now() < deadline,
            "prometheus never scraped the final counts"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let at = Some(load_end - 1.0);
    let rate = query(web, "sum(rate(cafe_cmd_get_total[3s]))", at).unwrap_or_else(|| {
        let series = http_get(web, "/api/v1/query?query=cafe_cmd_get_total%5B10s%5D");
        panic!("no rate at {at:?}; the samples: {series:?}")
    });
    let p99 = query(
        web,
        "histogram_quantile(0.99, sum by (le) (rate(cafe_request_duration_seconds_bucket{command=\"get\"}[3s])))",
        at,
    )
    .expect("a p99");
    eprintln!(
        "prometheus: get rate {rate:.0}/s, server p99 {:.0} µs; cafe-bench p99 {p99_us:.0} µs",
        p99 * 1e6
    );
    // About 90% of the requests are GETs.
    let expected = 0.9 * throughput;
    assert!(
        rate > 0.3 * expected && rate < 3.0 * expected,
        "get rate {rate}/s against about {expected}/s sent"
    );
    // The server's time is part of the client's, and the 1-2-5 buckets
    // can read up to 2.5 times high: agreement within that, plus a
    // millisecond for a loaded CI machine.
    let server_us = p99 * 1e6;
    assert!(server_us > 0.0);
    assert!(
        server_us <= 2.5 * p99_us + 1_000.0,
        "server p99 {server_us} µs against cafe-bench's {p99_us} µs"
    );
}
