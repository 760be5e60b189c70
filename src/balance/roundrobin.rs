//! Smooth weighted round robin (nginx's algorithm), unrolled at build time into one full
//! cycle over the active servers, so a pick is a cursor step and an array read. Least
//! connections reuses the rotation to break ties.

use super::{gcd, Member, PickState};

/// One cycle of nginx's smooth weighted round robin: positions in the active member list,
/// each appearing weight / gcd(weights) times, heavy servers' turns spread out.
#[derive(Debug)]
pub(super) struct Rotation {
    order: Box<[u32]>,
}

impl Rotation {
    pub(super) fn build(active: &[Member]) -> Rotation {
        let divisor = active.iter().fold(0, |g, m| gcd(g, m.weight)).max(1);
        let weights: Vec<u32> = active.iter().map(|m| m.weight / divisor).collect();
        Rotation {
            order: smooth_order(&weights).into_boxed_slice(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    /// The active position at the cursor, stepping the cursor. The rotation is not empty.
    #[inline]
    pub(super) fn next_position(&self, state: &mut PickState) -> usize {
        self.order[state.advance(self.order.len())] as usize
    }

    /// The next server in rotation; if that is `exclude`, the one after it in the rotation
    /// when it differs, else `None` (the caller then takes the next server in list order).
    #[inline]
    pub(super) fn pick(
        &self,
        active: &[Member],
        state: &mut PickState,
        exclude: Option<usize>,
    ) -> Option<usize> {
        if self.order.is_empty() {
            return None;
        }
        let first = active[self.next_position(state)].index as usize;
        if Some(first) != exclude {
            return Some(first);
        }
        // A heavy excluded server can hold many turns in a row; one more step usually
        // leaves it, and the caller's list-order fallback bounds the rest.
        let second = active[self.next_position(state)].index as usize;
        (Some(second) != exclude).then_some(second)
    }
}

/// nginx's smooth weighted round robin over one full cycle: each step every server gains
/// its weight, the richest (first on ties) is chosen and pays the total. Weights 1 and 2
/// give [1, 0, 1]. O(total weight × servers).
fn smooth_order(weights: &[u32]) -> Vec<u32> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut order = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best = 0;
        for (i, &w) in weights.iter().enumerate() {
            current[i] += i64::from(w);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        order.push(best as u32);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::super::tests::{loads, spec};
    use super::super::{Algorithm, Selector};
    use super::*;

    #[test]
    fn smooth_order_spreads_weight() {
        assert_eq!(smooth_order(&[1, 2]), vec![1, 0, 1]);
        assert_eq!(smooth_order(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert!(smooth_order(&[]).is_empty());
    }

    #[test]
    fn rotation_counts_match_weights_over_their_gcd() {
        let weights = [4, 2, 8, 256];
        let active: Vec<Member> = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Member {
                index: i as u32,
                weight,
            })
            .collect();
        let r = Rotation::build(&active);
        assert_eq!(r.len(), (4 + 2 + 8 + 256) / 2);
        for (pos, &w) in weights.iter().enumerate() {
            let n = r.order.iter().filter(|&&p| p as usize == pos).count();
            assert_eq!(n, w as usize / 2, "position {pos}");
        }
    }

    #[test]
    fn equal_weights_alternate() {
        let servers = [spec("a", 10), spec("b", 10), spec("c", 10)];
        let sel = Selector::build(Algorithm::RoundRobin, &servers);
        let load = loads(3);
        let mut st = PickState::new(0);
        let picks: Vec<usize> = (0..6)
            .map(|_| sel.pick(&mut st, 0, &load, None).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
    }

    /// Round robin is deterministic: over whole cycles each server's share is exact, and
    /// 1,000,000 picks (not a whole number of cycles) stay well within 2%.
    #[test]
    fn distribution_follows_weights() {
        let weights = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89];
        let names: Vec<String> = (0..weights.len()).map(|i| format!("s{i}")).collect();
        let servers: Vec<_> = names.iter().zip(weights).map(|(n, w)| spec(n, w)).collect();
        let sel = Selector::build(Algorithm::RoundRobin, &servers);
        let load = loads(servers.len());
        let mut st = PickState::new(42);
        let mut count = vec![0u64; servers.len()];
        const PICKS: u64 = 1_000_000;
        for _ in 0..PICKS {
            count[sel.pick(&mut st, 0, &load, None).unwrap()] += 1;
        }
        let total: u32 = weights.iter().sum();
        for (i, &w) in weights.iter().enumerate() {
            let expected = PICKS as f64 * f64::from(w) / f64::from(total);
            let err = (count[i] as f64 - expected).abs() / expected;
            assert!(err < 0.02, "server {i}: {} vs {expected:.0}", count[i]);
        }
    }

    #[test]
    fn cursor_past_a_shorter_rotation_wraps() {
        let servers = [spec("a", 1), spec("b", 1)];
        let sel = Selector::build(Algorithm::RoundRobin, &servers);
        let mut st = PickState::new(0);
        st.cursor = 1_000_001;
        let load = loads(2);
        let a = sel.pick(&mut st, 0, &load, None).unwrap();
        let b = sel.pick(&mut st, 0, &load, None).unwrap();
        assert_ne!(a, b);
    }
}
