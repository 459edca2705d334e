//! Backend health for Weir.
//!
//! - [`Cell`]: one backend's status, read by the proxy with one atomic load;
//!   a small state machine that flips only after consecutive results
//!   ("flip, don't flap"), fed by probes and by failures seen by live traffic.
//! - [`Table`]: the cells by backend id, shared by the checker, the proxy and
//!   the API.
//! - [`probe`]: one active check (TCP connect, UDP datagram, HTTP `GET`).
//! - [`Checker`]: runs probes for the current target set, jittered, with
//!   bounded concurrency, re-probing at once what is new or changed.
//!
//! The state machine takes its clock as an argument, so it is tested without
//! sockets or sleeps; only the checker reads the wall clock.

#![forbid(unsafe_code)]

mod cell;
mod checker;
mod probe;
pub mod schedule;
mod table;
mod target;

pub use cell::{Cell, LastCheck, Status};
pub use checker::Checker;
pub use probe::{is_local_error, probe};
pub use table::Table;
pub use target::{Probe, Target};
