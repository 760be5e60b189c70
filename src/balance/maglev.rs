//! Source hashing with Maglev tables (Eisenbud et al., NSDI 2016): a client address hash
//! picks a slot of a prime-sized table filled from per-name permutations. The primary table
//! covers every configured primary server regardless of health, so a server going down
//! moves only its own clients (to a second table over the usable servers) and coming back
//! restores the old mapping exactly.

use super::{fmix64, fnv1a64, splitmix64, Member, ServerSpec, MAX_WEIGHT};

/// Slots per Maglev table: prime, and far above any server count (the paper asks for
/// M ≫ 100 × N), so shares stay within a fraction of a percent of the weights.
pub const DEFAULT_TABLE_SIZE: usize = 65_537;

/// The largest table built, a prime (the paper's large size): 2.6 MB of slots, built in
/// about 25 ms for 256 servers, whatever their weights (README "Limits of config values").
/// The config refuses larger sizes; `build` caps `size` here too, so no caller can make a
/// rebuild allocate without bound.
pub const MAX_TABLE_SIZE: usize = 655_373;

/// Marks a slot not yet filled while building.
const EMPTY: u32 = u32::MAX;

/// Source hashing over one snapshot.
#[derive(Debug)]
pub(super) struct SourceHash {
    /// Over all configured primary servers of weight > 0, healthy or not: depends on the
    /// configuration only.
    primary: Maglev,
    /// Over the active servers, for keys whose primary server cannot take traffic. `None`
    /// when every primary member is active: the primary table then answers every key.
    fallback: Option<Maglev>,
}

/// One Maglev lookup table.
#[derive(Debug)]
struct Maglev {
    /// Per slot, a position in `members`.
    slots: Box<[u32]>,
    members: Box<[Target]>,
}

#[derive(Debug, Clone, Copy)]
struct Target {
    /// Index in the backend's server slice.
    index: u32,
    /// Whether it takes traffic in this snapshot.
    active: bool,
}

/// A server as Maglev sees it while building.
struct Entry<'a> {
    name: &'a str,
    weight: u32,
    index: u32,
}

impl SourceHash {
    /// `size` must be prime (see `DEFAULT_TABLE_SIZE`); above `MAX_TABLE_SIZE` it is taken
    /// as `MAX_TABLE_SIZE`.
    pub(super) fn build(servers: &[ServerSpec<'_>], active: &[Member], size: usize) -> SourceHash {
        let size = size.min(MAX_TABLE_SIZE);
        let is_active = |i: usize| active.iter().any(|m| m.index as usize == i);
        let primary: Vec<Entry<'_>> = servers
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.backup && s.weight > 0)
            .map(|(i, s)| Entry {
                name: s.name,
                weight: s.weight.min(MAX_WEIGHT),
                index: i as u32,
            })
            .collect();
        let primary = Maglev::build(primary, size, is_active);
        let fallback = if primary.members.iter().all(|t| t.active) && !primary.is_empty() {
            None
        } else {
            let entries = active
                .iter()
                .map(|m| Entry {
                    name: servers[m.index as usize].name,
                    weight: m.weight,
                    index: m.index,
                })
                .collect();
            Some(Maglev::build(entries, size, |_| true))
        };
        SourceHash { primary, fallback }
    }

    /// The server for `key`; if that is `exclude`, the server for one of four rehashes of
    /// the key that is not, else `None`.
    #[inline]
    pub(super) fn pick(&self, key: u64, exclude: Option<usize>) -> Option<usize> {
        let first = self.lookup(key)?;
        if Some(first) != exclude {
            return Some(first);
        }
        (1..=4)
            .filter_map(|i| self.lookup(splitmix64(key ^ i)))
            .find(|&s| Some(s) != exclude)
    }

    /// The primary table's server when it is active, else the fallback table's.
    #[inline]
    fn lookup(&self, key: u64) -> Option<usize> {
        if let Some(t) = self.primary.target(key) {
            if t.active {
                return Some(t.index as usize);
            }
        }
        let t = self.fallback.as_ref()?.target(key)?;
        Some(t.index as usize)
    }
}

impl Maglev {
    /// Fills a table of `size` (prime) slots. Entries are sorted by name first, so the
    /// table depends on names and weights only, not on their order in the configuration.
    fn build(mut entries: Vec<Entry<'_>>, size: usize, active: impl Fn(usize) -> bool) -> Maglev {
        entries.sort_by(|a, b| a.name.cmp(b.name).then(a.index.cmp(&b.index)));
        let members: Box<[Target]> = entries
            .iter()
            .map(|e| Target {
                index: e.index,
                active: active(e.index as usize),
            })
            .collect();
        Maglev {
            slots: populate(&entries, size).into_boxed_slice(),
            members,
        }
    }

    fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    #[inline]
    fn target(&self, key: u64) -> Option<Target> {
        if self.slots.is_empty() {
            return None;
        }
        let pos = self.slots[(key % self.slots.len() as u64) as usize];
        Some(self.members[pos as usize])
    }
}

/// The offset and skip of `name`'s permutation of a `size`-slot table: slot j of the
/// permutation is (offset + j × skip) mod size. Fixed forever, like `hash_addr`: h =
/// FNV-1a 64 of the name's bytes, offset = fmix64(h) mod size, skip = fmix64(h ^
/// 0x9e3779b97f4a7c15) mod (size − 1) + 1.
fn permutation(name: &str, size: usize) -> (usize, usize) {
    let h = fnv1a64(name.as_bytes());
    let size = size as u64;
    let offset = fmix64(h) % size;
    let skip = fmix64(h ^ 0x9e37_79b9_7f4a_7c15) % (size - 1) + 1;
    (offset as usize, skip as usize)
}

/// The Maglev population loop, weighted: each round every entry earns its weight in
/// credit and takes a turn (claims the next free slot of its permutation) whenever its
/// credit reaches the largest weight, so turns, hence slots, follow weights.
///
/// Walking every entry every round costs O(size × entries) when one heavy entry takes most
/// turns (256 servers, one of weight 256: 0.1 s for the largest table). So the rounds are
/// not walked entry by entry: entry i's k-th turn falls in round ⌈k × max / weight_i⌉, at
/// most `max` rounds after its previous one, and a calendar of `max + 1` bitsets (one bit
/// per entry) holds who plays in each coming round; set bits come out in entry order, the
/// order of the walk. The result is the walk's, slot for slot
/// (`tests::calendar_fills_as_the_rounds_do`).
fn populate(entries: &[Entry<'_>], size: usize) -> Vec<u32> {
    let mut slots = vec![EMPTY; size];
    let max_weight = entries.iter().map(|e| e.weight).max().unwrap_or(0);
    if max_weight == 0 || size < 2 {
        return if entries.is_empty() || size == 0 {
            Vec::new()
        } else {
            // A one-slot table (or all weights 0): the first entry takes it.
            vec![0; size]
        };
    }
    let round_of_turn = |turn: u64, weight: u32| {
        let round = (turn * u64::from(max_weight)).div_ceil(u64::from(weight));
        // Below max × (size + 1): every round fills at least one slot (the heaviest entry
        // plays in each), so no turn past `size` is ever asked for.
        round as usize
    };
    let words = entries.len().div_ceil(64);
    let period = max_weight as usize + 1;
    let mut calendar = vec![0u64; period * words];
    let play = |calendar: &mut [u64], round: usize, i: usize| {
        calendar[(round % period) * words + i / 64] |= 1 << (i % 64);
    };
    for (i, e) in entries.iter().enumerate().filter(|(_, e)| e.weight > 0) {
        play(&mut calendar, round_of_turn(1, e.weight), i);
    }
    let mut cursor: Vec<(usize, usize)> =
        entries.iter().map(|e| permutation(e.name, size)).collect();
    let mut turns_taken = vec![0u64; entries.len()];
    let mut filled = 0;
    let mut round = 0;
    loop {
        round += 1;
        let row = (round % period) * words;
        for word in 0..words {
            let mut players = std::mem::take(&mut calendar[row + word]);
            while players != 0 {
                let i = word * 64 + players.trailing_zeros() as usize;
                players &= players - 1;
                let (pos, skip) = &mut cursor[i];
                // With `size` prime every skip visits every slot, so a free one turns up.
                while slots[*pos] != EMPTY {
                    *pos = step(*pos, *skip, size);
                }
                slots[*pos] = i as u32;
                *pos = step(*pos, *skip, size);
                filled += 1;
                if filled == size {
                    return slots;
                }
                turns_taken[i] += 1;
                // 1 to `max` rounds ahead: never this round's row.
                play(
                    &mut calendar,
                    round_of_turn(turns_taken[i] + 1, entries[i].weight),
                    i,
                );
            }
        }
    }
}

#[inline]
fn step(pos: usize, skip: usize, size: usize) -> usize {
    let next = pos + skip;
    if next >= size {
        next - size
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::super::tests::{assert_shares, loads, spec};
    use super::super::{Algorithm, PickState, Selector};
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("web{i}")).collect()
    }

    /// The server index for each of `keys` (random client hashes).
    fn mapping(servers: &[ServerSpec<'_>], keys: u64) -> Vec<usize> {
        let sel = Selector::build(Algorithm::Source, servers);
        let load: Vec<AtomicU32> = loads(servers.len());
        let mut st = PickState::new(0);
        (0..keys)
            .map(|k| sel.pick(&mut st, splitmix64(k), &load, None).unwrap())
            .collect()
    }

    #[test]
    fn permutation_is_fixed() {
        // Golden values: changing them remaps every client of every `Source` backend.
        assert_eq!(permutation("web1", DEFAULT_TABLE_SIZE), (46_501, 9_533));
        assert_eq!(permutation("web2", DEFAULT_TABLE_SIZE), (62_431, 53_214));
    }

    #[test]
    fn slots_follow_weights() {
        let weights = [1, 2, 3, 5, 8, 256, 100];
        let names = names(weights.len());
        let entries: Vec<Entry<'_>> = names
            .iter()
            .zip(weights)
            .enumerate()
            .map(|(i, (name, weight))| Entry {
                name,
                weight,
                index: i as u32,
            })
            .collect();
        let slots = populate(&entries, DEFAULT_TABLE_SIZE);
        assert!(slots.iter().all(|&s| s != EMPTY));
        let total: u32 = weights.iter().sum();
        for (i, &w) in weights.iter().enumerate() {
            let n = slots.iter().filter(|&&s| s as usize == i).count() as f64;
            let expected = DEFAULT_TABLE_SIZE as f64 * f64::from(w) / f64::from(total);
            // Turns are whole: at most one turn of rounding per entry and round.
            assert!(
                (n - expected).abs() <= expected * 0.02 + 1.0,
                "entry {i}: {n} vs {expected}"
            );
        }
    }

    /// 1,000,000 random client hashes: each server's share within 2% of its weight's.
    /// Shares stay above 5% so sampling noise is under 0.5%.
    #[test]
    fn distribution_follows_weights() {
        let weights = [1, 2, 3, 5, 8];
        let names = names(weights.len());
        let servers: Vec<_> = names.iter().zip(weights).map(|(n, w)| spec(n, w)).collect();
        let mut count = vec![0u64; servers.len()];
        for s in mapping(&servers, 1_000_000) {
            count[s] += 1;
        }
        assert_shares(&count, &weights, 0.02);
    }

    #[test]
    fn a_server_going_down_moves_only_its_own_keys() {
        const KEYS: u64 = 200_000;
        let names = names(10);
        let mut servers: Vec<_> = names.iter().map(|n| spec(n, 1)).collect();
        let before = mapping(&servers, KEYS);
        servers[3].usable = false;
        let during = mapping(&servers, KEYS);
        let mut moved = 0;
        for (b, d) in before.iter().zip(&during) {
            if b != d {
                assert_eq!(*b, 3, "a key of a healthy server moved");
                moved += 1;
            }
            assert_ne!(*d, 3);
        }
        assert!(moved as f64 <= KEYS as f64 * 0.11, "{moved} keys moved");
        assert!(moved > 0);
        // Its keys spread over the others rather than landing on one.
        let mut landed = vec![0u32; 10];
        for (b, d) in before.iter().zip(&during) {
            if *b == 3 {
                landed[*d] += 1;
            }
        }
        assert!(landed.iter().filter(|&&n| n > 0).count() >= 8, "{landed:?}");
        servers[3].usable = true;
        assert_eq!(
            mapping(&servers, KEYS),
            before,
            "coming back restores every key"
        );
    }

    #[test]
    fn two_servers_down_and_back() {
        const KEYS: u64 = 100_000;
        let names = names(10);
        let mut servers: Vec<_> = names.iter().map(|n| spec(n, 1)).collect();
        let before = mapping(&servers, KEYS);
        servers[0].usable = false;
        servers[7].usable = false;
        let during = mapping(&servers, KEYS);
        for (b, d) in before.iter().zip(&during) {
            assert!(b == d || *b == 0 || *b == 7);
            assert!(*d != 0 && *d != 7);
        }
        servers[0].usable = true;
        servers[7].usable = true;
        assert_eq!(mapping(&servers, KEYS), before);
    }

    #[test]
    fn order_of_servers_does_not_matter() {
        const KEYS: u64 = 100_000;
        let names = names(10);
        let weights = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let servers: Vec<_> = names.iter().zip(weights).map(|(n, w)| spec(n, w)).collect();
        let mut shuffled = servers.clone();
        shuffled.reverse();
        shuffled.swap(2, 7);
        let by_name = |servers: &[ServerSpec<'_>]| -> Vec<String> {
            mapping(servers, KEYS)
                .into_iter()
                .map(|i| servers[i].name.to_owned())
                .collect()
        };
        assert_eq!(by_name(&servers), by_name(&shuffled));
        // The same with a server down: the fallback table is name-ordered too.
        let mut down = servers.clone();
        down[4].usable = false;
        let mut down_shuffled = down.clone();
        down_shuffled.rotate_left(3);
        assert_eq!(by_name(&down), by_name(&down_shuffled));
    }

    #[test]
    fn a_client_keeps_its_server() {
        let names = names(5);
        let servers: Vec<_> = names.iter().map(|n| spec(n, 1)).collect();
        let sel = Selector::build(Algorithm::Source, &servers);
        let load = loads(5);
        let mut st = PickState::new(0);
        for k in 0..1_000 {
            let key = splitmix64(k);
            let s = sel.pick(&mut st, key, &load, None);
            for _ in 0..3 {
                assert_eq!(sel.pick(&mut st, key, &load, None), s);
            }
        }
    }

    /// The population loop as first written: every entry, every round.
    fn populate_by_rounds(entries: &[Entry<'_>], size: usize) -> Vec<u32> {
        let mut slots = vec![EMPTY; size];
        let max_weight = entries.iter().map(|e| e.weight).max().unwrap_or(0);
        let mut cursor: Vec<(usize, usize)> =
            entries.iter().map(|e| permutation(e.name, size)).collect();
        let mut credit = vec![0u32; entries.len()];
        let mut filled = 0;
        loop {
            for (i, e) in entries.iter().enumerate() {
                credit[i] += e.weight;
                if credit[i] < max_weight {
                    continue;
                }
                credit[i] -= max_weight;
                let (pos, skip) = &mut cursor[i];
                while slots[*pos] != EMPTY {
                    *pos = step(*pos, *skip, size);
                }
                slots[*pos] = i as u32;
                *pos = step(*pos, *skip, size);
                filled += 1;
                if filled == size {
                    return slots;
                }
            }
        }
    }

    /// The same table as the round-by-round loop, slot for slot: changing it would move
    /// clients between servers on upgrade, and two balancers of different versions would
    /// disagree.
    #[test]
    fn calendar_fills_as_the_rounds_do() {
        let names = names(64);
        let weight_sets: [&dyn Fn(usize) -> u32; 6] = [
            &|_| 1,
            &|i| [1, 2, 3, 5, 8, 256, 100][i % 7],
            &|i| if i == 0 { 256 } else { 1 },
            &|i| 255 + (i % 2) as u32,
            &|i| {
                if i % 3 == 0 {
                    0
                } else {
                    (i * 37 % 256) as u32 + 1
                }
            },
            &|i| (i % 4) as u32 * 64,
        ];
        for (w, weight) in weight_sets.iter().enumerate() {
            for count in [1, 2, 3, 10, 64] {
                let entries: Vec<Entry<'_>> = names[..count]
                    .iter()
                    .enumerate()
                    .map(|(i, name)| Entry {
                        name,
                        weight: weight(i),
                        index: i as u32,
                    })
                    .collect();
                if entries.iter().all(|e| e.weight == 0) {
                    continue;
                }
                for size in [2, 3, 13, 101, 65_537] {
                    assert_eq!(
                        populate(&entries, size),
                        populate_by_rounds(&entries, size),
                        "weights #{w}, {count} entries, {size} slots"
                    );
                }
            }
        }
    }

    #[test]
    fn oversized_tables_are_capped() {
        let names = names(3);
        let servers: Vec<_> = names.iter().map(|n| spec(n, 1)).collect();
        let active: Vec<Member> = (0..3).map(|index| Member { index, weight: 1 }).collect();
        let hash = SourceHash::build(&servers, &active, 2_147_483_647);
        assert_eq!(hash.primary.slots.len(), MAX_TABLE_SIZE);
        assert!(hash.fallback.is_none());
    }

    #[test]
    fn small_prime_tables() {
        let names = names(3);
        let entries: Vec<Entry<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Entry {
                name,
                weight: 1,
                index: i as u32,
            })
            .collect();
        for size in [2, 3, 5, 7, 13] {
            let slots = populate(&entries, size);
            assert_eq!(slots.len(), size);
            assert!(slots.iter().all(|&s| (s as usize) < entries.len()));
        }
        assert_eq!(populate(&entries, 1), vec![0]);
        assert!(populate(&[], 7).is_empty());
    }
}
