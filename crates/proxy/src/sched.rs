//! Backend selection for new connections (HTTP: requests).
//!
//! Each scheduler is compiled once per config snapshot, off the hot path, into
//! an immutable table; a pick only reads that table and touches at most one
//! atomic, so any number of connections pick concurrently without a lock or an
//! allocation. Whether a backend is a candidate (enabled ∧ healthy, not already
//! tried) is asked through `ok` at pick time, because health changes between
//! snapshots and must not force a rebuild. Backends are indices into the
//! VServer's backend slice; a weight of 0 means "never picked" (the model
//! only allows 1..=100).

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Smooth weighted round robin (the nginx algorithm), precomputed: one period
/// of the sequence is laid out once, interleaved so no backend gets a burst,
/// and picks walk it with an atomic cursor. Over any window of W = sum(weights)
/// consecutive picks (all candidates ok) each backend gets exactly its weight.
pub struct Wrr {
    /// One period of the nginx sequence for the gcd-reduced weights (backend
    /// indices). Repeating it is the same as the sequence for the raw weights.
    order: Box<[u32]>,
    /// Backends with a weight, in index order: the fallback when the walk
    /// meets no candidate.
    present: Box<[u32]>,
    cursor: AtomicUsize,
}

impl std::fmt::Debug for Wrr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wrr")
            .field("period", &self.order.len())
            .field("backends", &self.present.len())
            .finish()
    }
}

impl Wrr {
    /// Lays out one period of the nginx sequence.
    ///
    /// nginx adds each weight to its backend's `current`, picks the largest
    /// `current` (lowest index on ties) and subtracts W from it. Backends with
    /// the same weight are always picked in turn (the one with the fewest picks,
    /// lowest index first), so each weight class is simulated as one queue:
    /// O(W × distinct weights) ≤ O(W × 100) instead of O(W × n).
    pub fn new(weights: &[u32]) -> Wrr {
        let g = weights.iter().copied().fold(0, gcd);
        let mut classes: Vec<Class> = Vec::new();
        let mut present = Vec::new();
        for (i, &w) in weights.iter().enumerate() {
            if w == 0 {
                continue;
            }
            present.push(i as u32);
            let w = i64::from(w / g);
            match classes.iter_mut().find(|c| c.weight == w) {
                Some(c) => c.members.push(i as u32),
                None => classes.push(Class {
                    weight: w,
                    members: vec![i as u32],
                    picks: 0,
                }),
            }
        }
        let total: i64 = classes.iter().map(|c| c.weight * c.members.len() as i64).sum();
        let mut order = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for t in 1..=total {
            // (current, backend, class) of the best representative so far.
            let mut best: Option<(i64, u32, usize)> = None;
            for (ci, c) in classes.iter().enumerate() {
                let n = c.members.len() as i64;
                let rep = c.members[(c.picks % n) as usize];
                let current = t * c.weight - total * (c.picks / n);
                if best.is_none_or(|(bc, bi, _)| current > bc || (current == bc && rep < bi)) {
                    best = Some((current, rep, ci));
                }
            }
            if let Some((_, rep, ci)) = best {
                classes[ci].picks += 1;
                order.push(rep);
            }
        }
        Wrr {
            order: order.into(),
            present: present.into(),
            cursor: AtomicUsize::new(0),
        }
    }

    /// The next backend in the sequence that is `ok`; `None` if none is.
    ///
    /// A backend that is not ok leaves its turn to the next slots of the
    /// sequence (so survivors stay interleaved and roughly weighted). The walk
    /// is bounded by O(n); past it, a rotating scan over all backends finds
    /// any remaining candidate, so a pick never costs O(W).
    pub fn pick(&self, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let len = self.order.len();
        if len == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let walk = len.min(2 * self.present.len() + 16);
        let from = start % len;
        for k in 0..walk {
            let b = self.order[(from + k) % len] as usize;
            if ok(b) {
                return Some(b);
            }
        }
        let n = self.present.len();
        let from = start % n;
        (0..n).map(|k| self.present[(from + k) % n] as usize).find(|&b| ok(b))
    }
}

/// Backends of one weight, picked in turn (see [`Wrr::new`]).
struct Class {
    weight: i64,
    members: Vec<u32>,
    picks: i64,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Weighted least connections: the candidate with the fewest active
/// connections per unit of weight (`a_i * w_j < a_j * w_i`, in integers).
///
/// Ties are broken round-robin: the `cursor`-th tie (mod the number of ties) is
/// taken, so equally loaded backends take turns exactly, whatever their
/// positions. The common case (one best) is a single pass over the backends;
/// a tie costs a second one.
pub fn least_connections(
    weights: &[u32],
    active: impl Fn(usize) -> u64,
    ok: impl Fn(usize) -> bool,
    cursor: &AtomicUsize,
) -> Option<usize> {
    let turn = cursor.fetch_add(1, Ordering::Relaxed);
    // (index, active, weight) of the first best, and how many share its load.
    let mut best: Option<(usize, u128, u128)> = None;
    let mut ties = 0usize;
    for (i, &w) in weights.iter().enumerate() {
        if w == 0 || !ok(i) {
            continue;
        }
        let (a, w) = (u128::from(active(i)), u128::from(w));
        match best {
            Some((_, ba, bw)) if a * bw > ba * w => {}
            Some((_, ba, bw)) if a * bw == ba * w => ties += 1,
            _ => {
                best = Some((i, a, w));
                ties = 1;
            }
        }
    }
    let (first, ba, bw) = best?;
    if ties == 1 {
        return Some(first);
    }
    let target = turn % ties;
    let mut seen = 0usize;
    for (i, &w) in weights.iter().enumerate() {
        if w == 0 || !ok(i) || u128::from(active(i)) * bw != ba * u128::from(w) {
            continue;
        }
        if seen == target {
            return Some(i);
        }
        seen += 1;
    }
    // Counts moved between the passes: the first best is still a fine answer.
    Some(first)
}

/// Consistent hashing on the client IP through a weighted Maglev-style lookup
/// table of prime size M = 65537, built from stable backend keys (ids) with a
/// fixed-seed hash (FNV-1a 64 + the splitmix64 finalizer), so every node and
/// every restart builds the same table.
///
/// Each backend owns `weight` virtual nodes; each virtual node walks its own
/// Maglev permutation (`offset + k·skip mod M`) one slot per round, in a fixed
/// priority order, and takes the slots it reaches first. Unlike classic
/// Maglev, a virtual node whose slot is already taken does not walk on to
/// its next one in the same round: so a slot's owner depends only on the
/// virtual nodes that claim it, never on who else is in the set. Removing a
/// backend moves only its own clients; adding one moves only the clients it
/// takes (≈ w/W of them); changing one weight moves only that backend's share.
/// The cost is balance: shares are multinomial (≈ M/W slots per unit of
/// weight, ±1/√(M/W)) instead of Maglev's ±1 slot; the build is O(M ln M).
pub struct Maglev {
    /// Slot → backend index; empty when no backend has a weight.
    table: Box<[u32]>,
    /// Backends with a weight: checked once when a long walk finds no candidate.
    present: Box<[u32]>,
}

impl std::fmt::Debug for Maglev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maglev")
            .field("slots", &self.table.len())
            .field("backends", &self.present.len())
            .finish()
    }
}

/// Table size: prime, so every permutation visits every slot.
const MAGLEV_SIZE: u64 = 65537;
const EMPTY: u32 = u32::MAX;
// Fixed salts deriving independent values from one key hash.
const SALT_OFFSET: u64 = 0x243f_6a88_85a3_08d3;
const SALT_SKIP: u64 = 0x1319_8a2e_0370_7344;
const SALT_PRIO: u64 = 0xa409_3822_299f_31d0;
const SALT_REPLICA: u64 = 0x082e_fa98_ec4e_6c89;

/// A virtual node while the table is built.
struct VNode<'a> {
    prio: u64,
    key: &'a str,
    replica: u32,
    backend: u32,
    pos: u64,
    skip: u64,
}

impl Maglev {
    /// Builds the table; `keys[i]` and `weights[i]` describe backend `i`
    /// (extra entries of the longer slice are ignored).
    pub fn new(keys: &[&str], weights: &[u32]) -> Maglev {
        let m = MAGLEV_SIZE;
        let mut vnodes = Vec::new();
        let mut present = Vec::new();
        for (i, (key, &w)) in keys.iter().zip(weights).enumerate() {
            if w > 0 {
                present.push(i as u32);
            }
            let base = fnv1a(key.as_bytes());
            for replica in 0..w {
                let h = mix(base ^ mix(u64::from(replica) ^ SALT_REPLICA));
                vnodes.push(VNode {
                    prio: mix(h ^ SALT_PRIO),
                    key,
                    replica,
                    backend: i as u32,
                    pos: mix(h ^ SALT_OFFSET) % m,
                    skip: mix(h ^ SALT_SKIP) % (m - 1) + 1,
                });
            }
        }
        if vnodes.is_empty() {
            return Maglev {
                table: Box::new([]),
                present: present.into(),
            };
        }
        // A total order that does not depend on positions in the slice.
        vnodes
            .sort_unstable_by(|a, b| (a.prio, a.key, a.replica, a.backend).cmp(&(b.prio, b.key, b.replica, b.backend)));
        let mut table = vec![EMPTY; m as usize];
        let mut filled = 0u64;
        // Every permutation covers all M slots, so M rounds always fill the table.
        'fill: for _round in 0..m {
            for v in &mut vnodes {
                let slot = &mut table[v.pos as usize];
                if *slot == EMPTY {
                    *slot = v.backend;
                    filled += 1;
                    if filled == m {
                        break 'fill;
                    }
                }
                v.pos = (v.pos + v.skip) % m;
            }
        }
        debug_assert_eq!(filled, m);
        Maglev {
            table: table.into(),
            present: present.into(),
        }
    }

    /// The backend owning the client's slot, or — when it is not `ok` — the
    /// owner of the first following slot that is (deterministic, and spreads a
    /// failed backend's clients over the others). `None` if no backend is ok;
    /// that case is detected in O(n), not by walking the whole table.
    pub fn pick(&self, client: IpAddr, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let m = self.table.len();
        if m == 0 {
            return None;
        }
        let from = (client_hash(client) % m as u64) as usize;
        let check_after = 2 * self.present.len() + 16;
        for k in 0..m {
            let b = self.table[(from + k) % m];
            if b != EMPTY && ok(b as usize) {
                return Some(b as usize);
            }
            if k == check_after && !self.present.iter().any(|&i| ok(i as usize)) {
                return None;
            }
        }
        None
    }
}

/// FNV-1a 64: fixed, portable, and stable across builds (unlike std's hashers).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The splitmix64 finalizer: spreads FNV's weak low bits over the whole word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// IPv4-mapped IPv6 clients hash as their IPv4 address (dual-stack sockets).
fn client_hash(client: IpAddr) -> u64 {
    match client.to_canonical() {
        IpAddr::V4(a) => mix(fnv1a(&a.octets())),
        IpAddr::V6(a) => mix(fnv1a(&a.octets())),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    fn all(_: usize) -> bool {
        true
    }

    /// The textbook nginx loop, O(W × n): the reference for `Wrr::new`.
    fn nginx(weights: &[u32]) -> Vec<usize> {
        let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
        let mut current = vec![0i64; weights.len()];
        let mut out = Vec::new();
        for _ in 0..total {
            let mut best: Option<usize> = None;
            for (i, &w) in weights.iter().enumerate() {
                if w == 0 {
                    continue;
                }
                current[i] += i64::from(w);
                if best.is_none_or(|b| current[i] > current[b]) {
                    best = Some(i);
                }
            }
            if let Some(b) = best {
                current[b] -= total;
                out.push(b);
            }
        }
        out
    }

    fn picks(w: &Wrr, n: usize) -> Vec<usize> {
        (0..n).map(|_| w.pick(all).unwrap()).collect()
    }

    fn assert_exact_windows(weights: &[u32], seq: &[usize]) {
        let total: usize = weights.iter().map(|&w| w as usize).sum();
        for start in 0..=seq.len() - total {
            let mut counts = vec![0u32; weights.len()];
            for &b in &seq[start..start + total] {
                counts[b] += 1;
            }
            assert_eq!(counts, weights, "window starting at {start}");
        }
    }

    #[test]
    fn wrr_1_3_exact() {
        let w = Wrr::new(&[1, 3]);
        let seq = picks(&w, 400);
        assert_eq!(seq.iter().filter(|&&b| b == 0).count(), 100);
        assert_eq!(seq.iter().filter(|&&b| b == 1).count(), 300);
        assert_exact_windows(&[1, 3], &seq);
    }

    #[test]
    fn wrr_is_the_smooth_nginx_sequence() {
        let w = Wrr::new(&[5, 1, 1]);
        let seq = picks(&w, 21);
        assert_eq!(&seq[..7], &[0, 0, 1, 0, 2, 0, 0]);
        assert_exact_windows(&[5, 1, 1], &seq);
        // Common factors do not change the sequence.
        assert_eq!(picks(&Wrr::new(&[10, 2, 2]), 7), vec![0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn wrr_skips_non_candidates() {
        let w = Wrr::new(&[5, 1, 1]);
        let seq: Vec<usize> = (0..70).map(|_| w.pick(|i| i != 1).unwrap()).collect();
        assert!(!seq.contains(&1));
        assert_eq!(seq.iter().filter(|&&b| b == 2).count(), 10);
        // Only the lightest backend is up: found through the fallback scan.
        let w = Wrr::new(&[100, 100, 1]);
        assert!((0..300).all(|_| w.pick(|i| i == 2) == Some(2)));
        assert_eq!(w.pick(|_| false), None);
    }

    #[test]
    fn wrr_empty_and_zero_weights() {
        assert_eq!(Wrr::new(&[]).pick(all), None);
        assert_eq!(Wrr::new(&[0, 0]).pick(all), None);
        let w = Wrr::new(&[0, 2, 0]);
        assert!((0..10).all(|_| w.pick(all) == Some(1)));
    }

    #[test]
    fn wrr_builds_for_1000_backends() {
        let weights: Vec<u32> = (0..1000).map(|i| i % 100 + 1).collect();
        let w = Wrr::new(&weights);
        assert_eq!(w.order.len(), 50_500);
        let mut counts = vec![0u32; 1000];
        for &b in w.order.iter() {
            counts[b as usize] += 1;
        }
        assert_eq!(counts, weights);
    }

    #[test]
    fn least_connections_by_weight() {
        let c = AtomicUsize::new(0);
        // 4/1 vs 6/2 vs 5/1: backend 1 has the least per unit of weight.
        let active = [4u64, 6, 5];
        assert_eq!(least_connections(&[1, 2, 1], |i| active[i], all, &c), Some(1));
        assert_eq!(least_connections(&[1, 2, 1], |i| active[i], |i| i != 1, &c), Some(0));
        assert_eq!(least_connections(&[1, 2, 1], |i| active[i], |_| false, &c), None);
        assert_eq!(least_connections(&[], |_| 0, all, &c), None);
        // Weight 0 is never picked.
        assert_eq!(least_connections(&[0, 1], |i| [0, 9][i], all, &c), Some(1));
        // No overflow on huge counts.
        assert_eq!(
            least_connections(&[100, 1], |i| [u64::MAX, u64::MAX / 2][i], all, &c),
            Some(0)
        );
    }

    #[test]
    fn least_connections_rotates_ties() {
        let c = AtomicUsize::new(0);
        let seq: Vec<_> = (0..6)
            .map(|_| least_connections(&[1, 1, 1], |_| 0, all, &c).unwrap())
            .collect();
        assert_eq!(seq, vec![0, 1, 2, 0, 1, 2]);
        // Ties at uneven positions still alternate exactly.
        let active = [0u64, 5, 5, 0];
        let seq: Vec<_> = (0..4)
            .map(|_| least_connections(&[1; 4], |i| active[i], all, &c).unwrap())
            .collect();
        assert_eq!(seq.iter().filter(|&&b| b == 0).count(), 2);
        assert_eq!(seq.iter().filter(|&&b| b == 3).count(), 2);
        // 2/2 ties with 1/1.
        let active = [1u64, 2, 3];
        let mut seen: Vec<_> = (0..2)
            .map(|_| least_connections(&[1, 2, 1], |i| active[i], all, &c).unwrap())
            .collect();
        seen.sort();
        assert_eq!(seen, vec![0, 1]);
    }

    fn clients() -> impl Iterator<Item = IpAddr> {
        (0..1000u32).map(|i| IpAddr::V4(Ipv4Addr::new(127, (i >> 16) as u8, (i >> 8) as u8, i as u8)))
    }

    fn assignment(m: &Maglev, keys: &[&str]) -> Vec<String> {
        clients().map(|c| keys[m.pick(c, all).unwrap()].to_string()).collect()
    }

    #[test]
    fn maglev_is_stable_across_rebuilds() {
        let keys = ["be-a", "be-b", "be-c", "be-d"];
        let a = assignment(&Maglev::new(&keys, &[1; 4]), &keys);
        let b = assignment(&Maglev::new(&keys, &[1; 4]), &keys);
        assert_eq!(a, b);
        // Slice order does not matter, only keys.
        let rev = ["be-d", "be-c", "be-b", "be-a"];
        assert_eq!(a, assignment(&Maglev::new(&rev, &[1; 4]), &rev));
        // Every backend gets some clients.
        for k in keys {
            assert!(a.iter().any(|x| x == k));
        }
    }

    #[test]
    fn maglev_add_moves_about_a_fifth() {
        let four = ["be-a", "be-b", "be-c", "be-d"];
        let five = ["be-a", "be-b", "be-c", "be-d", "be-e"];
        let before = assignment(&Maglev::new(&four, &[1; 4]), &four);
        let after = assignment(&Maglev::new(&five, &[1; 5]), &five);
        let moved: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b != a).collect();
        assert!((100..=300).contains(&moved.len()), "moved {}", moved.len());
        // Everything that moved went to the new backend.
        assert!(moved.iter().all(|(_, a)| *a == "be-e"));
    }

    #[test]
    fn maglev_remove_moves_only_its_clients() {
        let four = ["be-a", "be-b", "be-c", "be-d"];
        let three = ["be-a", "be-c", "be-d"];
        let before = assignment(&Maglev::new(&four, &[1; 4]), &four);
        let after = assignment(&Maglev::new(&three, &[1; 3]), &three);
        for (b, a) in before.iter().zip(&after) {
            if b == "be-b" {
                assert_ne!(a, "be-b");
            } else {
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn maglev_unhealthy_moves_only_its_clients() {
        let keys = ["be-a", "be-b", "be-c", "be-d"];
        let m = Maglev::new(&keys, &[1; 4]);
        for c in clients() {
            let home = m.pick(c, all).unwrap();
            let other = m.pick(c, |i| i != 1).unwrap();
            assert_ne!(other, 1);
            if home != 1 {
                assert_eq!(other, home);
            }
        }
        assert_eq!(m.pick(IpAddr::V4(Ipv4Addr::LOCALHOST), |_| false), None);
        assert!(clients().all(|c| m.pick(c, |i| i == 3) == Some(3)));
    }

    #[test]
    fn maglev_respects_weights() {
        let keys = ["be-a", "be-b", "be-c", "be-d"];
        let weights = [1u32, 2, 3, 4];
        let m = Maglev::new(&keys, &weights);
        let mut slots = [0usize; 4];
        for &b in m.table.iter() {
            slots[b as usize] += 1;
        }
        let mut by_client = [0usize; 4];
        for i in 0..20_000u32 {
            let c = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 7919));
            by_client[m.pick(c, all).unwrap()] += 1;
        }
        for (i, &w) in weights.iter().enumerate() {
            let want = f64::from(w) / 10.0;
            let s = slots[i] as f64 / MAGLEV_SIZE as f64;
            let c = by_client[i] as f64 / 20_000.0;
            assert!(
                (s / want - 1.0).abs() < 0.05,
                "backend {i}: slot share {s}, want {want}"
            );
            assert!(
                (c / want - 1.0).abs() < 0.15,
                "backend {i}: client share {c}, want {want}"
            );
        }
    }

    #[test]
    fn maglev_maps_v4_mapped_clients_as_v4() {
        let keys = ["be-a", "be-b", "be-c", "be-d"];
        let m = Maglev::new(&keys, &[1; 4]);
        for c in clients() {
            let IpAddr::V4(v4) = c else { unreachable!() };
            assert_eq!(m.pick(IpAddr::V6(v4.to_ipv6_mapped()), all), m.pick(c, all));
        }
        assert!(m.pick(IpAddr::V6(Ipv6Addr::LOCALHOST), all).is_some());
    }

    #[test]
    fn maglev_empty() {
        assert_eq!(Maglev::new(&[], &[]).pick(IpAddr::V4(Ipv4Addr::LOCALHOST), all), None);
        assert_eq!(
            Maglev::new(&["a"], &[0]).pick(IpAddr::V4(Ipv4Addr::LOCALHOST), all),
            None
        );
        let m = Maglev::new(&["a", "b"], &[0, 3]);
        assert!(clients().all(|c| m.pick(c, all) == Some(1)));
    }

    #[test]
    fn maglev_builds_for_1000_backends() {
        let keys: Vec<String> = (0..1000).map(|i| format!("be-{i:04}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let weights: Vec<u32> = (0..1000).map(|i| i % 100 + 1).collect();
        let t = std::time::Instant::now();
        let m = Maglev::new(&refs, &weights);
        assert!(m.table.iter().all(|&b| b != EMPTY));
        eprintln!("1000 backends (W = {}): {:?}", weights.iter().sum::<u32>(), t.elapsed());
        let m1 = Maglev::new(&refs, &[1; 1000]);
        let used: std::collections::HashSet<u32> = m1.table.iter().copied().collect();
        assert_eq!(used.len(), 1000);
    }

    #[test]
    fn fnv1a_is_the_published_function() {
        // Test vectors from the FNV reference.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn wrr_matches_nginx_and_windows_are_exact(weights in prop::collection::vec(1u32..=100, 1..8)) {
            let total: usize = weights.iter().map(|&w| w as usize).sum();
            let w = Wrr::new(&weights);
            let seq = picks(&w, 2 * total);
            prop_assert_eq!(&seq[..total], &nginx(&weights)[..]);
            assert_exact_windows(&weights, &seq);
        }

        #[test]
        fn least_connections_is_minimal(
            entries in prop::collection::vec((1u32..=100, 0u64..1000), 1..10),
            turn in 0usize..100,
        ) {
            let c = AtomicUsize::new(turn);
            let weights: Vec<u32> = entries.iter().map(|e| e.0).collect();
            let b = least_connections(&weights, |i| entries[i].1, all, &c).unwrap();
            for &(w, a) in &entries {
                prop_assert!(u128::from(entries[b].1) * u128::from(w) <= u128::from(a) * u128::from(entries[b].0));
            }
        }

        #[test]
        fn maglev_removal_only_moves_its_clients(n in 2usize..8, gone in 0usize..8, seed in any::<u32>()) {
            let gone = gone % n;
            let keys: Vec<String> = (0..n).map(|i| format!("k{seed}-{i}")).collect();
            let all_keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let rest: Vec<&str> = all_keys.iter().copied().filter(|&k| k != all_keys[gone]).collect();
            let weights: Vec<u32> = (0..n).map(|i| (i as u32 * 7 + seed) % 5 + 1).collect();
            let rest_w: Vec<u32> = (0..n).filter(|&i| i != gone).map(|i| weights[i]).collect();
            let before = Maglev::new(&all_keys, &weights);
            let after = Maglev::new(&rest, &rest_w);
            for (b, a) in before.table.iter().zip(after.table.iter()) {
                if *b as usize != gone {
                    prop_assert_eq!(all_keys[*b as usize], rest[*a as usize]);
                }
            }
        }
    }
}
