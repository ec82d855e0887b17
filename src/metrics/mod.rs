//! What an operator's Prometheus reads: latency histograms each worker
//! keeps for itself, the exposition of a gathered snapshot, and the admin
//! HTTP listener that serves it.
//!
//! Workers never share their counters while serving: the admin thread
//! asks each worker for a copy over its inbox, as STATS does, so feeding
//! the metrics costs the hot path nothing but the histogram bumps.
//!
//! Must not: lock or allocate on a worker's hot path.

pub mod exposition;
pub mod histogram;
pub mod http;

pub use exposition::{ServerFacts, WorkerSnapshot, render};
pub use histogram::{CommandClass, Histogram, Latencies};
pub use http::AdminServer;
