//! Test target for the `balance` module: the binary crate has no library target, so the
//! module's unit tests (its `mod tests` blocks) are compiled and run from here.

#[path = "mod.rs"]
mod balance;
