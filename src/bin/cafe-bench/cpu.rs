//! CPU time over the measured window: each `--server-pid` process's user
//! and system time from `/proc/PID/stat`, the loader's own from
//! `getrusage`, and each load thread's own (`RUSAGE_THREAD`). From them
//! a run reports the server's capacity per core (requests per second of
//! server CPU time) and whether the loader, not the server, was the limit.
//!
//! This module holds cafe-bench's only calls through `libc`, each in an
//! `unsafe` block with its reason.
//!
//! Must not: count requests or time the load (the load threads own the
//! window's schedule; this only samples at its two ends), or panic on
//! anything read from `/proc`.

use std::fmt;
use std::fs;
use std::io;
use std::time::{Duration, Instant};

/// Why CPU time could not be measured.
#[derive(Debug)]
pub enum CpuError {
    /// `/proc/PID/stat` could not be read: most often, no such process.
    Unreadable { pid: u32, error: io::Error },
    /// `/proc/PID/stat` did not have the fields expected.
    Malformed { pid: u32 },
    /// The process exited (a zombie), or another one took its pid.
    Exited { pid: u32 },
    /// `sysconf(_SC_CLK_TCK)` or `getrusage` failed.
    Sys(&'static str, io::Error),
}

impl fmt::Display for CpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuError::Unreadable { pid, error } if error.kind() == io::ErrorKind::NotFound => {
                write!(f, "--server-pid {pid}: no such process")
            }
            CpuError::Unreadable { pid, error } => {
                write!(
                    f,
                    "--server-pid {pid}: cannot read /proc/{pid}/stat: {error}"
                )
            }
            CpuError::Malformed { pid } => {
                write!(f, "--server-pid {pid}: /proc/{pid}/stat is not as expected")
            }
            CpuError::Exited { pid } => write!(
                f,
                "--server-pid {pid}: the process has exited, so its CPU time over the run is unknown"
            ),
            CpuError::Sys(call, error) => write!(f, "{call} failed: {error}"),
        }
    }
}

/// One process's state in a `/proc/PID/stat` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    /// utime + stime, in clock ticks.
    ticks: u64,
    /// When it started, in ticks after boot: a pid taken by another
    /// process shows as a different start.
    start: u64,
    /// `Z` or `X`: it has exited.
    exited: bool,
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) sits in
/// parentheses and may itself hold spaces and parentheses, so fields are
/// counted from the last `)`: field 3 (state) is the first after it,
/// utime and stime are fields 14 and 15, starttime field 22.
fn parse_stat(line: &str) -> Option<Stat> {
    let (_, rest) = line.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let state = *fields.first()?;
    Some(Stat {
        ticks: field(14)?.checked_add(field(15)?)?,
        start: field(22)?,
        exited: state == "Z" || state == "X",
    })
}

fn process_stat(pid: u32) -> Result<Stat, CpuError> {
    let line = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|error| CpuError::Unreadable { pid, error })?;
    let stat = parse_stat(&line).ok_or(CpuError::Malformed { pid })?;
    if stat.exited {
        return Err(CpuError::Exited { pid });
    }
    Ok(stat)
}

/// Clock ticks per second, the unit of `/proc/PID/stat`'s times.
fn ticks_per_second() -> Result<u64, CpuError> {
    // SAFETY: sysconf reads a constant of the system; it takes no pointer.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz)
        .ok()
        .filter(|&hz| hz > 0)
        .ok_or_else(|| CpuError::Sys("sysconf(_SC_CLK_TCK)", io::Error::last_os_error()))
}

/// User + system time in microseconds of this process (`RUSAGE_SELF`) or
/// of the calling thread (`RUSAGE_THREAD`).
fn cpu_us(who: libc::c_int) -> Result<u64, CpuError> {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage` that outlives the call.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    if rc != 0 {
        return Err(CpuError::Sys("getrusage", io::Error::last_os_error()));
    }
    let us = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec).unwrap_or(0)
    };
    Ok(us(usage.ru_utime) + us(usage.ru_stime))
}

/// The calling thread's user + system time, in microseconds: each load
/// thread reads its own at both ends of the window, since a thread that
/// has ended can no longer be read from outside.
pub fn thread_cpu_us() -> Result<u64, CpuError> {
    cpu_us(libc::RUSAGE_THREAD)
}

/// Everything read at one end of the window.
#[derive(Debug)]
struct Sample {
    at: Instant,
    servers: Vec<(u32, Stat)>,
    loader_us: u64,
}

fn sample(pids: &[u32]) -> Result<Sample, CpuError> {
    let servers = pids
        .iter()
        .map(|&pid| Ok((pid, process_stat(pid)?)))
        .collect::<Result<_, CpuError>>()?;
    Ok(Sample {
        at: Instant::now(),
        servers,
        loader_us: cpu_us(libc::RUSAGE_SELF)?,
    })
}

/// Checks before the run that every `--server-pid` can be read, so a
/// wrong pid fails at once rather than after the load.
pub fn check_pids(pids: &[u32]) -> Result<(), CpuError> {
    sample(pids).map(drop)
}

/// The CPU spent over the measured window.
#[derive(Debug, Clone)]
pub struct Usage {
    /// The window as sampled: about `--duration`.
    pub wall_s: f64,
    /// The `--server-pid` processes and their CPU seconds together; `None`
    /// without `--server-pid`.
    pub server: Option<(Vec<u32>, f64)>,
    /// Load threads.
    pub threads: usize,
    /// The loader's CPU seconds, all its threads together.
    pub loader_s: f64,
    /// The busiest load thread's share of a core over the window, as the
    /// threads measured themselves (`None` until they have reported).
    busiest_thread: Option<f64>,
}

/// At or above this share of a core, a load thread had no time to spare:
/// the run measured the loader rather than the server.
const LOADER_BOUND: f64 = 0.9;

impl Usage {
    /// The loader's CPU, in % of one core over the window.
    pub fn loader_percent(&self) -> f64 {
        100.0 * self.loader_s / self.wall_s
    }

    /// The loader's CPU per load thread, in % of one core.
    pub fn loader_percent_per_thread(&self) -> f64 {
        self.loader_percent() / self.threads.max(1) as f64
    }

    /// Records the busiest load thread's CPU seconds over `window`, its
    /// own measure of the window (from its first turn in it to its end).
    pub fn set_busiest_thread(&mut self, cpu_s: f64, window: Duration) {
        self.busiest_thread = Some(cpu_s / window.as_secs_f64().max(1e-9));
    }

    /// The busiest load thread's CPU, in % of one core.
    pub fn busiest_thread_percent(&self) -> Option<f64> {
        self.busiest_thread.map(|share| 100.0 * share)
    }

    /// Whether a load thread was busy enough to have been the limit: its
    /// busiest thread, or failing that the average, near a whole core.
    pub fn loader_bound(&self) -> bool {
        self.busiest_thread_percent()
            .unwrap_or_else(|| self.loader_percent_per_thread())
            >= 100.0 * LOADER_BOUND
    }

    /// Server CPU seconds, if measured.
    pub fn server_s(&self) -> Option<f64> {
        self.server.as_ref().map(|(_, s)| *s)
    }
}

/// Samples at `from` and at `to` (the measured window) and returns what
/// was spent between. Gives up, with `None`, as soon as `ended` says a
/// load thread stopped early: its error is what the run reports.
pub fn measure(
    pids: &[u32],
    threads: usize,
    from: Instant,
    to: Instant,
    ended: impl Fn() -> bool,
) -> Result<Option<Usage>, CpuError> {
    // A pid named twice is one process, counted once.
    let mut pids = pids.to_vec();
    pids.sort_unstable();
    pids.dedup();
    let pids = &pids[..];
    let hz = ticks_per_second()? as f64;
    if !wait_until(from, &ended) {
        return Ok(None);
    }
    let first = sample(pids)?;
    if !wait_until(to, &ended) {
        return Ok(None);
    }
    let last = sample(pids)?;
    let mut server_ticks = 0;
    for (&(pid, a), &(_, b)) in first.servers.iter().zip(&last.servers) {
        if a.start != b.start {
            return Err(CpuError::Exited { pid });
        }
        server_ticks += b.ticks.saturating_sub(a.ticks);
    }
    Ok(Some(Usage {
        wall_s: last.at.duration_since(first.at).as_secs_f64().max(1e-9),
        server: (!pids.is_empty()).then(|| (pids.to_vec(), server_ticks as f64 / hz)),
        threads,
        loader_s: last.loader_us.saturating_sub(first.loader_us) as f64 / 1e6,
        busiest_thread: None,
    }))
}

/// Sleeps until `at`, in steps short enough to notice `ended` soon;
/// false if it did.
fn wait_until(at: Instant, ended: &impl Fn() -> bool) -> bool {
    loop {
        // Time first: load threads end at the window's end, and a sample
        // taken then is on time.
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        if ended() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with spaces and parentheses of its own.
        let line = "4242 (cafe (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 31 0 0 20 0 3 0 98765 1000000 200 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ticks: 281,
                start: 98765,
                exited: false,
            })
        );
        let zombie = line.replace(") S ", ") Z ");
        assert!(parse_stat(&zombie).is_some_and(|s| s.exited));
    }

    #[test]
    fn a_short_or_garbled_stat_line_is_refused() {
        for bad in [
            "",
            "1 (x)",
            "1 (x) S 1 2 3",
            "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = std::process::id();
        check_pids(&[me]).expect("own pid readable");
        assert!(ticks_per_second().expect("CLK_TCK") > 0);
        assert!(matches!(
            check_pids(&[me, u32::MAX]),
            Err(CpuError::Unreadable { pid: u32::MAX, .. })
        ));
    }

    #[test]
    fn the_loader_is_bound_when_a_thread_is_near_a_whole_core() {
        let usage = |loader_s, busiest_thread| Usage {
            wall_s: 1.0,
            server: None,
            threads: 2,
            loader_s,
            busiest_thread,
        };
        assert!(usage(1.2, Some(0.95)).loader_bound());
        assert!(!usage(1.2, Some(0.6)).loader_bound());
        assert!(usage(1.9, None).loader_bound());
        assert!(!usage(1.2, None).loader_bound());
    }
}
