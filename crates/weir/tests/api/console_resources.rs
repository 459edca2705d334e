//! Console pages for certificates and the network resources (VPCs, subnets,
//! instances, elastic IPs), against the real server: they list what the
//! API holds for the signed-in account (nothing of other tenants), show
//! certificate details and expiry warnings, and escape every name.

use reqwest::Method;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::console_kit::Web;
use crate::kit::{self, Server};

const XSS: &str = "<script>alert(1)</script>";

/// A self-signed certificate for `sans` (the first is the CN) valid from
/// yesterday for `days` days: (certificate PEM, key PEM).
fn self_signed(sans: &[&str], days: i64, ca: bool) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, sans[0]);
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    }
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(days);
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), key.serialize_pem())
}

async fn upload_server(s: &Server, token: &str, name: &str, sans: &[&str], days: i64) -> Value {
    let (cert, key) = self_signed(sans, days, false);
    let r = s
        .post(
            token,
            "/v1/certificates",
            json!({"type": "server", "name": name, "certificate": cert, "private_key": key, "comment": format!("{name} comment")}),
        )
        .await;
    r.ok(201).clone()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// The `<tr>` of `id` (up to its `</tr>`).
#[track_caller]
fn row<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<tr data-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}"));
    let end = html[start..].find("</tr>").map_or(html.len(), |e| start + e);
    &html[start..end]
}

#[track_caller]
fn page_ok(status: u16, html: &str, path: &str) {
    assert_eq!(status, 200, "{path}: {html}");
    assert!(html.contains("<meta name=\"csrf-token\""), "{path} is a console page");
}

#[tokio::test]
async fn network_pages_list_what_the_api_holds() {
    let s = Server::start().await;
    let (_, t) = s.account("net-pages").await;
    let web = Web::sign_in(&s, &t).await;

    // Empty states say what to do first.
    let (st, html) = web.page("/vpcs").await;
    page_ok(st, &html, "/vpcs");
    assert!(html.contains("No VPCs yet"), "{html}");
    assert!(html.contains("id=\"vpc-create\""));
    let (st, html) = web.page("/subnets").await;
    page_ok(st, &html, "/subnets");
    assert!(html.contains("Create a VPC first"), "{html}");
    assert!(!html.contains("id=\"subnet-create\""), "no subnet form without a VPC");
    let (st, html) = web.page("/instances").await;
    page_ok(st, &html, "/instances");
    assert!(html.contains("Create a VPC first"), "{html}");
    let (st, html) = web.page("/eips").await;
    page_ok(st, &html, "/eips");
    assert!(html.contains("No elastic IPs yet"), "{html}");

    let n = kit::net(&s, &t, "127.0.0.0/8", "127.141.1.0/24", "127.141.1.10").await;
    let sub2 = s
        .post(
            &t,
            "/v1/subnets",
            json!({"vpc_id": n.vpc, "name": "pgsql", "cidr": "127.141.2.0/24"}),
        )
        .await;
    sub2.ok(201);
    let free = s.post(&t, "/v1/eips", json!({"name": "spare"})).await;
    let free_addr = free.ok(201)["address"].as_str().unwrap().to_string();
    let bound = s.post(&t, "/v1/eips", json!({})).await;
    bound.ok(201);
    let lb = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "front", "network_type": "external", "vpc_id": n.vpc, "subnet_id": n.subnet, "eip_id": bound.id()}),
        )
        .await;
    lb.ok(201);

    // VPCs: name, id, CIDR, subnet count.
    let (st, html) = web.page("/vpcs").await;
    page_ok(st, &html, "/vpcs");
    let r = row(&html, &n.vpc);
    assert!(r.contains("lab") && r.contains("127.0.0.0/8"), "{r}");
    assert!(r.contains("<td>2 · "), "two subnets: {r}");
    assert!(
        r.contains(&format!("data-api=\"/v1/vpcs/{}\" data-method=\"PATCH\"", n.vpc)),
        "rename: {r}"
    );
    assert!(
        r.contains(&format!("data-api=\"/v1/vpcs/{}\" data-method=\"DELETE\"", n.vpc)),
        "delete: {r}"
    );
    assert!(r.contains("data-confirm="), "delete asks first: {r}");

    // Subnets: their VPC by name, the create form offers the VPC.
    let (st, html) = web.page("/subnets").await;
    page_ok(st, &html, "/subnets");
    for (sid, name, cidr) in [
        (&n.subnet, "web", "127.141.1.0/24"),
        (&sub2.id(), "pgsql", "127.141.2.0/24"),
    ] {
        let r = row(&html, sid);
        assert!(r.contains(name) && r.contains(cidr), "{r}");
        assert!(r.contains(&format!("lab ({}) 127.0.0.0/8", n.vpc)), "VPC by name: {r}");
    }
    assert!(html.contains("id=\"subnet-create\""));
    assert!(html.contains(&format!("<option value=\"{}\"", n.vpc)), "VPC offered");
    // `?vpc=` preselects it.
    let (_, html) = web.page(&format!("/subnets?vpc={}", n.vpc)).await;
    assert!(html.contains(&format!("<option value=\"{}\" selected>", n.vpc)));

    // Instances: IP, subnet and VPC by name; subnets offered with their VPC.
    let (st, html) = web.page("/instances").await;
    page_ok(st, &html, "/instances");
    let r = row(&html, &n.instance);
    assert!(r.contains("vm1") && r.contains("127.141.1.10"), "{r}");
    assert!(
        r.contains(&format!("web ({}) 127.141.1.0/24", n.subnet)),
        "subnet by name: {r}"
    );
    assert!(r.contains(&format!("lab ({})", n.vpc)), "VPC by name: {r}");
    assert!(html.contains(&format!(
        "<option value=\"{}\">web (127.141.1.0/24, {}) in VPC lab</option>",
        n.subnet, n.subnet
    )));

    // EIPs: address, name, the LB it is bound to.
    let (st, html) = web.page("/eips").await;
    page_ok(st, &html, "/eips");
    let r = row(&html, &free.id());
    assert!(
        r.contains(&free_addr) && r.contains("spare") && r.contains("Not bound"),
        "{r}"
    );
    let r = row(&html, &bound.id());
    assert!(
        r.contains(&format!("<a href=\"/lbs/{}\">front ({})</a>", lb.id(), lb.id())),
        "{r}"
    );

    // Search goes to the API. The term has letters no hex id can hold
    // (search matches ids too: "db" matched a random id ~4% of runs).
    let (_, html) = web.page("/subnets?search=pgsql").await;
    assert!(html.contains(&sub2.id()) && !html.contains(&format!("data-id=\"{}\"", n.subnet)));
    let (_, html) = web.page("/vpcs?search=nothing-like-this").await;
    assert!(html.contains("No VPC matches"), "{html}");

    // What the page's buttons send: rename shows up, in-use delete is a 409
    // with a message (app.js flashes it) and the VPC stays listed.
    web.api(
        Method::PATCH,
        &format!("/v1/vpcs/{}", n.vpc),
        Some(json!({"name": "lab-renamed"})),
    )
    .await
    .ok(200);
    let r = web.api(Method::DELETE, &format!("/v1/vpcs/{}", n.vpc), None).await;
    assert_eq!(r.status.as_u16(), 409, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("subnet"));
    let (_, html) = web.page("/vpcs").await;
    assert!(row(&html, &n.vpc).contains("lab-renamed"));
    let r = web.api(Method::DELETE, &format!("/v1/eips/{}", bound.id()), None).await;
    assert_eq!(r.status.as_u16(), 409, "{:?}", r.body);
    web.api(Method::DELETE, &format!("/v1/eips/{}", free.id()), None)
        .await
        .ok(204);
    let (_, html) = web.page("/eips").await;
    assert!(!html.contains(&free.id()) && html.contains(&bound.id()));

    // A create error names its field, and the form has that field's slot.
    let r = web
        .api(
            Method::POST,
            "/v1/vpcs",
            Some(json!({"name": "x", "cidr": "300.0.0.0/8"})),
        )
        .await;
    assert_eq!(r.body["error"]["field"], json!("cidr"));
    let (_, html) = web.page("/vpcs").await;
    assert!(html.contains("name=\"cidr\" placeholder=\"10.0.0.0/16\"><div class=\"err\"></div>"));

    // Signed out: the sign-in page, coming back here.
    let r = web.http.get(format!("{}/instances", s.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/sign-in?next=/instances");
}

#[tokio::test]
async fn certificate_pages_show_details_expiry_and_bindings() {
    let s = Server::start().await;
    let (_, t) = s.account("cert-pages").await;
    let web = Web::sign_in(&s, &t).await;

    let (st, html) = web.page("/certificates").await;
    page_ok(st, &html, "/certificates");
    assert!(html.contains("No certificates yet") && html.contains("href=\"/certificates/new\""));

    let soon = upload_server(&s, &t, "soon", &["soon.example.test", "www.soon.example.test"], 10).await;
    let later = upload_server(&s, &t, "later", &["later.example.test"], 400).await;
    let (ca_pem, _) = self_signed(&["Console Test CA"], 200, true);
    let ca = s
        .post(
            &t,
            "/v1/certificates",
            json!({"type": "client", "name": "clients", "certificate": ca_pem}),
        )
        .await;
    ca.ok(201);

    let (st, html) = web.page("/certificates").await;
    page_ok(st, &html, "/certificates");
    let r = row(&html, &id(&soon));
    assert!(
        r.starts_with(&format!("<tr data-id=\"{}\" class=\"warn\">", id(&soon))),
        "highlighted: {r}"
    );
    assert!(
        r.contains("<span class=\"badge warn\">expires in 10 days</span>"),
        "{r}"
    );
    assert!(r.contains(soon["subject"].as_str().unwrap()), "subject: {r}");
    assert!(
        r.contains("soon.example.test") && r.contains("www.soon.example.test"),
        "SANs: {r}"
    );
    let not_after = OffsetDateTime::parse(
        soon["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let day = format!(
        "{}-{:02}-{:02}",
        not_after.year(),
        u8::from(not_after.month()),
        not_after.day()
    );
    assert!(r.contains(&day), "expiry date {day}: {r}");
    let fp = soon["fingerprint_sha256"].as_str().unwrap();
    assert!(
        r.contains(&fp[..23]) && r.contains(&format!("title=\"{fp}\"")),
        "fingerprint: {r}"
    );
    assert!(r.contains("soon comment") && r.contains("Server"), "{r}");
    assert!(
        r.contains("<td class=\"cert-bound\"><span class=\"muted\">none</span>"),
        "{r}"
    );

    let r = row(&html, &id(&later));
    assert!(
        r.starts_with(&format!("<tr data-id=\"{}\">", id(&later))),
        "not highlighted: {r}"
    );
    assert!(!r.contains("badge warn"), "{r}");
    let r = row(&html, &id(&ca.body));
    assert!(r.contains("Client CA") && r.contains("Console Test CA"), "{r}");

    // Search is the API's (subject and SANs included).
    let (_, html) = web.page("/certificates?search=www.soon").await;
    assert!(html.contains(&id(&soon)) && !html.contains(&id(&later)), "search");
    let (_, html) = web.page("/certificates?search=none-such").await;
    assert!(html.contains("No certificate matches"));

    // Bound to an https VServer: linked, and deleting it is refused (409).
    let n = kit::net(&s, &t, "127.0.0.0/8", "127.142.1.0/24", "127.142.1.10").await;
    let lb = kit::lb(&s, &t, &n, "tls").await;
    let vs = s
        .post(
            &t,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "https", "port": 18443, "tls": {"mode": "one_way", "server_certificate_id": id(&soon)}}),
        )
        .await;
    vs.ok(201);
    let (_, html) = web.page("/certificates").await;
    let r = row(&html, &id(&soon));
    assert!(
        r.contains(&format!(
            "<a href=\"/lbs/{lb}/vservers/{}\">HTTPS:18443 ({})</a>",
            vs.id(),
            vs.id()
        )),
        "bound VServer linked: {r}"
    );
    assert!(r.contains(&format!(
        "data-api=\"/v1/certificates/{}\" data-method=\"DELETE\"",
        id(&soon)
    )));
    let del = web
        .api(Method::DELETE, &format!("/v1/certificates/{}", id(&soon)), None)
        .await;
    assert_eq!(del.status.as_u16(), 409, "{:?}", del.body);
    web.api(Method::DELETE, &format!("/v1/certificates/{}", id(&later)), None)
        .await
        .ok(204);
    let (_, html) = web.page("/certificates").await;
    assert!(html.contains(&id(&soon)) && !html.contains(&id(&later)));

    // The upload form: the fields the API takes, file pickers filling the
    // textareas, the key only for server certificates.
    let (st, html) = web.page("/certificates/new").await;
    page_ok(st, &html, "/certificates/new");
    for needle in [
        "id=\"cert-upload\" data-api=\"/v1/certificates\" data-then=\"/certificates\"",
        "<select id=\"cert-type\" name=\"type\">",
        "<option value=\"server\">",
        "<option value=\"client\">",
        "name=\"name\"",
        "name=\"comment\"",
        "<textarea id=\"cert-certificate\" name=\"certificate\"",
        "data-fill=\"certificate\"",
        "<div class=\"field\" data-show=\"type:server\"><label for=\"cert-private-key\">",
        "<textarea id=\"cert-private-key\" name=\"private_key\"",
        "data-fill=\"private_key\"",
        "<div class=\"form-error\"></div>",
        "leaf",
        "unencrypted",
    ] {
        assert!(html.contains(needle), "upload form lacks {needle}: {html}");
    }
    // The validator's errors name fields the form has, each with its slot.
    let (cert, _) = self_signed(&["x.example.test"], 100, false);
    let (_, other_key) = self_signed(&["y.example.test"], 100, false);
    for (body, field) in [
        (
            json!({"type": "server", "name": "bad", "certificate": "not pem", "private_key": other_key}),
            "certificate",
        ),
        (
            json!({"type": "server", "name": "bad", "certificate": cert, "private_key": other_key}),
            "private_key",
        ),
    ] {
        let r = web.api(Method::POST, "/v1/certificates", Some(body)).await;
        assert_eq!(r.status.as_u16(), 400, "{:?}", r.body);
        assert_eq!(r.body["error"]["field"], json!(field), "{:?}", r.body);
        let at = html.find(&format!("name=\"{field}\"")).unwrap();
        let field_start = html[..at].rfind("<div class=\"field\"").unwrap();
        let field_end = at + html[at..].find("<div class=\"hint\"").unwrap();
        assert!(
            html[field_start..field_end].contains("<div class=\"err\"></div>"),
            "{field} has an error slot"
        );
    }
}

#[tokio::test]
async fn other_tenants_resources_never_appear() {
    let s = Server::start().await;
    let (_, a) = s.account("alice").await;
    let (_, b) = s.account("bob").await;
    let n = kit::net(&s, &a, "127.0.0.0/8", "127.143.1.0/24", "127.143.1.10").await;
    for (path, body) in [
        ("/v1/vpcs", json!({"name": "alice-secret-vpc", "cidr": "10.77.0.0/16"})),
        ("/v1/eips", json!({"name": "alice-secret-eip"})),
    ] {
        s.post(&a, path, body).await.ok(201);
    }
    s.patch(
        &a,
        &format!("/v1/subnets/{}", n.subnet),
        json!({"name": "alice-secret-subnet"}),
    )
    .await
    .ok(200);
    s.patch(
        &a,
        &format!("/v1/instances/{}", n.instance),
        json!({"name": "alice-secret-vm"}),
    )
    .await
    .ok(200);
    let cert = upload_server(&s, &a, "alice-secret-cert", &["alice.example.test"], 90).await;
    let eips = s.get(&a, "/v1/eips").await;
    let eip = eips.ok(200)["items"][0]["id"].as_str().unwrap().to_string();
    let a_ids = [n.vpc.clone(), n.subnet.clone(), n.instance.clone(), eip, id(&cert)];

    // Bob has one of each of his own.
    let bn = kit::net(&s, &b, "127.0.0.0/8", "127.144.1.0/24", "127.144.1.10").await;
    let bob_eip = s.post(&b, "/v1/eips", json!({"name": "bob-eip"})).await;
    bob_eip.ok(201);
    let bob_cert = upload_server(&s, &b, "bob-cert", &["bob.example.test"], 90).await;

    let web_b = Web::sign_in(&s, &b).await;
    let pages = [
        ("/vpcs", bn.vpc.clone()),
        ("/subnets", bn.subnet.clone()),
        ("/instances", bn.instance.clone()),
        ("/eips", bob_eip.id()),
        ("/certificates", id(&bob_cert)),
    ];
    for (path, own) in &pages {
        for q in ["", "?search=secret"] {
            let (st, html) = web_b.page(&format!("{path}{q}")).await;
            page_ok(st, &html, path);
            if q.is_empty() {
                assert!(html.contains(own.as_str()), "{path} lists Bob's {own}");
            }
            assert!(
                !html.contains("alice-secret"),
                "{path}{q} shows Alice's resources: {html}"
            );
            for a_id in &a_ids {
                assert!(!html.contains(a_id.as_str()), "{path}{q} shows {a_id}");
            }
        }
    }
    // And Alice sees hers, not Bob's.
    let web_a = Web::sign_in(&s, &a).await;
    for ((path, own), mine) in pages.iter().zip(&a_ids) {
        let (st, html) = web_a.page(path).await;
        page_ok(st, &html, path);
        assert!(!html.contains(own.as_str()), "{path} shows Bob's {own} to Alice");
        assert!(html.contains(mine.as_str()), "{path} shows Alice's own {mine}");
    }
}

#[tokio::test]
async fn names_are_escaped_on_every_page() {
    let s = Server::start().await;
    let (_, t) = s.account("xss").await;
    let vpc = s
        .post(&t, "/v1/vpcs", json!({"name": XSS, "cidr": "127.0.0.0/8"}))
        .await;
    vpc.ok(201);
    let sn = s
        .post(
            &t,
            "/v1/subnets",
            json!({"vpc_id": vpc.id(), "name": XSS, "cidr": "127.145.1.0/24"}),
        )
        .await;
    sn.ok(201);
    s.post(
        &t,
        "/v1/instances",
        json!({"name": XSS, "subnet_id": sn.id(), "private_ip": "127.145.1.10"}),
    )
    .await
    .ok(201);
    s.post(&t, "/v1/eips", json!({"name": XSS})).await.ok(201);
    upload_server(&s, &t, XSS, &["xss.example.test"], 90).await;

    let web = Web::sign_in(&s, &t).await;
    for path in ["/vpcs", "/subnets", "/instances", "/eips", "/certificates"] {
        for q in ["", "?search=%3Cscript%3E"] {
            let (st, html) = web.page(&format!("{path}{q}")).await;
            page_ok(st, &html, path);
            assert!(!html.contains("<script>alert"), "{path}{q} has the raw name: {html}");
            assert!(
                html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                    || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{path}{q} lacks the escaped name: {html}"
            );
        }
    }
    let (st, html) = web.page("/certificates/new").await;
    page_ok(st, &html, "/certificates/new");
    assert!(!html.contains("<script>alert"));
}
