//! Configuration files as numbered lines: bytes decoded lossily (a comment in GBK must not
//! stop an import, and the bytes that matter are ASCII), CRLF endings and a byte-order
//! mark removed.

/// The text of a file; bytes that are not UTF-8 become U+FFFD.
pub fn decode(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.strip_prefix('\u{feff}').unwrap_or(&text).to_string()
}

/// Lines numbered from 1, without their `\n` or `\r\n`.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_bom_and_invalid_bytes() {
        let text = decode(b"\xef\xbb\xbfa 1\r\nb \xb0\xa1 2\n\nc");
        let got: Vec<(usize, &str)> = lines(&text).collect();
        assert_eq!(
            got,
            vec![(1, "a 1"), (2, "b \u{fffd}\u{fffd} 2"), (3, ""), (4, "c")]
        );
        assert_eq!(lines("").count(), 1);
    }
}
