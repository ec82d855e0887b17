//! A blocking client for the memcached binary protocol: one connection's
//! GET, SET, DELETE, NOOP, VERSION and STAT, and multi-gets pipelined as
//! memcached's own clients send them (GETKQ for each key, then a NOOP whose
//! reply says every hit has arrived).
//!
//! Requests are encoded with [`crate::protocol::memcache::encode_request`]
//! and replies decoded with [`decode_response`]; each request carries an
//! opaque of its own and a reply must echo it with the request's opcode,
//! so a server or proxy that answers out of turn is caught, not believed.
//! A reply's length claim is checked against
//! [`MemcacheClient::max_response_len`] before it is awaited.
//!
//! After an [`MemcacheError::Io`], [`MemcacheError::Protocol`],
//! [`MemcacheError::Unexpected`] or [`MemcacheError::Closed`] the
//! connection's place in the reply stream is unknown: reconnect. A status
//! error ([`MemcacheError::Status`]) leaves it in step.
//!
//! Must not: know the server's internals, or decide what a failure means
//! for a fleet (the cluster client does).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};

use super::native::Stats;
use super::wire::{ReadError, Wire, connect, owned};
use crate::protocol::memcache::{
    Command, Request, ResponseError, StoreMode, decode_response, encode_request, opcode, status,
};

/// Why a request did not produce the answer the caller asked for.
#[derive(Debug)]
pub enum MemcacheError {
    /// The socket failed or timed out, or a request could not be encoded
    /// (`InvalidInput`), or a STAT reply was not text (`InvalidData`).
    Io(io::Error),
    /// The server's bytes cannot be framed as a response, or one is over
    /// [`MemcacheClient::max_response_len`].
    Protocol(ResponseError),
    /// The server answered this status (not success, not a plain miss),
    /// with its message.
    Status {
        /// The status, see [`status`].
        status: u16,
        /// The reply's value: memcached's text for the status.
        message: String,
    },
    /// A reply whose opcode or opaque is not the request's.
    Unexpected {
        /// The reply's opcode.
        opcode: u8,
        /// The reply's opaque.
        opaque: u32,
    },
    /// The server closed the connection before a full response arrived.
    Closed,
}

impl fmt::Display for MemcacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemcacheError::Io(e) => write!(f, "i/o error: {e}"),
            MemcacheError::Protocol(e) => write!(f, "protocol error: {e}"),
            MemcacheError::Status { status, message } => {
                write!(f, "server status 0x{status:04x}: {message}")
            }
            MemcacheError::Unexpected { opcode, opaque } => write!(
                f,
                "reply out of turn (opcode 0x{opcode:02x}, opaque {opaque})"
            ),
            MemcacheError::Closed => f.write_str("connection closed before a full response"),
        }
    }
}

impl std::error::Error for MemcacheError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MemcacheError::Io(e) => Some(e),
            MemcacheError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for MemcacheError {
    fn from(e: io::Error) -> Self {
        MemcacheError::Io(e)
    }
}

impl From<ResponseError> for MemcacheError {
    fn from(e: ResponseError) -> Self {
        MemcacheError::Protocol(e)
    }
}

impl From<ReadError> for MemcacheError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(e) => MemcacheError::Io(e),
            ReadError::Closed => MemcacheError::Closed,
        }
    }
}

/// An item read by GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The stored bytes.
    pub data: Vec<u8>,
    /// The flags stored with them.
    pub flags: u32,
    /// The item's CAS (0 where the protocol has none).
    pub cas: u64,
}

/// One response, copied out of the read buffer.
#[derive(Debug, Clone)]
struct Reply {
    opcode: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Reply {
    fn status_error(&self) -> MemcacheError {
        MemcacheError::Status {
            status: self.status,
            message: String::from_utf8_lossy(&self.value).into_owned(),
        }
    }

    fn item(self) -> Item {
        let flags = match self.extras[..] {
            [a, b, c, d] => u32::from_be_bytes([a, b, c, d]),
            _ => 0,
        };
        Item {
            data: self.value,
            flags,
            cas: self.cas,
        }
    }
}

/// A blocking connection speaking the memcached binary protocol.
#[derive(Debug)]
pub struct MemcacheClient {
    wire: Wire,
    next_opaque: u32,
}

impl MemcacheClient {
    /// Connects and sets TCP_NODELAY (every request is written whole).
    pub fn connect(addr: impl ToSocketAddrs) -> Result<MemcacheClient, MemcacheError> {
        Ok(MemcacheClient::from_stream(connect(addr)?))
    }

    /// Wraps a connected stream as is, socket options left to the caller.
    pub fn from_stream(stream: TcpStream) -> MemcacheClient {
        MemcacheClient {
            wire: Wire::new(stream),
            next_opaque: 0,
        }
    }

    /// The underlying stream, e.g. to set timeouts.
    pub fn stream(&self) -> &TcpStream {
        &self.wire.stream
    }

    /// Largest response body this client accepts; a larger claim is
    /// [`MemcacheError::Protocol`] before any of it is read.
    pub fn max_response_len(&self) -> usize {
        self.wire.max_response_len
    }

    /// Sets [`MemcacheClient::max_response_len`].
    pub fn set_max_response_len(&mut self, max: usize) {
        self.wire.max_response_len = max;
    }

    fn opaque(&mut self) -> u32 {
        self.next_opaque = self.next_opaque.wrapping_add(1);
        self.next_opaque
    }

    /// Appends one request to the write buffer.
    fn queue(&mut self, opcode: u8, opaque: u32, cmd: Command<'_>) -> Result<(), MemcacheError> {
        let req = Request {
            opcode,
            opaque,
            cmd,
        };
        encode_request(&req, &mut self.wire.wbuf)
            .map_err(|e| MemcacheError::Io(io::Error::new(io::ErrorKind::InvalidInput, e)))
    }

    fn flush(&mut self) -> Result<(), MemcacheError> {
        let sent = (&self.wire.stream).write_all(&self.wire.wbuf);
        self.wire.wbuf.clear();
        Ok(sent?)
    }

    fn read_reply(&mut self) -> Result<Reply, MemcacheError> {
        let w = &mut self.wire;
        let max = w.max_response_len;
        w.reader.next(&w.stream, |buf| {
            Ok(owned(decode_response(buf, max)?, |r| Reply {
                opcode: r.opcode,
                status: r.status,
                opaque: r.opaque,
                cas: r.cas,
                extras: r.extras.to_vec(),
                key: r.key.to_vec(),
                value: r.value.to_vec(),
            }))
        })
    }

    /// Sends one request and reads its reply, which must echo the opcode
    /// and opaque.
    fn call(&mut self, opcode: u8, cmd: Command<'_>) -> Result<Reply, MemcacheError> {
        let opaque = self.opaque();
        self.wire.wbuf.clear();
        self.queue(opcode, opaque, cmd)?;
        self.flush()?;
        let reply = self.read_reply()?;
        if reply.opcode != opcode || reply.opaque != opaque {
            return Err(MemcacheError::Unexpected {
                opcode: reply.opcode,
                opaque: reply.opaque,
            });
        }
        Ok(reply)
    }

    /// Looks `key` up: `Some` on a hit, `None` if it does not exist.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Item>, MemcacheError> {
        let reply = self.call(opcode::GET, Command::Get { key })?;
        match reply.status {
            status::NO_ERROR => Ok(Some(reply.item())),
            status::KEY_ENOENT => Ok(None),
            _ => Err(reply.status_error()),
        }
    }

    /// Stores `value` under `key`; `exptime` 0 never expires. Returns the
    /// item's new CAS.
    pub fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
    ) -> Result<u64, MemcacheError> {
        let cmd = Command::Store {
            mode: StoreMode::Set,
            key,
            value,
            flags,
            exptime,
            cas: 0,
        };
        let reply = self.call(opcode::SET, cmd)?;
        match reply.status {
            status::NO_ERROR => Ok(reply.cas),
            _ => Err(reply.status_error()),
        }
    }

    /// Removes `key`; `true` if it existed.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, MemcacheError> {
        let reply = self.call(opcode::DELETE, Command::Delete { key, cas: 0 })?;
        match reply.status {
            status::NO_ERROR => Ok(true),
            status::KEY_ENOENT => Ok(false),
            _ => Err(reply.status_error()),
        }
    }

    /// A round trip that touches no key.
    pub fn noop(&mut self) -> Result<(), MemcacheError> {
        let reply = self.call(opcode::NOOP, Command::Noop)?;
        match reply.status {
            status::NO_ERROR => Ok(()),
            _ => Err(reply.status_error()),
        }
    }

    /// The server's version text.
    pub fn version(&mut self) -> Result<String, MemcacheError> {
        let reply = self.call(opcode::VERSION, Command::Version)?;
        match reply.status {
            status::NO_ERROR => Ok(String::from_utf8_lossy(&reply.value).into_owned()),
            _ => Err(reply.status_error()),
        }
    }

    /// The default STAT group: one reply per counter, then one with an
    /// empty key.
    pub fn stats(&mut self) -> Result<Stats, MemcacheError> {
        let opaque = self.opaque();
        self.wire.wbuf.clear();
        self.queue(opcode::STAT, opaque, Command::Stat { group: b"" })?;
        self.flush()?;
        let mut map = BTreeMap::new();
        loop {
            let reply = self.read_reply()?;
            if reply.opcode != opcode::STAT || reply.opaque != opaque {
                return Err(MemcacheError::Unexpected {
                    opcode: reply.opcode,
                    opaque: reply.opaque,
                });
            }
            if reply.status != status::NO_ERROR {
                return Err(reply.status_error());
            }
            if reply.key.is_empty() {
                return Ok(Stats::from_map(map));
            }
            let text = |b: Vec<u8>| {
                String::from_utf8(b).map_err(|_| {
                    MemcacheError::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "STAT name or value is not UTF-8",
                    ))
                })
            };
            map.insert(text(reply.key)?, text(reply.value)?);
        }
    }

    /// Looks every key up in one round trip; the answer is in `keys`'
    /// order. See [`MemcacheClient::send_get_multi`] for how.
    pub fn get_multi(&mut self, keys: &[&[u8]]) -> Result<Vec<Option<Item>>, MemcacheError> {
        self.send_get_multi(keys)?;
        let mut out = vec![None; keys.len()];
        self.recv_get_multi(&mut out)?;
        Ok(out)
    }

    /// Writes a multi-get without reading its replies: GETKQ for key *i*
    /// with opaque *i* (misses answer nothing), then a NOOP. Pair with
    /// [`MemcacheClient::recv_get_multi`]. The server may stop reading
    /// while its replies go unread, so a caller that sends to several
    /// servers before reading should keep each batch small (the socket
    /// buffers hold 64 KiB of requests whatever the server does).
    pub fn send_get_multi(&mut self, keys: &[&[u8]]) -> Result<(), MemcacheError> {
        self.wire.wbuf.clear();
        for (i, key) in keys.iter().enumerate() {
            let Ok(opaque) = u32::try_from(i) else {
                return Err(MemcacheError::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "more keys than opaques",
                )));
            };
            if let Err(e) = self.queue(opcode::GETKQ, opaque, Command::Get { key }) {
                self.wire.wbuf.clear();
                return Err(e);
            }
        }
        self.queue(opcode::NOOP, u32::MAX, Command::Noop)?;
        self.flush()
    }

    /// Reads the replies to [`MemcacheClient::send_get_multi`] up to its
    /// NOOP, putting hit *i* in `out[i]` (`out` is as long as the keys
    /// sent). A status error for one key (not a miss, which is silent) is
    /// returned once the NOOP has arrived, so the connection stays in step.
    pub fn recv_get_multi(&mut self, out: &mut [Option<Item>]) -> Result<(), MemcacheError> {
        let mut first_error = None;
        loop {
            let reply = self.read_reply()?;
            if reply.opcode == opcode::NOOP && reply.opaque == u32::MAX {
                return first_error.map_or(Ok(()), Err);
            }
            let slot = usize::try_from(reply.opaque)
                .ok()
                .filter(|_| reply.opcode == opcode::GETKQ)
                .and_then(|i| out.get_mut(i));
            let Some(slot) = slot else {
                return Err(MemcacheError::Unexpected {
                    opcode: reply.opcode,
                    opaque: reply.opaque,
                });
            };
            match reply.status {
                status::NO_ERROR => *slot = Some(reply.item()),
                status::KEY_ENOENT => {}
                _ => {
                    first_error.get_or_insert_with(|| reply.status_error());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::testing::model_server;
    use super::*;
    use crate::protocol::Decoded;
    use crate::protocol::memcache::{Limits, Response, decode_request, encode_response};
    use std::collections::HashMap;
    use std::io::Read;
    use std::net::TcpListener;

    /// A model of memcached's binary GET/GETKQ/SET/DELETE/NOOP, enough to
    /// check framing, opaques and quiet misses.
    fn connect_model() -> MemcacheClient {
        let mut map: HashMap<Vec<u8>, (Vec<u8>, u32)> = HashMap::new();
        MemcacheClient::from_stream(model_server(move |input, out| {
            let mut at = 0;
            while let Ok(Decoded::Complete { frame, consumed }) =
                decode_request(&input[at..], &Limits::default())
            {
                at += consumed;
                let mut resp = Response {
                    opcode: frame.opcode,
                    status: status::NO_ERROR,
                    opaque: frame.opaque,
                    cas: 0,
                    extras: &[],
                    key: &[],
                    value: &[],
                };
                let flags;
                match frame.cmd {
                    Command::Get { key } => match map.get(key) {
                        Some((v, f)) => {
                            flags = f.to_be_bytes();
                            resp.extras = &flags;
                            resp.value = v;
                            if frame.returns_key() {
                                resp.key = key;
                            }
                        }
                        None if frame.is_quiet() => continue,
                        None => resp.status = status::KEY_ENOENT,
                    },
                    Command::Store {
                        key, value, flags, ..
                    } => {
                        map.insert(key.to_vec(), (value.to_vec(), flags));
                        resp.cas = 7;
                    }
                    Command::Delete { key, .. } => {
                        if map.remove(key).is_none() {
                            resp.status = status::KEY_ENOENT;
                        }
                    }
                    Command::Noop => {}
                    _ => resp.status = status::UNKNOWN_COMMAND,
                }
                encode_response(&resp, out);
            }
            at
        }))
    }

    #[test]
    fn typed_calls_against_a_model() {
        let mut c = connect_model();
        assert_eq!(c.get(b"k").expect("get"), None);
        assert_eq!(c.set(b"k", b"v", 0xdead_beef, 0).expect("set"), 7);
        let item = c.get(b"k").expect("get").expect("hit");
        assert_eq!((item.data.as_slice(), item.flags), (&b"v"[..], 0xdead_beef));
        assert!(c.delete(b"k").expect("delete"));
        assert!(!c.delete(b"k").expect("delete"));
        c.noop().expect("noop");
        match c.version() {
            Err(MemcacheError::Status { status, .. }) => {
                assert_eq!(status, status::UNKNOWN_COMMAND)
            }
            other => panic!("{other:?}"),
        }
        // A status error leaves the connection in step.
        c.noop().expect("noop after a status error");
    }

    #[test]
    fn multi_get_fills_hits_by_opaque_and_skips_misses() {
        let mut c = connect_model();
        for i in (0..300).step_by(3) {
            c.set(format!("k{i}").as_bytes(), &[i as u8], i, 0)
                .expect("set");
        }
        let keys: Vec<Vec<u8>> = (0..300).map(|i| format!("k{i}").into_bytes()).collect();
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let got = c.get_multi(&refs).expect("get_multi");
        for (i, item) in got.iter().enumerate() {
            match item {
                Some(item) => {
                    assert_eq!(i % 3, 0);
                    assert_eq!((item.data[0], item.flags), (i as u8, i as u32));
                }
                None => assert_ne!(i % 3, 0, "k{i} missed"),
            }
        }
        assert!(c.get_multi(&[]).expect("empty").is_empty());
        c.noop().expect("in step");
    }

    #[test]
    fn a_reply_out_of_turn_is_caught() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().expect("accept");
            let mut buf = [0; 24];
            sock.read_exact(&mut buf).expect("request");
            let mut out = Vec::new();
            let reply = Response {
                opcode: opcode::NOOP,
                status: 0,
                opaque: 999,
                cas: 0,
                extras: &[],
                key: &[],
                value: &[],
            };
            encode_response(&reply, &mut out);
            sock.write_all(&out).expect("write");
            sock
        });
        let mut c = MemcacheClient::connect(addr).expect("connect");
        match c.noop() {
            Err(MemcacheError::Unexpected { opaque: 999, .. }) => {}
            other => panic!("{other:?}"),
        }
        drop(server.join());
    }
}
