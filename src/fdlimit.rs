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

use std::io;

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
