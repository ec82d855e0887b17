//! The text and meta codec's answers checked against a real memcached
//! (Debian's `memcached` package, 1.6.18): every case of `common::text_cases`
//! that memcached should answer alike is sent to it, followed by `mn`, and
//! memcached must answer exactly the codec's error line (nothing when
//! `noreply` hides it) or, for an accepted request, no error at all; the
//! `MN` after it shows that memcached consumed exactly the bytes the codec
//! does. Without memcached on PATH the tests print a notice and pass,
//! except under `CI=true`, where they fail. Another memcached version is
//! reported and not compared: the table is 1.6.18's.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cafe::protocol::text::{Decoded, Limits, TextError, decode_request, response};

mod common;
use common::text_cases::{Check, Want, cases};

/// The version the table was written against.
const VERSION: &[u8] = b"VERSION 1.6.18\r\n";

fn find_memcached() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("memcached"))
        .find(|candidate| candidate.is_file())
}

/// A memcached child on a free loopback port, killed on drop.
struct Memcached {
    child: Child,
    port: u16,
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Memcached {
    /// Starts memcached, or says why not: `None` when it is not installed
    /// (a failure under CI) or is another version.
    fn start() -> Option<Memcached> {
        let Some(bin) = find_memcached() else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "memcached not found: apt-get install memcached");
            eprintln!("memcached not found on PATH: not compared (apt-get install memcached)");
            return None;
        };
        // A port picked free can be taken by another test's memcached
        // before this one binds it; then this one exits and the port
        // answers for the other. Its pid, from `stats`, says whose it is.
        (0..5)
            .find_map(|_| Memcached::start_on_a_free_port(&bin))
            .expect("memcached never listened on a port of its own")
    }

    fn start_on_a_free_port(bin: &std::path::Path) -> Option<Option<Memcached>> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(bin)
            // -u matters only to root, which memcached refuses without it;
            // -A enables `shutdown`, so that its argument is what is checked.
            .args(["-u", "root", "-U", "0", "-A", "-l", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("memcached starts");
        let mut server = Memcached { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if server.child.try_wait().ok().flatten().is_some() {
                return None; // it could not bind: try another port
            }
            assert!(Instant::now() < deadline, "memcached did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Another test's server on this port may also be closing: an error
        // here says, as a foreign pid does, that the port is not ours.
        let pid = format!("STAT pid {}\r\n", server.child.id());
        let ours = server
            .try_exchange(b"stats\r\n", b"END\r\n")
            .is_ok_and(|stats| stats.windows(pid.len()).any(|w| w == pid.as_bytes()));
        if !ours {
            return None;
        }
        let version = server.exchange(b"version\r\n", b"\r\n");
        if version != VERSION {
            eprintln!(
                "memcached answers \"{}\": the table is 1.6.18's, not compared",
                version.escape_ascii()
            );
            return Some(None);
        }
        Some(Some(server))
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        common::set_timeouts(&stream, Duration::from_secs(5));
        stream
    }

    /// Sends `input` on a new connection and reads until the reply ends
    /// with `until` or the connection closes.
    fn exchange(&self, input: &[u8], until: &[u8]) -> Vec<u8> {
        self.try_exchange(input, until)
            .unwrap_or_else(|(reply, e)| {
                panic!("after \"{}\": {e}", common::escape_cut(&reply, 200))
            })
    }

    /// [`Memcached::exchange`], the error (with what arrived before it)
    /// returned.
    fn try_exchange(
        &self,
        input: &[u8],
        until: &[u8],
    ) -> Result<Vec<u8>, (Vec<u8>, std::io::Error)> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| (Vec::new(), e))?;
        common::set_timeouts(&stream, Duration::from_secs(5));
        stream.write_all(input).map_err(|e| (Vec::new(), e))?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 65536];
        while !reply.ends_with(until) {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(e) => return Err((reply, e)),
            }
        }
        Ok(reply)
    }
}

/// An error line a request gets from its parse. A counter holding text,
/// left by an earlier case, is the item's fault, not the request's.
fn is_error_line(line: &[u8]) -> bool {
    let non_numeric = response::NON_NUMERIC
        .strip_suffix(b"\n")
        .unwrap_or_default();
    [&b"ERROR"[..], b"CLIENT_ERROR", b"SERVER_ERROR"]
        .iter()
        .any(|p| line.starts_with(p))
        && line != non_numeric
}

#[test]
fn memcached_answers_every_case_as_the_codec_does() {
    let Some(server) = Memcached::start() else {
        return;
    };
    let mut compared = 0;
    for case in cases() {
        if case.check != Check::Memcached {
            continue;
        }
        let mut input = case.input.clone();
        input.extend_from_slice(b"mn\r\n");
        let reply = server.exchange(&input, b"MN\r\n");
        let shown = common::escape_cut(&case.input, 100);
        match case.want {
            Want::Refused(line, noreply) => {
                let mut want = if noreply { Vec::new() } else { line.to_vec() };
                want.extend_from_slice(b"MN\r\n");
                assert_eq!(
                    reply.escape_ascii().to_string(),
                    want.escape_ascii().to_string(),
                    "input \"{shown}\""
                );
            }
            Want::Frame(_) => {
                assert!(reply.ends_with(b"MN\r\n"), "input \"{shown}\": no MN");
                let errors: Vec<_> = reply
                    .split(|&b| b == b'\n')
                    .filter(|l| is_error_line(l))
                    .collect();
                assert!(
                    errors.is_empty(),
                    "input \"{shown}\": memcached answered \"{}\"",
                    reply.escape_ascii()
                );
            }
            other => panic!("input \"{shown}\": {other:?} cannot be compared"),
        }
        compared += 1;
    }
    assert!(compared > 150, "only {compared} cases compared");
}

#[test]
fn memcached_refuses_values_over_its_limit_as_the_codec_does() {
    let Some(server) = Memcached::start() else {
        return;
    };
    // memcached's 1 MiB item limit counts its item header and key too, so
    // compare well over it.
    let body = vec![b'x'; 2_000_000];
    let large = b"SERVER_ERROR object too large for cache\r\n";
    for (line, noreply, unlink) in [
        (&b"set k 0 0 2000000\r\n"[..], false, true),
        (b"set k 0 0 2000000 noreply\r\n", true, true),
        (b"add k 0 0 2000000\r\n", false, false),
        (b"cas k 0 0 2000000 5\r\n", false, false),
        (b"ms k 2000000 q T0\r\n", false, true),
    ] {
        let mut input = line.to_vec();
        input.extend_from_slice(&body);
        input.extend_from_slice(b"\r\n");
        match decode_request(&input, &Limits::default()) {
            Ok(Decoded::Rejected {
                error:
                    TextError::TooLarge {
                        noreply: n,
                        unlink: u,
                        ..
                    },
                skip,
            }) => {
                assert_eq!((n, u), (noreply, unlink));
                assert_eq!(skip, input.len() as u64);
            }
            other => panic!("{other:?}"),
        }
        input.extend_from_slice(b"mn\r\n");
        let mut want = if noreply { Vec::new() } else { large.to_vec() };
        want.extend_from_slice(b"MN\r\n");
        assert_eq!(server.exchange(&input, b"MN\r\n"), want);
    }
}

#[test]
fn memcached_closes_a_line_it_will_not_wait_for() {
    let Some(server) = Memcached::start() else {
        return;
    };
    let mut stream = server.connect();
    stream.write_all(&[b'x'; 2049]).expect("send");
    common::expect_eof(&mut stream);
}
