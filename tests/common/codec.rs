//! Byte streams for the codec property tests (`native_codec.rs`,
//! `memcache_codec.rs`): valid frames spoiled by flips, inserts, removals
//! and truncations, and the cuts that split a stream into reads. Nothing
//! here knows a protocol; each test file brings its own frames and magic.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// A proptest configuration that runs `cases` cases.
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// One edit of a byte stream. Positions are `Index`es, so that they fit
/// whatever length the stream has by the time the edit is made.
#[derive(Debug, Clone)]
pub enum Mutation {
    Xor(Index, u8),
    Insert(Index, u8),
    Remove(Index),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(i, b)| Mutation::Xor(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Remove),
    ]
}

pub fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation], truncate: Option<Index>) -> Vec<u8> {
    for m in mutations {
        match *m {
            Mutation::Xor(ref i, b) if !bytes.is_empty() => {
                let at = i.index(bytes.len());
                bytes[at] ^= b;
            }
            Mutation::Insert(ref i, b) => bytes.insert(i.index(bytes.len() + 1), b),
            Mutation::Remove(ref i) if !bytes.is_empty() => {
                bytes.remove(i.index(bytes.len()));
            }
            _ => {}
        }
    }
    if let Some(i) = truncate {
        bytes.truncate(i.index(bytes.len() + 1));
    }
    bytes
}

/// Streams a peer might read: random bytes, random bytes after `prefix`
/// (the protocol's magic, so the decoder gets past its first check), and
/// `valid` streams as they are or with a few mutations.
pub fn noisy(
    prefix: Vec<u8>,
    valid: impl Strategy<Value = Vec<u8>> + Clone,
) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..256),
        1 => vec(any::<u8>(), 0..64).prop_map(move |tail| {
            let mut out = prefix.clone();
            out.extend_from_slice(&tail);
            out
        }),
        2 => valid.clone(),
        4 => (valid, vec(mutation(), 0..4), proptest::option::of(any::<Index>()))
            .prop_map(|(bytes, muts, cut)| mutate(bytes, &muts, cut)),
    ]
}

/// Where to cut a stream into reads.
pub fn splits() -> impl Strategy<Value = Vec<Index>> {
    vec(any::<Index>(), 0..16)
}

/// `bytes` cut at `cuts` into the reads a connection would see.
pub fn chunks<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// A decoder's input kept the way a connection keeps it: what arrived and
/// is not yet consumed, where that starts in the stream, what a refused
/// frame still owes to be skipped, and whether a fatal error closed it.
/// Each codec's reader drives its own decoder over this.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Input {
    /// Bytes received and not yet consumed.
    pub pending: Vec<u8>,
    /// Stream offset of `pending[0]`.
    pub offset: usize,
    /// Bytes of a rejected frame still to be discarded as they arrive.
    pub skipping: u64,
    pub dead: bool,
}

impl Input {
    /// Takes in a read, less what a rejected frame still owes; a closed
    /// stream takes in nothing.
    pub fn receive(&mut self, mut chunk: &[u8]) {
        if self.dead {
            return;
        }
        if self.skipping > 0 {
            let n = chunk
                .len()
                .min(usize::try_from(self.skipping).unwrap_or(usize::MAX));
            chunk = &chunk[n..];
            self.skipping -= n as u64;
            self.offset += n;
        }
        self.pending.extend_from_slice(chunk);
    }

    /// Whether the decoder is to run on `pending`: the stream is open and
    /// owes no skipped bytes.
    pub fn ready(&self) -> bool {
        self.skipping == 0 && !self.dead
    }

    /// Drops the first `n` pending bytes, a frame the decoder consumed.
    pub fn consume(&mut self, n: usize) {
        self.pending.drain(..n);
        self.offset += n;
    }

    /// Drops a rejected frame of `skip` bytes: what has arrived now, the
    /// rest as it arrives.
    pub fn skip(&mut self, skip: u64) {
        let here = usize::try_from(skip)
            .unwrap_or(usize::MAX)
            .min(self.pending.len());
        self.consume(here);
        self.skipping = skip - here as u64;
    }

    /// The connection closes here: what follows is never read.
    pub fn close(&mut self) {
        self.pending.clear();
        self.dead = true;
    }
}
