//! cafe: a low-latency, thread-per-core, in-memory cache.
//!
//! # Threads
//!
//! ```text
//!             clients (TCP, SO_REUSEPORT spreads accepts over workers)
//!               |                |                 |
//!   +-----------v----+  +--------v-------+  +------v---------+
//!   | worker 0       |  | worker 1       |  | worker N-1     |
//!   | core 0 (pinned)|  | core 1         |  | core N-1       |
//!   | mio::Poll      |  | mio::Poll      |  | mio::Poll      |
//!   | listener       |  | listener       |  | listener       |
//!   | Slab<Conn>     |  | Slab<Conn>     |  | Slab<Conn>     |
//!   | Partition 0    |  | Partition 1    |  | Partition N-1  |
//!   +-------^--------+  +-------^--------+  +-------^--------+
//!           |   crossbeam channel + mio::Waker      |
//!           +---------- (one inbox per worker) -----+
//! ```
//!
//! A key belongs to exactly one worker ([`router`]). A connection's worker
//! runs requests for its own keys inline; a request for another worker's key
//! is sent to that worker's inbox, executed there, and its outcome sent back
//! to the origin, which puts it in the connection's reply slot so replies
//! leave in request order.
//!
//! # Layout
//!
//! - [`command`]: the protocol-neutral vocabulary (commands, outcomes,
//!   server-wide requests).
//! - [`limits`]: the key and value limits every codec applies.
//! - [`protocol`]: pure codecs, one module per wire protocol.
//! - [`storage`]: a worker's partition of the key space; pure, clock passed in.
//! - [`router`]: key to owning worker.
//! - [`server`]: workers, connections, inboxes; moves bytes and messages.
//! - [`client`]: blocking clients (native, memcached binary) and the fleet
//!   client (ketama placement, ejection, per-node pipelining).
//! - [`config`]: flags, defaults and validation.
//! - `decimal`: numbers read as memcached reads them (`strtoull`).
//! - [`fdlimit`]: the process's limit on open descriptors.
//! - [`clock`]: real and manual time sources.
//! - [`stats`]: per-worker counters and their server-wide sum.
//! - [`metrics`]: latency histograms, the Prometheus exposition and the
//!   admin HTTP listener.
//! - [`workload`]: seeded random keys and Zipf sampling for load tools.

#![deny(missing_docs, missing_debug_implementations)]

pub mod client;
pub mod clock;
pub mod command;
pub mod config;
pub(crate) mod decimal;
pub mod fdlimit;
pub mod limits;
pub mod metrics;
pub mod protocol;
pub mod router;
pub mod server;
pub mod stats;
pub mod storage;
pub mod workload;
