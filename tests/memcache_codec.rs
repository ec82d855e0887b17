//! Property tests for the memcached binary codec (`cafe::protocol::memcache`).
//!
//! Three kinds of property, as for the native codec: encoding then decoding
//! gives back what was encoded, for every command and opcode, one frame or
//! many back to back; the decoders' answers on any bytes at all (random, or
//! valid streams with flips, inserts, removals and truncations) are
//! consistent with the bytes and do not depend on how the stream was split
//! into reads; and request validation follows memcached's rules, restated
//! here independently of the codec in the style of `dispatch_bin_command`.

use cafe::protocol::memcache::{
    Command, Decoded, ErrorKind, FrameError, HEADER_LEN, Header, Limits, REQUEST_MAGIC,
    RESPONSE_MAGIC, Request, RequestError, Response, ResponseError, StoreMode, decode_request,
    decode_response, encode_request, encode_response, opcode, status,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

mod common;
use common::codec::{Input, chunks, config, noisy, splits};

/// Limits for the stream tests: below the largest generated key (12) and
/// value (40), so that refusals are reached by valid frames too, not only by
/// mutated length fields.
const STREAM_LIMITS: Limits = Limits {
    max_key_len: 10,
    max_value_len: 32,
};
/// Response limit for the stream tests, below the largest generated body.
const STREAM_MAX_RESPONSE: usize = 48;

// ---------------------------------------------------------------------------
// Opcodes, grouped by the command they carry.

const GETS: [u8; 4] = [opcode::GET, opcode::GETQ, opcode::GETK, opcode::GETKQ];
const GATS: [u8; 4] = [opcode::GAT, opcode::GATQ, opcode::GATK, opcode::GATKQ];
const SETS: [u8; 2] = [opcode::SET, opcode::SETQ];
const ADDS: [u8; 2] = [opcode::ADD, opcode::ADDQ];
const REPLACES: [u8; 2] = [opcode::REPLACE, opcode::REPLACEQ];
const APPENDS: [u8; 2] = [opcode::APPEND, opcode::APPENDQ];
const PREPENDS: [u8; 2] = [opcode::PREPEND, opcode::PREPENDQ];
const DELETES: [u8; 2] = [opcode::DELETE, opcode::DELETEQ];
const INCRS: [u8; 2] = [opcode::INCREMENT, opcode::INCREMENTQ];
const DECRS: [u8; 2] = [opcode::DECREMENT, opcode::DECREMENTQ];
const FLUSHES: [u8; 2] = [opcode::FLUSH, opcode::FLUSHQ];
const QUITS: [u8; 2] = [opcode::QUIT, opcode::QUITQ];

/// Every opcode the codec runs.
fn known_opcodes() -> Vec<u8> {
    let mut all: Vec<u8> = [
        &GETS[..],
        &GATS,
        &SETS,
        &ADDS,
        &REPLACES,
        &APPENDS,
        &PREPENDS,
        &DELETES,
        &INCRS,
        &DECRS,
        &FLUSHES,
        &QUITS,
        &[
            opcode::TOUCH,
            opcode::NOOP,
            opcode::VERSION,
            opcode::VERBOSITY,
            opcode::STAT,
        ],
    ]
    .concat();
    all.sort_unstable();
    all
}

/// Opcodes whose command carries a cas in the header.
fn carries_cas(op: u8) -> bool {
    [
        &SETS[..],
        &ADDS,
        &REPLACES,
        &APPENDS,
        &PREPENDS,
        &DELETES,
        &INCRS,
        &DECRS,
    ]
    .iter()
    .any(|group| group.contains(&op))
}

// ---------------------------------------------------------------------------
// Owned mirrors of the borrowed frames, so strategies can generate them and
// event logs can hold them.

#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnedCommand {
    Get(Vec<u8>),
    GetAndTouch(Vec<u8>, u32),
    Touch(Vec<u8>, u32),
    Store {
        mode: StoreMode,
        key: Vec<u8>,
        value: Vec<u8>,
        flags: u32,
        exptime: u32,
        cas: u64,
    },
    Concat {
        append: bool,
        key: Vec<u8>,
        value: Vec<u8>,
        cas: u64,
    },
    Delete(Vec<u8>, u64),
    Arith {
        incr: bool,
        key: Vec<u8>,
        delta: u64,
        initial: u64,
        exptime: u32,
        cas: u64,
    },
    Flush(u32),
    Noop,
    Version,
    Quit,
    Verbosity(u32),
    Stat(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct OwnedRequest {
    opcode: u8,
    opaque: u32,
    cmd: OwnedCommand,
}

impl OwnedRequest {
    fn as_request(&self) -> Request<'_> {
        let cmd = match &self.cmd {
            OwnedCommand::Get(key) => Command::Get { key },
            OwnedCommand::GetAndTouch(key, exptime) => Command::GetAndTouch {
                key,
                exptime: *exptime,
            },
            OwnedCommand::Touch(key, exptime) => Command::Touch {
                key,
                exptime: *exptime,
            },
            OwnedCommand::Store {
                mode,
                key,
                value,
                flags,
                exptime,
                cas,
            } => Command::Store {
                mode: *mode,
                key,
                value,
                flags: *flags,
                exptime: *exptime,
                cas: *cas,
            },
            OwnedCommand::Concat {
                append,
                key,
                value,
                cas,
            } => Command::Concat {
                append: *append,
                key,
                value,
                cas: *cas,
            },
            OwnedCommand::Delete(key, cas) => Command::Delete { key, cas: *cas },
            OwnedCommand::Arith {
                incr,
                key,
                delta,
                initial,
                exptime,
                cas,
            } => Command::Arith {
                incr: *incr,
                key,
                delta: *delta,
                initial: *initial,
                exptime: *exptime,
                cas: *cas,
            },
            OwnedCommand::Flush(delay) => Command::Flush { delay: *delay },
            OwnedCommand::Noop => Command::Noop,
            OwnedCommand::Version => Command::Version,
            OwnedCommand::Quit => Command::Quit,
            OwnedCommand::Verbosity(level) => Command::Verbosity { level: *level },
            OwnedCommand::Stat(group) => Command::Stat { group },
        };
        Request {
            opcode: self.opcode,
            opaque: self.opaque,
            cmd,
        }
    }

    fn from_request(req: &Request<'_>) -> OwnedRequest {
        let cmd = match req.cmd {
            Command::Get { key } => OwnedCommand::Get(key.to_vec()),
            Command::GetAndTouch { key, exptime } => {
                OwnedCommand::GetAndTouch(key.to_vec(), exptime)
            }
            Command::Touch { key, exptime } => OwnedCommand::Touch(key.to_vec(), exptime),
            Command::Store {
                mode,
                key,
                value,
                flags,
                exptime,
                cas,
            } => OwnedCommand::Store {
                mode,
                key: key.to_vec(),
                value: value.to_vec(),
                flags,
                exptime,
                cas,
            },
            Command::Concat {
                append,
                key,
                value,
                cas,
            } => OwnedCommand::Concat {
                append,
                key: key.to_vec(),
                value: value.to_vec(),
                cas,
            },
            Command::Delete { key, cas } => OwnedCommand::Delete(key.to_vec(), cas),
            Command::Arith {
                incr,
                key,
                delta,
                initial,
                exptime,
                cas,
            } => OwnedCommand::Arith {
                incr,
                key: key.to_vec(),
                delta,
                initial,
                exptime,
                cas,
            },
            Command::Flush { delay } => OwnedCommand::Flush(delay),
            Command::Noop => OwnedCommand::Noop,
            Command::Version => OwnedCommand::Version,
            Command::Quit => OwnedCommand::Quit,
            Command::Verbosity { level } => OwnedCommand::Verbosity(level),
            Command::Stat { group } => OwnedCommand::Stat(group.to_vec()),
        };
        OwnedRequest {
            opcode: req.opcode,
            opaque: req.opaque,
            cmd,
        }
    }

    fn kind(&self) -> &'static str {
        match self.cmd {
            OwnedCommand::Get(_) => "Get",
            OwnedCommand::GetAndTouch(..) => "GetAndTouch",
            OwnedCommand::Touch(..) => "Touch",
            OwnedCommand::Store { .. } => "Store",
            OwnedCommand::Concat { .. } => "Concat",
            OwnedCommand::Delete(..) => "Delete",
            OwnedCommand::Arith { .. } => "Arith",
            OwnedCommand::Flush(_) => "Flush",
            OwnedCommand::Noop => "Noop",
            OwnedCommand::Version => "Version",
            OwnedCommand::Quit => "Quit",
            OwnedCommand::Verbosity(_) => "Verbosity",
            OwnedCommand::Stat(_) => "Stat",
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode_request(&self.as_request(), &mut out).expect("fits");
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct OwnedResponse {
    opcode: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl OwnedResponse {
    fn as_response(&self) -> Response<'_> {
        Response {
            opcode: self.opcode,
            status: self.status,
            opaque: self.opaque,
            cas: self.cas,
            extras: &self.extras,
            key: &self.key,
            value: &self.value,
        }
    }

    fn from_response(resp: &Response<'_>) -> OwnedResponse {
        OwnedResponse {
            opcode: resp.opcode,
            status: resp.status,
            opaque: resp.opaque,
            cas: resp.cas,
            extras: resp.extras.to_vec(),
            key: resp.key.to_vec(),
            value: resp.value.to_vec(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode_response(&self.as_response(), &mut out);
        out
    }
}

// ---------------------------------------------------------------------------
// Strategies.

/// Any valid request: each command with one of its own opcodes.
fn request(max_key: usize, max_value: usize) -> impl Strategy<Value = OwnedRequest> {
    let key = move || vec(any::<u8>(), 1..=max_key);
    let value = move || vec(any::<u8>(), 0..=max_value);
    let cas = || prop_oneof![Just(0u64), any::<u64>()];
    let ops = |group: &[u8]| select(group.to_vec());
    let with = |ops: BoxedStrategy<u8>, cmd: BoxedStrategy<OwnedCommand>| {
        (ops, any::<u32>(), cmd).prop_map(|(opcode, opaque, cmd)| OwnedRequest {
            opcode,
            opaque,
            cmd,
        })
    };
    let store = |group: &[u8], mode: StoreMode| {
        with(
            ops(group).boxed(),
            (key(), value(), any::<u32>(), any::<u32>(), cas())
                .prop_map(
                    move |(key, value, flags, exptime, cas)| OwnedCommand::Store {
                        mode,
                        key,
                        value,
                        flags,
                        exptime,
                        cas,
                    },
                )
                .boxed(),
        )
    };
    let concat = |group: &[u8], append: bool| {
        with(
            ops(group).boxed(),
            (key(), value(), cas())
                .prop_map(move |(key, value, cas)| OwnedCommand::Concat {
                    append,
                    key,
                    value,
                    cas,
                })
                .boxed(),
        )
    };
    let arith = |group: &[u8], incr: bool| {
        with(
            ops(group).boxed(),
            (key(), any::<u64>(), any::<u64>(), any::<u32>(), cas())
                .prop_map(
                    move |(key, delta, initial, exptime, cas)| OwnedCommand::Arith {
                        incr,
                        key,
                        delta,
                        initial,
                        exptime,
                        cas,
                    },
                )
                .boxed(),
        )
    };
    let fixed = |op: u8, cmd: OwnedCommand| with(Just(op).boxed(), Just(cmd).boxed());
    prop_oneof![
        with(
            ops(&GETS).boxed(),
            key().prop_map(OwnedCommand::Get).boxed()
        ),
        with(
            ops(&GATS).boxed(),
            (key(), any::<u32>())
                .prop_map(|(k, e)| OwnedCommand::GetAndTouch(k, e))
                .boxed()
        ),
        with(
            Just(opcode::TOUCH).boxed(),
            (key(), any::<u32>())
                .prop_map(|(k, e)| OwnedCommand::Touch(k, e))
                .boxed()
        ),
        store(&SETS, StoreMode::Set),
        store(&ADDS, StoreMode::Add),
        store(&REPLACES, StoreMode::Replace),
        concat(&APPENDS, true),
        concat(&PREPENDS, false),
        with(
            ops(&DELETES).boxed(),
            (key(), cas())
                .prop_map(|(k, c)| OwnedCommand::Delete(k, c))
                .boxed()
        ),
        arith(&INCRS, true),
        arith(&DECRS, false),
        with(
            ops(&FLUSHES).boxed(),
            prop_oneof![Just(0u32), any::<u32>()]
                .prop_map(OwnedCommand::Flush)
                .boxed()
        ),
        fixed(opcode::NOOP, OwnedCommand::Noop),
        fixed(opcode::VERSION, OwnedCommand::Version),
        with(ops(&QUITS).boxed(), Just(OwnedCommand::Quit).boxed()),
        with(
            Just(opcode::VERBOSITY).boxed(),
            any::<u32>().prop_map(OwnedCommand::Verbosity).boxed()
        ),
        with(
            Just(opcode::STAT).boxed(),
            vec(any::<u8>(), 0..=max_key)
                .prop_map(OwnedCommand::Stat)
                .boxed()
        ),
    ]
}

fn response(max_part: usize) -> impl Strategy<Value = OwnedResponse> {
    (
        any::<u8>(),
        prop_oneof![Just(0u16), 1u16..=6, Just(0x81u16), any::<u16>()],
        any::<u32>(),
        any::<u64>(),
        prop_oneof![
            Just(Vec::new()),
            vec(any::<u8>(), 4),
            vec(any::<u8>(), 0..=20)
        ],
        vec(any::<u8>(), 0..=max_part),
        vec(any::<u8>(), 0..=max_part),
    )
        .prop_map(
            |(opcode, status, opaque, cas, extras, key, value)| OwnedResponse {
                opcode,
                status,
                opaque,
                cas,
                extras,
                key,
                value,
            },
        )
}

/// Opcodes near and among the defined ones, where the interesting cases are.
fn any_opcode() -> impl Strategy<Value = u8> {
    prop_oneof![select(known_opcodes()), 0u8..=0x26, any::<u8>()]
}

/// Extras lengths some opcode takes, and others.
fn any_extras_len() -> impl Strategy<Value = u8> {
    prop_oneof![select(vec![0u8, 4, 8, 20]), any::<u8>()]
}

/// A frame with a good magic but otherwise arbitrary header (ignored fields
/// included), followed by exactly the body it claims: reaches every
/// refusal without losing framing.
fn hand_made_frame(magic: u8, max_key: u16, max_value: u32) -> impl Strategy<Value = Vec<u8>> {
    (
        any_opcode(),
        any_extras_len(),
        0..=max_key,
        0..=max_value,
        prop_oneof![Just(0u8), any::<u8>()],
        prop_oneof![Just(0u16), any::<u16>()],
        any::<u32>(),
        prop_oneof![Just(0u64), any::<u64>()],
    )
        .prop_flat_map(
            move |(opcode, extras_len, key_len, value_len, data_type, vbucket, opaque, cas)| {
                let body_len = u32::from(extras_len) + u32::from(key_len) + value_len;
                vec(any::<u8>(), body_len as usize).prop_map(move |body| {
                    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
                    Header {
                        magic,
                        opcode,
                        key_len,
                        extras_len,
                        data_type,
                        vbucket_or_status: vbucket,
                        body_len,
                        opaque,
                        cas,
                    }
                    .write(&mut out);
                    out.extend_from_slice(&body);
                    out
                })
            },
        )
}

/// Streams a server might read: random bytes, random bytes after a good
/// magic, and valid or hand-made frames with a few mutations.
fn request_stream() -> impl Strategy<Value = Vec<u8>> {
    let frames = vec(
        prop_oneof![
            3 => request(12, 40).prop_map(|r| r.encode()),
            1 => hand_made_frame(REQUEST_MAGIC, 12, 40),
        ],
        0..8,
    );
    noisy(vec![REQUEST_MAGIC], frames.prop_map(|f| f.concat()))
}

/// As [`request_stream`], for the client's side.
fn response_stream() -> impl Strategy<Value = Vec<u8>> {
    let frames = vec(
        prop_oneof![
            3 => response(24).prop_map(|r| r.encode()),
            1 => hand_made_frame(RESPONSE_MAGIC, 12, 40),
        ],
        0..8,
    );
    noisy(vec![RESPONSE_MAGIC], frames.prop_map(|f| f.concat()))
}

// ---------------------------------------------------------------------------
// What re-encoding a decoded frame must give: the bytes it was decoded from,
// with the fields the codec ignores (data type, vbucket id, the cas of a
// command without one) zeroed, and a FLUSH whose delay is an explicit zero
// written without extras. Nothing else may differ.

fn canonical_request(frame: &[u8]) -> Vec<u8> {
    let h = Header::parse(frame).expect("a whole frame");
    let mut out = frame.to_vec();
    out[5] = 0;
    out[6..8].fill(0);
    if !carries_cas(h.opcode) {
        out[16..24].fill(0);
    }
    if FLUSHES.contains(&h.opcode) && h.extras_len == 4 && out[24..28] == [0; 4] {
        out.truncate(HEADER_LEN);
        out[4] = 0;
        out[8..12].fill(0);
    }
    out
}

fn canonical_response(frame: &[u8]) -> Vec<u8> {
    let mut out = frame.to_vec();
    out[5] = 0;
    out
}

// ---------------------------------------------------------------------------
// Incremental decoding the way a connection does it: append what arrived,
// decode as much as possible, keep the rest. Each step checks the decoder's
// answer against the bytes it was given.

#[derive(Debug, Clone, PartialEq, Eq)]
enum RequestEvent {
    Frame {
        at: usize,
        req: OwnedRequest,
    },
    Rejected {
        at: usize,
        error: RequestError,
        skip: u64,
    },
    Fatal {
        at: usize,
        error: FrameError,
    },
}

#[derive(Debug, Default, PartialEq, Eq)]
struct RequestReader {
    input: Input,
    events: Vec<RequestEvent>,
}

impl RequestReader {
    fn push(&mut self, chunk: &[u8], limits: &Limits) {
        self.input.receive(chunk);
        while self.input.ready() {
            match decode_request(&self.input.pending, limits) {
                Ok(Decoded::Complete { frame, consumed }) => {
                    assert!(consumed >= HEADER_LEN && consumed <= self.input.pending.len());
                    let mut again = Vec::new();
                    encode_request(&frame, &mut again).expect("decoded frames fit");
                    assert_eq!(
                        again,
                        canonical_request(&self.input.pending[..consumed]),
                        "frame re-encodes to other bytes than it was decoded from"
                    );
                    self.events.push(RequestEvent::Frame {
                        at: self.input.offset,
                        req: OwnedRequest::from_request(&frame),
                    });
                    self.input.consume(consumed);
                }
                Ok(Decoded::Incomplete { needed }) => {
                    assert!(
                        needed > self.input.pending.len(),
                        "needed {needed} is available"
                    );
                    if let Some(h) = Header::parse(&self.input.pending) {
                        assert_eq!(needed as u64, h.frame_len(), "needed is not exact");
                    } else {
                        assert_eq!(needed, HEADER_LEN);
                    }
                    return;
                }
                Ok(Decoded::Rejected { error, skip }) => {
                    let h =
                        Header::parse(&self.input.pending).expect("rejected before a whole header");
                    assert_eq!(h.magic, REQUEST_MAGIC);
                    assert_eq!(skip, HEADER_LEN as u64 + u64::from(h.body_len));
                    assert_eq!((error.opcode, error.opaque), (h.opcode, h.opaque));
                    assert_eq!(Some((error.status, error.kind)), verdict(&h, limits));
                    self.events.push(RequestEvent::Rejected {
                        at: self.input.offset,
                        error,
                        skip,
                    });
                    // A server closes after a Malformed refusal; reading on
                    // with `skip` tests more of the stream, and `skip` must
                    // be right either way.
                    self.input.skip(skip);
                }
                Err(error) => {
                    let FrameError::BadMagic(m) = error;
                    assert_eq!(Some(&m), self.input.pending.first());
                    assert_ne!(m, REQUEST_MAGIC);
                    self.events.push(RequestEvent::Fatal {
                        at: self.input.offset,
                        error,
                    });
                    self.input.close();
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ResponseEvent {
    Frame { at: usize, resp: OwnedResponse },
    Fatal { at: usize, error: ResponseError },
}

#[derive(Debug, Default, PartialEq, Eq)]
struct ResponseReader {
    input: Input,
    events: Vec<ResponseEvent>,
}

impl ResponseReader {
    fn push(&mut self, chunk: &[u8], max: usize) {
        self.input.receive(chunk);
        while self.input.ready() {
            match decode_response(&self.input.pending, max) {
                Ok(Decoded::Complete { frame, consumed }) => {
                    assert!(consumed >= HEADER_LEN && consumed <= self.input.pending.len());
                    assert!(consumed - HEADER_LEN <= max);
                    let mut again = Vec::new();
                    encode_response(&frame, &mut again);
                    assert_eq!(
                        again,
                        canonical_response(&self.input.pending[..consumed]),
                        "frame re-encodes to other bytes than it was decoded from"
                    );
                    self.events.push(ResponseEvent::Frame {
                        at: self.input.offset,
                        resp: OwnedResponse::from_response(&frame),
                    });
                    self.input.consume(consumed);
                }
                Ok(Decoded::Incomplete { needed }) => {
                    assert!(
                        needed > self.input.pending.len(),
                        "needed {needed} is available"
                    );
                    if let Some(h) = Header::parse(&self.input.pending) {
                        assert_eq!(needed as u64, h.frame_len(), "needed is not exact");
                    }
                    return;
                }
                Ok(Decoded::Rejected { .. }) => panic!("a response was rejected like a request"),
                Err(error) => {
                    let header = || {
                        Header::parse(&self.input.pending).expect("response error before a header")
                    };
                    match error {
                        ResponseError::BadMagic(m) => {
                            assert_eq!(Some(&m), self.input.pending.first());
                            assert_ne!(m, RESPONSE_MAGIC);
                        }
                        ResponseError::TooLarge { len, max: m } => {
                            assert_eq!((len, m), (u64::from(header().body_len), max));
                            assert!(len > max as u64);
                        }
                        ResponseError::Malformed => {
                            let h = header();
                            assert!(u32::from(h.extras_len) + u32::from(h.key_len) > h.body_len);
                        }
                    }
                    self.events.push(ResponseEvent::Fatal {
                        at: self.input.offset,
                        error,
                    });
                    self.input.close();
                }
            }
        }
    }
}

fn read_requests<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, limits: &Limits) -> RequestReader {
    let mut r = RequestReader::default();
    for c in chunks {
        r.push(c, limits);
    }
    r
}

fn read_responses<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, max: usize) -> ResponseReader {
    let mut r = ResponseReader::default();
    for c in chunks {
        r.push(c, max);
    }
    r
}

// ---------------------------------------------------------------------------
// memcached's rules, restated in the shape of its `dispatch_bin_command`:
// the answer memcached gives a request header, or None where it runs it.

fn verdict(h: &Header, limits: &Limits) -> Option<(u16, ErrorKind)> {
    let extlen = u32::from(h.extras_len);
    let keylen = u32::from(h.key_len);
    let bodylen = h.body_len;
    if u64::from(keylen) + u64::from(extlen) > u64::from(bodylen) {
        return Some((status::EINVAL, ErrorKind::Malformed));
    }
    if keylen as usize > limits.max_key_len {
        return Some((status::EINVAL, ErrorKind::Malformed));
    }
    let op = h.opcode;
    let value_len = bodylen - keylen - extlen;
    let fits = if GETS.contains(&op) || DELETES.contains(&op) {
        extlen == 0 && bodylen == keylen && keylen > 0
    } else if [&SETS[..], &ADDS, &REPLACES]
        .iter()
        .any(|g| g.contains(&op))
    {
        extlen == 8 && keylen != 0 && bodylen >= keylen + 8
    } else if APPENDS.contains(&op) || PREPENDS.contains(&op) {
        keylen > 0 && extlen == 0
    } else if INCRS.contains(&op) || DECRS.contains(&op) {
        keylen > 0 && extlen == 20 && bodylen == keylen + extlen
    } else if GATS.contains(&op) || op == opcode::TOUCH {
        // memcached: extlen == 4 && keylen != 0; the wiki adds no value.
        extlen == 4 && keylen != 0 && bodylen == keylen + extlen
    } else if FLUSHES.contains(&op) {
        keylen == 0 && bodylen == extlen && (extlen == 0 || extlen == 4)
    } else if [opcode::NOOP, opcode::VERSION, opcode::QUIT, opcode::QUITQ].contains(&op) {
        extlen == 0 && keylen == 0 && bodylen == 0
    } else if op == opcode::VERBOSITY {
        extlen == 4 && keylen == 0 && bodylen == 4
    } else if op == opcode::STAT {
        // memcached: extlen == 0; the wiki adds no value.
        extlen == 0 && bodylen == keylen
    } else {
        return Some((status::UNKNOWN_COMMAND, ErrorKind::UnknownCommand));
    };
    if !fits {
        return Some((status::EINVAL, ErrorKind::Malformed));
    }
    let stores = [&SETS[..], &ADDS, &REPLACES, &APPENDS, &PREPENDS]
        .iter()
        .any(|g| g.contains(&op));
    if stores && value_len as usize > limits.max_value_len {
        return Some((status::E2BIG, ErrorKind::TooLarge));
    }
    None
}

/// The command an accepted header with this body decodes to, read field by
/// field from the wire layout.
fn expected_command(h: &Header, body: &[u8]) -> OwnedCommand {
    let (extras, rest) = body.split_at(usize::from(h.extras_len));
    let (key, value) = rest.split_at(usize::from(h.key_len));
    let (key, value) = (key.to_vec(), value.to_vec());
    let u32_at = |at: usize| u32::from_be_bytes(extras[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_be_bytes(extras[at..at + 8].try_into().unwrap());
    let op = h.opcode;
    let cas = h.cas;
    if GETS.contains(&op) {
        OwnedCommand::Get(key)
    } else if GATS.contains(&op) {
        OwnedCommand::GetAndTouch(key, u32_at(0))
    } else if op == opcode::TOUCH {
        OwnedCommand::Touch(key, u32_at(0))
    } else if let Some(mode) = [
        (&SETS, StoreMode::Set),
        (&ADDS, StoreMode::Add),
        (&REPLACES, StoreMode::Replace),
    ]
    .iter()
    .find(|(g, _)| g.contains(&op))
    .map(|&(_, m)| m)
    {
        OwnedCommand::Store {
            mode,
            key,
            value,
            flags: u32_at(0),
            exptime: u32_at(4),
            cas,
        }
    } else if APPENDS.contains(&op) || PREPENDS.contains(&op) {
        OwnedCommand::Concat {
            append: APPENDS.contains(&op),
            key,
            value,
            cas,
        }
    } else if DELETES.contains(&op) {
        OwnedCommand::Delete(key, cas)
    } else if INCRS.contains(&op) || DECRS.contains(&op) {
        OwnedCommand::Arith {
            incr: INCRS.contains(&op),
            key,
            delta: u64_at(0),
            initial: u64_at(8),
            exptime: u32_at(16),
            cas,
        }
    } else if FLUSHES.contains(&op) {
        OwnedCommand::Flush(if extras.is_empty() { 0 } else { u32_at(0) })
    } else if QUITS.contains(&op) {
        OwnedCommand::Quit
    } else if op == opcode::NOOP {
        OwnedCommand::Noop
    } else if op == opcode::VERSION {
        OwnedCommand::Version
    } else if op == opcode::VERBOSITY {
        OwnedCommand::Verbosity(u32_at(0))
    } else {
        assert_eq!(op, opcode::STAT);
        OwnedCommand::Stat(key)
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn request_round_trips(req in request(250, 2048)) {
        let bytes = req.encode();
        match decode_request(&bytes, &Limits::default()) {
            Ok(Decoded::Complete { frame, consumed }) => {
                prop_assert_eq!(frame, req.as_request());
                prop_assert_eq!(consumed, bytes.len());
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn response_round_trips(resp in response(2048)) {
        let bytes = resp.encode();
        match decode_response(&bytes, 8192) {
            Ok(Decoded::Complete { frame, consumed }) => {
                prop_assert_eq!(frame, resp.as_response());
                prop_assert_eq!(consumed, bytes.len());
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn back_to_back_requests_decode_frame_by_frame(reqs in vec(request(32, 256), 1..10)) {
        let bytes: Vec<u8> = reqs.iter().flat_map(OwnedRequest::encode).collect();
        let mut at = 0;
        for req in &reqs {
            match decode_request(&bytes[at..], &Limits::default()) {
                Ok(Decoded::Complete { frame, consumed }) => {
                    prop_assert_eq!(frame, req.as_request());
                    prop_assert_eq!(consumed, req.encode().len());
                    at += consumed;
                }
                other => prop_assert!(false, "at {}: {:?}", at, other),
            }
        }
        prop_assert_eq!(at, bytes.len());
        prop_assert_eq!(
            decode_request(&bytes[at..], &Limits::default()),
            Ok(Decoded::Incomplete { needed: HEADER_LEN })
        );
    }

    #[test]
    fn back_to_back_responses_decode_frame_by_frame(resps in vec(response(64), 1..10)) {
        let bytes: Vec<u8> = resps.iter().flat_map(OwnedResponse::encode).collect();
        let mut at = 0;
        for resp in &resps {
            match decode_response(&bytes[at..], 256) {
                Ok(Decoded::Complete { frame, consumed }) => {
                    prop_assert_eq!(frame, resp.as_response());
                    prop_assert_eq!(consumed, resp.encode().len());
                    at += consumed;
                }
                other => prop_assert!(false, "at {}: {:?}", at, other),
            }
        }
        prop_assert_eq!(at, bytes.len());
    }

    #[test]
    fn validation_follows_memcached(
        opcode in any_opcode(),
        extras_len in any_extras_len(),
        key_len in 0u16..12,
        value_len in prop_oneof![0u32..24, any::<u32>()],
        body_delta in prop_oneof![8 => Just(0i64), 1 => -30i64..30],
        opaque in any::<u32>(),
    ) {
        let limits = Limits { max_key_len: 8, max_value_len: 16 };
        let exact = i64::from(extras_len) + i64::from(key_len) + i64::from(value_len);
        let body_len = (exact + body_delta).clamp(0, i64::from(u32::MAX)) as u32;
        let h = Header {
            magic: REQUEST_MAGIC,
            opcode,
            key_len,
            extras_len,
            data_type: 0,
            vbucket_or_status: 0,
            body_len,
            opaque,
            cas: 0,
        };
        let mut bytes = Vec::new();
        h.write(&mut bytes);
        let expected = verdict(&h, &limits);
        match decode_request(&bytes, &limits) {
            Ok(Decoded::Rejected { error, skip }) => {
                prop_assert_eq!(Some((error.status, error.kind)), expected);
                prop_assert_eq!((error.opcode, error.opaque), (opcode, opaque));
                prop_assert_eq!(skip, h.frame_len());
                prop_assert_eq!(error.closes_connection(), error.kind == ErrorKind::Malformed);
            }
            Ok(Decoded::Incomplete { needed }) => {
                prop_assert_eq!(expected, None);
                prop_assert_eq!(needed as u64, h.frame_len());
            }
            Ok(Decoded::Complete { consumed, .. }) => {
                prop_assert_eq!(expected, None);
                prop_assert_eq!(consumed, HEADER_LEN);
            }
            Err(e) => prop_assert!(false, "framing error {:?} on a good header", e),
        }
        if expected.is_none() {
            // The accepted header, given its body, decodes to its own fields.
            let body: Vec<u8> = (0..body_len).map(|i| (i * 7) as u8).collect();
            bytes.extend_from_slice(&body);
            let Ok(Decoded::Complete { frame, consumed }) = decode_request(&bytes, &limits) else {
                return Err(TestCaseError::fail("accepted header did not complete"));
            };
            prop_assert_eq!(consumed, bytes.len());
            prop_assert_eq!((frame.opcode, frame.opaque), (opcode, opaque));
            prop_assert_eq!(OwnedRequest::from_request(&frame).cmd, expected_command(&h, &body));
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn request_decoding_is_consistent_and_split_invariant(
        bytes in request_stream(),
        cuts in splits(),
    ) {
        let whole = read_requests([bytes.as_slice()], &STREAM_LIMITS);
        let split = read_requests(chunks(&bytes, &cuts), &STREAM_LIMITS);
        prop_assert_eq!(&whole, &split);
        // Every byte is accounted for: consumed, being skipped, pending, or
        // after a fatal error.
        prop_assert!(whole.input.offset + whole.input.pending.len() <= bytes.len());
        if !whole.input.dead {
            prop_assert_eq!(whole.input.offset + whole.input.pending.len(), bytes.len());
        }
    }

    #[test]
    fn response_decoding_is_consistent_and_split_invariant(
        bytes in response_stream(),
        cuts in splits(),
    ) {
        let whole = read_responses([bytes.as_slice()], STREAM_MAX_RESPONSE);
        let split = read_responses(chunks(&bytes, &cuts), STREAM_MAX_RESPONSE);
        prop_assert_eq!(&whole, &split);
        if !whole.input.dead {
            prop_assert_eq!(whole.input.offset + whole.input.pending.len(), bytes.len());
        }
    }

    #[test]
    fn decoders_survive_any_bytes(bytes in vec(any::<u8>(), 0..512), max in 0usize..64) {
        let limits = Limits { max_key_len: max, max_value_len: max };
        let r = read_requests([bytes.as_slice()], &limits);
        // Every byte is consumed, skipped or pending, unless the stream died.
        prop_assert!(r.input.dead || r.input.offset + r.input.pending.len() == bytes.len());
        let r = read_responses([bytes.as_slice()], max);
        // Every byte is consumed, skipped or pending, unless the stream died.
        prop_assert!(r.input.dead || r.input.offset + r.input.pending.len() == bytes.len());
        // And with a good magic in front, so the header is read.
        let mut framed = vec![REQUEST_MAGIC];
        framed.extend_from_slice(&bytes);
        read_requests([framed.as_slice()], &limits);
        framed[0] = RESPONSE_MAGIC;
        read_responses([framed.as_slice()], max);
    }
}

// ---------------------------------------------------------------------------
// Deterministic: every opcode, and one byte at a time against the whole
// stream.

/// One request for every opcode the codec runs.
fn one_of_each() -> Vec<OwnedRequest> {
    known_opcodes()
        .into_iter()
        .map(|op| {
            let key = b"key".to_vec();
            let cmd = if GETS.contains(&op) {
                OwnedCommand::Get(key)
            } else if GATS.contains(&op) {
                OwnedCommand::GetAndTouch(key, 60)
            } else if op == opcode::TOUCH {
                OwnedCommand::Touch(key, 60)
            } else if SETS.contains(&op) || ADDS.contains(&op) || REPLACES.contains(&op) {
                OwnedCommand::Store {
                    mode: if SETS.contains(&op) {
                        StoreMode::Set
                    } else if ADDS.contains(&op) {
                        StoreMode::Add
                    } else {
                        StoreMode::Replace
                    },
                    key,
                    value: b"value".to_vec(),
                    flags: 7,
                    exptime: 60,
                    cas: 9,
                }
            } else if APPENDS.contains(&op) || PREPENDS.contains(&op) {
                OwnedCommand::Concat {
                    append: APPENDS.contains(&op),
                    key,
                    value: b"!".to_vec(),
                    cas: 0,
                }
            } else if DELETES.contains(&op) {
                OwnedCommand::Delete(key, 3)
            } else if INCRS.contains(&op) || DECRS.contains(&op) {
                OwnedCommand::Arith {
                    incr: INCRS.contains(&op),
                    key,
                    delta: 5,
                    initial: 1,
                    exptime: u32::MAX,
                    cas: 0,
                }
            } else if FLUSHES.contains(&op) {
                OwnedCommand::Flush(10)
            } else if QUITS.contains(&op) {
                OwnedCommand::Quit
            } else if op == opcode::NOOP {
                OwnedCommand::Noop
            } else if op == opcode::VERSION {
                OwnedCommand::Version
            } else if op == opcode::VERBOSITY {
                OwnedCommand::Verbosity(1)
            } else {
                OwnedCommand::Stat(b"items".to_vec())
            };
            OwnedRequest {
                opcode: op,
                opaque: u32::from(op) << 8,
                cmd,
            }
        })
        .collect()
}

#[test]
fn every_opcode_round_trips_and_keeps_its_form() {
    let all = one_of_each();
    assert_eq!(all.len(), 33);
    for req in &all {
        let bytes = req.encode();
        assert_eq!(bytes[1], req.opcode);
        let Ok(Decoded::Complete { frame, consumed }) = decode_request(&bytes, &Limits::default())
        else {
            panic!("opcode 0x{:02x} did not decode", req.opcode);
        };
        assert_eq!(consumed, bytes.len());
        assert_eq!(OwnedRequest::from_request(&frame), *req);
        // Against the binary protocol's table, not the codec's own helper.
        assert_eq!(
            frame.is_quiet(),
            QUIET.contains(&req.opcode),
            "0x{:02x}",
            req.opcode
        );
        assert_eq!(
            frame.returns_key(),
            KEYED.contains(&req.opcode),
            "0x{:02x}",
            req.opcode
        );
    }
}

/// The quiet forms, from the protocol's opcode table (BinaryProtocolRevamped).
const QUIET: [u8; 14] = [
    0x09, 0x0d, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1e, 0x24,
];
/// The forms whose response carries the key: GETK, GETKQ, GATK, GATKQ.
const KEYED: [u8; 4] = [0x0c, 0x0d, 0x23, 0x24];

#[test]
fn opcodes_outside_the_table_are_unknown() {
    let known = known_opcodes();
    for op in (0..=u8::MAX).filter(|op| !known.contains(op)) {
        let mut bytes = Vec::new();
        Header {
            magic: REQUEST_MAGIC,
            opcode: op,
            key_len: 0,
            extras_len: 0,
            data_type: 0,
            vbucket_or_status: 0,
            body_len: 0,
            opaque: 1,
            cas: 0,
        }
        .write(&mut bytes);
        match decode_request(&bytes, &Limits::default()) {
            Ok(Decoded::Rejected { error, skip }) => {
                assert_eq!(error.kind, ErrorKind::UnknownCommand, "opcode 0x{op:02x}");
                assert_eq!(skip, HEADER_LEN as u64);
            }
            other => panic!("opcode 0x{op:02x}: {other:?}"),
        }
    }
}

fn raw_frame(op: u8, extras_len: u8, key_len: u16, body_len: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Header {
        magic: REQUEST_MAGIC,
        opcode: op,
        key_len,
        extras_len,
        data_type: 0,
        vbucket_or_status: 0,
        body_len,
        opaque: 0,
        cas: 0,
    }
    .write(&mut out);
    out.extend_from_slice(body);
    out
}

#[test]
fn requests_one_byte_at_a_time() {
    let limits = Limits::default();
    let mut bytes: Vec<u8> = one_of_each()
        .iter()
        .flat_map(OwnedRequest::encode)
        .collect();
    let big = OwnedRequest {
        opcode: opcode::SETQ,
        opaque: 77,
        cmd: OwnedCommand::Store {
            mode: StoreMode::Set,
            key: b"big".to_vec(),
            value: vec![0xCA; 300],
            flags: 0,
            exptime: 0,
            cas: 0,
        },
    };
    let big_at = bytes.len();
    bytes.extend(big.encode());
    bytes.extend(raw_frame(opcode::GET, 0, 0, 0, b""));
    bytes.extend(raw_frame(0x42, 2, 3, 10, b"xyzk12345!"));
    bytes.extend(raw_frame(opcode::SET, 8, 251, 259, &[b'k'; 259]));
    bytes.extend(raw_frame(opcode::APPEND, 0, 1, 1 << 20 | 2, b"k"));
    bytes.extend(vec![0xEE; (1 << 20) + 1]);
    bytes.extend(raw_frame(opcode::DELETE, 8, 3, 4, b"abcd"));
    let noop_at = bytes.len();
    bytes.extend(
        OwnedRequest {
            opcode: opcode::NOOP,
            opaque: 5,
            cmd: OwnedCommand::Noop,
        }
        .encode(),
    );
    let garbage_at = bytes.len();
    bytes.extend_from_slice(b"get foo\r\n");

    let whole = read_requests([bytes.as_slice()], &limits);
    let bytewise = read_requests(bytes.chunks(1), &limits);
    assert_eq!(whole, bytewise);

    let summary: Vec<String> = whole
        .events
        .iter()
        .skip(33)
        .map(|e| match e {
            RequestEvent::Frame { req, .. } => req.kind().to_owned(),
            RequestEvent::Rejected { error, .. } => format!(
                "{:?} {} close={}",
                error.kind,
                error,
                error.closes_connection()
            ),
            RequestEvent::Fatal { error, .. } => format!("fatal {error}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "Store",
            "Malformed Invalid arguments close=true",
            "UnknownCommand Unknown command close=false",
            "Malformed Invalid arguments close=true",
            "TooLarge Too large. close=false",
            "Malformed Invalid arguments close=true",
            "Noop",
            "fatal bad magic 0x67, expected 0x80",
        ]
    );
    let frames: Vec<&OwnedRequest> = whole
        .events
        .iter()
        .filter_map(|e| match e {
            RequestEvent::Frame { req, .. } => Some(req),
            _ => None,
        })
        .take(33)
        .collect();
    assert_eq!(frames, one_of_each().iter().collect::<Vec<_>>());
    assert!(whole.events.contains(&RequestEvent::Frame {
        at: big_at,
        req: big
    }));
    assert!(matches!(
        whole.events[whole.events.len() - 2],
        RequestEvent::Frame { at, .. } if at == noop_at
    ));
    assert_eq!(whole.input.offset, garbage_at);
}

#[test]
fn responses_one_byte_at_a_time() {
    let resps = [
        OwnedResponse {
            opcode: opcode::GETK,
            status: status::NO_ERROR,
            opaque: 1,
            cas: 42,
            extras: vec![0, 0, 0, 3],
            key: b"hello".to_vec(),
            value: b"world".to_vec(),
        },
        OwnedResponse {
            opcode: opcode::GET,
            status: status::KEY_ENOENT,
            opaque: 2,
            cas: 0,
            extras: Vec::new(),
            key: Vec::new(),
            value: b"Not found".to_vec(),
        },
        OwnedResponse {
            opcode: opcode::INCREMENT,
            status: status::NO_ERROR,
            opaque: 3,
            cas: 5,
            extras: Vec::new(),
            key: Vec::new(),
            value: 7u64.to_be_bytes().to_vec(),
        },
        OwnedResponse {
            opcode: opcode::STAT,
            status: status::NO_ERROR,
            opaque: 4,
            cas: 0,
            extras: Vec::new(),
            key: Vec::new(),
            value: vec![1; 40],
        },
    ];
    let mut bytes: Vec<u8> = resps.iter().flat_map(OwnedResponse::encode).collect();
    let bad_at = bytes.len();
    let mut bad = Vec::new();
    Header {
        magic: RESPONSE_MAGIC,
        opcode: opcode::GET,
        key_len: 4,
        extras_len: 4,
        data_type: 0,
        vbucket_or_status: 0,
        body_len: 6,
        opaque: 0,
        cas: 0,
    }
    .write(&mut bad);
    bytes.extend(bad);

    let whole = read_responses([bytes.as_slice()], 64);
    let bytewise = read_responses(bytes.chunks(1), 64);
    assert_eq!(whole, bytewise);
    let frames: Vec<&OwnedResponse> = whole
        .events
        .iter()
        .filter_map(|e| match e {
            ResponseEvent::Frame { resp, .. } => Some(resp),
            ResponseEvent::Fatal { .. } => None,
        })
        .collect();
    assert_eq!(frames, resps.iter().collect::<Vec<_>>());
    assert_eq!(
        whole.events.last(),
        Some(&ResponseEvent::Fatal {
            at: bad_at,
            error: ResponseError::Malformed
        })
    );

    // The same stream with a limit below the fourth body stops there.
    let limited = read_responses(bytes.chunks(1), 39);
    assert_eq!(limited.events.len(), 4);
    assert!(matches!(
        limited.events[3],
        ResponseEvent::Fatal {
            error: ResponseError::TooLarge { len: 40, max: 39 },
            ..
        }
    ));
}
