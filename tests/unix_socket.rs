//! The UNIX domain socket (memcached's `-s`): served by the same workers
//! as TCP with the same answers, created with the asked permissions,
//! replacing a stale socket file but never a live server's, and removed
//! when the server stops. Also: several TCP listen addresses (`-l`), and
//! the binary started with memcached's own flags.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use cafe::config::Config;
use cafe::server::{Server, StartError};
use common::process::{listening_addr, spawn_server};
use common::{IO_TIMEOUT, for_each_worker_count};

/// A path for a socket in a directory of its own, removed when dropped.
struct SocketDir(PathBuf);

impl SocketDir {
    fn new(tag: &str) -> SocketDir {
        let dir = std::env::temp_dir().join(format!("cafe-unix-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("socket dir");
        SocketDir(dir)
    }
    fn socket(&self) -> PathBuf {
        self.0.join("cafe.sock")
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends `script` and reads until the reply ends with `last`.
fn exchange(stream: &mut (impl Read + Write), script: &[u8], last: &[u8]) -> Vec<u8> {
    stream.write_all(script).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(last) {
        let n = stream.read(&mut buf).expect("read");
        assert!(
            n > 0,
            "closed early after {:?}",
            got.escape_ascii().to_string()
        );
        got.extend_from_slice(&buf[..n]);
    }
    got
}

fn unix_conn(path: &Path) -> UnixStream {
    let s = UnixStream::connect(path).expect("connect to the UNIX socket");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

#[test]
fn unix_clients_get_the_same_answers_as_tcp_clients() {
    for_each_worker_count(|threads| {
        let dir = SocketDir::new(&format!("same{threads}"));
        let mut config = Config::ephemeral(threads);
        config.unix_socket = Some(dir.socket());
        let server = Server::start(config).expect("server starts");
        let mode = std::fs::metadata(dir.socket())
            .expect("socket file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "memcached's -a default");

        let keys: Vec<String> = (0..16).map(|i| format!("unix-{i}")).collect();
        let mut set_script = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            set_script.extend(format!("set {k} {i} 0 2\r\nv{}\r\n", i % 10).bytes());
        }
        set_script.extend(b"mn\r\n");
        let mut unix = unix_conn(&dir.socket());
        exchange(&mut unix, &set_script, b"MN\r\n");
        let read_script = format!("get {}\r\nmg {} v f t\r\nmn\r\n", keys.join(" "), keys[3]);
        let over_unix = exchange(&mut unix, read_script.as_bytes(), b"MN\r\n");
        let mut tcp = common::connect(&server);
        let over_tcp = exchange(&mut tcp, read_script.as_bytes(), b"MN\r\n");
        assert_eq!(over_unix, over_tcp, "one key space, one set of answers");
        assert!(over_unix.starts_with(b"VALUE unix-0 0 2\r\nv0\r\n"));

        // Many UNIX clients at once are all served.
        let clients: Vec<_> = (0..8).map(|_| unix_conn(&dir.socket())).collect();
        for mut c in clients {
            assert!(
                exchange(
                    &mut c,
                    b"version
",
                    b"
"
                )
                .starts_with(b"VERSION ")
            );
        }
        drop(server);
        assert!(
            !dir.socket().exists(),
            "the socket file goes with the server"
        );
    });
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_live_one_is_in_use() {
    let dir = SocketDir::new("stale");
    // A socket file nobody listens on: what a killed server leaves.
    drop(std::os::unix::net::UnixListener::bind(dir.socket()).expect("bind a stale socket"));
    assert!(dir.socket().exists());
    let mut config = Config::ephemeral(1);
    config.unix_socket = Some(dir.socket());
    config.unix_mode = 0o770;
    let server = Server::start(config.clone()).expect("starts over a stale socket");
    let mode = std::fs::metadata(dir.socket())
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o770);
    let mut c = unix_conn(&dir.socket());
    assert!(exchange(&mut c, b"version\r\n", b"\r\n").starts_with(b"VERSION "));
    // A second server on the same path is refused, and the first serves on.
    match Server::start(config) {
        Err(StartError::UnixInUse(path)) => assert_eq!(path, dir.socket()),
        other => panic!("a second server on a live socket: {other:?}"),
    }
    assert!(exchange(&mut c, b"mn\r\n", b"MN\r\n").ends_with(b"MN\r\n"));
    drop(server);
}

/// A free port on `ip`, for a second listen address.
fn free_port(ip: [u8; 4]) -> u16 {
    let probe = TcpListener::bind(SocketAddr::from((ip, 0))).expect("bind a probe");
    probe.local_addr().expect("probe address").port()
}

#[test]
fn every_listen_address_is_served_by_every_worker() {
    for_each_worker_count(|threads| {
        let mut config = Config::ephemeral(threads);
        let second = SocketAddr::from(([127, 0, 0, 2], free_port([127, 0, 0, 2])));
        config.also_listen = vec![second];
        let server = Server::start(config).expect("server starts");
        let mut a = common::connect(&server);
        exchange(&mut a, b"set both 7 0 3\r\nyes\r\n", b"STORED\r\n");
        let mut b = TcpStream::connect(second).expect("connect to the second address");
        b.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let got = exchange(&mut b, b"get both\r\n", b"END\r\n");
        assert_eq!(got, b"VALUE both 7 3\r\nyes\r\nEND\r\n");
    });
}

#[test]
fn the_binary_runs_from_a_memcached_command_line() {
    let dir = SocketDir::new("flags");
    let socket = dir.socket();
    let p = spawn_server(&[
        "-p",
        "0",
        "-l",
        "127.0.0.1",
        "-m",
        "64",
        "-c",
        "100",
        "-t",
        "2",
        "-I",
        "2m",
        "-U",
        "0",
        "-v",
        "-s",
        socket.to_str().expect("utf-8 path"),
        "--no-pin",
    ]);
    let addr = listening_addr(&p);
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let settings = String::from_utf8(exchange(&mut tcp, b"stats settings\r\n", b"END\r\n"))
        .expect("utf-8 stats");
    for want in [
        "STAT maxbytes 67108864\r\n",
        "STAT maxconns 100\r\n",
        "STAT num_threads 2\r\n",
        "STAT item_size_max 2097152\r\n",
    ] {
        assert!(settings.contains(want), "{want:?} not in {settings}");
    }
    let mut unix = unix_conn(&socket);
    assert!(exchange(&mut unix, b"version\r\n", b"\r\n").starts_with(b"VERSION 1."));
}

#[test]
fn memcached_flags_cafe_does_not_take_are_refused_by_name() {
    for (args, says) in [
        (&["-d"][..], "-d (run as a daemon)"),
        (&["-u", "memcache"], "-u (switch user)"),
        (&["-o", "modern"], "-o (extended options)"),
        (&["-U", "11211"], "UDP is not served"),
        (&["--frobnicate"], "--frobnicate"),
    ] {
        let out = std::process::Command::new(common::process::BIN)
            .args(args)
            .output()
            .expect("run cafe-server");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
