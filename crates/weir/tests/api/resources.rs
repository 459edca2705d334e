//! Every endpoint's happy path, end to end against the real binary: what a
//! create returns is what a GET, a list and a search return; patches change
//! exactly what they name; deletes cascade where the spec says so.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::kit::{self, ADMIN, Server};

// ---- helpers ---------------------------------------------------------------

/// `GET path` (a list) → (ids in order, total).
async fn list_ids(s: &Server, token: &str, path: &str) -> (Vec<String>, u64) {
    let r = s.get(token, path).await;
    let b = r.ok(200);
    let items = b["items"].as_array().unwrap_or_else(|| panic!("no items in {b}"));
    let ids = items
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect();
    (ids, b["total"].as_u64().unwrap_or_else(|| panic!("no total in {b}")))
}

/// A resource body without the fields derived at read time.
fn stable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
        o.remove("health");
        o.remove("status_message");
        o.remove("last_check");
    }
    v
}

/// Create → get → list with `search=` → patch the name → delete → 404, for a
/// resource that supports a name patch.
async fn crud_cycle(s: &Server, token: &str, base: &str, body: Value, search: &str, prefix: &str) -> Value {
    let r = s.post(token, base, body.clone()).await;
    let created = r.ok(201).clone();
    let id = r.id();
    assert!(id.starts_with(prefix), "id {id} should start with {prefix}");
    if let Some(name) = body.get("name") {
        assert_eq!(created["name"], *name);
    }
    let got = s.get(token, &format!("{base}/{id}")).await;
    assert_eq!(*got.ok(200), created, "GET returns what the create returned");

    let (ids, total) = list_ids(s, token, &format!("{base}?search={search}")).await;
    assert_eq!(
        ids,
        vec![id.clone()],
        "search {search:?} finds exactly the new {prefix}"
    );
    assert_eq!(total, 1);
    let (ids, _) = list_ids(s, token, &format!("{base}?search={}", search.to_uppercase())).await;
    assert_eq!(ids, vec![id.clone()], "search is case-insensitive");
    let (ids, total) = list_ids(s, token, &format!("{base}?search=no-such-thing-anywhere")).await;
    assert!(ids.is_empty());
    assert_eq!(total, 0);

    let p = s
        .patch(token, &format!("{base}/{id}"), json!({"name": "renamed"}))
        .await;
    assert_eq!(p.ok(200)["name"], json!("renamed"));
    assert_eq!(p.body["id"], json!(id));
    let got = s.get(token, &format!("{base}/{id}")).await;
    assert_eq!(got.ok(200)["name"], json!("renamed"));
    let mut expected = created.clone();
    expected["name"] = json!("renamed");
    assert_eq!(got.body, expected, "a name patch changes only the name");

    s.delete(token, &format!("{base}/{id}")).await.ok(204);
    s.get(token, &format!("{base}/{id}")).await.err(404, "not_found", None);
    let (ids, _) = list_ids(s, token, &format!("{base}?search={search}")).await;
    assert!(ids.is_empty(), "deleted {id} still listed");
    s.delete(token, &format!("{base}/{id}"))
        .await
        .err(404, "not_found", None);
    created
}

/// (year, month, day, seconds of the day, fraction text) of an RFC 3339 UTC
/// timestamp such as `2026-01-31T10:00:00.5Z`.
fn parse_ts(t: &str) -> (i64, u32, u32, i64, String) {
    let t = t.strip_suffix('Z').unwrap_or_else(|| panic!("{t} is not UTC"));
    let (date, time) = t.split_once('T').unwrap_or_else(|| panic!("{t} has no T"));
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let h: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    (
        d[0],
        d[1] as u32,
        d[2] as u32,
        h[0] * 3600 + h[1] * 60 + h[2],
        frac.to_string(),
    )
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Whole seconds since the epoch and the fraction text.
fn unix(t: &str) -> (i64, String) {
    let (y, m, d, secs, frac) = parse_ts(t);
    (days_from_civil(y, m, d) * 86400 + secs, frac)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `t` plus `n` calendar months (the day clamps to the month's end), as
/// (year, month, day); the time of day is unchanged.
fn plus_months(t: &str, n: u32) -> (i64, u32, u32) {
    let (y, m, d, _, _) = parse_ts(t);
    let total = m - 1 + n;
    let year = y + i64::from(total / 12);
    let month = total % 12 + 1;
    (year, month, d.min(days_in_month(year, month)))
}

fn time_of_day(t: &str) -> &str {
    t.split_once('T').map(|(_, rest)| rest).unwrap_or_default()
}

/// Files under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                seen += 1;
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    out.push(p.display().to_string());
                }
            }
        }
    }
    assert!(seen > 0, "no files under {}", dir.display());
    out
}

// ---- accounts --------------------------------------------------------------

#[tokio::test]
async fn accounts_me_create_and_sub_accounts() {
    let s = Server::start().await;
    let me = s.get(ADMIN, "/v1/accounts/me").await;
    let b = me.ok(200);
    assert!(b["id"].as_str().unwrap().starts_with("acct-"), "{b}");
    assert_eq!(b["is_admin"], json!(true));
    assert_eq!(b["parent_id"], Value::Null);
    assert!(b["name"].as_str().is_some_and(|n| !n.is_empty()));

    let r = s.post(ADMIN, "/v1/accounts", json!({"name": "acme"})).await;
    let acct = r.ok(201).clone();
    let acct_id = r.id();
    assert!(acct_id.starts_with("acct-"));
    assert_eq!(acct["name"], json!("acme"));
    let token = acct["token"].as_str().unwrap().to_string();
    assert!(!token.is_empty());
    assert_ne!(token, ADMIN);
    // Stored hashed: the token's text is nowhere in the data directory.
    assert_eq!(
        files_containing(&s.dir, token.as_bytes()),
        Vec::<String>::new(),
        "token stored in clear"
    );

    let me = s.get(&token, "/v1/accounts/me").await;
    assert_eq!(
        *me.ok(200),
        json!({"id": acct_id, "name": "acme", "parent_id": null, "is_admin": false,
               "created_at": me.body["created_at"]})
    );
    assert!(me.body["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(
        me.body.get("token").is_none() && me.body.get("token_sha256").is_none(),
        "{}",
        me.body
    );

    // The account itself creates a sub-account.
    let r = s
        .post(
            &token,
            &format!("/v1/accounts/{acct_id}/sub-accounts"),
            json!({"name": "acme-dev"}),
        )
        .await;
    let sub = r.ok(201).clone();
    assert!(r.id().starts_with("acct-"));
    assert_eq!(sub["name"], json!("acme-dev"));
    assert_eq!(sub["parent_id"], json!(acct_id));
    let sub_token = sub["token"].as_str().unwrap().to_string();
    let me = s.get(&sub_token, "/v1/accounts/me").await;
    assert_eq!(me.ok(200)["id"], sub["id"]);
    assert_eq!(me.body["parent_id"], json!(acct_id));
    assert_eq!(me.body["is_admin"], json!(false));

    // The admin creates one for it too.
    let r = s
        .post(
            ADMIN,
            &format!("/v1/accounts/{acct_id}/sub-accounts"),
            json!({"name": "acme-ops"}),
        )
        .await;
    assert_eq!(r.ok(201)["parent_id"], json!(acct_id));
    let ops_token = r.body["token"].as_str().unwrap().to_string();
    assert_ne!(ops_token, sub_token);
    assert_eq!(
        s.get(&ops_token, "/v1/accounts/me").await.ok(200)["name"],
        json!("acme-ops")
    );
}

// ---- network ---------------------------------------------------------------

#[tokio::test]
async fn network_resources_crud() {
    let s = Server::start().await;
    let (_, t) = s.account("netops").await;

    // VPC (kept: subnets need one) and a throwaway VPC through the cycle.
    crud_cycle(
        &s,
        &t,
        "/v1/vpcs",
        json!({"name": "scratch-vpc", "cidr": "10.200.0.0/16"}),
        "scratch",
        "vpc-",
    )
    .await;
    let vpc = s
        .post(&t, "/v1/vpcs", json!({"name": "main-vpc", "cidr": "127.16.0.0/12"}))
        .await;
    assert_eq!(vpc.ok(201)["cidr"], json!("127.16.0.0/12"));
    let vpc_id = vpc.id();
    // Boundaries of the VPC prefix range are accepted.
    let v8 = s
        .post(&t, "/v1/vpcs", json!({"name": "big", "cidr": "10.0.0.0/8"}))
        .await;
    v8.ok(201);
    let v28 = s
        .post(&t, "/v1/vpcs", json!({"name": "tiny", "cidr": "192.168.9.16/28"}))
        .await;
    v28.ok(201);
    // Search is case-insensitive on the stored text as well.
    let mixed = s
        .post(&t, "/v1/vpcs", json!({"name": "MixedCase", "cidr": "10.201.0.0/16"}))
        .await;
    mixed.ok(201);
    let (ids, _) = list_ids(&s, &t, "/v1/vpcs?search=mixedcase").await;
    assert_eq!(ids, vec![mixed.id()]);
    s.delete(&t, &format!("/v1/vpcs/{}", mixed.id())).await.ok(204);
    // Searching by CIDR text finds a VPC by its address.
    let (ids, _) = list_ids(&s, &t, "/v1/vpcs?search=192.168.9").await;
    assert_eq!(ids, vec![v28.id()]);

    // Subnet.
    let sn = crud_cycle(
        &s,
        &t,
        "/v1/subnets",
        json!({"vpc_id": vpc_id, "name": "scratch-subnet", "cidr": "127.17.0.0/24"}),
        "scratch-sub",
        "subnet-",
    )
    .await;
    assert_eq!(sn["vpc_id"], json!(vpc_id));
    assert_eq!(sn["cidr"], json!("127.17.0.0/24"));
    let subnet = s
        .post(
            &t,
            "/v1/subnets",
            json!({"vpc_id": vpc_id, "name": "app", "cidr": "127.17.1.0/24"}),
        )
        .await;
    subnet.ok(201);
    let subnet_id = subnet.id();
    // The whole VPC as one subnet of another VPC, and a /30, are fine.
    let whole = s
        .post(
            &t,
            "/v1/subnets",
            json!({"vpc_id": v28.id(), "name": "all", "cidr": "192.168.9.16/28"}),
        )
        .await;
    whole.ok(201);
    s.delete(&t, &format!("/v1/subnets/{}", whole.id())).await.ok(204);
    let s30 = s
        .post(
            &t,
            "/v1/subnets",
            json!({"vpc_id": v28.id(), "name": "p2p", "cidr": "192.168.9.16/30"}),
        )
        .await;
    s30.ok(201);

    // Instance: search by address.
    let vm = crud_cycle(
        &s,
        &t,
        "/v1/instances",
        json!({"name": "scratch-vm", "subnet_id": subnet_id, "private_ip": "127.17.1.77"}),
        "127.17.1.77",
        "vm-",
    )
    .await;
    assert_eq!(vm["private_ip"], json!("127.17.1.77"));
    assert_eq!(vm["subnet_id"], json!(subnet_id));
    assert_eq!(vm["vpc_id"], json!(vpc_id));
    // Its IP is free again once it is deleted.
    let again = s
        .post(
            &t,
            "/v1/instances",
            json!({"name": "again", "subnet_id": subnet_id, "private_ip": "127.17.1.77"}),
        )
        .await;
    again.ok(201);

    // EIP: explicit address, search by address, then one allocated from the pool.
    let eip = crud_cycle(
        &s,
        &t,
        "/v1/eips",
        json!({"address": "127.0.20.200", "name": "scratch-eip"}),
        "127.0.20.200",
        "eip-",
    )
    .await;
    assert_eq!(eip["address"], json!("127.0.20.200"));
    assert_eq!(eip["lb_id"], Value::Null);
    let auto = s.post(&t, "/v1/eips", json!({})).await;
    assert_eq!(
        auto.ok(201)["address"],
        json!("127.0.20.1"),
        "first free address of the default pool"
    );
    let auto2 = s.post(&t, "/v1/eips", json!({})).await;
    assert_eq!(auto2.ok(201)["address"], json!("127.0.20.2"));
    // The released explicit address can be taken again.
    s.post(&t, "/v1/eips", json!({"address": "127.0.20.200"})).await.ok(201);
    let (_, total) = list_ids(&s, &t, "/v1/eips").await;
    assert_eq!(total, 3);

    // Paging: total counts every match, limit/offset cut the page.
    let (all, total) = list_ids(&s, &t, "/v1/vpcs").await;
    assert_eq!(total, 3);
    assert_eq!(all.len(), 3);
    let (page, total) = list_ids(&s, &t, "/v1/vpcs?limit=1&offset=1").await;
    assert_eq!(total, 3);
    assert_eq!(page, vec![all[1].clone()]);
    let (page, total) = list_ids(&s, &t, "/v1/vpcs?limit=0").await;
    assert_eq!((page.len(), total), (0, 3));
    let (page, _) = list_ids(&s, &t, "/v1/vpcs?offset=3").await;
    assert!(page.is_empty());
}

#[tokio::test]
async fn security_group_crud() {
    let s = Server::start().await;
    let (_, t) = s.account("sec").await;
    let body = json!({"name": "edge-sg", "rules": [
        {"priority": 20, "action": "allow", "protocol": "tcp", "ports": "80", "source": "0.0.0.0/0"},
        {"priority": 10, "action": "deny", "protocol": "any", "ports": "all", "source": "10.0.0.0/8"},
        {"priority": 1000, "action": "allow", "protocol": "udp", "ports": "8000-8100", "source": "::/0"},
        {"priority": 1, "action": "allow", "protocol": "tcp", "ports": "443", "source": "192.168.1.0/24"}
    ]});
    let r = s.post(&t, "/v1/security-groups", body.clone()).await;
    let sg = r.ok(201).clone();
    let id = r.id();
    assert!(id.starts_with("sg-"));
    let prios: Vec<u64> = sg["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["priority"].as_u64().unwrap())
        .collect();
    assert_eq!(prios, vec![1, 10, 20, 1000], "rules are kept lowest priority first");
    assert_eq!(
        sg["rules"][1],
        json!({"priority": 10, "action": "deny", "protocol": "any", "ports": "all", "source": "10.0.0.0/8"})
    );
    assert_eq!(sg["rules"][3]["ports"], json!("8000-8100"));
    assert_eq!(sg["rules"][3]["source"], json!("::/0"));
    assert_eq!(*s.get(&t, &format!("/v1/security-groups/{id}")).await.ok(200), sg);

    let (ids, total) = list_ids(&s, &t, "/v1/security-groups?search=EDGE").await;
    assert_eq!((ids, total), (vec![id.clone()], 1));

    // Patch the rules only: the name stays.
    let p = s
        .patch(
            &t,
            &format!("/v1/security-groups/{id}"),
            json!({"rules": [{"priority": 5, "action": "allow", "protocol": "tcp", "ports": "22", "source": "10.1.0.0/16"}]}),
        )
        .await;
    assert_eq!(p.ok(200)["name"], json!("edge-sg"));
    assert_eq!(
        p.body["rules"],
        json!([{"priority": 5, "action": "allow", "protocol": "tcp", "ports": "22", "source": "10.1.0.0/16"}])
    );
    // Patch the name only: the rules stay.
    let p = s
        .patch(&t, &format!("/v1/security-groups/{id}"), json!({"name": "edge2"}))
        .await;
    assert_eq!(p.ok(200)["name"], json!("edge2"));
    assert_eq!(p.body["rules"].as_array().map(Vec::len), Some(1));
    let got = s.get(&t, &format!("/v1/security-groups/{id}")).await;
    assert_eq!(got.ok(200)["name"], json!("edge2"));
    assert_eq!(got.body["rules"][0]["ports"], json!("22"));
    // Empty rule list is allowed (everything denied).
    let empty = s.post(&t, "/v1/security-groups", json!({"name": "closed"})).await;
    assert_eq!(empty.ok(201)["rules"], json!([]));

    s.delete(&t, &format!("/v1/security-groups/{id}")).await.ok(204);
    s.get(&t, &format!("/v1/security-groups/{id}"))
        .await
        .err(404, "not_found", None);
    let (ids, total) = list_ids(&s, &t, "/v1/security-groups").await;
    assert_eq!((ids, total), (vec![empty.id()], 1));
}

// ---- load balancers --------------------------------------------------------

#[tokio::test]
async fn internal_lb_allocation_skips_taken_addresses() {
    let s = Server::start().await;
    let (_, a) = s.account("alice").await;
    let (_, b) = s.account("bob").await;
    // Alice: instances on .1 and .2; her LB gets .3.
    let na = kit::net(&s, &a, "127.1.0.0/16", "127.1.1.0/24", "127.1.1.1").await;
    s.post(
        &a,
        "/v1/instances",
        json!({"name": "vm2", "subnet_id": na.subnet, "private_ip": "127.1.1.2"}),
    )
    .await
    .ok(201);
    let r = s
        .post(
            &a,
            "/v1/load-balancers",
            json!({"name": "int-a", "comment": "alice internal", "network_type": "internal",
                   "vpc_id": na.vpc, "subnet_id": na.subnet}),
        )
        .await;
    let lb = r.ok(201).clone();
    let lb_a = r.id();
    assert!(lb_a.starts_with("lb-"));
    assert_eq!(lb["name"], json!("int-a"));
    assert_eq!(lb["comment"], json!("alice internal"));
    assert_eq!(lb["network_type"], json!("internal"));
    assert_eq!(lb["vpc_id"], json!(na.vpc));
    assert_eq!(lb["subnet_id"], json!(na.subnet));
    assert_eq!(lb["private_ip"], json!("127.1.1.3"), "skips both instances' IPs");
    assert_eq!(
        lb["address"],
        json!("127.1.1.3"),
        "internal: the ingress is the private IP"
    );
    assert_eq!(lb["eip"], Value::Null);
    assert_eq!(lb["security_group_id"], Value::Null);
    assert_eq!(lb["alarm_template_id"], Value::Null);
    assert_eq!(lb["billing_mode"], json!("hourly"), "default billing mode");
    assert_eq!(lb["vserver_count"], json!(0));
    assert!(matches!(lb["status"].as_str(), Some("creating" | "active")), "{lb}");
    let (created, _) = unix(lb["created_at"].as_str().unwrap());
    let (expires, _) = unix(lb["expires_at"].as_str().unwrap());
    assert_eq!(expires - created, 3600, "hourly: one period paid at creation");
    assert_eq!(
        stable(s.get(&a, &format!("/v1/load-balancers/{lb_a}")).await.ok(200)),
        stable(&lb)
    );

    // Bob's VPC overlaps Alice's: his instances take .1 and .2 of his VPC,
    // Alice's LB holds .3 on the host, so his LB gets .4.
    let nb = kit::net(&s, &b, "127.1.0.0/16", "127.1.1.0/24", "127.1.1.1").await;
    s.post(
        &b,
        "/v1/instances",
        json!({"name": "vm2", "subnet_id": nb.subnet, "private_ip": "127.1.1.2"}),
    )
    .await
    .ok(201);
    let r = s
        .post(
            &b,
            "/v1/load-balancers",
            json!({"name": "int-b", "network_type": "internal", "vpc_id": nb.vpc, "subnet_id": nb.subnet}),
        )
        .await;
    assert_eq!(
        r.ok(201)["private_ip"],
        json!("127.1.1.4"),
        "skips the address another LB holds"
    );
    assert_eq!(r.body["address"], json!("127.1.1.4"));

    // An explicit private IP that is free.
    let r = s
        .post(
            &a,
            "/v1/load-balancers",
            json!({"name": "int-pinned", "network_type": "internal", "vpc_id": na.vpc, "subnet_id": na.subnet,
                   "private_ip": "127.1.1.100", "billing_mode": "monthly"}),
        )
        .await;
    assert_eq!(r.ok(201)["private_ip"], json!("127.1.1.100"));
    assert_eq!(r.body["address"], json!("127.1.1.100"));
    assert_eq!(r.body["billing_mode"], json!("monthly"));
    let pinned = r.id();
    // Allocation then continues after the taken ones.
    let r = s
        .post(
            &a,
            "/v1/load-balancers",
            json!({"name": "int-next", "network_type": "internal", "vpc_id": na.vpc, "subnet_id": na.subnet}),
        )
        .await;
    assert_eq!(r.ok(201)["private_ip"], json!("127.1.1.5"), ".4 is Bob's LB address");

    // An instance cannot take an LB's private IP afterwards.
    s.post(
        &a,
        "/v1/instances",
        json!({"name": "late", "subnet_id": na.subnet, "private_ip": "127.1.1.3"}),
    )
    .await
    .err(409, "address_in_use", Some("private_ip"));

    // List, search by name, by address, by comment; patch name and comment.
    let (ids, total) = list_ids(&s, &a, "/v1/load-balancers").await;
    assert_eq!(total, 3);
    assert!(ids.contains(&lb_a) && ids.contains(&pinned));
    let (ids, _) = list_ids(&s, &a, "/v1/load-balancers?search=PINNED").await;
    assert_eq!(ids, vec![pinned.clone()]);
    let (ids, _) = list_ids(&s, &a, "/v1/load-balancers?search=127.1.1.100").await;
    assert_eq!(ids, vec![pinned.clone()]);
    let (ids, _) = list_ids(&s, &a, "/v1/load-balancers?search=alice%20internal").await;
    assert_eq!(ids, vec![lb_a.clone()]);
    let (ids, _) = list_ids(&s, &a, &format!("/v1/load-balancers?search={lb_a}")).await;
    assert_eq!(ids, vec![lb_a.clone()]);

    // `_` and `%` are literal characters in a search, not wildcards.
    let under = s
        .post(
            &a,
            "/v1/load-balancers",
            json!({"name": "web_1", "network_type": "internal", "vpc_id": na.vpc, "subnet_id": na.subnet}),
        )
        .await;
    under.ok(201);
    s.post(
        &a,
        "/v1/load-balancers",
        json!({"name": "webx1", "network_type": "internal", "vpc_id": na.vpc, "subnet_id": na.subnet}),
    )
    .await
    .ok(201);
    let (ids, _) = list_ids(&s, &a, "/v1/load-balancers?search=b_1").await;
    assert_eq!(ids, vec![under.id()]);
    let (ids, total) = list_ids(&s, &a, "/v1/load-balancers?search=%25").await;
    assert_eq!((ids.len(), total), (0, 0));

    let p = s
        .patch(
            &a,
            &format!("/v1/load-balancers/{lb_a}"),
            json!({"name": "int-a2", "comment": "renamed"}),
        )
        .await;
    assert_eq!(p.ok(200)["name"], json!("int-a2"));
    assert_eq!(p.body["comment"], json!("renamed"));
    assert_eq!(p.body["private_ip"], json!("127.1.1.3"));
    let got = s.get(&a, &format!("/v1/load-balancers/{lb_a}")).await;
    assert_eq!(got.ok(200)["name"], json!("int-a2"));
    assert_eq!(got.body["comment"], json!("renamed"));
    assert_eq!(got.body["expires_at"], lb["expires_at"]);
    // Only the comment changes when only it is given.
    let p = s
        .patch(&a, &format!("/v1/load-balancers/{lb_a}"), json!({"comment": ""}))
        .await;
    assert_eq!(p.ok(200)["name"], json!("int-a2"));
    assert_eq!(p.body["comment"], json!(""));
}

/// A VPC may overlap the EIP pool: LB addresses and EIPs still never clash.
#[tokio::test]
async fn lb_addresses_and_eips_never_collide() {
    let s = Server::start().await;
    let (_, t) = s.account("overlap").await;
    let vpc = s
        .post(&t, "/v1/vpcs", json!({"name": "pool-vpc", "cidr": "127.0.20.0/24"}))
        .await;
    vpc.ok(201);
    let sn = s
        .post(
            &t,
            "/v1/subnets",
            json!({"vpc_id": vpc.id(), "name": "all", "cidr": "127.0.20.0/24"}),
        )
        .await;
    sn.ok(201);
    // An EIP takes .1; an internal LB then skips it and takes .2.
    assert_eq!(
        s.post(&t, "/v1/eips", json!({})).await.ok(201)["address"],
        json!("127.0.20.1")
    );
    let int = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "int", "network_type": "internal", "vpc_id": vpc.id(), "subnet_id": sn.id()}),
        )
        .await;
    assert_eq!(int.ok(201)["address"], json!("127.0.20.2"), "skips the EIP's address");
    // The next EIP skips the LB's address.
    assert_eq!(
        s.post(&t, "/v1/eips", json!({})).await.ok(201)["address"],
        json!("127.0.20.3")
    );
    // An external LB's auto EIP skips all of them.
    let ext = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "ext", "network_type": "external", "vpc_id": vpc.id(), "subnet_id": sn.id()}),
        )
        .await;
    assert_eq!(ext.ok(201)["address"], json!("127.0.20.4"));
    let addrs: Vec<Value> = s.get(&t, "/v1/eips").await.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["address"].clone())
        .collect();
    assert_eq!(
        addrs,
        vec![json!("127.0.20.1"), json!("127.0.20.3"), json!("127.0.20.4")]
    );
}

#[tokio::test]
async fn external_lbs_eips_and_security_groups() {
    let s = Server::start().await;
    let (_, t) = s.account("ext").await;
    let n = kit::net(&s, &t, "127.2.0.0/16", "127.2.1.0/24", "127.2.1.1").await;
    let sg = s
        .post(&t, "/v1/security-groups", json!({"name": "web-sg", "rules": []}))
        .await;
    sg.ok(201);
    let sg2 = s.post(&t, "/v1/security-groups", json!({"name": "web-sg2"})).await;
    sg2.ok(201);

    // EIP allocated from the default pool.
    let r = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "ext-auto", "network_type": "external", "vpc_id": n.vpc, "subnet_id": n.subnet,
                   "security_group_id": sg.id()}),
        )
        .await;
    let lb = r.ok(201).clone();
    let lb_auto = r.id();
    assert_eq!(lb["network_type"], json!("external"));
    assert_eq!(
        lb["eip"]["address"],
        json!("127.0.20.1"),
        "first address of 127.0.20.0/24"
    );
    let eip_auto = lb["eip"]["id"].as_str().unwrap().to_string();
    assert!(eip_auto.starts_with("eip-"));
    assert_eq!(lb["address"], json!("127.0.20.1"), "external: the ingress is the EIP");
    assert_eq!(
        lb["private_ip"],
        json!("127.2.1.2"),
        "private IP still allocated from the subnet"
    );
    assert_eq!(lb["security_group_id"], json!(sg.id()));
    let e = s.get(&t, &format!("/v1/eips/{eip_auto}")).await;
    assert_eq!(e.ok(200)["address"], json!("127.0.20.1"));
    assert_eq!(e.body["lb_id"], json!(lb_auto));
    let (ids, _) = list_ids(&s, &t, "/v1/eips").await;
    assert_eq!(
        ids,
        vec![eip_auto.clone()],
        "the auto-allocated EIP belongs to the tenant"
    );

    // An explicit EIP.
    let eip = s.post(&t, "/v1/eips", json!({"address": "127.0.20.9"})).await;
    eip.ok(201);
    let r = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "ext-pinned", "network_type": "external", "vpc_id": n.vpc, "subnet_id": n.subnet,
                   "eip_id": eip.id(), "billing_mode": "annual"}),
        )
        .await;
    assert_eq!(r.ok(201)["eip"], json!({"id": eip.id(), "address": "127.0.20.9"}));
    assert_eq!(r.body["address"], json!("127.0.20.9"));
    assert_eq!(r.body["security_group_id"], Value::Null);
    assert_eq!(r.body["billing_mode"], json!("annual"));
    let lb_pinned = r.id();
    assert_eq!(
        s.get(&t, &format!("/v1/eips/{}", eip.id())).await.ok(200)["lb_id"],
        json!(lb_pinned)
    );
    // The next auto allocation skips both bound addresses.
    let r = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "ext-3", "network_type": "external", "vpc_id": n.vpc, "subnet_id": n.subnet}),
        )
        .await;
    assert_eq!(r.ok(201)["eip"]["address"], json!("127.0.20.2"));
    // Search by EIP address.
    let (ids, _) = list_ids(&s, &t, "/v1/load-balancers?search=127.0.20.9").await;
    assert_eq!(ids, vec![lb_pinned.clone()]);

    // Patch the security group: swap, then clear.
    let p = s
        .patch(
            &t,
            &format!("/v1/load-balancers/{lb_auto}"),
            json!({"security_group_id": sg2.id()}),
        )
        .await;
    assert_eq!(p.ok(200)["security_group_id"], json!(sg2.id()));
    // The old group is free now, the new one bound.
    s.delete(&t, &format!("/v1/security-groups/{}", sg.id())).await.ok(204);
    s.delete(&t, &format!("/v1/security-groups/{}", sg2.id()))
        .await
        .err(409, "in_use", None);
    let p = s
        .patch(
            &t,
            &format!("/v1/load-balancers/{lb_auto}"),
            json!({"security_group_id": null}),
        )
        .await;
    assert_eq!(p.ok(200)["security_group_id"], Value::Null);
    assert_eq!(
        s.get(&t, &format!("/v1/load-balancers/{lb_auto}")).await.ok(200)["security_group_id"],
        Value::Null
    );
    s.delete(&t, &format!("/v1/security-groups/{}", sg2.id())).await.ok(204);
    assert_eq!(p.body["eip"]["address"], json!("127.0.20.1"), "unrelated fields kept");
}

#[tokio::test]
async fn renew_extends_expiry_per_billing_mode() {
    let s = Server::start().await;
    let (_, t) = s.account("payer").await;
    let n = kit::net(&s, &t, "127.3.0.0/16", "127.3.1.0/24", "127.3.1.1").await;
    let mk = |mode: &'static str| {
        json!({"name": format!("lb-{mode}"), "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet,
               "billing_mode": mode})
    };

    // Hourly: +1 h, then +24 h (the maximum).
    let r = s.post(&t, "/v1/load-balancers", mk("hourly")).await;
    let id = r.id();
    let e0 = r.ok(201)["expires_at"].as_str().unwrap().to_string();
    for (n_periods, hours) in [(1, 1), (24, 24)] {
        let before = s.get(&t, &format!("/v1/load-balancers/{id}")).await.ok(200)["expires_at"]
            .as_str()
            .unwrap()
            .to_string();
        let r = s
            .post(
                &t,
                &format!("/v1/load-balancers/{id}/renew"),
                json!({"periods": n_periods}),
            )
            .await;
        let after = r.ok(200)["expires_at"].as_str().unwrap().to_string();
        assert_eq!(r.body["id"], json!(id));
        let (b, bf) = unix(&before);
        let (a, af) = unix(&after);
        assert_eq!(a - b, hours * 3600, "hourly renew {n_periods}: {before} → {after}");
        assert_eq!(af, bf, "sub-second part unchanged");
        assert_eq!(
            s.get(&t, &format!("/v1/load-balancers/{id}")).await.ok(200)["expires_at"],
            json!(after)
        );
    }
    let (a, _) = unix(
        s.get(&t, &format!("/v1/load-balancers/{id}")).await.ok(200)["expires_at"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(a - unix(&e0).0, 25 * 3600);

    // Monthly: +1 month at creation, then +1 and +11 (the maximum).
    let r = s.post(&t, "/v1/load-balancers", mk("monthly")).await;
    let id = r.id();
    let created = r.ok(201)["created_at"].as_str().unwrap().to_string();
    let e0 = r.body["expires_at"].as_str().unwrap().to_string();
    let (y, m, d, _, _) = parse_ts(&e0);
    assert_eq!(
        (y, m, d),
        plus_months(&created, 1),
        "monthly: one month paid at creation ({created} → {e0})"
    );
    let mut before = e0;
    for k in [1u32, 11] {
        let r = s
            .post(&t, &format!("/v1/load-balancers/{id}/renew"), json!({"periods": k}))
            .await;
        let after = r.ok(200)["expires_at"].as_str().unwrap().to_string();
        let (y, m, d, _, _) = parse_ts(&after);
        assert_eq!(
            (y, m, d),
            plus_months(&before, k),
            "monthly renew {k}: {before} → {after}"
        );
        assert_eq!(time_of_day(&after), time_of_day(&before), "time of day unchanged");
        before = after;
    }

    // Annual: +1 year at creation, then +5 (the maximum).
    let r = s.post(&t, "/v1/load-balancers", mk("annual")).await;
    let id = r.id();
    let created = r.ok(201)["created_at"].as_str().unwrap().to_string();
    let e0 = r.body["expires_at"].as_str().unwrap().to_string();
    let (y, m, d, _, _) = parse_ts(&e0);
    assert_eq!((y, m, d), plus_months(&created, 12));
    let r = s
        .post(&t, &format!("/v1/load-balancers/{id}/renew"), json!({"periods": 5}))
        .await;
    let after = r.ok(200)["expires_at"].as_str().unwrap().to_string();
    let (y, m, d, _, _) = parse_ts(&after);
    assert_eq!((y, m, d), plus_months(&e0, 60), "annual renew 5: {e0} → {after}");
    assert_eq!(time_of_day(&after), time_of_day(&e0));
    assert_eq!(r.body["billing_mode"], json!("annual"));
}

#[tokio::test]
async fn batch_delete_mixes_good_and_unknown_ids() {
    let s = Server::start().await;
    let (_, t) = s.account("batch").await;
    let n = kit::net(&s, &t, "127.4.0.0/16", "127.4.1.0/24", "127.4.1.1").await;
    let a = kit::lb(&s, &t, &n, "a").await;
    let b = kit::lb(&s, &t, &n, "b").await;
    let c = kit::lb(&s, &t, &n, "c").await;
    let r = s
        .post(
            &t,
            "/v1/load-balancers/batch-delete",
            json!({"ids": [a, "lb-000000000000", b, "not-even-an-id"]}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["deleted"], json!([a, b]));
    let failed = out["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{out}");
    assert_eq!(failed[0]["id"], json!("lb-000000000000"));
    assert_eq!(failed[0]["error"]["code"], json!("not_found"));
    assert!(failed[0]["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(failed[1]["id"], json!("not-even-an-id"));
    assert_eq!(failed[1]["error"]["code"], json!("not_found"));
    s.get(&t, &format!("/v1/load-balancers/{a}"))
        .await
        .err(404, "not_found", None);
    s.get(&t, &format!("/v1/load-balancers/{b}"))
        .await
        .err(404, "not_found", None);
    let (ids, total) = list_ids(&s, &t, "/v1/load-balancers").await;
    assert_eq!((ids, total), (vec![c.clone()], 1));
    // Deleting again: all fail, nothing else touched.
    let r = s.post(&t, "/v1/load-balancers/batch-delete", json!({"ids": [a]})).await;
    assert_eq!(r.ok(200)["deleted"], json!([]));
    assert_eq!(r.body["failed"][0]["id"], json!(a));
    let r = s.post(&t, "/v1/load-balancers/batch-delete", json!({"ids": []})).await;
    assert_eq!(*r.ok(200), json!({"deleted": [], "failed": []}));
    assert_eq!(list_ids(&s, &t, "/v1/load-balancers").await.1, 1);
}

#[tokio::test]
async fn deleting_an_lb_cascades() {
    // (An unusual port: the data plane binds the EIP, which other tests'
    // servers may hold too.)
    let s = Server::start().await;
    let (_, t) = s.account("cascade").await;
    let n = kit::net(&s, &t, "127.5.0.0/16", "127.5.1.0/24", "127.5.1.1").await;
    let sg = s.post(&t, "/v1/security-groups", json!({"name": "sg"})).await;
    sg.ok(201);
    let r = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "doomed", "network_type": "external", "vpc_id": n.vpc, "subnet_id": n.subnet,
                   "security_group_id": sg.id()}),
        )
        .await;
    let lb = r.id();
    let eip = r.ok(201)["eip"]["id"].as_str().unwrap().to_string();
    let eip_addr = r.body["eip"]["address"].as_str().unwrap().to_string();
    let private_ip = r.body["private_ip"].as_str().unwrap().to_string();
    let vs = s
        .post(
            &t,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "http", "port": 18080}),
        )
        .await;
    vs.ok(201);
    let vs = vs.id();
    let rs = s
        .post(
            &t,
            &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends"),
            json!({"instance_id": n.instance, "port": 8080}),
        )
        .await;
    rs.ok(201);
    let rs = rs.id();
    let rule = s
        .post(
            &t,
            &format!("/v1/load-balancers/{lb}/vservers/{vs}/rules"),
            json!({"path": "/api", "backend_ids": [rs]}),
        )
        .await;
    rule.ok(201);
    assert_eq!(
        s.get(&t, &format!("/v1/load-balancers/{lb}")).await.ok(200)["vserver_count"],
        json!(1)
    );
    // While the LB lives, its users block deletes.
    s.delete(&t, &format!("/v1/instances/{}", n.instance))
        .await
        .err(409, "in_use", None);
    s.delete(&t, &format!("/v1/eips/{eip}")).await.err(409, "in_use", None);

    s.delete(&t, &format!("/v1/load-balancers/{lb}")).await.ok(204);
    s.get(&t, &format!("/v1/load-balancers/{lb}"))
        .await
        .err(404, "not_found", None);
    s.get(&t, &format!("/v1/load-balancers/{lb}/vservers"))
        .await
        .err(404, "not_found", None);
    s.get(&t, &format!("/v1/load-balancers/{lb}/vservers/{vs}"))
        .await
        .err(404, "not_found", None);
    s.get(&t, &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends/{rs}"))
        .await
        .err(404, "not_found", None);
    s.get(
        &t,
        &format!("/v1/load-balancers/{lb}/vservers/{vs}/rules/{}", rule.id()),
    )
    .await
    .err(404, "not_found", None);
    assert_eq!(list_ids(&s, &t, "/v1/load-balancers").await.1, 0);

    // The EIP stays allocated to the tenant, unbound.
    let e = s.get(&t, &format!("/v1/eips/{eip}")).await;
    assert_eq!(e.ok(200)["lb_id"], Value::Null);
    assert_eq!(e.body["address"], json!(eip_addr));
    let (ids, _) = list_ids(&s, &t, "/v1/eips").await;
    assert_eq!(ids, vec![eip.clone()]);
    // The backend is gone: its instance is no longer in use; the security
    // group is unbound; the private IP is free.
    s.delete(&t, &format!("/v1/security-groups/{}", sg.id())).await.ok(204);
    let again = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "reborn", "network_type": "internal", "vpc_id": n.vpc, "subnet_id": n.subnet,
                   "private_ip": private_ip}),
        )
        .await;
    assert_eq!(again.ok(201)["private_ip"], json!(private_ip));
    // The freed EIP can front a new external LB.
    let ext = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "reuse", "network_type": "external", "vpc_id": n.vpc, "subnet_id": n.subnet, "eip_id": eip}),
        )
        .await;
    assert_eq!(ext.ok(201)["address"], json!(eip_addr));
    // The backend is gone, so the instance is no longer in use.
    s.delete(&t, &format!("/v1/instances/{}", n.instance)).await.ok(204);
    // Deleting the LBs leaves the subnet deletable.
    s.delete(&t, &format!("/v1/load-balancers/{}", again.id()))
        .await
        .ok(204);
    s.delete(&t, &format!("/v1/load-balancers/{}", ext.id())).await.ok(204);
    s.delete(&t, &format!("/v1/subnets/{}", n.subnet)).await.ok(204);
    s.delete(&t, &format!("/v1/vpcs/{}", n.vpc)).await.ok(204);
    s.delete(&t, &format!("/v1/eips/{eip}")).await.ok(204);
    assert_eq!(list_ids(&s, &t, "/v1/eips").await.1, 0);
}

// ---- VServers --------------------------------------------------------------

#[tokio::test]
async fn vserver_create_get_list_patch_delete() {
    let s = Server::start().await;
    let (_, t) = s.account("vs").await;
    let n = kit::net(&s, &t, "127.6.0.0/16", "127.6.1.0/24", "127.6.1.1").await;
    let lb = kit::lb(&s, &t, &n, "web").await;
    let base = format!("/v1/load-balancers/{lb}/vservers");

    // Defaults of an http VServer.
    let r = s.post(&t, &base, json!({"protocol": "http", "port": 80})).await;
    let http = r.ok(201).clone();
    let http_id = r.id();
    assert!(http_id.starts_with("vs-"));
    assert_eq!(http["lb_id"], json!(lb));
    assert_eq!(http["protocol"], json!("http"));
    assert_eq!(http["port"], json!(80));
    assert_eq!(http["algorithm"], json!("weighted_round_robin"));
    assert_eq!(http["persistence"]["mode"], json!("off"));
    assert_eq!(http["idle_timeout_s"], json!(60));
    assert_eq!(
        http["health_check"],
        json!({"type": "port", "path": "/", "domain": null, "interval_s": 5, "timeout_s": 2,
               "healthy_threshold": 2, "unhealthy_threshold": 3})
    );
    assert_eq!(http["proxy_protocol"], json!("off"));
    assert_eq!(
        http["forward_headers"],
        json!({"x_forwarded_for": true, "x_real_ip": true, "x_forwarded_proto": true, "host": null})
    );
    assert_eq!(http["tls"], Value::Null);
    assert_eq!(http["alarm_template_id"], Value::Null);
    assert!(
        matches!(http["status"].as_str(), Some("creating" | "running" | "updating")),
        "{http}"
    );
    assert_eq!(http["health"], json!("all_unhealthy"), "no backends → all_unhealthy");
    assert!(http["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Every option given explicitly.
    let full = json!({"protocol": "http", "port": 8080, "algorithm": "least_connections",
        "persistence": {"mode": "custom_cookie", "key": "SESSION_ID"}, "idle_timeout_s": 86400,
        "health_check": {"type": "http", "path": "/healthz?full&1", "domain": "app.example.com",
                         "interval_s": 10, "timeout_s": 10, "healthy_threshold": 10, "unhealthy_threshold": 1},
        "forward_headers": {"x_forwarded_for": false, "x_real_ip": true, "x_forwarded_proto": false, "host": "backend.internal:8080"}});
    let r = s.post(&t, &base, full).await;
    let f = r.ok(201).clone();
    assert_eq!(f["algorithm"], json!("least_connections"));
    assert_eq!(f["persistence"], json!({"mode": "custom_cookie", "key": "SESSION_ID"}));
    assert_eq!(f["idle_timeout_s"], json!(86400));
    assert_eq!(
        f["health_check"],
        json!({"type": "http", "path": "/healthz?full&1", "domain": "app.example.com", "interval_s": 10, "timeout_s": 10,
               "healthy_threshold": 10, "unhealthy_threshold": 1})
    );
    assert_eq!(
        f["forward_headers"],
        json!({"x_forwarded_for": false, "x_real_ip": true, "x_forwarded_proto": false, "host": "backend.internal:8080"})
    );

    // tcp with PROXY v2 and source_ip scheduling; udp with source_ip persistence on the same port 80.
    let tcp = s
        .post(&t, &base, json!({"protocol": "tcp", "port": 443, "algorithm": "source_ip", "proxy_protocol": "v2", "idle_timeout_s": 1}))
        .await;
    assert_eq!(tcp.ok(201)["proxy_protocol"], json!("v2"));
    assert_eq!(tcp.body["algorithm"], json!("source_ip"));
    assert_eq!(tcp.body["forward_headers"], Value::Null);
    assert_eq!(tcp.body["idle_timeout_s"], json!(1));
    let udp = s
        .post(
            &t,
            &base,
            json!({"protocol": "udp", "port": 80, "persistence": {"mode": "source_ip"}, "idle_timeout_s": 300}),
        )
        .await;
    assert_eq!(udp.ok(201)["persistence"]["mode"], json!("source_ip"));
    assert_eq!(udp.body["port"], json!(80));
    assert_eq!(udp.body["forward_headers"], Value::Null);

    // Ports are per LB: another LB may use http 80 too.
    let lb2 = kit::lb(&s, &t, &n, "web2").await;
    let other = s
        .post(
            &t,
            &format!("/v1/load-balancers/{lb2}/vservers"),
            json!({"protocol": "http", "port": 80}),
        )
        .await;
    assert_eq!(other.ok(201)["lb_id"], json!(lb2));

    // GET and list agree with the create.
    assert_eq!(
        stable(s.get(&t, &format!("{base}/{http_id}")).await.ok(200)),
        stable(&http)
    );
    let (ids, total) = list_ids(&s, &t, &base).await;
    assert_eq!(total, 4);
    for id in [&http_id, &r.id(), &tcp.id(), &udp.id()] {
        assert!(ids.contains(id), "{id} listed");
    }
    assert_eq!(
        s.get(&t, &format!("/v1/load-balancers/{lb}")).await.ok(200)["vserver_count"],
        json!(4)
    );

    // Merge patch of a nested field keeps its siblings.
    let p = s
        .patch(
            &t,
            &format!("{base}/{http_id}"),
            json!({"health_check": {"interval_s": 10}}),
        )
        .await;
    let mut want = http["health_check"].clone();
    want["interval_s"] = json!(10);
    assert_eq!(p.ok(200)["health_check"], want);
    assert_eq!(p.body["forward_headers"], http["forward_headers"]);
    let p = s
        .patch(
            &t,
            &format!("{base}/{http_id}"),
            json!({"forward_headers": {"x_real_ip": false, "host": "api.internal"}}),
        )
        .await;
    assert_eq!(
        p.ok(200)["forward_headers"],
        json!({"x_forwarded_for": true, "x_real_ip": false, "x_forwarded_proto": true, "host": "api.internal"})
    );
    // null removes a member (host back to the client's).
    let p = s
        .patch(
            &t,
            &format!("{base}/{http_id}"),
            json!({"forward_headers": {"host": null}}),
        )
        .await;
    assert_eq!(p.ok(200)["forward_headers"]["host"], Value::Null);
    assert_eq!(p.body["forward_headers"]["x_real_ip"], json!(false));
    // Persistence: custom cookie, then insert_cookie with the key removed.
    let p = s
        .patch(
            &t,
            &format!("{base}/{http_id}"),
            json!({"persistence": {"mode": "custom_cookie", "key": "sid"}, "idle_timeout_s": 120}),
        )
        .await;
    assert_eq!(p.ok(200)["persistence"], json!({"mode": "custom_cookie", "key": "sid"}));
    assert_eq!(p.body["idle_timeout_s"], json!(120));
    let p = s
        .patch(
            &t,
            &format!("{base}/{http_id}"),
            json!({"persistence": {"mode": "insert_cookie", "key": null}}),
        )
        .await;
    assert_eq!(p.ok(200)["persistence"]["mode"], json!("insert_cookie"));
    assert!(p.body["persistence"]["key"].is_null());
    // Repeating protocol and port is accepted; alarm_template_id null clears.
    let p = s
        .patch(
            &t,
            &format!("{base}/{http_id}"),
            json!({"protocol": "http", "port": 80, "alarm_template_id": null, "algorithm": "source_ip"}),
        )
        .await;
    assert_eq!(p.ok(200)["protocol"], json!("http"));
    assert_eq!(p.body["port"], json!(80));
    assert_eq!(p.body["alarm_template_id"], Value::Null);
    assert_eq!(p.body["algorithm"], json!("source_ip"));
    // Everything patched is what GET returns; nothing else moved.
    let got = s.get(&t, &format!("{base}/{http_id}")).await;
    let g = got.ok(200);
    assert_eq!(g["health_check"]["interval_s"], json!(10));
    assert_eq!(g["health_check"]["timeout_s"], json!(2));
    assert_eq!(g["idle_timeout_s"], json!(120));
    assert_eq!(g["persistence"]["mode"], json!("insert_cookie"));
    assert_eq!(g["created_at"], http["created_at"]);
    assert_eq!(g["id"], json!(http_id));
    // tcp: PROXY protocol can be switched off.
    let p = s
        .patch(&t, &format!("{base}/{}", tcp.id()), json!({"proxy_protocol": "off"}))
        .await;
    assert_eq!(p.ok(200)["proxy_protocol"], json!("off"));
    assert_eq!(p.body["algorithm"], json!("source_ip"));

    // Delete (no backends) frees the port for a new VServer.
    s.delete(&t, &format!("{base}/{}", tcp.id())).await.ok(204);
    s.get(&t, &format!("{base}/{}", tcp.id()))
        .await
        .err(404, "not_found", None);
    assert_eq!(list_ids(&s, &t, &base).await.1, 3);
    let again = s.post(&t, &base, json!({"protocol": "tcp", "port": 443})).await;
    assert_eq!(again.ok(201)["port"], json!(443));
    assert_eq!(
        s.get(&t, &format!("/v1/load-balancers/{lb}")).await.ok(200)["vserver_count"],
        json!(4)
    );
}

// ---- backends --------------------------------------------------------------

#[tokio::test]
async fn backends_crud_and_batch() {
    let s = Server::start().await;
    let (_, t) = s.account("rs").await;
    let n = kit::net(&s, &t, "127.7.0.0/16", "127.7.1.0/24", "127.7.1.10").await;
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

    let r = s
        .post(&t, &base, json!({"instance_id": n.instance, "port": 8080}))
        .await;
    let b1 = r.ok(201).clone();
    let b1_id = r.id();
    assert!(b1_id.starts_with("rs-"));
    assert_eq!(b1["instance_id"], json!(n.instance));
    assert_eq!(b1["address"], json!("127.7.1.10"), "the instance's IP");
    assert_eq!(b1["port"], json!(8080));
    assert_eq!(b1["weight"], json!(1), "default weight");
    assert_eq!(b1["enabled"], json!(true));
    assert!(
        matches!(b1["status"].as_str(), Some("valid" | "invalid" | "checking")),
        "{b1}"
    );
    // The same instance on another port; a bare address in the VPC (even
    // outside any subnet) with explicit weight and enabled.
    let r = s
        .post(
            &t,
            &base,
            json!({"instance_id": n.instance, "port": 8081, "weight": 100}),
        )
        .await;
    let b2_id = r.id();
    assert_eq!(r.ok(201)["weight"], json!(100));
    let r = s
        .post(
            &t,
            &base,
            json!({"address": "127.7.200.5", "port": 9000, "weight": 7, "enabled": false}),
        )
        .await;
    let b3 = r.ok(201).clone();
    let b3_id = r.id();
    assert_eq!(b3["instance_id"], Value::Null);
    assert_eq!(b3["address"], json!("127.7.200.5"));
    assert_eq!(b3["weight"], json!(7));
    assert_eq!(b3["enabled"], json!(false));

    let got = s.get(&t, &format!("{base}/{b1_id}")).await;
    assert_eq!(stable(got.ok(200)), stable(&b1));
    let (ids, total) = list_ids(&s, &t, &base).await;
    assert_eq!(total, 3);
    assert_eq!(ids.len(), 3);
    for id in [&b1_id, &b2_id, &b3_id] {
        assert!(ids.contains(id));
    }
    assert_eq!(
        s.get(&t, &format!("/v1/load-balancers/{lb}/vservers/{}", vs.id()))
            .await
            .ok(200)["backend_count"],
        json!(3)
    );

    // Patch weight, enabled, port, each alone.
    let p = s.patch(&t, &format!("{base}/{b1_id}"), json!({"weight": 50})).await;
    assert_eq!(p.ok(200)["weight"], json!(50));
    assert_eq!(p.body["port"], json!(8080));
    assert_eq!(p.body["enabled"], json!(true));
    let p = s.patch(&t, &format!("{base}/{b1_id}"), json!({"enabled": false})).await;
    assert_eq!(p.ok(200)["enabled"], json!(false));
    assert_eq!(p.body["weight"], json!(50));
    let p = s.patch(&t, &format!("{base}/{b1_id}"), json!({"port": 8082})).await;
    assert_eq!(p.ok(200)["port"], json!(8082));
    let got = s.get(&t, &format!("{base}/{b1_id}")).await;
    assert_eq!(
        (&got.ok(200)["port"], &got.body["weight"], &got.body["enabled"]),
        (&json!(8082), &json!(50), &json!(false))
    );
    assert_eq!(got.body["address"], json!("127.7.1.10"));
    // The old (address, port) is free again.
    let r = s.post(&t, &base, json!({"address": "127.7.1.10", "port": 8080})).await;
    assert_eq!(r.ok(201)["instance_id"], Value::Null);
    let b4_id = r.id();

    // Batch: enable two plus an unknown id.
    let r = s
        .post(
            &t,
            &format!("{base}/batch"),
            json!({"action": "enable", "ids": [b1_id, b3_id, "rs-000000000000"]}),
        )
        .await;
    let out = r.ok(200);
    assert_eq!(out["done"], json!([b1_id, b3_id]));
    assert_eq!(out["failed"].as_array().map(Vec::len), Some(1), "{out}");
    assert_eq!(out["failed"][0]["id"], json!("rs-000000000000"));
    assert_eq!(out["failed"][0]["error"]["code"], json!("not_found"));
    for id in [&b1_id, &b3_id] {
        assert_eq!(s.get(&t, &format!("{base}/{id}")).await.ok(200)["enabled"], json!(true));
    }
    // Disable.
    let r = s
        .post(
            &t,
            &format!("{base}/batch"),
            json!({"action": "disable", "ids": [b2_id, "rs-nope", b4_id]}),
        )
        .await;
    assert_eq!(r.ok(200)["done"], json!([b2_id, b4_id]));
    assert_eq!(r.body["failed"][0]["id"], json!("rs-nope"));
    assert_eq!(r.body["failed"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        s.get(&t, &format!("{base}/{b2_id}")).await.ok(200)["enabled"],
        json!(false)
    );
    assert_eq!(
        s.get(&t, &format!("{base}/{b4_id}")).await.ok(200)["enabled"],
        json!(false)
    );
    assert_eq!(
        s.get(&t, &format!("{base}/{b1_id}")).await.ok(200)["enabled"],
        json!(true),
        "not in the batch"
    );
    // Delete.
    let r = s
        .post(
            &t,
            &format!("{base}/batch"),
            json!({"action": "delete", "ids": [b2_id, "rs-000000000001", b4_id]}),
        )
        .await;
    assert_eq!(r.ok(200)["done"], json!([b2_id, b4_id]));
    assert_eq!(r.body["failed"][0]["id"], json!("rs-000000000001"));
    assert_eq!(r.body["failed"][0]["error"]["code"], json!("not_found"));
    s.get(&t, &format!("{base}/{b2_id}")).await.err(404, "not_found", None);
    let (ids, total) = list_ids(&s, &t, &base).await;
    assert_eq!(total, 2);
    assert!(ids.contains(&b1_id) && ids.contains(&b3_id));

    // A backend of another VServer is not this VServer's: it fails and stays.
    let other = s
        .post(
            &t,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "udp", "port": 80}),
        )
        .await;
    other.ok(201);
    let other_base = format!("/v1/load-balancers/{lb}/vservers/{}/backends", other.id());
    let ob = s
        .post(&t, &other_base, json!({"instance_id": n.instance, "port": 53}))
        .await;
    ob.ok(201);
    for action in ["disable", "delete"] {
        let r = s
            .post(
                &t,
                &format!("{base}/batch"),
                json!({"action": action, "ids": [ob.id()]}),
            )
            .await;
        assert_eq!(r.ok(200)["done"], json!([]));
        assert_eq!(r.body["failed"][0]["id"], json!(ob.id()));
        assert_eq!(r.body["failed"][0]["error"]["code"], json!("not_found"));
    }
    assert_eq!(
        s.get(&t, &format!("{other_base}/{}", ob.id())).await.ok(200)["enabled"],
        json!(true)
    );
    s.get(&t, &format!("{base}/{}", ob.id()))
        .await
        .err(404, "not_found", None);
    s.delete(&t, &format!("{other_base}/{}", ob.id())).await.ok(204);

    // Single delete.
    s.delete(&t, &format!("{base}/{b3_id}")).await.ok(204);
    s.get(&t, &format!("{base}/{b3_id}")).await.err(404, "not_found", None);
    s.delete(&t, &format!("{base}/{b1_id}")).await.ok(204);
    assert_eq!(list_ids(&s, &t, &base).await.1, 0);
    // No backend uses the instance any more.
    s.delete(&t, &format!("/v1/instances/{}", n.instance)).await.ok(204);
}

// ---- forwarding rules ------------------------------------------------------

#[tokio::test]
async fn forwarding_rules_precedence_patch_and_backend_removal() {
    let s = Server::start().await;
    let (_, t) = s.account("rules").await;
    let n = kit::net(&s, &t, "127.8.0.0/16", "127.8.1.0/24", "127.8.1.10").await;
    let lb = kit::lb(&s, &t, &n, "web").await;
    let vs = s
        .post(
            &t,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "http", "port": 80}),
        )
        .await;
    vs.ok(201);
    let vs_base = format!("/v1/load-balancers/{lb}/vservers/{}", vs.id());
    let mut rs = Vec::new();
    for port in [8001, 8002, 8003] {
        let r = s
            .post(
                &t,
                &format!("{vs_base}/backends"),
                json!({"instance_id": n.instance, "port": port}),
            )
            .await;
        r.ok(201);
        rs.push(r.id());
    }
    let base = format!("{vs_base}/rules");
    let mk = async |body: Value| {
        let r = s.post(&t, &base, body).await;
        r.ok(201);
        r
    };
    // Created in scrambled order.
    let none_short = mk(json!({"path": "/api", "backend_ids": [rs[0]]})).await;
    let wild_root = mk(json!({"domain": "*.example.com", "path": "/", "backend_ids": [rs[1]]})).await;
    let exact_nopath = mk(json!({"domain": "api.example.com", "backend_ids": [rs[2], rs[0]]})).await;
    let none_long = mk(json!({"path": "/api/v1", "backend_ids": [rs[1], rs[2]]})).await;
    let wild_long = mk(json!({"domain": "*.example.com", "path": "/static/img", "backend_ids": [rs[0]]})).await;
    let exact_path = mk(json!({"domain": "api.example.com", "path": "/v2", "backend_ids": [rs[1]]})).await;

    let r = exact_nopath.body.clone();
    assert!(exact_nopath.id().starts_with("rule-"));
    assert_eq!(r["domain"], json!("api.example.com"));
    assert_eq!(r["path"], Value::Null);
    assert_eq!(r["backend_ids"], json!([rs[2], rs[0]]));
    assert_eq!(wild_long.body["path"], json!("/static/img"));
    assert_eq!(*s.get(&t, &format!("{base}/{}", exact_nopath.id())).await.ok(200), r);

    let (ids, total) = list_ids(&s, &t, &base).await;
    assert_eq!(total, 6);
    assert_eq!(
        ids,
        vec![
            exact_path.id(),
            exact_nopath.id(),
            wild_long.id(),
            wild_root.id(),
            none_long.id(),
            none_short.id()
        ],
        "exact domain > wildcard > none, then the longest path"
    );

    // Patch: a longer path moves the rule up among the domain-less rules.
    let p = s
        .patch(
            &t,
            &format!("{base}/{}", none_short.id()),
            json!({"path": "/api/v2/items"}),
        )
        .await;
    assert_eq!(p.ok(200)["path"], json!("/api/v2/items"));
    assert_eq!(p.body["backend_ids"], json!([rs[0]]), "backend_ids kept");
    let p = s
        .patch(
            &t,
            &format!("{base}/{}", none_short.id()),
            json!({"backend_ids": [rs[1], rs[2]]}),
        )
        .await;
    assert_eq!(p.ok(200)["backend_ids"], json!([rs[1], rs[2]]));
    assert_eq!(p.body["path"], json!("/api/v2/items"), "path kept");
    // Adding a domain to a domain-less rule moves it to the top group.
    let p = s
        .patch(
            &t,
            &format!("{base}/{}", none_long.id()),
            json!({"domain": "www.example.com"}),
        )
        .await;
    assert_eq!(p.ok(200)["domain"], json!("www.example.com"));
    assert_eq!(p.body["path"], json!("/api/v1"));
    // Clearing the wildcard rule's domain (its path remains).
    let p = s
        .patch(&t, &format!("{base}/{}", wild_long.id()), json!({"domain": null}))
        .await;
    assert_eq!(p.ok(200)["domain"], Value::Null);
    assert_eq!(p.body["path"], json!("/static/img"));
    let got = s.get(&t, &format!("{base}/{}", none_short.id())).await;
    assert_eq!(got.ok(200)["path"], json!("/api/v2/items"));
    let (ids, _) = list_ids(&s, &t, &base).await;
    assert_eq!(
        ids,
        vec![
            none_long.id(),
            exact_path.id(),
            exact_nopath.id(),
            wild_root.id(),
            none_short.id(),
            wild_long.id()
        ],
        "www.example.com/api/v1 (7) > api.example.com/v2 (3) > api.example.com; *.example.com/; \
         /api/v2/items (13) > /static/img (11)"
    );

    // Deleting a backend drops it from every rule that named it.
    s.delete(&t, &format!("{vs_base}/backends/{}", rs[1])).await.ok(204);
    let items = s.get(&t, &base).await;
    for rule in items.ok(200)["items"].as_array().unwrap() {
        let ids = rule["backend_ids"].as_array().unwrap();
        assert!(
            !ids.contains(&json!(rs[1])),
            "{} still names the deleted backend: {rule}",
            rule["id"]
        );
    }
    assert_eq!(
        s.get(&t, &format!("{base}/{}", none_short.id())).await.ok(200)["backend_ids"],
        json!([rs[2]])
    );
    assert_eq!(
        s.get(&t, &format!("{base}/{}", none_long.id())).await.ok(200)["backend_ids"],
        json!([rs[2]])
    );
    assert_eq!(
        s.get(&t, &format!("{base}/{}", exact_nopath.id())).await.ok(200)["backend_ids"],
        json!([rs[2], rs[0]])
    );
    // Batch deleting a backend does the same.
    s.post(
        &t,
        &format!("{vs_base}/backends/batch"),
        json!({"action": "delete", "ids": [rs[0]]}),
    )
    .await
    .ok(200);
    assert_eq!(
        s.get(&t, &format!("{base}/{}", exact_nopath.id())).await.ok(200)["backend_ids"],
        json!([rs[2]])
    );

    // Delete a rule.
    s.delete(&t, &format!("{base}/{}", wild_root.id())).await.ok(204);
    s.get(&t, &format!("{base}/{}", wild_root.id()))
        .await
        .err(404, "not_found", None);
    assert_eq!(list_ids(&s, &t, &base).await.1, 5);
    // Its (domain, path) is free again.
    mk(json!({"domain": "*.example.com", "path": "/", "backend_ids": [rs[2]]})).await;
}

// ---- revisions, status, health, OpenAPI -----------------------------------

#[tokio::test]
async fn revisions_status_health_and_openapi() {
    let s = Server::start().await;
    let (_, t) = s.account("rev").await;
    let mut revs = Vec::new();
    let vpc = s
        .post(&t, "/v1/vpcs", json!({"name": "r", "cidr": "127.9.0.0/16"}))
        .await;
    vpc.ok(201);
    revs.push(vpc.revision);
    let sn = s
        .post(
            &t,
            "/v1/subnets",
            json!({"vpc_id": vpc.id(), "name": "r", "cidr": "127.9.1.0/24"}),
        )
        .await;
    sn.ok(201);
    revs.push(sn.revision);
    let p = s
        .patch(&t, &format!("/v1/vpcs/{}", vpc.id()), json!({"name": "r2"}))
        .await;
    p.ok(200);
    revs.push(p.revision);
    let lb = s
        .post(
            &t,
            "/v1/load-balancers",
            json!({"name": "r", "network_type": "internal", "vpc_id": vpc.id(), "subnet_id": sn.id()}),
        )
        .await;
    lb.ok(201);
    revs.push(lb.revision);
    let vs = s
        .post(
            &t,
            &format!("/v1/load-balancers/{}/vservers", lb.id()),
            json!({"protocol": "udp", "port": 53}),
        )
        .await;
    vs.ok(201);
    revs.push(vs.revision);
    let rn = s
        .post(
            &t,
            &format!("/v1/load-balancers/{}/renew", lb.id()),
            json!({"periods": 2}),
        )
        .await;
    rn.ok(200);
    revs.push(rn.revision);
    let d = s
        .delete(&t, &format!("/v1/load-balancers/{}/vservers/{}", lb.id(), vs.id()))
        .await;
    d.ok(204);
    revs.push(d.revision);
    let revs: Vec<u64> = revs
        .into_iter()
        .map(|r| r.expect("every write carries X-Weir-Revision"))
        .collect();
    assert!(
        revs.windows(2).all(|w| w[0] < w[1]),
        "revisions strictly increase: {revs:?}"
    );
    let last = *revs.last().unwrap();

    let st = s.get(&t, "/v1/system/status").await;
    let b = st.ok(200);
    assert_eq!(
        b["revision"],
        json!(last),
        "status revision is the latest committed one"
    );
    assert!(b["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(b["uptime_s"].is_u64());
    assert!(b["applied_revision"].as_u64().is_some_and(|a| a <= last), "{b}");
    // A refused write commits nothing.
    s.post(&t, "/v1/vpcs", json!({"name": "", "cidr": "127.9.0.0/16"}))
        .await
        .err(400, "invalid_value", Some("name"));
    assert_eq!(s.get(ADMIN, "/v1/system/status").await.ok(200)["revision"], json!(last));
    // The data plane catches up: wait for applied_revision ≥ last.
    let mut applied = 0;
    for _ in 0..100 {
        applied = s.get(&t, "/v1/system/status").await.ok(200)["applied_revision"]
            .as_u64()
            .unwrap();
        if applied >= last {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(applied >= last, "applied_revision {applied} never reached {last}");
    // Once applied, the LB is active.
    assert_eq!(
        s.get(&t, &format!("/v1/load-balancers/{}", lb.id())).await.ok(200)["status"],
        json!("active")
    );

    // /healthz: no token needed.
    let h = s.call(Method::GET, "/healthz", None, None).await;
    h.ok(200);
    // /v1 needs one.
    s.call(Method::GET, "/v1/system/status", None, None)
        .await
        .err(401, "unauthorized", None);
    s.call(Method::GET, "/v1/openapi.json", None, None)
        .await
        .err(401, "unauthorized", None);

    let doc = s.get(&t, "/v1/openapi.json").await;
    let d = doc.ok(200);
    assert!(
        d["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "an OpenAPI 3 document"
    );
    for path in [
        "/v1/load-balancers",
        "/v1/load-balancers/{lb}/vservers",
        "/v1/load-balancers/{id}/renew",
        "/v1/load-balancers/{lb}/vservers/{vs}/backends",
        "/v1/load-balancers/{lb}/vservers/{vs}/rules",
        "/v1/vpcs",
        "/v1/system/status",
    ] {
        assert!(d["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    assert!(d["paths"]["/v1/load-balancers"].get("post").is_some());
    assert!(d["paths"]["/v1/load-balancers/{lb}/vservers"].get("post").is_some());
    let vsc = &d["components"]["schemas"]["VServerCreate"];
    assert!(vsc.is_object(), "components.schemas.VServerCreate missing");
    assert!(
        vsc["properties"].get("protocol").is_some() && vsc["properties"].get("port").is_some(),
        "{vsc}"
    );
}
