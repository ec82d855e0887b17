//! Real third-party clients of memcached's text and meta protocols, from
//! PyPI, against cafe at 1 and 4 workers: `tests/clients/text_clients.py`
//! drives pymemcache (text: pipelined get_many/set_many, noreply off and
//! on, gets/cas, incr) and meta-memcache (mg/ms/md/ma, leases, stale
//! items). The same script passes against memcached itself (its
//! `--server` option).
//!
//! The interpreter is `$CAFE_PYTHON` (`.ci/run` makes a virtual
//! environment with both packages and points it there), else `python3`.
//! Without the packages the test prints a notice and passes, except under
//! `CI=true`, where it fails.

use std::path::Path;
use std::time::Duration;

mod common;
use common::{for_each_worker_count, start, tool};

/// The script's exit status when a client module is not installed.
const MISSING_MODULE: i32 = 3;

/// A passing run takes about a second; a failing one waits on its clients'
/// 10 s timeouts.
const LIMIT: Duration = Duration::from_secs(120);

fn python() -> String {
    std::env::var("CAFE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

#[test]
fn pymemcache_and_meta_memcache_pass_at_1_and_4_workers() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/text_clients.py");
    let script = script.to_str().expect("a UTF-8 path");
    let python = python();
    for_each_worker_count(|threads| {
        let server = start(threads);
        let addr = server.local_addr().to_string();
        let prefix = format!("cafe-{threads}");
        let run = tool::run(
            &python,
            &[script, "--server", &addr, "--prefix", &prefix],
            LIMIT,
        );
        if run.code == Some(MISSING_MODULE) {
            let why = run.stderr.trim();
            assert!(
                !tool::in_ci(),
                "{why} for {python}: .ci/run installs pymemcache and meta-memcache \
                 into a virtual environment and sets CAFE_PYTHON"
            );
            eprintln!(
                "SKIPPED pymemcache_and_meta_memcache_pass_at_1_and_4_workers: {why} \
                 for {python} (pip install pymemcache meta-memcache, or set CAFE_PYTHON)"
            );
            return;
        }
        assert!(
            run.success,
            "{python} text_clients.py at {threads} worker(s): {}\n--- stdout\n{}\n--- stderr\n{}",
            run.status, run.stdout, run.stderr
        );
        for client in ["pymemcache", "meta-memcache"] {
            assert!(
                run.stdout.contains(&format!("passed {client}")),
                "{client} did not report a pass:\n{}",
                run.stdout
            );
        }
    });
}
