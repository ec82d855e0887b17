//! Opcode values on the wire. A name ending in Q is the quiet form of the
//! same command: see [`Request::is_quiet`](super::Request::is_quiet).
//!
//! Must not: know where a frame's fields lie. The extras sizes below are the
//! only lengths here, shared by the validator and the request encoder so
//! they cannot disagree.

/// Look a key up.
pub const GET: u8 = 0x00;
/// Store unconditionally.
pub const SET: u8 = 0x01;
/// Store only if the key is absent.
pub const ADD: u8 = 0x02;
/// Store only if the key is present.
pub const REPLACE: u8 = 0x03;
/// Remove a key.
pub const DELETE: u8 = 0x04;
/// Add to a counter.
pub const INCREMENT: u8 = 0x05;
/// Subtract from a counter (never below zero).
pub const DECREMENT: u8 = 0x06;
/// Answer, then close the connection.
pub const QUIT: u8 = 0x07;
/// Invalidate every item, now or after a delay.
pub const FLUSH: u8 = 0x08;
/// Quiet GET: a miss is not answered.
pub const GETQ: u8 = 0x09;
/// Do nothing; answered, so it fences a run of quiet requests.
pub const NOOP: u8 = 0x0a;
/// Answer the server version as text.
pub const VERSION: u8 = 0x0b;
/// GET whose answer carries the key.
pub const GETK: u8 = 0x0c;
/// Quiet GETK.
pub const GETKQ: u8 = 0x0d;
/// Add bytes after a stored value.
pub const APPEND: u8 = 0x0e;
/// Add bytes before a stored value.
pub const PREPEND: u8 = 0x0f;
/// Server statistics, one response per counter, then an empty one.
pub const STAT: u8 = 0x10;
/// Quiet SET.
pub const SETQ: u8 = 0x11;
/// Quiet ADD.
pub const ADDQ: u8 = 0x12;
/// Quiet REPLACE.
pub const REPLACEQ: u8 = 0x13;
/// Quiet DELETE.
pub const DELETEQ: u8 = 0x14;
/// Quiet INCREMENT.
pub const INCREMENTQ: u8 = 0x15;
/// Quiet DECREMENT.
pub const DECREMENTQ: u8 = 0x16;
/// Close the connection without answering.
pub const QUITQ: u8 = 0x17;
/// Quiet FLUSH.
pub const FLUSHQ: u8 = 0x18;
/// Quiet APPEND.
pub const APPENDQ: u8 = 0x19;
/// Quiet PREPEND.
pub const PREPENDQ: u8 = 0x1a;
/// Set the server's log verbosity.
pub const VERBOSITY: u8 = 0x1b;
/// Set a new expiry on an item without reading it.
pub const TOUCH: u8 = 0x1c;
/// Get and touch.
pub const GAT: u8 = 0x1d;
/// Quiet GAT.
pub const GATQ: u8 = 0x1e;
/// GAT whose answer carries the key.
pub const GATK: u8 = 0x23;
/// Quiet GATK.
pub const GATKQ: u8 = 0x24;

/// Bytes of SET, ADD and REPLACE extras: flags u32, exptime u32.
pub(super) const STORE_EXTRAS: u8 = 8;
/// Bytes of INCREMENT and DECREMENT extras: delta u64, initial u64,
/// exptime u32.
pub(super) const ARITH_EXTRAS: u8 = 20;
/// Bytes of TOUCH, GAT*, VERBOSITY and (optional) FLUSH extras: one u32.
pub(super) const U32_EXTRAS: u8 = 4;

/// Whether `opcode` is a quiet form (GETQ GETKQ SETQ ADDQ REPLACEQ DELETEQ
/// INCREMENTQ DECREMENTQ QUITQ FLUSHQ APPENDQ PREPENDQ GATQ GATKQ). A quiet
/// request's success is not answered; for the quiet reads (GETQ, GETKQ,
/// GATQ, GATKQ) that means a miss is not answered, while a hit is. Errors
/// are always answered (memcached: `write_bin_response` skips only
/// successes, `write_bin_error` never). QUITQ closes without answering.
///
/// Takes the bare opcode, so a server that keeps only the opcode of a
/// request sent to another worker can still decide.
pub fn is_quiet(opcode: u8) -> bool {
    matches!(
        opcode,
        GETQ | GETKQ
            | SETQ
            | ADDQ
            | REPLACEQ
            | DELETEQ
            | INCREMENTQ
            | DECREMENTQ
            | QUITQ
            | FLUSHQ
            | APPENDQ
            | PREPENDQ
            | GATQ
            | GATKQ
    )
}

/// Whether the response to `opcode` (hit or miss) carries the request's key:
/// GETK, GETKQ, GATK, GATKQ.
pub fn returns_key(opcode: u8) -> bool {
    matches!(opcode, GETK | GETKQ | GATK | GATKQ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_and_key_returning_forms() {
        let quiet: Vec<u8> = (0..=u8::MAX).filter(|&op| is_quiet(op)).collect();
        assert_eq!(
            quiet,
            [
                0x09, 0x0d, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1e, 0x24
            ]
        );
        let keyed: Vec<u8> = (0..=u8::MAX).filter(|&op| returns_key(op)).collect();
        assert_eq!(keyed, [0x0c, 0x0d, 0x23, 0x24]);
    }
}
