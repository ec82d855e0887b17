//! A blocking client for the native protocol (being written).
