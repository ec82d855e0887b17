//! The limits every protocol applies to a request before reading its body:
//! protocol-neutral, so each codec checks the same numbers.
//!
//! Must not: know a wire format.

/// Limits a server applies to requests before reading their bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key accepted, in bytes.
    pub max_key_len: usize,
    /// Largest value accepted, in bytes (for SET_TTL, not counting the TTL).
    pub max_value_len: usize,
}

impl Default for Limits {
    /// memcached's defaults: 250-byte keys and 1 MiB items.
    fn default() -> Self {
        Limits {
            max_key_len: 250,
            max_value_len: 1 << 20,
        }
    }
}
