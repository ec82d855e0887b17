//! Response status values on the wire, and the text memcached sends with
//! each error.
//!
//! Must not: decide which status a request gets; the validator and the
//! server's memcache adapter do.

/// Success.
pub const NO_ERROR: u16 = 0x00;
/// The key does not exist.
pub const KEY_ENOENT: u16 = 0x01;
/// The key exists (ADD), or its cas does not match.
pub const KEY_EEXISTS: u16 = 0x02;
/// The value is too large to store.
pub const E2BIG: u16 = 0x03;
/// The request's extras, key or value do not fit its opcode.
pub const EINVAL: u16 = 0x04;
/// APPEND or PREPEND to a missing key, or a failed store.
pub const NOT_STORED: u16 = 0x05;
/// INCREMENT or DECREMENT of a value that is not a number.
pub const DELTA_BADVAL: u16 = 0x06;
/// Not allowed: memcached's answer to FLUSH on a server started with
/// flushing disabled (`-F`), and to requests before SASL authentication.
pub const AUTH_ERROR: u16 = 0x20;
/// The opcode is not one the server runs.
pub const UNKNOWN_COMMAND: u16 = 0x81;
/// No memory to run the request.
pub const ENOMEM: u16 = 0x82;
/// A known opcode the server chooses not to run.
pub const NOT_SUPPORTED: u16 = 0x83;

/// The text memcached's `write_bin_error` sends as the value of an error
/// response with this status. memcached has no text for NOT_SUPPORTED
/// (it never sends it); we use "Not supported".
pub fn text(status: u16) -> &'static str {
    match status {
        NO_ERROR => "",
        KEY_ENOENT => "Not found",
        KEY_EEXISTS => "Data exists for key.",
        E2BIG => "Too large.",
        EINVAL => "Invalid arguments",
        NOT_STORED => "Not stored.",
        DELTA_BADVAL => "Non-numeric server-side value for incr or decr",
        AUTH_ERROR => "Auth failure.",
        UNKNOWN_COMMAND => "Unknown command",
        ENOMEM => "Out of memory",
        NOT_SUPPORTED => "Not supported",
        _ => "Unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_texts_are_memcacheds() {
        assert_eq!(text(EINVAL), "Invalid arguments");
        assert_eq!(text(UNKNOWN_COMMAND), "Unknown command");
        assert_eq!(text(E2BIG), "Too large.");
        assert_eq!(text(KEY_ENOENT), "Not found");
        assert_eq!(text(KEY_EEXISTS), "Data exists for key.");
        assert_eq!(text(NOT_STORED), "Not stored.");
        assert_eq!(
            text(DELTA_BADVAL),
            "Non-numeric server-side value for incr or decr"
        );
        assert_eq!(text(ENOMEM), "Out of memory");
        assert_eq!(text(AUTH_ERROR), "Auth failure.");
    }
}
