//! The `cafe-server` binary's start-up: what it makes of its environment
//! (the descriptor limit) and of flags that cannot work, each run as a
//! child process on 127.0.0.1 port 0.

use std::process::Command;

mod common;
use common::process::{BIN, Process, listening_addr, spawn, spawn_server};
use common::text::TextConn;
use common::tool::in_ci;

/// `cafe-server ARGS` under `prlimit --nofile=SOFT:HARD`, or `None` with a
/// notice where `prlimit` (util-linux) is missing.
fn with_nofile(soft: u64, hard: u64, args: &[&str]) -> Option<Process> {
    let found = Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(!in_ci(), "`prlimit` (util-linux) is needed under CI");
        eprintln!("NOTICE: `prlimit` (util-linux) not found; the descriptor limit is not checked");
        return None;
    }
    Some(spawn(
        Command::new("prlimit")
            .arg(format!("--nofile={soft}:{hard}"))
            .arg(BIN)
            .args(["--listen", "127.0.0.1:0", "--no-pin"])
            .args(["--metrics-listen", "off"])
            .args(args),
    ))
}

#[test]
fn a_hard_limit_below_max_connections_refuses_to_start() {
    let Some(p) = with_nofile(64, 64, &["--threads", "2"]) else {
        return;
    };
    let (status, stderr) = p.exit_and_stderr();
    assert!(!status.success(), "started under a 64-file hard limit");
    // 1024 connections, 16 + 4 per worker for the server itself.
    for part in [
        "--max-connections 1024 needs 1048 open files",
        "the hard limit is 64",
    ] {
        assert!(stderr.contains(part), "{part:?} not in stderr: {stderr}");
    }
}

#[test]
fn the_soft_limit_is_raised_as_far_as_max_connections_needs() {
    let Some(p) = with_nofile(40, 500, &["--threads", "1", "--max-connections", "100"]) else {
        return;
    };
    let addr = listening_addr(&p);
    let mut c = TextConn::open(addr);
    assert_eq!(c.stats("settings").get("maxconns"), 100);
    // 100 connections, 16 + 4 for the server: the soft limit is now 120,
    // the hard limit untouched.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", p.child.id()))
        .expect("/proc/PID/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open-files line in {limits}"));
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["120", "500"], "{line}");
}

#[test]
fn threads_that_do_not_fit_in_memory_refuse_to_start() {
    // 64 MiB cannot give 256 workers two 1 MiB items each; the default
    // worker count would have been capped instead.
    let p = spawn_server(&["--listen", "127.0.0.1:0", "--no-pin", "--threads", "256"]);
    let (status, stderr) = p.exit_and_stderr();
    assert!(!status.success(), "started 256 workers in 64 MiB");
    for part in ["--memory gives 256 workers", "at most --threads 31"] {
        assert!(stderr.contains(part), "{part:?} not in stderr: {stderr}");
    }

    // With the memory for them, as many workers start as asked, cores or
    // not, and serve.
    let args = ["--listen", "127.0.0.1:0", "--no-pin", "--threads", "64"];
    let p = spawn_server(&[&args[..], &["--memory", "256m"]].concat());
    let mut c = TextConn::open(listening_addr(&p));
    assert_eq!(c.stats("settings").get("num_threads"), 64);
}
