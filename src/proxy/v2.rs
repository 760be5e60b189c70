//! PROXY protocol v2: the binary header, a 16-byte fixed part (signature, version and
//! command, family and transport, length) then the address block and TLVs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

// `crc32c` is both the module (for a checksum in pieces) and the function it exports.
use super::{as_v6, crc32c, Header, ProxyError, Tlvs, Version, V2_MAX_LEN};

/// Every v2 header starts with these 12 bytes.
pub(super) const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Signature, version/command, family/transport and the 2-byte length.
const FIXED_LEN: usize = 16;

/// Version 2 in the high nibble, command in the low one.
const CMD_LOCAL: u8 = 0x20;
const CMD_PROXY: u8 = 0x21;

/// Address family in the high nibble, transport (1 STREAM, 2 DGRAM) in the low one.
/// The spec defines these seven values only.
const FAM_UNSPEC: u8 = 0x00;
const FAM_TCP4: u8 = 0x11;
const FAM_UDP4: u8 = 0x12;
const FAM_TCP6: u8 = 0x21;
const FAM_UDP6: u8 = 0x22;
const FAM_UNIX_STREAM: u8 = 0x31;
const FAM_UNIX_DGRAM: u8 = 0x32;

/// Address block sizes: two addresses and two ports, or two 108-byte socket paths.
const INET_BLOCK: usize = 4 + 4 + 2 + 2;
const INET6_BLOCK: usize = 16 + 16 + 2 + 2;
const UNIX_BLOCK: usize = 108 + 108;

const TLV_AUTHORITY: u8 = 0x02;
const TLV_CRC32C: u8 = 0x03;
const TLV_UNIQUE_ID: u8 = 0x05;
/// Type and 2-byte length before each TLV value.
const TLV_HEADER_LEN: usize = 3;
/// The spec caps PP2_TYPE_UNIQUE_ID at 128 bytes.
const UNIQUE_ID_MAX: usize = 128;
/// The longest authority [`encode_v2`] writes: a DNS name is at most 255 bytes.
const AUTHORITY_MAX: usize = 255;

/// Parses a v2 header; see [`super::parse`] for the meaning of the result. Each byte of
/// the fixed part is checked as soon as it is there, so a bad header fails early.
pub(super) fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let sig_len = buf.len().min(SIGNATURE.len());
    if buf.get(..sig_len) != SIGNATURE.get(..sig_len) {
        return Err(ProxyError::NotProxy);
    }
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok(None);
    };
    let is_proxy = match ver_cmd {
        CMD_PROXY => true,
        CMD_LOCAL => false,
        _ => return Err(ProxyError::BadV2VersionOrCommand),
    };
    let Some(&family) = buf.get(13) else {
        return Ok(None);
    };
    let block_len = address_block_len(family);
    // LOCAL: the spec says the family is ignored, so only PROXY must name a known one.
    if is_proxy && block_len.is_none() {
        return Err(ProxyError::BadV2Family);
    }
    let Some(&[hi, lo]) = buf.get(14..16) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let total = FIXED_LEN + len;
    if total > V2_MAX_LEN {
        return Err(ProxyError::V2TooLong);
    }
    let tlv_start = match block_len {
        Some(block) if len >= block => Some(FIXED_LEN + block),
        Some(_) if is_proxy => return Err(ProxyError::BadV2AddressLength),
        // LOCAL with an unknown family, or a block too short for its family: the spec
        // has the receiver discard the block, so it is opaque and holds no TLV we read.
        _ => None,
    };
    let Some(header) = buf.get(..total) else {
        return Ok(None);
    };
    let addrs = if is_proxy {
        parse_addrs(family, header.get(FIXED_LEN..).unwrap_or_default())
    } else {
        None
    };
    let authority = match tlv_start {
        Some(start) => walk_tlvs(header, start)?,
        None => None,
    };
    let header = Header {
        version: Version::V2,
        addrs,
        authority,
    };
    Ok(Some((header, total)))
}

/// The size of the address block for a family/transport byte, None if the spec does
/// not define that byte.
fn address_block_len(family: u8) -> Option<usize> {
    match family {
        FAM_UNSPEC => Some(0),
        FAM_TCP4 | FAM_UDP4 => Some(INET_BLOCK),
        FAM_TCP6 | FAM_UDP6 => Some(INET6_BLOCK),
        FAM_UNIX_STREAM | FAM_UNIX_DGRAM => Some(UNIX_BLOCK),
        _ => None,
    }
}

/// Source and destination of a TCP connection over IPv4 or IPv6; None for the other
/// families, which ringlb (a TCP balancer) does not carry.
fn parse_addrs(family: u8, block: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    match family {
        FAM_TCP4 => {
            let b: &[u8; INET_BLOCK] = block.get(..INET_BLOCK)?.try_into().ok()?;
            let src = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            let dst = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            let src_port = u16::from_be_bytes([b[8], b[9]]);
            let dst_port = u16::from_be_bytes([b[10], b[11]]);
            Some((
                SocketAddr::new(IpAddr::V4(src), src_port),
                SocketAddr::new(IpAddr::V4(dst), dst_port),
            ))
        }
        FAM_TCP6 => {
            let b: &[u8; INET6_BLOCK] = block.get(..INET6_BLOCK)?.try_into().ok()?;
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&b[..16]);
            dst.copy_from_slice(&b[16..32]);
            let src_port = u16::from_be_bytes([b[32], b[33]]);
            let dst_port = u16::from_be_bytes([b[34], b[35]]);
            Some((
                SocketAddr::new(IpAddr::V6(Ipv6Addr::from(src)), src_port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::from(dst)), dst_port),
            ))
        }
        _ => None,
    }
}

/// Walks the TLVs from `start` to the end of `header`, checking that each one fits and
/// that a CRC32C matches. Returns the first authority that is valid UTF-8.
fn walk_tlvs(header: &[u8], start: usize) -> Result<Option<String>, ProxyError> {
    let mut authority = None;
    let mut pos = start;
    while pos < header.len() {
        let Some(&[kind, hi, lo]) = header.get(pos..pos + TLV_HEADER_LEN) else {
            return Err(ProxyError::BadV2Tlv);
        };
        let value_start = pos + TLV_HEADER_LEN;
        let value_end = value_start + usize::from(u16::from_be_bytes([hi, lo]));
        let value = header
            .get(value_start..value_end)
            .ok_or(ProxyError::BadV2Tlv)?;
        match kind {
            TLV_AUTHORITY if authority.is_none() => {
                authority = std::str::from_utf8(value).ok().map(str::to_owned);
            }
            TLV_CRC32C => check_crc32c(header, value_start, value)?,
            TLV_UNIQUE_ID if value.len() > UNIQUE_ID_MAX => return Err(ProxyError::BadV2Tlv),
            _ => {}
        }
        pos = value_end;
    }
    Ok(authority)
}

/// Checks a CRC32C TLV whose 4-byte value sits at `at`: the checksum is computed over
/// the whole header with that value taken as zeros.
fn check_crc32c(header: &[u8], at: usize, value: &[u8]) -> Result<(), ProxyError> {
    let Ok(&expected) = <&[u8; 4]>::try_from(value) else {
        return Err(ProxyError::BadV2Tlv);
    };
    let before = header.get(..at).unwrap_or_default();
    let after = header.get(at + 4..).unwrap_or_default();
    let state = crc32c::update(crc32c::START, before);
    let state = crc32c::update(state, &[0; 4]);
    let state = crc32c::update(state, after);
    if crc32c::finish(state) == u32::from_be_bytes(expected) {
        Ok(())
    } else {
        Err(ProxyError::BadCrc32c)
    }
}

/// Appends a v2 header: PROXY command with AF_INET/AF_INET6 STREAM; `None` -> LOCAL
/// command, AF_UNSPEC, no address block (TLVs still allowed).
///
/// When the two addresses are of different families, both are sent as AF_INET6, the
/// IPv4 one v4-mapped. TLVs follow in the order authority, unique_id, crc32c; the CRC
/// goes last and is computed once the whole header, length included, is written.
pub fn encode_v2(addrs: Option<(SocketAddr, SocketAddr)>, tlvs: &Tlvs, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&SIGNATURE);
    match addrs {
        None => out.extend_from_slice(&[CMD_LOCAL, FAM_UNSPEC, 0, 0]),
        Some((src, dst)) => match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                out.extend_from_slice(&[CMD_PROXY, FAM_TCP4, 0, 0]);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
            }
            (s, d) => {
                out.extend_from_slice(&[CMD_PROXY, FAM_TCP6, 0, 0]);
                out.extend_from_slice(&as_v6(s).octets());
                out.extend_from_slice(&as_v6(d).octets());
            }
        },
    }
    if let Some((src, dst)) = addrs {
        out.extend_from_slice(&src.port().to_be_bytes());
        out.extend_from_slice(&dst.port().to_be_bytes());
    }
    if let Some(authority) = tlvs.authority.filter(|a| a.len() <= AUTHORITY_MAX) {
        push_tlv(out, TLV_AUTHORITY, authority.as_bytes());
    }
    if let Some(id) = tlvs.unique_id.filter(|id| id.len() <= UNIQUE_ID_MAX) {
        push_tlv(out, TLV_UNIQUE_ID, id);
    }
    if tlvs.crc32c {
        push_tlv(out, TLV_CRC32C, &[0; 4]);
    }
    // At most 36 + (3 + 255) + (3 + 128) + (3 + 4) bytes follow the fixed part, far
    // below u16::MAX, so the length always fits.
    let len = (out.len() - start - FIXED_LEN) as u16;
    out[start + 14..start + FIXED_LEN].copy_from_slice(&len.to_be_bytes());
    if tlvs.crc32c {
        let crc = crc32c(&out[start..]);
        let at = out.len() - 4;
        out[at..].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Appends one TLV; callers keep `value` within the u16 length (see the caps above).
fn push_tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::parse;

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn encoded(addrs: Option<(SocketAddr, SocketAddr)>, tlvs: &Tlvs) -> Vec<u8> {
        let mut out = Vec::new();
        encode_v2(addrs, tlvs, &mut out);
        out
    }

    fn v2(addrs: Option<(SocketAddr, SocketAddr)>, authority: Option<&str>) -> Header {
        Header {
            version: Version::V2,
            addrs,
            authority: authority.map(str::to_owned),
        }
    }

    /// The signature followed by the rest of a header.
    fn with_sig(rest: &[u8]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(rest);
        out
    }

    #[test]
    fn ipv4() {
        let addrs = Some((sa("192.0.2.1:56324"), sa("198.51.100.2:443")));
        let expected = with_sig(&[
            0x21, 0x11, 0x00, 0x0C, // PROXY, TCP over IPv4, 12 bytes follow
            192, 0, 2, 1, // source address
            198, 51, 100, 2, // destination address
            0xDC, 0x04, 0x01, 0xBB, // ports 56324, 443
        ]);
        assert_eq!(encoded(addrs, &Tlvs::default()), expected);
        assert_eq!(parse(&expected), Ok(Some((v2(addrs, None), 28))));
    }

    #[test]
    fn ipv6() {
        let addrs = Some((sa("[2001:db8::1]:1"), sa("[2001:db8::ff]:65535")));
        let expected = with_sig(&[
            0x21, 0x21, 0x00, 0x24, // PROXY, TCP over IPv6, 36 bytes follow
            0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source
            0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, // destination
            0x00, 0x01, 0xFF, 0xFF, // ports 1, 65535
        ]);
        assert_eq!(encoded(addrs, &Tlvs::default()), expected);
        assert_eq!(parse(&expected), Ok(Some((v2(addrs, None), 52))));
    }

    #[test]
    fn mixed_families_become_ipv6_v4_mapped() {
        let addrs = Some((sa("[2001:db8::1]:1000"), sa("203.0.113.9:80")));
        let expected = with_sig(&[
            0x21, 0x21, 0x00, 0x24, // PROXY, TCP over IPv6, 36 bytes follow
            0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 203, 0, 113, 9, // ::ffff:203.0.113.9
            0x03, 0xE8, 0x00, 0x50, // ports 1000, 80
        ]);
        assert_eq!(encoded(addrs, &Tlvs::default()), expected);
        let mapped = Some((sa("[2001:db8::1]:1000"), sa("[::ffff:203.0.113.9]:80")));
        assert_eq!(parse(&expected), Ok(Some((v2(mapped, None), 52))));
    }

    #[test]
    fn local() {
        let expected = with_sig(&[0x20, 0x00, 0x00, 0x00]);
        assert_eq!(encoded(None, &Tlvs::default()), expected);
        assert_eq!(parse(&expected), Ok(Some((v2(None, None), 16))));
    }

    #[test]
    fn local_ignores_the_address_block() {
        // LOCAL with a TCP4 block: the addresses are not reported.
        let header = with_sig(&[0x20, 0x11, 0x00, 0x0C, 1, 2, 3, 4, 5, 6, 7, 8, 0, 80, 0, 80]);
        assert_eq!(parse(&header), Ok(Some((v2(None, None), 28))));
        // LOCAL with a family the spec does not define: the block is skipped unread.
        let header = with_sig(&[0x20, 0x44, 0x00, 0x03, 0xFF, 0xFF, 0xFF]);
        assert_eq!(parse(&header), Ok(Some((v2(None, None), 19))));
    }

    #[test]
    fn all_tlvs_byte_exact() {
        let addrs = Some((sa("192.0.2.1:56324"), sa("198.51.100.2:443")));
        let tlvs = Tlvs {
            authority: Some("app.example.org"),
            unique_id: Some(&[0, 0, 0, 0, 0, 0, 0x30, 0x39]),
            crc32c: true,
        };
        let mut expected = with_sig(&[
            0x21, 0x11, 0x00, 0x30, // PROXY, TCP over IPv4, 48 bytes follow
            192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB, // addresses, ports
            0x02, 0x00, 0x0F, // PP2_TYPE_AUTHORITY, 15 bytes
        ]);
        expected.extend_from_slice(b"app.example.org");
        expected.extend_from_slice(&[
            0x05, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0x30, 0x39, // PP2_TYPE_UNIQUE_ID, 8 bytes
            0x03, 0x00, 0x04, 0x49, 0x71, 0x9D, 0xE9, // PP2_TYPE_CRC32C
        ]);
        assert_eq!(encoded(addrs, &tlvs), expected);
        let header = v2(addrs, Some("app.example.org"));
        assert_eq!(parse(&expected), Ok(Some((header, expected.len()))));
    }

    #[test]
    fn local_with_crc32c() {
        let tlvs = Tlvs {
            crc32c: true,
            ..Tlvs::default()
        };
        let expected = with_sig(&[
            0x20, 0x00, 0x00, 0x07, 0x03, 0x00, 0x04, 0xA9, 0xB8, 0x7E, 0x8F,
        ]);
        assert_eq!(encoded(None, &tlvs), expected);
        assert_eq!(parse(&expected), Ok(Some((v2(None, None), 23))));
    }

    #[test]
    fn third_party_header_with_crc32c() {
        // A header as sent by a cloud load balancer: CRC32C, a vendor TLV (0xEA) and a
        // NOOP padding TLV. Its checksum was computed by the sender, not by this code.
        let mut header = with_sig(&[
            0x21, 0x11, 0x00, 0x54, 0xAC, 0x1F, 0x07, 0x71, 0xAC, 0x1F, 0x0A, 0x1F, 0xC8, 0xF2,
            0x00, 0x50, 0x03, 0x00, 0x04, 0xE8, 0xD6, 0x89, 0x2D, 0xEA, 0x00, 0x17, 0x01,
        ]);
        header.extend_from_slice(b"vpce-08d2bf15fac5001c9");
        header.extend_from_slice(&[0x04, 0x00, 0x24]);
        header.extend_from_slice(&[0; 36]);
        let addrs = Some((sa("172.31.7.113:51442"), sa("172.31.10.31:80")));
        assert_eq!(parse(&header), Ok(Some((v2(addrs, None), 100))));
        header[20] ^= 1;
        assert_eq!(parse(&header), Err(ProxyError::BadCrc32c));
    }

    #[test]
    fn bad_crc32c() {
        let tlvs = Tlvs {
            crc32c: true,
            ..Tlvs::default()
        };
        let addrs = Some((sa("192.0.2.1:1"), sa("192.0.2.2:2")));
        let good = encoded(addrs, &tlvs);
        // A changed checksum, and a changed byte the checksum covers.
        for at in [good.len() - 1, 17] {
            let mut bad = good.clone();
            bad[at] ^= 0x80;
            assert_eq!(parse(&bad), Err(ProxyError::BadCrc32c), "byte {at}");
        }
        // A CRC32C TLV of the wrong size.
        let bad = with_sig(&[0x20, 0x00, 0x00, 0x06, 0x03, 0x00, 0x03, 0, 0, 0]);
        assert_eq!(parse(&bad), Err(ProxyError::BadV2Tlv));
    }

    #[test]
    fn udp_and_unix_are_not_carried() {
        let udp = with_sig(&[0x21, 0x12, 0x00, 0x0C, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
        assert_eq!(parse(&udp), Ok(Some((v2(None, None), 28))));
        let mut unix = with_sig(&[0x21, 0x31, 0x00, 0xD8]);
        unix.resize(16 + 216, b'/');
        assert_eq!(parse(&unix), Ok(Some((v2(None, None), 232))));
        let unspec = with_sig(&[0x21, 0x00, 0x00, 0x00]);
        assert_eq!(parse(&unspec), Ok(Some((v2(None, None), 16))));
    }

    #[test]
    fn authority_must_be_utf8() {
        let header = with_sig(&[0x20, 0x00, 0x00, 0x05, 0x02, 0x00, 0x02, 0xC3, 0x28]);
        assert_eq!(parse(&header), Ok(Some((v2(None, None), 21))));
    }

    #[test]
    fn encoder_leaves_out_oversized_tlvs() {
        let long_name = "a".repeat(256);
        let long_id = [7u8; 129];
        let tlvs = Tlvs {
            authority: Some(&long_name),
            unique_id: Some(&long_id),
            crc32c: false,
        };
        assert_eq!(encoded(None, &tlvs), with_sig(&[0x20, 0x00, 0x00, 0x00]));
    }

    #[test]
    fn appends_after_existing_bytes() {
        let tlvs = Tlvs {
            crc32c: true,
            ..Tlvs::default()
        };
        let mut out = b"already here".to_vec();
        encode_v2(None, &tlvs, &mut out);
        assert_eq!(&out[..12], b"already here");
        assert_eq!(parse(&out[12..]), Ok(Some((v2(None, None), 23))));
    }

    #[test]
    fn extra_bytes_are_not_consumed() {
        let addrs = Some((sa("192.0.2.1:1"), sa("192.0.2.2:2")));
        let mut buf = encoded(addrs, &Tlvs::default());
        buf.extend_from_slice(b"\x16\x03\x01client data");
        assert_eq!(parse(&buf), Ok(Some((v2(addrs, None), 28))));
    }

    #[test]
    fn every_prefix_asks_for_more() {
        let addrs = Some((sa("[2001:db8::1]:1"), sa("192.0.2.2:2")));
        let tlvs = Tlvs {
            authority: Some("a.example"),
            unique_id: Some(b"id"),
            crc32c: true,
        };
        for header in [encoded(addrs, &tlvs), encoded(None, &tlvs)] {
            for k in 0..header.len() {
                assert_eq!(parse(&header[..k]), Ok(None), "prefix {k}");
            }
            assert!(matches!(parse(&header), Ok(Some((_, n))) if n == header.len()));
        }
    }

    #[test]
    fn bad_fixed_part_fails_early() {
        assert_eq!(parse(b"\r\n\r\n\0\r\nQUIX"), Err(ProxyError::NotProxy));
        // Version 1 in the binary format, and command 2.
        assert_eq!(
            parse(&with_sig(&[0x11])),
            Err(ProxyError::BadV2VersionOrCommand)
        );
        assert_eq!(
            parse(&with_sig(&[0x22])),
            Err(ProxyError::BadV2VersionOrCommand)
        );
        // Family 4, and transport 3.
        assert_eq!(
            parse(&with_sig(&[0x21, 0x41])),
            Err(ProxyError::BadV2Family)
        );
        assert_eq!(
            parse(&with_sig(&[0x21, 0x13])),
            Err(ProxyError::BadV2Family)
        );
        // TCP4 needs 12 bytes, TCP6 36, UNIX 216.
        assert_eq!(
            parse(&with_sig(&[0x21, 0x11, 0x00, 0x0B])),
            Err(ProxyError::BadV2AddressLength)
        );
        assert_eq!(
            parse(&with_sig(&[0x21, 0x21, 0x00, 0x0C])),
            Err(ProxyError::BadV2AddressLength)
        );
        assert_eq!(
            parse(&with_sig(&[0x21, 0x31, 0x00, 0x24])),
            Err(ProxyError::BadV2AddressLength)
        );
    }

    #[test]
    fn oversized() {
        // 16 + 4096 is the most we take; one more byte is refused before it arrives.
        assert_eq!(parse(&with_sig(&[0x20, 0x00, 0x10, 0x00])), Ok(None));
        assert_eq!(
            parse(&with_sig(&[0x20, 0x00, 0x10, 0x01])),
            Err(ProxyError::V2TooLong)
        );
        assert_eq!(
            parse(&with_sig(&[0x21, 0x11, 0xFF, 0xFF])),
            Err(ProxyError::V2TooLong)
        );
        // A maximal header: LOCAL, one NOOP TLV filling it.
        let mut header = with_sig(&[0x20, 0x00, 0x10, 0x00, 0x04, 0x0F, 0xFD]);
        header.resize(V2_MAX_LEN, 0);
        assert_eq!(parse(&header), Ok(Some((v2(None, None), V2_MAX_LEN))));
    }

    #[test]
    fn tlv_overrunning_the_header() {
        // A TLV that claims 5 bytes where 4 remain, and a TLV header cut short.
        let bad = with_sig(&[0x20, 0x00, 0x00, 0x07, 0x04, 0x00, 0x05, 0, 0, 0, 0]);
        assert_eq!(parse(&bad), Err(ProxyError::BadV2Tlv));
        let bad = with_sig(&[0x20, 0x00, 0x00, 0x02, 0x04, 0x00]);
        assert_eq!(parse(&bad), Err(ProxyError::BadV2Tlv));
        // A unique id over 128 bytes.
        let mut bad = with_sig(&[0x20, 0x00, 0x00, 0x84, 0x05, 0x00, 0x81]);
        bad.resize(16 + 0x84, 1);
        assert_eq!(parse(&bad), Err(ProxyError::BadV2Tlv));
    }
}
