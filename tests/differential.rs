//! `scripts/differential.py` against this build: random text, meta and
//! binary protocol commands sent to a real memcached (Debian's, 1.6.18) and
//! to cafe-server side by side, replies and every key's state compared
//! after each step, for a few seeds. The script lists the differences that
//! are known and deliberate and does not generate them; anything else it
//! finds fails the test, with the step that differed.
//!
//! Without memcached or python3 the test prints a notice and passes, except
//! under `CI=true`, where it fails.

use std::path::Path;
use std::time::Duration;

mod common;
use common::fleet::find_program;
use common::tool;

const LIMIT: Duration = Duration::from_secs(120);

fn differential(mode: &[&str]) {
    let (Some(python), Some(memcached)) = (find_program("python3"), find_program("memcached"))
    else {
        assert!(
            !tool::in_ci(),
            "python3 and memcached are needed: apt-get install python3 memcached"
        );
        eprintln!("python3 or memcached not found: not compared");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/differential.py");
    let mut args = vec![
        script.to_str().expect("UTF-8 path"),
        "--cafe",
        env!("CARGO_BIN_EXE_cafe-server"),
        "--memcached",
        memcached.to_str().expect("UTF-8 path"),
        "--seeds",
        "3",
        "--steps",
        "600",
    ];
    args.extend_from_slice(mode);
    let run = tool::run(&python, &args, LIMIT);
    assert!(
        run.success,
        "memcached and cafe differ ({}):\n{}\n{}",
        run.status, run.stdout, run.stderr
    );
    assert!(run.stdout.contains("3 of 3 seeds agreed"), "{}", run.stdout);
}

#[test]
fn text_and_meta_commands_answer_as_memcached_does() {
    differential(&[]);
}

#[test]
fn binary_commands_answer_as_memcached_does() {
    differential(&["--binary"]);
}
