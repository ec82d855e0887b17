//! Listening sockets: one per worker on the same address, with
//! SO_REUSEPORT, so the kernel spreads new connections over the workers and
//! accepting never needs a shared thread or a lock.
//!
//! SO_REUSEPORT would also let a second server join a port another one
//! already serves, each silently taking a share of its connections; so the
//! address is first claimed by a probe socket without SO_REUSEPORT, which
//! fails with "address in use" if anything listens there.
//!
//! Must not: accept or read; the worker loop does that.

use std::io;
use std::net::SocketAddr;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use mio::net::{TcpListener, UnixListener};
use socket2::{Domain, Protocol, Socket, Type};

fn socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR lets a restarted server bind while old connections sit
    // in TIME_WAIT.
    socket.set_reuse_address(true)?;
    Ok(socket)
}

/// Binds `addr` without SO_REUSEPORT and without listening. Binding fails
/// if any socket listens on the address, whether it has SO_REUSEPORT or
/// not; while the probe is held, the workers' listeners can still join it
/// (a bound socket that does not listen, with SO_REUSEADDR, blocks no one
/// that has it too).
fn probe(addr: SocketAddr) -> io::Result<Socket> {
    let socket = socket(addr)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// `backlog`: connections the kernel queues per listener before refusing
/// (Linux caps it at `net.core.somaxconn`).
fn bind_one(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = socket(addr)?;
    // SO_REUSEPORT lets every worker bind the same port.
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Binds `count` listeners on `addr`, failing with `AddrInUse` if another
/// socket already listens there. If `addr` has port 0 the probe picks a
/// free port and the listeners share it.
///
/// Two servers that start at the same instant on the same port can both
/// pass their probes; a server already listening is always detected.
pub(crate) fn bind_all(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
) -> io::Result<(Vec<TcpListener>, SocketAddr)> {
    // The configuration keeps it within i32.
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    // Held until every listener is bound, so that no other probe can take
    // a port 0 pick meanwhile.
    let claim = probe(addr)?;
    let local = claim
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("the probe socket has no IP address"))?;
    let listeners = (0..count)
        .map(|_| bind_one(local, backlog))
        .collect::<io::Result<Vec<_>>>()?;
    drop(claim);
    Ok((listeners, local))
}

/// Binds the UNIX domain socket at `path` with permissions `mode` (as
/// memcached's `-a`, an octal mode such as 0o700) and returns one
/// listener per worker, all the same socket.
///
/// A socket file left by a server that died is removed first; one that a
/// running server answers on is not: that is "address in use", as for TCP.
pub(crate) fn bind_unix(path: &Path, mode: u32, count: usize) -> io::Result<Vec<UnixListener>> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        // Only a socket is ever removed: a regular file at the path is a
        // configuration mistake, and binding fails on it with a clear error.
        if std::fs::symlink_metadata(path)?.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    listener.set_nonblocking(true)?;
    (0..count)
        .map(|_| Ok(UnixListener::from_std(listener.try_clone()?)))
        .collect()
}

/// One listener per worker on `ip`, at `base + i` (each a free port when
/// `base` is 0), without SO_REUSEPORT: a worker's own port is its alone.
pub(crate) fn bind_per_worker(
    ip: std::net::IpAddr,
    base: u16,
    count: usize,
    backlog: u32,
) -> io::Result<Vec<TcpListener>> {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    (0..count)
        .map(|i| {
            let port = match base {
                0 => 0,
                base => u16::try_from(usize::from(base) + i)
                    .map_err(|_| io::Error::other("--port-per-worker + workers passes 65535"))?,
            };
            let addr = SocketAddr::new(ip, port);
            let socket = socket(addr)?;
            socket.set_nonblocking(true)?;
            socket.bind(&addr.into())?;
            socket.listen(backlog)?;
            Ok(TcpListener::from_std(socket.into()))
        })
        .collect()
}
