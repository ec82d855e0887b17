//! The `cafe-server` binary run as a child process: its stderr read line
//! by line, its address taken from its start-up line, and the process
//! killed if a test fails before it exits.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use super::IO_TIMEOUT;

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_cafe-server");

/// A `cafe-server` process, killed if a test fails before it exits.
pub struct Process {
    pub child: Child,
    /// Its stderr, line by line, read by a thread that drains it to the end
    /// so the server never blocks on a full pipe.
    pub lines: Receiver<String>,
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `cafe-server` with `args`, logging at `info`; without an admin
/// listener unless `args` asks for one, since the default address is a
/// fixed port that servers started side by side would share.
pub fn spawn_server(args: &[&str]) -> Process {
    let mut command = Command::new(BIN);
    command.args(args);
    if !args.contains(&"--metrics-listen") {
        command.args(["--metrics-listen", "off"]);
    }
    spawn(&mut command)
}

/// Starts `command` (`cafe-server`, or a program that runs it, such as
/// `prlimit`), logging at `info`, its stderr captured.
pub fn spawn(command: &mut Command) -> Process {
    let mut child = command
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cafe-server");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            // The test may have stopped listening; keep draining anyway.
            let _ = tx.send(line);
        }
    });
    Process { child, lines }
}

impl Process {
    /// Waits for the process to exit by itself (within [`IO_TIMEOUT`]) and
    /// returns its status and everything it wrote to stderr.
    pub fn exit_and_stderr(mut self) -> (ExitStatus, String) {
        let status = wait_for_exit(&mut self.child, IO_TIMEOUT)
            .unwrap_or_else(|| panic!("still running after {IO_TIMEOUT:?}"));
        // Its stderr closed when it exited: the reader thread ends.
        let mut text = String::new();
        while let Ok(line) = self.lines.recv_timeout(IO_TIMEOUT) {
            text.push_str(&line);
            text.push('\n');
        }
        (status, text)
    }
}

/// Reads stderr until the `listening on ADDR: ...` line and returns ADDR.
pub fn listening_addr(p: &Process) -> SocketAddr {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = p
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no `listening on` line ({e}); stderr so far: {seen:#?}"));
        if let Some((_, rest)) = line.split_once("listening on ") {
            // `127.0.0.1:PORT: 2 worker threads, not pinned`
            let addr = rest.split_once(": ").map_or(rest, |(a, _)| a);
            return addr
                .parse()
                .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        }
        seen.push(line);
    }
}

/// Polls the process until it exits or `limit` passes.
pub fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
