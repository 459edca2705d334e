//! The config file (`--config weir.toml`): everything that is not a
//! resource. Unknown keys are refused so a typo cannot silently do nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ipnet::Ipv4Net;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the API (and later the console) listens.
    pub api_listen: SocketAddr,
    /// Where the embedded store keeps its files.
    pub data_dir: PathBuf,
    /// The elastic IP pool.
    pub eip_pool: Vec<Ipv4Net>,
    /// Ports no VServer may use, on every LB address and protocol.
    pub reserved_ports: Vec<u16>,
    pub store: StoreConfig,
    pub dataplane: DataPlaneSection,
    pub metrics: MetricsSection,
    /// When set, `GET /metrics` requires `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<String>,
}

/// `[metrics]`: sampling and history retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Seconds between samples (1–60).
    pub interval_s: u64,
    /// Hours of full-resolution samples kept (1–168); older ones survive as 5-minute averages.
    pub raw_retention_h: u64,
    /// Days of 5-minute averages (and of delivered, resolved alarm events) kept (1–366).
    pub retention_days: u64,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            interval_s: 10,
            raw_retention_h: 24,
            retention_days: 30,
        }
    }
}

/// `[dataplane]`: timeouts and limits of the proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataPlaneSection {
    /// Seconds a deleted backend's connections may run on before they are closed.
    pub drain_s: u64,
    /// Backend connect timeout, in milliseconds.
    pub connect_timeout_ms: u64,
    /// UDP flows per listener; new sources beyond it are dropped and counted.
    pub udp_max_flows: usize,
    /// Relay TCP VServers with splice(2) (zero-copy).
    pub splice: bool,
    /// HTTP: how long a backend may take to send its response head, in ms (504 after).
    pub response_header_timeout_ms: u64,
    /// HTTP: how long an idle backend connection is kept for reuse, in ms.
    pub upstream_keepalive_ms: u64,
    /// HTTP: one structured log line per request (target `weir::access`).
    pub access_log: bool,
    /// On SIGTERM or Ctrl-C: how long established connections and requests
    /// in flight may run on after the listeners close, in seconds.
    pub shutdown_grace_s: u64,
}

impl Default for DataPlaneSection {
    fn default() -> Self {
        let d = weir_proxy::DataPlaneConfig::default();
        DataPlaneSection {
            drain_s: d.drain.as_secs(),
            connect_timeout_ms: d.connect_timeout.as_millis() as u64,
            udp_max_flows: d.udp_max_flows,
            splice: d.splice,
            response_header_timeout_ms: d.response_header_timeout.as_millis() as u64,
            upstream_keepalive_ms: d.upstream_keepalive.as_millis() as u64,
            access_log: d.access_log,
            shutdown_grace_s: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "backend")]
pub enum StoreConfig {
    /// SQLite in `data_dir` (the default).
    #[default]
    Embedded,
    /// etcd, for a cluster (not available yet).
    Etcd { endpoints: Vec<String> },
}

impl Default for Config {
    fn default() -> Self {
        let api = weir_api::ApiConfig::default();
        Config {
            api_listen: SocketAddr::from(([127, 0, 0, 1], 9080)),
            data_dir: PathBuf::from("./weir-data"),
            eip_pool: api.eip_pool,
            reserved_ports: api.reserved_ports,
            store: StoreConfig::Embedded,
            dataplane: DataPlaneSection::default(),
            metrics: MetricsSection::default(),
            metrics_token: None,
        }
    }
}

impl Config {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let cfg = match path {
            None => Config::default(),
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).with_context(|| format!("reading config file {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("in config file {}", p.display()))?
            }
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.eip_pool.is_empty() {
            bail!("eip_pool must name at least one prefix");
        }
        let d = &self.dataplane;
        if d.connect_timeout_ms == 0 || d.udp_max_flows == 0 || d.response_header_timeout_ms == 0 {
            bail!("dataplane: connect_timeout_ms, response_header_timeout_ms and udp_max_flows must be positive");
        }
        let m = &self.metrics;
        if !(1..=60).contains(&m.interval_s) {
            bail!("metrics.interval_s must be 1-60 seconds, not {}", m.interval_s);
        }
        if !(1..=168).contains(&m.raw_retention_h) {
            bail!("metrics.raw_retention_h must be 1-168 hours, not {}", m.raw_retention_h);
        }
        if !(1..=366).contains(&m.retention_days) {
            bail!("metrics.retention_days must be 1-366 days, not {}", m.retention_days);
        }
        if self.metrics_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            bail!("metrics_token must not be empty (leave it out for an open /metrics)");
        }
        if self.reserved_ports.contains(&0) {
            bail!("reserved_ports: 0 is not a port");
        }
        if let StoreConfig::Etcd { endpoints } = &self.store {
            bail!(
                "store backend \"etcd\" ({}) is not available in this build yet; use the embedded store",
                endpoints.join(", ")
            );
        }
        Ok(())
    }

    /// The data plane's settings; `cookie_key` signs persistence cookies.
    pub fn dataplane_config(&self, cookie_key: Vec<u8>) -> weir_proxy::DataPlaneConfig {
        let ms = std::time::Duration::from_millis;
        let d = &self.dataplane;
        weir_proxy::DataPlaneConfig {
            drain: std::time::Duration::from_secs(d.drain_s),
            connect_timeout: ms(d.connect_timeout_ms),
            udp_max_flows: d.udp_max_flows,
            splice: d.splice,
            response_header_timeout: ms(d.response_header_timeout_ms),
            upstream_keepalive: ms(d.upstream_keepalive_ms),
            access_log: d.access_log,
            cookie_key,
        }
    }

    pub fn metrics_settings(&self) -> weir_metrics::Settings {
        let m = &self.metrics;
        weir_metrics::Settings {
            interval: std::time::Duration::from_secs(m.interval_s),
            retention: weir_metrics::history::Retention {
                raw_s: (m.raw_retention_h * 3600) as i64,
                rollup_s: (m.retention_days * 86_400) as i64,
            },
        }
    }

    pub fn api_config(&self) -> weir_api::ApiConfig {
        weir_api::ApiConfig {
            eip_pool: self.eip_pool.clone(),
            reserved_ports: self.reserved_ports.clone(),
            metrics_token: self.metrics_token.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_unknown_keys() {
        let c: Config = toml::from_str("eip_pool = [\"10.9.0.0/24\"]\nreserved_ports = [22]\n").unwrap();
        assert_eq!(c.eip_pool[0].to_string(), "10.9.0.0/24");
        assert_eq!(c.reserved_ports, vec![22]);
        assert_eq!(c.api_listen.port(), 9080);
        assert!(toml::from_str::<Config>("eip_pol = []").is_err());
        let c: Config = toml::from_str("[store]\nbackend = \"embedded\"\n").unwrap();
        assert!(matches!(c.store, StoreConfig::Embedded));
    }
}
