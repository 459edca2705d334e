//! Tenancy: other tenants' resources are invisible (404, absent from lists
//! and searches); sub-accounts see only their own; bad tokens get 401.

use reqwest::Method;
use serde_json::json;

use crate::kit::{self, ADMIN, Server};

#[tokio::test]
async fn tenants_are_isolated() {
    let s = Server::start().await;
    let (a_id, a) = s.account("alice").await;
    let (_, b) = s.account("bob").await;
    let n = kit::net(&s, &a, "10.1.0.0/16", "10.1.1.0/24", "10.1.1.10").await;
    let lb = kit::lb(&s, &a, &n, "alice-web").await;
    let vs = s
        .post(
            &a,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "http", "port": 80}),
        )
        .await;
    vs.ok(201);
    let vs = vs.id();
    let rs = s
        .post(
            &a,
            &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends"),
            json!({"instance_id": n.instance, "port": 8080}),
        )
        .await;
    rs.ok(201);
    let rs = rs.id();

    // Bob: 404 on every one of Alice's resources, by id, for read and write.
    for path in [
        format!("/v1/load-balancers/{lb}"),
        format!("/v1/load-balancers/{lb}/vservers"),
        format!("/v1/load-balancers/{lb}/vservers/{vs}"),
        format!("/v1/load-balancers/{lb}/vservers/{vs}/backends"),
        format!("/v1/load-balancers/{lb}/vservers/{vs}/backends/{rs}"),
        format!("/v1/vpcs/{}", n.vpc),
        format!("/v1/subnets/{}", n.subnet),
        format!("/v1/instances/{}", n.instance),
    ] {
        s.get(&b, &path).await.err(404, "not_found", None);
    }
    s.patch(&b, &format!("/v1/load-balancers/{lb}"), json!({"name": "pwned"}))
        .await
        .err(404, "not_found", None);
    s.delete(&b, &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends/{rs}"))
        .await
        .err(404, "not_found", None);
    s.delete(&b, &format!("/v1/load-balancers/{lb}"))
        .await
        .err(404, "not_found", None);
    let r = s
        .post(&b, "/v1/load-balancers/batch-delete", json!({"ids": [lb]}))
        .await;
    assert_eq!(r.ok(200)["deleted"], json!([]));
    assert_eq!(r.body["failed"][0]["error"]["code"], "not_found");
    // Bob cannot build on Alice's VPC either: the reference is not found.
    let r = s
        .post(
            &b,
            "/v1/load-balancers",
            json!({"name": "x", "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet}),
        )
        .await;
    r.err(400, "invalid_reference", Some("vpc_id"));

    // Lists and searches: Bob sees none of it.
    for path in [
        "/v1/load-balancers",
        "/v1/load-balancers?search=alice",
        "/v1/vpcs",
        "/v1/instances",
        "/v1/subnets",
    ] {
        let r = s.get(&b, path).await;
        assert_eq!(r.ok(200)["total"], 0, "{path}");
        assert_eq!(r.body["items"], json!([]), "{path}");
    }
    // Alice still has everything, unchanged; the admin sees it too.
    let r = s.get(&a, "/v1/load-balancers?search=ALICE").await;
    assert_eq!(r.ok(200)["total"], 1);
    assert_eq!(r.body["items"][0]["name"], "alice-web");
    assert_eq!(
        s.get(ADMIN, &format!("/v1/load-balancers/{lb}")).await.ok(200)["id"],
        json!(lb)
    );
    assert_eq!(s.get(&a, "/v1/accounts/me").await.ok(200)["id"], json!(a_id));
}

#[tokio::test]
async fn sub_accounts_see_only_their_own() {
    let s = Server::start().await;
    let (a_id, a) = s.account("parent").await;
    let (b_id, b) = s.account("other").await;
    let sub = s
        .post(
            &a,
            &format!("/v1/accounts/{a_id}/sub-accounts"),
            json!({"name": "team"}),
        )
        .await;
    assert_eq!(sub.ok(201)["parent_id"], json!(a_id));
    let sub_token = sub.body["token"].as_str().unwrap_or_default().to_string();
    // Another account cannot create sub-accounts under Alice (404: not visible).
    s.post(&b, &format!("/v1/accounts/{a_id}/sub-accounts"), json!({"name": "x"}))
        .await
        .err(404, "not_found", None);
    // Only the admin creates top-level accounts.
    s.post(&a, "/v1/accounts", json!({"name": "x"}))
        .await
        .err(403, "forbidden", None);
    // A sub-account cannot nest further.
    let sub_id = sub.id();
    s.post(
        &sub_token,
        &format!("/v1/accounts/{sub_id}/sub-accounts"),
        json!({"name": "deeper"}),
    )
    .await
    .err(403, "forbidden", None);

    let parent_net = kit::net(&s, &a, "10.2.0.0/16", "10.2.1.0/24", "10.2.1.10").await;
    let parent_lb = kit::lb(&s, &a, &parent_net, "parent-lb").await;
    let sub_net = kit::net(&s, &sub_token, "10.3.0.0/16", "10.3.1.0/24", "10.3.1.10").await;
    let sub_lb = kit::lb(&s, &sub_token, &sub_net, "team-lb").await;

    // The sub-account sees only its own.
    let r = s.get(&sub_token, "/v1/load-balancers").await;
    assert_eq!(r.ok(200)["total"], 1);
    assert_eq!(r.body["items"][0]["id"], json!(sub_lb));
    s.get(&sub_token, &format!("/v1/load-balancers/{parent_lb}"))
        .await
        .err(404, "not_found", None);
    // The parent sees its own and its sub-account's.
    let r = s.get(&a, "/v1/load-balancers").await;
    assert_eq!(r.ok(200)["total"], 2);
    assert_eq!(
        s.get(&a, &format!("/v1/load-balancers/{sub_lb}")).await.ok(200)["name"],
        "team-lb"
    );
    // The other tenant sees neither.
    assert_eq!(s.get(&b, "/v1/load-balancers").await.ok(200)["total"], 0);
    assert_eq!(s.get(&b, "/v1/accounts/me").await.ok(200)["id"], json!(b_id));
    // Resources a parent creates under its sub-account's LB belong to the sub-account.
    let vs = s
        .post(
            &a,
            &format!("/v1/load-balancers/{sub_lb}/vservers"),
            json!({"protocol": "tcp", "port": 22}),
        )
        .await;
    vs.ok(201);
    assert_eq!(
        s.get(&sub_token, &format!("/v1/load-balancers/{sub_lb}/vservers/{}", vs.id()))
            .await
            .ok(200)["port"],
        22
    );
}

#[tokio::test]
async fn bad_tokens_get_401_everywhere() {
    let s = Server::start().await;
    let (_, a) = s.account("alice").await;
    let n = kit::net(&s, &a, "10.1.0.0/16", "10.1.1.0/24", "10.1.1.10").await;
    let lb = kit::lb(&s, &a, &n, "web").await;
    let routes: Vec<(Method, String)> = vec![
        (Method::GET, "/v1/accounts/me".into()),
        (Method::GET, "/v1/accounts".into()),
        (Method::POST, "/v1/accounts".into()),
        (Method::POST, "/v1/accounts/acct-x/sub-accounts".into()),
        (Method::GET, "/v1/system/status".into()),
        (Method::GET, "/v1/openapi.json".into()),
        (Method::GET, "/v1/vpcs".into()),
        (Method::POST, "/v1/vpcs".into()),
        (Method::PATCH, format!("/v1/vpcs/{}", n.vpc)),
        (Method::DELETE, format!("/v1/vpcs/{}", n.vpc)),
        (Method::GET, "/v1/subnets".into()),
        (Method::GET, "/v1/eips".into()),
        (Method::POST, "/v1/eips".into()),
        (Method::GET, "/v1/instances".into()),
        (Method::GET, "/v1/security-groups".into()),
        (Method::GET, "/v1/load-balancers".into()),
        (Method::POST, "/v1/load-balancers".into()),
        (Method::GET, "/v1/load-balancers/export.xlsx".into()),
        (Method::POST, "/v1/load-balancers/batch-delete".into()),
        (Method::GET, format!("/v1/load-balancers/{lb}")),
        (Method::PATCH, format!("/v1/load-balancers/{lb}")),
        (Method::DELETE, format!("/v1/load-balancers/{lb}")),
        (Method::POST, format!("/v1/load-balancers/{lb}/renew")),
        (Method::GET, format!("/v1/load-balancers/{lb}/vservers")),
        (Method::POST, format!("/v1/load-balancers/{lb}/vservers")),
        (Method::GET, format!("/v1/load-balancers/{lb}/vservers/vs-x/backends")),
        (
            Method::POST,
            format!("/v1/load-balancers/{lb}/vservers/vs-x/backends/batch"),
        ),
        (Method::GET, format!("/v1/load-balancers/{lb}/vservers/vs-x/rules")),
    ];
    for (m, path) in &routes {
        for token in [None, Some("nope"), Some(""), Some("Bearer")] {
            let r = s.call(m.clone(), path, token, Some(json!({"name": "x"}))).await;
            r.err(401, "unauthorized", None);
        }
    }
    // Nothing was changed by any of them.
    let r = s.get(&a, &format!("/v1/load-balancers/{lb}")).await;
    assert_eq!(r.ok(200)["name"], "web");
    assert_eq!(s.get(ADMIN, "/v1/accounts").await.ok(200)["total"], 2);
    // /healthz needs no token.
    assert_eq!(s.call(Method::GET, "/healthz", None, None).await.status.as_u16(), 200);
}
