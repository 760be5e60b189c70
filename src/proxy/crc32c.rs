//! CRC-32C (Castagnoli), the checksum of the PROXY v2 `PP2_TYPE_CRC32C` TLV.
//! Table-driven, one byte at a time: headers are at most a few hundred bytes,
//! so a faster slicing or SSE4.2 variant would not show.

/// The reflected Castagnoli polynomial (0x1EDC6F41 bit-reversed).
const POLY: u32 = 0x82F6_3B78;

/// One entry per byte value, built at compile time.
const TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// CRC-32C of `data` (initial value and final XOR 0xFFFFFFFF, as in RFC 3720 and the
/// PROXY protocol).
pub fn crc32c(data: &[u8]) -> u32 {
    finish(update(START, data))
}

/// The running state before any byte: a checksum in pieces is
/// `finish(update(update(START, a), b))`.
pub(super) const START: u32 = !0;

/// Feeds `data` into a running state.
pub(super) fn update(mut state: u32, data: &[u8]) -> u32 {
    for &byte in data {
        state = TABLE[((state ^ u32::from(byte)) & 0xFF) as usize] ^ (state >> 8);
    }
    state
}

/// The checksum of everything fed so far.
pub(super) fn finish(state: u32) -> u32 {
    !state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn in_pieces_equals_whole() {
        let data = b"PROXY protocol header bytes";
        let (a, b) = data.split_at(10);
        assert_eq!(finish(update(update(START, a), b)), crc32c(data));
    }

    #[test]
    fn empty_and_rfc3720_vectors() {
        assert_eq!(crc32c(b""), 0);
        // RFC 3720, B.4: 32 bytes of zeros, of 0xFF, and an ascending sequence.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
    }
}
