//! Opaque, type-prefixed resource ids (`lb-3f9c2a1b7d0e`).

use rand::Rng;

/// A fresh id with the given prefix (without the dash): 12 random hex digits.
pub fn new_id(prefix: &str) -> String {
    let n: u64 = rand::rng().random();
    format!("{prefix}-{:012x}", n & 0xffff_ffff_ffff)
}

/// A fresh secret (tokens, cookie keys): 32 random bytes as hex.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
