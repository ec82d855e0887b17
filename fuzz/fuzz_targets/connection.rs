//! Fuzzes a server connection: one input is one client's byte stream,
//! written in chunks the input chooses, to a server started once per
//! process (tests/common/fuzz_connection.rs, shared with the corpus replay
//! in tests/fuzz_corpus.rs). A panic on any thread aborts the process, so a
//! worker's panic is caught as well as the liveness check's.

#![no_main]

#[path = "../../tests/common/fuzz_connection.rs"]
mod check;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static HARNESS: OnceLock<check::Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    HARNESS.get_or_init(check::Harness::start).feed(data);
});
