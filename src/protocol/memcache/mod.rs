//! The memcached binary protocol: a pure, incremental codec.
//!
//! Like [`native`](super::native), this module owns the byte layout and
//! nothing else: it never touches a socket, never allocates on decode (frames
//! borrow from the input) and treats "need more bytes" as a normal answer.
//!
//! Every frame is a 24-byte header in network byte order followed by the
//! extras, the key and the value; `body_len` counts all three:
//!
//! ```text
//! 0      1      2        4        5         6               8          12       16      24
//! +------+------+--------+--------+---------+---------------+----------+--------+-------+--------+-----+-------+
//! |magic |opcode|key_len |ext_len |data_type|vbucket/status |body_len  |opaque  |cas    | extras | key | value |
//! |u8    |u8    |u16     |u8      |u8       |u16            |u32       |u32     |u64    |        |     |       |
//! +------+------+--------+--------+---------+---------------+----------+--------+-------+--------+-----+-------+
//! ```
//!
//! Requests carry magic 0x80 and a vbucket id (ignored here), responses 0x81
//! and a status. The layout, opcodes and statuses are those of memcached's
//! `protocol_binary.h` and the BinaryProtocolRevamped wiki page.
//!
//! # Validation, as memcached does it
//!
//! memcached checks a request in `proto_bin.c` in this order, and so does
//! [`decode_request`], which reports the first rule broken:
//!
//! 1. `try_read_command_binary`: a first byte other than 0x80 closes the
//!    connection without a reply ([`FrameError::BadMagic`]). We look at the
//!    first byte as soon as it arrives rather than waiting for a header.
//! 2. `key_len + extras_len > body_len`: we answer `EINVAL` and close
//!    ([`ErrorKind::Malformed`]). memcached's source routes this to
//!    `UNKNOWN_COMMAND`, but memcached 1.6.18 in practice answers nothing and
//!    waits for bytes that can never make the frame consistent, so the
//!    connection hangs; a malformed frame deserves the malformed-frame
//!    answer.
//! 3. `dispatch_bin_command`: a key over `KEY_MAX_LENGTH` (250) goes to
//!    `handle_binary_protocol_error`, which answers `EINVAL` and closes. This
//!    comes before the opcode is looked at, so it applies to unknown opcodes
//!    too. We compare against [`Limits::max_key_len`].
//! 4. `dispatch_bin_command`'s opcode switch: a request whose extras, key or
//!    value do not fit its opcode also goes to `handle_binary_protocol_error`
//!    (`EINVAL`, close). The shapes:
//!
//!    | opcodes                                | extras | key      | value |
//!    |----------------------------------------|--------|----------|-------|
//!    | GET GETQ GETK GETKQ                    | 0      | required | none  |
//!    | SET ADD REPLACE (and Q)                | 8      | required | any   |
//!    | APPEND PREPEND (and Q)                 | 0      | required | any   |
//!    | DELETE DELETEQ                         | 0      | required | none  |
//!    | INCREMENT DECREMENT (and Q)            | 20     | required | none  |
//!    | TOUCH GAT GATQ GATK GATKQ              | 4      | required | none* |
//!    | FLUSH FLUSHQ                           | 0 or 4 | none     | none  |
//!    | NOOP VERSION QUIT QUITQ                | 0      | none     | none  |
//!    | VERBOSITY                              | 4*     | none     | none  |
//!    | STAT                                   | 0      | optional | none* |
//!
//!    (* marks a difference, below.)
//! 5. The switch's `default`: any other opcode answers `UNKNOWN_COMMAND`,
//!    swallows the body and keeps the connection ([`ErrorKind::UnknownCommand`]).
//! 6. `process_bin_update` and `process_bin_append_prepend`: an item too
//!    large to store answers `E2BIG`, swallows the value and keeps the
//!    connection ([`ErrorKind::TooLarge`]).
//!
//! Error replies carry no extras or key; their value is a short text, which
//! [`RequestError`]'s `Display` and [`status::text`] give exactly as
//! memcached's `write_bin_error` writes it ("Unknown command", "Invalid
//! arguments", "Too large.", ...).
//!
//! # Deliberate differences
//!
//! - Refusals are decided from the header alone: memcached waits for the
//!   extras and key first. The answers are the same; a refused body is never
//!   buffered.
//! - `skip` is always the whole frame. memcached's `UNKNOWN_COMMAND` swallows
//!   `body_len` bytes counted *after* the extras and key it has already
//!   consumed, so an unknown request with a key eats the start of the next
//!   one.
//! - TOUCH and GAT*: memcached checks only `extras_len == 4` and a key, and
//!   STAT only `extras_len == 0`; a value sent with them would be read as the
//!   next header. We refuse the value (`EINVAL`), as the wiki says "MUST NOT
//!   have value".
//! - VERBOSITY: memcached 1.6's switch has no case for it (it answers
//!   `UNKNOWN_COMMAND`); we accept the wiki's shape (4-byte extras, no key,
//!   no value), which memcached's engine branch also enforced.
//! - SASL opcodes (0x20..=0x22) are unknown commands, as in a memcached
//!   started without SASL (which swallows a slightly different length).
//! - The size limit: memcached's `item_size_ok` weighs key, value and item
//!   header against its item size; we compare the value alone with
//!   [`Limits::max_value_len`].
//! - Like memcached, the data type, the vbucket id and the cas of a request
//!   that has no use for one are ignored. Re-encoding a decoded request
//!   writes zeros there, and writes FLUSH with a zero delay without extras;
//!   these are the only ways it can differ from the bytes decoded.
//!
//! # Files
//!
//! - `header`: the fixed header and the magics.
//! - [`opcode`] and [`status`]: the numbers on the wire, which opcodes are
//!   quiet or return their key, and memcached's error texts.
//! - `request`: the request vocabulary and [`decode_request`].
//! - `validate`: the checks above, from the header alone.
//! - `encode`: [`encode_request`], the inverse of [`decode_request`].
//! - `response`: [`encode_response`] and [`decode_response`].
//!
//! Must not: decide what a reply says; `crate::server::memcache` does.

mod encode;
mod header;
pub mod opcode;
mod request;
mod response;
pub mod status;
#[cfg(test)]
mod testing;
mod validate;

pub use super::Decoded;
pub use super::native::Limits;
pub use encode::{EncodeError, encode_request};
pub use header::{HEADER_LEN, Header, REQUEST_MAGIC, RESPONSE_MAGIC};
pub use opcode::{is_quiet, returns_key};
pub use request::{
    Command, ErrorKind, FrameError, Request, RequestError, StoreMode, decode_request,
};
pub use response::{Response, ResponseError, decode_response, encode_response, patch_body_len};
