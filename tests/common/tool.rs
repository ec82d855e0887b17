//! Programs the tests run (memccapable, memcstat, a Python interpreter):
//! run with a time limit, their output captured.

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::IO_TIMEOUT;

/// What a finished (or killed) program left.
pub struct Run {
    /// Exited 0 within its limit.
    pub success: bool,
    /// Its exit code, if it exited by itself.
    pub code: Option<i32>,
    /// How it ended, for a failure message.
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// Whether this is CI (`CI=true`), where a test that needs a missing tool
/// fails instead of passing with a notice.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Runs `program` with `args`, killing it after `limit`.
pub fn run(program: impl AsRef<OsStr>, args: &[&str], limit: Duration) -> Run {
    let program = program.as_ref();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.to_string_lossy()));
    // Both pipes are drained by threads, so a chatty child cannot block;
    // each pipe reaches EOF when the child exits or is killed.
    let (tx, rx) = mpsc::channel();
    let pipes: [(bool, Box<dyn Read + Send>); 2] = [
        (true, Box::new(child.stdout.take().expect("stdout"))),
        (false, Box::new(child.stderr.take().expect("stderr"))),
    ];
    for (is_stdout, mut pipe) in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            let _ = tx.send((is_stdout, String::from_utf8_lossy(&text).into_owned()));
        });
    }
    drop(tx);
    let deadline = Instant::now() + limit;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let mut timed_out = false;
    let mut outputs = 0;
    while outputs < 2 {
        // Once killed, the child closes its pipes at once.
        let wait = if timed_out {
            IO_TIMEOUT
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        match rx.recv_timeout(wait) {
            Ok((true, text)) => stdout = text,
            Ok((false, text)) => stderr = text,
            Err(_) if !timed_out => {
                timed_out = true;
                let _ = child.kill();
                continue;
            }
            Err(_) => break,
        }
        outputs += 1;
    }
    let status = child.wait().expect("wait for the program");
    Run {
        success: status.success() && !timed_out,
        code: if timed_out { None } else { status.code() },
        status: if timed_out {
            format!("killed after {limit:?}")
        } else {
            status.to_string()
        },
        stdout,
        stderr,
    }
}
