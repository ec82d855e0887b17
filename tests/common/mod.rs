//! Helpers shared by the integration test files (each `tests/*.rs` is its
//! own crate, so shared code lives in this module, which cargo does not
//! build as a test of its own).

/// A small deterministic generator (xorshift64*), so every run sends the
/// same requests and a failure can be replayed.
pub struct Rng(u64);

#[allow(dead_code)] // each test crate uses a different subset
impl Rng {
    /// A generator for `seed`; any seed, zero included, is valid.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
