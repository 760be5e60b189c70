//! Fuzzes the TLS ClientHello parser: never panics, a returned name obeys the rules,
//! and a prefix of a decided input is never decided differently.
//!
//! Each input is tried twice: as raw bytes from the client, and as a ClientHello body
//! that the target frames itself (handshake header and records of a size taken from the
//! first byte). Raw bytes exercise the record layer; framing spares the fuzzer from
//! having to keep the record and handshake lengths consistent, so it gets deeper into
//! the extensions and the server_name.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringlb::tls::{parse_client_hello, Hello};

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some((&size, body)) = data.split_first() {
        check(&framed(body, usize::from(size) + 1));
    }
});

fn check(input: &[u8]) {
    let result = parse_client_hello(input);
    if let Ok(Hello::Complete { sni: Some(name) }) = &result {
        assert!(!name.is_empty() && name.len() <= 255);
        assert!(!name.ends_with('.'));
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b)));
    }
    if result != Ok(Hello::Incomplete) && !input.is_empty() {
        let prefix = parse_client_hello(&input[..input.len() - 1]);
        assert!(prefix == Ok(Hello::Incomplete) || prefix == result);
    }
}

/// A ClientHello handshake message around `body`, cut into handshake records of at
/// most `fragment` bytes.
fn framed(body: &[u8], fragment: usize) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
    let mut message = vec![1, len[1], len[2], len[3]];
    message.extend_from_slice(body);
    let mut out = Vec::with_capacity(message.len() + message.len() / fragment * 5 + 5);
    for chunk in message.chunks(fragment) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}
