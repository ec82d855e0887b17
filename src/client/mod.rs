//! Blocking clients for tests, benchmarks, tools and applications.
//!
//! - [`Client`] (`native`): one connection speaking cafe's native protocol.
//!
//! Must not: know anything about the server's internals (clients depend
//! only on the codecs in [`crate::protocol`]), or trust a server's length
//! claims beyond a limit the caller sets.

pub mod ketama;
mod native;
mod readbuf;

pub use native::{
    Client, ClientError, DEFAULT_MAX_RESPONSE_LEN, OwnedResponse, Pipeline, Stats, Value,
};
