//! Server selection: the per-snapshot `Selector` that picks a backend's server for each new
//! connection (round robin, least connections, source-hash Maglev, power of two choices),
//! the per-worker `PickState`, and the fixed client-address hash. Picking never locks or
//! allocates; everything it walks is built once per snapshot, off the hot path.

mod leastconn;
mod maglev;
mod random;
mod roundrobin;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use leastconn::LeastConn;
use maglev::SourceHash;
use random::PowerOfTwo;
use roundrobin::Rotation;

pub use maglev::{DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE};

/// The largest weight a server can have; weights above it are clamped.
pub const MAX_WEIGHT: u32 = 256;

/// How a backend spreads new connections over its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Smooth weighted round robin (nginx's order).
    RoundRobin,
    /// The server with the fewest connections per unit of weight; ties in weighted round robin.
    LeastConn,
    /// Maglev consistent hashing of the client address: a client keeps its server.
    Source,
    /// Power of two choices: two weighted random servers, the less loaded one wins.
    Random,
}

/// One configured server as the selector sees it, in the backend's server order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSpec<'a> {
    /// Unique within the backend; Maglev hashes it, so two balancers agree on the table.
    pub name: &'a str,
    /// 0 ..= `MAX_WEIGHT`; a server of weight 0 never gets traffic.
    pub weight: u32,
    /// UP: not DOWN, DRAIN or MAINT.
    pub usable: bool,
    /// Takes traffic only while no primary (non-backup) server is usable, as in HAProxy.
    pub backup: bool,
}

/// Per worker and per backend selection state: the round-robin cursor and a small RNG.
///
/// Keep one per (worker, backend): a cursor shared by two backends would make each of them
/// see every other slot of its rotation. A state outlives snapshots; a cursor past the end
/// of a shorter new rotation wraps.
#[derive(Debug, Clone)]
pub struct PickState {
    cursor: usize,
    rng: u64,
}

/// Picks servers for one backend snapshot. Immutable once built; share it behind an `Arc`.
#[derive(Debug)]
pub struct Selector {
    /// The servers that take traffic now: usable primaries of weight > 0 or, when there is
    /// none, usable backups of weight > 0. In server order.
    active: Box<[Member]>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    RoundRobin(Rotation),
    LeastConn(LeastConn),
    Source(SourceHash),
    Random(PowerOfTwo),
}

/// A server that can take traffic: its index in the backend's server slice and its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    index: u32,
    weight: u32,
}

impl Selector {
    /// Builds the selection structures for one snapshot of a backend's servers.
    ///
    /// Cost: O(total weight × servers) for the rotations (round robin, least connections),
    /// about two Maglev tables of `DEFAULT_TABLE_SIZE` for `Source`. (ringlb itself passes
    /// the configured size: `build_sized`.)
    pub fn build(algorithm: Algorithm, servers: &[ServerSpec<'_>]) -> Selector {
        Selector::build_sized(algorithm, servers, DEFAULT_TABLE_SIZE)
    }

    /// As `build`, with a Maglev lookup table of `table_size` slots (a prime) for `Source`.
    pub fn build_sized(
        algorithm: Algorithm,
        servers: &[ServerSpec<'_>],
        table_size: usize,
    ) -> Selector {
        let active = active_members(servers);
        let kind = match algorithm {
            Algorithm::RoundRobin => Kind::RoundRobin(Rotation::build(&active)),
            Algorithm::LeastConn => Kind::LeastConn(LeastConn::build(&active)),
            Algorithm::Source => Kind::Source(SourceHash::build(servers, &active, table_size)),
            Algorithm::Random => Kind::Random(PowerOfTwo::build(&active)),
        };
        Selector {
            active: active.into_boxed_slice(),
            kind,
        }
    }

    /// Picks a server for a new connection: an index into the slice given to `build`, or
    /// `None` when no server can take traffic.
    ///
    /// `key` is `hash_addr` of the client (read by `Source` only). `load` holds the current
    /// connections per server index across all workers (read by `LeastConn` and `Random`;
    /// a missing entry counts as 0). `exclude` is the server a connect just failed on: it
    /// is returned only when no other server can take traffic.
    pub fn pick<L: Loads + ?Sized>(
        &self,
        state: &mut PickState,
        key: u64,
        load: &L,
        exclude: Option<usize>,
    ) -> Option<usize> {
        if self.active.is_empty() {
            return None;
        }
        // Only an exclusion among several candidates changes anything.
        let exclude = exclude.filter(|_| self.active.len() > 1);
        let picked = match &self.kind {
            Kind::RoundRobin(r) => r.pick(&self.active, state, exclude),
            Kind::LeastConn(l) => l.pick(&self.active, state, load, exclude),
            Kind::Source(s) => s.pick(key, exclude),
            Kind::Random(p) => p.pick(&self.active, state, load, exclude),
        };
        Some(picked.unwrap_or_else(|| successor(&self.active, exclude)))
    }

    /// How many servers take traffic now (0 when `pick` gives `None`): a bound for retries.
    pub fn candidates(&self) -> usize {
        self.active.len()
    }

    /// Sets `state`'s cursor to where worker `worker` of `workers` should start, so workers
    /// do not all begin on the same server. Call it when a new snapshot is loaded.
    pub fn stagger(&self, state: &mut PickState, worker: usize, workers: usize) {
        let cycle = match &self.kind {
            Kind::RoundRobin(r) => r.len(),
            Kind::LeastConn(l) => l.rotation_len(),
            Kind::Source(_) | Kind::Random(_) => return,
        };
        state.cursor = worker % workers.max(1) * cycle / workers.max(1);
    }
}

impl PickState {
    /// A fresh state; give each worker a different `seed` (its index will do) so their
    /// random choices differ.
    pub fn new(seed: u64) -> PickState {
        PickState {
            cursor: 0,
            // xorshift must never hold 0; splitmix spreads nearby seeds apart.
            rng: splitmix64(seed) | 1,
        }
    }

    /// The cursor's position in a cycle of `len` (> 0) slots, then one step on.
    fn advance(&mut self, len: usize) -> usize {
        let mut c = self.cursor;
        if c >= len {
            c %= len;
        }
        self.cursor = c + 1;
        c
    }

    /// xorshift64* (Vigna): fast, good enough to spread choices, not for secrets.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The client-address hash that `Source` maps to a server: FNV-1a 64 over the address
/// octets (4 for IPv4, 16 for IPv6; an IPv4-mapped IPv6 address hashes as its IPv4
/// address), then MurmurHash3's 64-bit finaliser so every bit depends on every octet.
/// Fixed forever: the same on every machine, build and Rust version, so two balancers
/// send a client to the same server.
pub fn hash_addr(ip: IpAddr) -> u64 {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let h = match ip {
        IpAddr::V4(a) => fnv1a64(&a.octets()),
        IpAddr::V6(a) => fnv1a64(&a.octets()),
    };
    fmix64(h)
}

/// FNV-1a, 64-bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// MurmurHash3's 64-bit finaliser: a bijection that avalanches every input bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// SplitMix64's output function: turns counters or small seeds into well-spread words.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The servers that take traffic now (see `Selector::active`).
fn active_members(servers: &[ServerSpec<'_>]) -> Vec<Member> {
    let tier = |backup: bool| -> Vec<Member> {
        servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.backup == backup && s.usable && s.weight > 0)
            .map(|(i, s)| Member {
                index: i as u32,
                weight: s.weight.min(MAX_WEIGHT),
            })
            .collect()
    };
    let primaries = tier(false);
    if primaries.is_empty() {
        tier(true)
    } else {
        primaries
    }
}

/// The active server after `exclude` in server order (or the first one): the last resort
/// when an algorithm's own choices all hit the excluded server. `active` is not empty.
fn successor(active: &[Member], exclude: Option<usize>) -> usize {
    let pos = exclude
        .and_then(|ex| active.iter().position(|m| m.index as usize == ex))
        .map_or(0, |p| (p + 1) % active.len());
    active[pos].index as usize
}

/// The load of server `index`, 0 when the slice is too short.
#[inline]
fn load_of<L: Loads + ?Sized>(load: &L, index: u32) -> u32 {
    load.load_at(index as usize)
}

/// Current connections per server index, as the selector reads them: a plain slice of
/// counters, or shared counters that outlive one snapshot (kept per server across
/// reloads). A missing entry reads as 0.
pub trait Loads {
    fn load_at(&self, index: usize) -> u32;
}

impl Loads for [AtomicU32] {
    fn load_at(&self, index: usize) -> u32 {
        self.get(index).map_or(0, |a| a.load(Ordering::Relaxed))
    }
}

impl Loads for Vec<AtomicU32> {
    fn load_at(&self, index: usize) -> u32 {
        self.as_slice().load_at(index)
    }
}

impl Loads for [Arc<AtomicU32>] {
    fn load_at(&self, index: usize) -> u32 {
        self.get(index).map_or(0, |a| a.load(Ordering::Relaxed))
    }
}

/// Whether `load_a / weight_a < load_b / weight_b`, exactly (weights are > 0).
#[inline]
fn lighter(load_a: u32, weight_a: u32, load_b: u32, weight_b: u32) -> bool {
    u64::from(load_a) * u64::from(weight_b) < u64::from(load_b) * u64::from(weight_a)
}

/// Greatest common divisor, for shortening rotations.
fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests;
