//! Wire protocols. Each submodule is a pure codec over byte buffers: no I/O,
//! no allocation on decode, "need more bytes" as a normal answer.

pub mod native;
