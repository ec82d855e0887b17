//! A blocking client for the native protocol, for integration tests,
//! benchmarks, tools and the cluster client.
//!
//! This module owns one TCP connection's client side: it encodes requests
//! with [`crate::protocol::native`], reads replies into a reused buffer and
//! turns them into typed results. It must not know anything about the
//! server's internals (it depends only on the codec), and it must not trust
//! the server: a reply's length claim is checked against
//! [`Client::max_response_len`] before it is awaited, and the read buffer
//! grows only as bytes actually arrive.
//!
//! Replies are matched to requests by order alone, as the protocol does. An
//! [`ClientError::Io`], [`ClientError::Protocol`] or [`ClientError::Closed`]
//! can leave the connection between two replies, so after one of them the
//! caller should reconnect; the one exception is a read timeout set through
//! [`Client::stream`], after which the bytes already read are kept and
//! [`Client::read_response`] can simply be called again.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};

pub use super::wire::DEFAULT_MAX_RESPONSE_LEN;
use super::wire::{ReadBuf, ReadError, Wire, connect, owned};
use crate::protocol::native::{
    EncodeError, Request, ResponseError, Status, decode_response, encode_request,
};

/// Largest pipeline written in full before its replies are read. Socket
/// buffers on both ends hold at least this much, so the write completes even
/// if the server has stopped reading; above it, a writer thread keeps
/// writing while this thread drains replies.
const INLINE_PIPELINE_LIMIT: usize = 64 << 10;

/// Why a request did not produce the answer the caller asked for.
#[derive(Debug)]
pub enum ClientError {
    /// The socket failed, timed out, or a request could not be encoded
    /// (`InvalidInput`), or a STATS body was malformed (`InvalidData`).
    Io(io::Error),
    /// The server's bytes cannot be framed as a response, or a response is
    /// over [`Client::max_response_len`].
    Protocol(ResponseError),
    /// The server answered RESP_ERR; this is its reason.
    Server(String),
    /// A well-formed response whose status makes no sense for the request.
    Unexpected(Status),
    /// The server closed the connection before a full response arrived.
    Closed,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "i/o error: {e}"),
            ClientError::Protocol(e) => write!(f, "protocol error: {e}"),
            ClientError::Server(reason) => write!(f, "server error: {reason}"),
            ClientError::Unexpected(status) => {
                write!(f, "unexpected response opcode {}", status.opcode())
            }
            ClientError::Closed => f.write_str("connection closed before a full response"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            ClientError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<ResponseError> for ClientError {
    fn from(e: ResponseError) -> Self {
        ClientError::Protocol(e)
    }
}

/// A value found by [`Client::get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The stored bytes.
    pub data: Vec<u8>,
    /// The flags stored with them.
    pub flags: u16,
}

/// One response, copied out of the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedResponse {
    /// How the request ended.
    pub status: Status,
    /// Stored flags of a GET hit; 0 otherwise.
    pub flags: u16,
    /// GET hit: the value; RESP_ERR: the reason; STATS: the counters.
    pub value: Vec<u8>,
}

impl OwnedResponse {
    /// Turns RESP_ERR into [`ClientError::Server`] and passes every other
    /// response through.
    fn server_error(self) -> Result<OwnedResponse, ClientError> {
        if self.status == Status::Err {
            let reason = String::from_utf8_lossy(&self.value).into_owned();
            return Err(ClientError::Server(reason));
        }
        Ok(self)
    }
}

/// Server-wide counters from [`Client::stats`], by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats(BTreeMap<String, String>);

impl Stats {
    /// Counters already split into names and values.
    pub(crate) fn from_map(map: BTreeMap<String, String>) -> Stats {
        Stats(map)
    }

    /// Parses a STATS body: UTF-8 `name value` lines, each `\n`-terminated.
    fn parse(body: &[u8]) -> Result<Stats, ClientError> {
        let text = std::str::from_utf8(body)
            .map_err(|e| invalid_data(format!("STATS body is not UTF-8: {e}")))?;
        let mut map = BTreeMap::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(' ') else {
                return Err(invalid_data(format!(
                    "STATS line {line:?} is not `name value`"
                )));
            };
            map.insert(name.to_owned(), value.to_owned());
        }
        Ok(Stats(map))
    }

    /// The value of counter `name`, as sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of counter `name`, if it is present and an unsigned integer.
    pub fn get_u64(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }

    /// Every `(name, value)` pair, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many counters there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no counters at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A request the wire cannot express is refused before anything is sent.
fn invalid_input(e: EncodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

fn invalid_data(msg: String) -> ClientError {
    ClientError::Io(io::Error::new(io::ErrorKind::InvalidData, msg))
}

impl From<ReadError> for ClientError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(e) => ClientError::Io(e),
            ReadError::Closed => ClientError::Closed,
        }
    }
}

/// Reads the next native response off `stream` into an owned copy.
fn next_response(
    reader: &mut ReadBuf,
    stream: &TcpStream,
    max_len: usize,
) -> Result<OwnedResponse, ClientError> {
    reader.next(stream, |buf| {
        Ok(owned(decode_response(buf, max_len)?, |frame| {
            OwnedResponse {
                status: frame.status,
                flags: frame.flags,
                value: frame.value.to_vec(),
            }
        }))
    })
}

/// A blocking connection to a cafe server speaking the native protocol.
///
/// Requests are sent one at a time by the typed methods, or many at once by
/// [`Client::pipeline`]. The read and write buffers are reused, so a request
/// allocates only what it returns.
#[derive(Debug)]
pub struct Client {
    wire: Wire,
}

impl Client {
    /// Connects and sets TCP_NODELAY, since every request is written whole
    /// and waiting to coalesce would only add latency.
    pub fn connect(addr: impl ToSocketAddrs) -> Result<Client, ClientError> {
        Ok(Client::from_stream(connect(addr)?))
    }

    /// Wraps a connected stream as is; unlike [`Client::connect`] it leaves
    /// socket options (TCP_NODELAY included) to the caller.
    pub fn from_stream(stream: TcpStream) -> Client {
        Client {
            wire: Wire::new(stream),
        }
    }

    /// The underlying stream, e.g. to set timeouts or shut it down.
    pub fn stream(&self) -> &TcpStream {
        &self.wire.stream
    }

    /// Largest response value this client accepts; a larger claim is
    /// [`ClientError::Protocol`] before any of its body is read.
    pub fn max_response_len(&self) -> usize {
        self.wire.max_response_len
    }

    /// Sets [`Client::max_response_len`].
    pub fn set_max_response_len(&mut self, max: usize) {
        self.wire.max_response_len = max;
    }

    /// Sends one request and returns its response, whatever the status.
    pub fn request(&mut self, req: &Request<'_>) -> Result<OwnedResponse, ClientError> {
        self.wire.wbuf.clear();
        encode_request(req, &mut self.wire.wbuf).map_err(invalid_input)?;
        (&self.wire.stream).write_all(&self.wire.wbuf)?;
        self.read_response()
    }

    /// Looks `key` up: `Some` on a hit, `None` if it does not exist.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Value>, ClientError> {
        let resp = self.request(&Request::Get { key })?.server_error()?;
        match resp.status {
            Status::Ok => Ok(Some(Value {
                data: resp.value,
                flags: resp.flags,
            })),
            Status::NotFound => Ok(None),
            other => Err(ClientError::Unexpected(other)),
        }
    }

    /// Stores `value` under `key` with no expiry.
    pub fn set(&mut self, key: &[u8], value: &[u8], flags: u16) -> Result<(), ClientError> {
        self.store(key, value, flags, None)
    }

    /// Stores `value` under `key` for `ttl_secs` seconds (0: no expiry).
    pub fn set_ttl(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u16,
        ttl_secs: u32,
    ) -> Result<(), ClientError> {
        self.store(key, value, flags, Some(ttl_secs))
    }

    fn store(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u16,
        ttl: Option<u32>,
    ) -> Result<(), ClientError> {
        let req = Request::Set {
            key,
            value,
            flags,
            ttl,
        };
        expect_ok(self.request(&req)?)
    }

    /// Removes `key`; `true` if it existed.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, ClientError> {
        let resp = self.request(&Request::Delete { key })?.server_error()?;
        match resp.status {
            Status::Ok => Ok(true),
            Status::NotFound => Ok(false),
            other => Err(ClientError::Unexpected(other)),
        }
    }

    /// A round trip that touches no key.
    pub fn noop(&mut self) -> Result<(), ClientError> {
        expect_ok(self.request(&Request::Noop)?)
    }

    /// Server-wide counters.
    pub fn stats(&mut self) -> Result<Stats, ClientError> {
        let resp = self.request(&Request::Stats)?.server_error()?;
        match resp.status {
            Status::Ok => Stats::parse(&resp.value),
            other => Err(ClientError::Unexpected(other)),
        }
    }

    /// Starts a batch of requests sent together; see [`Pipeline`].
    pub fn pipeline(&mut self) -> Pipeline<'_> {
        self.wire.wbuf.clear();
        Pipeline {
            client: self,
            expected: 0,
            invalid: None,
        }
    }

    /// Writes `bytes` as they are, for tests that hand-make frames.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        (&self.wire.stream).write_all(bytes)
    }

    /// Reads the next response, whatever the status. Bytes that arrived
    /// beyond it stay buffered for the next call.
    pub fn read_response(&mut self) -> Result<OwnedResponse, ClientError> {
        let w = &mut self.wire;
        next_response(&mut w.reader, &w.stream, w.max_response_len)
    }
}

fn expect_ok(resp: OwnedResponse) -> Result<(), ClientError> {
    match resp.server_error()?.status {
        Status::Ok => Ok(()),
        other => Err(ClientError::Unexpected(other)),
    }
}

/// Requests queued to be sent together by [`Pipeline::execute`], which
/// returns one [`OwnedResponse`] per request, in order. Statuses are not
/// interpreted: a RESP_ERR is a response like any other.
///
/// A pipeline of any size is safe: above a small size it writes from a
/// second thread while this one reads, so a server that stops reading a
/// connection whose replies pile up cannot deadlock it.
pub struct Pipeline<'c> {
    client: &'c mut Client,
    expected: usize,
    /// The first request that could not be encoded; `execute` reports it
    /// instead of sending anything.
    invalid: Option<io::Error>,
}

impl fmt::Debug for Pipeline<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("requests", &self.expected)
            .field("bytes", &self.client.wire.wbuf.len())
            .field("invalid", &self.invalid)
            .finish()
    }
}

impl Pipeline<'_> {
    /// Queues any request.
    pub fn request(&mut self, req: &Request<'_>) -> &mut Self {
        if let Err(e) = encode_request(req, &mut self.client.wire.wbuf) {
            self.invalid.get_or_insert(invalid_input(e));
        }
        self.expected += 1;
        self
    }

    /// Queues a GET.
    pub fn get(&mut self, key: &[u8]) -> &mut Self {
        self.request(&Request::Get { key })
    }

    /// Queues a SET with no expiry.
    pub fn set(&mut self, key: &[u8], value: &[u8], flags: u16) -> &mut Self {
        self.request(&Request::Set {
            key,
            value,
            flags,
            ttl: None,
        })
    }

    /// Queues a SET that expires after `ttl_secs` seconds (0: never).
    pub fn set_ttl(&mut self, key: &[u8], value: &[u8], flags: u16, ttl_secs: u32) -> &mut Self {
        self.request(&Request::Set {
            key,
            value,
            flags,
            ttl: Some(ttl_secs),
        })
    }

    /// Queues a DELETE.
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.request(&Request::Delete { key })
    }

    /// Queues a NOOP.
    pub fn noop(&mut self) -> &mut Self {
        self.request(&Request::Noop)
    }

    /// Queues a STATS.
    pub fn stats(&mut self) -> &mut Self {
        self.request(&Request::Stats)
    }

    /// Queues hand-made bytes that the caller expects exactly one response
    /// to. Bytes that draw more or fewer responses desynchronise the
    /// pipeline (and may make `execute` wait for a response that never
    /// comes, unless the stream has a read timeout).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.client.wire.wbuf.extend_from_slice(bytes);
        self.expected += 1;
        self
    }

    /// Requests queued so far.
    pub fn len(&self) -> usize {
        self.expected
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.expected == 0
    }

    /// Sends every queued request and reads one response for each, in order.
    ///
    /// On an error the connection's place in the reply stream is unknown; if
    /// the error came after a writer thread started, the socket has also been
    /// shut down (that is what unblocks the other thread), so later calls fail.
    pub fn execute(self) -> Result<Vec<OwnedResponse>, ClientError> {
        if let Some(e) = self.invalid {
            return Err(ClientError::Io(e));
        }
        let n = self.expected;
        let Wire {
            stream,
            reader,
            wbuf,
            max_response_len,
        } = &mut self.client.wire;
        let max = *max_response_len;
        let stream: &TcpStream = stream;
        let mut out = Vec::with_capacity(n);
        if wbuf.len() <= INLINE_PIPELINE_LIMIT {
            let mut w = stream;
            w.write_all(wbuf)?;
            for _ in 0..n {
                out.push(next_response(reader, stream, max)?);
            }
            return Ok(out);
        }
        let wbuf: &[u8] = wbuf;
        std::thread::scope(|s| {
            // `&TcpStream` is both Read and Write, and a socket may be read
            // and written from two threads at once, so no clone is needed.
            let writer = s.spawn(move || {
                let mut w = stream;
                let res = w.write_all(wbuf);
                if res.is_err() {
                    // Wakes the reader, which would otherwise wait for
                    // replies to requests that were never sent.
                    let _ = stream.shutdown(Shutdown::Both);
                }
                res
            });
            let mut read = Ok(());
            for _ in 0..n {
                match next_response(reader, stream, max) {
                    Ok(resp) => out.push(resp),
                    Err(e) => {
                        // Wakes the writer if it is blocked on a server that
                        // has stopped reading; the connection is unusable
                        // anyway.
                        let _ = stream.shutdown(Shutdown::Both);
                        read = Err(e);
                        break;
                    }
                }
            }
            let wrote = match writer.join() {
                Ok(res) => res,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            // The reader's error is the more telling one: a server that
            // answers a framing error and closes makes the writer fail too,
            // with a bare EPIPE.
            read?;
            wrote?;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::MIN_READ_BUF;
    use super::super::wire::testing::model_server;
    use super::*;
    use crate::protocol::Decoded;
    use crate::protocol::native::{Limits, Response, decode_request, encode_response};
    use std::collections::HashMap;
    use std::net::TcpListener;
    use std::time::Duration;

    /// A model of the native protocol's five requests.
    fn connect_model() -> Client {
        let mut map: HashMap<Vec<u8>, (Vec<u8>, u16)> = HashMap::new();
        Client::from_stream(model_server(move |input, out| {
            let mut at = 0;
            while let Ok(Decoded::Complete { frame, consumed }) =
                decode_request(&input[at..], &Limits::default())
            {
                let (status, flags, value): (Status, u16, &[u8]) = match frame {
                    Request::Get { key } => match map.get(key) {
                        Some((v, f)) => (Status::Ok, *f, v),
                        None => (Status::NotFound, 0, b""),
                    },
                    Request::Set {
                        key, value, flags, ..
                    } => {
                        map.insert(key.to_vec(), (value.to_vec(), flags));
                        (Status::Ok, 0, b"")
                    }
                    Request::Delete { key } => match map.remove(key) {
                        Some(_) => (Status::Ok, 0, b""),
                        None => (Status::NotFound, 0, b""),
                    },
                    Request::Noop => (Status::Ok, 0, b""),
                    Request::Stats => (Status::Ok, 0, b"pid 1\ncurr_items 2\n"),
                };
                encode_response(
                    &Response {
                        status,
                        flags,
                        value,
                    },
                    out,
                );
                at += consumed;
            }
            at
        }))
    }

    #[test]
    fn typed_calls_against_a_model() {
        let mut c = connect_model();
        assert_eq!(c.get(b"k").expect("get"), None);
        c.set(b"k", b"v1", 7).expect("set");
        assert_eq!(
            c.get(b"k").expect("get"),
            Some(Value {
                data: b"v1".to_vec(),
                flags: 7
            })
        );
        c.set_ttl(b"k", b"v2", 0, 60).expect("set_ttl");
        assert!(c.delete(b"k").expect("delete"));
        assert!(!c.delete(b"k").expect("delete"));
        c.noop().expect("noop");
        let stats = c.stats().expect("stats");
        assert_eq!(stats.get_u64("curr_items"), Some(2));
        assert_eq!(stats.get("pid"), Some("1"));
        assert_eq!(stats.iter().count(), 2);
    }

    #[test]
    fn huge_pipeline_does_not_deadlock() {
        let mut c = connect_model();
        let value = vec![0xAB; 1024];
        let n = 20_000;
        let mut p = c.pipeline();
        // Heavy in both directions, so that written-but-unread requests and
        // unread replies overflow the socket buffers together.
        for i in 0..n {
            let key = format!("key{i}");
            p.set(key.as_bytes(), &value, 1).get(key.as_bytes());
        }
        assert_eq!(p.len(), 2 * n);
        let resps = p.execute().expect("execute");
        assert_eq!(resps.len(), 2 * n);
        for pair in resps.chunks(2) {
            assert_eq!(pair[0].status, Status::Ok);
            assert_eq!((pair[1].flags, &pair[1].value), (1, &value));
        }
        // The connection is still in step afterwards.
        assert_eq!(c.get(b"key0").expect("get").map(|v| v.flags), Some(1));
    }

    #[test]
    fn small_pipeline_and_empty_pipeline() {
        let mut c = connect_model();
        assert!(c.pipeline().execute().expect("empty").is_empty());
        let mut p = c.pipeline();
        p.set(b"a", b"1", 0).get(b"a").delete(b"a").get(b"a").noop();
        let statuses: Vec<Status> = p
            .execute()
            .expect("execute")
            .into_iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(
            statuses,
            [
                Status::Ok,
                Status::Ok,
                Status::Ok,
                Status::NotFound,
                Status::Ok
            ]
        );
    }

    #[test]
    fn unencodable_key_is_refused_locally() {
        let mut c = connect_model();
        let key = vec![b'k'; 70_000];
        match c.get(&key) {
            Err(ClientError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidInput),
            other => panic!("{other:?}"),
        }
        let mut p = c.pipeline();
        p.get(&key).noop();
        assert!(matches!(p.execute(), Err(ClientError::Io(_))));
        // Nothing was sent, so the connection is still usable.
        c.noop().expect("noop");
    }

    #[test]
    fn server_that_never_reads_or_answers_fails_instead_of_hanging() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let conn = listener.accept();
            // Hold the socket open, unread, until the client is done.
            let _ = rx.recv();
            drop(conn);
        });
        let mut c = Client::connect(addr).expect("connect");
        c.stream()
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut p = c.pipeline();
        let value = vec![0; 64 << 10];
        for i in 0..200 {
            p.set(format!("k{i}").as_bytes(), &value, 0);
        }
        // The reader times out, then shuts the socket so the writer thread,
        // blocked on full buffers, returns too.
        assert!(matches!(p.execute(), Err(ClientError::Io(_))));
        let _ = tx.send(());
        server.join().expect("server");
    }

    #[test]
    fn responses_split_and_coalesced_arbitrarily() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut bytes = Vec::new();
        for i in 0..50u16 {
            let value = vec![i as u8; usize::from(i) * 100];
            encode_response(
                &Response {
                    status: Status::Ok,
                    flags: i,
                    value: &value,
                },
                &mut bytes,
            );
        }
        let expected_len = bytes.len();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().expect("accept");
            sock.set_nodelay(true).expect("nodelay");
            for piece in bytes.chunks(777) {
                sock.write_all(piece).expect("write");
                sock.flush().expect("flush");
            }
        });
        let mut c = Client::connect(addr).expect("connect");
        let mut total = 0;
        for i in 0..50u16 {
            let r = c.read_response().expect("response");
            assert_eq!(r.flags, i);
            assert_eq!(r.value, vec![i as u8; usize::from(i) * 100]);
            total += 12 + r.value.len();
        }
        assert_eq!(total, expected_len);
        assert!(matches!(c.read_response(), Err(ClientError::Closed)));
        server.join().expect("server");
    }

    #[test]
    fn oversized_claim_is_refused_before_allocating() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().expect("accept");
            // A header claiming 4 GiB of value, and nothing after it.
            let mut h = vec![0xCA, 0xFE, 1, 128, 0, 0, 0, 0];
            h.extend_from_slice(&u32::MAX.to_be_bytes());
            sock.write_all(&h).expect("write");
            sock
        });
        let mut c = Client::connect(addr).expect("connect");
        match c.read_response() {
            Err(ClientError::Protocol(ResponseError::TooLarge { len, max })) => {
                assert_eq!(len, u64::from(u32::MAX));
                assert_eq!(max, DEFAULT_MAX_RESPONSE_LEN);
            }
            other => panic!("{other:?}"),
        }
        assert!(c.wire.reader.buf.len() <= MIN_READ_BUF);
        drop(server.join());
    }

    #[test]
    fn stats_body_parsing() {
        let s = Stats::parse(b"pid 42\nversion 0.1.0\n\nbytes 7\n").expect("parse");
        assert_eq!(s.len(), 3);
        assert_eq!(s.get_u64("bytes"), Some(7));
        assert_eq!(s.get_u64("version"), None);
        assert!(Stats::parse(b"novalue\n").is_err());
        assert!(Stats::parse(&[0xFF, b' ', b'1']).is_err());
    }
}
