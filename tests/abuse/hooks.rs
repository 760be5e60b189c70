//! Abuse: test-only fault switches must not exist in a production binary. Built without
//! the `test-hooks` feature (as `cargo build --release` builds it), the binary does not
//! even contain the name of the environment variable that arms them.

#[test]
#[cfg(not(feature = "test-hooks"))]
fn the_production_binary_has_no_fault_switch() {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_ringlb")).expect("read the binary");
    let needle = b"RINGLB_TEST_FAULTS";
    assert!(
        !binary.windows(needle.len()).any(|w| w == needle),
        "the binary built without test-hooks still knows RINGLB_TEST_FAULTS"
    );
}
