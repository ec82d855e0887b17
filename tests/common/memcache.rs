//! The memcached binary protocol on the wire, by hand: opcodes and statuses
//! from memcached's `protocol_binary.h`, request frames built byte by byte,
//! and a connection that reads responses byte by byte. Nothing here goes
//! through `cafe::protocol::memcache`, so a bug the codec's encoder and
//! decoder share cannot hide from the tests that use it.

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;

use cafe::server::ServerHandle;

/// Largest response body a test is willing to allocate for: values are at
/// most 1 MiB, so a longer body means a broken header.
pub const MAX_RESPONSE: usize = 1 << 21;

/// Opcodes, from memcached's `protocol_binary.h`.
pub mod op {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const VERBOSITY: u8 = 0x1b;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// Response statuses, from memcached's `protocol_binary.h`.
pub mod status {
    pub const NO_ERROR: u16 = 0x00;
    pub const KEY_ENOENT: u16 = 0x01;
    pub const KEY_EEXISTS: u16 = 0x02;
    pub const E2BIG: u16 = 0x03;
    pub const EINVAL: u16 = 0x04;
    pub const NOT_STORED: u16 = 0x05;
    pub const DELTA_BADVAL: u16 = 0x06;
    pub const UNKNOWN_COMMAND: u16 = 0x81;
}

// ---------------------------------------------------------------------------
// Responses and connections

/// One response as read off the wire. Reading it checks the parts every
/// response shares: magic 0x81, data type 0, extras and key within the body.
#[derive(Clone, PartialEq, Eq)]
pub struct Resp {
    pub opcode: u8,
    pub status: u16,
    pub opaque: u32,
    pub cas: u64,
    pub extras: Vec<u8>,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "op=0x{:02x} status=0x{:02x} opaque=0x{:08x} cas={} extras={:02x?} key=\"{}\" value[{}]=\"{}\"",
            self.opcode,
            self.status,
            self.opaque,
            self.cas,
            self.extras,
            self.key.escape_ascii(),
            self.value.len(),
            super::escape_cut(&self.value, 80)
        )
    }
}

impl Resp {
    /// The same response with another cas, to compare all but the cas.
    pub fn with_cas(&self, cas: u64) -> Resp {
        Resp {
            cas,
            ..self.clone()
        }
    }
}

/// A success with no extras, key or value, and cas 0: NOOP, VERBOSITY,
/// QUIT, FLUSH, DELETE.
pub fn empty(opcode: u8, opaque: u32) -> Resp {
    Resp {
        opcode,
        status: status::NO_ERROR,
        opaque,
        cas: 0,
        extras: Vec::new(),
        key: Vec::new(),
        value: Vec::new(),
    }
}

/// A client connection with timeouts and TCP_NODELAY, so that every write is
/// sent at once as its own segment.
pub struct Conn {
    pub stream: TcpStream,
}

impl Conn {
    pub fn open(server: &ServerHandle) -> Conn {
        Conn {
            stream: super::connect(server),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
        self.stream.flush().expect("flush");
    }

    /// Sends `bytes` one byte per write.
    pub fn dribble(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.send(std::slice::from_ref(b));
        }
    }

    /// Sends `bytes` in chunks of the given sizes, cycled.
    pub fn send_in_chunks(&mut self, bytes: &[u8], sizes: &[usize]) {
        let mut rest = bytes;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            self.send(chunk);
            rest = tail;
        }
    }

    /// Writes `bytes` from another thread, so that a long pipeline cannot
    /// deadlock with replies nobody reads yet.
    pub fn send_in_background(&self, bytes: Vec<u8>) -> JoinHandle<()> {
        let mut stream = self.stream.try_clone().expect("clone the socket");
        std::thread::spawn(move || stream.write_all(&bytes).expect("pipeline write"))
    }

    pub fn read_exact(&mut self, buf: &mut [u8], what: &str) {
        if let Err(e) = self.stream.read_exact(buf) {
            panic!("reading {what}: {e} ({:?})", e.kind());
        }
    }

    pub fn recv(&mut self) -> Resp {
        let mut h = [0u8; 24];
        self.read_exact(&mut h, "a response header");
        assert_eq!(h[0], 0x81, "response magic of {h:02x?}");
        assert_eq!(h[5], 0, "data type of {h:02x?}");
        let key_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let extras_len = usize::from(h[4]);
        let body_len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        assert!(body_len <= MAX_RESPONSE, "response too long: {h:02x?}");
        assert!(
            extras_len + key_len <= body_len,
            "extras and key overflow the body: {h:02x?}"
        );
        let mut body = vec![0; body_len];
        self.read_exact(&mut body, "a response body");
        let value = body.split_off(extras_len + key_len);
        let key = body.split_off(extras_len);
        Resp {
            opcode: h[1],
            status: u16::from_be_bytes([h[6], h[7]]),
            opaque: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
            cas: u64::from_be_bytes(h[16..24].try_into().expect("8 bytes")),
            extras: body,
            key,
            value,
        }
    }

    pub fn call(&mut self, bytes: &[u8]) -> Resp {
        self.send(bytes);
        self.recv()
    }

    /// Sends a NOOP and checks that the next reply is its answer: whatever
    /// was sent before it and owed no reply really sent none.
    pub fn fence(&mut self, opaque: u32) {
        assert_eq!(
            self.call(&req::bare(op::NOOP, opaque)),
            empty(op::NOOP, opaque)
        );
    }

    /// The server closed gracefully: a read returns end of stream, not a
    /// reset and not more bytes.
    pub fn expect_eof(&mut self) {
        super::expect_eof(&mut self.stream);
    }

    /// Reads a STAT reply (frames up to the empty one) and checks every
    /// frame's shape.
    pub fn recv_stats(&mut self, opaque: u32) -> Stats {
        let mut stats = Stats::default();
        loop {
            let r = self.recv();
            let shape = (r.opcode, r.status, r.opaque, r.cas, r.extras.len());
            assert_eq!(shape, (op::STAT, status::NO_ERROR, opaque, 0, 0), "{r:?}");
            if r.key.is_empty() {
                assert!(r.value.is_empty(), "the terminator is empty: {r:?}");
                return stats;
            }
            let name = String::from_utf8(r.key).expect("stat names are UTF-8");
            let value = String::from_utf8(r.value).expect("stat values are UTF-8");
            assert!(!value.is_empty(), "stat {name} has no value");
            let previous = stats.values.insert(name.clone(), value);
            assert!(previous.is_none(), "stat {name} appears twice");
            stats.names.push(name);
        }
    }

    pub fn stats(&mut self, group: &[u8], opaque: u32) -> Stats {
        self.send(&req::stat(group, opaque));
        self.recv_stats(opaque)
    }

    /// The server's Unix time, from STAT `time`.
    pub fn server_time(&mut self) -> u32 {
        let t = self.stats(b"", 0x7147).get("time");
        u32::try_from(t).expect("a Unix time that fits the wire's u32")
    }
}

/// A STAT reply: names in order, and their values.
#[derive(Default)]
pub struct Stats {
    pub names: Vec<String>,
    pub values: HashMap<String, String>,
}

impl Stats {
    pub fn text(&self, name: &str) -> &str {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("no stat {name} among {:?}", self.names))
    }

    pub fn get(&self, name: &str) -> u64 {
        let text = self.text(name);
        text.parse()
            .unwrap_or_else(|_| panic!("stat {name} is not an unsigned integer: {text:?}"))
    }
}

// ---------------------------------------------------------------------------
// Requests, built by hand

/// Request frames, written out from the header layout of
/// `protocol_binary.h`: magic, opcode, key length (u16), extras length (u8),
/// data type, vbucket (u16), body length (u32), opaque (u32), cas (u64),
/// then extras, key and value.
pub mod req {
    use super::op;

    /// A 24-byte header with arbitrary lengths, for frames that break the
    /// rules (the caller sends whatever body it announced).
    pub fn header(
        opcode: u8,
        key_len: u16,
        extras_len: u8,
        body_len: u32,
        opaque: u32,
        cas: u64,
    ) -> Vec<u8> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&[0x80, opcode]);
        h.extend_from_slice(&key_len.to_be_bytes());
        h.extend_from_slice(&[extras_len, 0, 0, 0]);
        h.extend_from_slice(&body_len.to_be_bytes());
        h.extend_from_slice(&opaque.to_be_bytes());
        h.extend_from_slice(&cas.to_be_bytes());
        h
    }

    /// A whole frame whose lengths match its parts.
    pub fn frame(
        opcode: u8,
        opaque: u32,
        cas: u64,
        extras: &[u8],
        key: &[u8],
        value: &[u8],
    ) -> Vec<u8> {
        let key_len = u16::try_from(key.len()).expect("key fits u16");
        let extras_len = u8::try_from(extras.len()).expect("extras fit u8");
        let body = extras.len() + key.len() + value.len();
        let body_len = u32::try_from(body).expect("body fits u32");
        let mut f = header(opcode, key_len, extras_len, body_len, opaque, cas);
        f.extend_from_slice(extras);
        f.extend_from_slice(key);
        f.extend_from_slice(value);
        f
    }

    /// GET, GETQ, GETK or GETKQ.
    pub fn get(opcode: u8, opaque: u32, key: &[u8]) -> Vec<u8> {
        frame(opcode, opaque, 0, &[], key, &[])
    }

    /// SET, ADD, REPLACE or a quiet form: extras are flags and expiry.
    pub fn store(
        opcode: u8,
        opaque: u32,
        cas: u64,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
    ) -> Vec<u8> {
        let mut extras = flags.to_be_bytes().to_vec();
        extras.extend_from_slice(&exptime.to_be_bytes());
        frame(opcode, opaque, cas, &extras, key, value)
    }

    /// A plain SET: no cas, never expires.
    pub fn set(opaque: u32, key: &[u8], value: &[u8], flags: u32) -> Vec<u8> {
        store(op::SET, opaque, 0, key, value, flags, 0)
    }

    /// APPEND, PREPEND or a quiet form: no extras.
    pub fn concat(opcode: u8, opaque: u32, cas: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
        frame(opcode, opaque, cas, &[], key, value)
    }

    /// DELETE or DELETEQ.
    pub fn delete(opcode: u8, opaque: u32, cas: u64, key: &[u8]) -> Vec<u8> {
        frame(opcode, opaque, cas, &[], key, &[])
    }

    /// INCREMENT, DECREMENT or a quiet form: extras are delta, initial and
    /// expiry.
    pub fn arith(
        opcode: u8,
        opaque: u32,
        cas: u64,
        key: &[u8],
        delta: u64,
        initial: u64,
        exptime: u32,
    ) -> Vec<u8> {
        let mut extras = delta.to_be_bytes().to_vec();
        extras.extend_from_slice(&initial.to_be_bytes());
        extras.extend_from_slice(&exptime.to_be_bytes());
        frame(opcode, opaque, cas, &extras, key, &[])
    }

    /// TOUCH or a GAT form: extras are the new expiry.
    pub fn touch(opcode: u8, opaque: u32, key: &[u8], exptime: u32) -> Vec<u8> {
        frame(opcode, opaque, 0, &exptime.to_be_bytes(), key, &[])
    }

    /// FLUSH or FLUSHQ, with or without the optional delay.
    pub fn flush(opcode: u8, opaque: u32, delay: Option<u32>) -> Vec<u8> {
        match delay {
            Some(d) => frame(opcode, opaque, 0, &d.to_be_bytes(), &[], &[]),
            None => frame(opcode, opaque, 0, &[], &[], &[]),
        }
    }

    /// NOOP, VERSION, QUIT or QUITQ: a header alone.
    pub fn bare(opcode: u8, opaque: u32) -> Vec<u8> {
        frame(opcode, opaque, 0, &[], &[], &[])
    }

    pub fn verbosity(opaque: u32, level: u32) -> Vec<u8> {
        frame(op::VERBOSITY, opaque, 0, &level.to_be_bytes(), &[], &[])
    }

    /// STAT; an empty group asks for the general statistics.
    pub fn stat(group: &[u8], opaque: u32) -> Vec<u8> {
        frame(op::STAT, opaque, 0, &[], group, &[])
    }
}
