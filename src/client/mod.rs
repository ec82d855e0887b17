//! Blocking clients for tests, benchmarks, tools and applications.
//!
//! - [`Client`] (`native`): one connection speaking cafe's native protocol.
//! - [`memcache::MemcacheClient`]: one connection speaking the memcached
//!   binary protocol.
//! - [`ketama`]: key placement over a fleet, libmemcached's continuum.
//! - [`cluster::Cluster`]: a fleet of servers behind that continuum, in
//!   either binary protocol, with failing servers ejected and retried.
//!
//! Must not: know anything about the server's internals (clients depend
//! only on the codecs in [`crate::protocol`]), or trust a server's length
//! claims beyond a limit the caller sets.

pub mod cluster;
pub mod ketama;
pub mod memcache;
mod native;
mod wire;

pub use cluster::{Cluster, ClusterConfig, ClusterError};
pub use memcache::{Item, MemcacheClient, MemcacheError};
pub use native::{
    Client, ClientError, DEFAULT_MAX_RESPONSE_LEN, OwnedResponse, Pipeline, Stats, Value,
};
