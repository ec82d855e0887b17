//! Base64 for binary meta keys (the `b` flag): memcached's decoder, as
//! lenient as it is, and the standard padded encoder for echoing keys back.
//!
//! memcached (`base64.c`) skips every byte outside the alphabet, needs a
//! non-zero multiple of four alphabet bytes (`=` counts as one), and stops
//! after the first group that holds padding; one or two `=` in that group
//! drop that many output bytes, more fail. Decoding here follows those
//! rules byte for byte so that a key means the same here as there.
//!
//! Must not: allocate; know about commands, flags or replies.

/// The standard alphabet; `=` pads.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The 6-bit value of an alphabet byte; `=` reads as 0, as in memcached's
/// table. `None`: the byte is skipped.
fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// Decodes `src` into `out`, returning the decoded length, or `None` where
/// memcached's decoder fails: no alphabet bytes, a count that is not a
/// multiple of four, bad padding, or more output than `out` holds (memcached
/// checks the unpadded bound, `count / 4 * 3`, against its buffer too).
pub fn decode(src: &[u8], out: &mut [u8]) -> Option<usize> {
    let count = src.iter().filter(|&&b| sextet(b).is_some()).count();
    if count == 0 || count % 4 != 0 || count / 4 * 3 > out.len() {
        return None;
    }
    let mut block = [0u8; 4];
    let mut filled = 0;
    let mut pad = 0;
    let mut len = 0;
    for &b in src {
        let Some(v) = sextet(b) else { continue };
        if b == b'=' {
            pad += 1;
        }
        block[filled] = v;
        filled += 1;
        if filled < 4 {
            continue;
        }
        filled = 0;
        let bytes = [
            (block[0] << 2) | (block[1] >> 4),
            (block[1] << 4) | (block[2] >> 2),
            (block[2] << 6) | block[3],
        ];
        out.get_mut(len..len + 3)?.copy_from_slice(&bytes);
        len += 3;
        if pad > 0 {
            // The first group with padding ends the input, whatever follows.
            return match pad {
                1 | 2 => Some(len - pad),
                _ => None,
            };
        }
    }
    Some(len)
}

/// Length of the padded encoding of `n` bytes.
pub fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends the padded encoding of `src` to `out`.
pub fn encode(src: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(src.len()));
    let at = |i: u8| ALPHABET[usize::from(i & 0x3f)];
    let mut chunks = src.chunks_exact(3);
    for c in &mut chunks {
        out.extend_from_slice(&[
            at(c[0] >> 2),
            at((c[0] << 4) | (c[1] >> 4)),
            at((c[1] << 2) | (c[2] >> 6)),
            at(c[2]),
        ]);
    }
    match *chunks.remainder() {
        [a] => out.extend_from_slice(&[at(a >> 2), at(a << 4), b'=', b'=']),
        [a, b] => out.extend_from_slice(&[at(a >> 2), at((a << 4) | (b >> 4)), at(b << 2), b'=']),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(src: &[u8]) -> Option<Vec<u8>> {
        let mut out = [0u8; 64];
        decode(src, &mut out).map(|n| out[..n].to_vec())
    }

    fn enc(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(src, &mut out);
        out
    }

    #[test]
    fn rfc_4648_vectors() {
        let vectors: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"fooba", b"Zm9vYmE="),
            (b"foobar", b"Zm9vYmFy"),
        ];
        for (plain, coded) in vectors {
            assert_eq!(enc(plain), coded);
            assert_eq!(encoded_len(plain.len()), coded.len());
            if !plain.is_empty() {
                assert_eq!(dec(coded).as_deref(), Some(plain));
            }
        }
    }

    #[test]
    fn leniency_is_memcacheds() {
        // Bytes outside the alphabet are skipped, wherever they are.
        assert_eq!(dec(b"Zm9v!!").as_deref(), Some(&b"foo"[..]));
        assert_eq!(dec(b"Z-m-9-v").as_deref(), Some(&b"foo"[..]));
        // The first padded group ends the key; the rest is ignored.
        assert_eq!(dec(b"Zg==Zm9v").as_deref(), Some(&b"f"[..]));
        // Padding anywhere in a group counts.
        assert_eq!(dec(b"Z=9v").map(|v| v.len()), Some(2));
    }

    #[test]
    fn failures_are_memcacheds() {
        for bad in [&b""[..], b"!!!!", b"foo", b"Zm9vY", b"Z===", b"===="] {
            assert_eq!(dec(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        // The unpadded bound must fit the output buffer.
        let mut small = [0u8; 2];
        assert_eq!(decode(b"Zm8=", &mut small), None);
        let mut exact = [0u8; 3];
        assert_eq!(decode(b"Zm8=", &mut exact), Some(2));
    }

    #[test]
    fn every_short_input_round_trips() {
        let mut src = Vec::new();
        for len in 1..=40u8 {
            src.push(len.wrapping_mul(97) ^ 0x5a);
            assert_eq!(dec(&enc(&src)).as_deref(), Some(&src[..]));
        }
    }
}
