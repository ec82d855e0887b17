//! Requests encoded and responses decoded, one protocol per run: a GET or
//! a SET in, what the reply said out. Each protocol has its own module;
//! this one picks it and says what a reply means to the load loop.
//!
//! Must not: allocate per request (requests are appended to the
//! connection's buffer, hit values are borrowed from its input), touch a
//! socket, or count anything.

mod ascii;
mod memcache;
mod meta;
mod native;
mod text;

use crate::args::Protocol;

/// Largest response accepted (a GET of the largest value, with room).
pub const MAX_RESPONSE: usize = 64 << 20;

/// Encodes requests and decodes responses of one protocol.
#[derive(Debug, Clone, Copy)]
pub struct Codec(pub Protocol);

/// What one response said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The value, borrowed from the input buffer.
    Hit(&'a [u8]),
    Miss,
    Stored,
    Error,
}

/// A decoder's verdict on the start of the input: `Ok(None)` while the
/// next response is incomplete, `Err` if the stream is broken (no later
/// response could be matched to its request).
pub type Decode<'a> = Result<Option<(Answer<'a>, usize)>, String>;

impl Codec {
    /// Longest key the protocol can carry: 16 bits of length in the binary
    /// protocols, 250 bytes in memcached's text and meta protocols, which
    /// refuse longer ones with an error line and then read the value of a
    /// SET as a command (a second reply the loader cannot match).
    pub fn max_key_len(self) -> usize {
        match self.0 {
            Protocol::Native | Protocol::Memcache => usize::from(u16::MAX),
            Protocol::Text | Protocol::Meta => 250,
        }
    }

    pub fn get(self, key: &[u8], out: &mut Vec<u8>) {
        match self.0 {
            Protocol::Native => native::get(key, out),
            Protocol::Memcache => memcache::get(key, out),
            Protocol::Text => text::TEXT.get(key, out),
            Protocol::Meta => meta::META.get(key, out),
        }
    }

    pub fn set(self, key: &[u8], value: &[u8], out: &mut Vec<u8>) {
        match self.0 {
            Protocol::Native => native::set(key, value, out),
            Protocol::Memcache => memcache::set(key, value, out),
            Protocol::Text => text::TEXT.set(key, value, out),
            Protocol::Meta => meta::META.set(key, value, out),
        }
    }

    /// The next response in `buf`, to a GET if `get`, else to a SET: the
    /// text protocols' replies say which only in context.
    pub fn decode(self, buf: &[u8], get: bool) -> Decode<'_> {
        match self.0 {
            Protocol::Native => native::decode(buf, get),
            Protocol::Memcache => memcache::decode(buf, get),
            Protocol::Text => text::TEXT.decode(buf, get),
            Protocol::Meta => meta::META.decode(buf, get),
        }
    }
}

/// A binary decoder's result as a [`Decode`], `answer` reading the frame.
fn binary<'a, F, E: std::fmt::Display>(
    decoded: Result<cafe::protocol::Decoded<F, std::convert::Infallible>, E>,
    answer: impl FnOnce(F) -> Answer<'a>,
) -> Decode<'a> {
    use cafe::protocol::Decoded;
    match decoded {
        Ok(Decoded::Complete { frame, consumed }) => Ok(Some((answer(frame), consumed))),
        Ok(Decoded::Incomplete { .. }) => Ok(None),
        Ok(Decoded::Rejected { error, .. }) => match error {},
        Err(e) => Err(e.to_string()),
    }
}
