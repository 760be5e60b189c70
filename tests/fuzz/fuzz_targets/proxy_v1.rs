//! Fuzzes the PROXY header parser on v1 text: inputs are prefixed with "PROXY " so the
//! fuzzer spends its time past the signature.

#![no_main]

use libfuzzer_sys::fuzz_target;

mod check;

fuzz_target!(|data: &[u8]| {
    let mut input = b"PROXY ".to_vec();
    input.extend_from_slice(data);
    check::parse_invariants(&input);
});
