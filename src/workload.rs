//! Workload generation shared by the load generator and the benchmarks:
//! a seeded random source and a Zipf sampler.
//!
//! Must not: touch sockets or the clock. Deterministic for a given seed, and
//! independent of any crate's version, so a seed names the same request
//! stream forever.

/// SplitMix64: deterministic, any seed valid, and independent of any
/// crate's version so a seed names the same streams forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; any seed is valid.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (the modulo bias is below 1e-12 for our `n`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Zipf over ranks `1..=n`, P(k) ∝ k^-s, by rejection-inversion
/// (Hörmann & Derflinger 1996, as in Apache Commons' sampler): exact, O(1)
/// per sample, no table. Rank 1 is the most popular.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    cut: f64,
}

impl Zipf {
    /// Zipf over ranks `1..=n` with exponent `s` (> 0).
    pub fn new(n: u32, s: f64) -> Zipf {
        let h_x1 = h_integral(1.5, s) - 1.0;
        let h_n = h_integral(f64::from(n) + 0.5, s);
        let cut = 2.0 - h_integral_inverse(h_integral(2.5, s) - h(2.0, s), s);
        Zipf {
            n: f64::from(n),
            s,
            h_x1,
            h_n,
            cut,
        }
    }

    /// A rank in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> u32 {
        loop {
            let u = self.h_n + rng.unit() * (self.h_x1 - self.h_n);
            let x = h_integral_inverse(u, self.s);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.cut || u >= h_integral(k + 0.5, self.s) - h(k, self.s) {
                return k as u32;
            }
        }
    }
}

/// x^-s.
fn h(x: f64, s: f64) -> f64 {
    (-s * x.ln()).exp()
}

/// An antiderivative of `h`: (x^(1-s) - 1) / (1-s), or ln x at s = 1.
fn h_integral(x: f64, s: f64) -> f64 {
    let log_x = x.ln();
    expm1_over_x((1.0 - s) * log_x) * log_x
}

fn h_integral_inverse(x: f64, s: f64) -> f64 {
    let t = (x * (1.0 - s)).max(-1.0);
    (log1p_over_x(t) * x).exp()
}

/// (e^x - 1) / x, continuous at 0.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// ln(1 + x) / x, continuous at 0.
fn log1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_ranks_follow_the_law() {
        let n = 1000;
        let s = 1.0;
        let zipf = Zipf::new(n, s);
        let mut rng = Rng::new(7);
        let mut counts = vec![0u64; n as usize + 1];
        let samples = 200_000;
        for _ in 0..samples {
            let k = zipf.sample(&mut rng);
            assert!((1..=n).contains(&k));
            counts[k as usize] += 1;
        }
        let harmonic: f64 = (1..=n).map(|k| 1.0 / f64::from(k)).sum();
        for k in [1u32, 2, 10] {
            let expected = samples as f64 / f64::from(k) / harmonic;
            let got = counts[k as usize] as f64;
            assert!(
                (got - expected).abs() < 6.0 * expected.sqrt(),
                "rank {k}: {got} vs {expected}"
            );
        }
    }
}
