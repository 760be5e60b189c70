//! Fuzzes the PROXY header parser on v2 binary headers: inputs are prefixed with the
//! 12-byte signature so the fuzzer spends its time past it.

#![no_main]

use libfuzzer_sys::fuzz_target;

mod check;

const SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

fuzz_target!(|data: &[u8]| {
    let mut input = SIGNATURE.to_vec();
    input.extend_from_slice(data);
    check::parse_invariants(&input);
});
