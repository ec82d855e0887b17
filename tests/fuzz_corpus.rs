//! Replays the fuzz targets' committed inputs on stable Rust: every file
//! under `fuzz/corpus/<target>/` (the seeds) and `fuzz/regressions/<target>/`
//! (inputs that once broke an invariant) goes through the same checks as
//! the fuzz target of that name, so a failure found once stays fixed.
//! `scripts/fuzz.sh` runs the fuzzers themselves (nightly, cargo-fuzz).

#[path = "common/fuzz.rs"]
mod fuzz;
#[path = "common/fuzz_connection.rs"]
mod fuzz_connection;

use std::fs;
use std::path::{Path, PathBuf};

use fuzz_connection::Harness;

/// Every target with a directory under `fuzz/corpus/`.
const TARGETS: [&str; 6] = [
    "native_request",
    "memcache_request",
    "text_request",
    "native_response",
    "memcache_response",
    "connection",
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted; none if it is missing.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read a corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every seed and regression input of `target`, naming the
/// file before each, so a failure says which one.
fn replay(target: &str, mut check: impl FnMut(&[u8])) {
    let seeds = inputs("corpus", target);
    assert!(
        seeds.len() >= 10,
        "fuzz/corpus/{target}/ holds {} seeds; run scripts/fuzz-seeds.py",
        seeds.len()
    );
    for path in seeds.iter().chain(&inputs("regressions", target)) {
        eprintln!("{}", path.display());
        check(&fs::read(path).expect("read a corpus file"));
    }
}

fn replay_codec(target: &str) {
    let codec = fuzz::codec(target).expect("a codec target");
    replay(target, |input| codec.check(input));
}

#[test]
fn native_request_corpus() {
    replay_codec("native_request");
}

#[test]
fn memcache_request_corpus() {
    replay_codec("memcache_request");
}

#[test]
fn text_request_corpus() {
    replay_codec("text_request");
}

#[test]
fn native_response_corpus() {
    replay_codec("native_response");
}

#[test]
fn memcache_response_corpus() {
    replay_codec("memcache_response");
}

#[test]
fn connection_corpus() {
    let harness = Harness::start();
    replay("connection", |input| harness.feed(input));
    harness.finish();
}

/// Every codec target has its corpus test above, and nothing is under
/// `fuzz/corpus/` or `fuzz/regressions/` that no test replays.
#[test]
fn every_target_is_replayed() {
    for codec in fuzz::CODECS {
        assert!(
            TARGETS.contains(&codec.name),
            "{} is not replayed",
            codec.name
        );
    }
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for entry in entries {
            let name = entry.expect("read fuzz/ entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                TARGETS.contains(&name.as_ref()),
                "fuzz/{kind}/{name} belongs to no target"
            );
        }
    }
}
