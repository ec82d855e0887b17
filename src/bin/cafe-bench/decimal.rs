//! Unsigned numbers as ASCII decimal, written and read without
//! allocating: key names, and the lengths in the text protocols' command
//! and reply lines, once per request.
//!
//! Must not: allocate, or accept anything but plain digits (no sign, no
//! spaces, no empty number).

/// A number's digits, most significant first, on the stack.
#[derive(Debug, Clone, Copy)]
pub struct Digits {
    buf: [u8; 20],
    at: usize,
}

impl Digits {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.at..]
    }
}

pub fn digits(mut n: u64) -> Digits {
    // 20 digits hold u64::MAX.
    let mut d = Digits {
        buf: [0; 20],
        at: 20,
    };
    loop {
        d.at -= 1;
        d.buf[d.at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

/// Appends `n` in decimal.
pub fn push(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(digits(n as u64).as_bytes());
}

/// The number `bytes` spell, if they are all digits and it fits.
pub fn parse(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_parse_agree_at_the_edges() {
        for n in [0, 7, 10, 99, 1_000_000, u64::from(u32::MAX), u64::MAX] {
            let d = digits(n);
            assert_eq!(d.as_bytes(), n.to_string().as_bytes());
            assert_eq!(parse(d.as_bytes()), Some(n));
        }
    }

    #[test]
    fn parse_refuses_what_is_not_a_plain_number() {
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1 ",
            b"1a",
            b"18446744073709551616",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
