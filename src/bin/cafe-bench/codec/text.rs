//! memcached's text protocol: `get <key>`, answered by `VALUE <key>
//! <flags> <len>`, the data and `END`, or by `END` alone; `set <key> 0 0
//! <len>` and the data (flags 0, no expiry, as the binary protocols'
//! SETs), answered by `STORED`. Replies carry no opaque: they are matched
//! to requests by order, which one connection keeps.
//!
//! Must not: ask for more than one key per `get` (a hit's reply is read as
//! one VALUE then END), or send `noreply` (every request must have exactly
//! one reply to be matched by order).

use super::ascii::Dialect;

pub const TEXT: Dialect = Dialect {
    get_head: b"get ",
    get_tail: b"\r\n",
    set_head: b"set ",
    set_mid: b" 0 0 ",
    set_tail: b"\r\n",
    hit: b"VALUE",
    // <key> <flags> <bytes> [<cas unique>]
    len_word: 2,
    hit_end: Some(b"END"),
    miss: b"END",
    stored: b"STORED",
    not_stored: &[b"NOT_STORED", b"EXISTS", b"NOT_FOUND"],
};
