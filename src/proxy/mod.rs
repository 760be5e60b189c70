//! PROXY protocol v1 (text) and v2 (binary) headers, as specified in haproxy's
//! proxy-protocol.txt: an incremental parser that tells "read more" from "not a header",
//! and encoders for the header ringlb sends to a server.
//! Pure code on byte slices (std only): no socket, no clock.

mod crc32c;
mod v1;
mod v2;

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

pub use crc32c::crc32c;
pub use v1::encode_v1;
pub use v2::encode_v2;

/// Longest v1 header the spec allows, CRLF included.
pub const V1_MAX_LEN: usize = 107;

/// Longest v2 header we accept: the 16-byte fixed part and at most 4096 bytes of
/// addresses and TLVs. The spec allows up to 64 KiB; nothing we care about needs that much.
pub const V2_MAX_LEN: usize = 16 + 4096;

/// Which protocol version a header used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The text format ("PROXY TCP4 ...\r\n").
    V1,
    /// The binary format (12-byte signature).
    V2,
}

/// A parsed PROXY header: what a proxy in front of us says about the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The format the header was sent in.
    pub version: Version,
    /// (source, destination) of the original connection; None for v2 LOCAL, v1 UNKNOWN,
    /// and v2 families not carried (UNSPEC, UNIX, and DGRAM transports).
    pub addrs: Option<(SocketAddr, SocketAddr)>,
    /// v2 PP2_TYPE_AUTHORITY (0x02), when present and valid UTF-8.
    pub authority: Option<String>,
}

/// Why bytes cannot be a PROXY header. `Display` gives a short reason for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// Starts with neither "PROXY " nor the v2 signature.
    NotProxy,
    /// v1: wrong protocol word, spacing, a stray CR, or a wrong number of fields.
    BadV1Syntax,
    /// v1: an address that is not valid for the announced family.
    BadV1Address,
    /// v1: a port that is not a decimal 0..=65535 without sign or leading zero.
    BadV1Port,
    /// v1: no CRLF within [`V1_MAX_LEN`] bytes.
    V1TooLong,
    /// v2: version nibble other than 2, or command other than LOCAL/PROXY.
    BadV2VersionOrCommand,
    /// v2 PROXY command: an address family / transport byte the spec does not define.
    BadV2Family,
    /// v2: the length field is shorter than the address block of the family.
    BadV2AddressLength,
    /// v2: the length field announces more than [`V2_MAX_LEN`] bytes in all.
    V2TooLong,
    /// v2: a TLV overruns the header, or a known TLV has an invalid length.
    BadV2Tlv,
    /// v2: the PP2_TYPE_CRC32C checksum does not match the header.
    BadCrc32c,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyError::NotProxy => "not a proxy header",
            ProxyError::BadV1Syntax => "bad v1 syntax",
            ProxyError::BadV1Address => "bad v1 address",
            ProxyError::BadV1Port => "bad v1 port",
            ProxyError::V1TooLong => "v1 header too long",
            ProxyError::BadV2VersionOrCommand => "bad v2 version or command",
            ProxyError::BadV2Family => "bad v2 address family",
            ProxyError::BadV2AddressLength => "bad v2 address length",
            ProxyError::V2TooLong => "v2 header too long",
            ProxyError::BadV2Tlv => "bad v2 tlv",
            ProxyError::BadCrc32c => "bad crc32c",
        })
    }
}

impl std::error::Error for ProxyError {}

/// The TLVs [`encode_v2`] appends after the address block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tlvs<'a> {
    /// PP2_TYPE_AUTHORITY (0x02), e.g. the SNI seen in the ClientHello. Left out when
    /// longer than 255 bytes (a host name never is).
    pub authority: Option<&'a str>,
    /// PP2_TYPE_UNIQUE_ID (0x05). Left out when longer than the spec's 128 bytes.
    pub unique_id: Option<&'a [u8]>,
    /// Append PP2_TYPE_CRC32C (0x03), computed over the whole header.
    pub crc32c: bool,
}

/// Parses a PROXY v1 or v2 header at the start of `buf`, whichever it is.
///
/// Ok(None): `buf` is a prefix of what could still be a valid header: read more.
/// Ok(Some((header, n))): a complete header in buf[..n] (bytes after n are client data).
/// Err: cannot be a valid header. Never panics, whatever the input.
///
/// A client that is not speaking PROXY is usually rejected on its first byte, since
/// both formats have a fixed start ("PROXY " or the 12-byte v2 signature).
pub fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    match buf.first() {
        None => Ok(None),
        Some(&b'P') => v1::parse(buf),
        Some(&0x0D) => v2::parse(buf),
        Some(_) => Err(ProxyError::NotProxy),
    }
}

/// The IPv6 form of an address, IPv4 ones v4-mapped (::ffff:a.b.c.d): how a header
/// carries a pair of addresses of different families.
fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, RngCore, SeedableRng};

    #[test]
    fn dispatch_on_first_byte() {
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"P"), Ok(None));
        assert_eq!(parse(b"\r"), Ok(None));
        assert_eq!(parse(b"G"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyError::NotProxy));
        assert_eq!(parse(&[0x16, 0x03, 0x01]), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"PROXX"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"\r\n\r\n\0\r\nQUIX"), Err(ProxyError::NotProxy));
    }

    #[test]
    fn display_is_a_short_reason() {
        assert_eq!(ProxyError::NotProxy.to_string(), "not a proxy header");
        assert_eq!(ProxyError::BadCrc32c.to_string(), "bad crc32c");
        assert_eq!(ProxyError::V1TooLong.to_string(), "v1 header too long");
    }

    fn valid_vectors() -> Vec<Vec<u8>> {
        let v4: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let w4: SocketAddr = "198.51.100.2:443".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:65535".parse().unwrap();
        let all = Tlvs {
            authority: Some("app.example.org"),
            unique_id: Some(b"0123456789abcdef"),
            crc32c: true,
        };
        let mut vectors = Vec::new();
        for addrs in [None, Some((v4, w4)), Some((v6, v6)), Some((v4, v6))] {
            let mut out = Vec::new();
            encode_v1(addrs, &mut out);
            vectors.push(out);
            for tlvs in [Tlvs::default(), all] {
                let mut out = Vec::new();
                encode_v2(addrs, &tlvs, &mut out);
                vectors.push(out);
            }
        }
        vectors.push(b"PROXY UNKNOWN whatever follows\r\n".to_vec());
        vectors
    }

    /// One random change: a bit flip, a byte set to a boundary value, a truncation, an
    /// inserted or removed byte, or a tweak of the v2 length field.
    fn mutate(rng: &mut StdRng, input: &mut Vec<u8>) {
        if input.is_empty() {
            input.push(rng.next_u64() as u8);
            return;
        }
        let at = rng.random_range(0..input.len());
        match rng.random_range(0..7) {
            0 => input[at] ^= 1u8 << rng.random_range(0..8u32),
            1 => input[at] = [0, 0xFF, b' ', b'\r', b'\n', b'0', b':'][rng.random_range(0..7)],
            2 => input.truncate(at),
            3 => input.insert(at, rng.next_u64() as u8),
            4 => {
                input.remove(at);
            }
            5 if input.len() >= 16 => {
                // v2 length field: nudge it up or down a little, or set it wildly.
                let len = u16::from_be_bytes([input[14], input[15]]);
                let len = match rng.random_range(0..3) {
                    0 => len.wrapping_add(1 + rng.random_range(0..8u16)),
                    1 => len.wrapping_sub(1 + rng.random_range(0..8u16)),
                    _ => rng.next_u64() as u16,
                };
                input[14..16].copy_from_slice(&len.to_be_bytes());
            }
            _ => input.extend_from_slice(b"\r\nGET / HTTP/1.1"),
        }
    }

    #[test]
    fn mutations_never_panic_and_keep_invariants() {
        let vectors = valid_vectors();
        // Seeded: the test fails the same way every time.
        let mut rng = StdRng::seed_from_u64(0x5EED_1234_ABCD_0007);
        for _ in 0..20_000 {
            let mut input = vectors[rng.random_range(0..vectors.len())].clone();
            for _ in 0..1 + rng.random_range(0..3) {
                mutate(&mut rng, &mut input);
            }
            if let Ok(Some((header, n))) = parse(&input) {
                assert!(n <= input.len(), "n={n} for {input:02x?}");
                let max = match header.version {
                    Version::V1 => V1_MAX_LEN,
                    Version::V2 => V2_MAX_LEN,
                };
                assert!(n <= max);
                // The same header followed by other bytes parses the same way, and no
                // shorter prefix is already complete or rejected.
                assert_eq!(parse(&input[..n]), Ok(Some((header.clone(), n))));
                for k in 0..n {
                    assert_eq!(parse(&input[..k]), Ok(None), "prefix {k} of {input:02x?}");
                }
            }
        }
    }
}
