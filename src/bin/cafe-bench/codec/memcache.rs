//! The memcached binary protocol, through the crate's own codec. Every
//! request carries opaque 0: replies come back in order on a connection.
//!
//! Must not: frame bytes by hand (`cafe::protocol::memcache` owns the
//! format).

use cafe::protocol::memcache::{self, Command, Request, StoreMode, opcode, status};

use super::{Answer, Decode, MAX_RESPONSE, binary};

pub fn get(key: &[u8], out: &mut Vec<u8>) {
    let get = Request {
        opcode: opcode::GET,
        opaque: 0,
        cmd: Command::Get { key },
    };
    let ok = memcache::encode_request(&get, out).is_ok();
    debug_assert!(ok, "keys and values are sized by the workload");
}

pub fn set(key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let set = Request {
        opcode: opcode::SET,
        opaque: 0,
        cmd: Command::Store {
            mode: StoreMode::Set,
            key,
            value,
            flags: 0,
            exptime: 0,
            cas: 0,
        },
    };
    let ok = memcache::encode_request(&set, out).is_ok();
    debug_assert!(ok, "keys and values are sized by the workload");
}

pub fn decode(buf: &[u8], get: bool) -> Decode<'_> {
    binary(
        memcache::decode_response(buf, MAX_RESPONSE),
        |frame| match (frame.status, get) {
            (status::NO_ERROR, true) => Answer::Hit(frame.value),
            (status::KEY_ENOENT, true) => Answer::Miss,
            (status::NO_ERROR, false) => Answer::Stored,
            _ => Answer::Error,
        },
    )
}
