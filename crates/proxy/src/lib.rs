//! Weir's data plane: listeners, L4 forwarding, schedulers, persistence,
//! ACLs and the PROXY protocol. It never reads the store: it runs a
//! compiled, immutable [`snapshot`] that the control plane swaps atomically.

pub mod acl;
pub mod counters;
pub mod dataplane;
pub mod http;
mod meter;
pub mod proxy_protocol;
mod relay;
pub mod sched;
pub mod signal;
pub mod snapshot;
mod splice;
mod tcp;
#[cfg(test)]
mod test_support;
mod udp;

pub use dataplane::{DataPlane, DataPlaneConfig, ListenerState};
pub use snapshot::{Compiled, ConfigInput, Snapshot};
