//! Round-trip latency through the blocking client, for a key the
//! connection's own worker owns (executed inline) and for a key another
//! worker owns (one channel hop and wake each way).
//!
//! A quick measurement, not the load generator: one connection, one request
//! in flight. Run: `cargo bench --bench roundtrip [-- ITERATIONS]`.

use std::time::{Duration, Instant};

use cafe::client::Client;
use cafe::config::Config;
use cafe::router::Router;
use cafe::server::Server;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn measure(client: &mut Client, key: &[u8], iterations: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let hit = client.get(key).expect("get");
        samples.push(start.elapsed());
        assert!(hit.is_some(), "the key was stored before measuring");
    }
    samples.sort();
    samples
}

fn report(label: &str, samples: &[Duration]) {
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{label:<28} n={:<7} mean={:>6.1}us p50={:>6.1}us p99={:>6.1}us p99.9={:>6.1}us",
        samples.len(),
        mean.as_secs_f64() * 1e6,
        percentile(samples, 0.50).as_secs_f64() * 1e6,
        percentile(samples, 0.99).as_secs_f64() * 1e6,
        percentile(samples, 0.999).as_secs_f64() * 1e6,
    );
}

fn key_owned_by(router: &Router, owner: usize) -> Vec<u8> {
    (0..)
        .map(|i| format!("rtt:{i}").into_bytes())
        .find(|k| router.owner(k) == owner)
        .expect("some key maps to every owner")
}

fn main() {
    let iterations = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000usize);
    let value = vec![b'v'; 64];

    // One worker: every key is local.
    let server = Server::start(Config::ephemeral(1)).expect("start");
    let mut client = Client::connect(server.local_addr()).expect("connect");
    client.set(b"rtt:0", &value, 0).expect("set");
    measure(&mut client, b"rtt:0", iterations / 10);
    report(
        "threads=1 local",
        &measure(&mut client, b"rtt:0", iterations),
    );
    drop(client);
    drop(server);

    // Two workers: find which one this connection landed on by watching the
    // `forwarded` counter, then time a local and a remote key.
    let server = Server::start(Config::ephemeral(2)).expect("start");
    let mut client = Client::connect(server.local_addr()).expect("connect");
    let router = Router::new(2);
    let keys = [key_owned_by(&router, 0), key_owned_by(&router, 1)];
    for key in &keys {
        client.set(key, &value, 0).expect("set");
    }
    let forwarded = |c: &mut Client| c.stats().ok().and_then(|s| s.get_u64("forwarded"));
    let before = forwarded(&mut client).unwrap_or(0);
    measure(&mut client, &keys[0], 100);
    let after = forwarded(&mut client).unwrap_or(0);
    let (local, remote) = if after - before >= 100 {
        (&keys[1], &keys[0])
    } else {
        (&keys[0], &keys[1])
    };
    measure(&mut client, local, iterations / 10);
    measure(&mut client, remote, iterations / 10);
    report(
        "threads=2 local key",
        &measure(&mut client, local, iterations),
    );
    report(
        "threads=2 cross-worker key",
        &measure(&mut client, remote, iterations),
    );
}
