//! memcached's text and meta protocols on the wire, by hand: a connection
//! that sends raw bytes and reads replies line by line (`VALUE` blocks,
//! `STAT` lists, meta replies with their optional data block), and the
//! servers the text and meta tests run against.
//!
//! Nothing here goes through cafe's own text codec, so a bug its encoder and
//! decoder share cannot hide from the tests that use this.
//!
//! Every expected reply in those tests was checked against memcached 1.6
//! itself. To check them again, run the test files against a memcached:
//!
//! ```sh
//! memcached -l 127.0.0.1 -p 22199 -t 1 -U 0 &
//! CAFE_TEXT_SERVER=127.0.0.1:22199 cargo test --test text_protocol \
//!     --test meta_protocol -- --test-threads=1
//! ```
//!
//! One test at a time, because they share that server's key space and some
//! flush it. Tests that need cafe's manual clock, its native protocol or
//! its own stats group say so and pass without running there.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;

use cafe::clock::ManualClock;
use cafe::config::Config;
use cafe::protocol::native::Limits;
use cafe::server::{Server, ServerHandle};

use super::memcache::Stats;

/// Names a running memcached-compatible server (`HOST:PORT`) that the text
/// and meta tests run against instead of cafe.
pub const EXTERNAL_SERVER_ENV: &str = "CAFE_TEXT_SERVER";

/// Largest data block a test is willing to read: values are at most 1 MiB
/// here, so a longer one means a broken reply line.
const MAX_BLOCK: usize = 4 << 20;

/// memcached's default limit on an item's value (`-I 1m`); cafe's default
/// `--max-item-size` is the same.
pub const ITEM_LIMIT: usize = 1 << 20;

/// What a test talks to: an in-process cafe, or the external server named
/// by [`EXTERNAL_SERVER_ENV`].
pub struct Target {
    pub addr: SocketAddr,
    /// Workers of the cafe server; for an external server, 4, so that key
    /// sets chosen by [`super::spread_keys`] are the same as at 4 workers.
    pub threads: usize,
    server: Option<ServerHandle>,
    clock: Option<Arc<ManualClock>>,
}

impl Target {
    fn cafe(config: Config, clock: Option<Arc<ManualClock>>) -> Target {
        let threads = config.threads;
        let server = Server::start(config).expect("server starts");
        Target {
            addr: server.local_addr(),
            threads,
            server: Some(server),
            clock,
        }
    }

    /// Whether this is cafe, not an external server.
    pub fn is_cafe(&self) -> bool {
        self.server.is_some()
    }

    /// The in-process server (tests that only run against cafe).
    pub fn server(&self) -> &ServerHandle {
        self.server
            .as_ref()
            .expect("this test runs against cafe only")
    }

    /// A new connection with timeouts.
    pub fn conn(&self) -> TextConn {
        TextConn::open(self.addr)
    }

    /// Moves the server's clock forward (tests started with a clock).
    pub fn advance_secs(&self, secs: u64) {
        self.clock
            .as_ref()
            .expect("this test was started with a manual clock")
            .advance_ms(secs * 1000);
    }

    /// `n` keys `{prefix}{i}` whose owners go round-robin over the workers.
    pub fn keys(&self, prefix: &str, n: usize) -> Vec<String> {
        super::spread_keys(prefix, self.threads, n)
            .into_iter()
            .map(|k| String::from_utf8(k).expect("ASCII keys"))
            .collect()
    }
}

fn external() -> Option<SocketAddr> {
    let addr = std::env::var(EXTERNAL_SERVER_ENV).ok()?;
    Some(
        addr.parse()
            .unwrap_or_else(|e| panic!("{EXTERNAL_SERVER_ENV}={addr}: {e}")),
    )
}

/// The external server, emptied first so that a test finds what a fresh
/// cafe would (and a delayed flush left by an earlier test is replaced).
fn external_target(addr: SocketAddr) -> Target {
    let target = Target {
        addr,
        threads: 4,
        server: None,
        clock: None,
    };
    assert_eq!(target.conn().call("flush_all\r\n"), "OK");
    target
}

/// Runs `test` against cafe at 1 and at 4 workers, or once against the
/// external server.
pub fn each_server(test: impl Fn(&Target)) {
    each_server_with_limits(Limits::default(), test);
}

/// As [`each_server`], with cafe's limits set. An external server must have
/// been started with the same ones.
pub fn each_server_with_limits(limits: Limits, test: impl Fn(&Target)) {
    if let Some(addr) = external() {
        return test(&external_target(addr));
    }
    super::for_each_worker_count(|threads| {
        let mut config = Config::ephemeral(threads);
        config.limits = limits;
        test(&Target::cafe(config, None));
    });
}

/// Runs `test` against cafe with a manual clock, at 1 and at 4 workers. An
/// external server's clock cannot be moved, so there it passes with a
/// notice.
pub fn each_server_with_clock(test: impl Fn(&Target)) {
    if external().is_some() {
        eprintln!("SKIPPED against {EXTERNAL_SERVER_ENV}: needs cafe's manual clock");
        return;
    }
    super::for_each_worker_count(|threads| {
        let clock = Arc::new(ManualClock::new());
        let mut config = Config::ephemeral(threads);
        config.clock = clock.clone();
        test(&Target::cafe(config, Some(clock)));
    });
}

/// Runs `test` against cafe only (it uses cafe's native protocol or its own
/// stats); against an external server it passes with a notice.
pub fn each_cafe_server(test: impl Fn(&Target)) {
    if external().is_some() {
        eprintln!("SKIPPED against {EXTERNAL_SERVER_ENV}: a cafe-only behaviour");
        return;
    }
    super::for_each_worker_count(|threads| test(&Target::cafe(Config::ephemeral(threads), None)));
}

/// One `VALUE` block of a retrieval reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub key: String,
    pub flags: u32,
    pub value: Vec<u8>,
    /// Present for `gets` and `gats`.
    pub cas: Option<u64>,
}

impl Item {
    /// An item as `get` returns it (no cas).
    pub fn new(key: &str, flags: u32, value: &[u8]) -> Item {
        Item {
            key: key.to_string(),
            flags,
            value: value.to_vec(),
            cas: None,
        }
    }

    /// The same item without its cas, to compare all but the cas.
    pub fn without_cas(&self) -> Item {
        Item {
            cas: None,
            ..self.clone()
        }
    }
}

/// One meta reply: its status line taken apart, and its data block if the
/// code was `VA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The whole status line, without `\r\n`.
    pub line: String,
    /// `VA`, `HD`, `EN`, `NF`, `NS`, `EX`, `MN`, `ME`, or the first word of
    /// an error line.
    pub code: String,
    /// The return flags, in the order the server sent them (for `VA`, the
    /// size is not among them).
    pub flags: Vec<String>,
    pub value: Option<Vec<u8>>,
}

impl Meta {
    /// The token of return flag `f` (`c` of `c123` is `123`), if sent.
    pub fn flag(&self, f: char) -> Option<&str> {
        self.flags.iter().find_map(|t| t.strip_prefix(f))
    }

    /// Return flag `f` as a number; panics if it is missing or not one.
    pub fn num(&self, f: char) -> i64 {
        let t = self
            .flag(f)
            .unwrap_or_else(|| panic!("no {f} flag in {:?}", self.line));
        t.parse()
            .unwrap_or_else(|_| panic!("{f}{t} is not a number in {:?}", self.line))
    }

    /// The cas (`c` flag).
    pub fn cas(&self) -> u64 {
        let t = self
            .flag('c')
            .unwrap_or_else(|| panic!("no c flag in {:?}", self.line));
        t.parse()
            .unwrap_or_else(|_| panic!("c{t} is not a cas in {:?}", self.line))
    }

    /// The status line with the token of every flag in `masked` replaced by
    /// `*`, to compare lines whose cas (say) cannot be known.
    pub fn masked(&self, masked: &str) -> String {
        let mut out = self.code.clone();
        if let Some(size) = self.value.as_ref().map(Vec::len) {
            out.push_str(&format!(" {size}"));
        }
        for t in &self.flags {
            out.push(' ');
            match t.chars().next() {
                Some(f) if masked.contains(f) && t.len() > 1 => {
                    out.push(f);
                    out.push('*');
                }
                _ => out.push_str(t),
            }
        }
        out
    }
}

/// A raw client connection with read and write timeouts and TCP_NODELAY,
/// reading through its own buffer.
pub struct TextConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl TextConn {
    pub fn open(addr: SocketAddr) -> TextConn {
        TextConn {
            stream: super::connect_to(addr, super::IO_TIMEOUT),
            buf: Vec::new(),
            pos: 0,
        }
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("send");
        self.stream.flush().expect("flush");
    }

    /// Writes `bytes` from another thread, so that a long pipeline cannot
    /// deadlock with replies nobody reads yet.
    pub fn send_in_background(&self, bytes: Vec<u8>) -> JoinHandle<()> {
        let mut stream = self.stream.try_clone().expect("clone the socket");
        std::thread::spawn(move || stream.write_all(&bytes).expect("pipeline write"))
    }

    /// Reads more bytes into the buffer; 0 at end of stream.
    fn fill(&mut self, what: &str) -> usize {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) => panic!(
                "reading {what}: {e} ({:?}); unread: \"{}\"",
                e.kind(),
                super::escape_cut(&self.buf[self.pos..], 200)
            ),
        }
    }

    /// One reply line, without its `\r\n`. Every line the server sends
    /// ends with `\r\n`.
    pub fn line(&mut self) -> String {
        loop {
            let rest = &self.buf[self.pos..];
            if let Some(i) = rest.iter().position(|&b| b == b'\n') {
                let line = &rest[..i];
                let Some(line) = line.strip_suffix(b"\r") else {
                    panic!("a line ends with \\n alone: \"{}\"", line.escape_ascii());
                };
                let text = String::from_utf8(line.to_vec())
                    .unwrap_or_else(|_| panic!("not UTF-8: \"{}\"", line.escape_ascii()));
                self.pos += i + 1;
                return text;
            }
            if self.fill("a reply line") == 0 {
                panic!(
                    "end of stream before a whole line: \"{}\"",
                    super::escape_cut(&self.buf[self.pos..], 200)
                );
            }
        }
    }

    /// Exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() - self.pos < n {
            if self.fill("a data block") == 0 {
                panic!(
                    "end of stream: wanted {n} bytes, have {}",
                    self.buf.len() - self.pos
                );
            }
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        out
    }

    /// A data block of `n` bytes and its `\r\n`.
    pub fn block(&mut self, n: usize) -> Vec<u8> {
        assert!(n <= MAX_BLOCK, "a {n}-byte block: a broken reply line?");
        let mut data = self.bytes(n + 2);
        let end = data.split_off(n);
        assert_eq!(
            end,
            b"\r\n",
            "a data block ends with \\r\\n: \"{}\"",
            super::escape_cut(&data, 80)
        );
        data
    }

    /// Reads exactly `want` (as many bytes) and checks them.
    pub fn expect(&mut self, want: impl AsRef<[u8]>) {
        let want = want.as_ref();
        let got = self.bytes(want.len());
        if let Some(at) = got.iter().zip(want).position(|(g, w)| g != w) {
            // Long replies: show where they part, not all of them.
            let from = at.saturating_sub(120);
            panic!(
                "replies differ at byte {at}:\n  got: \"{}\"\n want: \"{}\"",
                super::escape_cut(&got[from..], 360),
                super::escape_cut(&want[from..], 360)
            );
        }
    }

    /// Sends one request and returns its one-line reply.
    pub fn call(&mut self, request: impl AsRef<[u8]>) -> String {
        self.send(request);
        self.line()
    }

    /// The server closed gracefully: nothing more is buffered and a read
    /// returns end of stream, not a reset and not more bytes.
    pub fn expect_eof(&mut self) {
        assert_eq!(
            self.buf[self.pos..].escape_ascii().to_string(),
            "",
            "bytes before the end of stream"
        );
        super::expect_eof(&mut self.stream);
    }

    /// Whether a read now finds the connection closed (0, or a reset):
    /// for a close whose timing races the client's own writes.
    pub fn is_closed(&mut self) -> bool {
        if self.pos < self.buf.len() {
            return false;
        }
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
            Err(e) => panic!("waiting for a close: {e} ({:?})", e.kind()),
        }
    }

    /// A retrieval reply: `VALUE` blocks up to `END`.
    pub fn items(&mut self) -> Vec<Item> {
        let mut items = Vec::new();
        loop {
            let line = self.line();
            if line == "END" {
                return items;
            }
            let parts: Vec<&str> = line.split(' ').collect();
            assert!(
                parts[0] == "VALUE" && (parts.len() == 4 || parts.len() == 5),
                "a VALUE line or END: {line:?}"
            );
            let number = |i: usize| -> u64 {
                parts[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("field {i} of {line:?}"))
            };
            let flags = u32::try_from(number(2)).expect("32-bit flags");
            let len = usize::try_from(number(3)).expect("a length");
            let cas = (parts.len() == 5).then(|| number(4));
            let key = parts[1].to_string();
            let value = self.block(len);
            items.push(Item {
                key,
                flags,
                value,
                cas,
            });
        }
    }

    /// Sends a retrieval command and reads its reply.
    pub fn retrieve(&mut self, command: &str) -> Vec<Item> {
        self.send(format!("{command}\r\n"));
        self.items()
    }

    /// `set` with no expiry; checks `STORED`.
    pub fn set(&mut self, key: &str, flags: u32, value: &[u8]) {
        let mut req = format!("set {key} {flags} 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
        assert_eq!(self.call(req), "STORED", "set {key}");
    }

    /// `get` of one key: its value and flags, or `None`.
    pub fn get(&mut self, key: &str) -> Option<(Vec<u8>, u32)> {
        let mut items = self.retrieve(&format!("get {key}"));
        assert!(items.len() <= 1, "one key, {items:?}");
        items.pop().map(|i| {
            assert_eq!(i.key, key);
            (i.value, i.flags)
        })
    }

    /// A `STAT name value` list up to `END`.
    pub fn stat_list(&mut self) -> Stats {
        let mut stats = Stats::default();
        loop {
            let line = self.line();
            if line == "END" {
                return stats;
            }
            let rest = line
                .strip_prefix("STAT ")
                .unwrap_or_else(|| panic!("a STAT line or END: {line:?}"));
            let (name, value) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("STAT name value: {line:?}"));
            assert!(!name.is_empty() && !value.is_empty(), "{line:?}");
            let previous = stats.values.insert(name.to_string(), value.to_string());
            assert!(previous.is_none(), "stat {name} appears twice");
            stats.names.push(name.to_string());
        }
    }

    /// `stats` or `stats GROUP`.
    pub fn stats(&mut self, group: &str) -> Stats {
        let cmd = if group.is_empty() {
            "stats\r\n".to_string()
        } else {
            format!("stats {group}\r\n")
        };
        self.send(cmd);
        self.stat_list()
    }

    /// The server's Unix time, from `stats`.
    pub fn server_time(&mut self) -> u64 {
        self.stats("").get("time")
    }

    /// Checks that every reply owed so far was sent, and nothing more: a
    /// `version` answered next is answered by the very next line.
    pub fn fence(&mut self) {
        let line = self.call("version\r\n");
        assert!(line.starts_with("VERSION "), "the fence's reply: {line:?}");
    }

    /// One meta reply (with its data block after `VA`).
    pub fn meta(&mut self) -> Meta {
        let line = self.line();
        let mut words = line.split(' ');
        let code = words.next().unwrap_or_default().to_string();
        let mut flags: Vec<String> = words.map(str::to_string).collect();
        let value = if code == "VA" {
            assert!(!flags.is_empty(), "VA without a size: {line:?}");
            let size: usize = flags
                .remove(0)
                .parse()
                .unwrap_or_else(|_| panic!("VA size in {line:?}"));
            Some(self.block(size))
        } else {
            None
        };
        Meta {
            line,
            code,
            flags,
            value,
        }
    }

    /// Sends one meta request and reads its reply.
    pub fn meta_call(&mut self, request: impl AsRef<[u8]>) -> Meta {
        self.send(request);
        self.meta()
    }

    /// Sends `mn` and checks that the next reply is its `MN`: what was sent
    /// before it and owed no reply really sent none.
    pub fn meta_fence(&mut self) {
        assert_eq!(self.call("mn\r\n"), "MN", "the fence's reply");
    }
}

/// A storage command with its data block: `{line}\r\n{data}\r\n`.
pub fn with_data(line: &str, data: &[u8]) -> Vec<u8> {
    let mut req = format!("{line}\r\n").into_bytes();
    req.extend_from_slice(data);
    req.extend_from_slice(b"\r\n");
    req
}

/// Standard base64 with padding (RFC 4648), as memcached's `b` flag reads
/// and writes keys.
pub fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
