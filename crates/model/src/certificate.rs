//! Certificates: server bundles (chain + private key) for https VServers and
//! client CA bundles for mutual TLS.
//!
//! Certificates are immutable once uploaded: rotating one means uploading
//! the new one and pointing the VServer at it, so a certificate id always
//! names the same bytes (the data plane caches TLS configurations by id).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::resource::{Kind, Resource};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertType {
    /// A certificate chain and its private key, presented by https VServers.
    Server,
    /// CA certificate(s) that sign acceptable client certificates (two_way).
    Client,
}

impl CertType {
    pub fn as_str(self) -> &'static str {
        match self {
            CertType::Server => "server",
            CertType::Client => "client",
        }
    }
}

/// What an uploaded certificate says about itself (of the leaf for a server
/// bundle, of the first CA for a client bundle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CertMeta {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub fingerprint_sha256: String,
    pub serial: String,
}

/// The stored certificate, private key included. Never serialized to an
/// API response (that is [`CertificateView`]) and never `Debug`-printed
/// with its key.
#[derive(Clone, Serialize, Deserialize)]
pub struct Certificate {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub cert_type: CertType,
    #[serde(default)]
    pub comment: String,
    #[serde(flatten)]
    pub meta: CertMeta,
    /// Canonical PEM: the chain, leaf first (server) or the CA(s) (client).
    pub certificate_pem: String,
    /// Canonical PEM of the private key (server certificates only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_pem: Option<String>,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("type", &self.cert_type)
            .field("meta", &self.meta)
            .field("private_key_pem", &self.private_key_pem.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Resource for Certificate {
    const KIND: Kind = Kind::Certificate;
    fn id(&self) -> &str {
        &self.id
    }
    fn owner(&self) -> &str {
        &self.owner_id
    }
    fn search_text(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.name,
            self.id,
            self.comment,
            self.meta.subject,
            self.meta.sans.join(" ")
        )
        .to_lowercase()
    }
}

/// A certificate as the API shows it: metadata and bindings, never the key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CertificateView {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub cert_type: CertType,
    pub comment: String,
    #[serde(flatten)]
    pub meta: CertMeta,
    /// The certificate PEM (public material only).
    pub certificate: String,
    /// VServers whose `tls` names this certificate.
    pub bound_vservers: Vec<String>,
    pub owner_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl CertificateView {
    pub fn new(c: Certificate, bound_vservers: Vec<String>) -> Self {
        CertificateView {
            id: c.id,
            name: c.name,
            cert_type: c.cert_type,
            comment: c.comment,
            meta: c.meta,
            certificate: c.certificate_pem,
            bound_vservers,
            owner_id: c.owner_id,
            created_at: c.created_at,
        }
    }
}

/// `POST /v1/certificates` as JSON (the multipart form carries the same
/// fields, `certificate` and `private_key` as files or text).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateCreate {
    #[serde(rename = "type")]
    pub cert_type: CertType,
    pub name: String,
    pub certificate: String,
    pub private_key: Option<String>,
    pub comment: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_key() {
        let c = Certificate {
            id: "cert-1".into(),
            name: "n".into(),
            cert_type: CertType::Server,
            comment: String::new(),
            meta: CertMeta {
                subject: "CN=a".into(),
                issuer: "CN=b".into(),
                sans: vec![],
                not_before: OffsetDateTime::UNIX_EPOCH,
                not_after: OffsetDateTime::UNIX_EPOCH,
                fingerprint_sha256: String::new(),
                serial: String::new(),
            },
            certificate_pem: String::new(),
            private_key_pem: Some("-----BEGIN PRIVATE KEY-----SECRET".into()),
            owner_id: "acc".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let d = format!("{c:?}");
        assert!(!d.contains("SECRET"), "{d}");
        assert!(d.contains("<redacted>"));
    }
}
