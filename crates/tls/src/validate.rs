//! Validation of what tenants upload: server certificate chains with their
//! private key, and client-CA bundles for mutual TLS.
//!
//! Everything is checked when the upload happens, so that a listener never
//! fails later on data the API accepted, and every refusal says exactly what
//! is wrong (field, snake_case code, and a sentence with the fix). The data
//! plane re-reads the stored canonical PEM with [`load_server`] and
//! [`load_cas`], which only decode.
//!
//! Tools: our own strict PEM framing (`crate::pem`), x509-parser for the
//! fields, rustls-webpki's aws-lc-rs algorithms for "does certificate N+1
//! sign certificate N", and rustls itself for loading the key and matching
//! it to the leaf — so what passes here is exactly what rustls will serve.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rustls::crypto::aws_lc_rs::sign::any_supported_type;
use rustls::sign::{CertifiedKey, SigningKey};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use x509_parser::asn1_rs::{Any, Class, FromDer, Oid, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::x509::X509Name;

use crate::pem;

/// Why an upload is refused. `field` is "certificate" or "private_key";
/// `code` is one of the snake_case codes below; `message` is a human
/// sentence saying exactly what is wrong and, where useful, how to fix it.
///
/// Codes: `invalid_pem`, `invalid_certificate`, `chain_order`, `expired`,
/// `not_yet_valid`, `not_a_ca`, `invalid_key`, `encrypted_key`,
/// `unsupported_key`, `key_mismatch`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// Metadata of a certificate (for a server bundle: of the leaf; for a
/// client CA bundle: of the first CA certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// RFC 4514 order (most specific first, e.g. "CN=www.example.com, O=Example, C=US"),
    /// with ", " between RDNs; unknown attribute types as dotted OIDs.
    pub subject: String,
    pub issuer: String,
    /// DNS names as written (and IP SANs as text), in certificate order.
    /// Other SAN kinds (e-mail, URI) are left out.
    pub sans: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Lowercase hex, colon separated pairs "ab:cd:…" (SHA-256 of the DER).
    pub fingerprint_sha256: String,
    /// Lowercase hex, colon separated: the serial number's value, i.e.
    /// without the DER sign octet (as `openssl x509 -serial` and crt.sh show it).
    pub serial: String,
}

/// A validated server bundle.
pub struct ServerCert {
    pub meta: Meta,
    /// Leaf first, in the order uploaded (which was checked).
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Re-encoded canonical PEM (LF line endings, 64-char lines), what gets stored.
    pub certificate_pem: String,
    /// The key re-encoded the same way, keeping its format (PKCS#8,
    /// PKCS#1 or SEC1) and label.
    pub private_key_pem: String,
}

impl fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCert")
            .field("meta", &self.meta)
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .field("certificate_pem", &self.certificate_pem)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

/// A validated client-CA bundle (for mutual TLS).
#[derive(Debug)]
pub struct ClientCa {
    pub meta: Meta,
    pub cas: Vec<CertificateDer<'static>>,
    pub certificate_pem: String,
}

const CERT: &str = "certificate";
const KEY: &str = "private_key";
/// Largest certificate text accepted (a 10-certificate RSA-4096 chain is ~20 KiB).
const MAX_CERT_TEXT: usize = 64 * 1024;
/// Largest private key text accepted (an RSA-8192 key is ~6.5 KiB of PEM).
const MAX_KEY_TEXT: usize = 16 * 1024;
/// Most certificates in one upload.
const MAX_CERTS: usize = 10;
const SUPPORTED_KEYS: &str = "supported keys are RSA (2048 to 8192 bits), ECDSA P-256, P-384 or P-521, and Ed25519";
const DECRYPT: &str = "openssl pkey -in key.pem -out key-decrypted.pem";

fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        code,
        message: message.into(),
    }
}

/// Validates an uploaded server certificate chain and its private key at time `now`.
///
/// `certificate` holds PEM `CERTIFICATE` blocks, leaf first, then each
/// issuer in order (intermediates, optionally the root); `private_key`
/// holds exactly one unencrypted key: PKCS#8 (`PRIVATE KEY`), PKCS#1
/// (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`). Accepted key types are
/// those rustls (aws-lc-rs) can sign with: RSA 2048–8192 bits, ECDSA P-256,
/// P-384 and P-521, Ed25519 (and ML-DSA, which rustls also loads).
///
/// PEM choices: CRLF line endings, indentation, trailing spaces, a leading
/// byte-order mark and blank lines *between* blocks are tolerated; blank
/// lines *inside* a block and any other text outside blocks (such as the
/// `Bag Attributes` / `subject=` lines `openssl pkcs12` prints) are
/// refused, with the line number. `EC PARAMETERS` blocks in the key text
/// (as `openssl ecparam -genkey` writes them) are skipped.
///
/// Checks, in order: sizes and PEM framing of the certificate text; X.509
/// parsing of every block; chain order (certificate N+1's subject is N's
/// issuer *and* its key verifies N's signature); validity dates of every
/// certificate at `now`; then the key (framing, encryption, type) and that
/// it belongs to the leaf.
///
/// A leaf that is itself a CA (basicConstraints CA:TRUE), e.g. a
/// self-signed certificate made with a CA profile, is accepted: some
/// operators use them, and clients decide whether to trust it. Extended key
/// usage is not checked either.
pub fn server(certificate: &str, private_key: &str, now: OffsetDateTime) -> Result<ServerCert, Invalid> {
    check_size(CERT, certificate, MAX_CERT_TEXT, "certificate")?;
    let chain = read_certificates(certificate)?;
    let parsed = parse_all(&chain)?;
    check_order(&parsed)?;
    check_dates(&parsed, now, true)?;
    check_leaf(&chain[0])?;

    check_size(KEY, private_key, MAX_KEY_TEXT, "private key")?;
    let (key, label) = read_key(private_key)?;
    let signing = load_signing_key(&key)?;
    match CertifiedKey::new(vec![chain[0].clone()], signing).keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            let hint = match parsed.iter().skip(1).position(|p| key_matches(&key, p.der)) {
                Some(i) => format!(" (it belongs to certificate {}: put that certificate first)", i + 2),
                None => String::new(),
            };
            return Err(invalid(
                KEY,
                "key_mismatch",
                format!(
                    "the private key does not belong to the first (leaf) certificate ({}){hint}; upload the key \
                     that was generated with this certificate's signing request",
                    dn(parsed[0].x509.subject())
                ),
            ));
        }
        Err(e) => {
            return Err(invalid(
                KEY,
                "invalid_key",
                format!("the private key cannot be checked against the leaf: {e}"),
            ));
        }
    }

    let meta = meta(&parsed[0])?;
    let certificate_pem = chain.iter().map(|c| pem::encode("CERTIFICATE", c)).collect();
    let private_key_pem = pem::encode(label, key.secret_der());
    drop(parsed);
    Ok(ServerCert {
        meta,
        chain,
        key,
        certificate_pem,
        private_key_pem,
    })
}

/// Validates an uploaded client-CA bundle at time `now`: one or more
/// certificates, each a CA (basicConstraints CA:TRUE, and keyCertSign if
/// it has a key usage extension), usable as a trust anchor, and valid at
/// `now`. The certificates need not be related to each other.
pub fn client_ca(certificate: &str, now: OffsetDateTime) -> Result<ClientCa, Invalid> {
    check_size(CERT, certificate, MAX_CERT_TEXT, "certificate")?;
    let cas = read_certificates(certificate)?;
    let parsed = parse_all(&cas)?;
    if let Some((i, j)) = duplicate(&parsed) {
        return Err(invalid(
            CERT,
            "invalid_certificate",
            format!(
                "certificate {} repeats certificate {}; remove the duplicate",
                j + 1,
                i + 1
            ),
        ));
    }
    for p in &parsed {
        let n = p.number;
        let not_a_ca = |why: &str| {
            invalid(
                CERT,
                "not_a_ca",
                format!(
                    "certificate {n} ({}) is not a CA certificate{why}; a client certificate entry holds the CA(s) \
                     that sign acceptable client certificates",
                    dn(p.x509.subject())
                ),
            )
        };
        match p.x509.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => {}
            Ok(_) => return Err(not_a_ca("")),
            Err(e) => return Err(not_a_ca(&format!(" (its basicConstraints extension is invalid: {e})"))),
        }
        match p.x509.key_usage() {
            Ok(Some(ku)) if !ku.value.key_cert_sign() => {
                return Err(not_a_ca(" (its key usage does not allow signing certificates)"));
            }
            Ok(_) => {}
            Err(e) => return Err(not_a_ca(&format!(" (its keyUsage extension is invalid: {e})"))),
        }
        if let Err(e) = webpki::anchor_from_trusted_cert(&cas[n - 1]) {
            return Err(invalid(
                CERT,
                "invalid_certificate",
                format!(
                    "certificate {n} ({}) cannot be used as a trust anchor: {e}",
                    dn(p.x509.subject())
                ),
            ));
        }
    }
    check_dates(&parsed, now, false)?;
    let meta = meta(&parsed[0])?;
    let certificate_pem = cas.iter().map(|c| pem::encode("CERTIFICATE", c)).collect();
    drop(parsed);
    Ok(ClientCa {
        meta,
        cas,
        certificate_pem,
    })
}

/// For the data plane: re-reads PEM that was validated at upload (no time
/// checks, no chain checks; just decoding). Errors only on corrupt input.
pub fn load_server(
    certificate_pem: &str,
    private_key_pem: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Invalid> {
    let chain = read_certificates(certificate_pem)?;
    let (key, _) = read_key(private_key_pem)?;
    Ok((chain, key))
}

/// For the data plane: re-reads a client-CA bundle validated at upload.
pub fn load_cas(certificate_pem: &str) -> Result<Vec<CertificateDer<'static>>, Invalid> {
    read_certificates(certificate_pem)
}

fn check_size(field: &'static str, text: &str, max: usize, what: &str) -> Result<(), Invalid> {
    if text.len() > max {
        return Err(invalid(
            field,
            "invalid_pem",
            format!(
                "the {what} text is {} bytes; at most {max} bytes ({} KiB) are accepted",
                text.len(),
                max / 1024
            ),
        ));
    }
    Ok(())
}

/// The leaf must be parseable by webpki: rustls parses it to match the key
/// (`CertifiedKey::keys_match`), and clients parse it the same way.
fn check_leaf(leaf: &CertificateDer<'static>) -> Result<(), Invalid> {
    let Err(e) = webpki::EndEntityCert::try_from(leaf) else {
        return Ok(());
    };
    let message = match e {
        webpki::Error::UnsupportedCertVersion => "certificate 1 (the leaf) is an X.509 version 1 certificate; TLS \
             clients need version 3: re-issue it with extensions (at least a subjectAltName)"
            .to_owned(),
        e => format!("certificate 1 (the leaf) cannot be used for TLS: {e:?}"),
    };
    Err(invalid(CERT, "invalid_certificate", message))
}

// ---------------------------------------------------------------- PEM

/// Frames and decodes the certificate field: only `CERTIFICATE` blocks.
fn read_certificates(text: &str) -> Result<Vec<CertificateDer<'static>>, Invalid> {
    let pem_err = |m: String| invalid(CERT, "invalid_pem", m);
    let blocks = pem::split(text, "CERTIFICATE", true).map_err(pem_err)?;
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("block {} (line {})", i + 1, b.begin_line);
        let label = b.label;
        let problem = match label {
            "CERTIFICATE" => {
                if let Some(h) = b.headers.first() {
                    return Err(pem_err(format!(
                        "line {}: unexpected header {:?} in the certificate block begun on line {}",
                        h.line, h.name, b.begin_line
                    )));
                }
                continue;
            }
            l if l.ends_with("PRIVATE KEY") => format!(
                "is a private key (-----BEGIN {l}-----); the private key goes in the private_key field, the \
                 certificate field holds only certificates"
            ),
            "TRUSTED CERTIFICATE" => "is an OpenSSL \"TRUSTED CERTIFICATE\"; convert it to a plain certificate with \
                 `openssl x509 -in cert.pem -out cert-plain.pem`"
                .to_owned(),
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => "is a certificate signing request (CSR), not a \
                 certificate; upload the certificate your CA issued for it"
                .to_owned(),
            "PKCS7" => "is a PKCS#7 bundle; extract its certificates with `openssl pkcs7 -print_certs -in bundle.p7b` \
                 and keep only the -----BEGIN CERTIFICATE----- blocks"
                .to_owned(),
            "PUBLIC KEY" | "RSA PUBLIC KEY" => "is a public key, not a certificate".to_owned(),
            "X509 CRL" => "is a certificate revocation list, not a certificate".to_owned(),
            other => format!(
                "has the unknown label {:?}; expected -----BEGIN CERTIFICATE-----",
                pem::shorten(other)
            ),
        };
        return Err(pem_err(format!("{at} {problem}")));
    }
    if blocks.len() > MAX_CERTS {
        return Err(pem_err(format!(
            "the certificate field holds {} certificates; at most {MAX_CERTS} are accepted (the leaf, its \
             intermediates and optionally the root)",
            blocks.len()
        )));
    }
    blocks
        .iter()
        .map(|b| b.decode(false).map(CertificateDer::from).map_err(pem_err))
        .collect()
}

/// Frames and decodes the private key field: exactly one unencrypted key
/// block. Returns the key and its PEM label.
fn read_key(text: &str) -> Result<(PrivateKeyDer<'static>, &'static str), Invalid> {
    let pem_err = |m: String| invalid(KEY, "invalid_pem", m);
    let blocks = pem::split(text, "PRIVATE KEY", false).map_err(pem_err)?;
    let mut keys = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("block {} (line {})", i + 1, b.begin_line);
        let label = b.label;
        match label {
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                if let Some(h) = b.headers.iter().find(|h| {
                    h.name.eq_ignore_ascii_case("Proc-Type") && h.value.to_ascii_uppercase().contains("ENCRYPTED")
                }) {
                    return Err(invalid(
                        KEY,
                        "encrypted_key",
                        format!(
                            "the private key is encrypted (\"Proc-Type: {}\" on line {}); upload it unencrypted: \
                                 decrypt it with `{DECRYPT}` (it asks for the passphrase)",
                            h.value, h.line
                        ),
                    ));
                }
                if let Some(h) = b.headers.first() {
                    return Err(pem_err(format!(
                        "line {}: unexpected header {:?} in the -----BEGIN {label}----- block begun on line {}",
                        h.line, h.name, b.begin_line
                    )));
                }
                keys.push(b);
            }
            // `openssl ecparam -genkey` writes the curve before the key.
            "EC PARAMETERS" => {}
            "ENCRYPTED PRIVATE KEY" => {
                return Err(invalid(
                    KEY,
                    "encrypted_key",
                    format!(
                        "the private key is encrypted (-----BEGIN ENCRYPTED PRIVATE KEY-----); upload it \
                         unencrypted: decrypt it with `{DECRYPT}` (it asks for the passphrase)"
                    ),
                ));
            }
            "CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                return Err(pem_err(format!(
                    "{at} is a certificate; certificates go in the certificate field, the private_key field holds \
                     only the private key"
                )));
            }
            "DSA PRIVATE KEY" => {
                return Err(invalid(
                    KEY,
                    "unsupported_key",
                    format!("{at} is a DSA key; {SUPPORTED_KEYS}"),
                ));
            }
            "OPENSSH PRIVATE KEY" => {
                return Err(invalid(
                    KEY,
                    "unsupported_key",
                    format!(
                        "{at} is an OpenSSH private key; TLS needs a PEM key (-----BEGIN PRIVATE KEY-----): convert \
                         a copy with `ssh-keygen -p -m PKCS8 -f key` (this rewrites the file)"
                    ),
                ));
            }
            "PUBLIC KEY" | "RSA PUBLIC KEY" => {
                return Err(invalid(
                    KEY,
                    "invalid_key",
                    format!("{at} is a public key; upload the private key"),
                ));
            }
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => {
                return Err(pem_err(format!(
                    "{at} is a certificate signing request (CSR); upload the private key"
                )));
            }
            other => {
                return Err(pem_err(format!(
                    "{at} has the unknown label {:?}; expected -----BEGIN PRIVATE KEY-----, -----BEGIN RSA \
                     PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----",
                    pem::shorten(other)
                )));
            }
        }
    }
    let block = match keys.as_slice() {
        [] => {
            return Err(pem_err(
                "no private key block found; expected -----BEGIN PRIVATE KEY----- (or RSA PRIVATE KEY, EC PRIVATE KEY)"
                    .to_owned(),
            ));
        }
        [one] => one,
        many => {
            let lines: Vec<String> = many.iter().map(|b| b.begin_line.to_string()).collect();
            return Err(invalid(
                KEY,
                "invalid_key",
                format!(
                    "the private_key field holds {} private keys (starting on lines {}); give exactly one: the key \
                     of the leaf certificate",
                    many.len(),
                    lines.join(", ")
                ),
            ));
        }
    };
    let der = block.decode(true).map_err(pem_err)?;
    Ok(match block.label {
        "RSA PRIVATE KEY" => (PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)), "RSA PRIVATE KEY"),
        "EC PRIVATE KEY" => (PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)), "EC PRIVATE KEY"),
        _ => (PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)), "PRIVATE KEY"),
    })
}

// ---------------------------------------------------------------- X.509

/// A parsed certificate with the raw pieces signature checks need.
struct Parsed<'a> {
    /// 1-based position in the upload, for messages.
    number: usize,
    der: &'a [u8],
    x509: X509Certificate<'a>,
    /// Contents of the certificate's signatureAlgorithm (no outer SEQUENCE),
    /// comparable with webpki's `signature_alg_id()`.
    sig_alg: &'a [u8],
    /// Contents of the subject public key's AlgorithmIdentifier,
    /// comparable with webpki's `public_key_alg_id()`.
    spki_alg: &'a [u8],
}

fn parse_all<'a>(ders: &'a [CertificateDer<'static>]) -> Result<Vec<Parsed<'a>>, Invalid> {
    ders.iter().enumerate().map(|(i, der)| parse_one(i + 1, der)).collect()
}

fn parse_one(number: usize, der: &[u8]) -> Result<Parsed<'_>, Invalid> {
    let bad = |why: String| {
        invalid(
            CERT,
            "invalid_certificate",
            format!(
                "certificate {number} is not a valid X.509 certificate ({why}); check that it was copied completely"
            ),
        )
    };
    let (rest, x509) = x509_parser::parse_x509_certificate(der).map_err(|e| bad(e.to_string()))?;
    if !rest.is_empty() {
        return Err(bad(format!("{} unexpected bytes follow it", rest.len())));
    }
    let sig_alg = signature_algorithm(der).ok_or_else(|| bad("unreadable signature algorithm".to_owned()))?;
    let spki_alg = sequence_first(x509.tbs_certificate.subject_pki.raw)
        .ok_or_else(|| bad("unreadable public key algorithm".to_owned()))?;
    Ok(Parsed {
        number,
        der,
        x509,
        sig_alg,
        spki_alg,
    })
}

/// Contents of the first element of a DER SEQUENCE.
fn sequence_first(der: &[u8]) -> Option<&[u8]> {
    let (_, outer) = Any::from_der(der).ok()?;
    let (_, first) = Any::from_der(outer.data).ok()?;
    Some(first.data)
}

/// Contents of a Certificate's signatureAlgorithm (its second element).
fn signature_algorithm(der: &[u8]) -> Option<&[u8]> {
    let (_, outer) = Any::from_der(der).ok()?;
    let (rest, _tbs) = Any::from_der(outer.data).ok()?;
    let (_, alg) = Any::from_der(rest).ok()?;
    Some(alg.data)
}

/// Whether `issuer` issued `child`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Issued {
    Yes,
    /// `child`'s issuer name is not `issuer`'s subject.
    NameMismatch,
    /// Names match, but the signature does not verify with `issuer`'s key.
    BadSignature,
    /// Names match, but no algorithm we have verifies this signature kind.
    Unsupported,
}

fn issued_by(child: &Parsed<'_>, issuer: &Parsed<'_>) -> Issued {
    if child.x509.issuer().as_raw() != issuer.x509.subject().as_raw() {
        return Issued::NameMismatch;
    }
    let public_key = &issuer.x509.tbs_certificate.subject_pki.subject_public_key.data;
    let tbs = child.x509.tbs_certificate.as_ref();
    let signature = &child.x509.signature_value.data;
    let mut known = false;
    for alg in webpki::ALL_VERIFICATION_ALGS {
        if alg.signature_alg_id().as_ref() != child.sig_alg {
            continue;
        }
        known = true;
        if alg.public_key_alg_id().as_ref() == issuer.spki_alg
            && alg.verify_signature(public_key, tbs, signature).is_ok()
        {
            return Issued::Yes;
        }
    }
    if known {
        Issued::BadSignature
    } else {
        Issued::Unsupported
    }
}

/// First pair (i, j), i < j, of identical certificates.
fn duplicate(parsed: &[Parsed<'_>]) -> Option<(usize, usize)> {
    (1..parsed.len()).find_map(|j| (0..j).find(|&i| parsed[i].der == parsed[j].der).map(|i| (i, j)))
}

/// Leaf first, each next certificate the issuer of the one before.
fn check_order(parsed: &[Parsed<'_>]) -> Result<(), Invalid> {
    if let Some((i, j)) = duplicate(parsed) {
        return Err(invalid(
            CERT,
            "chain_order",
            format!(
                "certificate {} repeats certificate {}; remove the duplicate",
                j + 1,
                i + 1
            ),
        ));
    }
    for pair in parsed.windows(2) {
        let (child, issuer) = (&pair[0], &pair[1]);
        let (n, m) = (child.number, issuer.number);
        let detail = match issued_by(child, issuer) {
            Issued::Yes => continue,
            Issued::Unsupported => {
                return Err(invalid(
                    CERT,
                    "invalid_certificate",
                    format!(
                        "certificate {n} ({}) is signed with {}, which is not supported; RSA (PKCS#1 v1.5 or PSS \
                         with SHA-256/384/512), ECDSA and Ed25519 signatures are (SHA-1 and MD5 are not)",
                        dn(child.x509.subject()),
                        algorithm_name(&child.x509.signature_algorithm.algorithm)
                    ),
                ));
            }
            Issued::NameMismatch => format!(
                "Certificate {n} ({}) was issued by {}, but certificate {m} is {}",
                dn(child.x509.subject()),
                dn(child.x509.issuer()),
                dn(issuer.x509.subject())
            ),
            Issued::BadSignature => format!(
                "Certificate {n} names certificate {m} ({}) as its issuer, but its signature does not verify with \
                 that certificate's public key",
                dn(issuer.x509.subject())
            ),
        };
        let hint = order_hint(parsed);
        return Err(invalid(
            CERT,
            "chain_order",
            format!(
                "certificate {n} is not signed by certificate {m}; give the chain leaf first, then each issuer in \
                 order (leaf, intermediate(s), optionally root). {detail}; {hint}."
            ),
        ));
    }
    Ok(())
}

/// Suggests a fix for a misordered chain: a complete order if one exists,
/// otherwise the certificates that do not belong.
fn order_hint(parsed: &[Parsed<'_>]) -> String {
    let n = parsed.len();
    // issuers[a] has bit b set when certificate b issued certificate a.
    let issuers: Vec<u16> = (0..n)
        .map(|a| {
            (0..n)
                .filter(|&b| a != b && issued_by(&parsed[a], &parsed[b]) == Issued::Yes)
                .fold(0u16, |bits, b| bits | 1 << b)
        })
        .collect();
    let mut best: Vec<usize> = Vec::new();
    for start in 0..n {
        let mut path = vec![start];
        longest_path(&issuers, &mut path, 1 << start, &mut best);
        if best.len() == n {
            break;
        }
    }
    let list = |items: &[usize]| items.iter().map(|i| (i + 1).to_string()).collect::<Vec<_>>().join(", ");
    if best.len() == n {
        return if best[0] == 0 {
            format!("the correct order appears to be {}", list(&best))
        } else {
            format!(
                "the leaf appears to be certificate {}, so the correct order is {}",
                best[0] + 1,
                list(&best)
            )
        };
    }
    if best.len() >= 2 {
        let extra: Vec<usize> = (0..n).filter(|i| !best.contains(i)).collect();
        return format!(
            "certificates {} form a chain, and certificate(s) {} do not belong to it: remove them",
            list(&best),
            list(&extra)
        );
    }
    format!(
        "none of these certificates issued another: if certificate 1 is the leaf, its issuer is {} and the others \
         do not belong",
        dn(parsed[0].x509.issuer())
    )
}

/// Depth-first search for the longest child→issuer path (at most 10 nodes).
fn longest_path(issuers: &[u16], path: &mut Vec<usize>, used: u16, best: &mut Vec<usize>) {
    if path.len() > best.len() {
        best.clone_from(path);
    }
    if best.len() == issuers.len() {
        return;
    }
    let Some(&last) = path.last() else { return };
    for next in 0..issuers.len() {
        if issuers[last] & (1 << next) != 0 && used & (1 << next) == 0 {
            path.push(next);
            longest_path(issuers, path, used | 1 << next, best);
            path.pop();
        }
    }
}

/// Validity of every certificate at `now`. The leaf of a server chain is
/// "the certificate"; other certificates are named by number and subject.
fn check_dates(parsed: &[Parsed<'_>], now: OffsetDateTime, server: bool) -> Result<(), Invalid> {
    for p in parsed {
        let validity = p.x509.validity();
        let (not_before, not_after) = (validity.not_before.to_datetime(), validity.not_after.to_datetime());
        let which = if server && p.number == 1 {
            "the certificate".to_owned()
        } else {
            format!("certificate {} ({})", p.number, dn(p.x509.subject()))
        };
        let fix = match (server, p.number) {
            (true, 1) => "upload a renewed certificate",
            (true, _) => "replace it with the current one from your CA",
            (false, _) => "upload a current CA certificate",
        };
        if now > not_after {
            return Err(invalid(
                CERT,
                "expired",
                format!("{which} expired on {}; {fix}", rfc3339(not_after)),
            ));
        }
        if now < not_before {
            return Err(invalid(
                CERT,
                "not_yet_valid",
                format!(
                    "{which} is not valid before {}; upload it once it is valid",
                    rfc3339(not_before)
                ),
            ));
        }
    }
    Ok(())
}

fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn meta(p: &Parsed<'_>) -> Result<Meta, Invalid> {
    let mut sans = Vec::new();
    match p.x509.subject_alternative_name() {
        Ok(Some(ext)) => {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => sans.push((*dns).to_owned()),
                    GeneralName::IPAddress(ip) => sans.push(ip_text(ip)),
                    _ => {}
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            return Err(invalid(
                CERT,
                "invalid_certificate",
                format!("certificate {} has an invalid subjectAltName extension: {e}", p.number),
            ));
        }
    }
    let validity = p.x509.validity();
    Ok(Meta {
        subject: dn(p.x509.subject()),
        issuer: dn(p.x509.issuer()),
        sans,
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
        fingerprint_sha256: colon_hex(&Sha256::digest(p.der)),
        serial: serial_text(p.x509.raw_serial()),
    })
}

fn ip_text(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Ipv4Addr::from(v4).to_string()
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Ipv6Addr::from(v6).to_string()
    } else {
        colon_hex(bytes)
    }
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The serial's value: the DER INTEGER without its leading sign octet(s).
fn serial_text(raw: &[u8]) -> String {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len().saturating_sub(1));
    colon_hex(&raw[start..])
}

/// A distinguished name as RFC 4514 writes it (most specific RDN first),
/// with ", " between RDNs and "+" inside multi-valued ones.
fn dn(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    format!(
                        "{}={}",
                        attribute_name(atv.attr_type()),
                        attribute_value(atv.attr_value())
                    )
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(", ")
}

fn attribute_name(oid: &Oid<'_>) -> String {
    let id = oid.to_id_string();
    let short = match id.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "GN",
        "2.5.4.97" => "organizationIdentifier",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        _ => return id,
    };
    short.to_owned()
}

fn attribute_value(value: &Any<'_>) -> String {
    let text: Option<String> = match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString | Tag::VisibleString => {
            std::str::from_utf8(value.data).ok().map(str::to_owned)
        }
        Tag::BmpString => {
            let units: Vec<u16> = value
                .data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        // T.61 in practice holds Latin-1.
        Tag::TeletexString => Some(value.data.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    };
    match text {
        Some(s) => escape_rfc4514(&s),
        None => format!("#{}", value.data.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    }
}

fn escape_rfc4514(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

fn algorithm_name(oid: &Oid<'_>) -> String {
    let id = oid.to_id_string();
    let name = match id.as_str() {
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-SHA256",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        _ => return format!("the signature algorithm {id}"),
    };
    format!("{name} ({id})")
}

// ---------------------------------------------------------------- keys

/// Loads the key the way the data plane will; on failure, works out why.
fn load_signing_key(key: &PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, Invalid> {
    any_supported_type(key).map_err(|_| explain_key_failure(key))
}

/// Whether `key` is the key of certificate `der` (for a hint only).
fn key_matches(key: &PrivateKeyDer<'static>, der: &[u8]) -> bool {
    any_supported_type(key).is_ok_and(|k| {
        CertifiedKey::new(vec![CertificateDer::from(der.to_vec())], k)
            .keys_match()
            .is_ok()
    })
}

/// What a private key's DER looks like, whatever its PEM label said.
#[derive(Debug, PartialEq, Eq)]
enum KeyShape {
    /// PKCS#8 PrivateKeyInfo: algorithm OID and, for EC keys, the curve OID.
    Pkcs8 {
        algorithm: String,
        curve: Option<String>,
        rsa_bits: Option<usize>,
    },
    /// PKCS#1 RSAPrivateKey with the modulus size.
    Pkcs1 {
        bits: usize,
    },
    /// SEC1 ECPrivateKey with the curve OID if present.
    Sec1 {
        curve: Option<String>,
    },
    /// OpenSSL's traditional DSA key (six INTEGERs).
    Dsa,
    Unknown,
}

/// Inspects the structure of a key that rustls refused. Only runs on
/// refusal, and reads only public parts (OIDs, the modulus length).
fn key_shape(der: &[u8]) -> KeyShape {
    let Some(items) = der_sequence(der) else {
        return KeyShape::Unknown;
    };
    let tags: Vec<(Class, Tag)> = items.iter().map(|a| (a.class(), a.tag())).collect();
    let universal = |i: usize, tag: Tag| tags.get(i) == Some(&(Class::Universal, tag));
    if universal(0, Tag::Integer) && universal(1, Tag::Sequence) && universal(2, Tag::OctetString) {
        let alg = der_sequence_content(items[1].data);
        let algorithm = alg
            .as_ref()
            .and_then(|a| a.first())
            .and_then(oid_text)
            .unwrap_or_default();
        let curve = alg.as_ref().and_then(|a| a.get(1)).and_then(oid_text);
        let rsa_bits = match der_sequence(items[2].data) {
            Some(inner) if inner.len() >= 2 && inner[1].tag() == Tag::Integer => Some(integer_bits(inner[1].data)),
            _ => None,
        };
        return KeyShape::Pkcs8 {
            algorithm,
            curve,
            rsa_bits,
        };
    }
    if universal(0, Tag::Integer) && universal(1, Tag::OctetString) {
        let curve = items
            .iter()
            .skip(2)
            .find(|a| a.class() == Class::ContextSpecific && a.tag() == Tag(0))
            .and_then(|a| Any::from_der(a.data).ok())
            .and_then(|(_, oid)| oid_text(&oid));
        return KeyShape::Sec1 { curve };
    }
    if items.len() == 6 && (0..6).all(|i| universal(i, Tag::Integer)) {
        return KeyShape::Dsa;
    }
    if items.len() >= 9 && (0..9).all(|i| universal(i, Tag::Integer)) {
        return KeyShape::Pkcs1 {
            bits: integer_bits(items[1].data),
        };
    }
    KeyShape::Unknown
}

fn der_sequence(der: &[u8]) -> Option<Vec<Any<'_>>> {
    let (rest, outer) = Any::from_der(der).ok()?;
    if !rest.is_empty() || outer.tag() != Tag::Sequence {
        return None;
    }
    der_sequence_content(outer.data)
}

fn der_sequence_content(mut data: &[u8]) -> Option<Vec<Any<'_>>> {
    let mut items = Vec::new();
    while !data.is_empty() {
        let (rest, item) = Any::from_der(data).ok()?;
        items.push(item);
        data = rest;
    }
    Some(items)
}

fn oid_text(any: &Any<'_>) -> Option<String> {
    if any.tag() != Tag::Oid {
        return None;
    }
    Some(Oid::new(any.data.into()).to_id_string())
}

/// Bit length of a positive DER INTEGER's contents.
fn integer_bits(data: &[u8]) -> usize {
    let data = &data[data.iter().position(|&b| b != 0).unwrap_or(data.len())..];
    match data.first() {
        Some(first) => data.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

fn curve_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.10045.3.1.7" => "P-256",
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        "1.3.132.0.10" => "secp256k1",
        "1.2.840.10045.3.1.1" => "P-192",
        "1.3.132.0.33" => "P-224",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1",
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1",
        _ => return None,
    })
}

fn explain_key_failure(key: &PrivateKeyDer<'static>) -> Invalid {
    let unsupported = |what: String| invalid(KEY, "unsupported_key", format!("{what}; {SUPPORTED_KEYS}"));
    let malformed = |what: &str| {
        invalid(
            KEY,
            "invalid_key",
            format!("the private key could not be read: {what}; check that it was copied completely"),
        )
    };
    let (label, expected) = match key {
        PrivateKeyDer::Pkcs1(_) => ("RSA PRIVATE KEY", "a PKCS#1 RSA key"),
        PrivateKeyDer::Sec1(_) => ("EC PRIVATE KEY", "a SEC1 EC key"),
        _ => ("PRIVATE KEY", "a PKCS#8 key"),
    };
    let shape = key_shape(key.secret_der());
    let actual_label = match &shape {
        KeyShape::Pkcs8 { .. } => Some("PRIVATE KEY"),
        KeyShape::Pkcs1 { .. } => Some("RSA PRIVATE KEY"),
        KeyShape::Sec1 { .. } => Some("EC PRIVATE KEY"),
        KeyShape::Dsa | KeyShape::Unknown => None,
    };
    if let Some(actual) = actual_label
        && actual != label
    {
        return invalid(
            KEY,
            "invalid_key",
            format!(
                "the -----BEGIN {label}----- block does not hold {expected}: its content is a \
                 -----BEGIN {actual}----- key; fix the BEGIN and END lines"
            ),
        );
    }
    let curve_problem = |curve: Option<&str>| match curve {
        None => malformed("the EC key does not name its curve"),
        Some(oid) => match curve_name(oid) {
            Some(name @ ("P-256" | "P-384" | "P-521")) => malformed(&format!("the ECDSA {name} key is not valid")),
            Some(name) => unsupported(format!("the ECDSA key uses the curve {name}")),
            None => unsupported(format!("the ECDSA key uses the curve {oid}")),
        },
    };
    let rsa_problem = |bits: usize| {
        if !(2048..=8192).contains(&bits) {
            unsupported(format!("the RSA key is {bits} bits"))
        } else {
            malformed("the RSA key is not valid")
        }
    };
    match shape {
        KeyShape::Pkcs1 { bits } => rsa_problem(bits),
        KeyShape::Sec1 { curve } => curve_problem(curve.as_deref()),
        KeyShape::Dsa => unsupported("the private key is a DSA key".to_owned()),
        KeyShape::Unknown => malformed(&format!("the block is not {expected}")),
        KeyShape::Pkcs8 {
            algorithm,
            curve,
            rsa_bits,
        } => match algorithm.as_str() {
            "1.2.840.113549.1.1.1" => rsa_problem(rsa_bits.unwrap_or(0)),
            "1.2.840.10045.2.1" => curve_problem(curve.as_deref()),
            "1.3.101.112" => malformed("the Ed25519 key is not valid"),
            "1.2.840.113549.1.1.10" => unsupported(
                "the private key is an RSA-PSS-only key (1.2.840.113549.1.1.10); use a plain RSA key".into(),
            ),
            "1.2.840.10040.4.1" => unsupported("the private key is a DSA key".to_owned()),
            "1.3.101.113" => unsupported("the private key is an Ed448 key".to_owned()),
            "1.3.101.110" | "1.3.101.111" => {
                unsupported("the private key is an X25519/X448 key-agreement key, which cannot sign".to_owned())
            }
            "" => malformed("the PKCS#8 key has no algorithm"),
            other => unsupported(format!("the private key's algorithm {other} is not supported")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4514_escaping() {
        assert_eq!(escape_rfc4514("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc4514("#x "), "\\#x\\ ");
        assert_eq!(escape_rfc4514(" a"), "\\ a");
        assert_eq!(escape_rfc4514("Müller \"GmbH\""), "Müller \\\"GmbH\\\"");
        assert_eq!(escape_rfc4514(""), "");
    }

    #[test]
    fn serial_drops_sign_octet_only() {
        assert_eq!(serial_text(&[0x00, 0x8f, 0x01]), "8f:01");
        assert_eq!(serial_text(&[0x01, 0x02, 0xab]), "01:02:ab");
        assert_eq!(serial_text(&[0x00]), "00");
        assert_eq!(serial_text(&[]), "");
    }

    #[test]
    fn integer_bit_lengths() {
        assert_eq!(integer_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(integer_bits(&[0x01, 0x00]), 9);
        assert_eq!(integer_bits(&[0x00]), 0);
    }

    #[test]
    fn ip_sans_as_text() {
        assert_eq!(ip_text(&[192, 0, 2, 1]), "192.0.2.1");
        let mut v6 = [0u8; 16];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[2] = 0x0d;
        v6[3] = 0xb8;
        v6[15] = 1;
        assert_eq!(ip_text(&v6), "2001:db8::1");
        assert_eq!(ip_text(&[1, 2, 3]), "01:02:03");
    }

    #[test]
    fn shapes_of_garbage() {
        assert_eq!(key_shape(b""), KeyShape::Unknown);
        assert_eq!(key_shape(&[0x30, 0x03, 0x02, 0x01, 0x00]), KeyShape::Unknown);
        assert_eq!(key_shape(&[0x04, 0x01, 0x00]), KeyShape::Unknown);
    }
}
