//! Fuzzes `native_response`: the checks are in tests/common/fuzz.rs, shared with
//! the corpus replay in tests/fuzz_corpus.rs.

#![no_main]

#[path = "../../tests/common/fuzz.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check::codec("native_response")
        .expect("a codec target")
        .check(data);
});
