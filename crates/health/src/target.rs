//! What to probe, how often, and how many results flip a backend.

use std::net::SocketAddr;
use std::time::Duration;

use weir_model::backend::Backend;
use weir_model::vserver::{HealthCheck, HealthCheckType, Protocol};

/// The kind of active check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connect that succeeds within the timeout.
    Tcp,
    /// A datagram on a connected UDP socket: an ICMP port-unreachable means
    /// down; a reply means up (it must start with `expect` when set); silence
    /// means up without `expect`, down with it.
    Udp { payload: Vec<u8>, expect: Option<Vec<u8>> },
    /// `GET path` over plain HTTP/1.1 with `Host: host` (the backend address
    /// when `None`); a 2xx or 3xx status line is healthy.
    Http { path: String, host: Option<String> },
}

/// One backend to probe, with its VServer's check settings. Any field that
/// differs from the running target makes the checker re-probe at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub backend_id: String,
    pub addr: SocketAddr,
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

impl Target {
    /// The target for a backend of a VServer with `protocol` and `check`:
    /// `http` checks become [`Probe::Http`]; `port` checks are TCP connects,
    /// or for UDP VServers an empty datagram with no expected reply.
    pub fn for_backend(backend: &Backend, protocol: Protocol, check: &HealthCheck) -> Target {
        let probe = match (check.check_type, protocol) {
            (HealthCheckType::Http, _) => Probe::Http {
                path: check.path.clone(),
                host: check.domain.clone(),
            },
            (HealthCheckType::Port, Protocol::Udp) => Probe::Udp {
                payload: Vec::new(),
                expect: None,
            },
            (HealthCheckType::Port, _) => Probe::Tcp,
        };
        Target {
            backend_id: backend.id.clone(),
            addr: SocketAddr::from((backend.address, backend.port)),
            probe,
            interval: Duration::from_secs(check.interval_s.into()),
            timeout: Duration::from_secs(check.timeout_s.into()),
            healthy_threshold: check.healthy_threshold,
            unhealthy_threshold: check.unhealthy_threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use time::OffsetDateTime;

    fn backend() -> Backend {
        Backend {
            id: "b-1".into(),
            lb_id: "lb-1".into(),
            vserver_id: "vs-1".into(),
            instance_id: None,
            address: Ipv4Addr::new(10, 0, 1, 10),
            port: 8080,
            weight: 1,
            enabled: true,
            owner_id: "acc-1".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn check(check_type: HealthCheckType) -> HealthCheck {
        HealthCheck {
            check_type,
            path: "/healthz".into(),
            domain: Some("app.example".into()),
            interval_s: 5,
            timeout_s: 2,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }

    #[test]
    fn maps_model_settings() {
        let t = Target::for_backend(&backend(), Protocol::Http, &check(HealthCheckType::Http));
        assert_eq!(t.backend_id, "b-1");
        assert_eq!(t.addr, "10.0.1.10:8080".parse().unwrap());
        assert_eq!(
            t.probe,
            Probe::Http {
                path: "/healthz".into(),
                host: Some("app.example".into())
            }
        );
        assert_eq!(t.interval, Duration::from_secs(5));
        assert_eq!(t.timeout, Duration::from_secs(2));
        assert_eq!((t.healthy_threshold, t.unhealthy_threshold), (2, 3));

        let t = Target::for_backend(&backend(), Protocol::Tcp, &check(HealthCheckType::Port));
        assert_eq!(t.probe, Probe::Tcp);
        let t = Target::for_backend(&backend(), Protocol::Https, &check(HealthCheckType::Port));
        assert_eq!(t.probe, Probe::Tcp);
        let t = Target::for_backend(&backend(), Protocol::Udp, &check(HealthCheckType::Port));
        assert_eq!(
            t.probe,
            Probe::Udp {
                payload: vec![],
                expect: None
            }
        );
    }
}
