//! The process's limit on open descriptors (`RLIMIT_NOFILE`): reading it
//! and setting its soft value.
//!
//! Every connection costs a descriptor, so this limit caps connections
//! whatever `--max-connections` says. This module holds the crate's only
//! system calls made through `libc`, each in an `unsafe` block with its
//! reason.
//!
//! Must not: raise the hard limit (that is the operator's ceiling, even
//! for root), or be called on a hot path.

use std::fmt;
use std::io;

/// Descriptors the server holds beside its client connections: standard
/// streams, the signal pipe, the start-up probe and a margin, plus per
/// worker its poll, its waker, its listener and one connection being
/// turned away.
pub fn reserve(threads: usize) -> u64 {
    16 + 4 * threads as u64
}

/// What to do about the limit for a server that needs `needed`
/// descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The soft limit already covers it.
    Enough,
    /// Raise the soft limit to this, within the hard limit.
    RaiseSoft(u64),
    /// Even the hard limit is below what is needed.
    TooLow,
}

/// The plan for `needed` descriptors under `limit`: raise the soft limit
/// just as far as needed, never the hard one.
pub fn plan(limit: NofileLimit, needed: u64) -> Plan {
    if limit.soft >= needed {
        Plan::Enough
    } else if limit.hard >= needed {
        Plan::RaiseSoft(needed)
    } else {
        Plan::TooLow
    }
}

/// Why the descriptor limit cannot fit the connections asked for.
#[derive(Debug)]
pub enum LimitError {
    /// `getrlimit` or `setrlimit` failed.
    Sys(io::Error),
    /// The hard limit is below what `--max-connections` needs.
    TooLow {
        /// `--max-connections`.
        max_connections: usize,
        /// Descriptors needed in all.
        needed: u64,
        /// The hard limit.
        hard: u64,
    },
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::Sys(e) => write!(f, "cannot read or set the open-files limit: {e}"),
            LimitError::TooLow {
                max_connections,
                needed,
                hard,
            } => write!(
                f,
                "--max-connections {max_connections} needs {needed} open files \
                 ({} for the server itself), but the hard limit is {hard}: \
                 raise it (`ulimit -Hn`, systemd's LimitNOFILE=) or lower --max-connections",
                needed - *max_connections as u64
            ),
        }
    }
}

impl std::error::Error for LimitError {}

/// Raises the soft limit so that `max_connections` client connections and
/// `threads` workers fit. Returns the soft limit before and after when it
/// was raised.
pub fn fit_connections(
    max_connections: usize,
    threads: usize,
) -> Result<Option<(u64, u64)>, LimitError> {
    let needed = (max_connections as u64).saturating_add(reserve(threads));
    let limit = nofile().map_err(LimitError::Sys)?;
    match plan(limit, needed) {
        Plan::Enough => Ok(None),
        Plan::RaiseSoft(soft) => {
            set_nofile_soft(soft).map_err(LimitError::Sys)?;
            Ok(Some((limit.soft, soft)))
        }
        Plan::TooLow => Err(LimitError::TooLow {
            max_connections,
            needed,
            hard: limit.hard,
        }),
    }
}

/// The soft and hard `RLIMIT_NOFILE` (`u64::MAX` for unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// What the kernel enforces now; a process may raise it up to `hard`.
    pub soft: u64,
    /// The ceiling, which only a privileged process can raise.
    pub hard: u64,
}

/// Reads the process's `RLIMIT_NOFILE`.
pub fn nofile() -> io::Result<NofileLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` that outlives the call,
    // which only writes into it.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(NofileLimit {
        soft: from_rlim(lim.rlim_cur),
        hard: from_rlim(lim.rlim_max),
    })
}

/// Sets the soft `RLIMIT_NOFILE` to `soft`, keeping the hard limit. Fails
/// (EINVAL) above the hard limit.
pub fn set_nofile_soft(soft: u64) -> io::Result<()> {
    let hard = nofile()?.hard;
    let lim = libc::rlimit {
        rlim_cur: to_rlim(soft),
        rlim_max: to_rlim(hard),
    };
    // SAFETY: `lim` is a valid `rlimit` that outlives the call, which only
    // reads it.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn from_rlim(value: libc::rlim_t) -> u64 {
    if value == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        value
    }
}

fn to_rlim(value: u64) -> libc::rlim_t {
    if value == u64::MAX {
        libc::RLIM_INFINITY
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_soft_limit_is_raised_and_only_as_far_as_needed() {
        let limit = |soft, hard| NofileLimit { soft, hard };
        assert_eq!(plan(limit(1024, 4096), 1000), Plan::Enough);
        assert_eq!(plan(limit(1024, 4096), 1024), Plan::Enough);
        assert_eq!(plan(limit(1024, 4096), 1100), Plan::RaiseSoft(1100));
        assert_eq!(plan(limit(1024, 4096), 4096), Plan::RaiseSoft(4096));
        assert_eq!(plan(limit(1024, 4096), 4097), Plan::TooLow);
        assert_eq!(plan(limit(64, u64::MAX), 1 << 20), Plan::RaiseSoft(1 << 20));
    }

    #[test]
    fn too_low_says_what_to_change() {
        let e = LimitError::TooLow {
            max_connections: 1024,
            needed: 1048,
            hard: 512,
        };
        let text = e.to_string();
        for part in ["--max-connections 1024", "1048", "24 for the server", "512"] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
    }

    #[test]
    fn the_limit_reads_back_as_set() {
        let before = nofile().expect("getrlimit");
        assert!(before.soft <= before.hard);
        // Setting the soft limit to what it is changes nothing and must
        // succeed for any process.
        set_nofile_soft(before.soft).expect("setrlimit");
        assert_eq!(nofile().expect("getrlimit"), before);
        // Above the hard limit is refused.
        if before.hard < u64::MAX {
            assert!(set_nofile_soft(before.hard + 1).is_err());
        }
    }
}
