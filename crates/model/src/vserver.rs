//! VServers (listeners): protocol + port on an LB address, with scheduling,
//! persistence, timeouts, health check, PROXY protocol, headers and TLS.
//!
//! A create body is validated into a fully resolved [`VServer`] (defaults
//! filled in). A PATCH is a JSON merge patch (RFC 7396) applied to the
//! resolved VServer's spec and validated again by the same code, so an update
//! can never produce a VServer that a create would refuse.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{Error, ErrorKind, Kind, Resource, Result, validate};

/// Ports reserved on every LB address under every protocol (configurable).
pub const DEFAULT_RESERVED_PORTS: &[u16] = &[323, 9102, 9103, 9104, 9105, 60909, 60910];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    Http,
    Https,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Http => "http",
            Protocol::Https => "https",
        }
    }

    /// The transport the listener binds: tcp, http and https share TCP.
    pub fn transport(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            _ => "tcp",
        }
    }

    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Https)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    #[default]
    WeightedRoundRobin,
    LeastConnections,
    SourceIp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PersistenceMode {
    #[default]
    Off,
    SourceIp,
    InsertCookie,
    CustomCookie,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Persistence {
    pub mode: PersistenceMode,
    /// The cookie name for `custom_cookie`: `[A-Za-z0-9_]+`.
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckType {
    #[default]
    Port,
    Http,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub check_type: HealthCheckType,
    pub path: String,
    pub domain: Option<String>,
    pub interval_s: u32,
    pub timeout_s: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckInput {
    #[serde(rename = "type")]
    pub check_type: Option<HealthCheckType>,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub interval_s: Option<i64>,
    pub timeout_s: Option<i64>,
    pub healthy_threshold: Option<i64>,
    pub unhealthy_threshold: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProxyProtocol {
    #[default]
    Off,
    V1,
    V2,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ForwardHeaders {
    pub x_forwarded_for: bool,
    pub x_real_ip: bool,
    pub x_forwarded_proto: bool,
    /// A value to set as `Host` toward backends; `null` keeps the client's.
    pub host: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardHeadersInput {
    pub x_forwarded_for: Option<bool>,
    pub x_real_ip: Option<bool>,
    pub x_forwarded_proto: Option<bool>,
    pub host: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    OneWay,
    TwoWay,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub mode: TlsMode,
    #[serde(default)]
    pub server_certificate_id: Option<String>,
    #[serde(default)]
    pub client_certificate_id: Option<String>,
    #[serde(default)]
    pub extra_certificate_ids: Vec<String>,
}

impl Tls {
    /// Every certificate id it references, with the field naming it.
    pub fn certificate_refs(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        if let Some(id) = &self.server_certificate_id {
            out.push(("tls.server_certificate_id".to_string(), id.as_str()));
        }
        if let Some(id) = &self.client_certificate_id {
            out.push(("tls.client_certificate_id".to_string(), id.as_str()));
        }
        for (i, id) in self.extra_certificate_ids.iter().enumerate() {
            out.push((format!("tls.extra_certificate_ids[{i}]"), id.as_str()));
        }
        out
    }
}

/// A stored VServer, fully resolved.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VServer {
    pub id: String,
    pub lb_id: String,
    pub protocol: Protocol,
    pub port: u16,
    pub algorithm: Algorithm,
    pub persistence: Persistence,
    pub idle_timeout_s: u32,
    pub health_check: HealthCheck,
    pub proxy_protocol: ProxyProtocol,
    /// http/https only.
    pub forward_headers: Option<ForwardHeaders>,
    /// https only.
    pub tls: Option<Tls>,
    pub alarm_template_id: Option<String>,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Revisions that created and last changed it; it is `running` once the
    /// data plane has applied the latter.
    pub created_revision: u64,
    pub updated_revision: u64,
}

impl Resource for VServer {
    const KIND: Kind = Kind::VServer;
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> &str {
        &self.owner_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.lb_id)
    }
    fn search_text(&self) -> String {
        format!("{} {} {}", self.id, self.protocol.as_str(), self.port)
    }
}

impl VServer {
    /// The spec as a create body would give it: the base a PATCH merges into.
    pub fn spec_json(&self) -> Value {
        json!({
            "protocol": self.protocol,
            "port": self.port,
            "algorithm": self.algorithm,
            "persistence": self.persistence,
            "idle_timeout_s": self.idle_timeout_s,
            "health_check": self.health_check,
            "proxy_protocol": self.proxy_protocol,
            "forward_headers": self.forward_headers,
            "tls": self.tls,
            "alarm_template_id": self.alarm_template_id,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VServerStatus {
    Creating,
    Running,
    Updating,
    /// The listener could not be bound; `status_message` has the OS error.
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VServerHealth {
    AllHealthy,
    PartiallyHealthy,
    AllUnhealthy,
}

impl VServerHealth {
    /// Over the enabled backends: all valid → green, some → yellow, none (or
    /// no enabled backend at all) → red.
    pub fn from_counts(valid: usize, enabled: usize) -> Self {
        if enabled == 0 || valid == 0 {
            VServerHealth::AllUnhealthy
        } else if valid == enabled {
            VServerHealth::AllHealthy
        } else {
            VServerHealth::PartiallyHealthy
        }
    }
}

/// A VServer as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VServerView {
    #[serde(flatten)]
    pub vserver: VServer,
    pub status: VServerStatus,
    /// Why the status is `error` (e.g. the bind's OS error).
    pub status_message: Option<String>,
    pub health: VServerHealth,
    pub backend_count: u64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VServerCreate {
    pub protocol: Protocol,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: i64,
    pub algorithm: Option<Algorithm>,
    pub persistence: Option<Persistence>,
    #[schema(minimum = 1, maximum = 86400)]
    pub idle_timeout_s: Option<i64>,
    pub health_check: Option<HealthCheckInput>,
    pub proxy_protocol: Option<ProxyProtocol>,
    pub forward_headers: Option<ForwardHeadersInput>,
    pub tls: Option<Tls>,
    pub alarm_template_id: Option<String>,
}

/// PATCH body: a JSON merge patch over the VServer's spec. `protocol` and
/// `port` may only repeat their current values.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VServerPatch {
    pub protocol: Option<Protocol>,
    pub port: Option<i64>,
    pub algorithm: Option<Algorithm>,
    pub persistence: Option<Value>,
    pub idle_timeout_s: Option<i64>,
    pub health_check: Option<Value>,
    pub proxy_protocol: Option<ProxyProtocol>,
    pub forward_headers: Option<Value>,
    pub tls: Option<Value>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub alarm_template_id: Option<Option<String>>,
}

/// The resolved spec of a VServer, before ids and revisions are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VServerSpec {
    pub protocol: Protocol,
    pub port: u16,
    pub algorithm: Algorithm,
    pub persistence: Persistence,
    pub idle_timeout_s: u32,
    pub health_check: HealthCheck,
    pub proxy_protocol: ProxyProtocol,
    pub forward_headers: Option<ForwardHeaders>,
    pub tls: Option<Tls>,
    pub alarm_template_id: Option<String>,
}

pub const HEALTH_PATH_MAX: usize = 200;

impl VServerCreate {
    /// Every field rule of the spec that needs no other resource.
    pub fn validate(&self, reserved_ports: &[u16]) -> Result<VServerSpec> {
        let protocol = self.protocol;
        let port = validate::port("port", self.port)?;
        if reserved_ports.contains(&port) {
            return Err(Error::new(
                ErrorKind::Invalid,
                "reserved_port",
                format!("port {port} is reserved on every load balancer address (reserved: {reserved_ports:?})"),
            )
            .at("port"));
        }

        let algorithm = self.algorithm.unwrap_or_default();
        if algorithm == Algorithm::LeastConnections && protocol == Protocol::Udp {
            return Err(Error::not_allowed(
                "algorithm",
                "least_connections is not available for udp VServers",
            ));
        }

        let persistence = self.persistence.clone().unwrap_or_default();
        match persistence.mode {
            PersistenceMode::SourceIp if protocol != Protocol::Udp => {
                return Err(Error::not_allowed(
                    "persistence.mode",
                    "source_ip persistence is for udp VServers; use algorithm source_ip for tcp",
                ));
            }
            PersistenceMode::InsertCookie | PersistenceMode::CustomCookie if !protocol.is_http() => {
                return Err(Error::not_allowed(
                    "persistence.mode",
                    "cookie persistence is for http and https VServers only",
                ));
            }
            _ => {}
        }
        match (&persistence.key, persistence.mode) {
            (None, PersistenceMode::CustomCookie) => return Err(Error::missing("persistence.key")),
            (Some(k), PersistenceMode::CustomCookie) => {
                if k.is_empty() || k.len() > 64 || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(Error::invalid(
                        "persistence.key",
                        "persistence.key must be 1-64 letters, digits or underscores",
                    ));
                }
            }
            (Some(_), _) => {
                return Err(Error::not_allowed(
                    "persistence.key",
                    "persistence.key applies to custom_cookie only",
                ));
            }
            (None, _) => {}
        }

        let idle_timeout_s = validate::range("idle_timeout_s", self.idle_timeout_s.unwrap_or(60), 1, 86400)? as u32;
        let health_check = health_check(self.health_check.clone().unwrap_or_default(), protocol)
            .map_err(|e| e.within("health_check"))?;

        let proxy_protocol = self.proxy_protocol.unwrap_or_default();
        if proxy_protocol != ProxyProtocol::Off && protocol != Protocol::Tcp {
            return Err(Error::not_allowed(
                "proxy_protocol",
                "the PROXY protocol applies to tcp VServers only",
            ));
        }

        let forward_headers = match (&self.forward_headers, protocol.is_http()) {
            (Some(_), false) => {
                return Err(Error::not_allowed(
                    "forward_headers",
                    "forward_headers apply to http and https VServers only",
                ));
            }
            (f, true) => {
                let f = f.clone().unwrap_or_default();
                let host = validate::nested("forward_headers", f.host.as_deref(), |h| host_value("host", h))?;
                Some(ForwardHeaders {
                    x_forwarded_for: f.x_forwarded_for.unwrap_or(true),
                    x_real_ip: f.x_real_ip.unwrap_or(true),
                    x_forwarded_proto: f.x_forwarded_proto.unwrap_or(true),
                    host,
                })
            }
            (None, false) => None,
        };

        let tls = match (&self.tls, protocol) {
            (None, Protocol::Https) => return Err(Error::missing("tls")),
            (Some(_), p) if p != Protocol::Https => {
                return Err(Error::not_allowed("tls", "tls applies to https VServers only"));
            }
            (Some(t), _) => {
                if t.server_certificate_id.is_none() {
                    return Err(Error::missing("tls.server_certificate_id"));
                }
                match (t.mode, &t.client_certificate_id) {
                    (TlsMode::TwoWay, None) => return Err(Error::missing("tls.client_certificate_id")),
                    (TlsMode::OneWay, Some(_)) => {
                        return Err(Error::not_allowed(
                            "tls.client_certificate_id",
                            "a client certificate applies to two_way mode only",
                        ));
                    }
                    _ => {}
                }
                Some(t.clone())
            }
            (None, _) => None,
        };

        Ok(VServerSpec {
            protocol,
            port,
            algorithm,
            persistence,
            idle_timeout_s,
            health_check,
            proxy_protocol,
            forward_headers,
            tls,
            alarm_template_id: self.alarm_template_id.clone(),
        })
    }
}

fn health_check(h: HealthCheckInput, protocol: Protocol) -> Result<HealthCheck> {
    let check_type = h.check_type.unwrap_or_default();
    if check_type == HealthCheckType::Http && !protocol.is_http() {
        return Err(Error::not_allowed(
            "type",
            "http health checks are for http and https VServers only",
        ));
    }
    let path = h.path.unwrap_or_else(|| "/".to_string());
    let path_ok = path.starts_with('/')
        && path.len() <= HEALTH_PATH_MAX
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/.%?#&".contains(&b));
    if !path_ok {
        return Err(Error::invalid(
            "path",
            format!(
                "path must start with / and use only letters, digits and -/.%?#& (at most {HEALTH_PATH_MAX} characters), got {path:?}"
            ),
        ));
    }
    let domain = h.domain.map(|d| validate::domain("domain", &d, false)).transpose()?;
    let interval_s = validate::range("interval_s", h.interval_s.unwrap_or(5), 1, 300)? as u32;
    let timeout_s = validate::range("timeout_s", h.timeout_s.unwrap_or(2), 1, 60)? as u32;
    if timeout_s > interval_s {
        return Err(Error::invalid(
            "timeout_s",
            format!("timeout_s ({timeout_s}) must not exceed interval_s ({interval_s})"),
        ));
    }
    let healthy_threshold = validate::range("healthy_threshold", h.healthy_threshold.unwrap_or(2), 1, 10)? as u32;
    let unhealthy_threshold = validate::range("unhealthy_threshold", h.unhealthy_threshold.unwrap_or(3), 1, 10)? as u32;
    Ok(HealthCheck {
        check_type,
        path,
        domain,
        interval_s,
        timeout_s,
        healthy_threshold,
        unhealthy_threshold,
    })
}

/// A `Host` override: a domain or address, optionally with a port.
fn host_value(field: &str, v: &str) -> Result<String> {
    let ok = !v.is_empty() && v.len() <= 255 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !ok {
        return Err(Error::invalid(
            field,
            format!("{field} must be a host name, optionally with :port, got {v:?}"),
        ));
    }
    Ok(v.to_string())
}

/// Applies a JSON merge patch (RFC 7396) to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Deserializes a field that distinguishes "absent" (`None`, with
/// `#[serde(default)]`) from "null" (`Some(None)`).
pub fn double_option<'de, T, D>(de: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(v: Value) -> Result<VServerSpec> {
        let c: VServerCreate = serde_json::from_value(v).map_err(|e| Error::invalid("body", e.to_string()))?;
        c.validate(DEFAULT_RESERVED_PORTS)
    }

    fn field(v: Value) -> String {
        create(v).unwrap_err().field.unwrap_or_default()
    }

    #[test]
    fn defaults() {
        let s = create(json!({"protocol": "http", "port": 80})).unwrap();
        assert_eq!(s.algorithm, Algorithm::WeightedRoundRobin);
        assert_eq!(s.idle_timeout_s, 60);
        assert_eq!(s.health_check.interval_s, 5);
        assert!(s.forward_headers.as_ref().unwrap().x_forwarded_for);
        let s = create(json!({"protocol": "tcp", "port": 22})).unwrap();
        assert!(s.forward_headers.is_none());
    }

    #[test]
    fn protocol_dependent_rules() {
        assert_eq!(field(json!({"protocol": "tcp", "port": 0})), "port");
        assert_eq!(field(json!({"protocol": "tcp", "port": 70000})), "port");
        assert_eq!(field(json!({"protocol": "tcp", "port": 9102})), "port");
        assert_eq!(
            field(json!({"protocol": "udp", "port": 53, "algorithm": "least_connections"})),
            "algorithm"
        );
        assert_eq!(
            field(json!({"protocol": "tcp", "port": 1, "persistence": {"mode": "source_ip"}})),
            "persistence.mode"
        );
        assert!(create(json!({"protocol": "udp", "port": 1, "persistence": {"mode": "source_ip"}})).is_ok());
        assert_eq!(
            field(json!({"protocol": "tcp", "port": 1, "persistence": {"mode": "insert_cookie"}})),
            "persistence.mode"
        );
        assert_eq!(
            field(json!({"protocol": "http", "port": 1, "persistence": {"mode": "custom_cookie"}})),
            "persistence.key"
        );
        assert_eq!(
            field(json!({"protocol": "http", "port": 1, "persistence": {"mode": "custom_cookie", "key": "a-b"}})),
            "persistence.key"
        );
        assert!(
            create(json!({"protocol": "http", "port": 1, "persistence": {"mode": "custom_cookie", "key": "SESS_1"}}))
                .is_ok()
        );
        assert_eq!(
            field(json!({"protocol": "http", "port": 1, "persistence": {"mode": "insert_cookie", "key": "x"}})),
            "persistence.key"
        );
        assert_eq!(
            field(json!({"protocol": "tcp", "port": 1, "idle_timeout_s": 86401})),
            "idle_timeout_s"
        );
        assert_eq!(
            field(json!({"protocol": "tcp", "port": 1, "health_check": {"type": "http"}})),
            "health_check.type"
        );
        assert_eq!(
            field(json!({"protocol": "http", "port": 1, "health_check": {"type": "http", "path": "/a b"}})),
            "health_check.path"
        );
        assert_eq!(
            field(json!({"protocol": "http", "port": 1, "health_check": {"path": "data"}})),
            "health_check.path"
        );
        assert!(
            create(
                json!({"protocol": "http", "port": 1, "health_check": {"type": "http", "path": "/a-b/c.d%20?x&y#z"}})
            )
            .is_ok()
        );
        assert_eq!(
            field(json!({"protocol": "http", "port": 1, "health_check": {"timeout_s": 9, "interval_s": 5}})),
            "health_check.timeout_s"
        );
        assert_eq!(
            field(json!({"protocol": "http", "port": 1, "proxy_protocol": "v1"})),
            "proxy_protocol"
        );
        assert!(create(json!({"protocol": "tcp", "port": 1, "proxy_protocol": "v2"})).is_ok());
        assert_eq!(
            field(json!({"protocol": "tcp", "port": 1, "forward_headers": {}})),
            "forward_headers"
        );
        assert_eq!(field(json!({"protocol": "https", "port": 443})), "tls");
        assert_eq!(
            field(json!({"protocol": "https", "port": 443, "tls": {"mode": "one_way"}})),
            "tls.server_certificate_id"
        );
        assert_eq!(
            field(
                json!({"protocol": "https", "port": 443, "tls": {"mode": "two_way", "server_certificate_id": "cert-1"}})
            ),
            "tls.client_certificate_id"
        );
        assert_eq!(
            field(
                json!({"protocol": "http", "port": 80, "tls": {"mode": "one_way", "server_certificate_id": "cert-1"}})
            ),
            "tls"
        );
    }

    #[test]
    fn merge_patch_rfc7396() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut t, &json!({"b": {"c": null, "e": 4}, "f": [1]}));
        assert_eq!(t, json!({"a": 1, "b": {"d": 3, "e": 4}, "f": [1]}));
    }
}
