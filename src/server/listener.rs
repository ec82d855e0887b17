//! Listening sockets: one per worker on the same address, with
//! SO_REUSEPORT, so the kernel spreads new connections over the workers and
//! accepting never needs a shared thread or a lock.
//!
//! Must not: accept or read; the worker loop does that.

use std::io;
use std::net::SocketAddr;

use mio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel queues per listener before refusing.
const BACKLOG: i32 = 1024;

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR lets a restarted server bind while old connections sit
    // in TIME_WAIT; SO_REUSEPORT lets every worker bind the same port.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Binds `count` listeners on `addr`. If `addr` has port 0 the first
/// listener picks a free port and the others join it.
pub(crate) fn bind_all(
    addr: SocketAddr,
    count: usize,
) -> io::Result<(Vec<TcpListener>, SocketAddr)> {
    let first = bind_one(addr)?;
    let local = first.local_addr()?;
    let mut listeners = Vec::with_capacity(count);
    listeners.push(first);
    for _ in 1..count {
        listeners.push(bind_one(local)?);
    }
    Ok((listeners, local))
}
