//! Immutable server tables, built off the hot path from a validated config and published
//! with arc-swap. Workers load the current snapshot per new connection and pick a server
//! from prebuilt structures: no lock, no allocation.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Config, Forward, Timeouts};

#[derive(Debug)]
pub struct Tables {
    pub frontends: Vec<FrontendTable>,
    pub backends: Vec<BackendTable>,
}

#[derive(Debug)]
pub struct FrontendTable {
    pub name: String,
    pub backend: usize,
    pub forward: Forward,
    pub log: bool,
}

#[derive(Debug)]
pub struct BackendTable {
    pub name: String,
    pub retries: u32,
    pub timeouts: Timeouts,
    pub servers: Vec<ServerEntry>,
    /// Smooth weighted round-robin order over `servers`, one slot per unit of weight.
    pub rotation: Vec<u16>,
}

#[derive(Debug)]
pub struct ServerEntry {
    pub name: String,
    pub addr: SocketAddr,
}

pub type SharedTables = Arc<ArcSwap<Tables>>;

impl Tables {
    pub fn build(config: &Config) -> Tables {
        Tables {
            frontends: config
                .frontends
                .iter()
                .map(|f| FrontendTable {
                    name: f.name.clone(),
                    backend: f.backend,
                    forward: f.forward,
                    log: f.log,
                })
                .collect(),
            backends: config
                .backends
                .iter()
                .map(|b| {
                    let weights: Vec<u32> = b.servers.iter().map(|s| s.weight).collect();
                    BackendTable {
                        name: b.name.clone(),
                        retries: b.retries,
                        timeouts: b.timeouts,
                        rotation: smooth_rotation(&weights),
                        servers: b
                            .servers
                            .iter()
                            .map(|s| ServerEntry {
                                name: s.name.clone(),
                                addr: s.addr,
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }
}

impl BackendTable {
    /// The server at rotation position `cursor` (any value; it wraps).
    pub fn server_at(&self, cursor: usize) -> Option<usize> {
        if self.rotation.is_empty() {
            return None;
        }
        Some(self.rotation[cursor % self.rotation.len()] as usize)
    }
}

/// nginx's smooth weighted round robin, unrolled over one full cycle: servers of weight
/// 1 and 2 give [b, a, b], spreading a heavy server's turns instead of bunching them.
fn smooth_rotation(weights: &[u32]) -> Vec<u16> {
    let total: i64 = weights.iter().map(|&w| w as i64).sum();
    let mut current = vec![0i64; weights.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, &w) in weights.iter().enumerate() {
            current[i] += w as i64;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        order.push(best as u16);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_rotation_spreads_weight() {
        assert_eq!(smooth_rotation(&[1, 2]), vec![1, 0, 1]);
        assert_eq!(smooth_rotation(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_rotation(&[1, 0, 1]), vec![0, 2]);
        assert!(smooth_rotation(&[]).is_empty());
    }

    #[test]
    fn rotation_counts_match_weights() {
        let weights = [3, 1, 7, 256, 0, 10];
        let order = smooth_rotation(&weights);
        for (i, &w) in weights.iter().enumerate() {
            let n = order.iter().filter(|&&s| s as usize == i).count();
            assert_eq!(n, w as usize, "server {i}");
        }
    }
}
