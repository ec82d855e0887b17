//! One load connection's socket and buffers: connecting, reading what the
//! socket has, writing what is queued, and the WRITABLE interest that
//! goes with it.
//!
//! Must not: decode responses, choose requests or read the clock (the
//! load loop owns the schedule and the tally).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Poll, Token};

/// A request in flight: when it was meant to leave, whether it is a GET,
/// and its key.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    pub intended: Instant,
    pub get: bool,
    pub key: u32,
}

#[derive(Debug)]
pub struct Conn {
    pub sock: TcpStream,
    pub out: Vec<u8>,
    sent: usize,
    /// Received bytes are `inbuf[start..end]`; the vector stays zeroed to
    /// its full length so reads go straight into it, without clearing it
    /// again per read.
    inbuf: Vec<u8>,
    end: usize,
    start: usize,
    pub queue: VecDeque<InFlight>,
    /// Open loop: when the next request is due.
    pub next_due: Instant,
    write_interest: bool,
}

impl Conn {
    pub fn new(sock: TcpStream, next_due: Instant) -> Conn {
        Conn {
            sock,
            out: Vec::with_capacity(4096),
            sent: 0,
            inbuf: vec![0; 64 << 10],
            end: 0,
            start: 0,
            queue: VecDeque::new(),
            next_due,
            write_interest: false,
        }
    }

    /// The bytes received and not yet consumed.
    pub fn received(&self) -> &[u8] {
        &self.inbuf[self.start..self.end]
    }

    /// Marks `n` received bytes as handled.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Reads what the socket has into the input buffer.
    pub fn fill(&mut self) -> io::Result<()> {
        loop {
            if self.end == self.inbuf.len() {
                if self.start > 0 {
                    self.compact();
                } else {
                    // A response larger than the buffer: grow, zeroing once.
                    let len = self.inbuf.len() * 2;
                    self.inbuf.resize(len, 0);
                }
            }
            let want = self.inbuf.len() - self.end;
            match self.sock.read(&mut self.inbuf[self.end..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.end += n;
                    // A short read emptied the socket; edge-triggered epoll
                    // reports whatever arrives next.
                    if n < want {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves unconsumed bytes to the front of the input buffer.
    pub fn compact(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.inbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Writes what is queued; asks for WRITABLE only while some is left.
    pub fn flush(&mut self, poll: &Poll, i: usize) -> io::Result<()> {
        while self.sent < self.out.len() {
            match self.sock.write(&self.out[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
        let want = self.sent < self.out.len() || !self.out.is_empty();
        if want != self.write_interest {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            poll.registry()
                .reregister(&mut self.sock, Token(i), interest)?;
            self.write_interest = want;
        }
        Ok(())
    }
}

pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let std = StdStream::connect(addr)?;
    std.set_nodelay(true)?;
    std.set_nonblocking(true)?;
    Ok(TcpStream::from_std(std))
}
