//! Certificates end to end: uploads the `openssl` CLI (and rcgen, for dates
//! in the past or future) produce are accepted with the right metadata and
//! never echo a key; broken uploads are refused naming the field and change
//! nothing; https VServers bind certificates (409 while bound, type-checked,
//! rebinding and deletes release them); tenants are isolated; the store is
//! private to Weir; and `weir cert …` drives it all.

use std::path::{Path, PathBuf};
use std::process::Output;

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::weir;
use crate::kit::{self, ADMIN, Resp, Server};

// ---------------------------------------------------------------- test PKI

/// Extension profiles for `openssl req` / `openssl x509 -req`.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[seed_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:seed.example.test,DNS:www.seed.example.test
";

/// Key kinds the tests generate.
#[derive(Clone, Copy)]
enum Key {
    /// PKCS#8 `PRIVATE KEY`, ECDSA P-256.
    P256,
    /// PKCS#8, ECDSA P-384.
    P384,
    /// SEC1 `EC PRIVATE KEY`, P-256 (`openssl ecparam -genkey`).
    P256Sec1,
    /// PKCS#8, RSA 2048.
    RsaPkcs8,
    /// PKCS#1 `RSA PRIVATE KEY`, RSA 2048 (`openssl genrsa -traditional`).
    RsaPkcs1,
}

/// A scratch directory of keys and certificates made with the `openssl` CLI.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A root CA `root`, an intermediate CA `int` signed by it, and the
    /// config the other certificates are made with.
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        pki.write("openssl.cnf", OPENSSL_CNF);
        pki.key("root", Key::P256);
        pki.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            "-subj",
            "/CN=Weir Test Root CA",
            "-days",
            "30",
            "-config",
            "openssl.cnf",
            "-extensions",
            "ca_ext",
            "-out",
            "root.pem",
        ]);
        pki.key("int", Key::P256);
        pki.sign("int", "/CN=Weir Test Intermediate CA", "root", CA_EXT);
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }

    /// Runs `openssl args…` in the directory; its stdout.
    #[track_caller]
    fn openssl(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl (is it installed? scripts/test installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Generates `<name>.key`.
    fn key(&self, name: &str, kind: Key) {
        let file = format!("{name}.key");
        match kind {
            Key::P256 | Key::P384 => {
                let curve = match kind {
                    Key::P384 => "ec_paramgen_curve:P-384",
                    _ => "ec_paramgen_curve:P-256",
                };
                self.openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", curve, "-out", &file])
            }
            Key::P256Sec1 => self.openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &file]),
            Key::RsaPkcs8 => self.openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &file,
            ]),
            Key::RsaPkcs1 => self.openssl(&["genrsa", "-traditional", "-out", &file, "2048"]),
        };
    }

    /// `<name>.pem`: a certificate for `<name>.key` with `subject`, issued by
    /// `<issuer>.pem`/`<issuer>.key` with the extensions `ext`.
    fn sign(&self, name: &str, subject: &str, issuer: &str, ext: &str) {
        let (csr, extfile) = (format!("{name}.csr"), format!("{name}.ext"));
        self.write(&extfile, ext);
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            subject,
            "-config",
            "openssl.cnf",
            "-out",
            &csr,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{issuer}.pem"),
            "-CAkey",
            &format!("{issuer}.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            &extfile,
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    /// A server leaf `<name>.pem` (key of `kind`) for `cn`, issued by the
    /// intermediate, with DNS SANs `cn` and `alt.<cn>` and IP 127.0.0.1.
    fn leaf(&self, name: &str, kind: Key, cn: &str) {
        self.key(name, kind);
        let ext = format!("{LEAF_EXT}subjectAltName = DNS:{cn},DNS:alt.{cn},IP:127.0.0.1\n");
        self.sign(name, &format!("/CN={cn}"), "int", &ext);
    }

    /// The "seed style" certificate: RSA 2048, PKCS#1 key, self-signed.
    fn seed(&self) {
        self.key("seed", Key::RsaPkcs1);
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "seed.key",
            "-subj",
            "/CN=seed.example.test",
            "-days",
            "365",
            "-config",
            "openssl.cnf",
            "-extensions",
            "seed_ext",
            "-out",
            "seed.pem",
        ]);
    }

    /// `<name>.pem` followed by its issuers (as named), as one text.
    fn chain(&self, names: &[&str]) -> String {
        names.iter().map(|n| self.read(&format!("{n}.pem"))).collect()
    }

    /// What `openssl x509` says about `<name>.pem`, normalised like the API:
    /// (lowercase colon-hex SHA-256 fingerprint, RFC 3339 not_before, not_after,
    /// lowercase colon-hex serial without leading zero bytes).
    fn facts(&self, name: &str) -> (String, String, String, String) {
        let pem = format!("{name}.pem");
        let out = self.openssl(&[
            "x509",
            "-in",
            &pem,
            "-noout",
            "-fingerprint",
            "-sha256",
            "-serial",
            "-dates",
            "-dateopt",
            "iso_8601",
        ]);
        let field = |prefix: &str| {
            out.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once('=')?;
                    k.trim().eq_ignore_ascii_case(prefix).then(|| v.trim().to_string())
                })
                .unwrap_or_else(|| panic!("no {prefix} in {out}"))
        };
        let date = |v: String| v.replace(' ', "T");
        (
            normalize_hex(&field("sha256 Fingerprint")),
            date(field("notBefore")),
            date(field("notAfter")),
            normalize_hex(&field("serial")),
        )
    }
}

const CA_EXT: &str = "\
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

const LEAF_EXT: &str = "\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Lowercase, colon separated byte pairs, leading zero bytes dropped.
fn normalize_hex(text: &str) -> String {
    let hex: String = text
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let hex = if hex.len() % 2 == 1 { format!("0{hex}") } else { hex };
    let pairs: Vec<&str> = (0..hex.len()).step_by(2).map(|i| &hex[i..i + 2]).collect();
    let first = pairs
        .iter()
        .position(|p| *p != "00")
        .unwrap_or(pairs.len().saturating_sub(1));
    pairs[first..].join(":")
}

/// A self-signed certificate (a CA when `ca`) valid only between the two
/// dates (openssl 3.0 cannot back-date): (certificate PEM, key PEM).
fn dated(cn: &str, ca: bool, from: (i32, u8, u8), to: (i32, u8, u8)) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![cn.to_string()]).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    }
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), key.serialize_pem())
}

// ---------------------------------------------------------------- API helpers

fn server_body(name: &str, certificate: &str, key: &str) -> Value {
    json!({"type": "server", "name": name, "certificate": certificate, "private_key": key})
}

fn client_body(name: &str, certificate: &str) -> Value {
    json!({"type": "client", "name": name, "certificate": certificate})
}

/// POSTs an upload that must be accepted; the created certificate.
async fn upload(s: &Server, token: &str, body: Value) -> Value {
    let r = s.post(token, "/v1/certificates", body).await;
    assert_no_key(&r.body);
    r.ok(201).clone()
}

/// One part of a `multipart/form-data` body: (name, filename, content).
type Part<'a> = (&'a str, Option<&'a str>, &'a str);

/// A `multipart/form-data` body of `parts` and its content type.
fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "----weir-test-7d9f1c2b";
    let mut body = String::new();
    for (name, file, content) in parts {
        body.push_str(&format!("--{BOUNDARY}\r\n"));
        match file {
            Some(f) => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                 Content-Type: application/x-pem-file\r\n\r\n"
            )),
            None => body.push_str(&format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n")),
        }
        body.push_str(content);
        body.push_str("\r\n");
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    (format!("multipart/form-data; boundary={BOUNDARY}"), body.into_bytes())
}

async fn post_multipart(s: &Server, token: &str, parts: &[Part<'_>]) -> Resp {
    let (ctype, body) = multipart(parts);
    let r = s
        .http
        .post(format!("{}/v1/certificates", s.base))
        .bearer_auth(token)
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = r.status();
    let revision = r
        .headers()
        .get("x-weir-revision")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let bytes = r.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp { status, body, revision }
}

/// No private key material in a response body.
#[track_caller]
fn assert_no_key(body: &Value) {
    let text = body.to_string();
    assert!(!text.contains("PRIVATE KEY"), "key material in {text}");
    assert!(!text.contains("private_key_pem"), "key field in {text}");
    let has_key_field = |v: &Value| v.get("private_key").is_some();
    assert!(!has_key_field(body), "private_key in {text}");
    for item in body["items"].as_array().into_iter().flatten() {
        assert!(!has_key_field(item), "private_key in {text}");
    }
}

/// Asserts no line of `key`'s base64 appears in `body`, except lines that
/// are also in `public` (the certificates: an EC key's PEM carries its
/// public point, which the certificate holds too).
#[track_caller]
fn assert_key_absent(body: &Value, key: &str, public: &str) {
    let text = body.to_string();
    let private: Vec<&str> = key
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 16 && !l.starts_with("-----") && !public.contains(l))
        .collect();
    assert!(!private.is_empty(), "no private line in {key}");
    for line in private {
        assert!(!text.contains(line), "key line {line} in {text}");
    }
}

/// Asserts a 400 refusal: code, field, and that the message contains `gist`
/// (case-insensitive).
#[track_caller]
fn refused(r: &Resp, code: &str, field: &str, gist: &str) {
    r.err(400, code, Some(field));
    let msg = r.body["error"]["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        msg.contains(&gist.to_lowercase()),
        "message of {code} should mention {gist:?}: {msg}"
    );
}

async fn total(s: &Server, token: &str) -> Value {
    s.get(token, "/v1/certificates").await.ok(200)["total"].clone()
}

async fn revision(s: &Server) -> Value {
    s.get(ADMIN, "/v1/system/status").await.ok(200)["revision"].clone()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

fn bound(v: &Value) -> Value {
    v["bound_vservers"].clone()
}

// ---------------------------------------------------------------- accepted

#[tokio::test]
async fn accepts_chains_keys_and_client_cas_without_echoing_keys() {
    let pki = Pki::new();
    pki.leaf("ec", Key::P256, "www.example.test");
    let s = Server::start().await;
    assert_eq!(total(&s, ADMIN).await, json!(0));

    // ECDSA P-256 leaf + intermediate, leaf first: every field checked.
    let chain = pki.chain(&["ec", "int"]);
    let key = pki.read("ec.key");
    assert!(key.contains("-----BEGIN PRIVATE KEY-----"), "{key}");
    let r = s
        .post(
            ADMIN,
            "/v1/certificates",
            json!({"type": "server", "name": "web", "certificate": chain, "private_key": key, "comment": "prod"}),
        )
        .await;
    let c = r.ok(201).clone();
    assert!(r.revision.is_some(), "no X-Weir-Revision");
    assert_no_key(&c);
    assert_key_absent(&c, &key, &chain);
    let cid = id(&c);
    assert!(cid.starts_with("cert-"), "{cid}");
    let (fingerprint, not_before, not_after, serial) = pki.facts("ec");
    assert_eq!(c["name"], "web");
    assert_eq!(c["type"], "server");
    assert_eq!(c["comment"], "prod");
    assert!(
        c["subject"].as_str().is_some_and(|x| x.contains("CN=www.example.test")),
        "{c}"
    );
    assert!(
        c["issuer"]
            .as_str()
            .is_some_and(|x| x.contains("CN=Weir Test Intermediate CA")),
        "{c}"
    );
    assert_eq!(
        c["sans"],
        json!(["www.example.test", "alt.www.example.test", "127.0.0.1"])
    );
    assert_eq!(
        normalize_hex(c["fingerprint_sha256"].as_str().unwrap_or_default()),
        fingerprint
    );
    assert_eq!(normalize_hex(c["serial"].as_str().unwrap_or_default()), serial);
    assert_eq!(c["not_before"], json!(not_before));
    assert_eq!(c["not_after"], json!(not_after));
    assert_eq!(bound(&c), json!([]));
    assert_eq!(c["certificate"], json!(chain), "the public chain, canonical PEM");
    assert!(c["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{c}");

    // GET one and the list show the same, still without the key.
    let got = s.get(ADMIN, &format!("/v1/certificates/{cid}")).await;
    assert_no_key(&got.body);
    assert_key_absent(&got.body, &key, &chain);
    assert_eq!(got.ok(200), &c);
    let list = s.get(ADMIN, "/v1/certificates").await;
    assert_no_key(&list.body);
    assert_key_absent(&list.body, &key, &chain);
    assert_eq!(list.ok(200)["total"], 1);
    assert_eq!(list.body["items"][0], c);

    // The "seed style" upload: RSA 2048, PKCS#1 key with 64-character lines.
    pki.seed();
    let seed_key = pki.read("seed.key");
    assert!(seed_key.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{seed_key}");
    assert!(seed_key.lines().all(|l| l.len() <= 64), "{seed_key}");
    let seed = upload(&s, ADMIN, server_body("seed", &pki.read("seed.pem"), &seed_key)).await;
    assert_key_absent(&seed, &seed_key, &pki.read("seed.pem"));
    assert_eq!(seed["subject"], "CN=seed.example.test");
    assert_eq!(seed["issuer"], "CN=seed.example.test");
    assert_eq!(seed["sans"], json!(["seed.example.test", "www.seed.example.test"]));
    assert_eq!(
        normalize_hex(seed["fingerprint_sha256"].as_str().unwrap_or_default()),
        pki.facts("seed").0
    );

    // RSA PKCS#8, with the root at the end of the chain.
    pki.leaf("rsa8", Key::RsaPkcs8, "rsa.example.test");
    let rsa8_key = pki.read("rsa8.key");
    assert!(rsa8_key.contains("-----BEGIN PRIVATE KEY-----"));
    let rsa8 = upload(
        &s,
        ADMIN,
        server_body("rsa8", &pki.chain(&["rsa8", "int", "root"]), &rsa8_key),
    )
    .await;
    assert_eq!(rsa8["subject"], "CN=rsa.example.test");
    assert_key_absent(&rsa8, &rsa8_key, &pki.chain(&["rsa8", "int", "root"]));

    // ECDSA P-384, and a SEC1 (`EC PRIVATE KEY`) P-256 key.
    pki.leaf("p384", Key::P384, "p384.example.test");
    let p384 = upload(
        &s,
        ADMIN,
        server_body("p384", &pki.chain(&["p384", "int"]), &pki.read("p384.key")),
    )
    .await;
    assert_eq!(
        normalize_hex(p384["fingerprint_sha256"].as_str().unwrap_or_default()),
        pki.facts("p384").0
    );
    pki.leaf("sec1", Key::P256Sec1, "sec1.example.test");
    let sec1_key = pki.read("sec1.key");
    assert!(sec1_key.contains("-----BEGIN EC PRIVATE KEY-----"), "{sec1_key}");
    upload(&s, ADMIN, server_body("sec1", &pki.chain(&["sec1", "int"]), &sec1_key)).await;

    // CRLF line endings: accepted, stored canonical (LF).
    let crlf = |t: &str| t.replace('\n', "\r\n");
    let r = upload(&s, ADMIN, server_body("crlf", &crlf(&chain), &crlf(&key))).await;
    assert_eq!(r["certificate"], json!(chain));
    assert_eq!(r["fingerprint_sha256"], c["fingerprint_sha256"]);

    // Blank lines between blocks (and around them).
    let spaced = format!("\n{}\n\n\n{}\n\n", pki.read("ec.pem"), pki.read("int.pem"));
    let r = upload(&s, ADMIN, server_body("spaced", &spaced, &format!("\n\n{key}\n\n"))).await;
    assert_eq!(r["certificate"], json!(chain));

    // Client CAs: one, and a bundle of two (first one's metadata).
    let ca = upload(&s, ADMIN, client_body("ca", &pki.read("root.pem"))).await;
    assert_eq!(ca["type"], "client");
    assert_eq!(ca["subject"], "CN=Weir Test Root CA");
    assert_eq!(bound(&ca), json!([]));
    assert_eq!(
        normalize_hex(ca["fingerprint_sha256"].as_str().unwrap_or_default()),
        pki.facts("root").0
    );
    let bundle = upload(&s, ADMIN, client_body("bundle", &pki.chain(&["int", "root"]))).await;
    assert_eq!(bundle["subject"], "CN=Weir Test Intermediate CA");
    assert_eq!(bundle["certificate"], json!(pki.chain(&["int", "root"])));

    // multipart/form-data: files for the PEMs, text for the rest.
    let r = post_multipart(
        &s,
        ADMIN,
        &[
            ("type", None, "server"),
            ("name", None, "form"),
            ("comment", None, "uploaded as a form"),
            ("certificate", Some("chain.pem"), &chain),
            ("private_key", Some("key.pem"), &key),
        ],
    )
    .await;
    assert_no_key(&r.body);
    let form = r.ok(201);
    assert_eq!(form["name"], "form");
    assert_eq!(form["comment"], "uploaded as a form");
    assert_eq!(form["fingerprint_sha256"], c["fingerprint_sha256"]);
    assert_eq!(form["certificate"], json!(chain));
    let r = post_multipart(
        &s,
        ADMIN,
        &[
            ("type", None, "client"),
            ("name", None, "form-ca"),
            ("certificate", None, &pki.read("root.pem")),
        ],
    )
    .await;
    assert_eq!(r.ok(201)["type"], "client");

    // Everything is listed, searchable, and no key anywhere.
    let list = s.get(ADMIN, "/v1/certificates?limit=100").await;
    assert_no_key(&list.body);
    let public = pki.chain(&["ec", "int", "root", "seed", "rsa8", "p384", "sec1"]);
    for k in [&key, &seed_key, &rsa8_key, &sec1_key] {
        assert_key_absent(&list.body, k, &public);
    }
    assert_eq!(list.ok(200)["total"], 11);
    let found = s.get(ADMIN, "/v1/certificates?search=SEED.example").await;
    assert_eq!(found.ok(200)["total"], 1);
    assert_eq!(found.body["items"][0]["id"], seed["id"]);

    // Unbound certificates delete; then they are gone.
    s.delete(ADMIN, &format!("/v1/certificates/{cid}")).await.ok(204);
    s.get(ADMIN, &format!("/v1/certificates/{cid}"))
        .await
        .err(404, "not_found", None);
    s.delete(ADMIN, &format!("/v1/certificates/{cid}"))
        .await
        .err(404, "not_found", None);
    assert_eq!(total(&s, ADMIN).await, json!(10));
}

// ---------------------------------------------------------------- refused

#[tokio::test]
async fn refuses_broken_uploads_naming_the_field_and_changes_nothing() {
    let pki = Pki::new();
    pki.leaf("ec", Key::P256, "www.example.test");
    pki.leaf("other", Key::P256, "other.example.test");
    pki.seed();
    let chain = pki.chain(&["ec", "int"]);
    let key = pki.read("ec.key");
    pki.openssl(&[
        "pkey",
        "-in",
        "ec.key",
        "-aes256",
        "-passout",
        "pass:x",
        "-out",
        "ec-enc.key",
    ]);
    let enc_pkcs8 = pki.read("ec-enc.key");
    assert!(enc_pkcs8.contains("ENCRYPTED PRIVATE KEY"), "{enc_pkcs8}");
    pki.openssl(&[
        "rsa",
        "-in",
        "seed.key",
        "-traditional",
        "-aes256",
        "-passout",
        "pass:x",
        "-out",
        "seed-enc.key",
    ]);
    let enc_pkcs1 = pki.read("seed-enc.key");
    assert!(enc_pkcs1.contains("Proc-Type: 4,ENCRYPTED"), "{enc_pkcs1}");
    let (expired, expired_key) = dated("expired.example.test", false, (2020, 1, 1), (2021, 1, 1));
    let (future, future_key) = dated("future.example.test", false, (2090, 1, 1), (2091, 1, 1));
    let (expired_ca, _) = dated("Expired CA", true, (2020, 1, 1), (2021, 1, 1));
    let (future_ca, _) = dated("Future CA", true, (2090, 1, 1), (2091, 1, 1));

    let s = Server::start().await;
    // One certificate already there: refusals must leave it and the count alone.
    upload(&s, ADMIN, server_body("keep", &chain, &key)).await;

    let bad_b64 = "-----BEGIN CERTIFICATE-----\nMIIB$$$$not*base64\n-----END CERTIFICATE-----\n";
    let not_x509 = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQh\n-----END CERTIFICATE-----\n";
    let cases: Vec<(&str, Value, &str, &str, &str)> = vec![
        (
            "garbage",
            server_body("g", "this is not PEM", &key),
            "invalid_pem",
            "certificate",
            "PEM",
        ),
        (
            "empty certificate",
            server_body("g", "", &key),
            "invalid_pem",
            "certificate",
            "PEM",
        ),
        (
            "bad base64",
            server_body("g", bad_b64, &key),
            "invalid_pem",
            "certificate",
            "base64",
        ),
        (
            "blank line inside a block",
            server_body("g", &pki.read("ec.pem").replacen('\n', "\n\n", 2), &key),
            "invalid_pem",
            "certificate",
            "blank line inside",
        ),
        (
            "text outside the blocks",
            server_body("g", &format!("subject=CN=www.example.test\n{chain}"), &key),
            "invalid_pem",
            "certificate",
            "outside a PEM block",
        ),
        (
            "not X.509",
            server_body("g", not_x509, &key),
            "invalid_certificate",
            "certificate",
            "X.509",
        ),
        (
            "key in the certificate field",
            server_body("g", &key, &key),
            "invalid_pem",
            "certificate",
            "private_key field",
        ),
        (
            "chain out of order",
            server_body("g", &pki.chain(&["int", "ec"]), &key),
            "chain_order",
            "certificate",
            "leaf first",
        ),
        (
            "chain with a foreign certificate",
            server_body("g", &pki.chain(&["ec", "seed"]), &key),
            "chain_order",
            "certificate",
            "not signed by certificate 2",
        ),
        (
            "duplicate in the chain",
            server_body("g", &pki.chain(&["ec", "int", "int"]), &key),
            "chain_order",
            "certificate",
            "duplicate",
        ),
        (
            "key of another leaf",
            server_body("g", &chain, &pki.read("other.key")),
            "key_mismatch",
            "private_key",
            "does not belong",
        ),
        (
            "key of the intermediate",
            server_body("g", &chain, &pki.read("int.key")),
            "key_mismatch",
            "private_key",
            "put that certificate first",
        ),
        (
            "encrypted PKCS#8 key",
            server_body("g", &chain, &enc_pkcs8),
            "encrypted_key",
            "private_key",
            "openssl",
        ),
        (
            "encrypted PKCS#1 key",
            server_body("g", &pki.read("seed.pem"), &enc_pkcs1),
            "encrypted_key",
            "private_key",
            "openssl",
        ),
        (
            "certificate in the key field",
            server_body("g", &chain, &pki.read("ec.pem")),
            "invalid_pem",
            "private_key",
            "certificate",
        ),
        (
            "garbage key",
            server_body("g", &chain, "nope"),
            "invalid_pem",
            "private_key",
            "PEM",
        ),
        (
            "expired leaf",
            server_body("g", &expired, &expired_key),
            "expired",
            "certificate",
            "expired on 2021-01-01",
        ),
        (
            "not yet valid leaf",
            server_body("g", &future, &future_key),
            "not_yet_valid",
            "certificate",
            "not valid before 2090-01-01",
        ),
        (
            "client type with a leaf",
            client_body("g", &pki.read("ec.pem")),
            "not_a_ca",
            "certificate",
            "not a CA",
        ),
        (
            "client type with a leaf after a CA",
            client_body("g", &pki.chain(&["root", "ec"])),
            "not_a_ca",
            "certificate",
            "certificate 2",
        ),
        (
            "client type with garbage",
            client_body("g", "-----BEGIN CERTIFICATE-----\nMIIB\n"),
            "invalid_pem",
            "certificate",
            "-----END CERTIFICATE-----",
        ),
        (
            "client type with an expired CA",
            client_body("g", &expired_ca),
            "expired",
            "certificate",
            "expired on 2021-01-01",
        ),
        (
            "client type with a CA not yet valid",
            client_body("g", &(pki.chain(&["root"]) + &future_ca)),
            "not_yet_valid",
            "certificate",
            "certificate 2",
        ),
        (
            "server type without private_key",
            json!({"type": "server", "name": "g", "certificate": chain}),
            "missing_field",
            "private_key",
            "private_key",
        ),
        (
            "client type with a private key",
            json!({"type": "client", "name": "g", "certificate": pki.read("root.pem"), "private_key": key}),
            "not_allowed",
            "private_key",
            "private key",
        ),
        (
            "unknown type",
            json!({"type": "ca", "name": "g", "certificate": pki.read("root.pem")}),
            "invalid_value",
            "type",
            "server",
        ),
        (
            "missing certificate",
            json!({"type": "server", "name": "g", "private_key": key}),
            "missing_field",
            "certificate",
            "certificate is required",
        ),
        (
            "empty name",
            server_body(" ", &chain, &key),
            "invalid_value",
            "name",
            "must not be empty",
        ),
    ];
    for (label, body, code, field, gist) in cases {
        let (before_total, before_rev) = (total(&s, ADMIN).await, revision(&s).await);
        let r = s.post(ADMIN, "/v1/certificates", body).await;
        assert_eq!(r.status.as_u16(), 400, "{label}: {}", r.body);
        assert_key_absent(&r.body, &key, &chain);
        refused(&r, code, field, gist);
        assert_eq!(total(&s, ADMIN).await, before_total, "{label} changed the list");
        assert_eq!(revision(&s).await, before_rev, "{label} committed a revision");
    }

    // The same refusals through multipart/form-data.
    let wrong_order = pki.chain(&["int", "ec"]);
    let form_cases: Vec<(&str, Vec<Part<'_>>, &str, &str, &str)> = vec![
        (
            "form: encrypted key",
            vec![
                ("type", None, "server"),
                ("name", None, "f"),
                ("certificate", Some("c.pem"), &chain),
                ("private_key", Some("k.pem"), &enc_pkcs8),
            ],
            "encrypted_key",
            "private_key",
            "openssl",
        ),
        (
            "form: out of order",
            vec![
                ("type", None, "server"),
                ("name", None, "f"),
                ("certificate", Some("c.pem"), &wrong_order),
                ("private_key", Some("k.pem"), &key),
            ],
            "chain_order",
            "certificate",
            "leaf first",
        ),
        (
            "form: no key",
            vec![
                ("type", None, "server"),
                ("name", None, "f"),
                ("certificate", Some("c.pem"), &chain),
            ],
            "missing_field",
            "private_key",
            "private_key",
        ),
    ];
    for (label, parts, code, field, gist) in form_cases {
        let (before_total, before_rev) = (total(&s, ADMIN).await, revision(&s).await);
        let r = post_multipart(&s, ADMIN, &parts).await;
        assert_eq!(r.status.as_u16(), 400, "{label}: {}", r.body);
        refused(&r, code, field, gist);
        assert_eq!(total(&s, ADMIN).await, before_total, "{label} changed the list");
        assert_eq!(revision(&s).await, before_rev, "{label} committed a revision");
    }
    // An unknown form field is named.
    let r = post_multipart(&s, ADMIN, &[("type", None, "server"), ("passphrase", None, "x")]).await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    assert_eq!(r.body["error"]["field"], "passphrase", "{}", r.body);
    assert_eq!(total(&s, ADMIN).await, json!(1));
}

// ---------------------------------------------------------------- binding

#[tokio::test]
async fn https_vservers_bind_certificates() {
    let pki = Pki::new();
    pki.leaf("a", Key::P256, "a.example.test");
    pki.leaf("b", Key::RsaPkcs8, "b.example.test");
    let s = Server::start().await;
    let a = id(&upload(
        &s,
        ADMIN,
        server_body("a", &pki.chain(&["a", "int"]), &pki.read("a.key")),
    )
    .await);
    let b = id(&upload(
        &s,
        ADMIN,
        server_body("b", &pki.chain(&["b", "int"]), &pki.read("b.key")),
    )
    .await);
    let ca = id(&upload(&s, ADMIN, client_body("ca", &pki.read("root.pem"))).await);
    let cert = |id: &str| format!("/v1/certificates/{id}");
    let bound_of = |id: String| {
        let s = &s;
        async move {
            let r = s.get(ADMIN, &format!("/v1/certificates/{id}")).await;
            bound(r.ok(200))
        }
    };

    let n = kit::net(&s, ADMIN, "127.0.0.0/8", "127.90.1.0/24", "127.90.1.10").await;
    let lb = kit::lb(&s, ADMIN, &n, "tls").await;
    let vss = format!("/v1/load-balancers/{lb}/vservers");
    let https = |tls: Value| json!({"protocol": "https", "port": 8443, "tls": tls});

    // Wrong types and unknown ids are refused, naming the field; nothing binds.
    let rev = revision(&s).await;
    let cases = [
        (
            json!({"mode": "one_way", "server_certificate_id": ca}),
            "tls.server_certificate_id",
            "server certificate",
        ),
        (
            json!({"mode": "two_way", "server_certificate_id": a, "client_certificate_id": b}),
            "tls.client_certificate_id",
            "client certificate",
        ),
        (
            json!({"mode": "one_way", "server_certificate_id": a, "extra_certificate_ids": [ca]}),
            "tls.extra_certificate_ids[0]",
            "server certificate",
        ),
        (
            json!({"mode": "one_way", "server_certificate_id": "cert-000000000000"}),
            "tls.server_certificate_id",
            "cert-000000000000",
        ),
    ];
    for (tls, field, gist) in cases {
        let r = s.post(ADMIN, &vss, https(tls.clone())).await;
        refused(&r, "invalid_reference", field, gist);
    }
    assert_eq!(revision(&s).await, rev, "a refused VServer committed");
    for c in [&a, &b, &ca] {
        assert_eq!(bound_of(c.clone()).await, json!([]), "{c} bound by a refused VServer");
    }

    // Bound: listed on the certificate, and the certificate cannot go.
    let vs = s
        .post_applied(
            ADMIN,
            &vss,
            https(json!({"mode": "one_way", "server_certificate_id": a})),
        )
        .await;
    let vs_id = vs.id();
    assert_eq!(vs.ok(201)["tls"]["server_certificate_id"], json!(a));
    assert_eq!(bound_of(a.clone()).await, json!([vs_id]));
    let list = s.get(ADMIN, "/v1/certificates").await;
    let listed = list.ok(200)["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["id"] == json!(a))
        .cloned()
        .unwrap_or_default();
    assert_eq!(bound(&listed), json!([vs_id]));
    let r = s.delete(ADMIN, &cert(&a)).await;
    r.err(409, "in_use", None);
    assert!(
        r.body["error"]["message"].as_str().unwrap_or_default().contains(&vs_id),
        "409 should name the VServer: {}",
        r.body
    );
    s.get(ADMIN, &cert(&a)).await.ok(200);

    // A PATCH that does not touch tls keeps the binding.
    let vs_path = format!("{vss}/{vs_id}");
    s.patch(ADMIN, &vs_path, json!({"idle_timeout_s": 30})).await.ok(200);
    assert_eq!(bound_of(a.clone()).await, json!([vs_id]));

    // A refused PATCH changes no binding.
    let r = s
        .patch(
            ADMIN,
            &vs_path,
            json!({"tls": {"mode": "one_way", "server_certificate_id": ca}}),
        )
        .await;
    refused(
        &r,
        "invalid_reference",
        "tls.server_certificate_id",
        "server certificate",
    );
    assert_eq!(bound_of(a.clone()).await, json!([vs_id]));
    assert_eq!(bound_of(ca.clone()).await, json!([]));

    // Rebinding to b (two_way with the CA): a is released and deletable.
    let r = s
        .patch_applied(
            ADMIN,
            &vs_path,
            json!({"tls": {"mode": "two_way", "server_certificate_id": b, "client_certificate_id": ca}}),
        )
        .await;
    assert_eq!(r.ok(200)["tls"]["server_certificate_id"], json!(b));
    assert_eq!(bound_of(a.clone()).await, json!([]));
    assert_eq!(bound_of(b.clone()).await, json!([vs_id]));
    assert_eq!(bound_of(ca.clone()).await, json!([vs_id]));
    s.delete(ADMIN, &cert(&a)).await.ok(204);
    s.delete(ADMIN, &cert(&b)).await.err(409, "in_use", None);
    s.delete(ADMIN, &cert(&ca)).await.err(409, "in_use", None);

    // Deleting the VServer unbinds everything it named.
    s.delete_applied(ADMIN, &vs_path).await.ok(204);
    assert_eq!(bound_of(b.clone()).await, json!([]));
    assert_eq!(bound_of(ca.clone()).await, json!([]));
    s.delete(ADMIN, &cert(&ca)).await.ok(204);

    // Two VServers share b (one as an SNI extra); deleting the LB unbinds both.
    let c = id(&upload(
        &s,
        ADMIN,
        server_body("c", &pki.chain(&["a", "int"]), &pki.read("a.key")),
    )
    .await);
    let v1 = s
        .post(
            ADMIN,
            &vss,
            https(json!({"mode": "one_way", "server_certificate_id": b})),
        )
        .await;
    v1.ok(201);
    let v2 = s
        .post(
            ADMIN,
            &vss,
            json!({"protocol": "https", "port": 9443,
                   "tls": {"mode": "one_way", "server_certificate_id": c, "extra_certificate_ids": [b]}}),
        )
        .await;
    v2.ok(201);
    let mut both = vec![v1.id(), v2.id()];
    both.sort();
    let mut got: Vec<String> = bound_of(b.clone())
        .await
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    got.sort();
    assert_eq!(got, both);
    assert_eq!(bound_of(c.clone()).await, json!([v2.id()]));
    s.delete_applied(ADMIN, &format!("/v1/load-balancers/{lb}"))
        .await
        .ok(204);
    assert_eq!(bound_of(b.clone()).await, json!([]));
    assert_eq!(bound_of(c.clone()).await, json!([]));
    s.delete(ADMIN, &cert(&b)).await.ok(204);
    s.delete(ADMIN, &cert(&c)).await.ok(204);
    assert_eq!(total(&s, ADMIN).await, json!(0));
}

// ---------------------------------------------------------------- tenancy

#[tokio::test]
async fn other_tenants_cannot_see_delete_or_use_a_certificate() {
    let pki = Pki::new();
    pki.leaf("a", Key::P256, "alice.example.test");
    let s = Server::start().await;
    let (alice_id, alice) = s.account("alice").await;
    let (_, bob) = s.account("bob").await;
    let c = upload(
        &s,
        &alice,
        server_body("alice-cert", &pki.chain(&["a", "int"]), &pki.read("a.key")),
    )
    .await;
    let cid = id(&c);
    assert_eq!(c["owner_id"], json!(alice_id));
    let path = format!("/v1/certificates/{cid}");

    s.get(&bob, &path).await.err(404, "not_found", None);
    s.delete(&bob, &path).await.err(404, "not_found", None);
    assert_eq!(total(&s, &bob).await, json!(0));
    let found = s.get(&bob, &format!("/v1/certificates?search={cid}")).await;
    assert_eq!(found.ok(200)["total"], 0);

    // Bob cannot name it from his own VServer.
    let n = kit::net(&s, &bob, "127.0.0.0/8", "127.90.2.0/24", "127.90.2.10").await;
    let lb = kit::lb(&s, &bob, &n, "bob").await;
    let r = s
        .post(
            &bob,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "https", "port": 8443, "tls": {"mode": "one_way", "server_certificate_id": cid}}),
        )
        .await;
    refused(&r, "invalid_reference", "tls.server_certificate_id", &cid);
    assert_eq!(bound(s.get(&alice, &path).await.ok(200)), json!([]));

    // Alice's sub-account sees its own certificates, not Alice's; Alice and the
    // admin see both.
    let sub = s
        .post(
            &alice,
            &format!("/v1/accounts/{alice_id}/sub-accounts"),
            json!({"name": "ops"}),
        )
        .await;
    let sub_token = sub.ok(201)["token"].as_str().unwrap_or_default().to_string();
    s.get(&sub_token, &path).await.err(404, "not_found", None);
    let mine = upload(&s, &sub_token, client_body("sub-ca", &pki.read("root.pem"))).await;
    s.get(&alice, &format!("/v1/certificates/{}", id(&mine))).await.ok(200);
    s.get(&bob, &format!("/v1/certificates/{}", id(&mine)))
        .await
        .err(404, "not_found", None);
    assert_eq!(total(&s, &alice).await, json!(2));
    assert_eq!(total(&s, &sub_token).await, json!(1));
    assert_eq!(total(&s, ADMIN).await, json!(2));

    // Still there after Bob's attempts; Alice deletes it.
    s.get(&alice, &path).await.ok(200);
    s.delete(&alice, &path).await.ok(204);

    // No token → 401.
    let r = s.call(Method::GET, "/v1/certificates", None, None).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
}

// ---------------------------------------------------------------- storage

#[cfg(unix)]
#[tokio::test]
async fn store_is_private_and_certificates_survive_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let pki = Pki::new();
    pki.leaf("a", Key::P256, "store.example.test");
    let tmp = tempfile::tempdir().expect("tempdir");
    // A data dir that starts world-readable: Weir must close it.
    let dir = tmp.path().join("weir-data");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let s = Server::start_in(&dir, &[]).await;
    let key = pki.read("a.key");
    let c = upload(&s, ADMIN, server_body("a", &pki.chain(&["a", "int"]), &key)).await;
    let cid = id(&c);
    let n = kit::net(&s, ADMIN, "127.0.0.0/8", "127.90.3.0/24", "127.90.3.10").await;
    let lb = kit::lb(&s, ADMIN, &n, "store").await;
    let vs = s
        .post(
            ADMIN,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "https", "port": 8443, "tls": {"mode": "one_way", "server_certificate_id": cid}}),
        )
        .await;
    vs.ok(201);

    assert_eq!(mode(&dir), 0o700, "data dir mode");
    assert_eq!(mode(&dir.join("weir.db")), 0o600, "weir.db mode");
    for entry in std::fs::read_dir(&dir).expect("read data dir") {
        let p = entry.expect("entry").path();
        assert_eq!(mode(&p) & 0o077, 0, "{} is readable by others", p.display());
    }

    // Acknowledged upload and binding survive a SIGKILL and restart.
    let _ = s.kill().await;
    let s = Server::start_in(&dir, &[]).await;
    let got = s.get(ADMIN, &format!("/v1/certificates/{cid}")).await;
    assert_no_key(&got.body);
    let got = got.ok(200);
    assert_eq!(got["fingerprint_sha256"], c["fingerprint_sha256"]);
    assert_eq!(got["certificate"], c["certificate"]);
    assert_eq!(bound(got), json!([vs.id()]));
    s.delete(ADMIN, &format!("/v1/certificates/{cid}"))
        .await
        .err(409, "in_use", None);
    assert_eq!(mode(&dir), 0o700, "data dir mode after restart");
    assert_eq!(mode(&dir.join("weir.db")), 0o600, "weir.db mode after restart");
}

// ---------------------------------------------------------------- CLI

#[track_caller]
fn success(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "weir {what} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[tokio::test]
async fn cli_uploads_lists_shows_and_deletes() {
    let pki = Pki::new();
    pki.leaf("web", Key::P256, "cli.example.test");
    pki.write("chain.pem", &pki.chain(&["web", "int"]));
    let s = Server::start().await;
    let (chain, key, root) = (pki.path("chain.pem"), pki.path("web.key"), pki.path("root.pem"));

    let out = weir(
        &s,
        &[
            "--output",
            "json",
            "cert",
            "upload",
            "--type",
            "server",
            "--name",
            "web",
            "--cert",
            path_str(&chain),
            "--key",
            path_str(&key),
            "--comment",
            "from the cli",
        ],
    )
    .await;
    let text = success(&out, "cert upload");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    let c: Value = serde_json::from_str(&text).expect("json output");
    let cid = id(&c);
    assert_eq!(c["type"], "server");
    assert_eq!(c["comment"], "from the cli");
    assert_eq!(
        normalize_hex(c["fingerprint_sha256"].as_str().unwrap_or_default()),
        pki.facts("web").0
    );
    // The CLI's JSON is the API's.
    assert_eq!(s.get(ADMIN, &format!("/v1/certificates/{cid}")).await.ok(200), &c);

    // A client CA, table output (no PEM text in the table).
    let out = weir(
        &s,
        &[
            "cert",
            "upload",
            "--type",
            "client",
            "--name",
            "root-ca",
            "--cert",
            path_str(&root),
        ],
    )
    .await;
    let table = success(&out, "cert upload --type client");
    assert!(table.contains("CN=Weir Test Root CA"), "{table}");
    assert!(!table.contains("BEGIN CERTIFICATE"), "{table}");

    // list: the columns and both rows.
    let out = weir(&s, &["cert", "list"]).await;
    let table = success(&out, "cert list");
    for header in ["ID", "NAME", "TYPE", "SUBJECT", "NOT AFTER", "BOUND"] {
        assert!(table.contains(header), "{header} missing: {table}");
    }
    assert!(
        table.contains(&cid) && table.contains("root-ca") && table.contains("CN=cli.example.test"),
        "{table}"
    );
    let list: Value =
        serde_json::from_str(&success(&weir(&s, &["--output", "json", "cert", "list"]).await, "list")).expect("json");
    assert_eq!(list, *s.get(ADMIN, "/v1/certificates").await.ok(200));
    assert_eq!(list["total"], 2);

    // show: table and JSON (with the public PEM, never the key).
    let table = success(&weir(&s, &["cert", "show", &cid]).await, "cert show");
    assert!(
        table.contains("fingerprint_sha256") && table.contains("cli.example.test"),
        "{table}"
    );
    let shown = success(
        &weir(&s, &["--output", "json", "cert", "show", &cid]).await,
        "cert show",
    );
    assert!(
        shown.contains("BEGIN CERTIFICATE") && !shown.contains("PRIVATE KEY"),
        "{shown}"
    );

    // delete, then show fails (exit 1).
    let out = weir(&s, &["cert", "delete", &cid]).await;
    assert!(success(&out, "cert delete").contains(&cid));
    let out = weir(&s, &["cert", "show", &cid]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(total(&s, ADMIN).await, json!(1));
}

#[tokio::test]
async fn cli_errors_name_the_cert_and_key_flags() {
    let pki = Pki::new();
    pki.leaf("web", Key::P256, "cli.example.test");
    pki.leaf("other", Key::P256, "other.example.test");
    pki.write("chain.pem", &pki.chain(&["web", "int"]));
    pki.write("garbage.pem", "not a certificate\n");
    pki.write("wrong-order.pem", &pki.chain(&["int", "web"]));
    let s = Server::start().await;
    let upload_args = |cert: &Path, key: &Path| {
        vec![
            "cert".to_string(),
            "upload".into(),
            "--type".into(),
            "server".into(),
            "--name".into(),
            "web".into(),
            "--cert".into(),
            path_str(cert).into(),
            "--key".into(),
            path_str(key).into(),
        ]
    };
    let run = |args: Vec<String>| {
        let s = &s;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = weir(s, &refs).await;
            (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
        }
    };

    // The API refuses the certificate: its message, and the flag.
    let (code, err) = run(upload_args(&pki.path("garbage.pem"), &pki.path("web.key"))).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("PEM") && err.contains("--cert"), "{err}");
    let (code, err) = run(upload_args(&pki.path("wrong-order.pem"), &pki.path("web.key"))).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("leaf first") && err.contains("--cert"), "{err}");
    // The API refuses the key.
    let (code, err) = run(upload_args(&pki.path("chain.pem"), &pki.path("other.key"))).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("does not belong") && err.contains("--key"), "{err}");
    // No key for a server certificate.
    let (code, err) = run(vec![
        "cert".into(),
        "upload".into(),
        "--type".into(),
        "server".into(),
        "--name".into(),
        "web".into(),
        "--cert".into(),
        path_str(&pki.path("chain.pem")).into(),
    ])
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--key"), "{err}");

    // Files the CLI cannot read: usage errors naming the flag and the file.
    let missing = pki.path("missing.key");
    let (code, err) = run(upload_args(&pki.path("chain.pem"), &missing)).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--key") && err.contains("missing.key"), "{err}");
    let (code, err) = run(upload_args(&pki.path("nope.pem"), &pki.path("web.key"))).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--cert") && err.contains("nope.pem"), "{err}");

    assert_eq!(total(&s, ADMIN).await, json!(0), "a refused upload created something");
}
