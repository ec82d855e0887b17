//! How a Zipf workload's requests fall on the workers that own their keys:
//! the exact share each worker owns, from the Zipf probabilities of
//! `cafe-bench`'s key stream (its rank-to-key permutation and key names)
//! and the server's own `Router`. Deterministic: no server, no timing.
//! The figures are in docs/HOT-KEYS.md.
//!
//! Run: `cargo bench --bench hotkeys --no-run`, then the executable it
//! names with `--test --nocapture` (a second or two).

use cafe::router::Router;
use cafe::workload::{Rng, Zipf};

/// cafe-bench's defaults: `--keys`, `--key-size`, `--seed`.
const KEYS: u32 = 100_000;
const KEY_SIZE: usize = 16;
const SEED: u64 = 1;

/// cafe-bench's key name for `id`: `key:` then `id` zero-padded.
fn key(id: u32) -> Vec<u8> {
    let digits = id.to_string();
    let width = KEY_SIZE.max(digits.len() + 4);
    format!("key:{digits:0>w$}", w = width - 4).into_bytes()
}

/// cafe-bench's rank-to-key permutation for `seed`.
fn permutation(seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed ^ 0x5EED);
    let mut p: Vec<u32> = (0..KEYS).collect();
    for i in (1..p.len()).rev() {
        p.swap(i, rng.below(i + 1));
    }
    p
}

/// Probability of rank `k` (1-based, index k-1).
fn pmf(alpha: f64) -> Vec<f64> {
    let w: Vec<f64> = (1..=KEYS).map(|k| f64::from(k).powf(-alpha)).collect();
    let total: f64 = w.iter().sum();
    w.into_iter().map(|x| x / total).collect()
}

/// Share of requests each worker owns.
fn shares(pmf: &[f64], perm: &[u32], owners: &[usize], workers: usize) -> Vec<f64> {
    let mut s = vec![0.0; workers];
    for (rank, p) in pmf.iter().enumerate() {
        s[owners[perm[rank] as usize]] += p;
    }
    s
}

#[test]
fn hot_key_shares() {
    let names: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let perm = permutation(SEED);
    for alpha in [0.99, 1.2] {
        let pmf = pmf(alpha);
        // The sampler cafe-bench draws from agrees with the probabilities.
        let zipf = Zipf::new(KEYS, alpha);
        let mut rng = Rng::new(42);
        let draws = 1_000_000;
        let top = (0..draws).filter(|_| zipf.sample(&mut rng) == 1).count();
        let sampled = top as f64 / f64::from(draws);
        assert!((sampled - pmf[0]).abs() < 0.005, "{sampled} vs {}", pmf[0]);
        let top10: f64 = pmf[..10].iter().sum();
        let top100: f64 = pmf[..100].iter().sum();
        println!(
            "alpha {alpha}: top key {:.2}%, top 10 {:.2}%, top 100 {:.2}% (sampled top key {:.2}%)",
            pmf[0] * 100.0,
            top10 * 100.0,
            top100 * 100.0,
            sampled * 100.0
        );
        for workers in [2usize, 4, 8, 16] {
            let router = Router::new(workers);
            let owners: Vec<usize> = names.iter().map(|k| router.owner(k)).collect();
            let s = shares(&pmf, &perm, &owners, workers);
            assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            let max = s.iter().cloned().fold(0.0, f64::max);
            // Over other permutations (seeds), i.e. other hot keys.
            let mut over_seeds: Vec<f64> = (1..=200u64)
                .map(|seed| {
                    let s = shares(&pmf, &permutation(seed), &owners, workers);
                    s.into_iter().fold(0.0, f64::max)
                })
                .collect();
            over_seeds.sort_by(f64::total_cmp);
            let mean = over_seeds.iter().sum::<f64>() / over_seeds.len() as f64;
            // The `hot` most popular keys served by a replica on the
            // worker that received the request (1/N each), the rest by
            // their owners.
            let replicated = |hot: usize| {
                let local: f64 = pmf[..hot].iter().sum::<f64>() / workers as f64;
                let mut s = vec![local; workers];
                for (rank, p) in pmf.iter().enumerate().skip(hot) {
                    s[owners[perm[rank] as usize]] += p;
                }
                s.into_iter().fold(0.0, f64::max)
            };
            println!(
                "  {workers:2} workers, top 10 / top 100 keys replicated: busiest {:.1}% / {:.1}%",
                replicated(10) * 100.0,
                replicated(100) * 100.0
            );
            let shares: Vec<String> = s.iter().map(|x| format!("{:.1}", x * 100.0)).collect();
            println!(
                "  {workers:2} workers: shares % [{}], busiest {:.1}% = {:.2}x fair; \
                 200 seeds: busiest mean {:.1}%, median {:.1}%, max {:.1}%",
                shares.join(", "),
                max * 100.0,
                max * workers as f64,
                mean * 100.0,
                over_seeds[100] * 100.0,
                over_seeds[199] * 100.0
            );
        }
    }
}
