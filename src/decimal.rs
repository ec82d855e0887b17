//! Decimal numbers read as memcached reads them: C's `strtoull` and
//! `strtol` with the checks of its `safe_strto*` helpers. The text protocol
//! reads its numeric fields this way, and the storage reads a counter's
//! value this way for `incr`, `decr` and `ma` (memcached runs
//! `safe_strtoull` over the item's data), so `007`, ` 7` and `7 apples`
//! are all 7, as there.
//!
//! - Leading C whitespace and a sign are allowed, at least one digit is
//!   needed, and the number must end the input or be followed by C
//!   whitespace (which may be followed by anything).
//! - Out-of-range values are refused, except that 32-bit results are
//!   truncated from 64 bits as memcached truncates them: flags of
//!   4294967297 are 1, an expiry of 4294967296 is 0.
//!
//! Must not: allocate, or know what the number is for.

/// C's `isspace` in the C locale.
fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A number as C's `strto*` reads it, before any range decision.
struct CNumber {
    negative: bool,
    /// The digits' value; `None` if it does not fit 64 bits.
    magnitude: Option<u64>,
}

/// Reads a decimal number the way `strtoull`/`strtoll` do, with
/// memcached's check of what follows it. `None`: no digits, or something
/// other than C whitespace right after them.
fn c_number(token: &[u8]) -> Option<CNumber> {
    let mut i = token.iter().take_while(|&&b| c_space(b)).count();
    let negative = match token.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = token[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let end = i + digits;
    if token.get(end).is_some_and(|&b| !c_space(b)) {
        return None;
    }
    let magnitude = token[i..end].iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    Some(CNumber {
        negative,
        magnitude,
    })
}

/// memcached's `safe_strtoull`: `strtoull` (so `-5` wraps), refused when
/// out of range, or when the result is over `i64::MAX` and the token holds
/// a `-` (so `-5` is refused after all, but `-0` is 0).
pub(crate) fn parse_u64(token: &[u8]) -> Option<u64> {
    let n = c_number(token)?;
    let magnitude = n.magnitude?;
    let value = if n.negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    if i64::try_from(value).is_err() && token.contains(&b'-') {
        return None;
    }
    Some(value)
}

/// memcached's `safe_strtoul` on a 64-bit machine: [`parse_u64`], then
/// truncated to 32 bits.
pub(crate) fn parse_u32(token: &[u8]) -> Option<u32> {
    parse_u64(token).map(|v| v as u32)
}

/// memcached's `safe_strtol` on a 64-bit machine: `strtol` into 64 bits
/// (refused when out of range), then truncated to 32 bits.
pub(crate) fn parse_i32(token: &[u8]) -> Option<i32> {
    let n = c_number(token)?;
    let magnitude = n.magnitude?;
    let value = if n.negative {
        0i64.checked_sub_unsigned(magnitude)?
    } else {
        i64::try_from(magnitude).ok()?
    };
    Some(value as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_memcached_reads_them() {
        // Verified against memcached 1.6.18 through `set`'s flags field.
        assert_eq!(parse_u32(b"4294967297"), Some(1));
        assert_eq!(parse_u32(b"18446744073709551615"), Some(u32::MAX));
        assert_eq!(parse_u32(b"18446744073709551616"), None);
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b"-0"), Some(0));
        assert_eq!(parse_u32(b"+7"), Some(7));
        assert_eq!(parse_u32(b"5\t"), Some(5));
        assert_eq!(parse_u32(b"\t5"), Some(5));
        assert_eq!(parse_u32(b"5\tzz"), Some(5));
        assert_eq!(parse_u32(b"5z"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"+"), None);
        assert_eq!(parse_u32(b"\t"), None);

        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"-5"), None);
        // strtoull negates; the result fits i64, so the `-` goes unnoticed.
        assert_eq!(parse_u64(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_u64(b"9223372036854775808"), Some(1 << 63));

        // Expiry and length: 64-bit strtol, then truncated.
        assert_eq!(parse_i32(b"4294967296"), Some(0));
        assert_eq!(parse_i32(b"2147483648"), Some(i32::MIN));
        assert_eq!(parse_i32(b"4294967297"), Some(1));
        assert_eq!(parse_i32(b"-1"), Some(-1));
        assert_eq!(parse_i32(b"-9223372036854775808"), Some(0));
        assert_eq!(parse_i32(b"-9223372036854775809"), None);
        assert_eq!(parse_i32(b"9223372036854775807"), Some(-1));
        assert_eq!(parse_i32(b"9223372036854775808"), None);
        assert_eq!(parse_i32(b"abc"), None);
    }

    #[test]
    fn counters_read_as_memcached_reads_them() {
        // Verified against memcached 1.6.18 with `decr k 0` over `set`
        // values: leading zeros of any length, whitespace around, text
        // after whitespace.
        assert_eq!(parse_u64(b"018446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"0000000000000000000000012"), Some(12));
        assert_eq!(parse_u64(b" 12 "), Some(12));
        assert_eq!(parse_u64(b"12 apples"), Some(12));
        assert_eq!(parse_u64(b"12apples"), None);
        assert_eq!(parse_u64(b""), None);
    }
}
