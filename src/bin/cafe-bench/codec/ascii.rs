//! What memcached's text and meta protocols share: command lines of words
//! and a data block, reply lines ended by "\r\n" whose first word is the
//! reply code, a hit's data block after its line, and the error lines
//! both send. Each protocol's module says how it spells its commands and
//! replies in a [`Dialect`]; this one writes and reads them.
//!
//! Must not: know either protocol's spelling (it comes in a [`Dialect`]),
//! or allocate except to describe a broken stream.

use super::{Answer, Decode, MAX_RESPONSE};
use crate::decimal;

/// Longest reply line accepted: a VALUE line with a 250-byte key and
/// three numbers, with room. Without its end by then, the stream is not
/// one of these protocols.
const MAX_LINE: usize = 1024;

/// How one protocol spells a GET, a SET and their replies.
#[derive(Debug)]
pub struct Dialect {
    /// A GET is `get_head`, the key, `get_tail`.
    pub get_head: &'static [u8],
    pub get_tail: &'static [u8],
    /// A SET is `set_head`, the key, `set_mid`, the value's length,
    /// `set_tail`, then the value as a data block.
    pub set_head: &'static [u8],
    pub set_mid: &'static [u8],
    pub set_tail: &'static [u8],
    /// A hit's reply code.
    pub hit: &'static [u8],
    /// Which word after the code is the value's length.
    pub len_word: usize,
    /// A line that ends a hit's reply after its data block, if any.
    pub hit_end: Option<&'static [u8]>,
    pub miss: &'static [u8],
    pub stored: &'static [u8],
    /// A SET's other replies, that did not store and are not errors.
    pub not_stored: &'static [&'static [u8]],
}

impl Dialect {
    pub fn get(&self, key: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(self.get_head);
        out.extend_from_slice(key);
        out.extend_from_slice(self.get_tail);
    }

    pub fn set(&self, key: &[u8], value: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(self.set_head);
        out.extend_from_slice(key);
        out.extend_from_slice(self.set_mid);
        decimal::push(out, value.len());
        out.extend_from_slice(self.set_tail);
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }

    /// The next reply in `buf`, to a GET if `get`, else to a SET.
    pub fn decode<'a>(&self, buf: &'a [u8], get: bool) -> Decode<'a> {
        let Some(line) = Line::parse(buf)? else {
            return Ok(None);
        };
        let code = line.code();
        if get && code == self.hit {
            return self.hit(buf, &line);
        }
        let answer = if get && code == self.miss {
            Answer::Miss
        } else if !get && code == self.stored {
            Answer::Stored
        } else if !get && self.not_stored.contains(&code) {
            Answer::Error
        } else if matches!(code, b"ERROR" | b"CLIENT_ERROR" | b"SERVER_ERROR") {
            // Refused, and the stream is still in step: a request gets
            // exactly one of these instead of its reply.
            Answer::Error
        } else {
            let request = if get { "GET" } else { "SET" };
            return Err(format!("unexpected reply to a {request}: {line}"));
        };
        Ok(Some((answer, line.next)))
    }

    /// A hit: its line, its data block and, where the protocol has one,
    /// the line that ends it.
    fn hit<'a>(&self, buf: &'a [u8], line: &Line<'_>) -> Decode<'a> {
        let len = line
            .word(self.len_word)
            .and_then(decimal::parse)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= MAX_RESPONSE)
            .ok_or_else(|| format!("no value length in {line}"))?;
        // `line.next` is at most MAX_LINE: no overflow.
        let end = line.next + len;
        let Some(trailer) = buf.get(end..end + 2) else {
            return Ok(None);
        };
        if trailer != b"\r\n" {
            return Err(format!("{len} bytes of data after {line} and no \\r\\n"));
        }
        let value = &buf[line.next..end];
        let mut next = end + 2;
        if let Some(want) = self.hit_end {
            let Some(last) = Line::parse(&buf[next..])? else {
                return Ok(None);
            };
            if last.text != want {
                return Err(format!("{last} where a hit's reply should end"));
            }
            next += last.next;
        }
        Ok(Some((Answer::Hit(value), next)))
    }
}

/// One reply line.
struct Line<'a> {
    /// The line without its "\r\n".
    text: &'a [u8],
    /// Where the byte after its "\r\n" is.
    next: usize,
}

impl<'a> Line<'a> {
    /// The line at the start of `buf`, `None` until its end arrives.
    fn parse(buf: &'a [u8]) -> Result<Option<Line<'a>>, String> {
        let window = &buf[..buf.len().min(MAX_LINE)];
        let Some(nl) = window.iter().position(|&b| b == b'\n') else {
            if buf.len() >= MAX_LINE {
                return Err(format!(
                    "no reply line end in {MAX_LINE} bytes: {}",
                    Line {
                        text: window,
                        next: 0
                    }
                ));
            }
            return Ok(None);
        };
        let text = &window[..nl];
        match text.strip_suffix(b"\r") {
            Some(text) => Ok(Some(Line { text, next: nl + 1 })),
            None => Err(format!(
                "a reply line ended by \\n alone: {}",
                Line { text, next: 0 }
            )),
        }
    }

    /// The reply code: the first word.
    fn code(&self) -> &'a [u8] {
        self.text.split(|&b| b == b' ').next().unwrap_or_default()
    }

    /// The `n`-th word after the code.
    fn word(&self, n: usize) -> Option<&'a [u8]> {
        self.text.split(|&b| b == b' ').nth(n + 1)
    }
}

impl std::fmt::Display for Line<'_> {
    /// Quoted and escaped, cut short: this names a broken stream's bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = &self.text[..self.text.len().min(80)];
        let more = if shown.len() < self.text.len() {
            "..."
        } else {
            ""
        };
        write!(f, "\"{}{more}\"", shown.escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::super::meta::META;
    use super::super::text::TEXT;
    use super::*;

    fn parse(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
        Line::parse(buf).map(|l| l.map(|l| (l.text.to_vec(), l.next)))
    }

    fn shown(bytes: &[u8]) -> String {
        bytes.escape_ascii().to_string()
    }

    #[test]
    fn a_line_needs_its_crlf_and_no_more() {
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"STORED\r"), Ok(None));
        assert_eq!(parse(b"STORED\r\nEND"), Ok(Some((b"STORED".to_vec(), 8))));
        assert!(parse(b"STORED\nEND\r\n").is_err());
    }

    #[test]
    fn a_line_without_an_end_is_refused_once_it_is_too_long() {
        assert_eq!(parse(&[b'a'; MAX_LINE - 1]), Ok(None));
        let err = parse(&[b'a'; MAX_LINE]).expect_err("too long");
        assert!(err.contains("\"aaaa") && err.ends_with("...\""), "{err}");
    }

    #[test]
    fn a_broken_stream_is_shown_escaped() {
        let err = parse(b"\x00\xff\n").expect_err("no \\r");
        assert!(err.ends_with(r#""\x00\xff""#), "{err}");
    }

    #[test]
    fn requests_are_spelled_as_memcached_reads_them() {
        for (dialect, spelled) in [
            (
                &TEXT,
                &b"get key:1\r\nset key:2 0 0 3\r\nabc\r\nset key:3 0 0 0\r\n\r\n"[..],
            ),
            (
                &META,
                b"mg key:1 v f\r\nms key:2 3 T0\r\nabc\r\nms key:3 0 T0\r\n\r\n",
            ),
        ] {
            let mut out = Vec::new();
            dialect.get(b"key:1", &mut out);
            dialect.set(b"key:2", b"abc", &mut out);
            dialect.set(b"key:3", b"", &mut out);
            assert_eq!(shown(&out), shown(spelled));
        }
    }

    /// Every reply is read as its answer, consuming exactly its bytes
    /// whatever follows, and is waited for at every shorter prefix.
    #[test]
    fn every_reply_is_read_whole_and_waited_for_until_then() {
        let refusals: [&[u8]; 3] = [
            b"SERVER_ERROR out of memory storing object\r\n",
            b"CLIENT_ERROR bad data chunk\r\n",
            b"ERROR\r\n",
        ];
        let mut cases: Vec<(&Dialect, &[u8], bool, Answer)> = vec![
            (
                &TEXT,
                b"VALUE key:1 0 3\r\nabc\r\nEND\r\n",
                true,
                Answer::Hit(b"abc"),
            ),
            (&TEXT, b"VALUE k 7 0\r\n\r\nEND\r\n", true, Answer::Hit(b"")),
            // A value holding the reply's own delimiters is only data.
            (
                &TEXT,
                b"VALUE k 0 7\r\nEND\r\n\r\n\r\nEND\r\n",
                true,
                Answer::Hit(b"END\r\n\r\n"),
            ),
            // As `gets` would answer: the CAS after the length is ignored.
            (
                &TEXT,
                b"VALUE k 0 2 99\r\nhi\r\nEND\r\n",
                true,
                Answer::Hit(b"hi"),
            ),
            (&TEXT, b"END\r\n", true, Answer::Miss),
            (&TEXT, b"STORED\r\n", false, Answer::Stored),
            (&TEXT, b"NOT_STORED\r\n", false, Answer::Error),
            (&TEXT, b"EXISTS\r\n", false, Answer::Error),
            (&TEXT, b"NOT_FOUND\r\n", false, Answer::Error),
            (&META, b"VA 3 f0\r\nabc\r\n", true, Answer::Hit(b"abc")),
            (&META, b"VA 0 f7\r\n\r\n", true, Answer::Hit(b"")),
            (&META, b"VA 2\r\nhi\r\n", true, Answer::Hit(b"hi")),
            (
                &META,
                b"VA 4 f0\r\nEN\r\n\r\n",
                true,
                Answer::Hit(b"EN\r\n"),
            ),
            (&META, b"EN\r\n", true, Answer::Miss),
            (&META, b"HD\r\n", false, Answer::Stored),
            (&META, b"HD c5\r\n", false, Answer::Stored),
            (&META, b"NS\r\n", false, Answer::Error),
            (&META, b"EX\r\n", false, Answer::Error),
            (&META, b"NF\r\n", false, Answer::Error),
        ];
        for dialect in [&TEXT, &META] {
            for get in [true, false] {
                cases.extend(refusals.map(|r| (dialect, r, get, Answer::Error)));
            }
        }
        for (dialect, reply, get, answer) in cases {
            let name = format!("{} ({})", shown(reply), shown(dialect.hit));
            for n in 0..reply.len() {
                assert_eq!(
                    dialect.decode(&reply[..n], get),
                    Ok(None),
                    "{n} bytes of {name}"
                );
            }
            let mut then = reply.to_vec();
            then.extend_from_slice(b"END\r\nHD\r\nVA 1\r\n");
            for buf in [reply, &then] {
                let whole = Ok(Some((answer, reply.len())));
                assert_eq!(dialect.decode(buf, get), whole, "{name}");
            }
        }
    }

    #[test]
    fn a_reply_out_of_step_with_its_request_breaks_the_stream() {
        let cases: [(&Dialect, &[u8], bool); 15] = [
            (&TEXT, b"STORED\r\n", true),
            (&TEXT, b"END\r\n", false),
            (&TEXT, b"VALUE k 0 3\r\nabc\r\nEND\r\n", false),
            (&TEXT, b"VA 3 f0\r\nabc\r\n", true),
            (&TEXT, b"VALUE k 0 3\r\nabcd\r\nEND\r\n", true),
            (&TEXT, b"VALUE k 0 x\r\nabc\r\nEND\r\n", true),
            (&TEXT, b"VALUE k 0\r\nabc\r\nEND\r\n", true),
            (
                &TEXT,
                b"VALUE k 0 3\r\nabc\r\nVALUE k 0 3\r\nabc\r\nEND\r\n",
                true,
            ),
            (&META, b"HD\r\n", true),
            (&META, b"EN\r\n", false),
            (&META, b"VA 3 f0\r\nabc\r\n", false),
            (&META, b"END\r\n", true),
            (&META, b"VA 3 f0\r\nabcd\r\n", true),
            (&META, b"VA f0 3\r\nabc\r\n", true),
            (&META, b"VA\r\n", true),
        ];
        for (dialect, reply, get) in cases {
            let got = dialect.decode(reply, get);
            assert!(
                got.is_err(),
                "{} ({}): {got:?}",
                shown(reply),
                shown(dialect.hit)
            );
        }
    }
}
