//! Wire protocols. Each submodule is a pure codec over byte buffers: no I/O,
//! no allocation on decode, "need more bytes" as a normal answer.

pub mod memcache;
pub mod native;
pub mod peek;
pub mod text;

/// The answer of an incremental decoder. `E` is why a well-framed request
/// is refused (`Infallible` where nothing is refused, as for responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<T, E> {
    /// A whole frame was present; `consumed` bytes belong to it.
    Complete {
        /// The decoded frame.
        frame: T,
        /// Bytes of input the frame occupied.
        consumed: usize,
    },
    /// Not enough input yet; at least `needed` bytes in total are required.
    /// Once the header is complete, `needed` is the exact frame length.
    Incomplete {
        /// Total bytes required from the start of the input.
        needed: usize,
    },
    /// The header is complete and the request is refused. The whole frame,
    /// `skip` bytes from the start of the input, must be discarded; most of
    /// it may not have arrived yet.
    Rejected {
        /// Why it is refused.
        error: E,
        /// Header plus body length.
        skip: u64,
    },
}
