//! memcached's meta protocol: `mg <key> v f`, answered by `VA <len>
//! f<flags>` and the data, or `EN` on a miss; `ms <key> <len> T0` and the
//! data (flags 0, no expiry, as the binary protocols' SETs), answered by
//! `HD`. No opaque (`O`) is sent: replies are matched to requests by
//! order, as for the text protocol.
//!
//! Must not: send `q` (noreply: a request without a reply would put every
//! later reply against the wrong request) or ask for more than the value
//! and flags on a GET.

use super::ascii::Dialect;

pub const META: Dialect = Dialect {
    get_head: b"mg ",
    get_tail: b" v f\r\n",
    set_head: b"ms ",
    set_mid: b" ",
    set_tail: b" T0\r\n",
    hit: b"VA",
    // <size> <flags>*
    len_word: 0,
    hit_end: None,
    miss: b"EN",
    stored: b"HD",
    not_stored: &[b"NS", b"EX", b"NF"],
};
