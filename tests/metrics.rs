//! The admin listener: `GET /metrics` in Prometheus's text format over a
//! real socket, counters that move as commands run on every worker, and
//! bad HTTP that gets 4xx without disturbing the cache.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use cafe::config::Config;
use cafe::server::{Server, ServerHandle};
use common::{IO_TIMEOUT, for_each_worker_count, set_timeouts};

fn start_with_metrics(threads: usize) -> (ServerHandle, SocketAddr) {
    let mut config = Config::ephemeral(threads);
    config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = Server::start(config).expect("server starts");
    let admin = server.metrics_addr().expect("metrics listener runs");
    (server, admin)
}

/// Sends `request` raw and returns (status line, body).
fn http(addr: SocketAddr, request: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to admin");
    set_timeouts(&s, IO_TIMEOUT);
    s.write_all(request).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read reply");
    let text = String::from_utf8(raw).expect("utf-8 reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}

/// Every sample line `name{labels} value`, keyed by `name{labels}`.
fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series and value");
            (series.to_string(), value.parse().expect("numeric value"))
        })
        .collect()
}

/// The sum over workers of a per-worker series.
fn total(samples: &HashMap<String, f64>, name: &str) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{name}{{worker=")))
        .map(|(_, v)| v)
        .sum()
}

fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: cafe\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    samples(&body)
}

#[test]
fn counters_move_as_commands_run_on_every_worker() {
    for_each_worker_count(|threads| {
        let (server, admin) = start_with_metrics(threads);
        let before = scrape(admin);
        assert_eq!(before["cafe_workers"], threads as f64);
        assert_eq!(total(&before, "cafe_cmd_get_total"), 0.0);
        let mut c = common::connect(&server);
        let keys: Vec<String> = (0..40).map(|i| format!("metrics-{i}")).collect();
        for key in &keys {
            c.write_all(format!("set {key} 0 0 1\r\nx\r\n").as_bytes())
                .expect("send");
        }
        let gets: String = keys.iter().map(|k| format!("get {k}\r\n")).collect();
        c.write_all(gets.as_bytes()).expect("send");
        c.write_all(b"get missing\r\nmn\r\n").expect("send");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"MN\r\n") {
            let n = c.read(&mut buf).expect("read replies");
            assert!(n > 0, "server closed");
            got.extend_from_slice(&buf[..n]);
        }
        let after = scrape(admin);
        assert_eq!(total(&after, "cafe_cmd_set_total"), 40.0);
        assert_eq!(total(&after, "cafe_cmd_get_total"), 41.0);
        assert_eq!(total(&after, "cafe_get_hits_total"), 40.0);
        assert_eq!(total(&after, "cafe_curr_items"), 40.0);
        if threads > 1 {
            // The keys spread over the workers, so some were forwarded.
            assert!(total(&after, "cafe_forwarded_total") > 0.0);
            let per_worker = (0..threads)
                .filter(|w| after[&format!("cafe_curr_items{{worker=\"{w}\"}}")] > 0.0)
                .count();
            assert!(per_worker > 1, "items on more than one worker");
        }
    });
}

/// The `_count` of a request-duration class, summed over workers.
fn requests(samples: &HashMap<String, f64>, class: &str) -> f64 {
    let suffix = format!(",command=\"{class}\"}}");
    samples
        .iter()
        .filter(|(k, _)| {
            k.starts_with("cafe_request_duration_seconds_count{") && k.ends_with(&suffix)
        })
        .map(|(_, v)| v)
        .sum()
}

/// Sends `requests` in one write and reads until the reply ends in `last`.
fn pipeline(c: &mut TcpStream, requests: &str, last: &[u8]) {
    c.write_all(requests.as_bytes()).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(last) {
        let n = c.read(&mut buf).expect("read replies");
        assert!(n > 0, "server closed");
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn histograms_count_every_request_exactly_once() {
    for_each_worker_count(|threads| {
        let (server, admin) = start_with_metrics(threads);
        let mut c = common::connect(&server);
        let keys: Vec<String> = (0..24).map(|i| format!("hist-{i}")).collect();
        let mut batch = String::new();
        for key in &keys {
            batch.push_str(&format!("set {key} 0 0 1\r\n7\r\n"));
            batch.push_str(&format!("mg {key} v\r\n"));
            batch.push_str(&format!("incr {key} 1\r\n"));
        }
        // One multi-key get is one request, however many workers it spans.
        batch.push_str(&format!("get {}\r\n", keys.join(" ")));
        for key in &keys[..10] {
            batch.push_str(&format!("delete {key}\r\n"));
        }
        batch.push_str("version\r\nmn\r\n");
        pipeline(&mut c, &batch, b"MN\r\n");
        let m = scrape(admin);
        assert_eq!(requests(&m, "set"), 24.0);
        assert_eq!(requests(&m, "get"), 25.0);
        assert_eq!(requests(&m, "arithmetic"), 24.0);
        assert_eq!(requests(&m, "delete"), 10.0);
        assert_eq!(requests(&m, "other"), 2.0);
        // Each histogram's +Inf bucket is its count, and the buckets
        // never decrease.
        let inf: f64 = m
            .iter()
            .filter(|(k, _)| {
                k.starts_with("cafe_request_duration_seconds_bucket{") && k.contains("le=\"+Inf\"")
            })
            .map(|(_, v)| v)
            .sum();
        assert_eq!(inf, 85.0);
        if threads > 1 {
            let forwarded: f64 = m
                .iter()
                .filter(|(k, _)| k.starts_with("cafe_forward_wait_seconds_count{"))
                .map(|(_, v)| v)
                .sum();
            assert_eq!(forwarded, total(&m, "cafe_forwarded_total"));
            assert!(forwarded > 0.0);
        }
    });
}

#[test]
fn requests_held_for_room_or_sent_twice_are_counted_once() {
    for_each_worker_count(|threads| {
        // 256 KiB of connection memory per worker and values of 60 KiB:
        // the pipeline below holds several times that, so its reads wait
        // for room as the client takes its replies, and at 4 workers every
        // forwarded one is over the 16 KiB reserved and goes twice.
        let mut config = Config::ephemeral(threads);
        config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.connection_memory = Some((256 << 10) * threads as u64);
        config.limits.max_value_len = 64 << 10;
        let server = Server::start(config).expect("server starts");
        let admin = server.metrics_addr().expect("metrics listener runs");
        let mut c = common::connect(&server);
        let keys: Vec<String> = common::spread_keys("held", threads, 8)
            .into_iter()
            .map(|k| String::from_utf8(k).expect("ascii"))
            .collect();
        let big = common::fill(b"held", 60 << 10);
        for key in &keys {
            let mut set = format!("set {key} 0 0 {}\r\n", big.len()).into_bytes();
            set.extend_from_slice(&big);
            set.extend_from_slice(b"\r\n");
            c.write_all(&set).expect("send");
        }
        pipeline(&mut c, "mn\r\n", b"MN\r\n");
        let before = scrape(admin);
        let mut batch = String::new();
        for key in keys.iter().cycle().take(24) {
            batch.push_str(&format!("get {key}\r\nmg {key} v\r\n"));
        }
        batch.push_str("mn\r\n");
        pipeline(&mut c, &batch, b"MN\r\n");
        let m = scrape(admin);
        assert_eq!(requests(&m, "get") - requests(&before, "get"), 48.0);
        assert_eq!(requests(&m, "other") - requests(&before, "other"), 1.0);
        if threads > 1 {
            // A forwarded read is sent again once it comes back deferred,
            // but waits, and is timed, once.
            let deferred = total(&m, "cafe_deferred_for_peers_total");
            assert!(deferred > 0.0, "values over the reservation go twice");
            let waits: f64 = m
                .iter()
                .filter(|(k, _)| k.starts_with("cafe_forward_wait_seconds_count{"))
                .map(|(_, v)| v)
                .sum();
            assert_eq!(waits, total(&m, "cafe_forwarded_total") - deferred);
        }
    });
}

#[test]
fn bad_http_gets_4xx_and_the_cache_is_undisturbed() {
    let (server, admin) = start_with_metrics(2);
    let mut c = common::connect(&server);
    c.write_all(b"set kept 0 0 4\r\nsafe\r\n").expect("send");
    let cases: [(&[u8], &str); 4] = [
        (b"GET /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
        (
            b"POST /metrics HTTP/1.1\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
        ),
        (b"\x01\x02 garbage\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (
            b"GET /metrics HTTP/1.1\r\nbad header line\r\n\r\n",
            "HTTP/1.1 400 Bad Request",
        ),
    ];
    for (request, want) in cases {
        assert_eq!(http(admin, request).0, want, "{request:?}");
    }
    // An oversized head is refused without being buffered whole.
    let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 16 << 10));
    let (status, _) = http(admin, &huge);
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    c.write_all(b"get kept\r\n").expect("send");
    let mut want = b"STORED\r\nVALUE kept 0 4\r\nsafe\r\nEND\r\n".to_vec();
    let mut got = vec![0u8; want.len()];
    c.read_exact(&mut got).expect("the cache still answers");
    assert_eq!(got, std::mem::take(&mut want));
    assert_eq!(scrape(admin)["cafe_workers"], 2.0);
}
