//! Integration tests for weir-health: real sockets on loopback, bounded waits.

// Test helpers may unwrap: a panic there is a test failure, not a crash.
#![allow(clippy::unwrap_used)]

mod checker;
mod probe;
mod support;
