//! What the store needs to know about a resource to index it.

use serde::{Serialize, de::DeserializeOwned};

/// The kinds of stored resources; `as_str` is the key prefix in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Account,
    Vpc,
    Subnet,
    Eip,
    Instance,
    SecurityGroup,
    LoadBalancer,
    VServer,
    Backend,
    Rule,
    Certificate,
    AlarmTemplate,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Vpc => "vpc",
            Kind::Subnet => "subnet",
            Kind::Eip => "eip",
            Kind::Instance => "instance",
            Kind::SecurityGroup => "security_group",
            Kind::LoadBalancer => "load_balancer",
            Kind::VServer => "vserver",
            Kind::Backend => "backend",
            Kind::Rule => "rule",
            Kind::Certificate => "certificate",
            Kind::AlarmTemplate => "alarm_template",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "account" => Kind::Account,
            "vpc" => Kind::Vpc,
            "subnet" => Kind::Subnet,
            "eip" => Kind::Eip,
            "instance" => Kind::Instance,
            "security_group" => Kind::SecurityGroup,
            "load_balancer" => Kind::LoadBalancer,
            "vserver" => Kind::VServer,
            "backend" => Kind::Backend,
            "rule" => Kind::Rule,
            "certificate" => Kind::Certificate,
            "alarm_template" => Kind::AlarmTemplate,
            _ => return None,
        })
    }

    /// The human name used in messages ("load balancer lb-… not found").
    pub const fn human(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Vpc => "VPC",
            Kind::Subnet => "subnet",
            Kind::Eip => "EIP",
            Kind::Instance => "instance",
            Kind::SecurityGroup => "security group",
            Kind::LoadBalancer => "load balancer",
            Kind::VServer => "VServer",
            Kind::Backend => "backend",
            Kind::Rule => "forwarding rule",
            Kind::Certificate => "certificate",
            Kind::AlarmTemplate => "alarm template",
        }
    }
}

/// A stored resource: serialized as JSON, indexed by owner, parent and a
/// lower-cased search text.
pub trait Resource: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: Kind;
    fn id(&self) -> &str;
    /// The account that owns it (tenancy filter).
    fn owner(&self) -> &str;
    /// The resource it lives under, for listing children (VPC of a subnet,
    /// LB of a VServer, VServer of a backend or rule).
    fn parent(&self) -> Option<&str> {
        None
    }
    /// Text searched by `?search=`: name, id, address, comment.
    fn search_text(&self) -> String;
}
