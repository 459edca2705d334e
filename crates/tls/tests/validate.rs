//! Upload validation, end to end: certificates and keys generated with
//! rcgen (and the `openssl` CLI for formats rcgen cannot write: PKCS#1,
//! SEC1, encrypted keys, DSA, SHA-1 signatures), fed to the public API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber, SignatureAlgorithm,
};
use rustls_pki_types::PrivateKeyDer;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::datetime;
use weir_tls::validate::{self, Invalid};

const NOW: OffsetDateTime = datetime!(2030-06-01 00:00 UTC);

// ------------------------------------------------------------ fixtures

struct Node {
    params: CertificateParams,
    key: KeyPair,
    cert: rcgen::Certificate,
}

impl Node {
    fn pem(&self) -> String {
        self.cert.pem()
    }
    fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
    fn der(&self) -> &[u8] {
        self.cert.der()
    }
}

fn params(cn: &str, ca: bool) -> CertificateParams {
    let sans = if ca { vec![] } else { vec![cn.to_owned()] };
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = datetime!(2025-01-01 00:00 UTC);
    p.not_after = datetime!(2035-01-01 00:00 UTC);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
    }
    p
}

fn build(params: CertificateParams, key: KeyPair, issuer: Option<&Node>) -> Node {
    let cert = match issuer {
        None => params.self_signed(&key),
        Some(i) => params.signed_by(&key, &Issuer::from_params(&i.params, &i.key)),
    }
    .unwrap();
    Node { params, key, cert }
}

fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    KeyPair::generate_for(alg).unwrap()
}

fn p256() -> KeyPair {
    key(&rcgen::PKCS_ECDSA_P256_SHA256)
}

/// Root → intermediate → leaf ("www.example.com"), all of one algorithm.
struct Chain {
    root: Node,
    int: Node,
    leaf: Node,
}

fn chain_with(alg: &'static SignatureAlgorithm) -> Chain {
    let root = build(params("Weir Test Root", true), key(alg), None);
    let int = build(params("Weir Test Intermediate", true), key(alg), Some(&root));
    let leaf = build(params("www.example.com", false), key(alg), Some(&int));
    Chain { root, int, leaf }
}

fn chain() -> Chain {
    chain_with(&rcgen::PKCS_ECDSA_P256_SHA256)
}

fn join(pems: &[&Node]) -> String {
    pems.iter().map(|n| n.pem()).collect()
}

fn refused(result: Result<impl std::fmt::Debug, Invalid>) -> Invalid {
    result.expect_err("expected a refusal")
}

/// Asserts field, code, and that the message contains every gist.
#[track_caller]
fn assert_invalid(err: &Invalid, field: &str, code: &str, gists: &[&str]) {
    assert_eq!((err.field, err.code), (field, code), "{err:?}");
    for gist in gists {
        assert!(err.message.contains(gist), "message {:?} lacks {gist:?}", err.message);
    }
}

fn serve(certificate: &str, key: &str) -> Invalid {
    refused(validate::server(certificate, key, NOW))
}

/// Runs the openssl CLI with optional stdin; panics with its stderr on failure.
fn openssl(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl CLI is needed by these tests");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A scratch directory removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weir-tls-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An RSA-2048 key as `openssl genrsa -traditional` writes it (PKCS#1,
/// 64-character lines), generated once.
fn rsa_pkcs1_pem() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| openssl(&["genrsa", "-traditional", "2048"], None))
}

/// Extracts the single block labelled `label` from PEM text.
fn block(text: &str, label: &str) -> String {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).unwrap();
    let stop = text[start..].find(&end).unwrap() + start + end.len();
    format!("{}\n", &text[start..stop])
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

// ------------------------------------------------------------ accepted

#[test]
fn ecdsa_p256_chain_with_metadata() {
    let root = build(params("Weir Test Root", true), p256(), None);
    let int = build(params("Weir Test Intermediate", true), p256(), Some(&root));
    let mut p = CertificateParams::new(vec![
        "www.example.com".to_owned(),
        "*.example.com".to_owned(),
        "192.0.2.10".to_owned(),
        "2001:db8::1".to_owned(),
    ])
    .unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "US");
    p.distinguished_name.push(DnType::OrganizationName, "Example, Inc.");
    p.distinguished_name.push(DnType::CommonName, "www.example.com");
    p.serial_number = Some(SerialNumber::from_slice(&[0x8f, 0x01, 0xab]));
    p.not_before = datetime!(2025-02-03 04:05:06 UTC);
    p.not_after = datetime!(2034-05-06 07:08:09 UTC);
    let leaf = build(p, p256(), Some(&int));

    let ok = validate::server(&join(&[&leaf, &int, &root]), &leaf.key_pem(), NOW).unwrap();
    assert_eq!(ok.meta.subject, "CN=www.example.com, O=Example\\, Inc., C=US");
    assert_eq!(ok.meta.issuer, "CN=Weir Test Intermediate");
    assert_eq!(
        ok.meta.sans,
        ["www.example.com", "*.example.com", "192.0.2.10", "2001:db8::1"]
    );
    assert_eq!(ok.meta.not_before, datetime!(2025-02-03 04:05:06 UTC));
    assert_eq!(ok.meta.not_after, datetime!(2034-05-06 07:08:09 UTC));
    assert_eq!(ok.meta.fingerprint_sha256, colon_hex(&Sha256::digest(leaf.der())));
    assert_eq!(ok.meta.fingerprint_sha256.len(), 32 * 3 - 1);
    assert_eq!(ok.meta.serial, "8f:01:ab");
    assert_eq!(ok.chain.len(), 3);
    assert_eq!(ok.chain[0].as_ref(), leaf.der());
    assert_eq!(ok.chain[2].as_ref(), root.der());
    assert!(matches!(ok.key, PrivateKeyDer::Pkcs8(_)));
    assert_eq!(ok.key.secret_der(), leaf.key.serialized_der());
}

#[test]
fn fingerprint_matches_openssl() {
    let c = chain();
    let ok = validate::server(&c.leaf.pem(), &c.leaf.key_pem(), NOW).unwrap();
    let out = openssl(&["x509", "-noout", "-fingerprint", "-sha256"], Some(&c.leaf.pem()));
    let want = out.trim().rsplit('=').next().unwrap().to_ascii_lowercase();
    assert_eq!(ok.meta.fingerprint_sha256, want);
    let serial = openssl(&["x509", "-noout", "-serial"], Some(&c.leaf.pem()));
    let want: String = serial.trim().trim_start_matches("serial=").to_ascii_lowercase();
    assert_eq!(ok.meta.serial.replace(':', ""), want.trim_start_matches("00"));
}

#[test]
fn ecdsa_p384_chain() {
    let c = chain_with(&rcgen::PKCS_ECDSA_P384_SHA384);
    let ok = validate::server(&join(&[&c.leaf, &c.int]), &c.leaf.key_pem(), NOW).unwrap();
    assert_eq!(ok.meta.subject, "CN=www.example.com");
    assert_eq!(ok.chain.len(), 2);
}

#[test]
fn mixed_algorithms_chain() {
    // RSA root, P-384 intermediate, P-256 leaf.
    let root = build(params("Weir Test Root", true), key(&rcgen::PKCS_RSA_SHA256), None);
    let int = build(
        params("Weir Test Intermediate", true),
        key(&rcgen::PKCS_ECDSA_P384_SHA384),
        Some(&root),
    );
    let leaf = build(params("www.example.com", false), p256(), Some(&int));
    validate::server(&join(&[&leaf, &int, &root]), &leaf.key_pem(), NOW).unwrap();
}

#[test]
fn ed25519_is_accepted() {
    let c = chain_with(&rcgen::PKCS_ED25519);
    validate::server(&join(&[&c.leaf, &c.int]), &c.leaf.key_pem(), NOW).unwrap();
}

#[test]
fn rsa_pkcs1_seed_style() {
    let key_pem = rsa_pkcs1_pem();
    assert!(key_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"), "{key_pem}");
    let kp = KeyPair::from_pem_and_sign_algo(key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let root = build(params("Weir Test Root", true), p256(), None);
    let leaf = build(params("www.example.com", false), kp, Some(&root));
    let ok = validate::server(&join(&[&leaf, &root]), key_pem, NOW).unwrap();
    assert!(matches!(ok.key, PrivateKeyDer::Pkcs1(_)));
    // Stored in its own format, canonically framed: identical to openssl's.
    assert_eq!(ok.private_key_pem, *key_pem);
}

#[test]
fn rsa_pkcs8_generated_by_rcgen() {
    let c = chain_with(&rcgen::PKCS_RSA_SHA256);
    let ok = validate::server(&join(&[&c.leaf, &c.int, &c.root]), &c.leaf.key_pem(), NOW).unwrap();
    assert!(matches!(ok.key, PrivateKeyDer::Pkcs8(_)));
    assert!(ok.private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
}

#[test]
fn rsa_pkcs8_converted_by_openssl() {
    let pkcs8 = openssl(&["pkey"], Some(rsa_pkcs1_pem()));
    assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
    let kp = KeyPair::from_pem(&pkcs8).unwrap();
    let leaf = build(params("www.example.com", false), kp, None);
    validate::server(&leaf.pem(), &pkcs8, NOW).unwrap();
}

#[test]
fn sec1_key_with_ec_parameters_block() {
    // `openssl ecparam -genkey` writes EC PARAMETERS then EC PRIVATE KEY.
    let text = openssl(&["ecparam", "-genkey", "-name", "prime256v1"], None);
    assert!(text.contains("-----BEGIN EC PARAMETERS-----"));
    let sec1 = block(&text, "EC PRIVATE KEY");
    let kp = KeyPair::from_pem_and_sign_algo(&sec1, &rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = build(params("www.example.com", false), kp, None);
    let ok = validate::server(&leaf.pem(), &text, NOW).unwrap();
    assert!(matches!(ok.key, PrivateKeyDer::Sec1(_)));
    assert!(ok.private_key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    assert!(!ok.private_key_pem.contains("PARAMETERS"));
    // The SEC1 key alone is fine too.
    validate::server(&leaf.pem(), &sec1, NOW).unwrap();
}

#[test]
fn sec1_p384_key() {
    let text = openssl(&["ecparam", "-genkey", "-noout", "-name", "secp384r1"], None);
    let kp = KeyPair::from_pem_and_sign_algo(&text, &rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let leaf = build(params("www.example.com", false), kp, None);
    validate::server(&leaf.pem(), &text, NOW).unwrap();
}

#[test]
fn crlf_whitespace_and_blank_lines_between_blocks() {
    let c = chain();
    let certs = format!("\n\n  {}\n\n\n{}\n\n", c.leaf.pem().trim(), c.int.pem()).replace('\n', "\r\n");
    let key = format!("\r\n{}\r\n\r\n", c.leaf.key_pem().replace('\n', "\r\n"));
    let ok = validate::server(&certs, &key, NOW).unwrap();
    assert_eq!(ok.chain.len(), 2);
    assert!(!ok.certificate_pem.contains('\r'));
    assert!(!ok.private_key_pem.contains('\r'));
}

#[test]
fn canonical_pem_is_stored_and_reloads() {
    let c = chain();
    // Re-wrap the upload at 76 columns, as some tools do.
    let rewrap = |pem: &str| {
        let mut out = String::new();
        for b in pem.split("-----END CERTIFICATE-----").filter(|b| b.contains("BEGIN")) {
            let body: String = b.lines().filter(|l| !l.starts_with("-----") && !l.is_empty()).collect();
            out.push_str("-----BEGIN CERTIFICATE-----\n");
            for chunk in body.as_bytes().chunks(76) {
                out.push_str(std::str::from_utf8(chunk).unwrap());
                out.push('\n');
            }
            out.push_str("-----END CERTIFICATE-----\n");
        }
        out
    };
    let upload = rewrap(&join(&[&c.leaf, &c.int]));
    assert!(upload.lines().any(|l| l.len() == 76));
    let ok = validate::server(&upload, &c.leaf.key_pem(), NOW).unwrap();
    assert!(ok.certificate_pem.lines().all(|l| l.len() <= 64));
    assert_eq!(ok.certificate_pem.matches("-----BEGIN CERTIFICATE-----\n").count(), 2);
    assert!(ok.certificate_pem.ends_with("-----END CERTIFICATE-----\n"));

    let (chain, key) = validate::load_server(&ok.certificate_pem, &ok.private_key_pem).unwrap();
    assert_eq!(chain, ok.chain);
    assert_eq!(key.secret_der(), ok.key.secret_der());
    // Validating the stored form again gives the same result.
    let again = validate::server(&ok.certificate_pem, &ok.private_key_pem, NOW).unwrap();
    assert_eq!(again.meta, ok.meta);
    assert_eq!(again.certificate_pem, ok.certificate_pem);
    assert_eq!(again.private_key_pem, ok.private_key_pem);
}

#[test]
fn self_signed_leaf_even_with_ca_flag_is_accepted() {
    let plain = build(params("self.example.com", false), p256(), None);
    let ok = validate::server(&plain.pem(), &plain.key_pem(), NOW).unwrap();
    assert_eq!(ok.meta.subject, ok.meta.issuer);
    let mut p = params("ca-as-server.example.com", true);
    p.subject_alt_names = vec![rcgen::SanType::DnsName("ca-as-server.example.com".try_into().unwrap())];
    let ca = build(p, p256(), None);
    validate::server(&ca.pem(), &ca.key_pem(), NOW).unwrap();
}

#[test]
fn debug_redacts_the_key() {
    let c = chain();
    let ok = validate::server(&c.leaf.pem(), &c.leaf.key_pem(), NOW).unwrap();
    let debug = format!("{ok:?}");
    assert!(debug.contains("<redacted>"), "{debug}");
    let key_body: String = c.leaf.key_pem().lines().filter(|l| !l.starts_with("-----")).collect();
    for line in c.leaf.key_pem().lines().filter(|l| !l.starts_with("-----")) {
        assert!(!debug.contains(line), "key material in Debug output");
    }
    assert!(!debug.contains(&key_body[..20]));
}

#[test]
fn invalid_displays_field_and_message() {
    let err = serve("", "");
    assert_eq!(
        err.to_string(),
        "certificate: no PEM block found; expected -----BEGIN CERTIFICATE-----"
    );
}

// ------------------------------------------------------------ PEM refusals

#[test]
fn no_block() {
    let c = chain();
    for text in ["", "   \n\n", "hello"] {
        let err = serve(text, &c.leaf.key_pem());
        assert_eq!((err.field, err.code), ("certificate", "invalid_pem"));
    }
    assert_invalid(
        &serve("", &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["no PEM block found; expected -----BEGIN CERTIFICATE-----"],
    );
    assert_invalid(
        &serve(&c.leaf.pem(), "\n"),
        "private_key",
        "invalid_pem",
        &["no PEM block found; expected -----BEGIN PRIVATE KEY-----"],
    );
}

#[test]
fn text_outside_blocks() {
    let c = chain();
    let bag = format!(
        "Bag Attributes\n    localKeyID: 01\nsubject=/CN=www.example.com\n{}",
        c.leaf.pem()
    );
    assert_invalid(
        &serve(&bag, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &[
            "line 1: unexpected text outside a PEM block",
            "\"Bag Attributes\"",
            "remove",
        ],
    );
    let trailing = format!("{}\n\ntrailing words\n", c.leaf.pem());
    let n = c.leaf.pem().lines().count() + 3;
    assert_invalid(
        &serve(&trailing, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &[
            &format!("line {n}: unexpected text outside a PEM block"),
            "trailing words",
        ],
    );
    // In the key field, stray text is not quoted (it may be key material).
    let key = c.leaf.key_pem();
    let headless: String = key.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let err = serve(&c.leaf.pem(), &headless);
    assert_invalid(
        &err,
        "private_key",
        "invalid_pem",
        &["line 1: unexpected text outside a PEM block"],
    );
    assert!(!err.message.contains(&key.lines().nth(1).unwrap()[..10]), "{err:?}");
}

#[test]
fn missing_end_line() {
    let c = chain();
    let pem = c.leaf.pem();
    let cut = pem.trim_end().trim_end_matches("-----END CERTIFICATE-----");
    assert_invalid(
        &serve(cut, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["-----BEGIN CERTIFICATE----- block begun on line 1 has no -----END CERTIFICATE----- line"],
    );
    let two = format!("{cut}{}", c.int.pem());
    let line = cut.lines().count() + 1;
    assert_invalid(
        &serve(&two, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &[
            &format!("line {line}: a new BEGIN line starts before"),
            "-----END CERTIFICATE----- line is missing",
        ],
    );
}

#[test]
fn mismatched_end_label() {
    let c = chain();
    let pem = c
        .leaf
        .pem()
        .replace("-----END CERTIFICATE-----", "-----END CERTIFICATE REQUEST-----");
    assert_invalid(
        &serve(&pem, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["does not match -----BEGIN CERTIFICATE----- on line 1"],
    );
}

#[test]
fn invalid_base64() {
    let c = chain();
    let pem = c.leaf.pem();
    let mut lines: Vec<String> = pem.lines().map(str::to_owned).collect();
    lines[2].replace_range(5..6, "*");
    let broken = lines.join("\n");
    assert_invalid(
        &serve(&broken, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["line 3 is not valid base64", "'*'"],
    );
    // A truncated last line.
    let mut lines: Vec<String> = pem.lines().map(str::to_owned).collect();
    let last = lines.len() - 2;
    let len = lines[last].len();
    lines[last].truncate(len - 1);
    let n = last + 1;
    assert_invalid(
        &serve(&lines.join("\n"), &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &[&format!("line {n} is not valid base64")],
    );
    // In the key too.
    let key = c.leaf.key_pem();
    let mut klines: Vec<String> = key.lines().map(str::to_owned).collect();
    klines[1].replace_range(3..4, "%");
    assert_invalid(
        &serve(&pem, &klines.join("\n")),
        "private_key",
        "invalid_pem",
        &["line 2 is not valid base64"],
    );
}

#[test]
fn blank_line_inside_a_block() {
    let c = chain();
    let pem = c.leaf.pem();
    let mut lines: Vec<&str> = pem.lines().collect();
    lines.insert(3, "");
    assert_invalid(
        &serve(&lines.join("\n"), &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["line 4: blank line inside the -----BEGIN CERTIFICATE----- block begun on line 1"],
    );
}

#[test]
fn header_in_a_certificate_block() {
    let c = chain();
    let pem = c.leaf.pem().replacen("-----\n", "-----\nComment: hi\n", 1);
    assert_invalid(
        &serve(&pem, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["line 2: unexpected header \"Comment\" in the certificate block begun on line 1"],
    );
}

#[test]
fn line_breaks_lost_in_transit() {
    let c = chain();
    let flat = c.leaf.pem().replace('\n', " ");
    assert_invalid(
        &serve(&flat, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &[
            "line 1: more text follows -----BEGIN on the same line",
            "lost its line breaks",
        ],
    );
    let escaped = c.leaf.key_pem().replace('\n', "\\n");
    let err = serve(&c.leaf.pem(), &escaped);
    assert_invalid(&err, "private_key", "invalid_pem", &["written as \\n"]);
    assert!(!err.message.contains("MI"), "key material in {err:?}");
}

#[test]
fn unknown_label() {
    let c = chain();
    let pem = c.leaf.pem().replace("CERTIFICATE", "CERTIFICATES");
    assert_invalid(
        &serve(&pem, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["block 1 (line 1) has the unknown label \"CERTIFICATES\"; expected -----BEGIN CERTIFICATE-----"],
    );
    let key = c.leaf.key_pem().replace("PRIVATE KEY", "PRIVATE KEYS");
    assert_invalid(
        &serve(&c.leaf.pem(), &key),
        "private_key",
        "invalid_pem",
        &["has the unknown label \"PRIVATE KEYS\""],
    );
}

#[test]
fn other_objects_in_the_certificate_field() {
    let c = chain();
    let csr = c.leaf.params.serialize_request(&c.leaf.key).unwrap().pem().unwrap();
    assert_invalid(
        &serve(&csr, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["certificate signing request (CSR)"],
    );
    let public = c.leaf.key.public_key_pem();
    assert_invalid(
        &serve(&public, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["is a public key"],
    );
    let trusted = c.leaf.pem().replace("CERTIFICATE", "TRUSTED CERTIFICATE");
    assert_invalid(
        &serve(&trusted, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["openssl x509 -in"],
    );
}

#[test]
fn key_in_the_certificate_field() {
    let c = chain();
    let both = format!("{}{}", c.leaf.pem(), c.leaf.key_pem());
    let n = c.leaf.pem().lines().count() + 1;
    assert_invalid(
        &serve(&both, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &[
            &format!("block 2 (line {n}) is a private key (-----BEGIN PRIVATE KEY-----)"),
            "the private key goes in the private_key field",
        ],
    );
    assert_invalid(
        &serve(rsa_pkcs1_pem(), &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["-----BEGIN RSA PRIVATE KEY-----", "private_key field"],
    );
}

#[test]
fn certificate_in_the_key_field() {
    let c = chain();
    let both = format!("{}{}", c.leaf.key_pem(), c.leaf.pem());
    assert_invalid(
        &serve(&c.leaf.pem(), &both),
        "private_key",
        "invalid_pem",
        &["block 2", "is a certificate; certificates go in the certificate field"],
    );
    assert_invalid(
        &serve(&c.leaf.pem(), &c.leaf.pem()),
        "private_key",
        "invalid_pem",
        &["block 1 (line 1) is a certificate"],
    );
}

#[test]
fn size_limits() {
    let c = chain();
    let big = format!("{}{}", c.leaf.pem(), " ".repeat(64 * 1024));
    assert_invalid(
        &serve(&big, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["at most 65536 bytes (64 KiB)"],
    );
    let eleven = c.leaf.pem().repeat(11);
    assert_invalid(
        &serve(&eleven, &c.leaf.key_pem()),
        "certificate",
        "invalid_pem",
        &["holds 11 certificates; at most 10"],
    );
    let big_key = format!("{}{}", c.leaf.key_pem(), "\n".repeat(16 * 1024));
    assert_invalid(
        &serve(&c.leaf.pem(), &big_key),
        "private_key",
        "invalid_pem",
        &["at most 16384 bytes (16 KiB)"],
    );
    // Ten is fine as far as counting goes (then the duplicates are refused).
    let ten = c.leaf.pem().repeat(10);
    assert_eq!(serve(&ten, &c.leaf.key_pem()).code, "chain_order");
}

// ------------------------------------------------------------ X.509 refusals

#[test]
fn der_that_is_not_x509() {
    let c = chain();
    let junk = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
    assert_invalid(
        &serve(&format!("{}{junk}", c.leaf.pem()), &c.leaf.key_pem()),
        "certificate",
        "invalid_certificate",
        &["certificate 2 is not a valid X.509 certificate"],
    );
    // A certificate with bytes after it.
    let mut der = c.leaf.der().to_vec();
    der.extend_from_slice(&[0, 0]);
    let pem = pem_of("CERTIFICATE", &der);
    assert_invalid(
        &serve(&pem, &c.leaf.key_pem()),
        "certificate",
        "invalid_certificate",
        &["certificate 1 is not a valid X.509 certificate (2 unexpected bytes follow it)"],
    );
}

/// PEM-encodes `der` via openssl (an independent encoder).
fn pem_of(label: &str, der: &[u8]) -> String {
    let scratch = Scratch::new();
    let path = scratch.path("in.der");
    std::fs::write(&path, der).unwrap();
    let b64 = openssl(&["base64", "-in", &path], None);
    format!("-----BEGIN {label}-----\n{b64}-----END {label}-----\n")
}

// ------------------------------------------------------------ chain order

#[test]
fn intermediate_first() {
    let c = chain();
    let err = serve(&join(&[&c.int, &c.leaf]), &c.leaf.key_pem());
    assert_invalid(
        &err,
        "certificate",
        "chain_order",
        &[
            "certificate 1 is not signed by certificate 2; give the chain leaf first, then each issuer in order \
             (leaf, intermediate(s), optionally root)",
            "; the leaf appears to be certificate 2, so the correct order is 2, 1.",
        ],
    );
}

#[test]
fn root_before_intermediate() {
    let c = chain();
    let err = serve(&join(&[&c.leaf, &c.root, &c.int]), &c.leaf.key_pem());
    assert_invalid(
        &err,
        "certificate",
        "chain_order",
        &[
            "certificate 1 is not signed by certificate 2",
            "Certificate 1 (CN=www.example.com) was issued by CN=Weir Test Intermediate, but certificate 2 is \
             CN=Weir Test Root",
            "; the correct order appears to be 1, 3, 2.",
        ],
    );
}

#[test]
fn fully_reversed_chain() {
    let c = chain();
    let err = serve(&join(&[&c.root, &c.int, &c.leaf]), &c.leaf.key_pem());
    assert_invalid(
        &err,
        "certificate",
        "chain_order",
        &[
            "certificate 1 is not signed by certificate 2",
            "the leaf appears to be certificate 3, so the correct order is 3, 2, 1.",
        ],
    );
}

#[test]
fn unrelated_extra_certificate() {
    let c = chain();
    let other = chain();
    let err = serve(&join(&[&c.leaf, &c.int, &other.root]), &c.leaf.key_pem());
    assert_invalid(
        &err,
        "certificate",
        "chain_order",
        &[
            "certificate 2 is not signed by certificate 3",
            "; certificates 1, 2 form a chain, and certificate(s) 3 do not belong to it: remove them.",
        ],
    );
    // Same subject name, different key: only the signature tells.
    let err = serve(&join(&[&c.leaf, &other.int]), &c.leaf.key_pem());
    assert_invalid(
        &err,
        "certificate",
        "chain_order",
        &[
            "certificate 1 is not signed by certificate 2",
            "its signature does not verify with that certificate's public key",
        ],
    );
    // Nothing related at all.
    let stranger = build(params("stranger.example.org", false), p256(), None);
    let err = serve(&join(&[&c.leaf, &stranger]), &c.leaf.key_pem());
    assert_invalid(
        &err,
        "certificate",
        "chain_order",
        &[
            "none of these certificates issued another",
            "its issuer is CN=Weir Test Intermediate",
        ],
    );
}

#[test]
fn duplicate_certificate() {
    let c = chain();
    let err = serve(&join(&[&c.leaf, &c.int, &c.int]), &c.leaf.key_pem());
    assert_invalid(
        &err,
        "certificate",
        "chain_order",
        &["certificate 3 repeats certificate 2"],
    );
}

#[test]
fn sha1_signature_and_v1_certificates_are_refused() {
    let s = Scratch::new();
    let (ca_key, ca, leaf_key, csr) = (
        s.path("ca.key"),
        s.path("ca.pem"),
        s.path("leaf.key"),
        s.path("leaf.csr"),
    );
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-subj",
        "/CN=SHA1 CA",
        "-days",
        "36500",
    ]);
    openssl(&args, None);
    let mut args = vec!["req", "-new"];
    args.extend(ec);
    args.extend(["-keyout", &leaf_key, "-out", &csr, "-subj", "/CN=old.example.com"]);
    openssl(&args, None);
    let ext = s.path("ext.cnf");
    std::fs::write(&ext, "subjectAltName=DNS:old.example.com\n").unwrap();
    let sign = |digest: &str, extfile: Option<&str>| {
        let mut args = vec![
            "x509", "-req", "-in", &csr, "-CA", &ca, "-CAkey", &ca_key, digest, "-days", "36500",
        ];
        args.extend(extfile.map(|e| ["-extfile", e]).into_iter().flatten());
        openssl(&args, None)
    };
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    // openssl dates its certificates from the wall clock.
    let now = OffsetDateTime::now_utc() + time::Duration::days(1);

    let sha1 = sign("-sha1", Some(&ext));
    let err = refused(validate::server(&(sha1 + &read(&ca)), &read(&leaf_key), now));
    assert_invalid(
        &err,
        "certificate",
        "invalid_certificate",
        &[
            "certificate 1 (CN=old.example.com) is signed with ecdsa-with-SHA1",
            "not supported",
        ],
    );

    // Without extensions openssl writes an X.509 version 1 certificate,
    // which rustls refuses to serve.
    let v1 = sign("-sha256", None);
    let err = refused(validate::server(&(v1 + &read(&ca)), &read(&leaf_key), now));
    assert_invalid(
        &err,
        "certificate",
        "invalid_certificate",
        &["X.509 version 1", "version 3"],
    );
}

// ------------------------------------------------------------ dates

fn dated(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Node {
    let mut p = params("www.example.com", false);
    p.not_before = not_before;
    p.not_after = not_after;
    build(p, p256(), None)
}

#[test]
fn expired_leaf() {
    let leaf = dated(datetime!(2023-01-01 00:00 UTC), datetime!(2024-01-01 00:00 UTC));
    assert_invalid(
        &serve(&leaf.pem(), &leaf.key_pem()),
        "certificate",
        "expired",
        &["the certificate expired on 2024-01-01T00:00:00Z"],
    );
    // Still valid at its last second.
    let last = datetime!(2024-01-01 00:00 UTC);
    validate::server(&leaf.pem(), &leaf.key_pem(), last).unwrap();
}

#[test]
fn not_yet_valid_leaf() {
    let leaf = dated(datetime!(2031-01-01 12:30 UTC), datetime!(2032-01-01 00:00 UTC));
    assert_invalid(
        &serve(&leaf.pem(), &leaf.key_pem()),
        "certificate",
        "not_yet_valid",
        &["the certificate is not valid before 2031-01-01T12:30:00Z"],
    );
}

#[test]
fn expired_intermediate() {
    let root = build(params("Weir Test Root", true), p256(), None);
    let mut p = params("Weir Test Intermediate", true);
    p.not_after = datetime!(2029-01-01 00:00 UTC);
    let int = build(p, p256(), Some(&root));
    let leaf = build(params("www.example.com", false), p256(), Some(&int));
    assert_invalid(
        &serve(&join(&[&leaf, &int, &root]), &leaf.key_pem()),
        "certificate",
        "expired",
        &["certificate 2 (CN=Weir Test Intermediate) expired on 2029-01-01T00:00:00Z"],
    );
}

#[test]
fn not_yet_valid_root() {
    let mut p = params("Weir Test Root", true);
    p.not_before = datetime!(2031-01-01 00:00 UTC);
    let root = build(p, p256(), None);
    let leaf = build(params("www.example.com", false), p256(), Some(&root));
    assert_invalid(
        &serve(&join(&[&leaf, &root]), &leaf.key_pem()),
        "certificate",
        "not_yet_valid",
        &["certificate 2 (CN=Weir Test Root) is not valid before 2031-01-01T00:00:00Z"],
    );
}

// ------------------------------------------------------------ key refusals

#[test]
fn encrypted_pkcs8_key() {
    let c = chain();
    let enc = openssl(&["pkey", "-aes256", "-passout", "pass:x"], Some(&c.leaf.key_pem()));
    assert!(enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_invalid(
        &serve(&c.leaf.pem(), &enc),
        "private_key",
        "encrypted_key",
        &[
            "the private key is encrypted",
            "openssl pkey -in key.pem -out key-decrypted.pem",
        ],
    );
}

#[test]
fn encrypted_legacy_rsa_key() {
    let c = chain();
    let enc = openssl(
        &["genrsa", "-aes256", "-traditional", "-passout", "pass:x", "2048"],
        None,
    );
    assert!(enc.contains("Proc-Type: 4,ENCRYPTED"), "{enc}");
    assert_invalid(
        &serve(&c.leaf.pem(), &enc),
        "private_key",
        "encrypted_key",
        &[
            "\"Proc-Type: 4,ENCRYPTED\" on line 2",
            "openssl pkey -in key.pem -out key-decrypted.pem",
        ],
    );
}

#[test]
fn encrypted_legacy_ec_key() {
    let c = chain();
    let sec1 = openssl(&["ecparam", "-genkey", "-noout", "-name", "prime256v1"], None);
    let enc = openssl(&["ec", "-aes256", "-passout", "pass:x"], Some(&sec1));
    assert!(enc.contains("Proc-Type: 4,ENCRYPTED"), "{enc}");
    assert_invalid(
        &serve(&c.leaf.pem(), &enc),
        "private_key",
        "encrypted_key",
        &["openssl pkey"],
    );
}

#[test]
fn unexpected_header_in_a_key() {
    let c = chain();
    let key = c.leaf.key_pem().replacen("-----\n", "-----\nComment: hi\n\n", 1);
    assert_invalid(
        &serve(&c.leaf.pem(), &key),
        "private_key",
        "invalid_pem",
        &["line 2: unexpected header \"Comment\""],
    );
}

#[test]
fn dsa_keys_are_unsupported() {
    let c = chain();
    let params = openssl(
        &[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DSA",
            "-pkeyopt",
            "dsa_paramgen_bits:1024",
        ],
        None,
    );
    let s = Scratch::new();
    let path = s.path("dsa-params.pem");
    std::fs::write(&path, params).unwrap();
    let pkcs8 = openssl(&["genpkey", "-paramfile", &path], None);
    assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_invalid(
        &serve(&c.leaf.pem(), &pkcs8),
        "private_key",
        "unsupported_key",
        &["DSA key", "supported keys are RSA"],
    );
    let traditional = openssl(&["pkey", "-traditional"], Some(&pkcs8));
    assert!(traditional.starts_with("-----BEGIN DSA PRIVATE KEY-----"));
    assert_invalid(
        &serve(&c.leaf.pem(), &traditional),
        "private_key",
        "unsupported_key",
        &["is a DSA key"],
    );
}

#[test]
fn other_unsupported_keys() {
    let c = chain();
    let k1 = openssl(
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
        None,
    );
    assert_invalid(
        &serve(&c.leaf.pem(), &k1),
        "private_key",
        "unsupported_key",
        &["curve secp256k1"],
    );
    let k1_sec1 = openssl(&["ec"], Some(&k1));
    assert_invalid(
        &serve(&c.leaf.pem(), &k1_sec1),
        "private_key",
        "unsupported_key",
        &["curve secp256k1"],
    );
    let ed448 = openssl(&["genpkey", "-algorithm", "ED448"], None);
    assert_invalid(
        &serve(&c.leaf.pem(), &ed448),
        "private_key",
        "unsupported_key",
        &["Ed448"],
    );
    let x25519 = openssl(&["genpkey", "-algorithm", "X25519"], None);
    assert_invalid(
        &serve(&c.leaf.pem(), &x25519),
        "private_key",
        "unsupported_key",
        &["cannot sign"],
    );
    let rsa1024 = openssl(&["genrsa", "-traditional", "1024"], None);
    assert_invalid(
        &serve(&c.leaf.pem(), &rsa1024),
        "private_key",
        "unsupported_key",
        &["the RSA key is 1024 bits"],
    );
    let rsa1024_pkcs8 = openssl(&["pkey"], Some(&rsa1024));
    assert_invalid(
        &serve(&c.leaf.pem(), &rsa1024_pkcs8),
        "private_key",
        "unsupported_key",
        &["the RSA key is 1024 bits"],
    );
    let ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    assert_invalid(
        &serve(&c.leaf.pem(), ssh),
        "private_key",
        "unsupported_key",
        &["OpenSSH private key"],
    );
}

#[test]
fn p521_is_accepted_as_rustls_signs_with_it() {
    let text = openssl(
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        None,
    );
    let kp = KeyPair::from_pem_and_sign_algo(&text, &rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let leaf = build(params("www.example.com", false), kp, None);
    validate::server(&leaf.pem(), &text, NOW).unwrap();
}

#[test]
fn key_that_does_not_parse() {
    let c = chain();
    let junk = "-----BEGIN PRIVATE KEY-----\nAAECAwQFBgcICQ==\n-----END PRIVATE KEY-----\n";
    assert_invalid(
        &serve(&c.leaf.pem(), junk),
        "private_key",
        "invalid_key",
        &["the private key could not be read"],
    );
    // PKCS#8 content under a PKCS#1 label.
    let mislabelled = c.leaf.key_pem().replace("PRIVATE KEY", "RSA PRIVATE KEY");
    assert_invalid(
        &serve(&c.leaf.pem(), &mislabelled),
        "private_key",
        "invalid_key",
        &[
            "the -----BEGIN RSA PRIVATE KEY----- block does not hold a PKCS#1 RSA key",
            "-----BEGIN PRIVATE KEY-----",
        ],
    );
    // A public key.
    assert_invalid(
        &serve(&c.leaf.pem(), &c.leaf.key.public_key_pem()),
        "private_key",
        "invalid_key",
        &["is a public key; upload the private key"],
    );
}

#[test]
fn more_than_one_key() {
    let c = chain();
    let two = format!("{}\n{}", c.leaf.key_pem(), c.int.key_pem());
    assert_invalid(
        &serve(&c.leaf.pem(), &two),
        "private_key",
        "invalid_key",
        &["holds 2 private keys", "give exactly one"],
    );
}

#[test]
fn key_mismatch() {
    let c = chain();
    assert_invalid(
        &serve(&join(&[&c.leaf, &c.int]), &p256().serialize_pem()),
        "private_key",
        "key_mismatch",
        &["the private key does not belong to the first (leaf) certificate"],
    );
    // The intermediate's key: say which certificate it belongs to.
    assert_invalid(
        &serve(&join(&[&c.leaf, &c.int]), &c.int.key_pem()),
        "private_key",
        "key_mismatch",
        &["it belongs to certificate 2"],
    );
    // An RSA key for an ECDSA certificate.
    assert_invalid(
        &serve(&c.leaf.pem(), rsa_pkcs1_pem()),
        "private_key",
        "key_mismatch",
        &["(CN=www.example.com)"],
    );
}

// ------------------------------------------------------------ client CAs

#[test]
fn client_ca_bundle() {
    let c = chain();
    let other = build(params("Other Root", true), key(&rcgen::PKCS_RSA_SHA256), None);
    let ok = validate::client_ca(&join(&[&c.int, &c.root, &other]), NOW).unwrap();
    assert_eq!(ok.cas.len(), 3);
    assert_eq!(ok.meta.subject, "CN=Weir Test Intermediate");
    assert_eq!(ok.meta.issuer, "CN=Weir Test Root");
    assert!(ok.meta.sans.is_empty());
    assert_eq!(ok.meta.fingerprint_sha256, colon_hex(&Sha256::digest(c.int.der())));
    assert_eq!(validate::load_cas(&ok.certificate_pem).unwrap(), ok.cas);
    let again = validate::client_ca(&ok.certificate_pem, NOW).unwrap();
    assert_eq!(again.meta, ok.meta);
}

#[test]
fn client_ca_refuses_non_ca() {
    let c = chain();
    let err = refused(validate::client_ca(&join(&[&c.root, &c.leaf]), NOW));
    assert_invalid(
        &err,
        "certificate",
        "not_a_ca",
        &[
            "certificate 2 (CN=www.example.com) is not a CA certificate; a client certificate entry holds the CA(s) \
             that sign acceptable client certificates",
        ],
    );
    let err = refused(validate::client_ca(&c.leaf.pem(), NOW));
    assert_invalid(
        &err,
        "certificate",
        "not_a_ca",
        &["certificate 1 (CN=www.example.com) is not a CA"],
    );
    // basicConstraints CA:FALSE, explicitly.
    let mut p = params("Explicit Not CA", false);
    p.is_ca = IsCa::ExplicitNoCa;
    let explicit = build(p, p256(), None);
    assert_eq!(refused(validate::client_ca(&explicit.pem(), NOW)).code, "not_a_ca");
    // CA:TRUE but a key usage without keyCertSign.
    let mut p = params("Odd CA", true);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let odd = build(p, p256(), None);
    assert_invalid(
        &refused(validate::client_ca(&odd.pem(), NOW)),
        "certificate",
        "not_a_ca",
        &["does not allow signing certificates"],
    );
}

#[test]
fn client_ca_dates() {
    let mut p = params("Old Root", true);
    p.not_before = datetime!(2020-01-01 00:00 UTC);
    p.not_after = datetime!(2025-01-01 00:00 UTC);
    let old = build(p, p256(), None);
    assert_invalid(
        &refused(validate::client_ca(&old.pem(), NOW)),
        "certificate",
        "expired",
        &["certificate 1 (CN=Old Root) expired on 2025-01-01T00:00:00Z"],
    );
    let mut p = params("Future Root", true);
    p.not_before = datetime!(2031-01-01 00:00 UTC);
    let future = build(p, p256(), None);
    let c = chain();
    assert_invalid(
        &refused(validate::client_ca(&join(&[&c.root, &future]), NOW)),
        "certificate",
        "not_yet_valid",
        &["certificate 2 (CN=Future Root) is not valid before 2031-01-01T00:00:00Z"],
    );
}

#[test]
fn client_ca_refuses_keys_and_duplicates() {
    let c = chain();
    let with_key = format!("{}{}", c.root.pem(), c.root.key_pem());
    assert_invalid(
        &refused(validate::client_ca(&with_key, NOW)),
        "certificate",
        "invalid_pem",
        &["is a private key", "private_key field"],
    );
    assert_invalid(
        &refused(validate::client_ca(&join(&[&c.root, &c.root]), NOW)),
        "certificate",
        "invalid_certificate",
        &["certificate 2 repeats certificate 1"],
    );
    assert_invalid(
        &refused(validate::client_ca("", NOW)),
        "certificate",
        "invalid_pem",
        &["no PEM block found; expected -----BEGIN CERTIFICATE-----"],
    );
}

// ------------------------------------------------------------ loading

#[test]
fn load_refuses_corrupt_input() {
    let c = chain();
    let ok = validate::server(&c.leaf.pem(), &c.leaf.key_pem(), NOW).unwrap();
    let corrupt = ok.certificate_pem.replacen('M', "#", 1);
    assert_eq!(
        validate::load_server(&corrupt, &ok.private_key_pem).unwrap_err().code,
        "invalid_pem"
    );
    assert_eq!(
        validate::load_server(&ok.certificate_pem, "").unwrap_err().field,
        "private_key"
    );
    assert_eq!(validate::load_cas("garbage").unwrap_err().code, "invalid_pem");
    // Loading does not look at dates.
    let leaf = dated(datetime!(2020-01-01 00:00 UTC), datetime!(2021-01-01 00:00 UTC));
    let (chain, _) = validate::load_server(&leaf.pem(), &leaf.key_pem()).unwrap();
    assert_eq!(chain.len(), 1);
}
