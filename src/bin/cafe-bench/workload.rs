//! The request stream: which key comes next, GET or SET, each key's name,
//! and each key's value (a function of the key alone, so `--verify` can
//! check any hit while many connections write the same keys).
//!
//! Must not: know any protocol's encoding, or allocate per request (key
//! names and values are written into buffers the caller reuses).

use cafe::workload::{Rng, Zipf};

use crate::args::{Args, Distribution};
use crate::decimal;

#[derive(Debug, Clone)]
pub struct Workload {
    pub keys: u32,
    key_size: usize,
    value_min: usize,
    value_max: usize,
    get_ratio: f64,
    zipf: Option<Zipf>,
    /// Rank to key, so popularity is unrelated to key order.
    permutation: Vec<u32>,
}

impl Workload {
    /// The stream `args` asks for, values between `value_min` and
    /// `value_max` bytes (already checked by the caller).
    pub fn new(args: &Args, value_min: usize, value_max: usize) -> Workload {
        let mut rng = Rng::new(args.seed ^ 0x5EED);
        let zipf = (args.distribution == Distribution::Zipf)
            .then(|| Zipf::new(args.keys, args.zipf_alpha));
        let mut permutation: Vec<u32> = (0..args.keys).collect();
        if zipf.is_some() {
            for i in (1..permutation.len()).rev() {
                permutation.swap(i, rng.below(i + 1));
            }
        }
        Workload {
            keys: args.keys,
            key_size: args.key_size,
            value_min,
            value_max,
            get_ratio: args.get_ratio,
            zipf,
            permutation,
        }
    }

    /// `key:` then `id` in decimal, zero-padded to `key_size`. Written by
    /// hand: this runs once per request, and `format!` allocates.
    pub fn key(&self, id: u32, out: &mut Vec<u8>) {
        let digits = decimal::digits(u64::from(id));
        let digits = digits.as_bytes();
        let width = self.key_size.max(digits.len() + 4);
        out.clear();
        out.extend_from_slice(b"key:");
        out.resize(width - digits.len(), b'0');
        out.extend_from_slice(digits);
    }

    /// The value stored under key `id`: its length and bytes depend on the
    /// key alone.
    pub fn value(&self, id: u32, out: &mut Vec<u8>) {
        out.clear();
        let span = self.value_max - self.value_min + 1;
        let mix = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let len = self.value_min + (mix >> 33) as usize % span;
        out.extend((0..len).map(|i| (mix >> (i % 7 * 8)) as u8 ^ i as u8));
    }

    /// The next request: whether it is a GET, and its key.
    pub fn next(&self, rng: &mut Rng) -> (bool, u32) {
        let id = match &self.zipf {
            Some(zipf) => self.permutation[zipf.sample(rng) as usize - 1],
            None => rng.below(self.keys as usize) as u32,
        };
        (rng.unit() < self.get_ratio, id)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn keys_are_zero_padded_to_the_key_size_or_longer() {
        let args = Args::parse_from(["cafe-bench", "--key-size", "16"]);
        let workload = Workload::new(&args, 64, 64);
        let mut key = Vec::new();
        workload.key(7, &mut key);
        assert_eq!(key, b"key:000000000007");
        workload.key(u32::MAX, &mut key);
        assert_eq!(key, b"key:004294967295");
        let short = Workload::new(&Args::parse_from(["cafe-bench", "--key-size", "1"]), 1, 1);
        short.key(42, &mut key);
        assert_eq!(key, b"key:42");
    }
}
