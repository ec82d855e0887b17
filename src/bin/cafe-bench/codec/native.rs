//! cafe's native 0xCAFE protocol, through the crate's own codec.
//!
//! Must not: frame bytes by hand (`cafe::protocol::native` owns the
//! format).

use cafe::protocol::native::{self, Request, Status};

use super::{Answer, Decode, MAX_RESPONSE, binary};

pub fn get(key: &[u8], out: &mut Vec<u8>) {
    let ok = native::encode_request(&Request::Get { key }, out).is_ok();
    debug_assert!(ok, "keys and values are sized by the workload");
}

pub fn set(key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let set = Request::Set {
        key,
        value,
        flags: 0,
        ttl: None,
    };
    let ok = native::encode_request(&set, out).is_ok();
    debug_assert!(ok, "keys and values are sized by the workload");
}

pub fn decode(buf: &[u8], get: bool) -> Decode<'_> {
    binary(native::decode_response(buf, MAX_RESPONSE), |frame| {
        match (frame.status, get) {
            (Status::Ok, true) => Answer::Hit(frame.value),
            (Status::NotFound, true) => Answer::Miss,
            (Status::Ok, false) => Answer::Stored,
            _ => Answer::Error,
        }
    })
}
