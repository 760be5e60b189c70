//! Seeded pseudo-random data and its sha256, written and read in chunks, so that a test
//! checks gigabytes byte for byte without holding them.

use std::io::{self, Read, Write};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use super::CHUNK;

/// `len` pseudo-random bytes from `seed`, produced chunk by chunk.
pub struct SeededData {
    rng: StdRng,
    left: usize,
}

impl SeededData {
    pub fn new(seed: u64, len: usize) -> SeededData {
        SeededData {
            rng: StdRng::seed_from_u64(seed),
            left: len,
        }
    }

    /// Fills the front of `buf` with the next bytes; returns how many (0 at the end).
    pub fn next_chunk(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.left);
        self.rng.fill_bytes(&mut buf[..n]);
        self.left -= n;
        n
    }
}

pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Writes `len` seeded bytes to `w` and returns their sha256.
pub fn write_seeded(w: &mut impl Write, seed: u64, len: usize) -> io::Result<[u8; 32]> {
    let mut data = SeededData::new(seed, len);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = data.next_chunk(&mut buf);
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
        w.write_all(&buf[..n])?;
    }
}

/// More than any test sends on one connection: a peer past it is runaway, not slow.
pub const MAX_TRANSFER: u64 = 1 << 30;

/// Reads `r` to EOF; returns the byte count and sha256 of what was read. Fails past
/// `MAX_TRANSFER` bytes, so that a peer that never stops cannot keep a test running.
pub fn hash_to_eof(r: &mut impl Read) -> io::Result<(u64, [u8; 32])> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok((total, hasher.finalize().into()));
        }
        total += n as u64;
        if total > MAX_TRANSFER {
            return Err(io::Error::other("peer sent more than MAX_TRANSFER bytes"));
        }
        hasher.update(&buf[..n]);
    }
}
