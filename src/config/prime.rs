//! Primality of a `hash_table_size`: deterministic Miller–Rabin, exact and fast for every
//! `u64` (a Maglev table must be prime so that every permutation visits every slot).

/// Whether `n` is prime. Exact for every `u64`, in microseconds: Miller–Rabin with the first
/// twelve primes as bases has no false positive below 3.3 × 10^24 (Sorenson and Webster,
/// 2015), and products are taken in `u128`, so nothing overflows.
pub fn is_prime(n: u64) -> bool {
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    for p in BASES {
        if n % p == 0 {
            return n == p;
        }
    }
    // n - 1 = d × 2^s with d odd; n is odd here, so s ≥ 1.
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    BASES.iter().all(|&a| passes(a, d, s, n))
}

/// One Miller–Rabin round: whether `a` fails to witness that `n` is composite.
fn passes(a: u64, d: u64, s: u32, n: u64) -> bool {
    let mut x = pow_mod(a, d, n);
    if x == 1 || x == n - 1 {
        return true;
    }
    for _ in 1..s {
        x = mul_mod(x, x, n);
        if x == n - 1 {
            return true;
        }
    }
    false
}

fn mul_mod(a: u64, b: u64, n: u64) -> u64 {
    // The remainder is below n, so it fits in u64 again.
    (u128::from(a) * u128::from(b) % u128::from(n)) as u64
}

fn pow_mod(mut base: u64, mut exp: u64, n: u64) -> u64 {
    let mut result = 1;
    base %= n;
    while exp > 0 {
        if exp & 1 == 1 {
            result = mul_mod(result, base, n);
        }
        base = mul_mod(base, base, n);
        exp >>= 1;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trial division, for comparison on small numbers.
    fn slow(n: u64) -> bool {
        n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
    }

    #[test]
    fn agrees_with_trial_division_below_100_000() {
        for n in 0..100_000 {
            assert_eq!(is_prime(n), slow(n), "{n}");
        }
    }

    #[test]
    fn known_primes() {
        for p in [
            101,
            65_537,
            655_373,
            1_000_003,
            100_000_007,
            2_147_483_647, // 2^31 - 1
            4_294_967_291, // the largest prime below 2^32
            4_294_967_311, // the smallest above it
            1_000_000_000_000_037,
            2_305_843_009_213_693_951,  // 2^61 - 1
            18_446_744_073_709_551_557, // the largest prime below 2^64
        ] {
            assert!(is_prime(p), "{p} is prime");
        }
    }

    #[test]
    fn known_composites() {
        for c in [
            0,
            1,
            4,
            65_535,
            655_371,
            4_294_967_295,                 // 2^32 - 1 = 3 × 5 × 17 × 257 × 65537
            4_294_967_297,                 // 2^32 + 1 = 641 × 6700417
            3_215_031_751,                 // strong pseudoprime to bases 2, 3, 5 and 7
            3_825_123_056_546_413_051,     // strong pseudoprime to bases 2 through 23
            4_294_967_291 * 4_294_967_279, // two primes near 2^32
            18_446_744_073_709_551_615,    // u64::MAX
            18_446_744_073_709_551_557 - 2,
        ] {
            assert!(!is_prime(c), "{c} is composite");
        }
    }
}
