//! memcached's checks of a request, in memcached's order, decided from the
//! header alone: the rules, and where we differ from memcached, are in the
//! docs of the parent module.
//!
//! Must not: look past the header, so that a refused body is never awaited.

use super::{ErrorKind, Header, Limits, RequestError, opcode, status};

/// Whether a request of some opcode has a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRule {
    Required,
    Optional,
    Forbidden,
}

/// The body an opcode takes: the extras lengths allowed, its key, and
/// whether it may have a value.
#[derive(Debug, Clone, Copy)]
struct Shape {
    extras: [u8; 2],
    key: KeyRule,
    value: bool,
}

/// The shape of every opcode this codec runs (the table in the parent
/// module's docs).
fn shape(op: u8) -> Option<Shape> {
    use KeyRule::*;
    use opcode::*;
    let (extras, key, value) = match op {
        GET | GETQ | GETK | GETKQ => ([0, 0], Required, false),
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ => ([STORE_EXTRAS; 2], Required, true),
        APPEND | APPENDQ | PREPEND | PREPENDQ => ([0, 0], Required, true),
        DELETE | DELETEQ => ([0, 0], Required, false),
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ => ([ARITH_EXTRAS; 2], Required, false),
        TOUCH | GAT | GATQ | GATK | GATKQ => ([U32_EXTRAS; 2], Required, false),
        FLUSH | FLUSHQ => ([0, U32_EXTRAS], Forbidden, false),
        NOOP | VERSION | QUIT | QUITQ => ([0, 0], Forbidden, false),
        VERBOSITY => ([U32_EXTRAS; 2], Forbidden, false),
        STAT => ([0, 0], Optional, false),
        _ => return None,
    };
    Some(Shape { extras, key, value })
}

/// memcached's checks, in its order (see the module docs).
pub(super) fn validate(h: &Header, limits: &Limits) -> Result<(), RequestError> {
    let refuse = |status, kind| RequestError {
        opcode: h.opcode,
        opaque: h.opaque,
        status,
        kind,
    };
    let key_len = u64::from(h.key_len);
    let extras_len = u64::from(h.extras_len);
    let body_len = u64::from(h.body_len);
    if key_len + extras_len > body_len {
        return Err(refuse(status::EINVAL, ErrorKind::Malformed));
    }
    if usize::from(h.key_len) > limits.max_key_len {
        return Err(refuse(status::EINVAL, ErrorKind::Malformed));
    }
    let Some(shape) = shape(h.opcode) else {
        return Err(refuse(status::UNKNOWN_COMMAND, ErrorKind::UnknownCommand));
    };
    let value_len = body_len - key_len - extras_len;
    let key_ok = match shape.key {
        KeyRule::Required => key_len > 0,
        KeyRule::Optional => true,
        KeyRule::Forbidden => key_len == 0,
    };
    if !shape.extras.contains(&h.extras_len) || !key_ok || (!shape.value && value_len != 0) {
        return Err(refuse(status::EINVAL, ErrorKind::Malformed));
    }
    if value_len > u64::try_from(limits.max_value_len).unwrap_or(u64::MAX) {
        return Err(refuse(status::E2BIG, ErrorKind::TooLarge));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::memcache::testing::{complete, header, limits};
    use crate::protocol::memcache::{Command, Decoded, HEADER_LEN, REQUEST_MAGIC, decode_request};

    fn rejected(buf: &[u8]) -> (RequestError, u64) {
        match decode_request(buf, &limits()) {
            Ok(Decoded::Rejected { error, skip }) => (error, skip),
            other => panic!("not rejected: {other:?}"),
        }
    }

    /// Every EINVAL rule of every opcode: (opcodes, extras, key, value).
    #[test]
    fn shapes_that_do_not_fit_the_opcode_are_invalid_and_close() {
        use opcode::*;
        let gets: &[u8] = &[GET, GETQ, GETK, GETKQ];
        let stores: &[u8] = &[SET, SETQ, ADD, ADDQ, REPLACE, REPLACEQ];
        let concats: &[u8] = &[APPEND, APPENDQ, PREPEND, PREPENDQ];
        let deletes: &[u8] = &[DELETE, DELETEQ];
        let ariths: &[u8] = &[INCREMENT, INCREMENTQ, DECREMENT, DECREMENTQ];
        let touches: &[u8] = &[TOUCH, GAT, GATQ, GATK, GATKQ];
        let flushes: &[u8] = &[FLUSH, FLUSHQ];
        let bare: &[u8] = &[NOOP, VERSION, QUIT, QUITQ];
        let cases: &[(&[u8], u8, u16, u32, &str)] = &[
            (gets, 0, 0, 0, "missing key"),
            (gets, 4, 3, 0, "extras"),
            (gets, 0, 3, 2, "value"),
            (stores, 0, 3, 2, "missing extras"),
            (stores, 4, 3, 2, "short extras"),
            (stores, 20, 3, 2, "long extras"),
            (stores, 8, 0, 2, "missing key"),
            (concats, 8, 3, 2, "extras"),
            (concats, 0, 0, 2, "missing key"),
            (deletes, 0, 0, 0, "missing key"),
            (deletes, 4, 3, 0, "extras"),
            (deletes, 0, 3, 1, "value"),
            (ariths, 8, 3, 0, "short extras"),
            (ariths, 0, 3, 0, "missing extras"),
            (ariths, 20, 0, 0, "missing key"),
            (ariths, 20, 3, 8, "value"),
            (touches, 0, 3, 0, "missing extras"),
            (touches, 8, 3, 0, "long extras"),
            (touches, 4, 0, 0, "missing key"),
            (touches, 4, 3, 1, "value"),
            (flushes, 8, 0, 0, "extras other than 0 or 4"),
            (flushes, 0, 3, 0, "key"),
            (flushes, 0, 0, 1, "value"),
            (flushes, 4, 0, 1, "value after delay"),
            (bare, 4, 0, 0, "extras"),
            (bare, 0, 3, 0, "key"),
            (bare, 0, 0, 1, "value"),
            (&[VERBOSITY], 0, 0, 0, "missing extras"),
            (&[VERBOSITY], 4, 3, 0, "key"),
            (&[VERBOSITY], 4, 0, 1, "value"),
            (&[STAT], 4, 0, 0, "extras"),
            (&[STAT], 0, 3, 1, "value"),
            (&[STAT], 0, 0, 1, "value without key"),
        ];
        for &(ops, extras, key, value, why) in cases {
            for &op in ops {
                let bytes = header(op, extras, key, value);
                let (error, skip) = rejected(&bytes);
                assert_eq!(
                    error,
                    RequestError {
                        opcode: op,
                        opaque: 0x0102_0304,
                        status: status::EINVAL,
                        kind: ErrorKind::Malformed,
                    },
                    "opcode 0x{op:02x}: {why}"
                );
                assert_eq!(
                    skip,
                    (HEADER_LEN as u64) + u64::from(extras) + u64::from(key) + u64::from(value)
                );
                assert!(error.closes_connection());
                assert_eq!(error.to_string(), "Invalid arguments");
            }
        }
    }

    #[test]
    fn lengths_that_contradict_the_body_are_invalid_and_close() {
        // key_len + extras_len > body_len: EINVAL, then close (memcached
        // 1.6.18 hangs instead; see the module docs).
        let mut bytes = Vec::new();
        Header {
            magic: REQUEST_MAGIC,
            opcode: opcode::SET,
            key_len: 3,
            extras_len: 8,
            data_type: 0,
            vbucket_or_status: 0,
            body_len: 10,
            opaque: 5,
            cas: 0,
        }
        .write(&mut bytes);
        let (error, skip) = rejected(&bytes);
        assert_eq!(
            (error.status, error.kind, skip),
            (status::EINVAL, ErrorKind::Malformed, 34)
        );
        assert!(error.closes_connection());
        assert_eq!(error.to_string(), "Invalid arguments");
    }

    #[test]
    fn long_keys_are_invalid_for_every_opcode() {
        for op in [opcode::GET, opcode::NOOP, 0x42] {
            let (error, skip) = rejected(&header(op, 0, 251, 0));
            assert_eq!(
                (error.status, error.kind),
                (status::EINVAL, ErrorKind::Malformed)
            );
            assert_eq!(skip, 24 + 251);
        }
        let mut ok = header(opcode::GET, 0, 250, 0);
        ok.extend_from_slice(&[b'k'; 250]);
        assert_eq!(complete(&ok).cmd, Command::Get { key: &[b'k'; 250] });
    }

    #[test]
    fn unknown_opcodes_are_answered_and_skipped() {
        for op in [0x1f, 0x20, 0x21, 0x22, 0x25, 0x80, 0x81, 0xff] {
            let (error, skip) = rejected(&header(op, 2, 3, 100));
            assert_eq!(
                error,
                RequestError {
                    opcode: op,
                    opaque: 0x0102_0304,
                    status: status::UNKNOWN_COMMAND,
                    kind: ErrorKind::UnknownCommand,
                }
            );
            assert_eq!(skip, 24 + 105);
            assert!(!error.closes_connection());
            assert_eq!(error.to_string(), "Unknown command");
        }
    }

    #[test]
    fn huge_claims_are_refused_from_the_header_alone() {
        let limits = limits();
        let mut h = Header {
            magic: REQUEST_MAGIC,
            opcode: opcode::SET,
            key_len: 5,
            extras_len: 8,
            data_type: 0,
            vbucket_or_status: 0,
            body_len: u32::MAX,
            opaque: 1,
            cas: 0,
        };
        let mut bytes = Vec::new();
        h.write(&mut bytes);
        let (error, skip) = rejected(&bytes);
        assert_eq!(
            (error.status, error.kind),
            (status::E2BIG, ErrorKind::TooLarge)
        );
        assert_eq!(skip, 24 + u64::from(u32::MAX));
        assert!(!error.closes_connection());
        assert_eq!(error.to_string(), "Too large.");

        // One byte over the limit, and exactly at it.
        h.body_len = 8 + 5 + limits.max_value_len as u32 + 1;
        bytes.clear();
        h.write(&mut bytes);
        assert_eq!(rejected(&bytes).0.kind, ErrorKind::TooLarge);
        h.body_len -= 1;
        bytes.clear();
        h.write(&mut bytes);
        assert_eq!(
            decode_request(&bytes, &limits),
            Ok(Decoded::Incomplete {
                needed: 24 + 13 + limits.max_value_len
            })
        );

        // A GET claiming 4 GiB has a value where none is allowed.
        h.opcode = opcode::GET;
        h.extras_len = 0;
        h.body_len = u32::MAX;
        bytes.clear();
        h.write(&mut bytes);
        assert_eq!(rejected(&bytes).0.status, status::EINVAL);
    }
}
