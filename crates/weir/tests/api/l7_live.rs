//! Live changes under HTTP keep-alive load: backends added, disabled,
//! deleted, rules added and removed, the algorithm and persistence changed,
//! while clients keep requesting on their connections. Not one request may
//! fail, and each change reaches the next request of an open connection.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

use crate::http_kit::{Client, Reply, get, http_site};
use crate::kit::{ADMIN, Server};

#[tokio::test]
async fn live_changes_under_keep_alive_load_fail_nothing() {
    let s = Server::start().await;
    let site = Arc::new(http_site(&s, 60, json!({"port": 8260})).await);
    let (_a, a) = site.backend(&s, "a", Reply::Ok).await;
    let (_b, b) = site.backend(&s, "b", Reply::Ok).await;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    // Which backend answered each request, by the time it was sent.
    let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (site, stop, done, seen) = (site.clone(), stop.clone(), done.clone(), seen.clone());
        clients.push(tokio::spawn(async move {
            // One keep-alive connection per client for the whole test:
            // `response()` panics (failing the test) on any failed request.
            let mut c = Client::connect(site.addr).await;
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(30) {
                // Stamped when sent: a change must reach requests sent
                // after it was applied (one in flight may predate it).
                let sent = Instant::now();
                c.send(&get("/x", "shop.example.com")).await;
                let r = c.response().await;
                assert_eq!(r.status(), 200, "a request failed during a live change");
                seen.lock().await.push((sent, r.text()));
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let wait_for = |name: &'static str| {
        let seen = seen.clone();
        async move {
            let since = Instant::now();
            tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if seen.lock().await.iter().any(|(t, n)| *t > since && n == name) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no request reached {name} after the change"));
        }
    };

    // A new backend gets traffic on the open connections.
    let (_c, c) = site.backend(&s, "c", Reply::Ok).await;
    wait_for("c").await;
    // A rule sends shop.example.com to b only.
    s.post_applied(
        ADMIN,
        &site.url("/rules"),
        json!({"domain": "shop.example.com", "backend_ids": [b]}),
    )
    .await
    .ok(201);
    let after_rule = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let names: HashSet<String> = seen
        .lock()
        .await
        .iter()
        .filter(|(t, _)| *t > after_rule)
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(
        names,
        HashSet::from(["b".to_string()]),
        "the rule reaches open connections"
    );
    // Drop the rule, change the algorithm and persistence, disable a, delete c.
    let rules = s.get(ADMIN, &site.url("/rules")).await;
    let rule = rules.body["items"][0]["id"].as_str().unwrap_or_default().to_string();
    s.delete_applied(ADMIN, &site.url(&format!("/rules/{rule}")))
        .await
        .ok(204);
    wait_for("a").await;
    s.patch_applied(
        ADMIN,
        &site.url(""),
        json!({"algorithm": "least_connections", "persistence": {"mode": "insert_cookie"}}),
    )
    .await
    .ok(200);
    site.set_enabled(&s, &a, false).await;
    s.delete_applied(ADMIN, &site.url(&format!("/backends/{c}")))
        .await
        .ok(204);
    let quiet = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("a client failed");
    }
    let late: HashSet<String> = seen
        .lock()
        .await
        .iter()
        .filter(|(t, _)| *t > quiet)
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(late, HashSet::from(["b".to_string()]), "only b is left as a candidate");
    assert!(done.load(Ordering::SeqCst) > 100, "the load ran");
}
