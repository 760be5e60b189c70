//! Power of two choices: draw two active servers at random in proportion to weight (an
//! integer alias table, O(1) per draw) and send the connection to the one with the lower
//! load / weight. Spreads like least connections without scanning every server.

use super::{lighter, load_of, Loads, Member, PickState};

#[derive(Debug)]
pub(super) struct PowerOfTwo {
    alias: AliasTable,
}

/// Walker's alias method in exact integers (Vose's construction). Draw a column uniformly,
/// then a coin in [0, total): below the column's threshold gives the column's own member,
/// otherwise its alias. Member p comes out with probability weight_p / total.
#[derive(Debug)]
struct AliasTable {
    columns: Box<[Column]>,
    total: u64,
}

#[derive(Debug, Clone, Copy)]
struct Column {
    threshold: u64,
    alias: u32,
}

impl PowerOfTwo {
    pub(super) fn build(active: &[Member]) -> PowerOfTwo {
        PowerOfTwo {
            alias: AliasTable::build(active),
        }
    }

    /// The lighter of two weighted draws, avoiding `exclude`; `None` when four draws found
    /// nothing but `exclude` (the caller then takes the next server in list order).
    #[inline]
    pub(super) fn pick<L: Loads + ?Sized>(
        &self,
        active: &[Member],
        state: &mut PickState,
        load: &L,
        exclude: Option<usize>,
    ) -> Option<usize> {
        if self.alias.columns.is_empty() {
            return None;
        }
        let a = active[self.alias.draw(state)];
        let b = active[self.alias.draw(state)];
        let excluded = |m: Member| Some(m.index as usize) == exclude;
        let winner = match (excluded(a), excluded(b)) {
            (false, false) => {
                let (la, lb) = (load_of(load, a.index), load_of(load, b.index));
                // Ties go to the first draw, itself weighted, so equal ratios keep weights.
                if lighter(lb, b.weight, la, a.weight) {
                    b
                } else {
                    a
                }
            }
            (true, false) => b,
            (false, true) => a,
            (true, true) => {
                // The excluded server is heavy; two more draws before giving up.
                let c = active[self.alias.draw(state)];
                let d = active[self.alias.draw(state)];
                match (excluded(c), excluded(d)) {
                    (false, _) => c,
                    (true, false) => d,
                    (true, true) => return None,
                }
            }
        };
        Some(winner.index as usize)
    }
}

impl AliasTable {
    fn build(active: &[Member]) -> AliasTable {
        let n = active.len() as u64;
        let total: u64 = active.iter().map(|m| u64::from(m.weight)).sum();
        // Each column holds `total` units; member p brings weight_p × n of them.
        let mut units: Vec<u64> = active.iter().map(|m| u64::from(m.weight) * n).collect();
        let mut columns: Vec<Column> = (0..active.len())
            .map(|p| Column {
                threshold: total,
                alias: p as u32,
            })
            .collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..active.len()).partition(|&p| units[p] < total);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            columns[s] = Column {
                threshold: units[s],
                alias: l as u32,
            };
            units[l] -= total - units[s];
            if units[l] < total {
                large.pop();
                small.push(l);
            }
        }
        // Whatever is left holds exactly `total` units (integers leave no rounding rest):
        // its column keeps the default, always itself.
        AliasTable {
            columns: columns.into_boxed_slice(),
            total,
        }
    }

    /// A position in the active list, drawn in proportion to weight. Columns not empty.
    #[inline]
    fn draw(&self, state: &mut PickState) -> usize {
        let r = state.next_u64();
        // Lemire's multiply-shift: the high half picks the column, the low half the coin.
        let col = ((r >> 32) * self.columns.len() as u64) >> 32;
        let coin = ((u128::from(r & 0xffff_ffff) * u128::from(self.total)) >> 32) as u64;
        let column = self.columns[col as usize];
        if coin < column.threshold {
            col as usize
        } else {
            column.alias as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::super::tests::{assert_shares, churn, loads, spec};
    use super::super::{Algorithm, Selector};
    use super::*;

    fn members(weights: &[u32]) -> Vec<Member> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Member {
                index: i as u32,
                weight,
            })
            .collect()
    }

    #[test]
    fn alias_table_is_exact() {
        let weights = [1, 2, 3, 4, 5, 10, 20, 50, 100, 256];
        let table = AliasTable::build(&members(&weights));
        // Probability mass per member, in units of 1 / (total × n): must be weight × n.
        let n = weights.len() as u64;
        let mut mass = vec![0u64; weights.len()];
        for (p, c) in table.columns.iter().enumerate() {
            mass[p] += c.threshold;
            mass[c.alias as usize] += table.total - c.threshold;
        }
        let expected: Vec<u64> = weights.iter().map(|&w| u64::from(w) * n).collect();
        assert_eq!(mass, expected);
    }

    /// Pure weighted draws, no load: each member's share of 1,000,000 draws is within 2%.
    /// The weights keep every share above 5%, where sampling noise is under 0.5%.
    #[test]
    fn draws_follow_weights() {
        let weights = [1, 2, 3, 5, 8];
        let table = AliasTable::build(&members(&weights));
        let mut st = PickState::new(8);
        let mut count = vec![0u64; weights.len()];
        for _ in 0..1_000_000 {
            count[table.draw(&mut st)] += 1;
        }
        assert_shares(&count, &weights, 0.02);
    }

    /// Under churn (see `churn`: a uniformly random live connection ends before each pick)
    /// the shares of picks follow weights: weighted draws plus load / weight comparison
    /// level load / weight, and departures follow load. Shares stay above 5% so the
    /// randomness of departures is a fraction of the 2% bound.
    #[test]
    fn distribution_follows_weights_under_churn() {
        let weights = [1, 2, 3, 5, 8];
        let names = ["a", "b", "c", "d", "e"];
        let servers: Vec<_> = names.iter().zip(weights).map(|(n, w)| spec(n, w)).collect();
        let count = churn(Algorithm::Random, &servers, 1_900, 1_000_000);
        assert_shares(&count, &weights, 0.02);
    }

    #[test]
    fn lighter_of_two_wins() {
        // Two servers: every pick draws both or one twice; the loaded one wins only when
        // drawn twice.
        let servers = [spec("a", 1), spec("b", 1)];
        let sel = Selector::build(Algorithm::Random, &servers);
        let load = loads(2);
        load[0].store(100, Ordering::Relaxed);
        let mut st = PickState::new(4);
        let mut count = [0u32; 2];
        for _ in 0..100_000 {
            count[sel.pick(&mut st, 0, &load, None).unwrap()] += 1;
        }
        // P(a) = P(both draws a) = 1/4.
        assert!((24_000..26_000).contains(&count[0]), "{count:?}");
    }
}
