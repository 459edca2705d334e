//! `weir vserver …`: listeners of a load balancer.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use super::{ListArgs, changes};
use crate::body::{Body, tri};
use crate::client::{CliError, Client};
use crate::fields::FieldMap;
use crate::output::{Column, Printer, col};

pub const FIELDS: FieldMap = &[
    ("lb_id", "--lb"),
    ("protocol", "--protocol"),
    ("port", "--port"),
    ("algorithm", "--algorithm"),
    ("persistence", "--persistence"),
    ("persistence.mode", "--persistence"),
    ("persistence.key", "--persistence-key"),
    ("idle_timeout_s", "--idle-timeout"),
    ("health_check", "--health-*"),
    ("health_check.type", "--health-type"),
    ("health_check.path", "--health-path"),
    ("health_check.domain", "--health-domain"),
    ("health_check.interval_s", "--health-interval"),
    ("health_check.timeout_s", "--health-timeout"),
    ("health_check.healthy_threshold", "--healthy-threshold"),
    ("health_check.unhealthy_threshold", "--unhealthy-threshold"),
    ("proxy_protocol", "--proxy-protocol"),
    (
        "forward_headers",
        "--x-forwarded-for/--x-real-ip/--x-forwarded-proto/--forward-host",
    ),
    (
        "forward_headers.x_forwarded_for",
        "--x-forwarded-for/--no-x-forwarded-for",
    ),
    ("forward_headers.x_real_ip", "--x-real-ip/--no-x-real-ip"),
    (
        "forward_headers.x_forwarded_proto",
        "--x-forwarded-proto/--no-x-forwarded-proto",
    ),
    ("forward_headers.host", "--forward-host"),
    ("tls", "--tls-mode/--server-cert/--client-cert/--extra-cert"),
    ("tls.mode", "--tls-mode"),
    ("tls.server_certificate_id", "--server-cert"),
    ("tls.client_certificate_id", "--client-cert"),
    ("tls.extra_certificate_ids", "--extra-cert"),
];

const COLUMNS: &[Column] = &[
    col("ID", "id"),
    col("PROTOCOL", "protocol"),
    col("PORT", "port"),
    col("ALGORITHM", "algorithm"),
    col("PERSISTENCE", "persistence.mode"),
    col("STATUS", "status"),
    col("HEALTH", "health"),
];

const ORDER: &[&str] = &[
    "id",
    "lb_id",
    "protocol",
    "port",
    "status",
    "health",
    "algorithm",
    "persistence",
    "idle_timeout_s",
    "health_check",
    "proxy_protocol",
    "forward_headers",
    "tls",
    "alarm_template_id",
    "created_at",
];

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum VserverCmd {
    /// Add a listener to a load balancer
    Create(VsCreate),
    /// List the VServers of a load balancer
    List(VsList),
    /// Show one VServer
    Show(VsId),
    /// Change a VServer (anything but protocol and port)
    Update(VsUpdate),
    /// Delete a VServer (it must have no backends)
    Delete(VsId),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    Http,
    Https,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum Algorithm {
    WeightedRoundRobin,
    LeastConnections,
    SourceIp,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum PersistenceMode {
    Off,
    SourceIp,
    InsertCookie,
    CustomCookie,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum HealthType {
    Port,
    Http,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum ProxyProtocol {
    Off,
    V1,
    V2,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum TlsMode {
    OneWay,
    TwoWay,
}

/// `--lb` of every VServer command.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct LbRef {
    /// Load balancer ID
    #[arg(long = "lb", value_name = "LB_ID")]
    pub lb_id: String,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct VsList {
    #[command(flatten)]
    pub lb: LbRef,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct VsId {
    #[command(flatten)]
    pub lb: LbRef,
    /// VServer ID
    pub id: String,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct VsCreate {
    #[command(flatten)]
    pub lb: LbRef,
    /// Listener protocol
    #[arg(long, value_enum)]
    pub protocol: Protocol,
    /// Listener port on the LB address (1–65535, not reserved)
    #[arg(long)]
    pub port: u16,
    #[command(flatten)]
    pub settings: VsSettings,
}

#[derive(Args, Debug, Clone, PartialEq)]
pub struct VsUpdate {
    #[command(flatten)]
    pub lb: LbRef,
    /// VServer ID
    pub id: String,
    #[command(flatten)]
    pub settings: VsSettings,
}

/// Everything of a VServer that create and update share; only given flags are sent.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct VsSettings {
    /// Scheduling algorithm (server default: weighted_round_robin)
    #[arg(long, value_enum)]
    pub algorithm: Option<Algorithm>,
    /// Session persistence mode
    #[arg(
        long = "persistence",
        visible_alias = "persistence-mode",
        value_enum,
        value_name = "MODE"
    )]
    pub persistence_mode: Option<PersistenceMode>,
    /// Cookie name for custom_cookie persistence
    #[arg(long, value_name = "KEY")]
    pub persistence_key: Option<String>,
    /// Idle timeout in seconds (1–86400; server default 60)
    #[arg(long = "idle-timeout", value_name = "SECONDS")]
    pub idle_timeout_s: Option<u32>,
    /// Health check type
    #[arg(long, value_enum)]
    pub health_type: Option<HealthType>,
    /// Health check path for http checks (starts with /)
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,
    /// Host header of http health checks
    #[arg(long, value_name = "HOST")]
    pub health_domain: Option<String>,
    /// Seconds between health checks
    #[arg(long = "health-interval", value_name = "SECONDS")]
    pub health_interval_s: Option<u32>,
    /// Seconds before a health check times out
    #[arg(long = "health-timeout", value_name = "SECONDS")]
    pub health_timeout_s: Option<u32>,
    /// Consecutive successes to mark a backend healthy
    #[arg(long, value_name = "N")]
    pub healthy_threshold: Option<u32>,
    /// Consecutive failures to mark a backend unhealthy
    #[arg(long, value_name = "N")]
    pub unhealthy_threshold: Option<u32>,
    /// PROXY protocol toward backends (tcp only)
    #[arg(long, value_enum)]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Add X-Forwarded-For (http/https)
    #[arg(long)]
    pub x_forwarded_for: bool,
    /// Do not add X-Forwarded-For
    #[arg(long, conflicts_with = "x_forwarded_for")]
    pub no_x_forwarded_for: bool,
    /// Add X-Real-IP (http/https)
    #[arg(long)]
    pub x_real_ip: bool,
    /// Do not add X-Real-IP
    #[arg(long, conflicts_with = "x_real_ip")]
    pub no_x_real_ip: bool,
    /// Add X-Forwarded-Proto (http/https)
    #[arg(long)]
    pub x_forwarded_proto: bool,
    /// Do not add X-Forwarded-Proto
    #[arg(long, conflicts_with = "x_forwarded_proto")]
    pub no_x_forwarded_proto: bool,
    /// Host header to send to backends (http/https)
    #[arg(long, value_name = "HOST")]
    pub forward_host: Option<String>,
    /// Pass the client's Host header through (sends host: null)
    #[arg(long, conflicts_with = "forward_host")]
    pub no_forward_host: bool,
    /// TLS mode (https only)
    #[arg(long, value_enum)]
    pub tls_mode: Option<TlsMode>,
    /// Server certificate ID (https)
    #[arg(long = "server-cert", value_name = "CERT_ID")]
    pub server_certificate_id: Option<String>,
    /// Client CA certificate ID (two_way TLS)
    #[arg(long = "client-cert", value_name = "CERT_ID")]
    pub client_certificate_id: Option<String>,
    /// Extra server certificate chosen by SNI; repeatable or comma-separated (replaces the list)
    #[arg(long = "extra-cert", value_name = "CERT_ID", value_delimiter = ',')]
    pub extra_certificate_ids: Vec<String>,
    /// Alarm template to bind
    #[arg(long = "alarm-template", value_name = "ALARM_ID")]
    pub alarm_template_id: Option<String>,
}

impl VsSettings {
    pub fn apply(&self, body: Body) -> Body {
        let persistence = Body::new()
            .opt_enum("mode", self.persistence_mode)
            .opt("key", self.persistence_key.as_deref());
        let health = Body::new()
            .opt_enum("type", self.health_type)
            .opt("path", self.health_path.as_deref())
            .opt("domain", self.health_domain.as_deref())
            .opt("interval_s", self.health_interval_s)
            .opt("timeout_s", self.health_timeout_s)
            .opt("healthy_threshold", self.healthy_threshold)
            .opt("unhealthy_threshold", self.unhealthy_threshold);
        let mut headers = Body::new()
            .opt("x_forwarded_for", tri(self.x_forwarded_for, self.no_x_forwarded_for))
            .opt("x_real_ip", tri(self.x_real_ip, self.no_x_real_ip))
            .opt(
                "x_forwarded_proto",
                tri(self.x_forwarded_proto, self.no_x_forwarded_proto),
            )
            .opt("host", self.forward_host.as_deref());
        if self.no_forward_host {
            headers = headers.set("host", Value::Null);
        }
        let tls = Body::new()
            .opt_enum("mode", self.tls_mode)
            .opt("server_certificate_id", self.server_certificate_id.as_deref())
            .opt("client_certificate_id", self.client_certificate_id.as_deref())
            .list("extra_certificate_ids", &self.extra_certificate_ids);
        body.opt_enum("algorithm", self.algorithm)
            .nested("persistence", persistence)
            .opt("idle_timeout_s", self.idle_timeout_s)
            .nested("health_check", health)
            .opt_enum("proxy_protocol", self.proxy_protocol)
            .nested("forward_headers", headers)
            .nested("tls", tls)
            .opt("alarm_template_id", self.alarm_template_id.as_deref())
    }
}

impl VsCreate {
    pub fn body(&self) -> Value {
        let base = Body::new()
            .opt_enum("protocol", Some(self.protocol))
            .set("port", self.port);
        self.settings.apply(base).build()
    }
}

impl VsUpdate {
    pub fn body(&self) -> Result<Value, CliError> {
        changes(self.settings.apply(Body::new()), "the VServer flags (see --help)")
    }
}

pub async fn run(c: &Client, p: &Printer, cmd: VserverCmd) -> Result<i32, CliError> {
    const LBS: &str = "load-balancers";
    const VS: &str = "vservers";
    match cmd {
        VserverCmd::Create(a) => p.object(&c.post(&[LBS, &a.lb.lb_id, VS], &a.body()).await?, ORDER),
        VserverCmd::List(a) => p.list(&c.get(&[LBS, &a.lb.lb_id, VS], &a.list.query()).await?, COLUMNS),
        VserverCmd::Show(a) => p.object(&c.get(&[LBS, &a.lb.lb_id, VS, &a.id], &[]).await?, ORDER),
        VserverCmd::Update(a) => {
            let body = a.body()?;
            p.object(&c.patch(&[LBS, &a.lb.lb_id, VS, &a.id], &body).await?, ORDER);
        }
        VserverCmd::Delete(a) => {
            c.delete(&[LBS, &a.lb.lb_id, VS, &a.id]).await?;
            p.note(&format!("deleted {}", a.id));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use crate::commands::test_support::{assert_flags_exist, parse, parse_err};
    use serde_json::json;

    fn vs(line: &str) -> VserverCmd {
        match parse(line) {
            Command::Vserver(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn minimal_create() {
        let VserverCmd::Create(a) = vs("vserver create --lb lb-1 --protocol tcp --port 80") else {
            panic!()
        };
        assert_eq!(a.lb.lb_id, "lb-1");
        assert_eq!(a.body(), json!({"protocol": "tcp", "port": 80}));
    }

    #[test]
    fn full_create_nests_flags() {
        let VserverCmd::Create(a) = vs("vserver create --lb lb-1 --protocol https --port 443 \
             --algorithm least_connections --persistence custom_cookie --persistence-key SID \
             --idle-timeout 30 --health-type http --health-path /healthz --health-domain a.example \
             --health-interval 5 --health-timeout 2 --healthy-threshold 2 --unhealthy-threshold 3 \
             --x-forwarded-for --no-x-real-ip --forward-host b.example \
             --tls-mode two_way --server-cert cert-s --client-cert cert-c --extra-cert cert-1,cert-2 --extra-cert cert-3 \
             --alarm-template alarm-1")
        else {
            panic!()
        };
        assert_eq!(
            a.body(),
            json!({
                "protocol": "https", "port": 443, "algorithm": "least_connections",
                "persistence": {"mode": "custom_cookie", "key": "SID"},
                "idle_timeout_s": 30,
                "health_check": {"type": "http", "path": "/healthz", "domain": "a.example", "interval_s": 5,
                                 "timeout_s": 2, "healthy_threshold": 2, "unhealthy_threshold": 3},
                "forward_headers": {"x_forwarded_for": true, "x_real_ip": false, "host": "b.example"},
                "tls": {"mode": "two_way", "server_certificate_id": "cert-s", "client_certificate_id": "cert-c",
                        "extra_certificate_ids": ["cert-1", "cert-2", "cert-3"]},
                "alarm_template_id": "alarm-1"
            })
        );
    }

    #[test]
    fn update_is_partial_and_can_null_host() {
        let VserverCmd::Update(a) = vs("vserver update --lb lb-1 vs-1 --health-interval 10 --no-forward-host") else {
            panic!()
        };
        assert_eq!(a.id, "vs-1");
        assert_eq!(
            a.body(),
            Ok(json!({"health_check": {"interval_s": 10}, "forward_headers": {"host": null}}))
        );
        let VserverCmd::Update(a) = vs("vserver update --lb lb-1 vs-1 --proxy-protocol v2") else {
            panic!()
        };
        assert_eq!(a.body(), Ok(json!({"proxy_protocol": "v2"})));
        let VserverCmd::Update(a) = vs("vserver update --lb lb-1 vs-1") else {
            panic!()
        };
        assert!(a.body().is_err());
    }

    #[test]
    fn usage_errors() {
        parse_err("vserver update --lb lb-1 vs-1 --port 81");
        parse_err("vserver create --lb lb-1 --protocol sctp --port 80");
        parse_err("vserver create --lb lb-1 --protocol tcp --port 70000");
        parse_err("vserver create --lb lb-1 --protocol http --port 80 --x-real-ip --no-x-real-ip");
        parse_err("vserver list");
    }

    #[test]
    fn field_flags_exist() {
        assert_flags_exist("vserver", FIELDS);
    }
}
