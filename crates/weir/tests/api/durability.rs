//! Durability and concurrency: acknowledged writes survive SIGKILL; the
//! revision continues; racing creates of one port give exactly one winner.

use serde_json::json;

use crate::kit::{self, ADMIN, Server};

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let s = Server::start().await;
    let n = kit::net(&s, ADMIN, "127.0.0.0/8", "127.0.30.0/24", "127.0.30.10").await;
    let mut lbs = Vec::new();
    let mut last_rev = 0;
    for i in 0..20 {
        let id = kit::lb(&s, ADMIN, &n, &format!("lb{i}")).await;
        let vs = s
            .post(
                ADMIN,
                &format!("/v1/load-balancers/{id}/vservers"),
                json!({"protocol": "tcp", "port": 1000 + i}),
            )
            .await;
        vs.ok(201);
        last_rev = vs.revision.expect("revision header");
        lbs.push((id, vs.id()));
    }
    let dir = s.dir.clone();
    let tmp = s.kill().await;

    let s = Server::start_in(&dir, &[]).await;
    for (i, (lb, vs)) in lbs.iter().enumerate() {
        assert_eq!(
            s.get(ADMIN, &format!("/v1/load-balancers/{lb}")).await.ok(200)["name"],
            json!(format!("lb{i}"))
        );
        let v = s.get(ADMIN, &format!("/v1/load-balancers/{lb}/vservers/{vs}")).await;
        assert_eq!(v.ok(200)["port"], json!(1000 + i));
    }
    let st = s.get(ADMIN, "/v1/system/status").await;
    assert_eq!(st.ok(200)["revision"], json!(last_rev));
    // The revision continues from where it was.
    let r = s
        .post(ADMIN, "/v1/vpcs", json!({"name": "after", "cidr": "10.0.0.0/16"}))
        .await;
    r.ok(201);
    assert_eq!(r.revision, Some(last_rev + 1));
    // Allocation state survived too: the next LB does not reuse an address.
    let r = s.get(ADMIN, "/v1/load-balancers?limit=1000").await;
    let mut addrs: Vec<String> = r.ok(200)["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| l["address"].to_string())
        .collect();
    let id = kit::lb(&s, ADMIN, &n, "new").await;
    let new_addr = s.get(ADMIN, &format!("/v1/load-balancers/{id}")).await.body["address"].to_string();
    assert!(!addrs.contains(&new_addr), "{new_addr} reused");
    addrs.push(new_addr);
    drop(s);
    drop(tmp);
}

#[tokio::test]
async fn concurrent_creates_of_one_port_have_one_winner() {
    let s = Server::start().await;
    let n = kit::net(&s, ADMIN, "127.0.0.0/8", "127.0.31.0/24", "127.0.31.10").await;
    let lb = kit::lb(&s, ADMIN, &n, "race").await;
    let path = format!("{}/v1/load-balancers/{lb}/vservers", s.base);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let http = s.http.clone();
        let path = path.clone();
        // tcp and http share the TCP transport: both kinds race for port 80.
        let proto = if i % 2 == 0 { "tcp" } else { "http" };
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(&path)
                .bearer_auth(ADMIN)
                .json(&json!({"protocol": proto, "port": 80}))
                .send()
                .await;
            let r = r.expect("request");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (status, body)
        }));
    }
    let mut created = 0;
    let mut conflicts = 0;
    for t in tasks {
        let (status, body) = t.await.expect("task");
        match status {
            201 => created += 1,
            409 => {
                assert_eq!(body["error"]["code"], "port_in_use");
                assert_eq!(body["error"]["field"], "port");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((created, conflicts), (1, 49));
    let list = s.get(ADMIN, &format!("/v1/load-balancers/{lb}/vservers")).await;
    assert_eq!(list.ok(200)["total"], 1);
    assert_eq!(
        s.get(ADMIN, &format!("/v1/load-balancers/{lb}")).await.body["vserver_count"],
        1
    );
    // UDP is another transport: port 80 is still free there.
    s.post(
        ADMIN,
        &format!("/v1/load-balancers/{lb}/vservers"),
        json!({"protocol": "udp", "port": 80}),
    )
    .await
    .ok(201);
}
