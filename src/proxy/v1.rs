//! PROXY protocol v1: one text line, "PROXY TCP4 src dst sport dport\r\n" (or TCP6, or
//! "PROXY UNKNOWN ...\r\n"), at most 107 bytes. Parsed strictly per the spec: single
//! spaces, canonical addresses, decimal ports without sign or leading zero.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{as_v6, Header, ProxyError, Version, V1_MAX_LEN};

/// Every v1 header starts with these bytes.
const PREFIX: &[u8] = b"PROXY ";

/// Longest address text each family can take: "255.255.255.255" and
/// "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".
const V4_TEXT_MAX: usize = 15;
const V6_TEXT_MAX: usize = 45;

/// The protocol word after "PROXY ".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Tcp4,
    Tcp6,
    Unknown,
}

/// Parses a v1 header; see [`super::parse`] for the meaning of the result.
pub(super) fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let sig_len = buf.len().min(PREFIX.len());
    if buf.get(..sig_len) != PREFIX.get(..sig_len) {
        return Err(ProxyError::NotProxy);
    }
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(end) = window.windows(2).position(|pair| pair == b"\r\n") else {
        if buf.len() >= V1_MAX_LEN {
            return Err(ProxyError::V1TooLong);
        }
        check_partial_line(buf.get(PREFIX.len()..).unwrap_or_default())?;
        return Ok(None);
    };
    // "PROXY " holds no CR, so the CRLF lies after it; `get` keeps that a non-assumption.
    let line = buf.get(PREFIX.len()..end).ok_or(ProxyError::BadV1Syntax)?;
    let addrs = parse_line(line)?;
    let header = Header {
        version: Version::V1,
        addrs,
        authority: None,
    };
    Ok(Some((header, end + 2)))
}

/// Parses the line between "PROXY " and CRLF.
fn parse_line(line: &[u8]) -> Result<Option<(SocketAddr, SocketAddr)>, ProxyError> {
    let mut fields = line.split(|&b| b == b' ');
    let family = fields.next().map_or(Err(ProxyError::BadV1Syntax), family)?;
    if family == Family::Unknown {
        // The spec says to ignore whatever follows UNKNOWN up to the CRLF.
        return Ok(None);
    }
    let mut next = || fields.next().ok_or(ProxyError::BadV1Syntax);
    let src_ip = address(family, next()?)?;
    let dst_ip = address(family, next()?)?;
    let src_port = port(next()?)?;
    let dst_port = port(next()?)?;
    if fields.next().is_some() {
        return Err(ProxyError::BadV1Syntax);
    }
    Ok(Some((
        SocketAddr::new(src_ip, src_port),
        SocketAddr::new(dst_ip, dst_port),
    )))
}

/// Checks a line that has no CRLF yet: every field already ended by a space must be
/// valid, and the last, unfinished one must still be able to become valid. This lets a
/// caller drop a bad client before it has sent 107 bytes.
fn check_partial_line(line: &[u8]) -> Result<(), ProxyError> {
    if let Some(before_cr) = line.strip_suffix(b"\r") {
        // Only the LF is missing: what came before must be a whole line.
        return parse_line(before_cr).map(|_| ());
    }
    let mut fields = line.split(|&b| b == b' ').peekable();
    let mut index = 0;
    let mut family_seen = Family::Unknown;
    while let Some(field) = fields.next() {
        let finished = fields.peek().is_some();
        match (index, finished) {
            (0, true) => {
                family_seen = family(field)?;
                if family_seen == Family::Unknown {
                    return Ok(());
                }
            }
            (0, false) => {
                let words: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];
                if !words.iter().any(|word| word.starts_with(field)) {
                    return Err(ProxyError::BadV1Syntax);
                }
            }
            (1 | 2, true) => {
                address(family_seen, field)?;
            }
            (1 | 2, false) => check_partial_address(family_seen, field)?,
            (3, true) => {
                port(field)?;
            }
            (3 | 4, false) => check_partial_port(field)?,
            _ => return Err(ProxyError::BadV1Syntax),
        }
        index += 1;
    }
    Ok(())
}

fn family(word: &[u8]) -> Result<Family, ProxyError> {
    match word {
        b"TCP4" => Ok(Family::Tcp4),
        b"TCP6" => Ok(Family::Tcp6),
        b"UNKNOWN" => Ok(Family::Unknown),
        _ => Err(ProxyError::BadV1Syntax),
    }
}

/// A complete address field. std's parsers refuse IPv4 octets with leading zeros, as
/// the spec asks, and accept the usual IPv6 forms (including "::ffff:1.2.3.4").
fn address(family: Family, text: &[u8]) -> Result<IpAddr, ProxyError> {
    if text.is_empty() {
        return Err(ProxyError::BadV1Syntax);
    }
    let text = std::str::from_utf8(text).map_err(|_| ProxyError::BadV1Address)?;
    let ip = match family {
        Family::Tcp4 => text.parse::<Ipv4Addr>().map(IpAddr::V4),
        Family::Tcp6 => text.parse::<Ipv6Addr>().map(IpAddr::V6),
        Family::Unknown => return Err(ProxyError::BadV1Syntax),
    };
    ip.map_err(|_| ProxyError::BadV1Address)
}

/// The start of an address field: only characters and lengths a valid one can have.
fn check_partial_address(family: Family, text: &[u8]) -> Result<(), ProxyError> {
    let ok = match family {
        Family::Tcp4 => {
            text.len() <= V4_TEXT_MAX && text.iter().all(|&b| b.is_ascii_digit() || b == b'.')
        }
        Family::Tcp6 => {
            text.len() <= V6_TEXT_MAX
                && text
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        Family::Unknown => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ProxyError::BadV1Address)
    }
}

/// A complete port field: decimal 0..=65535, no sign, no leading zero (the spec forbids
/// them so that nobody reads them as octal).
fn port(text: &[u8]) -> Result<u16, ProxyError> {
    if text.is_empty() {
        return Err(ProxyError::BadV1Syntax);
    }
    check_partial_port(text)?;
    // At most five checked digits: the fold cannot overflow a u32.
    let value = text
        .iter()
        .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'));
    u16::try_from(value).map_err(|_| ProxyError::BadV1Port)
}

/// The start of a port field: digits only, no leading zero, and not already too big.
fn check_partial_port(text: &[u8]) -> Result<(), ProxyError> {
    let digits_ok = text.len() <= 5 && text.iter().all(u8::is_ascii_digit);
    let leading_zero = text.len() > 1 && text.first() == Some(&b'0');
    if !digits_ok || leading_zero {
        return Err(ProxyError::BadV1Port);
    }
    let value = text
        .iter()
        .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'));
    if value > u32::from(u16::MAX) {
        return Err(ProxyError::BadV1Port);
    }
    Ok(())
}

/// Appends a v1 header: "PROXY TCP4 s d sp dp\r\n" / TCP6; `None` -> "PROXY UNKNOWN\r\n".
///
/// When the two addresses are of different families, both are sent as TCP6, the IPv4
/// one v4-mapped (::ffff:a.b.c.d).
pub fn encode_v1(addrs: Option<(SocketAddr, SocketAddr)>, out: &mut Vec<u8>) {
    let Some((src, dst)) = addrs else {
        out.extend_from_slice(b"PROXY UNKNOWN\r\n");
        return;
    };
    // Writing to a Vec cannot fail, so the io::Result carries nothing.
    let _ = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            write!(out, "PROXY TCP4 {s} {d} {} {}\r\n", src.port(), dst.port())
        }
        (s, d) => write!(
            out,
            "PROXY TCP6 {} {} {} {}\r\n",
            as_v6(s),
            as_v6(d),
            src.port(),
            dst.port()
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::parse;

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn encoded(addrs: Option<(SocketAddr, SocketAddr)>) -> Vec<u8> {
        let mut out = Vec::new();
        encode_v1(addrs, &mut out);
        out
    }

    fn v1(addrs: Option<(SocketAddr, SocketAddr)>) -> Header {
        Header {
            version: Version::V1,
            addrs,
            authority: None,
        }
    }

    #[test]
    fn tcp4_encode_and_parse() {
        let addrs = Some((sa("192.0.2.1:56324"), sa("198.51.100.2:443")));
        let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
        assert_eq!(encoded(addrs), line);
        assert_eq!(parse(line), Ok(Some((v1(addrs), line.len()))));
    }

    #[test]
    fn tcp6_encode_and_parse() {
        let addrs = Some((sa("[2001:db8::1]:0"), sa("[2001:db8:0:1::ff]:65535")));
        let line = b"PROXY TCP6 2001:db8::1 2001:db8:0:1::ff 0 65535\r\n";
        assert_eq!(encoded(addrs), line);
        assert_eq!(parse(line), Ok(Some((v1(addrs), line.len()))));
    }

    #[test]
    fn mixed_families_become_tcp6_v4_mapped() {
        let addrs = Some((sa("192.0.2.1:1234"), sa("[2001:db8::2]:80")));
        let line = b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1234 80\r\n";
        assert_eq!(encoded(addrs), line);
        let mapped = Some((sa("[::ffff:192.0.2.1]:1234"), sa("[2001:db8::2]:80")));
        assert_eq!(parse(line), Ok(Some((v1(mapped), line.len()))));
    }

    #[test]
    fn unknown_encode_and_parse() {
        assert_eq!(encoded(None), b"PROXY UNKNOWN\r\n");
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Ok(Some((v1(None), 15))));
        // Whatever follows UNKNOWN is ignored, addresses included.
        let line = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
                     ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(line.len(), V1_MAX_LEN);
        assert_eq!(parse(line), Ok(Some((v1(None), V1_MAX_LEN))));
        assert_eq!(parse(b"PROXY UNKNOWN x\ry\r\n"), Ok(Some((v1(None), 19))));
    }

    #[test]
    fn longest_lines_fit() {
        let v4 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
        assert!(matches!(parse(v4), Ok(Some((_, 56)))));
        let addrs = Some((
            sa("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
            sa("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        ));
        let line = encoded(addrs);
        assert_eq!(line.len(), 104);
        assert_eq!(parse(&line), Ok(Some((v1(addrs), 104))));
    }

    #[test]
    fn extra_bytes_are_not_consumed() {
        let mut buf = b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r\n".to_vec();
        let n = buf.len();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert!(matches!(parse(&buf), Ok(Some((_, len))) if len == n));
    }

    #[test]
    fn every_prefix_of_a_valid_line_asks_for_more() {
        let lines: [&[u8]; 4] = [
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
            b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 0 80\r\n",
            b"PROXY UNKNOWN\r\n",
            b"PROXY UNKNOWN a b\rc\r\n",
        ];
        for line in lines {
            for k in 0..line.len() {
                assert_eq!(parse(&line[..k]), Ok(None), "{:?}", &line[..k]);
            }
            assert!(matches!(parse(line), Ok(Some(_))));
        }
    }

    #[test]
    fn bad_ports() {
        let cases: [&[u8]; 7] = [
            b"PROXY TCP4 1.2.3.4 5.6.7.8 80 65536\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 00 443\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 443\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 443\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 80 4x3\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 80 100000\r\n",
        ];
        for line in cases {
            assert_eq!(parse(line), Err(ProxyError::BadV1Port), "{line:?}");
            // The error shows as soon as the bad field is there, before the CRLF.
            let at = line.len() - 2;
            assert_eq!(parse(&line[..at]), Err(ProxyError::BadV1Port), "{line:?}");
        }
        assert!(matches!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n"),
            Ok(Some(_))
        ));
    }

    #[test]
    fn bad_addresses() {
        let cases: [&[u8]; 7] = [
            b"PROXY TCP4 1.2.3.256 5.6.7.8 80 443\r\n",
            b"PROXY TCP4 01.2.3.4 5.6.7.8 80 443\r\n",
            b"PROXY TCP4 1.2.3 5.6.7.8 80 443\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 80 443\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 80 443\r\n",
            b"PROXY TCP6 ::1 fe80::1%eth0 80 443\r\n",
            b"PROXY TCP6 ::1 1:2:3:4:5:6:7:8:9 80 443\r\n",
        ];
        for line in cases {
            assert_eq!(parse(line), Err(ProxyError::BadV1Address), "{line:?}");
        }
    }

    #[test]
    fn bad_syntax() {
        let cases: [&[u8]; 9] = [
            b"PROXY TCP5 1.2.3.4 5.6.7.8 80 443\r\n",
            b"PROXY tcp4 1.2.3.4 5.6.7.8 80 443\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 80 443\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443 \r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443 9\r\n",
            b"PROXY TCP4 1.2.3.4\r5.6.7.8 80 443\r\n",
            b"PROXY UNKNOWNX\r\n",
            b"PROXY \r\n",
        ];
        for line in cases {
            assert!(parse(line).is_err(), "{line:?}");
        }
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n"),
            Err(ProxyError::BadV1Syntax)
        );
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4\r"), Err(ProxyError::BadV1Syntax));
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4\rX"),
            Err(ProxyError::BadV1Address)
        );
        assert_eq!(parse(b"PROXY TCPX"), Err(ProxyError::BadV1Syntax));
        assert_eq!(parse(b"PROXY\t"), Err(ProxyError::NotProxy));
    }

    #[test]
    fn no_crlf_within_107_bytes_is_too_long() {
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(V1_MAX_LEN - 1, b'x');
        assert_eq!(parse(&line), Ok(None));
        line.push(b'\r');
        assert_eq!(parse(&line), Err(ProxyError::V1TooLong));
        line.push(b'\n');
        assert_eq!(parse(&line), Err(ProxyError::V1TooLong));
    }
}
