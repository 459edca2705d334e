//! API integration tests against the real `weir serve` binary: one test
//! binary (faster to link), one module per concern.

#![allow(clippy::unwrap_used)]

#[allow(dead_code, reason = "shared helpers; not every module uses each")]
mod kit;

mod backends;
mod cli;
mod durability;
mod export;
mod health;
mod l4;
mod l4_live;
mod resources;
mod tenancy;
mod validation;
