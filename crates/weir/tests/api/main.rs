//! API integration tests against the real `weir serve` binary: one test
//! binary (faster to link), one module per concern.

#![allow(clippy::unwrap_used)]

#[allow(dead_code, reason = "shared helpers; not every module uses each")]
mod kit;

mod accepts;
mod alarm_templates;
mod backends;
#[allow(dead_code, reason = "shared helpers; not every module uses each")]
mod browser;
mod certs;
mod cli;
mod console;
mod console_browser;
#[allow(dead_code, reason = "shared helpers; not every module uses each")]
mod console_kit;
mod console_policy;
mod console_resources;
mod durability;
mod export;
mod health;
mod http_kit;
mod l4;
mod l4_live;
mod l7;
mod l7_algorithms;
mod l7_counters;
mod l7_h2;
mod l7_live;
mod l7_strict;
mod l7_tls;
mod metrics;
mod resources;
mod shutdown;
mod tenancy;
mod validation;
