//! What must hold for any input of the PROXY parser, shared by the v1 and v2 targets.

use ringlb::proxy::{self, Header, Tlvs, Version};

/// Parses `input` and checks that a complete header is consistent: its length fits the
/// input and the limits, no shorter prefix was already decided, and its addresses
/// survive an encode/parse round trip.
pub fn parse_invariants(input: &[u8]) {
    let Ok(Some((header, n))) = proxy::parse(input) else {
        return;
    };
    assert!(n <= input.len());
    let max = match header.version {
        Version::V1 => proxy::V1_MAX_LEN,
        Version::V2 => proxy::V2_MAX_LEN,
    };
    assert!(n <= max);
    assert_eq!(proxy::parse(&input[..n]), Ok(Some((header.clone(), n))));
    if n > 0 {
        assert_eq!(proxy::parse(&input[..n - 1]), Ok(None));
    }
    round_trip(&header);
}

/// Re-encodes what was parsed in both versions and parses it back. A parsed pair is
/// always of one family, so it comes back unchanged.
fn round_trip(header: &Header) {
    let authority = header.authority.as_deref().filter(|a| a.len() <= 255);
    let tlvs = Tlvs {
        authority,
        unique_id: Some(b"fuzz"),
        crc32c: true,
    };
    let mut v2 = Vec::new();
    proxy::encode_v2(header.addrs, &tlvs, &mut v2);
    let Ok(Some((back, n))) = proxy::parse(&v2) else {
        panic!("own v2 header refused: {v2:02x?}");
    };
    assert_eq!(n, v2.len());
    assert_eq!(back.addrs, header.addrs);
    assert_eq!(back.authority.as_deref(), authority);

    let mut v1 = Vec::new();
    proxy::encode_v1(header.addrs, &mut v1);
    let Ok(Some((back, n))) = proxy::parse(&v1) else {
        panic!("own v1 header refused: {v1:02x?}");
    };
    assert_eq!(n, v1.len());
    assert_eq!(back.addrs, header.addrs);
}
