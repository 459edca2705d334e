//! Backends (service nodes): an instance's IP (or a bare address in the
//! LB's VPC) and port, with a weight and an enabled flag.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::network::{Instance, Vpc};
use crate::{Error, Kind, Resource, Result, validate};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Backend {
    pub id: String,
    pub lb_id: String,
    pub vserver_id: String,
    pub instance_id: Option<String>,
    #[schema(value_type = String, example = "10.0.1.10")]
    pub address: Ipv4Addr,
    pub port: u16,
    pub weight: u8,
    pub enabled: bool,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Resource for Backend {
    const KIND: Kind = Kind::Backend;
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> &str {
        &self.owner_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.vserver_id)
    }
    fn search_text(&self) -> String {
        format!(
            "{} {} {}",
            self.id,
            self.address,
            self.instance_id.as_deref().unwrap_or("")
        )
        .to_lowercase()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackendStatus {
    Valid,
    Invalid,
    Checking,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LastCheck {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackendView {
    #[serde(flatten)]
    pub backend: Backend,
    pub status: BackendStatus,
    pub last_check: Option<LastCheck>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendCreate {
    pub instance_id: Option<String>,
    pub address: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: i64,
    #[schema(minimum = 1, maximum = 100)]
    pub weight: Option<i64>,
    pub enabled: Option<bool>,
}

/// The field-level result of a backend create.
pub struct BackendBasics {
    pub port: u16,
    pub weight: u8,
    pub enabled: bool,
}

pub fn weight(v: i64) -> Result<u8> {
    validate::range("weight", v, 1, 100).map(|w| w as u8)
}

impl BackendCreate {
    pub fn validate(&self) -> Result<BackendBasics> {
        match (&self.instance_id, &self.address) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "address",
                    "give either instance_id or address, not both",
                ));
            }
            (None, None) => {
                return Err(Error::new(
                    crate::ErrorKind::Invalid,
                    "missing_field",
                    "instance_id or address is required",
                )
                .at("instance_id"));
            }
            _ => {}
        }
        Ok(BackendBasics {
            port: validate::port("port", self.port)?,
            weight: weight(self.weight.unwrap_or(1))?,
            enabled: self.enabled.unwrap_or(true),
        })
    }

    /// The backend's address: the instance's IP (the instance must be in the
    /// LB's VPC) or the bare address (inside the VPC's CIDR).
    pub fn resolve_address(&self, vpc: &Vpc, instance: Option<&Instance>) -> Result<Ipv4Addr> {
        if let Some(inst) = instance {
            if inst.vpc_id != vpc.id {
                return Err(Error::invalid(
                    "instance_id",
                    format!(
                        "instance {} is in VPC {}, not in the load balancer's VPC {}",
                        inst.id, inst.vpc_id, vpc.id
                    ),
                ));
            }
            return Ok(inst.private_ip);
        }
        let raw = self.address.as_deref().unwrap_or_default();
        let ip = validate::ipv4("address", raw)?;
        if !vpc.cidr.contains(&ip) {
            return Err(Error::invalid(
                "address",
                format!("{ip} is not inside the load balancer's VPC {} ({})", vpc.id, vpc.cidr),
            ));
        }
        Ok(ip)
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendPatch {
    pub port: Option<i64>,
    pub weight: Option<i64>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchAction {
    Enable,
    Disable,
    Delete,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendBatch {
    pub action: BatchAction,
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BackendBatchResult {
    pub done: Vec<String>,
    pub failed: Vec<crate::lb::BatchFailure>,
}
