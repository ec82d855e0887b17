//! The fixed 24-byte header that starts every request and response, and
//! the magics that tell the two apart.
//!
//! Must not: interpret a field. Which opcodes, statuses and lengths are
//! acceptable is for the request and response decoders to say.

/// First byte of every request; memcached also picks the binary protocol
/// for a connection by this byte.
pub const REQUEST_MAGIC: u8 = 0x80;
/// First byte of every response.
pub const RESPONSE_MAGIC: u8 = 0x81;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 24;

/// The 24-byte header, decoded but not yet interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// [`REQUEST_MAGIC`] or [`RESPONSE_MAGIC`].
    pub magic: u8,
    /// See [`opcode`](super::opcode); a response copies its request's.
    pub opcode: u8,
    /// Bytes of key after the extras.
    pub key_len: u16,
    /// Bytes of extras after the header.
    pub extras_len: u8,
    /// 0 (raw bytes) is the only type defined; ignored on decode.
    pub data_type: u8,
    /// Request: the vbucket id (ignored); response: the
    /// [`status`](super::status).
    pub vbucket_or_status: u16,
    /// Extras plus key plus value.
    pub body_len: u32,
    /// Copied from request to response untouched.
    pub opaque: u32,
    /// Request: compare-and-swap token (0: none); response: the item's cas.
    pub cas: u64,
}

impl Header {
    /// Reads a header from the first [`HEADER_LEN`] bytes, if present,
    /// whatever its magic.
    pub fn parse(buf: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            magic: h[0],
            opcode: h[1],
            key_len: u16::from_be_bytes([h[2], h[3]]),
            extras_len: h[4],
            data_type: h[5],
            vbucket_or_status: u16::from_be_bytes([h[6], h[7]]),
            body_len: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
            opaque: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
            cas: u64::from_be_bytes([h[16], h[17], h[18], h[19], h[20], h[21], h[22], h[23]]),
        })
    }

    /// The header's wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = self.magic;
        h[1] = self.opcode;
        h[2..4].copy_from_slice(&self.key_len.to_be_bytes());
        h[4] = self.extras_len;
        h[5] = self.data_type;
        h[6..8].copy_from_slice(&self.vbucket_or_status.to_be_bytes());
        h[8..12].copy_from_slice(&self.body_len.to_be_bytes());
        h[12..16].copy_from_slice(&self.opaque.to_be_bytes());
        h[16..24].copy_from_slice(&self.cas.to_be_bytes());
        h
    }

    /// Appends the header to `out`: built on the stack and copied once,
    /// as one capacity check instead of one per field (this runs for
    /// every reply).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// Header plus body, as a u64 so a hostile `body_len` cannot overflow.
    pub fn frame_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.body_len)
    }
}
