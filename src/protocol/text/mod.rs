//! memcached's text protocol and its meta commands: a pure, incremental
//! codec.
//!
//! Like [`native`](super::native) and [`memcache`](super::memcache), this
//! module owns the bytes and nothing else: it never touches a socket,
//! never allocates on decode (requests borrow from the input) and treats
//! "need more bytes" as a normal answer. The reference is memcached
//! 1.6.18's `proto_text.c`, whose exact replies were checked against a
//! running memcached 1.6.18; where newer releases added meta flags (`E`,
//! `x`) they follow memcached's `proto_parser.c`.
//!
//! A request is one line ending in `\n` (a `\r` before it is optional),
//! and for storage commands (`set`, `add`, `replace`, `append`, `prepend`,
//! `cas`, `ms`) a data block of the declared length followed by `\r\n`:
//!
//! ```text
//! get <key>*\r\n
//! set <key> <flags> <exptime> <bytes> [noreply]\r\n<data block>\r\n
//! mg <key> <flag>*\r\n
//! ms <key> <bytes> <flag>*\r\n<data block>\r\n
//! ```
//!
//! [`decode_request`] answers, for the front of the input:
//!
//! - `Complete`: a whole request, `consumed` bytes long.
//! - `Incomplete { needed }`: the line has no `\n` yet (`needed` is one
//!   more than what is there; [`line_complete`] is false), or the line of a
//!   storage command is there and its data block is not (`needed` is the
//!   exact length of line, data and `\r\n`).
//! - `Rejected { error, skip }`: answer `error.reply()` unless
//!   `error.noreply()`, drop `skip` bytes (which may not all have arrived),
//!   carry on. `skip` is the line, or the line and the data block where
//!   memcached swallows the data block too: a value over the limit, an
//!   `ms` refused after its length was read, and a data block not followed
//!   by `\r\n` (memcached consumes exactly the declared length plus two
//!   bytes, then reads the next command from there).
//! - `Err(Fatal)`: a line longer than memcached waits for ([`MAX_LINE`],
//!   or [`MAX_GET_LINE`] for `get`, `gets`, `gat`, `gats`); answer
//!   `Fatal::reply()` and close.
//!
//! [`response`] writes the replies.
//!
//! Must not: touch sockets, clocks or storage; allocate while decoding.

pub mod base64;
mod error;
mod line;
mod meta;
mod request;
pub mod response;

pub use super::Decoded;
pub use super::native::Limits;
pub use error::{Fatal, TextError};
pub use line::{MAX_GET_LINE, MAX_LINE, Tokens, line_complete, line_end};
pub use meta::{Key, MAX_KEY, MAX_OPAQUE, MetaCmd, MetaFlags};
pub use request::{GetKind, Keys, Request, StoreCmd};

/// What a command's line says, before any data block is looked at.
#[derive(Debug, Clone, Copy)]
enum Parse<'a> {
    /// The request is the line alone.
    Line(Request<'a>),
    /// A data block of `len` bytes and `\r\n` follows the line; `request`
    /// gets it as its value.
    Body {
        request: Request<'a>,
        len: usize,
        /// Whether a bad data chunk goes unanswered.
        noreply: bool,
    },
}

/// A refusal decided from the line: `body` bytes after the line are
/// swallowed with it.
#[derive(Debug, Clone, Copy)]
struct Refuse<'a> {
    error: TextError<'a>,
    body: u64,
}

impl<'a> Refuse<'a> {
    /// A refusal that leaves what follows the line to be read as commands.
    fn line(error: TextError<'a>) -> Self {
        Refuse { error, body: 0 }
    }
}

/// Decodes the request at the front of `buf`; see the module docs for
/// the answers.
pub fn decode_request<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Decoded<Request<'a>, TextError<'a>>, Fatal> {
    let Some(line) = line::find_line(buf)? else {
        return Ok(Decoded::Incomplete {
            needed: buf.len() + 1,
        });
    };
    let tokens = Tokens::new(line.content);
    let mut first = tokens;
    let parsed = match first.next() {
        // memcached has no command shorter than two bytes.
        None | Some([_]) => Err(Refuse::line(TextError::UnknownCommand)),
        Some(&[b'm', sub]) => {
            let mut args = tokens;
            args.next();
            meta::decode(sub, args, limits)
        }
        Some(_) => request::decode(tokens, limits),
    };
    let (request, len, noreply) = match parsed {
        Ok(Parse::Line(request)) => {
            return Ok(Decoded::Complete {
                frame: request,
                consumed: line.len,
            });
        }
        Ok(Parse::Body {
            request,
            len,
            noreply,
        }) => (request, len, noreply),
        Err(Refuse { error, body }) => {
            return Ok(Decoded::Rejected {
                error,
                skip: line.len as u64 + body,
            });
        }
    };
    let value_end = line.len + len;
    let total = value_end + 2;
    let Some(tail) = buf.get(value_end..total) else {
        return Ok(Decoded::Incomplete { needed: total });
    };
    if tail != b"\r\n" {
        return Ok(Decoded::Rejected {
            error: TextError::BadDataChunk { noreply },
            skip: total as u64,
        });
    }
    let mut frame = request;
    if let Request::Store { value, .. } | Request::MetaSet { value, .. } = &mut frame {
        *value = &buf[line.len..value_end];
    }
    Ok(Decoded::Complete {
        frame,
        consumed: total,
    })
}
