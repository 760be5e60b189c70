//! Least connections: the active server with the lowest load / weight, compared exactly by
//! cross-multiplying. The scan starts at the next server of a smooth weighted rotation, so
//! ties (idle servers above all) go round robin in proportion to weight.

use super::roundrobin::Rotation;
use super::{load_of, Loads, Member, PickState};

#[derive(Debug)]
pub(super) struct LeastConn {
    rotation: Rotation,
}

/// The best candidate so far. Starts as a sentinel heavier than any real server: a load of
/// 2^32 per unit of weight, which no `u32` load can reach.
struct Best {
    load: u64,
    weight: u64,
    index: u32,
}

impl LeastConn {
    pub(super) fn build(active: &[Member]) -> LeastConn {
        LeastConn {
            rotation: Rotation::build(active),
        }
    }

    pub(super) fn rotation_len(&self) -> usize {
        self.rotation.len()
    }

    /// The lightest server other than `exclude`; `None` when `exclude` is the only one.
    #[inline]
    pub(super) fn pick<L: Loads + ?Sized>(
        &self,
        active: &[Member],
        state: &mut PickState,
        load: &L,
        exclude: Option<usize>,
    ) -> Option<usize> {
        if self.rotation.len() == 0 {
            return None;
        }
        let start = self.rotation.next_position(state);
        let exclude = exclude.unwrap_or(usize::MAX);
        let mut best = Best {
            load: 1 << 32,
            weight: 1,
            index: u32::MAX,
        };
        // Strictly lighter only: among equals the first in scan order, from `start`, wins.
        let (before, from) = active.split_at(start);
        scan(from, load, exclude, &mut best);
        scan(before, load, exclude, &mut best);
        (best.index != u32::MAX).then_some(best.index as usize)
    }
}

#[inline]
fn scan<L: Loads + ?Sized>(members: &[Member], load: &L, exclude: usize, best: &mut Best) {
    for m in members {
        let l = u64::from(load_of(load, m.index));
        let w = u64::from(m.weight);
        // l / w < best.load / best.weight, exactly: products stay below 2^41.
        if l * best.weight < best.load * w && m.index as usize != exclude {
            *best = Best {
                load: l,
                weight: w,
                index: m.index,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::super::tests::{assert_shares, churn, loads, spec};
    use super::super::{Algorithm, Selector};
    use super::*;

    const WEIGHTS: [u32; 10] = [1, 2, 3, 4, 5, 10, 20, 50, 100, 256];

    fn named(weights: &[u32]) -> Vec<String> {
        (0..weights.len()).map(|i| format!("s{i}")).collect()
    }

    /// Under churn (see `churn`) the shares of picks follow weights. Departures are random,
    /// so a server's pick count carries Poisson noise of about 1 / sqrt(picks): the weights
    /// keep every share above 5% (noise under 0.5%) so the 2% bound tests the weighting.
    #[test]
    fn distribution_follows_weights_under_churn() {
        let weights = [1, 2, 3, 5, 8];
        let names = named(&weights);
        let servers: Vec<_> = names.iter().zip(weights).map(|(n, w)| spec(n, w)).collect();
        let count = churn(Algorithm::LeastConn, &servers, 1_900, 1_000_000);
        assert_shares(&count, &weights, 0.02);
    }

    /// With every connection ended before the next pick, all loads are 0 and each pick
    /// is a tie: the rotation alone decides, so shares follow weights exactly.
    #[test]
    fn idle_servers_share_by_weight() {
        let names = named(&WEIGHTS);
        let servers: Vec<_> = names.iter().zip(WEIGHTS).map(|(n, w)| spec(n, w)).collect();
        let sel = Selector::build(Algorithm::LeastConn, &servers);
        let load = loads(servers.len());
        let mut st = PickState::new(5);
        let mut count = vec![0u64; servers.len()];
        for _ in 0..1_000_000 {
            count[sel.pick(&mut st, 0, &load, None).unwrap()] += 1;
        }
        assert_shares(&count, &WEIGHTS, 0.02);
    }

    #[test]
    fn equal_servers_take_turns() {
        let servers = [spec("a", 1), spec("b", 1), spec("c", 1)];
        let sel = Selector::build(Algorithm::LeastConn, &servers);
        let load = loads(3);
        for l in &load {
            l.store(7, Ordering::Relaxed);
        }
        let mut st = PickState::new(0);
        let picks: Vec<usize> = (0..6)
            .map(|_| sel.pick(&mut st, 0, &load, None).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn picks_lowest_load_per_weight() {
        let servers = [spec("a", 1), spec("b", 4), spec("c", 2)];
        let sel = Selector::build(Algorithm::LeastConn, &servers);
        let load = loads(3);
        let set = |v: [u32; 3]| {
            for (l, x) in load.iter().zip(v) {
                l.store(x, Ordering::Relaxed);
            }
        };
        let mut st = PickState::new(0);
        // 3/1 > 8/4 > 3/2
        set([3, 8, 3]);
        for _ in 0..10 {
            assert_eq!(sel.pick(&mut st, 0, &load, None), Some(2));
        }
        // 1/1 < 5/4 < 3/2
        set([1, 5, 3]);
        for _ in 0..10 {
            assert_eq!(sel.pick(&mut st, 0, &load, None), Some(0));
        }
        // Excluding the lightest gives the next lightest.
        assert_eq!(sel.pick(&mut st, 0, &load, Some(0)), Some(1));
        // Loads near u32::MAX compare exactly too.
        set([u32::MAX, u32::MAX - 1, u32::MAX]);
        assert_eq!(sel.pick(&mut st, 0, &load, None), Some(1));
    }
}
