//! Storage: one worker's partition of the key space, under a byte budget.
//!
//! Pure and single-threaded: no sockets, no threads, no clock reads (the
//! time is passed in), no protocol types. It executes protocol-neutral
//! [`Command`](crate::command::Command)s and answers
//! [`Outcome`](crate::command::Outcome)s that borrow from the table, so a hit
//! can be encoded onto the wire without a copy in between.

mod item;
mod partition;

pub use partition::{
    ITEM_OVERHEAD, PREFETCH_BATCH, Partition, PartitionStats, Policy, malloc_size,
};
