//! Every validation rule of the spec, each with a bad input: the status,
//! `error.code` and `error.field` are asserted, and a follow-up read proves
//! the refused request changed nothing (the watched resources and lists are
//! identical and the store's revision did not move). None may be a 500.

use reqwest::Method;
use serde_json::{Value, json};

use crate::kit::{self, ADMIN, Resp, Server};

/// A body without the fields derived at read time (`status`, `health`
/// follow the data plane, not the request).
fn stable(v: &Value) -> Value {
    let strip = |o: &mut serde_json::Map<String, Value>| {
        o.remove("status");
        o.remove("health");
        o.remove("status_message");
        o.remove("last_check");
    };
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        strip(o);
        if let Some(items) = o.get_mut("items").and_then(Value::as_array_mut) {
            for i in items {
                if let Some(o) = i.as_object_mut() {
                    strip(o);
                }
            }
        }
    }
    v
}

/// Sends refused requests and checks that nothing observable changed.
struct Check<'a> {
    s: &'a Server,
    token: String,
    /// GET paths whose bodies must be identical before and after.
    watch: Vec<String>,
}

impl<'a> Check<'a> {
    fn new(s: &'a Server, token: &str, watch: &[&str]) -> Check<'a> {
        Check {
            s,
            token: token.to_string(),
            watch: watch.iter().map(|w| w.to_string()).collect(),
        }
    }

    async fn snapshot(&self) -> (Vec<Value>, Value) {
        let mut out = Vec::new();
        for w in &self.watch {
            let r = self.s.get(&self.token, w).await;
            assert_eq!(r.status.as_u16(), 200, "watched GET {w}: {}", r.body);
            out.push(stable(&r.body));
        }
        let rev = self.s.get(ADMIN, "/v1/system/status").await.ok(200)["revision"].clone();
        (out, rev)
    }

    async fn verify(
        &self,
        label: String,
        r: Resp,
        before: (Vec<Value>, Value),
        status: u16,
        code: &str,
        field: Option<&str>,
    ) {
        assert_ne!(r.status.as_u16(), 500, "{label} → 500 {}", r.body);
        if r.status.as_u16() != status || r.body["error"]["code"] != json!(code) {
            panic!(
                "{label}: expected {status} {code} {field:?}, got {} {}",
                r.status, r.body
            );
        }
        r.err(status, code, field);
        let after = self.snapshot().await;
        assert_eq!(before.0, after.0, "{label} changed a watched resource");
        assert_eq!(before.1, after.1, "{label} committed a revision");
    }

    async fn call(&self, m: Method, path: &str, body: Option<Value>, status: u16, code: &str, field: Option<&str>) {
        let before = self.snapshot().await;
        let label = format!("{m} {path} {}", body.as_ref().map(Value::to_string).unwrap_or_default());
        let r = self.s.call(m, path, Some(&self.token), body).await;
        self.verify(label, r, before, status, code, field).await;
    }

    async fn post(&self, path: &str, body: Value, status: u16, code: &str, field: Option<&str>) {
        self.call(Method::POST, path, Some(body), status, code, field).await;
    }

    async fn patch(&self, path: &str, body: Value, status: u16, code: &str, field: Option<&str>) {
        self.call(Method::PATCH, path, Some(body), status, code, field).await;
    }

    async fn delete(&self, path: &str, status: u16, code: &str, field: Option<&str>) {
        self.call(Method::DELETE, path, None, status, code, field).await;
    }

    async fn get(&self, path: &str, status: u16, code: &str, field: Option<&str>) {
        self.call(Method::GET, path, None, status, code, field).await;
    }

    /// POSTs an over-limit body on a fresh connection (so a connection the
    /// server closes afterwards cannot break the next request).
    async fn oversized(&self, path: &str, body: Vec<u8>) {
        let before = self.snapshot().await;
        let label = format!("POST {path} raw ({} bytes)", body.len());
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let r = http
            .post(format!("{}{path}", self.s.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{label}: no response: {e:?}"));
        let status = r.status();
        let body = serde_json::from_slice(&r.bytes().await.unwrap_or_default()).unwrap_or(Value::Null);
        let r = Resp {
            status,
            body,
            revision: None,
        };
        self.verify(label, r, before, 413, "payload_too_large", None).await;
    }

    async fn raw(&self, m: Method, path: &str, body: &[u8], status: u16, code: &str, field: Option<&str>) {
        let before = self.snapshot().await;
        let shown: String = String::from_utf8_lossy(body).chars().take(80).collect();
        let label = format!("{m} {path} raw {shown:?} ({} bytes)", body.len());
        let r = self.s.raw(m, path, &self.token, body.to_vec()).await;
        self.verify(label, r, before, status, code, field).await;
    }
}

// ---- request bodies and list parameters ------------------------------------

#[tokio::test]
async fn body_level_errors() {
    let s = Server::start().await;
    let (_, t) = s.account("body").await;
    let n = kit::net(&s, &t, "127.20.0.0/16", "127.20.1.0/24", "127.20.1.10").await;
    let lb = kit::lb(&s, &t, &n, "web").await;
    let vs_list = format!("/v1/load-balancers/{lb}/vservers");
    let c = Check::new(&s, &t, &["/v1/vpcs", "/v1/load-balancers", &vs_list]);

    c.raw(
        Method::POST,
        "/v1/vpcs",
        br#"{"name": "x", "cidr": "#,
        400,
        "invalid_json",
        None,
    )
    .await;
    c.raw(
        Method::POST,
        "/v1/vpcs",
        br#"{"name": "x", "cidr": "10.0.0.0/16"} trailing"#,
        400,
        "invalid_json",
        None,
    )
    .await;
    c.raw(Method::POST, "/v1/vpcs", br#"{'name': 'x'}"#, 400, "invalid_json", None)
        .await;
    c.raw(
        Method::POST,
        "/v1/vpcs",
        b"{\"name\": \"\xff\xfe\", \"cidr\": \"10.0.0.0/16\"}",
        400,
        "invalid_encoding",
        None,
    )
    .await;
    c.raw(Method::POST, "/v1/vpcs", b"", 400, "invalid_json", None).await;
    c.raw(Method::POST, "/v1/vpcs", b"  \n ", 400, "invalid_json", None)
        .await;
    c.raw(Method::POST, "/v1/vpcs", b"[]", 400, "invalid_body", None).await;
    c.raw(Method::POST, "/v1/vpcs", b"null", 400, "invalid_body", None)
        .await;
    c.raw(Method::POST, "/v1/vpcs", b"\"lab\"", 400, "invalid_body", None)
        .await;
    c.raw(Method::POST, "/v1/vpcs", b"42", 400, "invalid_body", None).await;
    // Unknown, missing, mistyped fields name the field.
    c.post(
        "/v1/vpcs",
        json!({"name": "x", "cidr": "10.0.0.0/16", "colour": "red"}),
        400,
        "unknown_field",
        Some("colour"),
    )
    .await;
    c.post("/v1/vpcs", json!({"name": "x"}), 400, "missing_field", Some("cidr"))
        .await;
    c.post(
        "/v1/vpcs",
        json!({"name": 5, "cidr": "10.0.0.0/16"}),
        400,
        "invalid_value",
        Some("name"),
    )
    .await;
    c.post(
        "/v1/vpcs",
        json!({"name": "x", "cidr": null}),
        400,
        "invalid_value",
        Some("cidr"),
    )
    .await;
    c.post(
        &vs_list,
        json!({"protocol": "tcp", "port": "80"}),
        400,
        "invalid_value",
        Some("port"),
    )
    .await;
    c.post(
        &vs_list,
        json!({"protocol": "tcp", "port": 80.5}),
        400,
        "invalid_value",
        Some("port"),
    )
    .await;
    c.post(
        &vs_list,
        json!({"protocol": "sctp", "port": 80}),
        400,
        "invalid_value",
        Some("protocol"),
    )
    .await;
    c.post(
        &vs_list,
        json!({"protocol": "tcp", "port": 80, "weight": 1}),
        400,
        "unknown_field",
        Some("weight"),
    )
    .await;
    c.post(
        &vs_list,
        json!({"protocol": "http", "port": 80, "health_check": {"intervall": 5}}),
        400,
        "unknown_field",
        Some("health_check.intervall"),
    )
    .await;
    c.post(
        &vs_list,
        json!({"protocol": "http", "port": 80, "health_check": {"interval_s": "5"}}),
        400,
        "invalid_value",
        Some("health_check.interval_s"),
    )
    .await;
    c.post(&vs_list, json!({"port": 80}), 400, "missing_field", Some("protocol"))
        .await;
    c.post(&vs_list, json!({"protocol": "tcp"}), 400, "missing_field", Some("port"))
        .await;
    // Over 1 MiB (sent on a connection of its own: see
    // `oversized_body_keeps_the_connection_usable`).
    let big = format!(
        r#"{{"name": "{}", "cidr": "10.0.0.0/16"}}"#,
        "x".repeat(1024 * 1024 + 16)
    );
    c.oversized("/v1/vpcs", big.into_bytes()).await;
    let big = format!(
        r#"{{"protocol": "tcp", "port": 80, "pad": "{}"}}"#,
        "y".repeat(2 * 1024 * 1024)
    );
    c.oversized(&vs_list, big.into_bytes()).await;
    // A PATCH body must be an object too.
    c.raw(
        Method::PATCH,
        &format!("/v1/load-balancers/{lb}"),
        b"[1]",
        400,
        "invalid_body",
        None,
    )
    .await;
    c.raw(
        Method::PATCH,
        &format!("/v1/load-balancers/{lb}"),
        b"",
        400,
        "invalid_json",
        None,
    )
    .await;

    // List parameters.
    for list in [
        "/v1/vpcs",
        "/v1/load-balancers",
        "/v1/subnets",
        "/v1/eips",
        "/v1/instances",
        "/v1/security-groups",
    ] {
        c.get(&format!("{list}?limit=abc"), 400, "invalid_value", Some("limit"))
            .await;
        c.get(&format!("{list}?limit=5000"), 400, "invalid_value", Some("limit"))
            .await;
        c.get(&format!("{list}?limit=-1"), 400, "invalid_value", Some("limit"))
            .await;
        c.get(&format!("{list}?offset=x"), 400, "invalid_value", Some("offset"))
            .await;
    }
    c.get("/v1/vpcs?search=%ff", 400, "invalid_value", Some("search")).await;
    c.get("/v1/vpcs?search=%zz", 400, "invalid_value", Some("search")).await;
    c.get("/v1/vpcs?limit=", 400, "invalid_value", Some("limit")).await;
    // A duplicate key is a malformed body, not a silent "last one wins".
    c.raw(
        Method::POST,
        "/v1/vpcs",
        br#"{"name": "a", "name": "b", "cidr": "10.0.0.0/16"}"#,
        400,
        "invalid_body",
        None,
    )
    .await;
    // The largest limit is fine.
    assert_eq!(s.get(&t, "/v1/vpcs?limit=1000").await.ok(200)["total"], json!(1));
}

/// A JSON array is not an object, even when its elements line up with the
/// fields of the expected object.
#[tokio::test]
async fn json_array_body_is_refused() {
    let s = Server::start().await;
    let (_, t) = s.account("arr").await;
    let c = Check::new(&s, &t, &["/v1/vpcs"]);
    c.raw(
        Method::POST,
        "/v1/vpcs",
        br#"["arr", "10.9.0.0/16"]"#,
        400,
        "invalid_body",
        None,
    )
    .await;
}

// ---- network ---------------------------------------------------------------

/// After a 413 the connection must stay usable, or the server must say it
/// closes it (`Connection: close`) so keep-alive clients do not reuse it.
#[tokio::test]
async fn oversized_body_keeps_the_connection_usable() {
    let s = Server::start().await;
    let big = format!(
        r#"{{"name": "{}", "cidr": "10.0.0.0/16"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    for i in 0..20 {
        let r = s
            .http
            .post(format!("{}/v1/vpcs", s.base))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {i}: oversized POST got no response: {e:?}"));
        assert_eq!(r.status().as_u16(), 413, "round {i}");
        let closes = r
            .headers()
            .get("connection")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        drop(r);
        // The pooled connection is reused unless the server said it closes it.
        let next = s
            .http
            .get(format!("{}/v1/vpcs", s.base))
            .bearer_auth(ADMIN)
            .send()
            .await;
        match next {
            Ok(n) => assert_eq!(n.status().as_u16(), 200, "round {i}"),
            Err(e) => panic!("round {i}: GET after a 413 failed ({e:?}); the 413 said connection-close: {closes}"),
        }
    }
    assert_eq!(s.get(ADMIN, "/v1/vpcs").await.ok(200)["total"], json!(0));
}

#[tokio::test]
async fn network_rules() {
    let s = Server::start().await;
    let (_, t) = s.account("net").await;
    let n = kit::net(&s, &t, "127.21.0.0/16", "127.21.1.0/24", "127.21.1.10").await;
    s.post(&t, "/v1/eips", json!({"address": "127.0.20.5"})).await.ok(201);
    let c = Check::new(&s, &t, &["/v1/vpcs", "/v1/subnets", "/v1/instances", "/v1/eips"]);

    // Names.
    for bad in ["", "   ", "a\u{7}b"] {
        c.post(
            "/v1/vpcs",
            json!({"name": bad, "cidr": "10.0.0.0/16"}),
            400,
            "invalid_value",
            Some("name"),
        )
        .await;
    }
    c.post(
        "/v1/vpcs",
        json!({"name": "x".repeat(65), "cidr": "10.0.0.0/16"}),
        400,
        "invalid_value",
        Some("name"),
    )
    .await;
    c.patch(
        &format!("/v1/vpcs/{}", n.vpc),
        json!({"name": ""}),
        400,
        "invalid_value",
        Some("name"),
    )
    .await;
    c.patch(
        &format!("/v1/vpcs/{}", n.vpc),
        json!({"name": "é".repeat(65)}),
        400,
        "invalid_value",
        Some("name"),
    )
    .await;
    c.patch(
        &format!("/v1/vpcs/{}", n.vpc),
        json!({"cidr": "10.0.0.0/8"}),
        400,
        "unknown_field",
        Some("cidr"),
    )
    .await;
    c.patch(
        &format!("/v1/subnets/{}", n.subnet),
        json!({"name": ""}),
        400,
        "invalid_value",
        Some("name"),
    )
    .await;
    c.patch(
        &format!("/v1/instances/{}", n.instance),
        json!({"name": "x".repeat(65)}),
        400,
        "invalid_value",
        Some("name"),
    )
    .await;
    c.patch(
        &format!("/v1/instances/{}", n.instance),
        json!({"private_ip": "127.21.1.11"}),
        400,
        "unknown_field",
        Some("private_ip"),
    )
    .await;

    // VPC CIDRs: invalid, host bits, too small, too large.
    for bad in [
        "banana",
        "",
        "10.0.0.0",
        "10.0.0.1/16",
        "10.0.0.0/29",
        "10.0.0.0/30",
        "10.0.0.0/7",
        "0.0.0.0/0",
        "10.0.0.0/33",
        "fd00::/48",
        "300.0.0.0/8",
    ] {
        c.post(
            "/v1/vpcs",
            json!({"name": "v", "cidr": bad}),
            400,
            "invalid_value",
            Some("cidr"),
        )
        .await;
    }

    // Subnets.
    let sub = |cidr: &str| json!({"vpc_id": n.vpc, "name": "s", "cidr": cidr});
    for outside in ["127.22.0.0/24", "127.0.0.0/8", "127.20.0.0/15"] {
        c.post("/v1/subnets", sub(outside), 400, "invalid_value", Some("cidr"))
            .await;
    }
    for bad in ["127.21.2.1/24", "127.21.2.0/31", "nope"] {
        c.post("/v1/subnets", sub(bad), 400, "invalid_value", Some("cidr"))
            .await;
    }
    for overlap in [
        "127.21.1.0/24",
        "127.21.1.128/25",
        "127.21.0.0/23",
        "127.21.0.0/16",
        "127.21.1.4/30",
    ] {
        c.post("/v1/subnets", sub(overlap), 409, "cidr_overlap", Some("cidr"))
            .await;
    }
    c.post(
        "/v1/subnets",
        json!({"vpc_id": "vpc-000000000000", "name": "s", "cidr": "127.21.2.0/24"}),
        400,
        "invalid_reference",
        Some("vpc_id"),
    )
    .await;
    c.post(
        "/v1/subnets",
        json!({"vpc_id": n.vpc, "name": "", "cidr": "127.21.2.0/24"}),
        400,
        "invalid_value",
        Some("name"),
    )
    .await;

    // Instances.
    let vm = |ip: &str| json!({"name": "vm", "subnet_id": n.subnet, "private_ip": ip});
    for bad in [
        "127.21.2.10",
        "10.0.0.1",
        "127.21.1.0",
        "127.21.1.255",
        "banana",
        "",
        "127.21.1.10/32",
    ] {
        c.post("/v1/instances", vm(bad), 400, "invalid_value", Some("private_ip"))
            .await;
    }
    c.post(
        "/v1/instances",
        vm("127.21.1.10"),
        409,
        "address_in_use",
        Some("private_ip"),
    )
    .await;
    c.post(
        "/v1/instances",
        json!({"name": "vm", "subnet_id": "subnet-000000000000", "private_ip": "127.21.1.11"}),
        400,
        "invalid_reference",
        Some("subnet_id"),
    )
    .await;
    c.post(
        "/v1/instances",
        json!({"name": "", "subnet_id": n.subnet, "private_ip": "127.21.1.11"}),
        400,
        "invalid_value",
        Some("name"),
    )
    .await;

    // EIPs: outside the pool (or its network/broadcast address), taken.
    for bad in ["10.0.0.1", "127.0.21.1", "127.0.20.0", "127.0.20.255", "nope"] {
        c.post(
            "/v1/eips",
            json!({"address": bad}),
            400,
            "invalid_value",
            Some("address"),
        )
        .await;
    }
    c.post(
        "/v1/eips",
        json!({"address": "127.0.20.5"}),
        409,
        "address_in_use",
        Some("address"),
    )
    .await;
    c.post("/v1/eips", json!({"name": ""}), 400, "invalid_value", Some("name"))
        .await;

    // An internal LB's address (in a VPC overlapping the pool) is not a free EIP.
    let pv = s
        .post(&t, "/v1/vpcs", json!({"name": "pool", "cidr": "127.0.20.0/24"}))
        .await;
    let ps = s
        .post(
            &t,
            "/v1/subnets",
            json!({"vpc_id": pv.id(), "name": "pool", "cidr": "127.0.20.0/24"}),
        )
        .await;
    s.post(
        &t,
        "/v1/load-balancers",
        json!({"name": "int", "network_type": "internal", "vpc_id": pv.id(), "subnet_id": ps.id(), "private_ip": "127.0.20.7"}),
    )
    .await
    .ok(201);
    let c = Check::new(&s, &t, &["/v1/eips", "/v1/load-balancers"]);
    c.post(
        "/v1/eips",
        json!({"address": "127.0.20.7"}),
        409,
        "address_in_use",
        Some("address"),
    )
    .await;
    // And an allocated EIP's address cannot be an internal LB's.
    c.post(
        "/v1/load-balancers",
        json!({"name": "int2", "network_type": "internal", "vpc_id": pv.id(), "subnet_id": ps.id(), "private_ip": "127.0.20.5"}),
        409,
        "address_in_use",
        Some("private_ip"),
    )
    .await;

    // Accounts.
    let a = Check::new(&s, ADMIN, &["/v1/accounts"]);
    a.post("/v1/accounts", json!({"name": ""}), 400, "invalid_value", Some("name"))
        .await;
    a.post(
        "/v1/accounts",
        json!({"name": "x".repeat(65)}),
        400,
        "invalid_value",
        Some("name"),
    )
    .await;
    a.post("/v1/accounts", json!({}), 400, "missing_field", Some("name"))
        .await;

    // The boundaries themselves are accepted.
    s.post(&t, "/v1/vpcs", json!({"name": "é".repeat(64), "cidr": "10.0.0.0/8"}))
        .await
        .ok(201);
    s.post(&t, "/v1/vpcs", json!({"name": "v28", "cidr": "10.1.0.0/28"}))
        .await
        .ok(201);
    s.post(&t, "/v1/eips", json!({"address": "127.0.20.254"})).await.ok(201);
}

#[tokio::test]
async fn security_group_rules() {
    let s = Server::start().await;
    let (_, t) = s.account("sg").await;
    let sg = s
        .post(
            &t,
            "/v1/security-groups",
            json!({"name": "base", "rules": [{"priority": 1, "action": "allow", "protocol": "tcp", "ports": "80", "source": "0.0.0.0/0"}]}),
        )
        .await;
    sg.ok(201);
    let sg_path = format!("/v1/security-groups/{}", sg.id());
    let c = Check::new(&s, &t, &["/v1/security-groups", &sg_path]);
    let rule = |priority: Value, ports: &str, source: &str| json!({"priority": priority, "action": "allow", "protocol": "tcp", "ports": ports, "source": source});
    let good = rule(json!(10), "80", "10.0.0.0/8");

    let mut cases: Vec<(Vec<Value>, u16, &str, &str)> = vec![
        (
            vec![rule(json!(0), "80", "10.0.0.0/8")],
            400,
            "out_of_range",
            "rules[0].priority",
        ),
        (
            vec![rule(json!(1001), "80", "10.0.0.0/8")],
            400,
            "out_of_range",
            "rules[0].priority",
        ),
        (
            vec![rule(json!(-3), "80", "10.0.0.0/8")],
            400,
            "out_of_range",
            "rules[0].priority",
        ),
        (
            vec![good.clone(), rule(json!(10), "443", "10.0.0.0/8")],
            400,
            "invalid_value",
            "rules[1].priority",
        ),
        (
            vec![rule(json!("10"), "80", "10.0.0.0/8")],
            400,
            "invalid_value",
            "rules[0].priority",
        ),
        (
            vec![good.clone(), rule(json!(20), "x", "10.0.0.0/8")],
            400,
            "invalid_value",
            "rules[1].ports",
        ),
        (
            vec![rule(json!(1), "10.0.0.1/8", "10.0.0.0/8")],
            400,
            "invalid_value",
            "rules[0].ports",
        ),
    ];
    for ports in ["0", "90-80", "x", "65536", "", "80-", "-80", "1-65536", "80,81", "0-10"] {
        cases.push((
            vec![rule(json!(5), ports, "10.0.0.0/8")],
            400,
            "invalid_value",
            "rules[0].ports",
        ));
    }
    for source in ["nope", "10.0.0.0/33", "10.0.0.1/8", "", "10.0.0.0"] {
        cases.push((
            vec![rule(json!(5), "80", source)],
            400,
            "invalid_value",
            "rules[0].source",
        ));
    }
    let mut bad_action = good.clone();
    bad_action["action"] = json!("maybe");
    cases.push((vec![bad_action], 400, "invalid_value", "rules[0].action"));
    let mut bad_proto = good.clone();
    bad_proto["protocol"] = json!("icmp");
    cases.push((vec![good.clone(), bad_proto], 400, "invalid_value", "rules[1].protocol"));
    let mut no_source = good.clone();
    no_source.as_object_mut().unwrap().remove("source");
    cases.push((vec![no_source], 400, "missing_field", "rules[0].source"));
    let mut extra = good.clone();
    extra["comment"] = json!("x");
    cases.push((vec![extra], 400, "unknown_field", "rules[0].comment"));

    for (rules, status, code, field) in cases {
        c.post(
            "/v1/security-groups",
            json!({"name": "bad", "rules": rules}),
            status,
            code,
            Some(field),
        )
        .await;
        c.patch(&sg_path, json!({"rules": rules}), status, code, Some(field))
            .await;
    }
    c.post(
        "/v1/security-groups",
        json!({"name": "", "rules": []}),
        400,
        "invalid_value",
        Some("name"),
    )
    .await;
    let too_many: Vec<Value> = (1..=201).map(|p| rule(json!(p), "80", "10.0.0.0/8")).collect();
    c.post(
        "/v1/security-groups",
        json!({"name": "big", "rules": too_many}),
        400,
        "invalid_value",
        Some("rules"),
    )
    .await;
    c.patch(&sg_path, json!({"name": " "}), 400, "invalid_value", Some("name"))
        .await;
    // A valid name with invalid rules changes neither.
    c.patch(
        &sg_path,
        json!({"name": "renamed", "rules": [rule(json!(0), "80", "10.0.0.0/8")]}),
        400,
        "out_of_range",
        Some("rules[0].priority"),
    )
    .await;
    // The boundaries are accepted.
    let ok = s
        .post(
            &t,
            "/v1/security-groups",
            json!({"name": "edges", "rules": [rule(json!(1), "1", "10.0.0.0/8"), rule(json!(1000), "1-65535", "0.0.0.0/0")]}),
        )
        .await;
    assert_eq!(ok.ok(201)["rules"][1]["ports"], json!("1-65535"));
}

// ---- load balancers --------------------------------------------------------

#[tokio::test]
async fn load_balancer_rules() {
    let s = Server::start().await;
    let (_, t) = s.account("lbs").await;
    let (_, other) = s.account("other").await;
    let n = kit::net(&s, &t, "127.23.0.0/16", "127.23.1.0/24", "127.23.1.10").await;
    let vpc_b = s
        .post(&t, "/v1/vpcs", json!({"name": "b", "cidr": "127.24.0.0/16"}))
        .await;
    vpc_b.ok(201);
    let sub_b = s
        .post(
            &t,
            "/v1/subnets",
            json!({"vpc_id": vpc_b.id(), "name": "b", "cidr": "127.24.1.0/24"}),
        )
        .await;
    sub_b.ok(201);
    let sg = s.post(&t, "/v1/security-groups", json!({"name": "sg"})).await;
    sg.ok(201);
    let eip = s.post(&t, "/v1/eips", json!({})).await;
    eip.ok(201);
    let internal = kit::lb(&s, &t, &n, "int").await;
    let int_ip = s.get(&t, &format!("/v1/load-balancers/{internal}")).await.ok(200)["private_ip"]
        .as_str()
        .unwrap()
        .to_string();
    let ext = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "ext", "network_type": "external", "vpc_id": n.vpc, "subnet_id": n.subnet}),
        )
        .await;
    ext.ok(201);
    let ext_eip = ext.body["eip"]["id"].as_str().unwrap().to_string();
    // Another tenant's LB in an overlapping VPC holds 127.23.1.200 on the host.
    let no = kit::net(&s, &other, "127.23.0.0/16", "127.23.1.0/24", "127.23.1.10").await;
    s.post(
        &other,
        "/v1/load-balancers",
        json!({"name": "theirs", "network_type": "internal", "vpc_id": no.vpc, "subnet_id": no.subnet, "private_ip": "127.23.1.200"}),
    )
    .await
    .ok(201);
    let monthly = s
        .post(&t, "/v1/load-balancers", json!({"name": "m", "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet, "billing_mode": "monthly"}))
        .await;
    monthly.ok(201);
    let annual = s
        .post(&t, "/v1/load-balancers", json!({"name": "a", "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet, "billing_mode": "annual"}))
        .await;
    annual.ok(201);

    let c = Check::new(
        &s,
        &t,
        &["/v1/load-balancers", "/v1/eips", "/v1/instances", "/v1/security-groups"],
    );
    let lb = |extra: Value| {
        let mut b = json!({"name": "new", "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        b
    };
    let ext_lb = |extra: Value| {
        let mut b = lb(extra.clone());
        if extra.get("network_type").is_none() {
            b["network_type"] = json!("external");
        }
        b
    };
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (lb(json!({"eip_id": eip.id()})), 400, "not_allowed", "eip_id"),
        (
            lb(json!({"security_group_id": sg.id()})),
            400,
            "not_allowed",
            "security_group_id",
        ),
        (
            ext_lb(json!({"private_ip": "127.23.1.50"})),
            400,
            "not_allowed",
            "private_ip",
        ),
        (lb(json!({"subnet_id": sub_b.id()})), 400, "invalid_value", "subnet_id"),
        (
            ext_lb(json!({"subnet_id": sub_b.id()})),
            400,
            "invalid_value",
            "subnet_id",
        ),
        (
            lb(json!({"vpc_id": "vpc-000000000000"})),
            400,
            "invalid_reference",
            "vpc_id",
        ),
        (lb(json!({"vpc_id": no.vpc})), 400, "invalid_reference", "vpc_id"),
        (
            lb(json!({"subnet_id": "subnet-000000000000"})),
            400,
            "invalid_reference",
            "subnet_id",
        ),
        (
            ext_lb(json!({"eip_id": "eip-000000000000"})),
            400,
            "invalid_reference",
            "eip_id",
        ),
        (ext_lb(json!({"eip_id": ext_eip})), 409, "eip_in_use", "eip_id"),
        (
            ext_lb(json!({"security_group_id": "sg-000000000000"})),
            400,
            "invalid_reference",
            "security_group_id",
        ),
        (
            lb(json!({"alarm_template_id": "alarm-000000000000"})),
            400,
            "invalid_reference",
            "alarm_template_id",
        ),
        (
            lb(json!({"private_ip": "127.23.1.10"})),
            409,
            "address_in_use",
            "private_ip",
        ),
        (lb(json!({"private_ip": int_ip})), 409, "address_in_use", "private_ip"),
        (
            lb(json!({"private_ip": "127.23.1.200"})),
            409,
            "address_in_use",
            "private_ip",
        ),
        (
            lb(json!({"private_ip": "127.23.2.5"})),
            400,
            "invalid_value",
            "private_ip",
        ),
        (
            lb(json!({"private_ip": "127.23.1.255"})),
            400,
            "invalid_value",
            "private_ip",
        ),
        (lb(json!({"private_ip": "banana"})), 400, "invalid_value", "private_ip"),
        (lb(json!({"network_type": "dmz"})), 400, "invalid_value", "network_type"),
        (lb(json!({"network_type": null})), 400, "missing_field", "network_type"),
        (
            lb(json!({"billing_mode": "weekly"})),
            400,
            "invalid_value",
            "billing_mode",
        ),
        (lb(json!({"name": ""})), 400, "invalid_value", "name"),
        (lb(json!({"name": "x".repeat(65)})), 400, "invalid_value", "name"),
        (lb(json!({"comment": "c".repeat(256)})), 400, "invalid_value", "comment"),
        (lb(json!({"comment": "a\nb"})), 400, "invalid_value", "comment"),
        (lb(json!({"status": "active"})), 400, "unknown_field", "status"),
    ];
    for (body, status, code, field) in cases {
        c.post("/v1/load-balancers", body, status, code, Some(field)).await;
    }

    // PATCH.
    let ip = format!("/v1/load-balancers/{internal}");
    let ep = format!("/v1/load-balancers/{}", ext.id());
    let c = Check::new(&s, &t, &["/v1/load-balancers", &ip, &ep, "/v1/security-groups"]);
    c.patch(
        &ip,
        json!({"security_group_id": sg.id()}),
        400,
        "not_allowed",
        Some("security_group_id"),
    )
    .await;
    c.patch(
        &ep,
        json!({"security_group_id": "sg-000000000000"}),
        400,
        "invalid_reference",
        Some("security_group_id"),
    )
    .await;
    c.patch(
        &ep,
        json!({"alarm_template_id": "alarm-000000000000"}),
        400,
        "invalid_reference",
        Some("alarm_template_id"),
    )
    .await;
    c.patch(&ip, json!({"name": ""}), 400, "invalid_value", Some("name"))
        .await;
    c.patch(
        &ip,
        json!({"comment": "c".repeat(256)}),
        400,
        "invalid_value",
        Some("comment"),
    )
    .await;
    c.patch(
        &ip,
        json!({"network_type": "external"}),
        400,
        "unknown_field",
        Some("network_type"),
    )
    .await;
    c.patch(&ip, json!({"vpc_id": vpc_b.id()}), 400, "unknown_field", Some("vpc_id"))
        .await;
    c.patch(
        &ip,
        json!({"billing_mode": "annual"}),
        400,
        "unknown_field",
        Some("billing_mode"),
    )
    .await;
    c.patch(
        &ip,
        json!({"name": "ok-name", "comment": 5}),
        400,
        "invalid_value",
        Some("comment"),
    )
    .await;
    c.patch(
        "/v1/load-balancers/lb-000000000000",
        json!({"name": "x"}),
        404,
        "not_found",
        None,
    )
    .await;

    // Renew: periods out of range per billing mode.
    let renew = |id: &str| format!("/v1/load-balancers/{id}/renew");
    let mp = format!("/v1/load-balancers/{}", monthly.id());
    let ap = format!("/v1/load-balancers/{}", annual.id());
    let c = Check::new(&s, &t, &[&ip, &mp, &ap]);
    for p in [25, 0, -1, 1000] {
        c.post(
            &renew(&internal),
            json!({"periods": p}),
            400,
            "out_of_range",
            Some("periods"),
        )
        .await;
    }
    for p in [12, 0, 24] {
        c.post(
            &renew(&monthly.id()),
            json!({"periods": p}),
            400,
            "out_of_range",
            Some("periods"),
        )
        .await;
    }
    for p in [6, 0, 11] {
        c.post(
            &renew(&annual.id()),
            json!({"periods": p}),
            400,
            "out_of_range",
            Some("periods"),
        )
        .await;
    }
    c.post(
        &renew(&internal),
        json!({"periods": "1"}),
        400,
        "invalid_value",
        Some("periods"),
    )
    .await;
    c.post(&renew(&internal), json!({}), 400, "missing_field", Some("periods"))
        .await;
    c.post(&renew("lb-000000000000"), json!({"periods": 1}), 404, "not_found", None)
        .await;

    // Batch delete needs a list of ids, at most 1000.
    let c = Check::new(&s, &t, &["/v1/load-balancers"]);
    let many: Vec<String> = (0..1001).map(|i| format!("lb-{i:012x}")).collect();
    c.post(
        "/v1/load-balancers/batch-delete",
        json!({"ids": many}),
        400,
        "invalid_value",
        Some("ids"),
    )
    .await;
    c.post(
        "/v1/load-balancers/batch-delete",
        json!({"ids": internal}),
        400,
        "invalid_value",
        Some("ids"),
    )
    .await;
    c.post(
        "/v1/load-balancers/batch-delete",
        json!({}),
        400,
        "missing_field",
        Some("ids"),
    )
    .await;
}

// ---- VServers --------------------------------------------------------------

#[tokio::test]
async fn vserver_create_rules() {
    let s = Server::start().await;
    let (_, t) = s.account("vs").await;
    let n = kit::net(&s, &t, "127.25.0.0/16", "127.25.1.0/24", "127.25.1.10").await;
    let lb = kit::lb(&s, &t, &n, "web").await;
    let base = format!("/v1/load-balancers/{lb}/vservers");
    s.post(&t, &base, json!({"protocol": "tcp", "port": 80})).await.ok(201);
    s.post(&t, &base, json!({"protocol": "udp", "port": 53})).await.ok(201);
    let c = Check::new(&s, &t, &[&base, &format!("/v1/load-balancers/{lb}")]);

    let http = |extra: Value| {
        let mut b = json!({"protocol": "http", "port": 8080});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let with = |proto: &str, extra: Value| {
        let mut b = http(extra);
        b["protocol"] = json!(proto);
        b
    };
    let hc = |h: Value| http(json!({"health_check": h}));
    let tls = |t: Value| with("https", json!({"port": 443, "tls": t}));
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        // Ports.
        (http(json!({"port": 0})), 400, "out_of_range", "port"),
        (http(json!({"port": 65536})), 400, "out_of_range", "port"),
        (http(json!({"port": -1})), 400, "out_of_range", "port"),
        (http(json!({"port": i64::MAX})), 400, "out_of_range", "port"),
        (http(json!({"port": 1e40})), 400, "invalid_value", "port"),
        (http(json!({"port": 9102})), 400, "reserved_port", "port"),
        (with("udp", json!({"port": 323})), 400, "reserved_port", "port"),
        (with("tcp", json!({"port": 60910})), 400, "reserved_port", "port"),
        (http(json!({"port": 80})), 409, "port_in_use", "port"),
        (with("tcp", json!({"port": 80})), 409, "port_in_use", "port"),
        (with("udp", json!({"port": 53})), 409, "port_in_use", "port"),
        // Scheduling and persistence.
        (
            with("udp", json!({"algorithm": "least_connections"})),
            400,
            "not_allowed",
            "algorithm",
        ),
        (http(json!({"algorithm": "random"})), 400, "invalid_value", "algorithm"),
        (
            with("tcp", json!({"persistence": {"mode": "source_ip"}})),
            400,
            "not_allowed",
            "persistence.mode",
        ),
        (
            http(json!({"persistence": {"mode": "source_ip"}})),
            400,
            "not_allowed",
            "persistence.mode",
        ),
        (
            with("tcp", json!({"persistence": {"mode": "insert_cookie"}})),
            400,
            "not_allowed",
            "persistence.mode",
        ),
        (
            with("udp", json!({"persistence": {"mode": "custom_cookie", "key": "k"}})),
            400,
            "not_allowed",
            "persistence.mode",
        ),
        (
            http(json!({"persistence": {"mode": "custom_cookie"}})),
            400,
            "missing_field",
            "persistence.key",
        ),
        (
            http(json!({"persistence": {"mode": "custom_cookie", "key": "a-b"}})),
            400,
            "invalid_value",
            "persistence.key",
        ),
        (
            http(json!({"persistence": {"mode": "custom_cookie", "key": ""}})),
            400,
            "invalid_value",
            "persistence.key",
        ),
        (
            http(json!({"persistence": {"mode": "custom_cookie", "key": "a b"}})),
            400,
            "invalid_value",
            "persistence.key",
        ),
        (
            http(json!({"persistence": {"mode": "custom_cookie", "key": "k=v"}})),
            400,
            "invalid_value",
            "persistence.key",
        ),
        (
            http(json!({"persistence": {"mode": "insert_cookie", "key": "sid"}})),
            400,
            "not_allowed",
            "persistence.key",
        ),
        (
            http(json!({"persistence": {"mode": "off", "key": "sid"}})),
            400,
            "not_allowed",
            "persistence.key",
        ),
        (
            http(json!({"persistence": {"mode": "sticky"}})),
            400,
            "invalid_value",
            "persistence.mode",
        ),
        (
            http(json!({"persistence": {"key": "sid"}})),
            400,
            "missing_field",
            "persistence.mode",
        ),
        // Idle timeout.
        (
            http(json!({"idle_timeout_s": 0})),
            400,
            "out_of_range",
            "idle_timeout_s",
        ),
        (
            http(json!({"idle_timeout_s": 86401})),
            400,
            "out_of_range",
            "idle_timeout_s",
        ),
        (
            with("udp", json!({"idle_timeout_s": -5})),
            400,
            "out_of_range",
            "idle_timeout_s",
        ),
        // Health checks.
        (
            with("tcp", json!({"health_check": {"type": "http"}})),
            400,
            "not_allowed",
            "health_check.type",
        ),
        (
            with("udp", json!({"health_check": {"type": "http"}})),
            400,
            "not_allowed",
            "health_check.type",
        ),
        (hc(json!({"type": "icmp"})), 400, "invalid_value", "health_check.type"),
        (
            hc(json!({"type": "http", "path": "healthz"})),
            400,
            "invalid_value",
            "health_check.path",
        ),
        (
            hc(json!({"type": "http", "path": ""})),
            400,
            "invalid_value",
            "health_check.path",
        ),
        (
            hc(json!({"type": "http", "path": "/a b"})),
            400,
            "invalid_value",
            "health_check.path",
        ),
        (
            hc(json!({"type": "http", "path": "/a?b=c"})),
            400,
            "invalid_value",
            "health_check.path",
        ),
        (
            hc(json!({"type": "http", "path": "/a\"b"})),
            400,
            "invalid_value",
            "health_check.path",
        ),
        (
            hc(json!({"type": "http", "path": "/é"})),
            400,
            "invalid_value",
            "health_check.path",
        ),
        (
            hc(json!({"type": "http", "domain": "bad domain"})),
            400,
            "invalid_value",
            "health_check.domain",
        ),
        (
            hc(json!({"type": "http", "domain": "*.example.com"})),
            400,
            "invalid_value",
            "health_check.domain",
        ),
        (
            hc(json!({"timeout_s": 6, "interval_s": 5})),
            400,
            "invalid_value",
            "health_check.timeout_s",
        ),
        (
            hc(json!({"timeout_s": 9})),
            400,
            "invalid_value",
            "health_check.timeout_s",
        ),
        (
            with("tcp", json!({"health_check": {"interval_s": 1, "timeout_s": 2}})),
            400,
            "invalid_value",
            "health_check.timeout_s",
        ),
        (
            hc(json!({"interval_s": 0})),
            400,
            "out_of_range",
            "health_check.interval_s",
        ),
        (
            hc(json!({"timeout_s": 0})),
            400,
            "out_of_range",
            "health_check.timeout_s",
        ),
        (
            hc(json!({"healthy_threshold": 0})),
            400,
            "out_of_range",
            "health_check.healthy_threshold",
        ),
        (
            hc(json!({"healthy_threshold": 11})),
            400,
            "out_of_range",
            "health_check.healthy_threshold",
        ),
        (
            hc(json!({"unhealthy_threshold": 0})),
            400,
            "out_of_range",
            "health_check.unhealthy_threshold",
        ),
        (
            hc(json!({"unhealthy_threshold": 11})),
            400,
            "out_of_range",
            "health_check.unhealthy_threshold",
        ),
        // PROXY protocol and headers.
        (
            http(json!({"proxy_protocol": "v1"})),
            400,
            "not_allowed",
            "proxy_protocol",
        ),
        (
            with("udp", json!({"proxy_protocol": "v2"})),
            400,
            "not_allowed",
            "proxy_protocol",
        ),
        (
            with("tcp", json!({"proxy_protocol": "v3"})),
            400,
            "invalid_value",
            "proxy_protocol",
        ),
        (
            with("tcp", json!({"forward_headers": {"x_forwarded_for": true}})),
            400,
            "not_allowed",
            "forward_headers",
        ),
        (
            with("udp", json!({"forward_headers": {}})),
            400,
            "not_allowed",
            "forward_headers",
        ),
        (
            http(json!({"forward_headers": {"host": "bad host!"}})),
            400,
            "invalid_value",
            "forward_headers.host",
        ),
        (
            http(json!({"forward_headers": {"host": ""}})),
            400,
            "invalid_value",
            "forward_headers.host",
        ),
        (
            http(json!({"forward_headers": {"x_real_ip": "yes"}})),
            400,
            "invalid_value",
            "forward_headers.x_real_ip",
        ),
        // TLS.
        (with("https", json!({"port": 443})), 400, "missing_field", "tls"),
        (
            tls(json!({"mode": "one_way", "server_certificate_id": "cert-000000000000"})),
            400,
            "invalid_reference",
            "tls.server_certificate_id",
        ),
        (
            tls(json!({"mode": "one_way"})),
            400,
            "missing_field",
            "tls.server_certificate_id",
        ),
        (
            tls(json!({"server_certificate_id": "cert-000000000000"})),
            400,
            "missing_field",
            "tls.mode",
        ),
        (
            tls(json!({"mode": "two_way", "server_certificate_id": "cert-000000000000"})),
            400,
            "missing_field",
            "tls.client_certificate_id",
        ),
        (
            tls(
                json!({"mode": "one_way", "server_certificate_id": "cert-000000000000", "client_certificate_id": "cert-000000000001"}),
            ),
            400,
            "not_allowed",
            "tls.client_certificate_id",
        ),
        (
            tls(json!({"mode": "three_way", "server_certificate_id": "cert-000000000000"})),
            400,
            "invalid_value",
            "tls.mode",
        ),
        (
            http(json!({"tls": {"mode": "one_way", "server_certificate_id": "cert-000000000000"}})),
            400,
            "not_allowed",
            "tls",
        ),
        (
            with(
                "tcp",
                json!({"tls": {"mode": "one_way", "server_certificate_id": "cert-000000000000"}}),
            ),
            400,
            "not_allowed",
            "tls",
        ),
        // References.
        (
            http(json!({"alarm_template_id": "alarm-000000000000"})),
            400,
            "invalid_reference",
            "alarm_template_id",
        ),
    ];
    for (body, status, code, field) in cases {
        c.post(&base, body, status, code, Some(field)).await;
    }
    // Numbers too large for any integer type.
    c.raw(
        Method::POST,
        &base,
        br#"{"protocol": "tcp", "port": 99999999999999999999}"#,
        400,
        "invalid_value",
        Some("port"),
    )
    .await;
    c.raw(
        Method::POST,
        &base,
        br#"{"protocol": "tcp", "port": 1e400}"#,
        400,
        "invalid_json",
        None,
    )
    .await;
    c.post(
        "/v1/load-balancers/lb-000000000000/vservers",
        json!({"protocol": "tcp", "port": 81}),
        404,
        "not_found",
        None,
    )
    .await;

    // tcp and udp are different transports: udp 80 is fine next to tcp 80.
    let udp = s.post(&t, &base, json!({"protocol": "udp", "port": 80})).await;
    assert_eq!(udp.ok(201)["port"], json!(80));
    // And the boundaries are accepted.
    s.post(
        &t,
        &base,
        json!({"protocol": "tcp", "port": 65535, "idle_timeout_s": 86400}),
    )
    .await
    .ok(201);
    s.post(&t, &base, json!({"protocol": "tcp", "port": 1, "idle_timeout_s": 1}))
        .await
        .ok(201);
}

#[tokio::test]
async fn vserver_patch_rules() {
    let s = Server::start().await;
    let (_, t) = s.account("vsp").await;
    let n = kit::net(&s, &t, "127.26.0.0/16", "127.26.1.0/24", "127.26.1.10").await;
    let lb = kit::lb(&s, &t, &n, "web").await;
    let base = format!("/v1/load-balancers/{lb}/vservers");
    let h = s
        .post(
            &t,
            &base,
            json!({"protocol": "http", "port": 80, "persistence": {"mode": "custom_cookie", "key": "sid"}}),
        )
        .await;
    h.ok(201);
    let tcp = s.post(&t, &base, json!({"protocol": "tcp", "port": 81})).await;
    tcp.ok(201);
    let hp = format!("{base}/{}", h.id());
    let tp = format!("{base}/{}", tcp.id());
    let c = Check::new(&s, &t, &[&base, &hp, &tp]);

    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (&hp, json!({"protocol": "https"}), "immutable_field", "protocol"),
        (&hp, json!({"protocol": "tcp"}), "immutable_field", "protocol"),
        (&hp, json!({"port": 8080}), "immutable_field", "port"),
        (
            &hp,
            json!({"port": 80, "protocol": "udp"}),
            "immutable_field",
            "protocol",
        ),
        (&hp, json!({"protocol": "http", "port": 81}), "immutable_field", "port"),
        (&tp, json!({"protocol": "udp"}), "immutable_field", "protocol"),
        (&hp, json!({"colour": 1}), "unknown_field", "colour"),
        (&hp, json!({"id": "vs-000000000000"}), "unknown_field", "id"),
        (
            &hp,
            json!({"health_check": {"intervall": 3}}),
            "unknown_field",
            "health_check.intervall",
        ),
        (&hp, json!({"port": "80"}), "invalid_value", "port"),
        (
            &hp,
            json!({"health_check": {"timeout_s": 9}}),
            "invalid_value",
            "health_check.timeout_s",
        ),
        (
            &hp,
            json!({"health_check": {"interval_s": 1}}),
            "invalid_value",
            "health_check.timeout_s",
        ),
        (
            &hp,
            json!({"health_check": {"path": "nope"}}),
            "invalid_value",
            "health_check.path",
        ),
        (
            &hp,
            json!({"health_check": {"healthy_threshold": 11}}),
            "out_of_range",
            "health_check.healthy_threshold",
        ),
        (
            &hp,
            json!({"persistence": {"key": null}}),
            "missing_field",
            "persistence.key",
        ),
        (
            &hp,
            json!({"persistence": {"key": "a-b"}}),
            "invalid_value",
            "persistence.key",
        ),
        (
            &hp,
            json!({"persistence": {"mode": "insert_cookie"}}),
            "not_allowed",
            "persistence.key",
        ),
        (
            &hp,
            json!({"persistence": {"mode": "source_ip", "key": null}}),
            "not_allowed",
            "persistence.mode",
        ),
        (&hp, json!({"idle_timeout_s": 0}), "out_of_range", "idle_timeout_s"),
        (&hp, json!({"idle_timeout_s": 86401}), "out_of_range", "idle_timeout_s"),
        (&hp, json!({"proxy_protocol": "v1"}), "not_allowed", "proxy_protocol"),
        (
            &hp,
            json!({"forward_headers": {"host": "bad host!"}}),
            "invalid_value",
            "forward_headers.host",
        ),
        (
            &hp,
            json!({"tls": {"mode": "one_way", "server_certificate_id": "cert-000000000000"}}),
            "not_allowed",
            "tls",
        ),
        (
            &hp,
            json!({"alarm_template_id": "alarm-000000000000"}),
            "invalid_reference",
            "alarm_template_id",
        ),
        (
            &tp,
            json!({"forward_headers": {"host": "x"}}),
            "not_allowed",
            "forward_headers",
        ),
        (
            &tp,
            json!({"persistence": {"mode": "insert_cookie"}}),
            "not_allowed",
            "persistence.mode",
        ),
        (
            &tp,
            json!({"health_check": {"type": "http"}}),
            "not_allowed",
            "health_check.type",
        ),
        (&tp, json!({"algorithm": "round_robin"}), "invalid_value", "algorithm"),
    ];
    for (path, body, code, field) in cases {
        c.patch(path, body, 400, code, Some(field)).await;
    }
    c.raw(Method::PATCH, &hp, b"[1]", 400, "invalid_body", None).await;
    c.raw(Method::PATCH, &hp, b"{", 400, "invalid_json", None).await;
    c.patch(
        &format!("{base}/vs-000000000000"),
        json!({"idle_timeout_s": 5}),
        404,
        "not_found",
        None,
    )
    .await;

    // Repeating the current protocol and port is accepted (and changes nothing else).
    let before = stable(s.get(&t, &hp).await.ok(200));
    let p = s.patch(&t, &hp, json!({"protocol": "http", "port": 80})).await;
    assert_eq!(stable(p.ok(200)), before);
    let p = s.patch(&t, &tp, json!({"port": 81})).await;
    assert_eq!(p.ok(200)["port"], json!(81));

    // DELETE with backends → 409, nothing removed.
    let rs = s
        .post(
            &t,
            &format!("{hp}/backends"),
            json!({"instance_id": n.instance, "port": 8080}),
        )
        .await;
    rs.ok(201);
    let c = Check::new(&s, &t, &[&base, &hp, &format!("{hp}/backends")]);
    c.delete(&hp, 409, "in_use", None).await;
    // Once the backend is gone it can be deleted.
    s.delete(&t, &format!("{hp}/backends/{}", rs.id())).await.ok(204);
    s.delete(&t, &hp).await.ok(204);
}

// ---- backends --------------------------------------------------------------

#[tokio::test]
async fn backend_rules() {
    let s = Server::start().await;
    let (_, t) = s.account("rs").await;
    let n = kit::net(&s, &t, "127.27.0.0/16", "127.27.1.0/24", "127.27.1.10").await;
    let nb = kit::net(&s, &t, "127.28.0.0/16", "127.28.1.0/24", "127.28.1.10").await;
    let lb = kit::lb(&s, &t, &n, "web").await;
    let vs = s
        .post(
            &t,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "tcp", "port": 80}),
        )
        .await;
    vs.ok(201);
    let base = format!("/v1/load-balancers/{lb}/vservers/{}/backends", vs.id());
    let b1 = s
        .post(&t, &base, json!({"instance_id": n.instance, "port": 8080}))
        .await;
    b1.ok(201);
    let b2 = s.post(&t, &base, json!({"address": "127.27.1.20", "port": 9000})).await;
    b2.ok(201);
    let b3 = s
        .post(&t, &base, json!({"instance_id": n.instance, "port": 8081, "weight": 9}))
        .await;
    b3.ok(201);
    let b3p = format!("{base}/{}", b3.id());
    let c = Check::new(&s, &t, &[&base, &b3p]);

    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"address": "127.27.1.30", "port": 80, "weight": 0}),
            400,
            "out_of_range",
            "weight",
        ),
        (
            json!({"address": "127.27.1.30", "port": 80, "weight": 101}),
            400,
            "out_of_range",
            "weight",
        ),
        (
            json!({"address": "127.27.1.30", "port": 80, "weight": -1}),
            400,
            "out_of_range",
            "weight",
        ),
        (
            json!({"address": "127.27.1.30", "port": 0}),
            400,
            "out_of_range",
            "port",
        ),
        (
            json!({"address": "127.27.1.30", "port": 65536}),
            400,
            "out_of_range",
            "port",
        ),
        (json!({"address": "127.27.1.30"}), 400, "missing_field", "port"),
        (
            json!({"address": "127.27.1.30", "port": 80, "enabled": "yes"}),
            400,
            "invalid_value",
            "enabled",
        ),
        (
            json!({"instance_id": n.instance, "address": "127.27.1.10", "port": 80}),
            400,
            "invalid_value",
            "address",
        ),
        (json!({"port": 80}), 400, "missing_field", "instance_id"),
        (
            json!({"address": "127.28.1.10", "port": 80}),
            400,
            "invalid_value",
            "address",
        ),
        (
            json!({"address": "10.0.0.1", "port": 80}),
            400,
            "invalid_value",
            "address",
        ),
        (
            json!({"address": "banana", "port": 80}),
            400,
            "invalid_value",
            "address",
        ),
        (
            json!({"instance_id": nb.instance, "port": 80}),
            400,
            "invalid_value",
            "instance_id",
        ),
        (
            json!({"instance_id": "vm-000000000000", "port": 80}),
            400,
            "invalid_reference",
            "instance_id",
        ),
        (
            json!({"instance_id": n.instance, "port": 8080}),
            409,
            "duplicate_backend",
            "port",
        ),
        (
            json!({"address": "127.27.1.10", "port": 8080}),
            409,
            "duplicate_backend",
            "port",
        ),
        (
            json!({"address": "127.27.1.20", "port": 9000}),
            409,
            "duplicate_backend",
            "port",
        ),
        (
            json!({"address": "127.27.1.30", "port": 80, "status": "valid"}),
            400,
            "unknown_field",
            "status",
        ),
    ];
    for (body, status, code, field) in cases {
        c.post(&base, body, status, code, Some(field)).await;
    }
    // PATCH.
    c.patch(&b3p, json!({"weight": 0}), 400, "out_of_range", Some("weight"))
        .await;
    c.patch(&b3p, json!({"weight": 101}), 400, "out_of_range", Some("weight"))
        .await;
    c.patch(&b3p, json!({"port": 0}), 400, "out_of_range", Some("port"))
        .await;
    c.patch(&b3p, json!({"port": 8080}), 409, "duplicate_backend", Some("port"))
        .await;
    c.patch(
        &b3p,
        json!({"port": 8080, "weight": 5}),
        409,
        "duplicate_backend",
        Some("port"),
    )
    .await;
    c.patch(
        &b3p,
        json!({"weight": 5, "port": 70000}),
        400,
        "out_of_range",
        Some("port"),
    )
    .await;
    c.patch(
        &b3p,
        json!({"address": "127.27.1.40"}),
        400,
        "unknown_field",
        Some("address"),
    )
    .await;
    c.patch(
        &b3p,
        json!({"instance_id": nb.instance}),
        400,
        "unknown_field",
        Some("instance_id"),
    )
    .await;
    c.patch(&b3p, json!({"enabled": 1}), 400, "invalid_value", Some("enabled"))
        .await;
    c.patch(
        &format!("{base}/rs-000000000000"),
        json!({"weight": 5}),
        404,
        "not_found",
        None,
    )
    .await;
    // Batch.
    c.post(
        &format!("{base}/batch"),
        json!({"action": "explode", "ids": [b3.id()]}),
        400,
        "invalid_value",
        Some("action"),
    )
    .await;
    c.post(
        &format!("{base}/batch"),
        json!({"action": "delete"}),
        400,
        "missing_field",
        Some("ids"),
    )
    .await;
    let many: Vec<String> = (0..1001).map(|i| format!("rs-{i:012x}")).collect();
    c.post(
        &format!("{base}/batch"),
        json!({"action": "delete", "ids": many}),
        400,
        "invalid_value",
        Some("ids"),
    )
    .await;
    c.post(
        &format!("{base}/batch"),
        json!({"ids": [b3.id()]}),
        400,
        "missing_field",
        Some("action"),
    )
    .await;
}

// ---- forwarding rules ------------------------------------------------------

#[tokio::test]
async fn forwarding_rule_rules() {
    let s = Server::start().await;
    let (_, t) = s.account("fr").await;
    let n = kit::net(&s, &t, "127.29.0.0/16", "127.29.1.0/24", "127.29.1.10").await;
    let lb = kit::lb(&s, &t, &n, "web").await;
    let vs_base = format!("/v1/load-balancers/{lb}/vservers");
    let mk_vs = async |body: Value| {
        let r = s.post(&t, &vs_base, body).await;
        r.ok(201);
        format!("{vs_base}/{}", r.id())
    };
    let h = mk_vs(json!({"protocol": "http", "port": 80})).await;
    let h2 = mk_vs(json!({"protocol": "http", "port": 81})).await;
    let tcp = mk_vs(json!({"protocol": "tcp", "port": 82})).await;
    let mk_rs = async |vs: &str, port: u16| {
        let r = s
            .post(
                &t,
                &format!("{vs}/backends"),
                json!({"instance_id": n.instance, "port": port}),
            )
            .await;
        r.ok(201);
        r.id()
    };
    let h_a = mk_rs(&h, 8001).await;
    let h_b = mk_rs(&h, 8002).await;
    let x = mk_rs(&h2, 8001).await;
    let t_a = mk_rs(&tcp, 8001).await;
    let r1 = s
        .post(
            &t,
            &format!("{h}/rules"),
            json!({"domain": "api.example.com", "path": "/api", "backend_ids": [h_a]}),
        )
        .await;
    r1.ok(201);
    let r2 = s
        .post(
            &t,
            &format!("{h}/rules"),
            json!({"path": "/static", "backend_ids": [h_b]}),
        )
        .await;
    r2.ok(201);
    let rules = format!("{h}/rules");
    let r1p = format!("{rules}/{}", r1.id());
    let r2p = format!("{rules}/{}", r2.id());
    let c = Check::new(&s, &t, &[&rules, &r1p, &r2p, &format!("{tcp}/rules")]);

    // Not on a tcp VServer: 400 with no field to blame.
    c.post(
        &format!("{tcp}/rules"),
        json!({"path": "/x", "backend_ids": [t_a]}),
        400,
        "not_allowed",
        None,
    )
    .await;
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!({"backend_ids": [h_a]}), 400, "missing_field", "domain"),
        (
            json!({"domain": null, "path": null, "backend_ids": [h_a]}),
            400,
            "missing_field",
            "domain",
        ),
        (
            json!({"domain": "bad domain", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "domain",
        ),
        (
            json!({"domain": "a..b", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "domain",
        ),
        (
            json!({"domain": "*.*.example.com", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "domain",
        ),
        (
            json!({"domain": "-x.example.com", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "domain",
        ),
        (
            json!({"domain": "exa_mple.com", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "domain",
        ),
        (
            json!({"domain": "", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "domain",
        ),
        (
            json!({"domain": "api.example.com:8080", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "domain",
        ),
        (
            json!({"path": "api", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "path",
        ),
        (json!({"path": "", "backend_ids": [h_a]}), 400, "invalid_value", "path"),
        (
            json!({"path": "/a b", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "path",
        ),
        (
            json!({"path": "/a?b", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "path",
        ),
        (
            json!({"path": "/a#b", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "path",
        ),
        (
            json!({"path": "/%zz", "backend_ids": [h_a]}),
            400,
            "invalid_value",
            "path",
        ),
        (
            json!({"path": "/x", "backend_ids": [x]}),
            400,
            "invalid_reference",
            "backend_ids[0]",
        ),
        (
            json!({"path": "/x", "backend_ids": [h_a, x]}),
            400,
            "invalid_reference",
            "backend_ids[1]",
        ),
        (
            json!({"path": "/x", "backend_ids": ["rs-000000000000"]}),
            400,
            "invalid_reference",
            "backend_ids[0]",
        ),
        (
            json!({"path": "/x", "backend_ids": [t_a]}),
            400,
            "invalid_reference",
            "backend_ids[0]",
        ),
        (
            json!({"path": "/x", "backend_ids": []}),
            400,
            "invalid_value",
            "backend_ids",
        ),
        (json!({"path": "/x"}), 400, "missing_field", "backend_ids"),
        (
            json!({"path": "/x", "backend_ids": h_a}),
            400,
            "invalid_value",
            "backend_ids",
        ),
        (
            json!({"domain": "api.example.com", "path": "/api", "backend_ids": [h_b]}),
            409,
            "duplicate_rule",
            "",
        ),
        (
            json!({"domain": "API.Example.com", "path": "/api/", "backend_ids": [h_b]}),
            409,
            "duplicate_rule",
            "",
        ),
        (
            json!({"path": "/static", "backend_ids": [h_a]}),
            409,
            "duplicate_rule",
            "",
        ),
    ];
    for (body, status, code, field) in cases {
        let field = (!field.is_empty()).then_some(field);
        c.post(&rules, body, status, code, field).await;
    }
    // PATCH.
    c.patch(
        &r2p,
        json!({"domain": "api.example.com", "path": "/api"}),
        409,
        "duplicate_rule",
        None,
    )
    .await;
    c.patch(
        &r1p,
        json!({"domain": null, "path": "/static"}),
        409,
        "duplicate_rule",
        None,
    )
    .await;
    c.patch(
        &r1p,
        json!({"domain": null, "path": null}),
        400,
        "missing_field",
        Some("domain"),
    )
    .await;
    c.patch(&r2p, json!({"path": null}), 400, "missing_field", Some("domain"))
        .await;
    c.patch(&r1p, json!({"path": "nope"}), 400, "invalid_value", Some("path"))
        .await;
    c.patch(
        &r1p,
        json!({"domain": "bad domain"}),
        400,
        "invalid_value",
        Some("domain"),
    )
    .await;
    c.patch(
        &r1p,
        json!({"backend_ids": [x]}),
        400,
        "invalid_reference",
        Some("backend_ids[0]"),
    )
    .await;
    c.patch(
        &r1p,
        json!({"backend_ids": []}),
        400,
        "invalid_value",
        Some("backend_ids"),
    )
    .await;
    c.patch(
        &r1p,
        json!({"vserver_id": "vs-000000000000"}),
        400,
        "unknown_field",
        Some("vserver_id"),
    )
    .await;
    c.patch(
        &format!("{rules}/rule-000000000000"),
        json!({"path": "/y"}),
        404,
        "not_found",
        None,
    )
    .await;
}

// ---- deleting what is in use -----------------------------------------------

#[tokio::test]
async fn delete_in_use() {
    let s = Server::start().await;
    let (_, t) = s.account("inuse").await;
    let n = kit::net(&s, &t, "127.30.0.0/16", "127.30.1.0/24", "127.30.1.10").await;
    // A second subnet that holds only load balancers.
    let s2 = s
        .post(
            &t,
            "/v1/subnets",
            json!({"vpc_id": n.vpc, "name": "lbs", "cidr": "127.30.2.0/24"}),
        )
        .await;
    s2.ok(201);
    let sg = s.post(&t, "/v1/security-groups", json!({"name": "sg"})).await;
    sg.ok(201);
    let eip = s.post(&t, "/v1/eips", json!({})).await;
    eip.ok(201);
    let ext = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "ext", "network_type": "external", "vpc_id": n.vpc, "subnet_id": s2.id(),
                   "eip_id": eip.id(), "security_group_id": sg.id()}),
        )
        .await;
    ext.ok(201);
    let vs = s
        .post(
            &t,
            &format!("/v1/load-balancers/{}/vservers", ext.id()),
            json!({"protocol": "tcp", "port": 18081}),
        )
        .await;
    vs.ok(201);
    let vs_path = format!("/v1/load-balancers/{}/vservers/{}", ext.id(), vs.id());
    s.post(
        &t,
        &format!("{vs_path}/backends"),
        json!({"instance_id": n.instance, "port": 8080}),
    )
    .await
    .ok(201);
    // An unused EIP and SG can be deleted: the 409s below are about use.
    let spare = s.post(&t, "/v1/eips", json!({})).await;
    s.delete(&t, &format!("/v1/eips/{}", spare.id())).await.ok(204);

    let c = Check::new(
        &s,
        &t,
        &[
            "/v1/vpcs",
            "/v1/subnets",
            "/v1/instances",
            "/v1/security-groups",
            "/v1/eips",
            "/v1/load-balancers",
            &format!("/v1/load-balancers/{}/vservers", ext.id()),
            &format!("{vs_path}/backends"),
        ],
    );
    c.delete(&format!("/v1/vpcs/{}", n.vpc), 409, "in_use", None).await;
    c.delete(&format!("/v1/subnets/{}", n.subnet), 409, "in_use", None)
        .await;
    c.delete(&format!("/v1/subnets/{}", s2.id()), 409, "in_use", None).await;
    c.delete(&format!("/v1/instances/{}", n.instance), 409, "in_use", None)
        .await;
    c.delete(&format!("/v1/security-groups/{}", sg.id()), 409, "in_use", None)
        .await;
    c.delete(&format!("/v1/eips/{}", eip.id()), 409, "in_use", None).await;
    c.delete(&vs_path, 409, "in_use", None).await;
    c.delete("/v1/vpcs/vpc-000000000000", 404, "not_found", None).await;

    // A subnet with only an internal LB is in use too.
    let n2 = kit::net(&s, &t, "127.31.0.0/16", "127.31.1.0/24", "127.31.1.10").await;
    s.delete(&t, &format!("/v1/instances/{}", n2.instance)).await.ok(204);
    kit::lb(&s, &t, &n2, "int").await;
    let c = Check::new(&s, &t, &["/v1/subnets", "/v1/load-balancers", "/v1/vpcs"]);
    c.delete(&format!("/v1/subnets/{}", n2.subnet), 409, "in_use", None)
        .await;
    c.delete(&format!("/v1/vpcs/{}", n2.vpc), 409, "in_use", None).await;
}

// ---- merge-patch nulls and nested list parameters ------------------------

/// `null` in a merge patch removes the member: for `protocol` and `port` that
/// is a change, which the spec answers with `immutable_field`.
#[tokio::test]
async fn vserver_patch_null_protocol_or_port_is_immutable() {
    let s = Server::start().await;
    let (_, t) = s.account("nul").await;
    let n = kit::net(&s, &t, "127.32.0.0/16", "127.32.1.0/24", "127.32.1.10").await;
    let lb = kit::lb(&s, &t, &n, "web").await;
    let vs = s
        .post(
            &t,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "tcp", "port": 80}),
        )
        .await;
    vs.ok(201);
    let path = format!("/v1/load-balancers/{lb}/vservers/{}", vs.id());
    let c = Check::new(&s, &t, &[&path]);
    c.patch(&path, json!({"port": null}), 400, "immutable_field", Some("port"))
        .await;
    c.patch(
        &path,
        json!({"protocol": null}),
        400,
        "immutable_field",
        Some("protocol"),
    )
    .await;
}

/// The list conventions (`search=`, `limit`, `offset`, and a 400 naming a
/// bad parameter) hold for the lists under a load balancer too.
#[tokio::test]
async fn nested_lists_honour_list_parameters() {
    let s = Server::start().await;
    let (_, t) = s.account("nested").await;
    let n = kit::net(&s, &t, "127.33.0.0/16", "127.33.1.0/24", "127.33.1.10").await;
    let lb = kit::lb(&s, &t, &n, "web").await;
    let vsl = format!("/v1/load-balancers/{lb}/vservers");
    let vs = s.post(&t, &vsl, json!({"protocol": "http", "port": 80})).await;
    vs.ok(201);
    s.post(&t, &vsl, json!({"protocol": "tcp", "port": 81})).await.ok(201);
    let bl = format!("{vsl}/{}/backends", vs.id());
    let b1 = s.post(&t, &bl, json!({"address": "127.33.1.20", "port": 80})).await;
    b1.ok(201);
    s.post(&t, &bl, json!({"address": "127.33.1.21", "port": 80}))
        .await
        .ok(201);
    let rl = format!("{vsl}/{}/rules", vs.id());
    s.post(&t, &rl, json!({"path": "/a", "backend_ids": [b1.id()]}))
        .await
        .ok(201);
    s.post(&t, &rl, json!({"path": "/bb", "backend_ids": [b1.id()]}))
        .await
        .ok(201);

    for list in [&vsl, &bl, &rl] {
        let page = s.get(&t, &format!("{list}?limit=1")).await;
        assert_eq!(page.ok(200)["total"], json!(2), "{list}");
        assert_eq!(page.body["items"].as_array().map(Vec::len), Some(1), "{list}?limit=1");
        let page = s.get(&t, &format!("{list}?offset=2")).await;
        assert_eq!(page.ok(200)["items"], json!([]), "{list}?offset=2");
        s.get(&t, &format!("{list}?limit=abc"))
            .await
            .err(400, "invalid_value", Some("limit"));
        s.get(&t, &format!("{list}?limit=5000"))
            .await
            .err(400, "invalid_value", Some("limit"));
    }
    // A backend is found by its address.
    let found = s.get(&t, &format!("{bl}?search=127.33.1.20")).await;
    assert_eq!(found.ok(200)["total"], json!(1));
    assert_eq!(found.body["items"][0]["id"], json!(b1.id()));
}
