//! Property tests for the native codec (`cafe::protocol::native`).
//!
//! Three kinds of property: encoding then decoding gives back what was
//! encoded, one frame or many back to back; the decoders' answers on any
//! bytes at all (random, or valid streams with flips, inserts, removals and
//! truncations) are consistent with the bytes and do not depend on how the
//! stream was split into reads; and request validation agrees with the rules
//! of the protocol, written here independently of the codec.

use cafe::protocol::native::{
    Decoded, FrameError, HEADER_LEN, Header, Limits, MAGIC, Request, RequestError, Response,
    ResponseError, Status, TTL_LEN, VERSION, decode_request, decode_response, encode_request,
    encode_response, opcode,
};
use proptest::collection::vec;
use proptest::prelude::*;

mod common;
use common::codec::{Input, chunks, config, noisy, splits};

/// Response limit for the stream tests: below the largest generated value
/// (64), so that the too-large refusal is reached by valid frames too, not
/// only by mutated length fields.
const STREAM_MAX_RESPONSE: usize = 48;

// ---------------------------------------------------------------------------
// Owned mirrors of the borrowed frames, so strategies can generate them and
// event logs can hold them.

#[derive(Debug, Clone, PartialEq, Eq)]
enum OwnedRequest {
    Get(Vec<u8>),
    Set {
        key: Vec<u8>,
        value: Vec<u8>,
        flags: u16,
        ttl: Option<u32>,
    },
    Delete(Vec<u8>),
    Noop,
    Stats,
}

impl OwnedRequest {
    fn as_request(&self) -> Request<'_> {
        match self {
            OwnedRequest::Get(key) => Request::Get { key },
            OwnedRequest::Set {
                key,
                value,
                flags,
                ttl,
            } => Request::Set {
                key,
                value,
                flags: *flags,
                ttl: *ttl,
            },
            OwnedRequest::Delete(key) => Request::Delete { key },
            OwnedRequest::Noop => Request::Noop,
            OwnedRequest::Stats => Request::Stats,
        }
    }

    fn from_request(req: &Request<'_>) -> OwnedRequest {
        match *req {
            Request::Get { key } => OwnedRequest::Get(key.to_vec()),
            Request::Set {
                key,
                value,
                flags,
                ttl,
            } => OwnedRequest::Set {
                key: key.to_vec(),
                value: value.to_vec(),
                flags,
                ttl,
            },
            Request::Delete { key } => OwnedRequest::Delete(key.to_vec()),
            Request::Noop => OwnedRequest::Noop,
            Request::Stats => OwnedRequest::Stats,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            OwnedRequest::Get(_) => "Get",
            OwnedRequest::Set { .. } => "Set",
            OwnedRequest::Delete(_) => "Delete",
            OwnedRequest::Noop => "Noop",
            OwnedRequest::Stats => "Stats",
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
    status: Status,
    flags: u16,
    value: Vec<u8>,
}

impl OwnedResponse {
    fn as_response(&self) -> Response<'_> {
        Response {
            status: self.status,
            flags: self.flags,
            value: &self.value,
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

fn request(max_key: usize, max_value: usize) -> impl Strategy<Value = OwnedRequest> {
    let key = move || vec(any::<u8>(), 1..=max_key);
    let value = vec(any::<u8>(), 0..=max_value);
    prop_oneof![
        key().prop_map(OwnedRequest::Get),
        (
            key(),
            value,
            any::<u16>(),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(key, value, flags, ttl)| OwnedRequest::Set {
                key,
                value,
                flags,
                ttl
            }),
        key().prop_map(OwnedRequest::Delete),
        Just(OwnedRequest::Noop),
        Just(OwnedRequest::Stats),
    ]
}

/// Every status that survives a round trip: `Unknown` of a known response
/// opcode would decode as that opcode's own status.
fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Ok),
        Just(Status::Err),
        Just(Status::NotFound),
        any::<u8>()
            .prop_filter("known response opcode", |op| !(128..=130).contains(op))
            .prop_map(Status::Unknown),
    ]
}

fn response(max_value: usize) -> impl Strategy<Value = OwnedResponse> {
    (status(), any::<u16>(), vec(any::<u8>(), 0..=max_value)).prop_map(|(status, flags, value)| {
        OwnedResponse {
            status,
            flags,
            value,
        }
    })
}

/// Opcodes near the defined ones, where the interesting cases are.
fn any_opcode() -> impl Strategy<Value = u8> {
    prop_oneof![0u8..=8, 126u8..=132, any::<u8>()]
}

fn any_flags() -> impl Strategy<Value = u16> {
    prop_oneof![Just(0u16), any::<u16>()]
}

/// A frame with a good magic and version but otherwise arbitrary header,
/// followed by exactly the body it claims: reaches every semantic rejection
/// (and, for responses, a key) without losing framing.
fn hand_made_frame(max_key: u16, max_value: u32) -> impl Strategy<Value = Vec<u8>> {
    (any_opcode(), any_flags(), 0..=max_key, 0..=max_value).prop_flat_map(
        |(opcode, flags, key_len, value_len)| {
            let body_len = usize::from(key_len) + value_len as usize;
            vec(any::<u8>(), body_len).prop_map(move |body| {
                let mut out = Vec::with_capacity(HEADER_LEN + body.len());
                Header {
                    magic: MAGIC,
                    version: VERSION,
                    opcode,
                    flags,
                    key_len,
                    value_len,
                }
                .write(&mut out);
                out.extend_from_slice(&body);
                out
            })
        },
    )
}

/// Streams a server might read: random bytes, random bytes after a good
/// magic and version, and valid or hand-made frames with a few mutations.
fn request_stream() -> impl Strategy<Value = Vec<u8>> {
    let frames = vec(
        prop_oneof![
            3 => request(12, 40).prop_map(|r| r.encode()),
            1 => hand_made_frame(12, 40),
        ],
        0..8,
    );
    noisy(vec![0xCA, 0xFE, VERSION], frames.prop_map(|f| f.concat()))
}

/// As [`request_stream`], for the client's side.
fn response_stream() -> impl Strategy<Value = Vec<u8>> {
    let frames = vec(
        prop_oneof![
            3 => response(64).prop_map(|r| r.encode()),
            1 => hand_made_frame(2, 64),
        ],
        0..8,
    );
    noisy(vec![0xCA, 0xFE, VERSION], frames.prop_map(|f| f.concat()))
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
                        &self.input.pending[..consumed],
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
                    }
                    return;
                }
                Ok(Decoded::Rejected { error, skip }) => {
                    let h =
                        Header::parse(&self.input.pending).expect("rejected before a whole header");
                    assert_eq!((h.magic, h.version), (MAGIC, VERSION));
                    assert!(skip >= HEADER_LEN as u64);
                    assert_eq!(
                        skip,
                        HEADER_LEN as u64 + u64::from(h.key_len) + u64::from(h.value_len)
                    );
                    self.events.push(RequestEvent::Rejected {
                        at: self.input.offset,
                        error,
                        skip,
                    });
                    self.input.skip(skip);
                }
                Err(error) => {
                    check_frame_error(&self.input.pending, error);
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

/// A framing error must name what is actually at the front of the input.
fn check_frame_error(buf: &[u8], error: FrameError) {
    match error {
        FrameError::BadMagic(m) => {
            assert!(buf.len() >= 2);
            assert_eq!(m, u16::from_be_bytes([buf[0], buf[1]]));
            assert_ne!(m, MAGIC);
        }
        FrameError::UnsupportedVersion(v) => {
            assert!(buf.len() >= 3);
            assert_eq!(&buf[..2], &MAGIC.to_be_bytes());
            assert_eq!(v, buf[2]);
            assert_ne!(v, VERSION);
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
                    assert!(frame.value.len() <= max);
                    let mut again = Vec::new();
                    encode_response(&frame, &mut again);
                    assert_eq!(
                        again,
                        &self.input.pending[..consumed],
                        "frame re-encodes to other bytes than it was decoded from"
                    );
                    self.events.push(ResponseEvent::Frame {
                        at: self.input.offset,
                        resp: OwnedResponse {
                            status: frame.status,
                            flags: frame.flags,
                            value: frame.value.to_vec(),
                        },
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
                    // Framing errors may come from the first bytes alone;
                    // the others need the whole header.
                    let header = || {
                        Header::parse(&self.input.pending).expect("response error before a header")
                    };
                    match error {
                        ResponseError::Frame(e) => check_frame_error(&self.input.pending, e),
                        ResponseError::UnexpectedKey => assert_ne!(header().key_len, 0),
                        ResponseError::TooLarge { len, max: m } => {
                            let h = header();
                            assert_eq!((len, m), (u64::from(h.value_len), max));
                            assert!(len > max as u64);
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
// The rules of request validation, as the protocol states them. Which rule a
// frame that breaks several is reported under is the codec's choice; these
// tests only require that the one it reports is really broken.

fn broken_rules(h: &Header, limits: &Limits) -> Vec<RequestError> {
    let (keyed, storing) = match h.opcode {
        opcode::GET | opcode::DELETE => (true, false),
        opcode::SET | opcode::SET_TTL => (true, true),
        opcode::NOOP | opcode::STATS => (false, false),
        other => return vec![RequestError::UnknownOpcode(other)],
    };
    let key_len = usize::from(h.key_len);
    let value_len = u64::from(h.value_len);
    let mut broken = Vec::new();
    if keyed && key_len == 0 {
        broken.push(RequestError::EmptyKey);
    }
    if keyed && key_len > limits.max_key_len {
        broken.push(RequestError::KeyTooLong {
            len: key_len,
            max: limits.max_key_len,
        });
    }
    if !keyed && key_len != 0 {
        broken.push(RequestError::UnexpectedKey);
    }
    if !storing && value_len != 0 {
        broken.push(RequestError::UnexpectedValue);
    }
    if !storing && h.flags != 0 {
        broken.push(RequestError::UnexpectedFlags);
    }
    if storing {
        let data_len = if h.opcode == opcode::SET_TTL {
            value_len.checked_sub(TTL_LEN as u64)
        } else {
            Some(value_len)
        };
        match data_len {
            None => broken.push(RequestError::MissingTtl),
            Some(len) if len > limits.max_value_len as u64 => {
                broken.push(RequestError::ValueTooLarge {
                    len,
                    max: limits.max_value_len,
                });
            }
            Some(_) => {}
        }
    }
    broken
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn request_round_trips(req in request(250, 4096)) {
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
    fn response_round_trips(resp in response(4096)) {
        let bytes = resp.encode();
        match decode_response(&bytes, 4096) {
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
    fn back_to_back_responses_decode_frame_by_frame(resps in vec(response(256), 1..10)) {
        let bytes: Vec<u8> = resps.iter().flat_map(OwnedResponse::encode).collect();
        let mut at = 0;
        for resp in &resps {
            match decode_response(&bytes[at..], 256) {
                Ok(Decoded::Complete { frame, consumed }) => {
                    prop_assert_eq!(frame, resp.as_response());
                    prop_assert_eq!(consumed, HEADER_LEN + resp.value.len());
                    at += consumed;
                }
                other => prop_assert!(false, "at {}: {:?}", at, other),
            }
        }
        prop_assert_eq!(at, bytes.len());
    }

    #[test]
    fn validation_follows_the_rules(
        opcode in any_opcode(),
        flags in any_flags(),
        key_len in 0u16..12,
        value_len in prop_oneof![0u32..24, any::<u32>()],
    ) {
        let limits = Limits { max_key_len: 8, max_value_len: 16 };
        let h = Header { magic: MAGIC, version: VERSION, opcode, flags, key_len, value_len };
        let mut bytes = Vec::new();
        h.write(&mut bytes);
        let broken = broken_rules(&h, &limits);
        match decode_request(&bytes, &limits) {
            Ok(Decoded::Rejected { error, skip }) => {
                prop_assert!(broken.contains(&error), "{:?} not in {:?}", error, broken);
                prop_assert_eq!(skip, h.frame_len());
            }
            Ok(Decoded::Incomplete { needed }) => {
                prop_assert!(broken.is_empty(), "accepted despite {:?}", broken);
                prop_assert_eq!(needed as u64, h.frame_len());
            }
            Ok(Decoded::Complete { consumed, .. }) => {
                prop_assert!(broken.is_empty(), "accepted despite {:?}", broken);
                prop_assert_eq!(consumed, HEADER_LEN);
            }
            Err(e) => prop_assert!(false, "framing error {:?} on a good header", e),
        }
        if broken.is_empty() {
            // The accepted header, given its body, decodes to its own fields.
            let body: Vec<u8> = (0..h.frame_len() as usize - HEADER_LEN).map(|i| i as u8).collect();
            bytes.extend_from_slice(&body);
            let Ok(Decoded::Complete { frame, consumed }) = decode_request(&bytes, &limits) else {
                return Err(TestCaseError::fail("accepted header did not complete"));
            };
            prop_assert_eq!(consumed, bytes.len());
            let (key, value) = body.split_at(usize::from(key_len));
            let expected = match opcode {
                opcode::GET => Request::Get { key },
                opcode::DELETE => Request::Delete { key },
                opcode::SET => Request::Set { key, value, flags, ttl: None },
                opcode::SET_TTL => Request::Set {
                    key,
                    value: &value[TTL_LEN..],
                    flags,
                    ttl: Some(u32::from_be_bytes([value[0], value[1], value[2], value[3]])),
                },
                opcode::NOOP => Request::Noop,
                _ => Request::Stats,
            };
            prop_assert_eq!(frame, expected);
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
        let limits = Limits { max_key_len: 10, max_value_len: 32 };
        let whole = read_requests([bytes.as_slice()], &limits);
        let split = read_requests(chunks(&bytes, &cuts), &limits);
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
    }
}

// ---------------------------------------------------------------------------
// Deterministic: one byte at a time against the whole stream.

fn raw_header(op: u8, flags: u16, key_len: u16, value_len: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Header {
        magic: MAGIC,
        version: VERSION,
        opcode: op,
        flags,
        key_len,
        value_len,
    }
    .write(&mut out);
    out.extend_from_slice(body);
    out
}

#[test]
fn requests_one_byte_at_a_time() {
    let limits = Limits::default();
    let set = OwnedRequest::Set {
        key: b"alpha".to_vec(),
        value: b"one".to_vec(),
        flags: 7,
        ttl: None,
    };
    let set_ttl = OwnedRequest::Set {
        key: b"beta".to_vec(),
        value: vec![0xCA; 300],
        flags: 0,
        ttl: Some(60),
    };
    let mut bytes = Vec::new();
    bytes.extend(set.encode());
    bytes.extend(OwnedRequest::Get(b"alpha".to_vec()).encode());
    bytes.extend(raw_header(opcode::GET, 0, 0, 0, b""));
    bytes.extend(raw_header(9, 0, 3, 5, b"xyz12345"));
    bytes.extend(set_ttl.encode());
    bytes.extend(raw_header(opcode::SET, 0, 251, 2, &[b'k'; 253]));
    bytes.extend(OwnedRequest::Noop.encode());
    bytes.extend(OwnedRequest::Stats.encode());
    bytes.extend(OwnedRequest::Delete(b"alpha".to_vec()).encode());
    let garbage_at = bytes.len();
    bytes.extend_from_slice(b"GET foo\r\n");

    let whole = read_requests([bytes.as_slice()], &limits);
    let bytewise = read_requests(bytes.chunks(1), &limits);
    assert_eq!(whole, bytewise);

    let summary: Vec<String> = whole
        .events
        .iter()
        .map(|e| match e {
            RequestEvent::Frame { req, .. } => req.kind().to_owned(),
            RequestEvent::Rejected { error, .. } => format!("rejected {error}"),
            RequestEvent::Fatal { error, .. } => format!("fatal {error}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "Set",
            "Get",
            "rejected empty key",
            "rejected unknown opcode 9",
            "Set",
            "rejected key of 251 bytes is over the limit of 250",
            "Noop",
            "Stats",
            "Delete",
            "fatal bad magic 0x4745, expected 0xcafe",
        ]
    );
    assert_eq!(whole.events[0], RequestEvent::Frame { at: 0, req: set });
    assert!(whole.events.contains(&RequestEvent::Frame {
        at: 69,
        req: set_ttl
    }));
    assert_eq!(whole.input.offset, garbage_at);
}

#[test]
fn responses_one_byte_at_a_time() {
    let resps = [
        OwnedResponse {
            status: Status::Ok,
            flags: 3,
            value: b"hello".to_vec(),
        },
        OwnedResponse {
            status: Status::NotFound,
            flags: 0,
            value: Vec::new(),
        },
        OwnedResponse {
            status: Status::Err,
            flags: 0,
            value: b"empty key".to_vec(),
        },
        OwnedResponse {
            status: Status::Unknown(200),
            flags: 0xFFFF,
            value: vec![1; 40],
        },
    ];
    let mut bytes: Vec<u8> = resps.iter().flat_map(OwnedResponse::encode).collect();
    let key_at = bytes.len();
    bytes.extend(raw_header(opcode::RESP_OK, 0, 1, 0, b"k"));

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
            at: key_at,
            error: ResponseError::UnexpectedKey
        })
    );

    // The same stream with a limit below the fourth value stops there.
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
