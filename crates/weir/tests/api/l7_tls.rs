//! https VServers end to end: TLS offload with one-way and mutual
//! authentication, SNI, protocol versions, live certificate rotation and
//! mode changes, HTTP/2 by ALPN; against the real binary, with rustls,
//! curl and openssl as clients.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::http_kit::{Client, Reply, Site, get, http_site};
use crate::kit::{ADMIN, Server};

/// A test certificate authority.
struct Pki {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

/// A leaf: its chain PEM (leaf first), key PEM, and leaf DER.
struct Leaf {
    chain: String,
    key: String,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let key = KeyPair::generate().expect("ca key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).expect("ca cert");
        Pki {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(p, key),
        }
    }

    fn leaf(&self, names: &[&str], serial: u64, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
        p.distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("client"));
        p.serial_number = Some(serial.into());
        p.extended_key_usages = vec![usage];
        let cert = p.signed_by(&key, &self.issuer).expect("leaf cert");
        Leaf {
            chain: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    fn server(&self, names: &[&str], serial: u64) -> Leaf {
        self.leaf(names, serial, ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn client(&self, name: &str) -> Leaf {
        self.leaf(&[name], 7, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

async fn upload_server(s: &Server, leaf: &Leaf) -> String {
    let r = s
        .post(
            ADMIN,
            "/v1/certificates",
            json!({"type": "server", "name": "site", "certificate": leaf.chain, "private_key": leaf.key}),
        )
        .await;
    r.ok(201);
    r.id()
}

async fn upload_ca(s: &Server, pki: &Pki) -> String {
    let r = s
        .post(
            ADMIN,
            "/v1/certificates",
            json!({"type": "client", "name": "client-ca", "certificate": pki.pem}),
        )
        .await;
    r.ok(201);
    r.id()
}

/// An https site on `127.70.<net>.1:8443` with one backend answering 200.
async fn https_site(s: &Server, net: u8, tls: Value) -> Site {
    let site = http_site(s, net, json!({"protocol": "https", "port": 8443, "tls": tls})).await;
    site.backend(s, "b1", Reply::Ok).await;
    site
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A rustls client trusting `ca`, presenting `client` when given.
fn client_config(ca: &Pki, client: Option<&Leaf>, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).expect("root");
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut cfg = match client {
        Some(l) => {
            let key = PrivateKeyDer::try_from(
                rustls_pemfile_free_key(&l.key), // PKCS#8 from rcgen
            )
            .expect("client key");
            b.with_client_auth_cert(vec![l.der.clone()], key).expect("client auth")
        }
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Every handshake a full one: a resumed session shows the certificate
    // of the session it resumes.
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

/// The DER inside a PKCS#8 PEM block.
fn rustls_pemfile_free_key(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .expect("pkcs8 pem")
        .secret_pkcs8_der()
        .to_vec()
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A TLS connection to `addr` with SNI `name`.
async fn dial(addr: SocketAddr, name: &str, cfg: Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
    let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    let server_name = ServerName::try_from(name.to_string()).map_err(std::io::Error::other)?;
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio_rustls::TlsConnector::from(cfg).connect(server_name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("handshake timed out"))?
}

fn peer_leaf(t: &Tls) -> CertificateDer<'static> {
    t.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("server certificate")
        .clone()
        .into_owned()
}

/// One GET over a new TLS connection: the status, or an error text.
async fn try_get(
    addr: SocketAddr,
    name: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> Result<(u16, CertificateDer<'static>), String> {
    let t = dial(addr, name, cfg).await.map_err(|e| format!("handshake: {e}"))?;
    let leaf = peer_leaf(&t);
    let r = tokio::time::timeout(Duration::from_secs(5), async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut t = t;
        t.write_all(&get("/", name)).await?;
        t.flush().await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = t.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::other(format!(
                    "closed after {:?}",
                    String::from_utf8_lossy(&buf)
                )));
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_string())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return Ok(text[9..12].parse::<u16>().unwrap_or(0));
                }
            }
        }
    })
    .await
    .map_err(|_| "response timed out".to_string())?
    .map_err(|e| format!("request: {e}"))?;
    Ok((r, leaf))
}

async fn handshake_failures(s: &Server) -> u64 {
    let text = metrics(s).await;
    text.lines()
        .find_map(|l| l.strip_prefix("weir_dataplane_tls_handshake_failed_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no handshake failure counter in {text}"))
}

async fn metrics(s: &Server) -> String {
    s.http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

fn tmp_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write pem");
    p.to_string_lossy().to_string()
}

/// Runs a client tool off the runtime (the test's backends run on it).
async fn run(program: &'static str, args: Vec<String>) -> (bool, String) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(program)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
    })
    .await
    .expect("join")
    .expect("run tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn curl(args: &[&str]) -> (bool, String) {
    let mut all: Vec<String> = ["-sS", "--max-time", "10"].iter().map(|s| s.to_string()).collect();
    all.extend(args.iter().map(|s| s.to_string()));
    run("curl", all).await
}

/// `openssl s_client` with `args`, stdin closed at once.
async fn s_client(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let mut all = vec!["s_client".to_string(), "-connect".to_string(), addr.to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    run("openssl", all).await
}

#[tokio::test]
async fn one_way_tls_reaches_the_backend_with_https_headers() {
    let s = Server::start().await;
    let ca = Pki::new("Weir Test CA");
    let leaf = ca.server(&["www.example.test"], 1);
    let cert = upload_server(&s, &leaf).await;
    let site = https_site(&s, 80, json!({"mode": "one_way", "server_certificate_id": cert})).await;
    let (b, _) = site.backend(&s, "b2", Reply::Ok).await;

    // rustls client, HTTP/1.1 through the kit's parser.
    let t = dial(site.addr, "www.example.test", client_config(&ca, None, &[b"http/1.1"]))
        .await
        .expect("handshake");
    assert_eq!(peer_leaf(&t), leaf.der);
    let mut c = Client::over(t);
    for _ in 0..4 {
        c.send(&crate::http_kit::request(
            "GET",
            "/x",
            "www.example.test",
            &[("X-Forwarded-Proto", "http")],
            b"",
        ))
        .await;
        assert_eq!(c.response().await.status(), 200);
    }
    // Round robin over two backends: b2 got two of the four.
    let seen = b.requests();
    assert_eq!(seen.len(), 2, "b2 saw {seen:?}");
    assert_eq!(seen[0].head.get("x-forwarded-proto"), Some("https"));

    // curl with the CA file, by name.
    let dir = tempfile::tempdir().expect("tmp");
    let ca_file = tmp_file(&dir, "ca.pem", &ca.pem);
    let resolve = format!("www.example.test:8443:{}", site.addr.ip());
    let (ok, out) = curl(&[
        "--cacert",
        &ca_file,
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "https://www.example.test:8443/",
    ])
    .await;
    assert!(ok && out.trim() == "200", "curl: {out}");

    // openssl s_client verifies the chain.
    let (ok, out) = s_client(
        site.addr,
        &[
            "-servername",
            "www.example.test",
            "-CAfile",
            &ca_file,
            "-verify_return_error",
            "-brief",
        ],
    )
    .await;
    assert!(ok, "s_client: {out}");
    assert!(out.contains("Verification: OK"), "s_client: {out}");
}

#[tokio::test]
async fn tls_1_0_and_1_1_are_refused_1_2_and_1_3_accepted() {
    let s = Server::start().await;
    let ca = Pki::new("Weir Test CA");
    let cert = upload_server(&s, &ca.server(&["v.example.test"], 1)).await;
    let site = https_site(&s, 81, json!({"mode": "one_way", "server_certificate_id": cert})).await;
    for old in ["-tls1", "-tls1_1"] {
        // Security level 0 lets this client offer the old version at all,
        // so the refusal seen is the server's.
        let (ok, out) = s_client(site.addr, &[old, "-cipher", "DEFAULT:@SECLEVEL=0", "-brief"]).await;
        assert!(!ok, "{old} handshake succeeded: {out}");
        assert!(out.contains("alert"), "{old}: expected the server's alert: {out}");
    }
    for (v, name) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let (ok, out) = s_client(site.addr, &[v, "-brief"]).await;
        assert!(ok && out.contains(name), "{v}: {out}");
    }
    // TLS 1.2 suites: forward-secret AEAD only.
    let (ok, out) = s_client(site.addr, &["-tls1_2", "-cipher", "AES128-GCM-SHA256", "-brief"]).await;
    assert!(!ok, "RSA key exchange accepted: {out}");
    let (ok, out) = s_client(site.addr, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA", "-brief"]).await;
    assert!(!ok, "CBC suite accepted: {out}");
}

#[tokio::test]
async fn two_way_requires_a_client_certificate_from_the_bound_ca() {
    let s = Server::start().await;
    let ca = Pki::new("Weir Server CA");
    let clients = Pki::new("Weir Client CA");
    let other = Pki::new("Some Other CA");
    let cert = upload_server(&s, &ca.server(&["m.example.test"], 1)).await;
    let client_ca = upload_ca(&s, &clients).await;
    let site = https_site(
        &s,
        82,
        json!({"mode": "two_way", "server_certificate_id": cert, "client_certificate_id": client_ca}),
    )
    .await;
    let name = "m.example.test";
    // A port probe (connect, close without a ClientHello) is not a failed
    // handshake.
    drop(TcpStream::connect(site.addr).await.expect("probe"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(handshake_failures(&s).await, 0, "a probe counted as a failed handshake");
    let none = try_get(site.addr, name, client_config(&ca, None, &[])).await;
    assert!(none.is_err(), "no client certificate: {none:?}");
    let foreign = other.client("intruder");
    let wrong = try_get(site.addr, name, client_config(&ca, Some(&foreign), &[])).await;
    assert!(wrong.is_err(), "certificate from another CA: {wrong:?}");
    let good = clients.client("alice");
    let ok = try_get(site.addr, name, client_config(&ca, Some(&good), &[])).await;
    assert_eq!(ok.map(|r| r.0), Ok(200));

    // curl too: without a certificate it fails, with it 200.
    let dir = tempfile::tempdir().expect("tmp");
    let ca_file = tmp_file(&dir, "ca.pem", &ca.pem);
    let cert_file = tmp_file(&dir, "alice.pem", &good.chain);
    let key_file = tmp_file(&dir, "alice.key", &good.key);
    let resolve = format!("{name}:8443:{}", site.addr.ip());
    let url = format!("https://{name}:8443/");
    let (ok, out) = curl(&["--cacert", &ca_file, "--resolve", &resolve, "-o", "/dev/null", &url]).await;
    assert!(!ok, "curl without a client certificate: {out}");
    let (ok, out) = curl(&[
        "--cacert",
        &ca_file,
        "--resolve",
        &resolve,
        "--cert",
        &cert_file,
        "--key",
        &key_file,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ])
    .await;
    assert!(ok && out.trim() == "200", "curl with alice: {out}");
    // No certificate, and another CA's (curl's refusal too).
    assert!(handshake_failures(&s).await >= 3, "handshake failures counted");
}

#[tokio::test]
async fn sni_picks_exact_then_wildcard_then_default() {
    let s = Server::start().await;
    let ca = Pki::new("Weir Test CA");
    let default = ca.server(&["default.example.test"], 1);
    let wild = ca.server(&["*.wild.example.test"], 2);
    let exact = ca.server(&["api.wild.example.test"], 3);
    let ids = [
        upload_server(&s, &default).await,
        upload_server(&s, &wild).await,
        upload_server(&s, &exact).await,
    ];
    let site = https_site(
        &s,
        83,
        json!({"mode": "one_way", "server_certificate_id": ids[0], "extra_certificate_ids": [ids[1], ids[2]]}),
    )
    .await;
    let cfg = client_config(&ca, None, &[]);
    for (sni, want) in [
        ("api.wild.example.test", &exact.der),
        ("www.wild.example.test", &wild.der),
        ("default.example.test", &default.der),
    ] {
        let (status, leaf) = try_get(site.addr, sni, cfg.clone()).await.expect(sni);
        assert_eq!(status, 200, "{sni}");
        assert!(leaf == *want, "{sni}: wrong certificate");
    }
    // A name nothing covers gets the default (and fails name checks).
    let (ok, out) = s_client(site.addr, &["-servername", "nothing.test", "-brief"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("default.example.test"),
        "default certificate for an unknown name: {out}"
    );
}

#[tokio::test]
async fn certificate_rotation_under_load_fails_no_request() {
    let s = Server::start().await;
    let ca = Pki::new("Weir Test CA");
    let name = "rot.example.test";
    let old = ca.server(&[name], 100);
    let new = ca.server(&[name], 200);
    let old_id = upload_server(&s, &old).await;
    let new_id = upload_server(&s, &new).await;
    let site = https_site(&s, 84, json!({"mode": "one_way", "server_certificate_id": old_id})).await;
    let cfg = client_config(&ca, None, &[]);

    // A keep-alive connection from before the change.
    let t = dial(site.addr, name, cfg.clone()).await.expect("handshake");
    assert_eq!(peer_leaf(&t), old.der);
    let mut kept = Client::over(t);
    kept.send(&get("/", name)).await;
    assert_eq!(kept.response().await.status(), 200);

    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..4 {
        let (cfg, failures, done, stop) = (cfg.clone(), failures.clone(), done.clone(), stop.clone());
        let addr = site.addr;
        loops.push(tokio::spawn(async move {
            let mut last = None;
            // Bounded: at most 2,000 requests per loop.
            for _ in 0..2_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                match try_get(addr, name, cfg.clone()).await {
                    Ok((200, leaf)) => {
                        done.fetch_add(1, Ordering::SeqCst);
                        last = Some(leaf);
                    }
                    other => {
                        eprintln!("request failed: {:?}", other.map(|r| r.0));
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            last
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = done.load(Ordering::SeqCst);
    s.patch_applied(
        ADMIN,
        &site.url(""),
        json!({"tls": {"mode": "one_way", "server_certificate_id": new_id}}),
    )
    .await
    .ok(200);
    // New handshakes see the new certificate at once.
    let (status, leaf) = try_get(site.addr, name, cfg.clone()).await.expect("after rotation");
    assert_eq!(status, 200);
    assert!(leaf == new.der, "a handshake after the change got the old certificate");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for l in loops {
        let last = l.await.expect("loop").expect("some request succeeded");
        assert!(last == new.der, "the loop's last handshake got the old certificate");
    }
    assert_eq!(failures.load(Ordering::SeqCst), 0, "failed requests during rotation");
    assert!(
        done.load(Ordering::SeqCst) > before,
        "requests ran during and after the change"
    );

    // The connection from before the change goes on.
    kept.send(&get("/", name)).await;
    assert_eq!(kept.response().await.status(), 200);
    // The old certificate is no longer bound: it can go.
    s.delete(ADMIN, &format!("/v1/certificates/{old_id}")).await.ok(204);
}

#[tokio::test]
async fn mode_change_applies_to_new_handshakes_only() {
    let s = Server::start().await;
    let ca = Pki::new("Weir Test CA");
    let clients = Pki::new("Weir Client CA");
    let name = "mode.example.test";
    let cert = upload_server(&s, &ca.server(&[name], 1)).await;
    let client_ca = upload_ca(&s, &clients).await;
    let site = https_site(&s, 85, json!({"mode": "one_way", "server_certificate_id": cert})).await;
    let plain = client_config(&ca, None, &[]);
    let t = dial(site.addr, name, plain.clone()).await.expect("handshake");
    let mut kept = Client::over(t);
    kept.send(&get("/", name)).await;
    assert_eq!(kept.response().await.status(), 200);

    s.patch_applied(
        ADMIN,
        &site.url(""),
        json!({"tls": {"mode": "two_way", "server_certificate_id": cert, "client_certificate_id": client_ca}}),
    )
    .await
    .ok(200);
    assert!(
        try_get(site.addr, name, plain.clone()).await.is_err(),
        "new handshake without a client certificate"
    );
    let alice = clients.client("alice");
    assert_eq!(
        try_get(site.addr, name, client_config(&ca, Some(&alice), &[]))
            .await
            .map(|r| r.0),
        Ok(200)
    );
    kept.send(&get("/", name)).await;
    assert_eq!(
        kept.response().await.status(),
        200,
        "the connection from before the change goes on"
    );
}

#[tokio::test]
async fn http2_over_tls_by_alpn() {
    let s = Server::start().await;
    let ca = Pki::new("Weir Test CA");
    let name = "h2.example.test";
    let cert = upload_server(&s, &ca.server(&[name], 1)).await;
    let site = https_site(&s, 86, json!({"mode": "one_way", "server_certificate_id": cert})).await;
    let t = dial(site.addr, name, client_config(&ca, None, &[b"h2", b"http/1.1"]))
        .await
        .expect("handshake");
    assert_eq!(t.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(t);

    let dir = tempfile::tempdir().expect("tmp");
    let ca_file = tmp_file(&dir, "ca.pem", &ca.pem);
    let resolve = format!("{name}:8443:{}", site.addr.ip());
    let url = format!("https://{name}:8443/a");
    let (ok, out) = curl(&[
        "--http2",
        "--cacert",
        &ca_file,
        "--resolve",
        &resolve,
        "-w",
        "%{http_version} %{http_code}",
        "-o",
        "/dev/null",
        &url,
        "-o",
        "/dev/null",
        &url,
    ])
    .await;
    assert!(ok, "curl: {out}");
    assert_eq!(out.trim(), "2 2002 200", "two requests over HTTP/2");
    let stats = metrics(&s).await;
    assert!(
        stats.contains(&format!(
            "weir_vserver_http_requests_total{{lb=\"{}\",vserver=\"{}\"}} 2",
            site.lb, site.vs
        )),
        "requests counted on the https VServer: {stats}"
    );
}

#[tokio::test]
async fn sessions_resume_on_the_same_setting_only() {
    let s = Server::start().await;
    let ca = Pki::new("Weir Test CA");
    let clients = Pki::new("Weir Client CA");
    let name = "resume.example.test";
    let cert = upload_server(&s, &ca.server(&[name], 1)).await;
    let client_ca = upload_ca(&s, &clients).await;
    let site = https_site(&s, 87, json!({"mode": "one_way", "server_certificate_id": cert})).await;
    // A client that keeps its tickets.
    let mut cfg = (*client_config(&ca, None, &[])).clone();
    cfg.resumption = rustls::client::Resumption::in_memory_sessions(16);
    let cfg = Arc::new(cfg);
    let first = try_get_kind(site.addr, name, cfg.clone()).await;
    assert_eq!(first, Some(rustls::HandshakeKind::Full));
    let second = try_get_kind(site.addr, name, cfg.clone()).await;
    assert_eq!(
        second,
        Some(rustls::HandshakeKind::Resumed),
        "tickets are on by default"
    );

    // After a switch to two_way, no session from before may resume: the
    // client has no certificate, so its handshake must fail outright.
    s.patch_applied(
        ADMIN,
        &site.url(""),
        json!({"tls": {"mode": "two_way", "server_certificate_id": cert, "client_certificate_id": client_ca}}),
    )
    .await
    .ok(200);
    let r = try_get(site.addr, name, cfg.clone()).await;
    assert!(
        r.is_err(),
        "a session from the one_way setting resumed under two_way: {:?}",
        r.map(|x| x.0)
    );
}

/// The kind of handshake a new connection (with one GET) had.
async fn try_get_kind(addr: SocketAddr, name: &str, cfg: Arc<rustls::ClientConfig>) -> Option<rustls::HandshakeKind> {
    let t = dial(addr, name, cfg).await.expect("handshake");
    let kind = t.get_ref().1.handshake_kind();
    let mut c = Client::over(t);
    c.send(&get("/", name)).await;
    // TLS 1.3 tickets arrive after the handshake: once the response is
    // read, they have been too.
    assert_eq!(c.response().await.status(), 200);
    kind
}

#[tokio::test]
async fn websocket_and_large_bodies_over_tls() {
    let s = Server::start().await;
    let ca = Pki::new("Weir Test CA");
    let name = "ws.example.test";
    let cert = upload_server(&s, &ca.server(&[name], 1)).await;
    let site = http_site(
        &s,
        88,
        json!({"protocol": "https", "port": 8443, "tls": {"mode": "one_way", "server_certificate_id": cert}}),
    )
    .await;
    let (b, _) = site.backend(&s, "ws", Reply::Upgrade).await;
    let cfg = client_config(&ca, None, &[]);

    // A 1 MiB upload and its echo of the length, over TLS (no splice).
    let mut c = Client::over(dial(site.addr, name, cfg.clone()).await.expect("handshake"));
    let body: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 253) as u8).collect();
    c.send(&crate::http_kit::request("POST", "/up", name, &[], &body)).await;
    let r = c.response().await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.head.get("x-body-len"), Some("1048576"));

    // The upgrade: no early byte reaches the backend before its 101, then
    // raw bytes flow both ways through the TLS tunnel.
    let mut c = Client::over(dial(site.addr, name, cfg).await.expect("handshake"));
    let ws = format!(
        "GET /chat HTTP/1.1\r\nHost: {name}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nearly-bytes"
    );
    c.send(ws.as_bytes()).await;
    assert_eq!(c.response().await.status(), 101);
    assert_eq!(b.early_bytes(), 0, "client bytes reached the backend before its 101");
    assert_eq!(c.read_raw(11).await, b"early-bytes");
    let big: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    c.send(&big).await;
    assert_eq!(c.read_raw(big.len()).await, big, "echoed through the tunnel");
}

#[tokio::test]
async fn rules_and_cookie_persistence_work_the_same_over_tls() {
    let s = Server::start().await;
    let ca = Pki::new("Weir Test CA");
    let cert = upload_server(&s, &ca.server(&["shop.example.test", "api.example.test"], 1)).await;
    let site = http_site(
        &s,
        89,
        json!({"protocol": "https", "port": 8443, "persistence": {"mode": "insert_cookie"},
               "tls": {"mode": "one_way", "server_certificate_id": cert}}),
    )
    .await;
    let (_a, a_id) = site.backend(&s, "a", Reply::Ok).await;
    let (_b, _) = site.backend(&s, "b", Reply::Ok).await;
    let (_api, api_id) = site.backend(&s, "api", Reply::Ok).await;
    site.rule(&s, json!({"domain": "api.example.test", "path": "/v1"}), &[&api_id])
        .await;
    site.rule(&s, json!({"domain": "shop.example.test"}), &[&a_id]).await;
    let cfg = client_config(&ca, None, &[]);

    // Rules by Host and path, on one TLS connection.
    let mut c = Client::over(
        dial(site.addr, "api.example.test", cfg.clone())
            .await
            .expect("handshake"),
    );
    for (host, path, want) in [
        ("api.example.test", "/v1/items", "api"),
        ("API.Example.Test:8443", "/v1/../v1/x", "api"),
        ("shop.example.test", "/v1/items", "a"),
    ] {
        c.send(&get(path, host)).await;
        let r = c.response().await;
        assert_eq!((r.status(), r.text()), (200, want.to_string()), "{host}{path}");
    }

    // The persistence cookie: set once, Secure over https, then honoured.
    let mut c = Client::over(dial(site.addr, "shop.example.test", cfg).await.expect("handshake"));
    c.send(&get("/", "www.example.test")).await;
    let first = c.response().await;
    let value = first.set_cookie("WEIRSRV").expect("Set-Cookie: WEIRSRV");
    let line = first.head.all("set-cookie").join("; ");
    assert!(line.contains("Secure"), "an https cookie must be Secure: {line}");
    let pinned = first.text();
    for _ in 0..20 {
        c.send(&crate::http_kit::request(
            "GET",
            "/",
            "www.example.test",
            &[("Cookie", &format!("WEIRSRV={value}"))],
            b"",
        ))
        .await;
        let r = c.response().await;
        assert_eq!(r.text(), pinned, "the cookie's backend");
        assert!(r.set_cookie("WEIRSRV").is_none());
    }
}

/// Over TLS too, Weir's early closing answer (no backend: 503, the body
/// unread) reaches a client that sends its whole body before reading:
/// Weir sends close_notify and FIN after the answer and reads and drops
/// the rest instead of resetting the connection under the client's writes.
#[tokio::test]
async fn an_early_answer_reaches_a_tls_client_still_sending_its_body() {
    let s = Server::start().await;
    let ca = Pki::new("Weir Test CA");
    let name = "up.example.test";
    let cert = upload_server(&s, &ca.server(&[name], 1)).await;
    let site = http_site(
        &s,
        90,
        json!({"protocol": "https", "port": 8443, "tls": {"mode": "one_way", "server_certificate_id": cert}}),
    )
    .await;
    let c = dial(site.addr, name, client_config(&ca, None, &[]))
        .await
        .expect("handshake");
    let len = 16usize << 20;
    let head = format!("POST /up HTTP/1.1\r\nHost: {name}\r\nContent-Length: {len}\r\n\r\n");
    let got = crate::http_kit::upload_then_read(c, &head, len).await;
    assert!(got.starts_with("HTTP/1.1 503 "), "{got:?}");
    assert!(got.ends_with("no backend available\n"), "{got:?}");
}
