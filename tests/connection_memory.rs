//! What connections may make the server hold, over real sockets with tiny
//! budgets: an idle connection holds no input buffer, a partial frame holds
//! what arrived (never what it claims), the connections' budget stops the
//! clients that hold the most while the others are served and every reply
//! still arrives whole, a multi-key read larger than the budget is answered
//! in pieces (at 1 and 4 workers), clients pipelining multi-key reads over
//! a tiny budget get every reply (also behind small windows, each waiting
//! for room the others hold), a large value owned by another worker
//! makes its second trip (also to a client that half-closed), and a
//! connection yields after its requests per turn.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cafe::config::Config;
use cafe::server::ServerHandle;

mod common;
use common::memcache::{op, req};
use common::{Rng, connect, fill, for_each_worker_count, spread_keys};

/// How long a bounded poll waits for a condition before failing.
const POLL_LIMIT: Duration = Duration::from_secs(10);

fn start(threads: usize, connection_memory: u64, max_item: usize) -> ServerHandle {
    common::start_config(Config {
        connection_memory: Some(connection_memory),
        limits: cafe::protocol::native::Limits {
            max_value_len: max_item,
            ..Default::default()
        },
        ..Config::ephemeral(threads)
    })
}

fn stat(server: &ServerHandle, name: &str) -> u64 {
    let stats = common::client(server).stats().expect("stats");
    stats
        .get_u64(name)
        .unwrap_or_else(|| panic!("stat {name} missing"))
}

/// Polls `name` until `ok` holds (bounded), returning the last value.
fn wait_for(server: &ServerHandle, name: &str, ok: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        let value = stat(server, name);
        if ok(value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{name} stuck at {value}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A connection whose receive buffer is 4 KiB.
fn small_window(server: &ServerHandle) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket
        .connect(&server.local_addr().into())
        .expect("connect");
    let stream: TcpStream = socket.into();
    common::set_timeouts(&stream, common::IO_TIMEOUT);
    stream
}

fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("write");
}

/// Reads exactly `expected.len()` bytes and compares them.
fn expect_reply(stream: &mut TcpStream, expected: &[u8]) {
    let mut got = vec![0; expected.len()];
    stream.read_exact(&mut got).expect("read the reply");
    assert!(
        got == expected,
        "reply differs: got \"{}\"",
        common::escape_cut(&got, 200)
    );
}

fn set_text(stream: &mut TcpStream, key: &str, value: &[u8]) {
    send(
        stream,
        format!("set {key} 0 0 {}\r\n", value.len()).as_bytes(),
    );
    send(stream, value);
    send(stream, b"\r\n");
    expect_reply(stream, b"STORED\r\n");
}

/// memcached's text reply to a `get` of `key` holding `value`.
fn value_block(key: &str, value: &[u8]) -> Vec<u8> {
    let mut block = format!("VALUE {key} 0 {}\r\n", value.len()).into_bytes();
    block.extend_from_slice(value);
    block.extend_from_slice(b"\r\n");
    block
}

#[test]
fn idle_connections_hold_no_input_and_partial_frames_only_what_arrived() {
    for_each_worker_count(|threads| {
        let server = start(threads, 64 << 20, 1 << 20);
        // A connection that only ever sent whole requests holds nothing.
        let mut busy = connect(&server);
        for i in 0..50 {
            set_text(&mut busy, &format!("k{i}"), b"v");
        }
        assert_eq!(stat(&server, "read_buf_count"), 0);

        // Forty connections, each with half a command line.
        let mut halves: Vec<TcpStream> = (0..40).map(|_| connect(&server)).collect();
        for c in &mut halves {
            send(c, b"get k");
        }
        wait_for(&server, "read_buf_count", |n| n == 40);
        let bytes = stat(&server, "read_buf_bytes");
        assert!(
            bytes <= 40 * 64,
            "40 five-byte fragments hold {bytes} bytes"
        );

        // A SET that claims a value of 1 MiB - 1 and sends 100 bytes of it:
        // the server holds what arrived, not what was claimed.
        let mut claim = TcpStream::connect(server.local_addr()).expect("connect");
        let value_len = (1 << 20) - 1;
        let extras = [0u8; 8];
        let body = (extras.len() + 1 + value_len) as u32;
        let mut frame = req::header(op::SET, 1, 8, body, 0, 0);
        frame.extend_from_slice(&extras);
        frame.push(b'c');
        frame.extend_from_slice(&[7; 100]);
        send(&mut claim, &frame);
        wait_for(&server, "read_buf_count", |n| n == 41);
        let bytes = stat(&server, "read_buf_bytes");
        assert!(
            bytes < 40 * 64 + 4096,
            "a claimed 1 MiB holds {bytes} bytes"
        );

        // The lines complete; the buffers go.
        for (i, c) in halves.iter_mut().enumerate() {
            send(c, format!("{}\r\n", i % 50).as_bytes());
            expect_reply(
                c,
                &[
                    value_block(&format!("k{}", i % 50), b"v"),
                    b"END\r\n".to_vec(),
                ]
                .concat(),
            );
        }
        drop(claim);
        wait_for(&server, "read_buf_count", |n| n == 0);
        assert_eq!(stat(&server, "read_buf_bytes"), 0);
    });
}

#[test]
fn the_budget_stops_the_clients_that_hold_the_most_and_serves_the_rest() {
    for_each_worker_count(|threads| {
        // Each worker may let its connections hold 256 KiB; values of
        // 60 KiB, so a few replies fill it.
        let per_worker: u64 = 256 << 10;
        let server = start(threads, per_worker * threads as u64, 64 << 10);
        let big = fill(b"0123456789abcdef", 60 << 10);
        let mut setup = connect(&server);
        // One large value per worker, so hogs on any worker read local and
        // forwarded values alike.
        let keys: Vec<String> = spread_keys("big", threads, threads)
            .into_iter()
            .map(|k| String::from_utf8(k).expect("ascii"))
            .collect();
        for key in &keys {
            set_text(&mut setup, key, &big);
        }

        // Hogs: each pipelines 64 GETs of a 60 KiB value (3.8 MiB of
        // replies) and reads nothing. Without the budget each could make
        // the server hold 1 MiB of replies; with it, the total stays near
        // the budget.
        const HOGS: usize = 12;
        const GETS: usize = 64;
        // Small receive buffers, so the kernel cannot take the replies in
        // the server's stead.
        let mut hogs: Vec<TcpStream> = (0..HOGS).map(|_| small_window(&server)).collect();
        for (h, hog) in hogs.iter_mut().enumerate() {
            let key = &keys[h % keys.len()];
            let line = format!("get {key}\r\n").repeat(GETS);
            send(hog, line.as_bytes());
        }
        // The hogs fill the budget (polled: the server serves them as
        // fast as the kernel takes their replies)...
        let limit = per_worker * threads as u64;
        wait_for(&server, "conn_bytes", |held| held >= limit / 2);
        // ...and never much past it: a connection stops once it holds
        // more than the floor every connection may hold (32 KiB), so the
        // total is at most the budget plus that much each.
        let bound = limit + (HOGS as u64 + 2) * (48 << 10);
        let mut peak = 0;
        for _ in 0..20 {
            peak = peak.max(stat(&server, "conn_bytes"));
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            peak <= bound,
            "connections hold {peak} bytes, bound {bound}"
        );

        // A client that reads its replies is served meanwhile.
        let mut probe = connect(&server);
        for i in 0..20 {
            set_text(&mut probe, &format!("small{i}"), b"hello");
            send(&mut probe, format!("get small{i}\r\n").as_bytes());
            expect_reply(
                &mut probe,
                &[
                    value_block(&format!("small{i}"), b"hello"),
                    b"END\r\n".to_vec(),
                ]
                .concat(),
            );
        }

        // Every hog's replies arrive whole once the hogs read: nothing is
        // stuck. (They read together: a hog still waiting for room gets it
        // as the others drain, and not before.)
        let readers: Vec<_> = hogs
            .into_iter()
            .enumerate()
            .map(|(h, mut hog)| {
                let one = [
                    value_block(&keys[h % keys.len()], &big),
                    b"END\r\n".to_vec(),
                ]
                .concat();
                std::thread::spawn(move || {
                    for _ in 0..GETS {
                        expect_reply(&mut hog, &one);
                    }
                })
            })
            .collect();
        for reader in readers {
            reader.join().expect("a hog read all its replies");
        }
        wait_for(&server, "conn_bytes", |held| held < 64 << 10);
    });
}

#[test]
fn a_multi_key_read_larger_than_the_budget_is_answered_whole() {
    for_each_worker_count(|threads| {
        let server = start(threads, (256 << 10) * threads as u64, 64 << 10);
        let big = fill(b"xyz", 60 << 10);
        let mut c = connect(&server);
        let keys: Vec<String> = spread_keys("multi", threads, 4)
            .into_iter()
            .map(|k| String::from_utf8(k).expect("ascii"))
            .collect();
        for key in &keys {
            set_text(&mut c, key, &big);
        }
        // 16 values of 60 KiB in one request: 960 KiB, over three times
        // the worker's budget. The read is suspended and resumed as the
        // client takes its replies, each key answered exactly once.
        let order: Vec<&String> = keys.iter().cycle().take(16).collect();
        let mut line = String::from("get");
        for key in &order {
            line.push(' ');
            line.push_str(key);
        }
        line.push_str("\r\n");
        send(&mut c, line.as_bytes());
        let mut expected = Vec::new();
        for key in &order {
            expected.extend_from_slice(&value_block(key, &big));
        }
        expected.extend_from_slice(b"END\r\n");
        expect_reply(&mut c, &expected);
        // And the connection goes on.
        set_text(&mut c, "after", b"1");
    });
}

/// What one client of [`read_random_pipelines`] does.
struct Pipelines {
    keys: usize,
    max_value: usize,
    rounds: usize,
    /// Requests per pipeline.
    requests: usize,
    /// Keys per `get`, at most.
    max_keys: usize,
    /// An `mg` follows each `get`.
    meta: bool,
}

/// Sets `shape.keys` random values, then sends pipelines of random
/// multi-key reads (and meta reads) of them, checking every reply whole
/// and in order.
fn read_random_pipelines(c: &mut TcpStream, client: u64, shape: &Pipelines) {
    let mut rng = Rng::new(client);
    let keys: Vec<String> = (0..shape.keys).map(|i| format!("c{client}k{i}")).collect();
    let values: Vec<Vec<u8>> = keys
        .iter()
        .map(|_| fill(b"v", 1 + rng.below(shape.max_value)))
        .collect();
    for (key, value) in keys.iter().zip(&values) {
        set_text(c, key, value);
    }
    for _ in 0..shape.rounds {
        let mut pipeline = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..shape.requests {
            pipeline.extend_from_slice(b"get");
            for _ in 0..1 + rng.below(shape.max_keys) {
                let i = rng.below(keys.len());
                pipeline.extend_from_slice(format!(" {}", keys[i]).as_bytes());
                expected.extend_from_slice(&value_block(&keys[i], &values[i]));
            }
            pipeline.extend_from_slice(b"\r\n");
            expected.extend_from_slice(b"END\r\n");
            if shape.meta {
                let i = rng.below(keys.len());
                pipeline.extend_from_slice(format!("mg {} v\r\n", keys[i]).as_bytes());
                expected.extend_from_slice(format!("VA {}\r\n", values[i].len()).as_bytes());
                expected.extend_from_slice(&values[i]);
                expected.extend_from_slice(b"\r\n");
            }
        }
        send(c, &pipeline);
        expect_reply(c, &expected);
    }
}

#[test]
fn clients_pipelining_multi_key_reads_over_a_tiny_budget_get_every_reply() {
    // Three clients on 4 workers with 256 KiB of connection memory per
    // worker, reading values of up to 64 KiB from every worker: local
    // replies wait behind forwarded ones, reads are suspended for room and
    // resumed, large values make their second trip, all at once.
    let threads = 4;
    let server = start(threads, (256 << 10) * threads as u64, 64 << 10);
    let shape = Pipelines {
        keys: 24,
        max_value: 64 << 10,
        rounds: 4,
        requests: 10,
        max_keys: 20,
        meta: true,
    };
    std::thread::scope(|s| {
        for client in 0..3 {
            let (server, shape) = (&server, &shape);
            s.spawn(move || read_random_pipelines(&mut connect(server), client, shape));
        }
    });
    wait_for(&server, "conn_bytes", |held| held < 64 << 10);
}

#[test]
fn a_large_value_owned_by_another_worker_makes_a_second_trip() {
    let threads = 4;
    let server = start(threads, 64 << 20, 1 << 20);
    let mut c = connect(&server);
    let keys: Vec<String> = spread_keys("large", threads, 8)
        .into_iter()
        .map(|k| String::from_utf8(k).expect("ascii"))
        .collect();
    let values: Vec<Vec<u8>> = (0..keys.len())
        .map(|i| fill(format!("{i}:").as_bytes(), 100_000 + i * 1000))
        .collect();
    for (key, value) in keys.iter().zip(&values) {
        set_text(&mut c, key, value);
    }
    // Pipelined, with small values between, so order is checked too.
    let mut pipeline = Vec::new();
    let mut expected = Vec::new();
    for (key, value) in keys.iter().zip(&values) {
        pipeline.extend_from_slice(format!("get {key}\r\nget nothing\r\n").as_bytes());
        expected.extend_from_slice(&value_block(key, value));
        expected.extend_from_slice(b"END\r\nEND\r\n");
    }
    send(&mut c, &pipeline);
    expect_reply(&mut c, &expected);
    // Six of the eight keys live on another worker than any one
    // connection's, and every one of their values is over the 16 KiB a
    // forwarded read reserves.
    assert!(stat(&server, "deferred_for_peers") >= 4);
}

#[test]
fn a_connection_yields_after_its_requests_per_turn() {
    let server = common::start_config(Config {
        reqs_per_event: 2,
        ..Config::ephemeral(1)
    });
    let mut c = connect(&server);
    let mut pipeline = Vec::new();
    let mut expected = Vec::new();
    for i in 0..100 {
        pipeline.extend_from_slice(format!("set y{i} 0 0 2\r\n{:02}\r\n", i).as_bytes());
        expected.extend_from_slice(b"STORED\r\n");
    }
    for i in 0..100 {
        pipeline.extend_from_slice(format!("get y{i}\r\n").as_bytes());
        expected.extend_from_slice(&value_block(&format!("y{i}"), format!("{i:02}").as_bytes()));
        expected.extend_from_slice(b"END\r\n");
    }
    send(&mut c, &pipeline);
    expect_reply(&mut c, &expected);
    // 200 requests at 2 a turn: at least 99 yields, however the reads fell.
    assert!(stat(&server, "conn_yields") >= 99);
}

#[test]
fn a_client_that_half_closes_still_gets_its_large_remote_values() {
    let threads = 4;
    let server = start(threads, 64 << 20, 1 << 20);
    let mut c = connect(&server);
    let keys: Vec<String> = spread_keys("halfclose", threads, 8)
        .into_iter()
        .map(|k| String::from_utf8(k).expect("ascii"))
        .collect();
    let value = fill(b"half", 100_000);
    for key in &keys {
        set_text(&mut c, key, &value);
    }
    let mut pipeline = Vec::new();
    let mut expected = Vec::new();
    for key in &keys {
        pipeline.extend_from_slice(format!("get {key}\r\n").as_bytes());
        expected.extend_from_slice(&value_block(key, &value));
        expected.extend_from_slice(b"END\r\n");
    }
    send(&mut c, &pipeline);
    c.shutdown(std::net::Shutdown::Write).expect("half-close");
    expect_reply(&mut c, &expected);
    common::expect_eof(&mut c);
}

#[test]
fn clients_behind_small_windows_waiting_on_each_others_room_all_finish() {
    // Six clients with 4 KiB receive windows on 2 workers, 144 KiB of
    // connection memory per worker, values of up to 30 KiB (most larger
    // than the reply reserved for a forwarded read, so they come back
    // deferred). Each connection ends up holding replies stuck behind a
    // deferred read, together more than the budget, each waiting for room
    // the others hold: the worker's pass past the budget lets one go at a
    // time. Without it about a third of the runs stalled for good.
    let threads = 2;
    let server = start(threads, (144 << 10) * threads as u64, 32 << 10);
    let shape = Pipelines {
        keys: 16,
        max_value: 30 << 10,
        rounds: 8,
        requests: 6,
        max_keys: 8,
        meta: false,
    };
    std::thread::scope(|s| {
        for client in 0..6 {
            let (server, shape) = (&server, &shape);
            s.spawn(move || read_random_pipelines(&mut small_window(server), client, shape));
        }
    });
    assert!(
        stat(&server, "deferred_for_peers") > 0,
        "no read was deferred"
    );
    wait_for(&server, "conn_bytes", |held| held < 64 << 10);
}
