//! The Internet checksum (RFC 1071) of a VRRP message, with the IPv4 (RFC 768 style) or IPv6
//! (RFC 8200 §8.1) pseudo-header for VRRPv3, or over the message alone for VRRPv2.

use std::net::IpAddr;

use super::PROTOCOL;

/// The checksum to put in a message whose checksum field is zero: the one's complement of the
/// one's complement sum of the pseudo-header (when given as `(src, dst)`) and of `message`.
///
/// A pseudo-header whose two addresses differ in family is summed as given; callers check the
/// families first.
pub fn vrrp_checksum(message: &[u8], pseudo_header: Option<(IpAddr, IpAddr)>) -> u16 {
    !fold(sum(message, pseudo_header))
}

/// True if `message`, checksum field included, sums to all ones.
pub(crate) fn verify(message: &[u8], pseudo_header: Option<(IpAddr, IpAddr)>) -> bool {
    fold(sum(message, pseudo_header)) == 0xffff
}

fn sum(message: &[u8], pseudo_header: Option<(IpAddr, IpAddr)>) -> u64 {
    let mut acc = sum_words(message);
    if let Some((src, dst)) = pseudo_header {
        acc += sum_addr(src) + sum_addr(dst);
        // IPv4: zero, protocol, 16-bit length. IPv6: 32-bit length, three zero bytes, next
        // header. Both add up to protocol + length as 16-bit words.
        let len = message.len() as u64;
        acc += u64::from(PROTOCOL) + (len >> 16) + (len & 0xffff);
    }
    acc
}

fn sum_addr(addr: IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => sum_words(&a.octets()),
        IpAddr::V6(a) => sum_words(&a.octets()),
    }
}

/// Sum of big-endian 16-bit words, an odd last byte padded with zero. A u64 cannot overflow for
/// any slice that fits in memory.
fn sum_words(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    let mut acc: u64 = chunks
        .by_ref()
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (after the end-around carry).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum_words(&data)), 0xddf2);
        assert_eq!(vrrp_checksum(&data, None), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum_words(&[0x12, 0x34, 0x56])), 0x6834);
    }

    #[test]
    fn verify_accepts_what_was_filled_in() {
        let mut msg = [
            0x31, 0x01, 0x64, 0x01, 0x00, 0x64, 0x00, 0x00, 192, 0, 2, 100,
        ];
        let pseudo = Some(("192.0.2.1".parse().unwrap(), "224.0.0.18".parse().unwrap()));
        let c = vrrp_checksum(&msg, pseudo).to_be_bytes();
        msg[6..8].copy_from_slice(&c);
        assert!(verify(&msg, pseudo));
        assert!(!verify(&msg, None));
    }
}
