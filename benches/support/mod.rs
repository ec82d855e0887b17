//! What more than one benchmark needs.

use cafe::workload::Rng;

/// `0..n` in a seeded random order, so successive lookups touch unrelated
/// memory, as a server's would.
pub fn shuffled(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}
