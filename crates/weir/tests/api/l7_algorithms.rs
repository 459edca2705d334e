//! The VServer's algorithm applies per HTTP request: `source_ip` keeps each
//! client on one backend across connections, `least_connections` counts
//! requests in flight.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;

use crate::http_kit::{Client, Reply, get, http_site};
use crate::kit::Server;

#[tokio::test]
async fn source_ip_keeps_each_client_on_one_backend() {
    let s = Server::start().await;
    let site = http_site(&s, 61, json!({"port": 8261, "algorithm": "source_ip"})).await;
    for name in ["a", "b", "c"] {
        site.backend(&s, name, Reply::Ok).await;
    }
    let mut homes: HashMap<u8, String> = HashMap::new();
    for round in 0..3 {
        for host in 10..40u8 {
            // A new connection per request: only the address ties them.
            let mut c = Client::connect_from(site.addr, &site.client_ip(host)).await;
            c.send(&get("/", "shop.test")).await;
            let name = c.response().await.text();
            let home = homes.entry(host).or_insert_with(|| name.clone());
            assert_eq!(*home, name, "client {host} moved in round {round}");
        }
    }
    let used: HashSet<&String> = homes.values().collect();
    assert!(used.len() >= 2, "30 clients all hashed to one backend: {homes:?}");
}

#[tokio::test]
async fn least_connections_counts_requests_in_flight() {
    let s = Server::start().await;
    let site = http_site(&s, 62, json!({"port": 8262, "algorithm": "least_connections"})).await;
    site.backend(&s, "stall", Reply::Stall).await;
    site.backend(&s, "ok", Reply::Ok).await;
    // Park requests on the stalling backend: whichever gets picked first,
    // from then on the stalled one has more requests in flight.
    let mut parked = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(site.addr).await;
        c.send(&get("/", "shop.test")).await;
        parked.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Every new request goes to the backend with nothing in flight.
    for i in 0..20 {
        let mut c = Client::connect(site.addr).await;
        c.send(&get("/", "shop.test")).await;
        assert_eq!(c.response().await.text(), "ok", "request {i}");
    }
    drop(parked);
}
