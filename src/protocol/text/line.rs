//! Finding a command line in the input and splitting it into tokens, as
//! memcached's `try_read_command_ascii` and `tokenize_command` do, and
//! reading numbers as its `safe_strto*` helpers do.
//!
//! - A line ends at the first `\n`; one `\r` before it is dropped. Like
//!   memcached, which hands the line to C string functions, the line ends at
//!   its first NUL byte too.
//! - Tokens are separated by spaces only (a tab is part of a token); runs of
//!   spaces and leading or trailing spaces make no empty tokens.
//! - Numbers are read by [`crate::decimal`] (C's `strtoul`/`strtol` with
//!   memcached's checks); a data block's length is one of them, bounded.
//!
//! Must not: know any command name or reply; allocate.

use super::error::Fatal;
pub(crate) use crate::decimal::{parse_i32, parse_u32, parse_u64};

/// Longest line memcached waits for without its `\n`: 2048 bytes.
pub const MAX_LINE: usize = 2048;

/// Longest `get`, `gets`, `gat` or `gats` line accepted. memcached grows
/// its buffer without bound for multi-key gets; 64 KiB holds over 250 keys
/// of the maximum length, or thousands of typical ones, and bounds what one
/// connection can make the server buffer.
pub const MAX_GET_LINE: usize = 64 * 1024;

/// memcached looks past at most this many leading spaces for `get `.
const MAX_LEADING_SPACES: usize = 100;

/// Where the first command line in `buf` ends: the index of its `\n`.
pub fn line_end(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// Whether `buf` holds a whole command line. A storage command reported
/// `Incomplete` while this is true is waiting for its data block.
pub fn line_complete(buf: &[u8]) -> bool {
    line_end(buf).is_some()
}

/// A complete command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// The command: no `\r\n`, cut at the first NUL.
    pub content: &'a [u8],
    /// Bytes the line occupies in the input, `\n` included.
    pub len: usize,
}

/// The first line of `buf`, `None` while its `\n` has not arrived, or
/// `Fatal` once it is longer than memcached would wait for.
///
/// The bound applies whether or not the `\n` has arrived, so that the
/// answer does not depend on how the input was split into reads (memcached
/// only checks while the `\n` is missing).
pub(crate) fn find_line(buf: &[u8]) -> Result<Option<Line<'_>>, Fatal> {
    let end = line_end(buf);
    let scanned = end.unwrap_or(buf.len());
    if scanned > MAX_LINE {
        let limit = if is_get_line(buf) {
            MAX_GET_LINE
        } else {
            MAX_LINE
        };
        if scanned > limit {
            return Err(Fatal::LineTooLong { limit });
        }
    }
    Ok(end.map(|end| {
        let mut content = &buf[..end];
        if let [rest @ .., b'\r'] = content {
            content = rest;
        }
        if let Some(nul) = content.iter().position(|&b| b == 0) {
            content = &content[..nul];
        }
        Line {
            content,
            len: end + 1,
        }
    }))
}

/// Whether a long line is a multi-key read, which may exceed [`MAX_LINE`].
fn is_get_line(buf: &[u8]) -> bool {
    let spaces = buf.iter().take_while(|&&b| b == b' ').count();
    let rest = &buf[spaces..];
    spaces <= MAX_LEADING_SPACES
        && [&b"get "[..], b"gets ", b"gat ", b"gats "]
            .iter()
            .any(|p| rest.starts_with(p))
}

/// The space-separated tokens of a line. `Copy`, so a caller can walk the
/// same tokens twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens<'a> {
    rest: &'a [u8],
}

impl<'a> Tokens<'a> {
    /// The tokens of `line`.
    pub fn new(line: &'a [u8]) -> Self {
        Tokens { rest: line }
    }

    /// What is left: the remaining tokens as one slice, leading and
    /// trailing spaces removed.
    pub fn remainder(&self) -> &'a [u8] {
        trim_spaces(self.rest)
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|&b| b != b' ')?;
        let rest = &self.rest[start..];
        let len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let (token, tail) = rest.split_at(len);
        self.rest = tail;
        Some(token)
    }
}

/// `s` without leading and trailing spaces.
pub(crate) fn trim_spaces(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ').map_or(start, |i| i + 1);
    &s[start..end]
}

/// A data block's length as memcached reads it: [`parse_i32`], then no
/// less than 0 and no more than `i32::MAX - 2` (the length plus its `\r\n`
/// must fit an `int`).
pub(crate) fn parse_length(token: &[u8]) -> Option<usize> {
    parse_i32(token)
        .filter(|&n| n <= i32::MAX - 2)
        .and_then(|n| usize::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_at_newline_with_optional_cr() {
        let line = |b: &[u8]| find_line(b).map(|l| l.map(|l| (l.content.to_vec(), l.len)));
        assert_eq!(line(b"get a\r\nxx"), Ok(Some((b"get a".to_vec(), 7))));
        assert_eq!(line(b"get a\nxx"), Ok(Some((b"get a".to_vec(), 6))));
        assert_eq!(line(b"get a\r\r\n"), Ok(Some((b"get a\r".to_vec(), 8))));
        assert_eq!(line(b"get a\r"), Ok(None));
        assert_eq!(line(b""), Ok(None));
        assert_eq!(line(b"\n"), Ok(Some((Vec::new(), 1))));
        assert_eq!(line(b"get a\0b\r\n"), Ok(Some((b"get a".to_vec(), 9))));
    }

    #[test]
    fn long_lines_are_fatal_unless_they_read_keys() {
        let mut junk = vec![b'x'; MAX_LINE];
        assert_eq!(find_line(&junk), Ok(None));
        junk.push(b'x');
        assert_eq!(
            find_line(&junk),
            Err(Fatal::LineTooLong { limit: MAX_LINE })
        );
        junk.push(b'\n');
        assert_eq!(
            find_line(&junk),
            Err(Fatal::LineTooLong { limit: MAX_LINE })
        );

        for prefix in [&b"get "[..], b"gets ", b"gat ", b"gats ", b"   get "] {
            let mut get = prefix.to_vec();
            get.resize(MAX_GET_LINE, b'k');
            assert_eq!(find_line(&get), Ok(None));
            get.push(b'\n');
            assert!(matches!(find_line(&get), Ok(Some(_))));
            get.pop();
            get.push(b'k');
            assert_eq!(
                find_line(&get),
                Err(Fatal::LineTooLong {
                    limit: MAX_GET_LINE
                })
            );
        }

        let mut spaced = vec![b' '; MAX_LEADING_SPACES + 1];
        spaced.extend_from_slice(b"get ");
        spaced.resize(MAX_LINE + 1, b'k');
        assert!(find_line(&spaced).is_err());
        let mut not_get = b"getx ".to_vec();
        not_get.resize(MAX_LINE + 1, b'k');
        assert!(find_line(&not_get).is_err());
    }

    #[test]
    fn tokens_split_on_spaces_only() {
        let all: Vec<&[u8]> = Tokens::new(b"  get  a\tb  c ").collect();
        assert_eq!(all, [&b"get"[..], b"a\tb", b"c"]);
        let mut t = Tokens::new(b"a  b c  ");
        t.next();
        assert_eq!(t.remainder(), b"b c");
        assert_eq!(Tokens::new(b"   ").next(), None);
        assert_eq!(trim_spaces(b"  x y  "), b"x y");
        assert_eq!(trim_spaces(b"   "), b"");
    }

    #[test]
    fn data_lengths_read_as_memcached_reads_them() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"2147483645"), Some(2147483645));
        assert_eq!(parse_length(b"2147483646"), None);
        assert_eq!(parse_length(b"-1"), None);
        assert_eq!(parse_length(b"4294967297"), Some(1));
    }
}
