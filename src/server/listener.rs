//! Listening sockets: one per worker on the same address, with
//! SO_REUSEPORT, so the kernel spreads new connections over the workers and
//! accepting never needs a shared thread or a lock.
//!
//! Must not: accept or read; the worker loop does that.

use std::io;
use std::net::SocketAddr;

use mio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};

/// `backlog`: connections the kernel queues per listener before refusing
/// (Linux caps it at `net.core.somaxconn`).
fn bind_one(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR lets a restarted server bind while old connections sit
    // in TIME_WAIT; SO_REUSEPORT lets every worker bind the same port.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Binds `count` listeners on `addr`. If `addr` has port 0 the first
/// listener picks a free port and the others join it.
pub(crate) fn bind_all(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
) -> io::Result<(Vec<TcpListener>, SocketAddr)> {
    // The configuration keeps it within i32.
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    let first = bind_one(addr, backlog)?;
    let local = first.local_addr()?;
    let mut listeners = Vec::with_capacity(count);
    listeners.push(first);
    for _ in 1..count {
        listeners.push(bind_one(local, backlog)?);
    }
    Ok((listeners, local))
}
