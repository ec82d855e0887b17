//! Key placement over a fleet: the ketama continuum exactly as libmemcached
//! builds it with `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED` (pylibmc's
//! `ketama_weighted`) and as twemproxy builds it with `distribution:
//! ketama` and `hash: md5`, so that a key lands on the same node whichever
//! of them, or this crate, wrote it.
//!
//! The continuum: each server is named `host:port`, or `host` alone when
//! the port is memcached's 11211 (libmemcached's `update_continuum`,
//! twemproxy's `conf_add_server`). For *i* from 0 the MD5 digest of
//! `name-i` gives four points, each 4 bytes of the digest read little
//! endian; a server has `floor(share × 40 × live) × 4` points, 160 for
//! equal weights (computed in `f32` as libmemcached does, which gives 156
//! for some fleet sizes, 25 among them). A key's hash is the first 4 bytes
//! of its MD5 digest, little endian; its server owns the first point at or
//! after that hash, wrapping to the first point.
//!
//! An ejected server is left out and the continuum is rebuilt over the
//! live ones, as libmemcached's auto-eject and twemproxy's
//! `auto_eject_hosts` do: the survivors keep their points (equal weights),
//! so only the ejected server's keys move.
//!
//! Must not: do I/O or keep time (the cluster client decides who is live),
//! or differ from libmemcached in any placement (`tests/cluster_client.rs`
//! checks against libmemcached itself).

use md5::{Digest, Md5};

/// memcached's port, left out of a server's name on the continuum.
pub const DEFAULT_PORT: u16 = 11211;

/// Points per server for equal weights (`MEMCACHED_POINTS_PER_SERVER_KETAMA`).
pub const POINTS_PER_SERVER: u32 = 160;

/// Points taken from one MD5 digest.
const POINTS_PER_HASH: u32 = 4;

/// A server's name on the continuum, as libmemcached and twemproxy write
/// it: `host:port`, or `host` alone for port 11211.
pub fn server_name(host: &str, port: u16) -> String {
    if port == DEFAULT_PORT {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

/// A server written `host[:port]`, as libmemcached reads a server list:
/// port 11211 when none is given.
pub fn parse_server(spec: &str) -> Option<(&str, u16)> {
    match spec.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host, port.parse().ok()?)),
        Some(_) => None,
        None if !spec.is_empty() => Some((spec, DEFAULT_PORT)),
        None => None,
    }
}

/// A key's position on the continuum (libhashkit's `hashkit_md5`).
pub fn key_hash(key: &[u8]) -> u32 {
    let digest = Md5::digest(key);
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// How many points a server of `weight` gets among `live` servers of
/// `total_weight`, in `f32` as libmemcached and twemproxy compute it.
fn points_for(weight: u32, total_weight: u32, live: usize) -> u32 {
    let share = weight as f32 / total_weight as f32;
    let scaled = share * POINTS_PER_SERVER as f32 / POINTS_PER_HASH as f32 * live as f32;
    // C adds a double constant, then casts the sum back to float.
    let nudged = (f64::from(scaled) + 0.000_000_000_1) as f32;
    nudged.floor() as u32 * POINTS_PER_HASH
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    value: u32,
    server: u32,
}

/// The continuum over the live servers of a fleet.
#[derive(Debug, Clone)]
pub struct Ring {
    points: Vec<Point>,
}

impl Ring {
    /// Every server live, equal weights.
    pub fn new<S: AsRef<str>>(names: &[S]) -> Ring {
        let live = vec![true; names.len()];
        Ring::weighted(names, &vec![1; names.len()], &live)
    }

    /// The continuum over the servers with `live[i]` set, server *i*
    /// weighing `weights[i]` (a weight of 0 counts as 1, as libmemcached
    /// makes it). A server past the end of `weights` or `live` weighs 1
    /// and is live. Lookups answer indices into `names`.
    pub fn weighted<S: AsRef<str>>(names: &[S], weights: &[u32], live: &[bool]) -> Ring {
        let is_live = |i: usize| live.get(i).copied().unwrap_or(true);
        let weight = |i: usize| weights.get(i).copied().unwrap_or(1).max(1);
        let live_count = (0..names.len()).filter(|&i| is_live(i)).count();
        let total: u32 = (0..names.len())
            .filter(|&i| is_live(i))
            .map(weight)
            .fold(0, u32::saturating_add);
        let mut points = Vec::with_capacity(live_count * POINTS_PER_SERVER as usize);
        let mut label = String::new();
        for (i, name) in names.iter().enumerate() {
            if !is_live(i) {
                continue;
            }
            let hashes = points_for(weight(i), total, live_count) / POINTS_PER_HASH;
            for h in 0..hashes {
                label.clear();
                label.push_str(name.as_ref());
                label.push('-');
                label.push_str(&h.to_string());
                let digest = Md5::digest(label.as_bytes());
                for quad in digest.chunks_exact(4) {
                    points.push(Point {
                        value: u32::from_le_bytes([quad[0], quad[1], quad[2], quad[3]]),
                        server: i as u32,
                    });
                }
            }
        }
        // libmemcached sorts by value alone; two servers on one value (a
        // 32-bit collision) is the only case where the order could differ.
        points.sort_unstable();
        Ring { points }
    }

    /// The server for `key`, or `None` if no server is live.
    pub fn server_for(&self, key: &[u8]) -> Option<usize> {
        self.server_for_hash(key_hash(key))
    }

    /// The server owning position `hash`: the first point at or after it,
    /// wrapping to the first.
    pub fn server_for_hash(&self, hash: u32) -> Option<usize> {
        let at = self.points.partition_point(|p| p.value < hash);
        let point = self.points.get(at).or_else(|| self.points.first())?;
        Some(point.server as usize)
    }

    /// How many points the continuum has.
    pub fn points(&self) -> usize {
        self.points.len()
    }

    /// Whether no server is live.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Servers of key `key:i` for i in 0..120, one base-36 digit each, as
    /// libmemcached 1.1.4 computes them: `memcached_server_add` for each
    /// name, `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED` on, then
    /// `memcached_generate_hash` for each key.
    const LIBMEMCACHED: [(&str, &str); 3] = [
        (
            "127.0.0.2:11211 127.0.0.3:11211 127.0.0.4:11211",
            "110011220022110100112020102112002221102021220001011112110012122000011101001212100011120001200000002111122202010221020001",
        ),
        (
            "127.0.0.2:7070 127.0.0.3:7070 127.0.0.4:7070 127.0.0.5:7070",
            "013231033222312121303302312321103131131100321330032120101002322332100202032313112013233221130312101311332311312102221133",
        ),
        (
            // 25 servers: 156 points each, not 160.
            "25",
            "j5k508baa7c1nl7knhe4nf3d3j905ojfgfk072n6kfjc6cd3gnhdc7nh754i2ef3117k82enied14he235dfkh6bmd8ld0kb7cjf24ik48k1fccmkd730dgl",
        ),
    ];

    fn names(spec: &str) -> Vec<String> {
        if let Ok(n) = spec.parse::<u16>() {
            return (0..n)
                .map(|i| server_name(&format!("127.0.0.{}", i + 2), 7000 + i))
                .collect();
        }
        spec.split(' ')
            .map(|s| {
                let (host, port) = s.split_once(':').expect("host:port");
                server_name(host, port.parse().expect("port"))
            })
            .collect()
    }

    #[test]
    fn placement_matches_libmemcached() {
        for (servers, expected) in LIBMEMCACHED {
            let ring = Ring::new(&names(servers));
            let got: String = (0..expected.len())
                .map(|i| {
                    let server = ring
                        .server_for(format!("key:{i}").as_bytes())
                        .expect("live");
                    char::from_digit(server as u32, 36).expect("digit")
                })
                .collect();
            assert_eq!(got, expected, "servers {servers}");
        }
    }

    #[test]
    fn server_specs_parse_as_libmemcached_reads_them() {
        assert_eq!(parse_server("127.0.0.2:7070"), Some(("127.0.0.2", 7070)));
        assert_eq!(parse_server("127.0.0.2"), Some(("127.0.0.2", 11211)));
        assert_eq!(parse_server("localhost:1"), Some(("localhost", 1)));
        assert_eq!(parse_server(":7070"), None);
        assert_eq!(parse_server("127.0.0.2:x"), None);
        assert_eq!(parse_server(""), None);
    }

    #[test]
    fn names_leave_out_the_default_port() {
        assert_eq!(server_name("127.0.0.2", 11211), "127.0.0.2");
        assert_eq!(server_name("127.0.0.2", 7070), "127.0.0.2:7070");
    }

    #[test]
    fn points_follow_libmemcached_float_arithmetic() {
        assert_eq!(points_for(1, 3, 3), 160);
        assert_eq!(points_for(1, 25, 25), 156);
        assert_eq!(points_for(1, 47, 47), 156);
        assert_eq!(points_for(1, 24, 24), 160);
        // Twice the weight, twice the points.
        assert_eq!(points_for(2, 4, 3), 240);
        assert_eq!(Ring::new(&names("25")).points(), 25 * 156);
    }

    #[test]
    fn ejecting_a_server_moves_only_its_keys() {
        let names = names("127.0.0.2:7001 127.0.0.3:7002 127.0.0.4:7003");
        let full = Ring::new(&names);
        let without_1 = Ring::weighted(&names, &[], &[true, false, true]);
        assert_eq!(without_1.points(), 320);
        for i in 0..10_000 {
            let key = format!("k{i}");
            let before = full.server_for(key.as_bytes()).expect("live");
            let after = without_1.server_for(key.as_bytes()).expect("live");
            if before == 1 {
                assert_ne!(after, 1);
            } else {
                assert_eq!(after, before, "{key} moved although its server stayed");
            }
        }
        let none = Ring::weighted(&names, &[], &[false; 3]);
        assert!(none.is_empty());
        assert_eq!(none.server_for(b"k"), None);
    }

    /// The rebalancing cost docs/SCALE-OUT.md quotes: adding a node moves
    /// about its new share of the keys, all of them to the new node.
    /// `cargo test --lib ketama -- --nocapture` prints the figures.
    #[test]
    fn a_joining_node_takes_about_its_share_and_nothing_else_moves() {
        let hashes: Vec<u32> = (0..100_000)
            .map(|i| key_hash(format!("key:{i:012}").as_bytes()))
            .collect();
        let fleet = |n: u16| -> Vec<String> {
            (0..n)
                .map(|i| server_name(&format!("127.0.0.{}", i + 2), 7070))
                .collect()
        };
        for n in [2u16, 3, 4, 5, 9, 10] {
            let (before, after) = (Ring::new(&fleet(n)), Ring::new(&fleet(n + 1)));
            let mut moved = 0;
            for &h in &hashes {
                let (a, b) = (before.server_for_hash(h), after.server_for_hash(h));
                if a != b {
                    assert_eq!(b, Some(usize::from(n)), "a key moved between old nodes");
                    moved += 1;
                }
            }
            let fraction = f64::from(moved) / hashes.len() as f64;
            let ideal = 1.0 / f64::from(n + 1);
            // Modulo placement (hash % nodes) moves every key whose
            // remainder changes: n/(n+1) of them.
            let modulo = hashes
                .iter()
                .filter(|&&h| h % u32::from(n) != h % u32::from(n + 1))
                .count() as f64
                / hashes.len() as f64;
            eprintln!(
                "{n} -> {} nodes: {:.2}% of 100,000 keys move (ideal {:.2}%; modulo {:.2}%)",
                n + 1,
                fraction * 100.0,
                ideal * 100.0,
                modulo * 100.0
            );
            assert!(
                (fraction - ideal).abs() < 0.05,
                "{n} -> {}: {fraction}",
                n + 1
            );
        }
    }

    #[test]
    fn wraps_past_the_last_point() {
        let ring = Ring::new(&["a:1", "b:2"]);
        let first = ring.points[0].server as usize;
        assert_eq!(ring.server_for_hash(u32::MAX), Some(first));
        assert_eq!(ring.server_for_hash(0), Some(first));
        let last = ring.points[ring.points.len() - 1];
        assert_eq!(ring.server_for_hash(last.value), Some(last.server as usize));
    }
}
