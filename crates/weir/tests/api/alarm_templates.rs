//! Alarm templates: CRUD, every validation rule (status, code, field, and
//! nothing stored), tenancy, binding to LBs and VServers (409 `in_use`
//! while bound, freed by unbinding, rebinding and deleting the user), the
//! OpenAPI document and the CLI.

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::weir;
use crate::kit::{self, ADMIN, Resp, Server};

const TEMPLATES: &str = "/v1/alarm-templates";
const HOOK: &str = "https://hooks.example.com/weir";

/// Every metric name the API accepts (the spec's list plus dropped_per_s
/// and requests_per_s).
pub const METRICS: [&str; 13] = [
    "new_connections_per_s",
    "active_connections",
    "bytes_in_per_s",
    "bytes_out_per_s",
    "packets_in_per_s",
    "packets_out_per_s",
    "dropped_per_s",
    "requests_per_s",
    "http_2xx_per_s",
    "http_3xx_per_s",
    "http_4xx_per_s",
    "http_5xx_per_s",
    "unhealthy_backends",
];

fn rule(scope: &str, metric: &str, op: &str, threshold: Value, for_s: Value) -> Value {
    json!({"scope": scope, "metric": metric, "op": op, "threshold": threshold, "for_s": for_s})
}

fn good_rule() -> Value {
    rule("lb", "new_connections_per_s", ">", json!(5), json!(20))
}

fn template(name: &str, rules: Vec<Value>) -> Value {
    json!({"name": name, "rules": rules, "webhook_url": HOOK})
}

async fn create(s: &Server, token: &str, name: &str) -> String {
    let r = s.post(token, TEMPLATES, template(name, vec![good_rule()])).await;
    r.ok(201);
    r.id()
}

fn path(id: &str) -> String {
    format!("{TEMPLATES}/{id}")
}

async fn list_ids(s: &Server, token: &str, query: &str) -> (Vec<String>, u64) {
    let r = s.get(token, &format!("{TEMPLATES}{query}")).await;
    let b = r.ok(200);
    let ids = b["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    (ids, b["total"].as_u64().unwrap_or(u64::MAX))
}

async fn revision(s: &Server) -> Value {
    s.get(ADMIN, "/v1/system/status").await.ok(200)["revision"].clone()
}

/// Sends a refused request and checks status, code and field, and that the
/// watched GETs and the store revision did not change.
/// `create` refused by `POST /v1/alarm-templates` and `patch` by `PATCH p`,
/// both with `expect`, and nothing changed.
async fn refused_both(
    s: &Server,
    token: &str,
    watch: &[&str],
    p: &str,
    create: Value,
    patch: Value,
    expect: (u16, &str, Option<&str>),
) {
    refused(s, token, watch, (Method::POST, TEMPLATES, Some(create)), expect).await;
    refused(s, token, watch, (Method::PATCH, p, Some(patch)), expect).await;
}

async fn refused(
    s: &Server,
    token: &str,
    watch: &[&str],
    (method, path, body): (Method, &str, Option<Value>),
    (status, code, field): (u16, &str, Option<&str>),
) -> Resp {
    let mut before = Vec::new();
    for w in watch {
        before.push(s.get(token, w).await.ok(200).clone());
    }
    let rev = revision(s).await;
    let label = format!(
        "{method} {path} {}",
        body.as_ref().map(Value::to_string).unwrap_or_default()
    );
    let r = s.call(method, path, Some(token), body).await;
    assert_ne!(r.status.as_u16(), 500, "{label} → 500 {}", r.body);
    assert!(
        r.status.as_u16() == status && r.body["error"]["code"] == json!(code),
        "{label}: expected {status} {code} {field:?}, got {} {}",
        r.status,
        r.body
    );
    r.err(status, code, field);
    for (w, b) in watch.iter().zip(before) {
        assert_eq!(*s.get(token, w).await.ok(200), b, "{label} changed {w}");
    }
    assert_eq!(revision(s).await, rev, "{label} committed a revision");
    r
}

#[tokio::test]
async fn crud_round_trip() {
    let s = Server::start().await;
    let (acct, t) = s.account("alarms").await;
    let body = json!({"name": " Ops-Edge ", "webhook_url": HOOK, "rules": [
        good_rule(),
        {"scope": "vserver", "metric": "http_5xx_per_s", "op": ">=", "threshold": 0.5},
    ]});
    let r = s.post(&t, TEMPLATES, body).await;
    let created = r.ok(201).clone();
    assert!(r.revision.is_some(), "a create carries X-Weir-Revision");
    let id = r.id();
    assert!(id.starts_with("alarm-"), "{id}");
    assert_eq!(created["name"], "Ops-Edge", "names are trimmed");
    assert_eq!(created["webhook_url"], HOOK);
    assert_eq!(created["owner_id"], json!(acct));
    assert!(created["created_at"].as_str().is_some_and(|c| c.ends_with('Z')));
    let rules = created["rules"].as_array().cloned().unwrap_or_default();
    assert_eq!(rules.len(), 2);
    assert_eq!(
        (
            &rules[0]["scope"],
            &rules[0]["metric"],
            &rules[0]["op"],
            &rules[0]["for_s"]
        ),
        (&json!("lb"), &json!("new_connections_per_s"), &json!(">"), &json!(20))
    );
    assert_eq!(rules[0]["threshold"].as_f64(), Some(5.0));
    assert_eq!(rules[1]["threshold"].as_f64(), Some(0.5));
    assert_eq!(rules[1]["for_s"], json!(0), "for_s defaults to 0");
    assert_eq!(*s.get(&t, &path(&id)).await.ok(200), created);

    // List, search (case-insensitive over name and id), limit and offset.
    let other = create(&s, &t, "backup").await;
    let (ids, total) = list_ids(&s, &t, "").await;
    assert_eq!((ids.clone(), total), (vec![id.clone(), other.clone()], 2));
    assert_eq!(list_ids(&s, &t, "?search=ops-EDGE").await, (vec![id.clone()], 1));
    assert_eq!(
        list_ids(&s, &t, &format!("?search={other}")).await,
        (vec![other.clone()], 1)
    );
    assert_eq!(list_ids(&s, &t, "?search=nothing").await, (vec![], 0));
    assert_eq!(list_ids(&s, &t, "?limit=1").await, (vec![id.clone()], 2));
    assert_eq!(list_ids(&s, &t, "?limit=1&offset=1").await, (vec![other.clone()], 2));
    s.get(&t, &format!("{TEMPLATES}?limit=x"))
        .await
        .err(400, "invalid_value", Some("limit"));

    // PATCH: each field alone; rules replace all rules.
    let p = s.patch(&t, &path(&id), json!({"name": "ops"})).await;
    assert_eq!(p.ok(200)["name"], "ops");
    assert_eq!(p.body["rules"], created["rules"]);
    let new_rules = json!([rule("vserver", "active_connections", "<", json!(1), json!(86400))]);
    let p = s.patch(&t, &path(&id), json!({"rules": new_rules})).await;
    let rules = p.ok(200)["rules"].clone();
    assert_eq!(rules.as_array().map(Vec::len), Some(1));
    assert_eq!(rules[0]["metric"], "active_connections");
    assert_eq!(rules[0]["for_s"], json!(86400));
    let p = s
        .patch(&t, &path(&id), json!({"webhook_url": "http://127.0.0.1:9/hook"}))
        .await;
    assert_eq!(p.ok(200)["webhook_url"], "http://127.0.0.1:9/hook");
    assert_eq!(p.body["name"], "ops");
    assert_eq!(p.body["id"], json!(id));
    assert_eq!(p.body["created_at"], created["created_at"]);
    let stored = s.get(&t, &path(&id)).await.ok(200).clone();
    assert_eq!(stored, p.body);
    // A patch that changes nothing commits nothing.
    let rev = revision(&s).await;
    s.patch(&t, &path(&id), json!({"name": "ops"})).await.ok(200);
    s.patch(&t, &path(&id), json!({})).await.ok(200);
    assert_eq!(revision(&s).await, rev);

    // Delete.
    let d = s.delete(&t, &path(&id)).await;
    assert_eq!(d.status.as_u16(), 204);
    s.get(&t, &path(&id)).await.err(404, "not_found", None);
    s.patch(&t, &path(&id), json!({"name": "x"}))
        .await
        .err(404, "not_found", None);
    s.delete(&t, &path(&id)).await.err(404, "not_found", None);
    assert_eq!(list_ids(&s, &t, "").await, (vec![other], 1));

    // The OpenAPI document describes the endpoints and the types.
    let doc = s.get(&t, "/v1/openapi.json").await;
    let d = doc.ok(200);
    for (p, methods) in [
        ("/v1/alarm-templates", &["get", "post"][..]),
        ("/v1/alarm-templates/{id}", &["get", "patch", "delete"][..]),
    ] {
        for m in methods {
            assert!(d["paths"][p].get(*m).is_some(), "openapi lacks {m} {p}");
        }
    }
    let schemas = &d["components"]["schemas"];
    for schema in [
        "AlarmTemplate",
        "AlarmTemplateCreate",
        "AlarmTemplatePatch",
        "AlarmRule",
        "AlarmRuleInput",
        "Scope",
        "Op",
    ] {
        assert!(schemas[schema].is_object(), "openapi lacks schema {schema}");
    }
    for schema in ["AlarmRule", "AlarmRuleInput"] {
        let metric = &schemas[schema]["properties"]["metric"];
        assert_eq!(metric["enum"], json!(METRICS), "{schema}.metric: {metric}");
    }
    let ops = schemas["Op"].to_string();
    assert!(ops.contains("\">=\"") && ops.contains("\"<\""), "{ops}");
}

#[tokio::test]
async fn every_metric_scope_and_boundary_is_accepted() {
    let s = Server::start().await;
    let (_, t) = s.account("edges").await;
    for scope in ["lb", "vserver"] {
        let rules: Vec<Value> = METRICS
            .iter()
            .map(|m| rule(scope, m, ">=", json!(0), json!(0)))
            .collect();
        let r = s.post(&t, TEMPLATES, template(scope, rules)).await;
        let got: Vec<Value> = r.ok(201)["rules"]
            .as_array()
            .map(|a| a.iter().map(|r| r["metric"].clone()).collect())
            .unwrap_or_default();
        assert_eq!(got, METRICS.map(|m| json!(m)).to_vec());
    }
    let ops: Vec<Value> = [">", ">=", "<", "<="]
        .iter()
        .map(|op| rule("lb", "active_connections", op, json!(1.25), json!(86400)))
        .collect();
    let r = s.post(&t, TEMPLATES, template("ops", ops)).await;
    let got: Vec<&Value> = r.ok(201)["rules"]
        .as_array()
        .map(|a| a.iter().map(|r| &r["op"]).collect())
        .unwrap_or_default();
    assert_eq!(got, [&json!(">"), &json!(">="), &json!("<"), &json!("<=")]);
    let twenty: Vec<Value> = (0..20).map(|_| good_rule()).collect();
    s.post(&t, TEMPLATES, template("twenty", twenty)).await.ok(201);
    let host = "h.example";
    let prefix = format!("https://{host}/");
    let longest = format!("{prefix}{}", "a".repeat(2048 - prefix.len()));
    for url in [
        longest.as_str(),
        "http://h",
        "HTTP://H.example:8080/a?b=c#d",
        "http://[::1]:9000/x",
        "https://user:pw@h.example/x",
    ] {
        let r = s
            .post(
                &t,
                TEMPLATES,
                json!({"name": "hook", "rules": [good_rule()], "webhook_url": url}),
            )
            .await;
        assert_eq!(r.ok(201)["webhook_url"], json!(url));
    }
}

#[tokio::test]
async fn validation_names_the_field_and_stores_nothing() {
    let s = Server::start().await;
    let (_, t) = s.account("checks").await;
    let id = create(&s, &t, "base").await;
    let p = path(&id);
    let watch = [TEMPLATES, p.as_str()];

    let with = |key: &str, v: Value| {
        let mut r = good_rule();
        r[key] = v;
        r
    };
    let without = |key: &str| {
        let mut r = good_rule();
        r.as_object_mut().map(|o| o.remove(key));
        r
    };
    let many: Vec<Value> = (0..21).map(|_| good_rule()).collect();
    // (rules, code, field): each refused on POST and on PATCH.
    let rule_cases: Vec<(Value, &str, &str)> = vec![
        (json!([]), "invalid_value", "rules"),
        (json!(many), "invalid_value", "rules"),
        (json!("lb:x>1"), "invalid_value", "rules"),
        (
            json!([with("metric", json!("cpu"))]),
            "invalid_value",
            "rules[0].metric",
        ),
        (
            json!([good_rule(), with("metric", json!("New_Connections_Per_S"))]),
            "invalid_value",
            "rules[1].metric",
        ),
        (json!([with("metric", json!(3))]), "invalid_value", "rules[0].metric"),
        (json!([with("op", json!("!="))]), "invalid_value", "rules[0].op"),
        (json!([with("op", json!("=>"))]), "invalid_value", "rules[0].op"),
        (json!([with("op", json!("gt"))]), "invalid_value", "rules[0].op"),
        (
            json!([good_rule(), with("scope", json!("host"))]),
            "invalid_value",
            "rules[1].scope",
        ),
        (json!([with("scope", json!(null))]), "invalid_value", "rules[0].scope"),
        (
            json!([with("threshold", json!(-1))]),
            "out_of_range",
            "rules[0].threshold",
        ),
        (
            json!([with("threshold", json!(-0.001))]),
            "out_of_range",
            "rules[0].threshold",
        ),
        (
            json!([with("threshold", json!("5"))]),
            "invalid_value",
            "rules[0].threshold",
        ),
        (
            json!([with("threshold", json!(null))]),
            "invalid_value",
            "rules[0].threshold",
        ),
        (json!([with("for_s", json!(-1))]), "out_of_range", "rules[0].for_s"),
        (json!([with("for_s", json!(86401))]), "out_of_range", "rules[0].for_s"),
        (json!([with("for_s", json!(1.5))]), "invalid_value", "rules[0].for_s"),
        (json!([with("for_s", json!("20"))]), "invalid_value", "rules[0].for_s"),
        (json!([without("metric")]), "missing_field", "rules[0].metric"),
        (json!([without("op")]), "missing_field", "rules[0].op"),
        (json!([without("scope")]), "missing_field", "rules[0].scope"),
        (json!([without("threshold")]), "missing_field", "rules[0].threshold"),
        (json!([with("bogus", json!(1))]), "unknown_field", "rules[0].bogus"),
    ];
    for (rules, code, field) in rule_cases {
        let body = json!({"name": "bad", "rules": rules, "webhook_url": HOOK});
        refused_both(
            &s,
            &t,
            &watch,
            &p,
            body,
            json!({"rules": rules}),
            (400, code, Some(field)),
        )
        .await;
    }

    // An unknown metric, op or scope is answered with the valid values.
    let mut metric_words: Vec<&str> = METRICS.to_vec();
    metric_words.push("cpu");
    for (key, value, words) in [
        ("metric", "cpu", metric_words),
        ("op", "==", vec![">, >=, <, <="]),
        ("scope", "vs", vec!["lb, vserver"]),
    ] {
        let body = template("x", vec![with(key, json!(value))]);
        let field = format!("rules[0].{key}");
        let r = refused(
            &s,
            &t,
            &watch,
            (Method::POST, TEMPLATES, Some(body)),
            (400, "invalid_value", Some(&field)),
        )
        .await;
        let msg = r.body["error"]["message"].as_str().unwrap_or_default().to_string();
        for w in words {
            assert!(msg.contains(w), "{w:?} missing from {msg:?}");
        }
    }

    // Webhook URLs.
    let too_long = format!("https://h.example/{}", "a".repeat(2048));
    for url in [
        json!(""),
        json!("hooks.example.com/weir"),
        json!("ftp://hooks.example.com/weir"),
        json!("mailto:ops@example.com"),
        json!("http://"),
        json!("https:///path"),
        json!("http://:8080/x"),
        json!("http://exa mple.com/"),
        json!("http://example.com/a b"),
        json!(" http://example.com/"),
        json!("http://example.com/\t"),
        json!("http://example.com:0/"),
        json!("http://example.com:70000/"),
        json!("http://[::1/"),
        json!(too_long),
        json!(5),
    ] {
        let body = json!({"name": "bad", "rules": [good_rule()], "webhook_url": url});
        refused_both(
            &s,
            &t,
            &watch,
            &p,
            body,
            json!({"webhook_url": url}),
            (400, "invalid_value", Some("webhook_url")),
        )
        .await;
    }

    // Names and required fields.
    for name in [json!(""), json!("   "), json!("x".repeat(65)), json!("a\u{1}b")] {
        let body = json!({"name": name, "rules": [good_rule()], "webhook_url": HOOK});
        refused_both(
            &s,
            &t,
            &watch,
            &p,
            body,
            json!({"name": name}),
            (400, "invalid_value", Some("name")),
        )
        .await;
    }
    for (missing, field) in [("name", "name"), ("rules", "rules"), ("webhook_url", "webhook_url")] {
        let mut body = template("x", vec![good_rule()]);
        body.as_object_mut().map(|o| o.remove(missing));
        refused(
            &s,
            &t,
            &watch,
            (Method::POST, TEMPLATES, Some(body)),
            (400, "missing_field", Some(field)),
        )
        .await;
    }
    let mut extra = template("x", vec![good_rule()]);
    extra["owner_id"] = json!("acct-x");
    refused(
        &s,
        &t,
        &watch,
        (Method::POST, TEMPLATES, Some(extra)),
        (400, "unknown_field", Some("owner_id")),
    )
    .await;
    refused(
        &s,
        &t,
        &watch,
        (Method::PATCH, &p, Some(json!({"id": "alarm-x"}))),
        (400, "unknown_field", Some("id")),
    )
    .await;
    // A valid change next to an invalid one changes neither.
    refused(
        &s,
        &t,
        &watch,
        (
            Method::PATCH,
            &p,
            Some(json!({"name": "renamed", "rules": [with("for_s", json!(-5))]})),
        ),
        (400, "out_of_range", Some("rules[0].for_s")),
    )
    .await;
    // A number JSON cannot hold as a finite double is refused too.
    let r = s
        .raw(
            Method::POST,
            TEMPLATES,
            &t,
            format!(
                r#"{{"name":"big","webhook_url":"{HOOK}","rules":[{{"scope":"lb","metric":"active_connections","op":">","threshold":1e400}}]}}"#
            )
            .into_bytes(),
        )
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    assert_eq!(list_ids(&s, &t, "").await, (vec![id], 1));
}

#[tokio::test]
async fn tenants_cannot_see_or_bind_each_others_templates() {
    let s = Server::start().await;
    let (a_id, a) = s.account("alice").await;
    let (_, b) = s.account("bob").await;
    let mine = create(&s, &a, "alice-ops").await;
    let p = path(&mine);

    s.get(&b, &p).await.err(404, "not_found", None);
    refused(
        &s,
        &b,
        &[],
        (Method::PATCH, &p, Some(json!({"name": "pwned"}))),
        (404, "not_found", None),
    )
    .await;
    refused(&s, &b, &[], (Method::DELETE, &p, None), (404, "not_found", None)).await;
    assert_eq!(list_ids(&s, &b, "").await, (vec![], 0));
    assert_eq!(list_ids(&s, &b, "?search=alice").await, (vec![], 0));
    assert_eq!(s.get(&a, &p).await.ok(200)["name"], "alice-ops");
    // The admin sees everyone's.
    assert_eq!(s.get(ADMIN, &p).await.ok(200)["owner_id"], json!(a_id));
    assert!(list_ids(&s, ADMIN, "").await.0.contains(&mine));

    // Bob cannot bind Alice's template to his LB or VServer.
    let n = kit::net(&s, &b, "127.77.0.0/16", "127.77.1.0/24", "127.77.1.10").await;
    let lb_body = json!({"name": "bob", "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet,
        "alarm_template_id": mine});
    refused(
        &s,
        &b,
        &["/v1/load-balancers"],
        (Method::POST, "/v1/load-balancers", Some(lb_body)),
        (400, "invalid_reference", Some("alarm_template_id")),
    )
    .await;
    let lb = kit::lb(&s, &b, &n, "bob").await;
    // Applied first: its status turning `active` meanwhile is not a change
    // the refused requests below made.
    let rev = s.get(ADMIN, "/v1/system/status").await.ok(200)["revision"]
        .as_u64()
        .unwrap();
    s.wait_applied(rev).await;
    let lb_path = format!("/v1/load-balancers/{lb}");
    refused(
        &s,
        &b,
        &[&lb_path],
        (Method::PATCH, &lb_path, Some(json!({"alarm_template_id": mine}))),
        (400, "invalid_reference", Some("alarm_template_id")),
    )
    .await;
    let vss = format!("{lb_path}/vservers");
    refused(
        &s,
        &b,
        &[&vss],
        (
            Method::POST,
            &vss,
            Some(json!({"protocol": "udp", "port": 17701, "alarm_template_id": mine})),
        ),
        (400, "invalid_reference", Some("alarm_template_id")),
    )
    .await;
    let vs = s.post(&b, &vss, json!({"protocol": "udp", "port": 17701})).await;
    vs.ok(201);
    let vs_path = format!("{vss}/{}", vs.id());
    refused(
        &s,
        &b,
        &[&vs_path],
        (Method::PATCH, &vs_path, Some(json!({"alarm_template_id": mine}))),
        (400, "invalid_reference", Some("alarm_template_id")),
    )
    .await;
    // Nothing got bound: Alice deletes hers.
    assert_eq!(s.delete(&a, &p).await.status.as_u16(), 204);

    // A parent account sees its sub-account's templates, not the reverse.
    let sub = s
        .post(
            &a,
            &format!("/v1/accounts/{a_id}/sub-accounts"),
            json!({"name": "team"}),
        )
        .await;
    sub.ok(201);
    let sub_token = sub.body["token"].as_str().unwrap_or_default().to_string();
    let theirs = create(&s, &sub_token, "team-ops").await;
    let parents = create(&s, &a, "parent-ops").await;
    assert_eq!(s.get(&a, &path(&theirs)).await.ok(200)["name"], "team-ops");
    s.get(&sub_token, &path(&parents)).await.err(404, "not_found", None);
    assert_eq!(list_ids(&s, &sub_token, "").await, (vec![theirs.clone()], 1));
    s.get(&b, &path(&theirs)).await.err(404, "not_found", None);
}

/// `DELETE` of the template: 409 `in_use` whose message names every id in
/// `users`, or 204 when `users` is empty.
async fn delete_expect(s: &Server, token: &str, id: &str, users: &[&str]) {
    let p = path(id);
    if users.is_empty() {
        let r = s.delete(token, &p).await;
        assert_eq!(r.status.as_u16(), 204, "deleting {id}: {}", r.body);
        s.get(token, &p).await.err(404, "not_found", None);
        return;
    }
    let r = refused(s, token, &[&p], (Method::DELETE, &p, None), (409, "in_use", None)).await;
    let msg = r.body["error"]["message"].as_str().unwrap_or_default();
    for u in users {
        assert!(msg.contains(u), "{u} missing from {msg:?}");
    }
}

#[tokio::test]
async fn bound_templates_cannot_be_deleted_until_freed() {
    let s = Server::start().await;
    let (_, t) = s.account("binder").await;
    let n = kit::net(&s, &t, "127.77.0.0/16", "127.77.2.0/24", "127.77.2.10").await;
    let t1 = create(&s, &t, "one").await;
    let t2 = create(&s, &t, "two").await;

    // Bound at LB create.
    let lb = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "web", "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet,
                "alarm_template_id": t1}),
        )
        .await;
    assert_eq!(lb.ok(201)["alarm_template_id"], json!(t1));
    let lb = lb.id();
    let lb_path = format!("/v1/load-balancers/{lb}");
    delete_expect(&s, &t, &t1, &[&lb]).await;

    // Bound at VServer create.
    let vs = s
        .post(
            &t,
            &format!("{lb_path}/vservers"),
            json!({"protocol": "udp", "port": 17702, "alarm_template_id": t1}),
        )
        .await;
    assert_eq!(vs.ok(201)["alarm_template_id"], json!(t1));
    let vs = vs.id();
    let vs_path = format!("{lb_path}/vservers/{vs}");
    delete_expect(&s, &t, &t1, &[&lb, &vs]).await;

    // Changing the LB's binding from 1 to 2 frees 1 of the LB, binds 2.
    let r = s.patch(&t, &lb_path, json!({"alarm_template_id": t2})).await;
    assert_eq!(r.ok(200)["alarm_template_id"], json!(t2));
    delete_expect(&s, &t, &t2, &[&lb]).await;
    delete_expect(&s, &t, &t1, &[&vs]).await;
    let r = refused(&s, &t, &[], (Method::DELETE, &path(&t1), None), (409, "in_use", None)).await;
    let msg = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(!msg.contains(&lb), "the LB no longer uses template 1: {msg:?}");
    // Repeating the same binding, or changing other fields, keeps it.
    s.patch(&t, &lb_path, json!({"alarm_template_id": t2})).await.ok(200);
    s.patch(&t, &lb_path, json!({"name": "renamed"})).await.ok(200);
    s.patch(&t, &vs_path, json!({"idle_timeout_s": 120})).await.ok(200);
    s.patch(&t, &vs_path, json!({"alarm_template_id": t1})).await.ok(200);
    delete_expect(&s, &t, &t2, &[&lb]).await;
    delete_expect(&s, &t, &t1, &[&vs]).await;

    // A VServer moved to template 2, then unbound with null.
    let r = s.patch(&t, &vs_path, json!({"alarm_template_id": t2})).await;
    assert_eq!(r.ok(200)["alarm_template_id"], json!(t2));
    delete_expect(&s, &t, &t2, &[&lb, &vs]).await;
    let r = s.patch(&t, &vs_path, json!({"alarm_template_id": null})).await;
    assert_eq!(r.ok(200)["alarm_template_id"], Value::Null);
    // Template 1 is bound to nothing any more.
    delete_expect(&s, &t, &t1, &[]).await;
    // Unbinding the LB with null frees template 2.
    delete_expect(&s, &t, &t2, &[&lb]).await;
    let r = s.patch(&t, &lb_path, json!({"alarm_template_id": null})).await;
    assert_eq!(r.ok(200)["alarm_template_id"], Value::Null);
    delete_expect(&s, &t, &t2, &[]).await;

    // Deleting the VServer releases its binding.
    let t3 = create(&s, &t, "three").await;
    let r = s.patch(&t, &vs_path, json!({"alarm_template_id": t3})).await;
    r.ok(200);
    delete_expect(&s, &t, &t3, &[&vs]).await;
    assert_eq!(s.delete(&t, &vs_path).await.status.as_u16(), 204);
    delete_expect(&s, &t, &t3, &[]).await;

    // Deleting the LB releases its binding and its VServers'.
    let t4 = create(&s, &t, "four").await;
    let t5 = create(&s, &t, "five").await;
    s.patch(&t, &lb_path, json!({"alarm_template_id": t4})).await.ok(200);
    let vs2 = s
        .post(
            &t,
            &format!("{lb_path}/vservers"),
            json!({"protocol": "tcp", "port": 17703, "alarm_template_id": t5}),
        )
        .await;
    vs2.ok(201);
    delete_expect(&s, &t, &t4, &[&lb]).await;
    delete_expect(&s, &t, &t5, &[&vs2.id()]).await;
    assert_eq!(s.delete(&t, &lb_path).await.status.as_u16(), 204);
    delete_expect(&s, &t, &t4, &[]).await;
    delete_expect(&s, &t, &t5, &[]).await;

    // So does a batch delete.
    let t6 = create(&s, &t, "six").await;
    let lb2 = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "batch", "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet,
                "alarm_template_id": t6}),
        )
        .await;
    lb2.ok(201);
    delete_expect(&s, &t, &t6, &[&lb2.id()]).await;
    let r = s
        .post(&t, "/v1/load-balancers/batch-delete", json!({"ids": [lb2.id()]}))
        .await;
    assert_eq!(r.ok(200)["deleted"], json!([lb2.id()]));
    delete_expect(&s, &t, &t6, &[]).await;

    // A refused create leaves no binding behind.
    let t7 = create(&s, &t, "seven").await;
    let lb3 = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "ok", "network_type": "internal",
        "vpc_id": n.vpc, "subnet_id": n.subnet}),
        )
        .await;
    lb3.ok(201);
    let lb3_path = format!("/v1/load-balancers/{}", lb3.id());
    s.post(
        &t,
        &format!("{lb3_path}/vservers"),
        json!({"protocol": "udp", "port": 17704}),
    )
    .await
    .ok(201);
    s.post(
        &t,
        &format!("{lb3_path}/vservers"),
        json!({"protocol": "udp", "port": 17704, "alarm_template_id": t7}),
    )
    .await
    .err(409, "port_in_use", Some("port"));
    s.post(
        &t,
        "/v1/load-balancers",
        json!({"name": "clash", "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet,
            "private_ip": n.instance_ip, "alarm_template_id": t7}),
    )
    .await
    .err(409, "address_in_use", Some("private_ip"));
    delete_expect(&s, &t, &t7, &[]).await;
}

/// Runs the CLI and returns (exit code, stdout, stderr).
async fn run(s: &Server, args: &[&str]) -> (i32, String, String) {
    let out = weir(s, args).await;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn run_ok(s: &Server, args: &[&str]) -> String {
    let (code, out, err) = run(s, args).await;
    assert_eq!(code, 0, "weir {args:?} failed: {out}{err}");
    out
}

#[tokio::test]
async fn cli_manages_alarm_templates() {
    let s = Server::start().await;
    let out = run_ok(
        &s,
        &[
            "--output",
            "json",
            "alarm-template",
            "create",
            "--name",
            "cli-ops",
            "--rule",
            "lb:new_connections_per_s>5:20",
            "--rule",
            "vserver:http_5xx_per_s>=0.5",
            "--webhook",
            HOOK,
        ],
    )
    .await;
    let created: Value = serde_json::from_str(&out).expect("json output");
    let id = created["id"].as_str().unwrap_or_default().to_string();
    assert!(id.starts_with("alarm-"), "{out}");
    assert_eq!(created["webhook_url"], HOOK);
    assert_eq!(created["rules"][0]["metric"], "new_connections_per_s");
    assert_eq!(created["rules"][0]["op"], ">");
    assert_eq!(created["rules"][0]["for_s"], json!(20));
    assert_eq!(created["rules"][1]["op"], ">=");
    assert_eq!(created["rules"][1]["threshold"].as_f64(), Some(0.5));
    assert_eq!(created["rules"][1]["for_s"], json!(0));
    assert_eq!(*s.get(ADMIN, &path(&id)).await.ok(200), created);

    // Tables show the rules in the --rule syntax.
    let list = run_ok(&s, &["alarm-template", "list"]).await;
    for needle in [
        id.as_str(),
        "cli-ops",
        "lb:new_connections_per_s>5:20",
        "vserver:http_5xx_per_s>=0.5",
        HOOK,
    ] {
        assert!(list.contains(needle), "{needle} missing from\n{list}");
    }
    let other = create(&s, ADMIN, "other").await;
    let found = run_ok(&s, &["alarm-template", "list", "--search", "CLI-"]).await;
    assert!(found.contains(&id) && !found.contains(&other), "{found}");
    let show = run_ok(&s, &["alarm-template", "show", &id]).await;
    assert!(
        show.contains("cli-ops") && show.contains("lb:new_connections_per_s>5:20"),
        "{show}"
    );
    let shown: Value =
        serde_json::from_str(&run_ok(&s, &["--output", "json", "alarm-template", "show", &id]).await).expect("json");
    assert_eq!(shown, created);

    // --rule replaces every rule.
    let out = run_ok(
        &s,
        &[
            "--output",
            "json",
            "alarm-template",
            "update",
            &id,
            "--name",
            "cli-ops2",
            "--rule",
            "lb:active_connections<=100:60",
            "--webhook",
            "http://127.0.0.1:9/hook",
        ],
    )
    .await;
    let updated: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(updated["name"], "cli-ops2");
    assert_eq!(updated["webhook_url"], "http://127.0.0.1:9/hook");
    assert_eq!(updated["rules"].as_array().map(Vec::len), Some(1));
    assert_eq!(updated["rules"][0]["op"], "<=");
    assert_eq!(updated["rules"][0]["for_s"], json!(60));
    assert_eq!(*s.get(ADMIN, &path(&id)).await.ok(200), updated);
    let out = run_ok(&s, &["alarm-template", "update", &id, "--name", "cli-ops3"]).await;
    assert!(
        out.contains("cli-ops3") && out.contains("lb:active_connections<=100:60"),
        "{out}"
    );

    // A bad --rule is a usage error naming the flag and the syntax; nothing is sent.
    for bad in [
        "lb:new_connections_per_s",
        "host:active_connections>1",
        "lb:active_connections>x",
    ] {
        let (code, out, err) = run(
            &s,
            &[
                "alarm-template",
                "create",
                "--name",
                "bad",
                "--rule",
                bad,
                "--webhook",
                HOOK,
            ],
        )
        .await;
        assert_eq!(code, 2, "{bad}: {out}{err}");
        assert!(err.contains("--rule"), "{bad}: {err}");
        assert!(
            err.contains("<scope>:<metric><op><threshold>[:<for_s>]"),
            "{bad}: {err}"
        );
    }
    let (code, _, err) = run(&s, &["alarm-template", "update", &id, "--rule", "lb:x=1"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--rule"), "{err}");
    // Errors of the API name the flag behind the field.
    let (code, _, err) = run(
        &s,
        &[
            "alarm-template",
            "create",
            "--name",
            "bad",
            "--rule",
            "lb:cpu>1",
            "--webhook",
            HOOK,
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rules[0].metric") && err.contains("--rule"), "{err}");
    assert!(err.contains("new_connections_per_s"), "{err}");
    let (code, _, err) = run(&s, &["alarm-template", "update", &id, "--webhook", "ftp://x"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("webhook_url") && err.contains("--webhook"), "{err}");
    let (code, _, err) = run(&s, &["alarm-template", "update", &id]).await;
    assert_eq!(code, 2, "{err}");
    // `weir alarm list` reads GET /v1/alarms (nothing has fired here).
    for args in [&["alarm", "list"][..], &["alarm", "list", "--state", "firing"][..]] {
        let out = run_ok(&s, args).await;
        assert_eq!(out.trim(), "(none)", "{args:?}");
    }
    let args = ["--output", "json", "alarm", "list", "--state", "resolved"];
    let listed: Value = serde_json::from_str(&run_ok(&s, &args).await).expect("json");
    assert_eq!(listed, json!({"items": [], "total": 0}));
    let (code, _, err) = run(&s, &["alarm", "list", "--state", "open"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--state"), "{err}");
    assert_eq!(list_ids(&s, ADMIN, "").await.1, 2, "no bad template was stored");

    // Delete: refused while bound, then done.
    let n = kit::net(&s, ADMIN, "127.77.0.0/16", "127.77.3.0/24", "127.77.3.10").await;
    let lb = kit::lb(&s, ADMIN, &n, "cli-lb").await;
    s.patch(
        ADMIN,
        &format!("/v1/load-balancers/{lb}"),
        json!({"alarm_template_id": id}),
    )
    .await
    .ok(200);
    let (code, _, err) = run(&s, &["alarm-template", "delete", &id]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&lb), "{err}");
    s.patch(
        ADMIN,
        &format!("/v1/load-balancers/{lb}"),
        json!({"alarm_template_id": null}),
    )
    .await
    .ok(200);
    let out = run_ok(&s, &["alarm-template", "delete", &id]).await;
    assert!(out.contains(&format!("deleted {id}")), "{out}");
    let (code, _, err) = run(&s, &["alarm-template", "show", &id]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not found"), "{err}");
}
