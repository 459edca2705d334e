//! rustls server configurations for https VServers.
//!
//! One immutable [`ServerConfig`] per VServer TLS setting, built when a
//! snapshot is compiled and shared as an `Arc`: a handshake reads the one
//! its listener's snapshot holds, so a certificate or mode change applies to
//! the next handshake and connections already up keep theirs.
//!
//! Resumption state (the ticket key and the TLS 1.2 session cache) belongs
//! to one configuration: a session can only resume on the VServer and
//! setting that authenticated it. Shared keys would let a session from a
//! `one_way` VServer (or from before a switch to `two_way`) resume where a
//! client certificate is required.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// TLS 1.2 sessions remembered per configuration for id-based resumption.
const SESSION_CACHE: usize = 1024;

/// Why a configuration could not be built (corrupt stored material).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// The crypto every configuration uses: aws-lc-rs with its default suites,
/// all AEAD with forward secrecy (TLS 1.3: AES-GCM, ChaCha20-Poly1305;
/// TLS 1.2: ECDHE-ECDSA/RSA with AES-GCM or ChaCha20-Poly1305; no CBC, no
/// RSA key exchange), a superset-free match of Mozilla's "intermediate".
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// A server certificate chain and key, as stored.
pub struct ServerCertMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// What one https VServer presents and requires.
pub struct Settings {
    /// Presented when no other certificate's names cover the SNI.
    pub default: ServerCertMaterial,
    /// Chosen by SNI (exact name, then wildcard).
    pub extra: Vec<ServerCertMaterial>,
    /// `two_way`: client certificates must chain to one of these.
    pub client_cas: Option<Vec<CertificateDer<'static>>>,
}

/// Builds the configuration for `settings`.
pub fn config(settings: Settings) -> Result<Arc<ServerConfig>, BuildError> {
    let provider = provider();
    let resolver = Resolver::new(&provider, settings.default, settings.extra)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| BuildError(e.to_string()))?;
    let builder = match settings.client_cas {
        Some(cas) => {
            let mut roots = RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca)
                    .map_err(|e| BuildError(format!("client CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| BuildError(format!("client CA certificates: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(resolver));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Tickets with a rotating key (a new key every 6 hours, the previous
    // one still accepted); without randomness for a key, session ids only.
    if let Ok(t) = rustls::crypto::aws_lc_rs::Ticketer::new() {
        cfg.ticketer = t;
    }
    cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
    Ok(Arc::new(cfg))
}

/// SNI → certificate: exact name, then the wildcard one label up, else the
/// default. Names come from each leaf's DNS subject alternative names (its
/// common name when it has none), so a certificate is only ever chosen for
/// names it covers. When two certificates name the same, the first given
/// (the default, then extras in order) wins.
#[derive(Debug)]
struct Resolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By the suffix after `*.` (`*.example.com` → `example.com`).
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl Resolver {
    fn new(
        provider: &CryptoProvider,
        default: ServerCertMaterial,
        extra: Vec<ServerCertMaterial>,
    ) -> Result<Resolver, BuildError> {
        let mut r = Resolver {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default: certified(provider, default)?,
        };
        let default = r.default.clone();
        r.add(default)?;
        for m in extra {
            let ck = certified(provider, m)?;
            r.add(ck)?;
        }
        Ok(r)
    }

    fn add(&mut self, ck: Arc<CertifiedKey>) -> Result<(), BuildError> {
        let leaf = ck
            .cert
            .first()
            .ok_or_else(|| BuildError("empty certificate chain".into()))?;
        for name in dns_names(leaf)? {
            match name.strip_prefix("*.") {
                Some(suffix) => self.wildcard.entry(suffix.to_string()),
                None => self.exact.entry(name),
            }
            .or_insert_with(|| ck.clone());
        }
        Ok(())
    }

    fn pick(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni else {
            return self.default.clone();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(ck) = self.exact.get(&name) {
            return ck.clone();
        }
        if let Some((_, parent)) = name.split_once('.')
            && let Some(ck) = self.wildcard.get(parent)
        {
            return ck.clone();
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name()))
    }
}

fn certified(provider: &CryptoProvider, m: ServerCertMaterial) -> Result<Arc<CertifiedKey>, BuildError> {
    let key = provider
        .key_provider
        .load_private_key(m.key)
        .map_err(|e| BuildError(format!("private key: {e}")))?;
    let ck = CertifiedKey::new(m.chain, key);
    ck.keys_match()
        .map_err(|e| BuildError(format!("private key does not match the certificate: {e}")))?;
    Ok(Arc::new(ck))
}

/// The DNS names a leaf certificate covers, lower-cased.
pub fn dns_names(leaf: &CertificateDer<'_>) -> Result<Vec<String>, BuildError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).map_err(|e| BuildError(format!("certificate: {e}")))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                names.push(s.to_ascii_lowercase());
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn material(names: &[&str]) -> (ServerCertMaterial, CertificateDer<'static>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().clone();
        (
            ServerCertMaterial {
                chain: vec![der.clone()],
                key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            },
            der,
        )
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_default() {
        let (d, d_der) = material(&["default.example"]);
        let (w, w_der) = material(&["*.example.com"]);
        let (e, e_der) = material(&["api.example.com"]);
        let r = Resolver::new(&provider(), d, vec![w, e]).unwrap();
        let leaf = |sni: Option<&str>| r.pick(sni).cert[0].clone();
        assert_eq!(leaf(Some("api.example.com")), e_der);
        assert_eq!(leaf(Some("API.Example.COM.")), e_der);
        assert_eq!(leaf(Some("www.example.com")), w_der);
        // A wildcard covers one label only.
        assert_eq!(leaf(Some("a.b.example.com")), d_der);
        assert_eq!(leaf(Some("example.com")), d_der);
        assert_eq!(leaf(Some("default.example")), d_der);
        assert_eq!(leaf(None), d_der);
    }

    #[test]
    fn a_key_that_is_not_the_leafs_is_refused() {
        let (a, _) = material(&["a.example"]);
        let (b, _) = material(&["b.example"]);
        let mixed = ServerCertMaterial {
            chain: a.chain,
            key: b.key,
        };
        let err = config(Settings {
            default: mixed,
            extra: vec![],
            client_cas: None,
        })
        .unwrap_err();
        assert!(err.0.contains("does not match"), "{err}");
    }
}
