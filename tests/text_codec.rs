//! The memcached text and meta codec (`cafe::protocol::text`) on byte
//! vectors: every case of `common::text_cases` decoded whole, at every split
//! point and back to back; the decoder's answers on any bytes (random, or
//! valid streams with flips, inserts, removals and truncations) are
//! consistent with the bytes and do not depend on how the stream was split
//! into reads; generated requests and base64 keys round-trip.

use std::ops::Range;

use cafe::protocol::text::{
    Decoded, Fatal, Limits, MAX_GET_LINE, MAX_KEY, MAX_LINE, MetaCmd, Request, TextError, base64,
    decode_request, line_complete, line_end, response,
};
use proptest::collection::vec;
use proptest::prelude::*;

mod common;
use common::codec::{Input, chunks, config, noisy, splits};
use common::text_cases::{Case, LIMITS, Want, cases, show};

/// What one call of the decoder gave, in owned form.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Frame(String, usize),
    Refused(Vec<u8>, bool, u64),
    Incomplete(usize),
    Fatal,
}

fn answer(buf: &[u8], limits: &Limits) -> Answer {
    match decode_request(buf, limits) {
        Ok(Decoded::Complete { frame, consumed }) => {
            check_frame(&frame, buf, consumed);
            Answer::Frame(show(&frame), consumed)
        }
        Ok(Decoded::Rejected { error, skip }) => {
            Answer::Refused(error.reply().to_vec(), error.noreply(), skip)
        }
        Ok(Decoded::Incomplete { needed }) => Answer::Incomplete(needed),
        Err(Fatal::LineTooLong { .. }) => Answer::Fatal,
    }
}

fn expected(case: &Case) -> Answer {
    let len = case.input.len();
    match case.want {
        Want::Frame(text) => Answer::Frame(text.to_string(), len),
        Want::Refused(reply, noreply) => Answer::Refused(reply.to_vec(), noreply, len as u64),
        Want::RefusedSkip(reply, noreply, skip) => Answer::Refused(reply.to_vec(), noreply, skip),
        Want::Fatal => Answer::Fatal,
    }
}

/// Where `part` lies in `whole`, if it is a slice of it.
fn range_in(whole: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start + part.len();
    (end <= whole.len()).then_some(start..end)
}

/// A decoded frame's bytes are the input's own: every key is a whole
/// token of the command line, a value is exactly the data block after it,
/// and the frame was decoded from no more than `consumed` bytes.
fn check_frame(frame: &Request<'_>, buf: &[u8], consumed: usize) {
    assert!(
        consumed <= buf.len(),
        "consumed {consumed} of {}",
        buf.len()
    );
    let line_len = line_end(buf).expect("a frame has a line") + 1;
    let line = &buf[..line_len];
    let is_token = |part: &[u8]| {
        let r = range_in(line, part).expect("a key outside the command line");
        let before = r.start.checked_sub(1).map(|i| line[i]);
        let after = line.get(r.end).copied();
        assert!(!part.is_empty(), "empty key");
        assert!(matches!(before, Some(b' ')), "key not after a space");
        assert!(
            matches!(after, Some(b' ' | b'\r' | b'\n' | 0)),
            "key does not end a token"
        );
    };
    let value_is_block = |value: &[u8]| {
        assert_eq!(range_in(buf, value), Some(line_len..consumed - 2));
        assert_eq!(&buf[consumed - 2..consumed], b"\r\n");
    };
    let mut scratch = [0u8; MAX_KEY];
    match frame {
        Request::Get { keys, .. } => keys.for_each(is_token),
        Request::Store { key, value, .. } => {
            is_token(key);
            value_is_block(value);
        }
        Request::Delete { key, .. } | Request::Arith { key, .. } | Request::Touch { key, .. } => {
            is_token(key)
        }
        Request::MetaGet { key, flags }
        | Request::MetaDelete { key, flags }
        | Request::MetaArith { key, flags }
        | Request::MetaDebug { key, flags } => {
            is_token(key.raw);
            assert!(range_in(line, flags.raw).is_some());
            assert!(key.decode(&mut scratch).is_ok(), "undecodable key");
            assert_eq!(consumed, line_len);
        }
        Request::MetaSet { key, flags, value } => {
            is_token(key.raw);
            assert!(range_in(line, flags.raw).is_some());
            assert!(key.decode(&mut scratch).is_ok(), "undecodable key");
            value_is_block(value);
        }
        Request::Stats { args } => {
            assert!(range_in(line, args).is_some());
            assert_eq!(consumed, line_len);
        }
        _ => assert_eq!(consumed, line_len),
    }
}

#[test]
fn every_case_decodes_as_memcached_answers() {
    for case in cases() {
        assert_eq!(
            answer(&case.input, &LIMITS),
            expected(&case),
            "input \"{}\"",
            common::escape_cut(&case.input, 120)
        );
    }
}

#[test]
fn every_prefix_is_incomplete_until_the_answer_is_known() {
    for case in cases() {
        let full = expected(&case);
        let input = &case.input;
        // Every cut of a short input; around the bounds of a long one.
        let line_len = line_end(input).map_or(input.len(), |i| i + 1);
        let near = |c: usize, mark: usize| c.abs_diff(mark) <= 8;
        let cuts = (0..input.len()).filter(|&c| {
            input.len() <= 4096
                || c <= 64
                || [line_len, input.len(), MAX_LINE, MAX_GET_LINE]
                    .iter()
                    .any(|&mark| near(c, mark))
        });
        let mut settled = false;
        for cut in cuts {
            let prefix = &input[..cut];
            match answer(prefix, &LIMITS) {
                Answer::Incomplete(needed) => {
                    assert!(!settled, "cut {cut}: incomplete after an answer");
                    assert!(needed > cut, "cut {cut}: needed {needed}");
                    if line_complete(prefix) {
                        let total = match &full {
                            Answer::Frame(_, n) => *n as u64,
                            Answer::Refused(_, _, skip) => *skip,
                            other => panic!("cut {cut}: incomplete, then {other:?}"),
                        };
                        assert_eq!(needed as u64, total, "cut {cut}: needed is not exact");
                    } else {
                        assert_eq!(needed, cut + 1, "cut {cut}");
                    }
                }
                early => {
                    settled = true;
                    assert_eq!(early, full, "cut {cut} of \"{}\"", input.escape_ascii());
                }
            }
        }
    }
}

/// The cases whose answer covers exactly their input, so that they can
/// follow one another in a stream.
fn streamable() -> Vec<Case> {
    cases()
        .into_iter()
        .filter(|c| matches!(c.want, Want::Frame(_) | Want::Refused(..)))
        .collect()
}

#[test]
fn cases_decode_back_to_back() {
    let cases = streamable();
    let stream: Vec<u8> = cases.iter().flat_map(|c| c.input.clone()).collect();
    let mut at = 0;
    for case in &cases {
        let got = answer(&stream[at..], &LIMITS);
        assert_eq!(
            got,
            expected(case),
            "at {at}: \"{}\"",
            case.input.escape_ascii()
        );
        at += case.input.len();
    }
    assert_eq!(answer(&stream[at..], &LIMITS), Answer::Incomplete(1));
}

/// The events of a stream, as a connection reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Frame {
        at: usize,
        frame: String,
    },
    Refused {
        at: usize,
        reply: Vec<u8>,
        skip: u64,
    },
    Fatal {
        at: usize,
    },
}

#[derive(Debug, Default)]
struct Reader {
    input: Input,
    events: Vec<Event>,
}

impl Reader {
    fn push(&mut self, chunk: &[u8], limits: &Limits) {
        self.input.receive(chunk);
        while self.input.ready() {
            let pending = &self.input.pending;
            let at = self.input.offset;
            match decode_request(pending, limits) {
                Ok(Decoded::Complete { frame, consumed }) => {
                    check_frame(&frame, pending, consumed);
                    let frame = show(&frame);
                    self.events.push(Event::Frame { at, frame });
                    self.input.consume(consumed);
                }
                Ok(Decoded::Incomplete { needed }) => {
                    assert!(needed > pending.len(), "needed {needed} is there");
                    match line_end(pending) {
                        None => assert_eq!(needed, pending.len() + 1),
                        Some(end) => assert!(needed >= end + 3, "no room for a data block"),
                    }
                    return;
                }
                Ok(Decoded::Rejected { error, skip }) => {
                    let line = line_end(pending).expect("refused without a line") + 1;
                    // At most a line and the longest data block memcached
                    // accepts (i32::MAX - 2) with its `\r\n`.
                    assert!(skip >= line as u64 && skip <= line as u64 + i32::MAX as u64);
                    if matches!(error, TextError::BadDataChunk { .. }) {
                        assert!(skip <= pending.len() as u64, "bad chunk not yet read");
                    }
                    let reply = error.reply().to_vec();
                    self.events.push(Event::Refused { at, reply, skip });
                    self.input.skip(skip);
                }
                Err(Fatal::LineTooLong { limit }) => {
                    assert!(limit == MAX_LINE || limit == MAX_GET_LINE);
                    assert!(pending.len() > MAX_LINE);
                    self.events.push(Event::Fatal { at });
                    self.input.close();
                }
            }
        }
    }
}

fn read<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, limits: &Limits) -> Vec<Event> {
    let mut reader = Reader::default();
    for chunk in chunks {
        reader.push(chunk, limits);
    }
    reader.events
}

#[test]
fn cases_read_one_byte_at_a_time() {
    let stream: Vec<u8> = streamable().iter().flat_map(|c| c.input.clone()).collect();
    let whole = read([&stream[..]], &LIMITS);
    let bytewise = read(stream.chunks(1), &LIMITS);
    assert_eq!(whole, bytewise);
    assert_eq!(whole.len(), streamable().len());
}

// ---------------------------------------------------------------------------
// Generated requests.

/// Key bytes: anything but space, `\n` and NUL (which end a token or a
/// line), with `\r` kept off the end, where it would be a line's.
fn key(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(prop_oneof![4 => b'a'..=b'z', 1 => any::<u8>()], 1..=max).prop_map(|mut k| {
        for b in &mut k {
            if matches!(*b, b' ' | b'\n' | 0) {
                *b = b'_';
            }
        }
        if k.last() == Some(&b'\r') {
            k.push(b'_');
        }
        k
    })
}

/// A valid request in its wire form and the [`show`] of what it must
/// decode to.
fn request(max_key: usize, max_value: usize) -> impl Strategy<Value = (Vec<u8>, String)> {
    let e = |b: &[u8]| b.escape_ascii().to_string();
    let store = (
        prop::sample::select(vec!["set", "add", "replace", "append", "prepend", "cas"]),
        key(max_key),
        any::<u32>(),
        any::<i32>(),
        any::<u64>(),
        any::<bool>(),
        vec(any::<u8>(), 0..=max_value),
    )
        .prop_map(move |(cmd, key, flags, exptime, cas, noreply, value)| {
            let mut wire = format!("{cmd} ").into_bytes();
            wire.extend_from_slice(&key);
            wire.extend(format!(" {flags} {exptime} {}", value.len()).bytes());
            let cas = if cmd == "cas" {
                wire.extend(format!(" {cas}").bytes());
                cas
            } else {
                0
            };
            if noreply {
                wire.extend(b" noreply");
            }
            wire.extend(b"\r\n");
            wire.extend(&value);
            wire.extend(b"\r\n");
            let mut name = cmd.to_string();
            name[..1].make_ascii_uppercase();
            let shown = format!(
                "{name} {} {flags} {exptime} {cas} {noreply} {}",
                e(&key),
                e(&value)
            );
            (wire, shown)
        });
    let get = (
        prop::sample::select(vec!["get", "gets", "gat", "gats"]),
        any::<i32>(),
        vec(key(max_key), 1..8),
    )
        .prop_map(move |(cmd, exptime, keys)| {
            let touch = cmd.starts_with("gat");
            let mut wire = cmd.as_bytes().to_vec();
            if touch {
                wire.extend(format!(" {exptime}").bytes());
            }
            for k in &keys {
                wire.push(b' ');
                wire.extend(k);
            }
            wire.extend(b"\r\n");
            let mut name = cmd.to_string();
            name[..1].make_ascii_uppercase();
            let shown: Vec<String> = keys.iter().map(|k| e(k)).collect();
            let exptime = if touch { exptime } else { 0 };
            (wire, format!("{name} {exptime} [{}]", shown.join(",")))
        });
    let keyed = (
        prop::sample::select(vec!["delete", "incr", "decr", "touch"]),
        key(max_key),
        any::<u64>(),
        any::<i32>(),
        any::<bool>(),
    )
        .prop_map(move |(cmd, key, delta, exptime, noreply)| {
            let arg = match cmd {
                "delete" => String::new(),
                "touch" => format!(" {exptime}"),
                _ => format!(" {delta}"),
            };
            let mut wire = format!("{cmd} ").into_bytes();
            wire.extend(&key);
            wire.extend(arg.bytes());
            if noreply {
                wire.extend(b" noreply");
            }
            wire.extend(b"\r\n");
            let k = e(&key);
            let shown = match cmd {
                "delete" => format!("Delete {k} {noreply}"),
                "touch" => format!("Touch {k} {exptime} {noreply}"),
                "incr" => format!("Incr {k} {delta} {noreply}"),
                _ => format!("Decr {k} {delta} {noreply}"),
            };
            (wire, shown)
        });
    let meta = (
        prop::sample::select(vec!["mg", "md", "ma", "ms"]),
        key(max_key),
        prop::sample::subsequence(
            vec![
                "v", "k", "q", "O123", "T30", "N-1", "C99", "E7", "D5", "J1", "I", "x", "h",
            ],
            0..6,
        ),
        vec(any::<u8>(), 0..=max_value),
    )
        .prop_map(move |(cmd, key, flags, value)| {
            let raw = flags.join(" ");
            let mut wire = format!("{cmd} ").into_bytes();
            wire.extend(&key);
            if cmd == "ms" {
                wire.extend(format!(" {}", value.len()).bytes());
            }
            if !raw.is_empty() {
                wire.push(b' ');
                wire.extend(raw.bytes());
            }
            wire.extend(b"\r\n");
            let mut shown = format!("{cmd} {} [{raw}]", e(&key));
            if cmd == "ms" {
                wire.extend(&value);
                wire.extend(b"\r\n");
                shown = format!("{shown} {}", e(&value));
            }
            (wire, shown)
        });
    prop_oneof![store, get, keyed, meta]
}

/// Streams a server might read: generated requests and table cases, with
/// noise.
fn text_stream() -> impl Strategy<Value = Vec<u8>> {
    let table: Vec<Vec<u8>> = streamable().into_iter().map(|c| c.input).collect();
    let frames = vec(
        prop_oneof![
            3 => request(12, 40).prop_map(|(wire, _)| wire),
            1 => prop::sample::select(table),
        ],
        0..8,
    );
    noisy(b"get ".to_vec(), frames.prop_map(|f| f.concat()))
}

/// Small limits, so that generated requests reach the refusals too.
const STREAM_LIMITS: Limits = Limits {
    max_key_len: 10,
    max_value_len: 32,
};

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn generated_requests_round_trip((wire, shown) in request(250, 300)) {
        match decode_request(&wire, &LIMITS) {
            Ok(Decoded::Complete { frame, consumed }) => {
                check_frame(&frame, &wire, consumed);
                prop_assert_eq!(show(&frame), shown);
                prop_assert_eq!(consumed, wire.len());
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn generated_requests_decode_back_to_back(reqs in vec(request(40, 100), 1..10)) {
        let stream: Vec<u8> = reqs.iter().flat_map(|(w, _)| w.clone()).collect();
        let mut at = 0;
        for (wire, shown) in &reqs {
            match decode_request(&stream[at..], &LIMITS) {
                Ok(Decoded::Complete { frame, consumed }) => {
                    prop_assert_eq!(&show(&frame), shown);
                    prop_assert_eq!(consumed, wire.len());
                    at += consumed;
                }
                other => prop_assert!(false, "at {}: {:?}", at, other),
            }
        }
        prop_assert_eq!(at, stream.len());
    }

    #[test]
    fn decoding_is_consistent_and_split_invariant(stream in text_stream(), cuts in splits()) {
        let whole = read([&stream[..]], &STREAM_LIMITS);
        let pieces = read(chunks(&stream, &cuts), &STREAM_LIMITS);
        prop_assert_eq!(whole, pieces);
    }

    #[test]
    fn decoder_survives_any_bytes(bytes in vec(any::<u8>(), 0..512), cuts in splits()) {
        let whole = read([&bytes[..]], &STREAM_LIMITS);
        let pieces = read(chunks(&bytes, &cuts), &STREAM_LIMITS);
        prop_assert_eq!(whole, pieces);
    }

    /// 186 bytes encode to 248, the longest base64 key within 250.
    #[test]
    fn base64_keys_round_trip(key in vec(any::<u8>(), 1..=186)) {
        let mut coded = Vec::new();
        base64::encode(&key, &mut coded);
        let mut wire = b"mg ".to_vec();
        wire.extend(&coded);
        wire.extend(b" b k v\r\n");
        let Ok(Decoded::Complete { frame: Request::MetaGet { key: k, flags }, .. }) =
            decode_request(&wire, &LIMITS)
        else {
            return Err(TestCaseError::fail("not a meta get"));
        };
        let mut scratch = [0u8; MAX_KEY];
        prop_assert_eq!(k.decode(&mut scratch), Ok(&key[..]));
        // The reply echoes the key encoded again, then `b`.
        let mut out = Vec::new();
        response::meta_reply(&mut out, MetaCmd::Get, b"EN", flags.raw, None, &key, true);
        let mut want = b"EN k".to_vec();
        want.extend(&coded);
        want.extend(b" b\r\n");
        prop_assert_eq!(out, want);
    }
}
