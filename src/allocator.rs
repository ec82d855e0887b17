//! The `cafe-server` binary's memory allocator: jemalloc, with a
//! background thread that gives freed memory back to the operating system
//! about a second after it stops being used.
//!
//! glibc's malloc keeps what is freed inside its per-thread arenas: after
//! a burst (thousands of partial values, large replies held for clients
//! that do not read) the process stayed at its peak resident size with
//! almost nothing in use, and `malloc_trim` cannot cut the top of a
//! thread's arena. jemalloc returns unused pages on a timer (its "decay"),
//! from its own thread, so the request path pays nothing for it, and a
//! busy server reuses its pages before the timer takes them. A decay of 0
//! (purge on every free) was measured too: page faults on every large
//! value made a worker flooded with 1 MiB appends 500 ms slow for others.
//!
//! Only the binary sets the allocator: the library, its tests and anything
//! embedding it keep their own.
//!
//! Must not: hold anything but the allocator and its start-up options.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once when it initialises: purge unused dirty
/// pages over about a second, skip the intermediate "muzzy" state, and do
/// the purging from a background thread instead of inside allocations.
/// `_RJEM_MALLOC_CONF` in the environment overrides them.
const OPTIONS: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

// SAFETY: jemalloc reads this symbol once, at initialisation, as a
// `const char *` to a NUL-terminated string. The static is a thin pointer to
// a 'static byte array that ends in NUL and is never written, and no other
// definition of the symbol exists in the binary (the prefixed build of
// jemalloc looks for `_rjem_malloc_conf`, and only this crate defines it).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 60] = OPTIONS;
