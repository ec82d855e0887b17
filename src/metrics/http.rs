//! The admin listener: a small HTTP/1.1 server on its own thread that
//! answers `GET /metrics` with the Prometheus exposition, away from the
//! cache port and the workers' loops.
//!
//! One request per connection, served one connection at a time: a scrape
//! every few seconds needs no more, and a client that stalls costs only
//! this thread the read timeout. Requests are parsed by `httparse`.
//!
//! Must not: touch workers' state (the scrape callback gathers it), block
//! a worker, or read more than [`MAX_REQUEST`] bytes from anyone.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest request head accepted; a scrape's is a few hundred bytes.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request or read the reply.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Headers parsed at most; more is a bad request.
const MAX_HEADERS: usize = 32;

/// A running admin listener.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What the listener answers with, given a request's method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status line's code and reason.
    pub status: &'static str,
    /// The Content-Type.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Reply {
    fn plain(status: &'static str, body: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n"),
        }
    }
}

/// The answer to a parsed request: `/metrics` from `scrape`, `/` a short
/// index, anything else 404, any method but GET or HEAD 405.
pub fn route(method: &str, path: &str, scrape: &dyn Fn() -> String) -> Reply {
    if method != "GET" && method != "HEAD" {
        return Reply::plain("405 Method Not Allowed", "only GET is served");
    }
    match path.split('?').next().unwrap_or("") {
        "/metrics" => Reply {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: scrape(),
        },
        "/" => Reply::plain("200 OK", "cafe admin: GET /metrics"),
        _ => Reply::plain("404 Not Found", "not found; try /metrics"),
    }
}

impl AdminServer {
    /// Binds `addr` and serves on a thread of its own until
    /// [`AdminServer::stop`]. `scrape` renders the metrics; it runs on the
    /// admin thread.
    pub fn start(
        addr: SocketAddr,
        scrape: impl Fn() -> String + Send + 'static,
    ) -> io::Result<AdminServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("cafe-admin".into())
            .spawn(move || serve(listener, &stopping, &scrape))?;
        Ok(AdminServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address served (with the real port if port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // The thread waits in accept(): a connection of our own wakes it.
        let _ = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(listener: TcpListener, stop: &AtomicBool, scrape: &dyn Fn() -> String) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        match conn {
            Ok(stream) => {
                if let Err(e) = answer(stream, scrape) {
                    log::debug!("admin request: {e}");
                }
            }
            // Out of descriptors or similar: say so rarely, and wait a
            // little rather than spin.
            Err(e) => {
                log::debug!("admin accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Reads one request head, answers it, closes.
fn answer(mut stream: TcpStream, scrape: &dyn Fn() -> String) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    let reply = loop {
        if len == buf.len() {
            break Reply::plain("431 Request Header Fields Too Large", "request too large");
        }
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                let method = req.method.unwrap_or("");
                let path = req.path.unwrap_or("");
                let mut reply = route(method, path, scrape);
                if method == "HEAD" {
                    reply.body.clear();
                }
                break reply;
            }
            Ok(httparse::Status::Partial) => continue,
            Err(e) => break Reply::plain("400 Bad Request", &format!("bad request: {e}")),
        }
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(reply.body.as_bytes())?;
    stream.flush()?;
    // Closing with unread input would reset the connection and could
    // destroy the reply in flight: shut the write side, then discard what
    // the client still sends, within bounds.
    let _ = stream.shutdown(Shutdown::Write);
    let mut drained = 0;
    while drained < DRAIN_LIMIT {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

/// Bytes discarded after a reply at most, so the close is not a reset.
const DRAIN_LIMIT: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let scrape = || "m 1\n".to_string();
        assert_eq!(route("GET", "/metrics", &scrape).body, "m 1\n");
        assert_eq!(route("GET", "/metrics?x=1", &scrape).status, "200 OK");
        assert_eq!(route("GET", "/nope", &scrape).status, "404 Not Found");
        assert_eq!(
            route("POST", "/metrics", &scrape).status,
            "405 Method Not Allowed"
        );
    }
}
