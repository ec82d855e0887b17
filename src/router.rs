//! Which worker owns a key. Pure: a function of the key bytes and the worker
//! count, nothing else.
//!
//! The hash here must be independent of the one each partition's hash table
//! uses (hashbrown's randomly seeded foldhash): if both were the same, every
//! key a worker owns would share the same residue of the table's hash and
//! crowd into a fraction of its buckets. It is fixed, not seeded, so tools and
//! tests can predict ownership; flooding one table is not possible through it
//! because the tables themselves are seeded per process.

/// Maps keys to worker indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Router {
    workers: usize,
}

impl Router {
    /// A router over `workers` workers (at least one).
    pub fn new(workers: usize) -> Self {
        Router {
            workers: workers.max(1),
        }
    }

    /// Number of workers routed over.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The index of the worker that owns `key`.
    #[inline]
    pub fn owner(&self, key: &[u8]) -> usize {
        if self.workers == 1 {
            return 0;
        }
        // Multiply-shift range reduction uses the hash's high bits, which
        // the final mix makes the best distributed.
        ((u128::from(key_hash(key)) * self.workers as u128) >> 64) as usize
    }
}

const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// A fast 64-bit hash, eight bytes at a time, finished with murmur3's fmix64
/// so every input bit reaches the high output bits.
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h = K0 ^ (key.len() as u64).wrapping_mul(K1);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w.wrapping_mul(K1)).rotate_left(31).wrapping_mul(K0);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(tail).wrapping_mul(K1))
            .rotate_left(31)
            .wrapping_mul(K0);
    }
    fmix64(h)
}

#[inline]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_owns_everything() {
        assert_eq!(Router::new(1).owner(b"anything"), 0);
        assert_eq!(Router::new(0).owner(b"anything"), 0);
    }

    #[test]
    fn keys_spread_evenly() {
        let r = Router::new(4);
        let mut counts = [0usize; 4];
        for i in 0..40_000 {
            counts[r.owner(format!("key:{i}").as_bytes())] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn tail_bytes_matter() {
        assert_ne!(key_hash(b"abcdefgh1"), key_hash(b"abcdefgh2"));
        assert_ne!(key_hash(b""), key_hash(b"\0"));
    }
}
