//! One connection to one server of a fleet, in whichever protocol the
//! cluster speaks: the few calls the cluster client needs, the same over
//! cafe's native protocol and memcached's binary protocol, and which of
//! their errors mean the server is failing.
//!
//! Must not: decide placement or health (the cluster does), or wait on a
//! socket without a timeout (every connection gets its connect and I/O
//! timeouts here, before any request).

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::client::memcache::{Item, MemcacheClient, MemcacheError};
use crate::client::{Client, ClientError};
use crate::protocol::native::{Request, Status, encode_request};

/// The protocol a cluster speaks to its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// cafe's native protocol (cafe servers only).
    Native,
    /// memcached's binary protocol (cafe or memcached servers).
    Memcache,
}

/// Why a request to one server failed.
#[derive(Debug)]
pub enum NodeError {
    /// The connection could not be made within the connect timeout.
    Connect(io::Error),
    /// A native-protocol request failed.
    Native(ClientError),
    /// A memcached binary-protocol request failed.
    Memcache(MemcacheError),
}

impl NodeError {
    /// Whether this says the server (or the way to it) is failing, rather
    /// than that it refused one request: only these count towards
    /// ejection, and they leave the connection unusable.
    pub fn is_failure(&self) -> bool {
        let local = |e: &io::Error| e.kind() == io::ErrorKind::InvalidInput;
        match self {
            NodeError::Connect(_) => true,
            NodeError::Native(e) => match e {
                ClientError::Io(e) => !local(e),
                ClientError::Protocol(_) | ClientError::Closed => true,
                ClientError::Server(_) | ClientError::Unexpected(_) => false,
            },
            NodeError::Memcache(e) => match e {
                MemcacheError::Io(e) => !local(e),
                MemcacheError::Protocol(_)
                | MemcacheError::Unexpected { .. }
                | MemcacheError::Closed => true,
                MemcacheError::Status { .. } => false,
            },
        }
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Connect(e) => write!(f, "connect: {e}"),
            NodeError::Native(e) => e.fmt(f),
            NodeError::Memcache(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NodeError::Connect(e) => Some(e),
            NodeError::Native(e) => Some(e),
            NodeError::Memcache(e) => Some(e),
        }
    }
}

impl From<ClientError> for NodeError {
    fn from(e: ClientError) -> Self {
        NodeError::Native(e)
    }
}

impl From<MemcacheError> for NodeError {
    fn from(e: MemcacheError) -> Self {
        NodeError::Memcache(e)
    }
}

/// A connection to one server.
#[derive(Debug)]
pub(crate) enum Conn {
    Native(Client),
    Memcache(MemcacheClient),
}

fn refused(msg: &'static str) -> NodeError {
    NodeError::Native(ClientError::Io(io::Error::new(
        io::ErrorKind::InvalidInput,
        msg,
    )))
}

impl Conn {
    /// Connects within `connect_timeout`; every later read and write waits
    /// at most `io_timeout`.
    pub(crate) fn open(
        addr: SocketAddr,
        protocol: Protocol,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Result<Conn, NodeError> {
        let stream =
            TcpStream::connect_timeout(&addr, connect_timeout).map_err(NodeError::Connect)?;
        let setup = || -> io::Result<()> {
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(io_timeout))?;
            stream.set_write_timeout(Some(io_timeout))
        };
        setup().map_err(NodeError::Connect)?;
        Ok(match protocol {
            Protocol::Native => Conn::Native(Client::from_stream(stream)),
            Protocol::Memcache => Conn::Memcache(MemcacheClient::from_stream(stream)),
        })
    }

    pub(crate) fn get(&mut self, key: &[u8]) -> Result<Option<Item>, NodeError> {
        match self {
            Conn::Native(c) => Ok(c.get(key)?.map(|v| Item {
                data: v.data,
                flags: u32::from(v.flags),
                cas: 0,
            })),
            Conn::Memcache(c) => Ok(c.get(key)?),
        }
    }

    /// `exptime` 0 never expires; the native protocol takes it as a TTL in
    /// seconds and carries 16-bit flags only.
    pub(crate) fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
    ) -> Result<(), NodeError> {
        match self {
            Conn::Native(c) => {
                let flags = u16::try_from(flags)
                    .map_err(|_| refused("the native protocol carries 16-bit flags"))?;
                if exptime == 0 {
                    Ok(c.set(key, value, flags)?)
                } else {
                    Ok(c.set_ttl(key, value, flags, exptime)?)
                }
            }
            Conn::Memcache(c) => {
                c.set(key, value, flags, exptime)?;
                Ok(())
            }
        }
    }

    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<bool, NodeError> {
        match self {
            Conn::Native(c) => Ok(c.delete(key)?),
            Conn::Memcache(c) => Ok(c.delete(key)?),
        }
    }

    /// Writes a GET for each key without reading the replies: pair with
    /// [`Conn::recv_gets`] for the same keys.
    pub(crate) fn send_gets(&mut self, keys: &[&[u8]]) -> Result<(), NodeError> {
        match self {
            Conn::Native(c) => {
                let mut out = Vec::new();
                for &key in keys {
                    encode_request(&Request::Get { key }, &mut out)
                        .map_err(|_| refused("a key the native protocol cannot carry"))?;
                }
                Ok(c.send_raw(&out).map_err(ClientError::Io)?)
            }
            Conn::Memcache(c) => Ok(c.send_get_multi(keys)?),
        }
    }

    /// Reads the replies to [`Conn::send_gets`]: hit *i* into `out[i]`.
    pub(crate) fn recv_gets(&mut self, out: &mut [Option<Item>]) -> Result<(), NodeError> {
        match self {
            Conn::Native(c) => {
                let mut refusal = None;
                for slot in out.iter_mut() {
                    let resp = c.read_response()?;
                    match resp.status {
                        Status::Ok => {
                            *slot = Some(Item {
                                data: resp.value,
                                flags: u32::from(resp.flags),
                                cas: 0,
                            })
                        }
                        Status::NotFound => {}
                        Status::Err => {
                            let reason = String::from_utf8_lossy(&resp.value).into_owned();
                            refusal.get_or_insert(ClientError::Server(reason));
                        }
                        other => {
                            refusal.get_or_insert(ClientError::Unexpected(other));
                        }
                    }
                }
                // Every reply is read first, so the connection stays in step.
                refusal.map_or(Ok(()), |e| Err(e.into()))
            }
            Conn::Memcache(c) => Ok(c.recv_get_multi(out)?),
        }
    }
}
