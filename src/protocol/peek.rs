//! Where the keys of the requests at the front of a buffer sit, for each
//! wire protocol, found without decoding them: a hint for prefetching what
//! looking those keys up will touch, so that the lookups of a pipelined
//! batch overlap their cache misses.
//!
//! Only a hint: a request this does not understand, or gets wrong, costs a
//! useless prefetch and nothing else; the codecs decide what a request is.
//!
//! Must not: validate, refuse or allocate; look past the first request it
//! does not understand.

/// How many keys one look collects.
pub const BATCH: usize = 8;

/// The keys found, in order.
#[derive(Debug, Default)]
pub struct Keys<'a> {
    keys: [&'a [u8]; BATCH],
    len: usize,
}

impl<'a> Keys<'a> {
    /// The keys found so far.
    pub fn as_slice(&self) -> &[&'a [u8]] {
        &self.keys[..self.len]
    }

    /// Keeps only the keys `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let mut kept = 0;
        for i in 0..self.len {
            if keep(self.keys[i]) {
                self.keys[kept] = self.keys[i];
                kept += 1;
            }
        }
        self.len = kept;
    }

    fn is_full(&self) -> bool {
        self.len == BATCH
    }

    fn push(&mut self, key: &'a [u8]) {
        if !key.is_empty() && !self.is_full() {
            self.keys[self.len] = key;
            self.len += 1;
        }
    }
}

/// memcached binary protocol requests: 24-byte headers, key after the
/// extras. Returns the bytes of the whole requests looked at.
pub fn binary<'a>(buf: &'a [u8], keys: &mut Keys<'a>) -> usize {
    let mut at = 0;
    while !keys.is_full() {
        let Some(h) = buf.get(at..at + 24) else { break };
        if h[0] != 0x80 {
            break;
        }
        let key_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let extras = usize::from(h[4]);
        let body = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let key_at = at + 24 + extras;
        if let Some(key) = buf.get(key_at..key_at + key_len) {
            keys.push(key);
        }
        match at.checked_add(24 + body) {
            Some(end) if end <= buf.len() => at = end,
            _ => break,
        }
    }
    at
}

/// Native (0xCAFE) requests: 12-byte headers, key first in the body.
pub fn native<'a>(buf: &'a [u8], keys: &mut Keys<'a>) -> usize {
    let mut at = 0;
    while !keys.is_full() {
        let Some(h) = buf.get(at..at + 12) else { break };
        if h[0] != 0xCA || h[1] != 0xFE {
            break;
        }
        let key_len = usize::from(u16::from_be_bytes([h[6], h[7]]));
        let value_len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        if let Some(key) = buf.get(at + 12..at + 12 + key_len) {
            keys.push(key);
        }
        match at.checked_add(12 + key_len + value_len) {
            Some(end) if end <= buf.len() => at = end,
            _ => break,
        }
    }
    at
}

/// Text requests: the keys of `get`, `gets` and `mg` lines; stops at any
/// other command (a storage command's data block is not measured here).
pub fn text<'a>(buf: &'a [u8], keys: &mut Keys<'a>) -> usize {
    let mut at = 0;
    while !keys.is_full() {
        let Some(nl) = buf[at..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let line = &buf[at..at + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut tokens = line.split(|&b| b == b' ').filter(|t| !t.is_empty());
        match tokens.next() {
            Some(b"get" | b"gets") => tokens.for_each(|key| keys.push(key)),
            Some(b"mg") => {
                if let Some(key) = tokens.next() {
                    keys.push(key);
                }
            }
            _ => break,
        }
        at += nl + 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_get(key: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x80, 0x00];
        frame.extend_from_slice(&(key.len() as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(&(key.len() as u32).to_be_bytes());
        frame.extend_from_slice(&[0; 12]);
        frame.extend_from_slice(key);
        frame
    }

    #[test]
    fn binary_keys_of_whole_and_partial_frames() {
        let mut buf = binary_get(b"one");
        buf.extend(binary_get(b"two"));
        let whole = buf.len();
        buf.extend(&binary_get(b"three")[..26]);
        let mut keys = Keys::default();
        assert_eq!(binary(&buf, &mut keys), whole);
        assert_eq!(keys.as_slice(), [&b"one"[..], b"two"]);
        let mut keys = Keys::default();
        assert_eq!(binary(b"\x81garbage-garbage-garbage", &mut keys), 0);
        assert!(keys.as_slice().is_empty());
    }

    #[test]
    fn native_keys() {
        let mut buf = vec![0xCA, 0xFE, 1, 1, 0, 0, 0, 2, 0, 0, 0, 1];
        buf.extend_from_slice(b"k1v");
        let mut keys = Keys::default();
        assert_eq!(native(&buf, &mut keys), buf.len());
        assert_eq!(keys.as_slice(), [&b"k1"[..]]);
    }

    #[test]
    fn text_keys_of_reads_up_to_the_first_other_command() {
        let buf = b"get a b\r\nmg c v\r\ngets d\nset e 0 0 1\r\nx\r\nget f\r\n";
        let mut keys = Keys::default();
        let span = text(buf, &mut keys);
        assert_eq!(&buf[..span], b"get a b\r\nmg c v\r\ngets d\n");
        assert_eq!(keys.as_slice(), [&b"a"[..], b"b", b"c", b"d"]);
        let mut keys = Keys::default();
        assert_eq!(text(b"get a", &mut keys), 0);
    }

    #[test]
    fn a_look_stops_at_the_batch_and_retain_filters() {
        let line = b"get k0 k1 k2 k3 k4 k5 k6 k7 k8 k9\r\nget z\r\n";
        let mut keys = Keys::default();
        text(line, &mut keys);
        assert_eq!(keys.as_slice().len(), BATCH);
        keys.retain(|k| k != b"k3");
        assert_eq!(keys.as_slice().len(), BATCH - 1);
        assert!(!keys.as_slice().contains(&&b"k3"[..]));
    }
}
