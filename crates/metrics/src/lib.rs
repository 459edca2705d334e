//! Metrics: lock-free counters bumped by the data plane, the sampler that
//! turns them into rates every few seconds, the history kept on disk for
//! charts, Prometheus exposition, and alarm evaluation with webhook
//! notifications.

pub mod alarm;
pub mod counters;
pub mod db;
pub mod history;
pub mod prom;
pub mod reading;
pub mod service;
pub mod svg;

pub use service::{Catalog, Metrics, Settings};

pub use weir_model::alarm::{METRICS, Metric};

/// One resource's values at one sample, indexed by `Metric::index`.
pub type Values = [f64; METRICS];
