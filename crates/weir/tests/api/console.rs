//! The console's security at the HTTP level: sessions, CSRF, tenancy and
//! escaping, against the real server (no browser needed to prove these).

use reqwest::Method;
use serde_json::json;

use crate::console_kit::Web;
use crate::kit::{self, ADMIN, Server};

pub const XSS: &str = "<script>alert(1)</script>";

#[tokio::test]
async fn the_session_cookie_is_httponly_and_samesite_strict() {
    let s = Server::start().await;
    let w = Web::sign_in(&s, ADMIN).await;
    let c = &w.set_cookie;
    assert!(c.starts_with("weir_session="), "{c}");
    assert!(c.contains("; HttpOnly"), "{c}");
    assert!(c.contains("; SameSite=Strict"), "{c}");
    assert!(c.contains("; Path=/"), "{c}");
    // The session id is a long random secret.
    assert!(w.cookie.len() > "weir_session=".len() + 60, "{}", w.cookie);
    // Pages are not cached and carry a strict content security policy.
    let r = w
        .http
        .get(format!("{}/lbs", s.base))
        .header("cookie", &w.cookie)
        .send()
        .await
        .unwrap();
    let h = r.headers();
    assert_eq!(h["cache-control"], "no-store");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
}

#[tokio::test]
async fn a_state_change_without_the_csrf_token_is_refused() {
    let s = Server::start().await;
    let w = Web::sign_in(&s, ADMIN).await;
    let body = json!({"name": "lab", "cidr": "127.121.0.0/16"});
    // No token, a wrong one, another session's: 403, nothing created.
    let other = Web::sign_in(&s, ADMIN).await;
    for csrf in [None, Some("0".repeat(64)), Some(other.csrf.clone())] {
        let r = w
            .api_with(Method::POST, "/v1/vpcs", Some(body.clone()), csrf.as_deref())
            .await;
        r.err(403, "csrf_failed", None);
    }
    for m in [Method::PATCH, Method::DELETE] {
        let r = w
            .api_with(m.clone(), "/v1/vpcs/vpc-000000000000", Some(json!({})), None)
            .await;
        assert_eq!(r.status.as_u16(), 403, "{m}: {:?}", r.body);
    }
    assert_eq!(s.get(ADMIN, "/v1/vpcs").await.body["total"], json!(0));
    // Reads need no token; a write with the session's token goes through.
    let r = w.api_with(Method::GET, "/v1/vpcs", None, None).await;
    assert_eq!(r.ok(200)["total"], json!(0));
    let r = w.api(Method::POST, "/v1/vpcs", Some(body)).await;
    r.ok(201);
    assert_eq!(s.get(ADMIN, "/v1/vpcs").await.body["total"], json!(1));
    // Bearer clients (CLI, scripts) need no CSRF token: no cookie, no CSRF.
    s.post(ADMIN, "/v1/vpcs", json!({"name": "lab2", "cidr": "127.122.0.0/16"}))
        .await
        .ok(201);
    // Sign-out is a state change too.
    let r = w
        .http
        .post(format!("{}/sign-out", s.base))
        .header("cookie", &w.cookie)
        .form(&[("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(w.page("/lbs").await.0, 200, "the session survives a forged sign-out");
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let s = Server::start().await;
    let w = Web::sign_in(&s, ADMIN).await;
    let r = w
        .http
        .post(format!("{}/sign-out", s.base))
        .header("cookie", &w.cookie)
        .form(&[("csrf", &w.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/sign-in");
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("weir_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, _) = w.page("/lbs").await;
    assert_eq!(status, 303, "pages send a signed-out browser to the sign-in form");
    w.api(Method::GET, "/v1/vpcs", None)
        .await
        .err(401, "unauthorized", None);
    w.api(
        Method::POST,
        "/v1/vpcs",
        Some(json!({"name": "x", "cidr": "127.123.0.0/16"})),
    )
    .await
    .err(401, "unauthorized", None);
}

#[tokio::test]
async fn sign_in_refuses_forged_forms_and_foreign_redirects() {
    let s = Server::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A form posted from elsewhere carries no sign-in cookie: refused.
    let r = http
        .post(format!("{}/sign-in", s.base))
        .form(&[("token", ADMIN), ("csrf", "x"), ("next", "/lbs")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("weir_session="))
    );
    // A wrong token: the form again, with the message next to the field.
    let form = http
        .get(format!("{}/sign-in?next=//evil.example/x", s.base))
        .send()
        .await
        .unwrap();
    let pre = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = form.text().await.unwrap();
    assert!(
        html.contains("name=\"next\" value=\"/lbs\""),
        "a foreign next is dropped"
    );
    let csrf = crate::console_kit::csrf_of(&html);
    let r = http
        .post(format!("{}/sign-in", s.base))
        .header("cookie", &pre)
        .form(&[("token", "weir_nope"), ("csrf", &csrf), ("next", "/lbs")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().await.unwrap().contains("does not belong to any account"));
    // The right token, with a `next` that tries to leave the site.
    let r = http
        .post(format!("{}/sign-in", s.base))
        .header("cookie", &pre)
        .form(&[("token", ADMIN), ("csrf", &csrf), ("next", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/lbs");
}

/// A tenant's LB with an http VServer, in subnet `127.121.<net>.0/24` (one
/// per test: the LB addresses of parallel tests' servers must not clash);
/// returns (lb, vs).
async fn tenant_lb(s: &Server, token: &str, name: &str, net: u8) -> (String, String) {
    let n = kit::net(
        s,
        token,
        "127.121.0.0/16",
        &format!("127.121.{net}.0/24"),
        &format!("127.121.{net}.10"),
    )
    .await;
    let lb = kit::lb(s, token, &n, name).await;
    let vs = s
        .post(
            token,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "http", "port": 8080}),
        )
        .await;
    vs.ok(201);
    (lb, vs.id())
}

#[tokio::test]
async fn one_tenant_cannot_open_anothers_pages() {
    let s = Server::start().await;
    let (_, a) = s.account("tenant-a").await;
    let (_, b) = s.account("tenant-b").await;
    let (lb, vs) = tenant_lb(&s, &a, "a-secret-shop", 1).await;
    let wa = Web::sign_in(&s, &a).await;
    let wb = Web::sign_in(&s, &b).await;
    for path in [
        format!("/lbs/{lb}"),
        format!("/lbs/{lb}?tab=vservers"),
        format!("/lbs/{lb}/vservers/new"),
        format!("/lbs/{lb}/vservers/{vs}"),
        format!("/lbs/{lb}/vservers/{vs}?tab=nodes"),
        format!("/lbs/{lb}/vservers/{vs}?tab=rules"),
        format!("/lbs/{lb}/vservers/{vs}/edit"),
    ] {
        let (status, html) = wa.page(&path).await;
        assert_eq!(status, 200, "A sees {path}");
        assert!(html.contains("a-secret-shop"), "{path}");
        let (status, html) = wb.page(&path).await;
        assert_eq!(status, 404, "B gets 404 for {path}");
        assert!(!html.contains("a-secret-shop"), "{path} leaks A's LB");
        assert!(html.contains("Not found"), "{path}");
    }
    let (status, html) = wb.page("/lbs").await;
    assert_eq!(status, 200);
    assert!(!html.contains("a-secret-shop") && !html.contains(&lb));
    let (_, html) = wb.page("/lbs/new").await;
    assert!(!html.contains("127.121.0.0/16"), "B's wizard offers no VPC of A's");
    // The API behind the pages: the same 404, nothing changed.
    wb.api(
        Method::PATCH,
        &format!("/v1/load-balancers/{lb}"),
        Some(json!({"name": "mine"})),
    )
    .await
    .err(404, "not_found", None);
    assert_eq!(
        s.get(&a, &format!("/v1/load-balancers/{lb}")).await.body["name"],
        json!("a-secret-shop")
    );
}

/// A server whose elastic IPs come from `127.123.<pool>.0/24`, so the
/// external LB of `script_named_resources` binds an address of its own.
pub async fn server_with_pool(pool: u8) -> Server {
    Server::start_with_config(&format!("eip_pool = [\"127.123.{pool}.0/24\"]\n")).await
}

/// One resource of every kind named `<script>alert(1)</script>` (as the
/// admin), and the console pages that show them.
pub async fn script_named_resources(s: &Server) -> Vec<String> {
    let vpc = s
        .post(ADMIN, "/v1/vpcs", json!({"name": XSS, "cidr": "127.121.0.0/16"}))
        .await
        .id();
    let subnet = s
        .post(
            ADMIN,
            "/v1/subnets",
            json!({"vpc_id": vpc, "name": XSS, "cidr": "127.121.1.0/24"}),
        )
        .await
        .id();
    let vm = s
        .post(
            ADMIN,
            "/v1/instances",
            json!({"name": XSS, "subnet_id": subnet, "private_ip": "127.121.1.10"}),
        )
        .await
        .id();
    s.post(ADMIN, "/v1/eips", json!({"name": XSS})).await.ok(201);
    let sg = s
        .post(
            ADMIN,
            "/v1/security-groups",
            json!({"name": XSS, "rules": [{"priority": 1, "action": "allow", "protocol": "any", "ports": "all", "source": "0.0.0.0/0"}]}),
        )
        .await
        .id();
    let tpl = s
        .post(
            ADMIN,
            "/v1/alarm-templates",
            json!({"name": XSS, "webhook_url": "http://127.0.0.1:9/hook",
                   "rules": [{"scope": "lb", "metric": "active_connections", "op": ">", "threshold": 1e9}]}),
        )
        .await
        .id();
    let lb = s
        .post(
            ADMIN,
            "/v1/load-balancers",
            json!({"name": XSS, "comment": XSS, "network_type": "external", "vpc_id": vpc, "subnet_id": subnet,
                   "security_group_id": sg, "alarm_template_id": tpl}),
        )
        .await;
    lb.ok(201);
    let lb = lb.id();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["x.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert = s
        .post(
            ADMIN,
            "/v1/certificates",
            json!({"type": "server", "name": XSS, "comment": XSS, "certificate": cert.pem(), "private_key": key.serialize_pem()}),
        )
        .await;
    cert.ok(201);
    let vs = s
        .post(
            ADMIN,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "https", "port": 8443, "alarm_template_id": tpl,
                   "tls": {"mode": "one_way", "server_certificate_id": cert.id()}}),
        )
        .await;
    vs.ok(201);
    let vs = vs.id();
    s.post(
        ADMIN,
        &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends"),
        json!({"instance_id": vm, "port": 80}),
    )
    .await
    .ok(201);

    vec![
        "/lbs".to_string(),
        "/lbs/new".into(),
        format!("/lbs/{lb}"),
        format!("/lbs/{lb}?tab=vservers"),
        format!("/lbs/{lb}/vservers/new"),
        format!("/lbs/{lb}/vservers/{vs}"),
        format!("/lbs/{lb}/vservers/{vs}?tab=nodes"),
        format!("/lbs/{lb}/vservers/{vs}?tab=rules"),
        format!("/lbs/{lb}/vservers/{vs}/edit"),
        "/certificates".into(),
        "/security-groups".into(),
        format!("/security-groups/{sg}"),
        "/alarm-templates".into(),
        format!("/alarm-templates/{tpl}"),
        "/vpcs".into(),
        "/subnets".into(),
        "/instances".into(),
        "/eips".into(),
    ]
}

#[tokio::test]
async fn a_script_in_a_name_is_text_on_every_page() {
    let s = server_with_pool(1).await;
    let pages = script_named_resources(&s).await;
    let w = Web::sign_in(&s, ADMIN).await;
    for p in &pages {
        let (status, html) = w.page(p).await;
        assert_eq!(status, 200, "{p}");
        assert!(!html.contains("<script>alert"), "{p} carries the name as markup");
        assert!(!html.contains("alert(1)</script>"), "{p} carries the name as markup");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{p} does not show the name at all"
        );
        // Our own script is the only one, from our origin.
        assert_eq!(html.matches("<script").count(), 1, "{p}");
    }
    // An account's own name is shown on every page too.
    let (_, t) = s.account(XSS).await;
    let (status, html) = Web::sign_in(&s, &t).await.page("/lbs").await;
    assert_eq!(status, 200);
    assert!(!html.contains("<script>alert") && html.contains("&#60;script&#62;alert(1)"));
}

#[tokio::test]
async fn a_parent_sees_its_sub_accounts_pages_and_not_the_reverse() {
    let s = Server::start().await;
    let (parent_id, parent) = s.account("parent").await;
    let sub = s
        .post(
            &parent,
            &format!("/v1/accounts/{parent_id}/sub-accounts"),
            json!({"name": "child"}),
        )
        .await;
    let sub = sub.ok(201)["token"].as_str().unwrap().to_string();
    let (sub_lb, sub_vs) = tenant_lb(&s, &sub, "child-shop", 2).await;
    let n = kit::net(&s, &parent, "127.122.0.0/16", "127.122.1.0/24", "127.122.1.10").await;
    let parent_lb = kit::lb(&s, &parent, &n, "parent-shop").await;
    let wp = Web::sign_in(&s, &parent).await;
    let wc = Web::sign_in(&s, &sub).await;
    // The parent sees both on its list and may open the child's pages.
    let (_, html) = wp.page("/lbs").await;
    assert!(html.contains("child-shop") && html.contains("parent-shop"));
    assert_eq!(wp.page(&format!("/lbs/{sub_lb}/vservers/{sub_vs}")).await.0, 200);
    // The child sees only its own.
    let (_, html) = wc.page("/lbs").await;
    assert!(html.contains("child-shop") && !html.contains("parent-shop"));
    assert_eq!(wc.page(&format!("/lbs/{parent_lb}")).await.0, 404);
    let (_, html) = wc.page("/vpcs").await;
    assert!(!html.contains("127.122.0.0/16"), "the parent's VPC is not the child's");
}
