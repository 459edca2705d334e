//! Per-VServer HTTP counters (responses by class, Weir's own included) at
//! `GET /metrics`, and the JSON access log on stdout.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backends::{add_backend, http_backend, lb_with_vserver};
use crate::kit::{ADMIN, Server};

fn status_for(path: &str, _host: Option<&str>) -> u16 {
    match path {
        "/missing" => 404,
        "/broken" => 500,
        "/moved" => 301,
        _ => 200,
    }
}

/// The value of the sample line starting with `prefix` in `text`.
fn sample(text: &str, prefix: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix).map(|v| v.trim().parse().unwrap_or(u64::MAX)))
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"))
}

#[tokio::test]
async fn responses_are_counted_by_class_and_logged() {
    let s = Server::start_with_config("[dataplane]\naccess_log = true\n").await;
    let (lb, ip, vs) = lb_with_vserver(
        &s,
        "127.64.9.0/24",
        json!({"protocol": "http", "port": 8209, "health_check": {"interval_s": 300}}),
    )
    .await;
    let (b, _) = http_backend("127.65.9.10", status_for).await;
    let rs = add_backend(&s, &lb, &vs, b, 1).await;
    let base = format!("http://{}", SocketAddr::new(ip, 8209));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut expect = [0u64; 5];
    for (path, n, class) in [("/ok", 10, 1), ("/missing", 3, 3), ("/broken", 2, 4), ("/moved", 1, 2)] {
        for _ in 0..n {
            let r = client.get(format!("{base}{path}")).send().await.expect("request");
            assert_eq!(r.status().as_u16() / 100, class as u16 + 1, "{path}");
            expect[class] += 1;
        }
    }
    // Weir's own 400 …
    let mut c = tokio::net::TcpStream::connect(SocketAddr::new(ip, 8209)).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
        .await
        .unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut resp))
        .await
        .expect("closed in time")
        .unwrap();
    assert!(resp.starts_with(b"HTTP/1.1 400"), "{}", String::from_utf8_lossy(&resp));
    expect[3] += 1;
    // … and 503 once the only backend is disabled.
    s.patch_applied(
        ADMIN,
        &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends/{rs}"),
        json!({"enabled": false}),
    )
    .await
    .ok(200);
    let r = client.get(format!("{base}/ok")).send().await.expect("request");
    assert_eq!(r.status(), 503, "a keep-alive connection sees the change");
    expect[4] += 1;

    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let labels = format!("lb=\"{lb}\",vserver=\"{vs}\"");
    assert_eq!(
        sample(&text, &format!("weir_vserver_http_requests_total{{{labels}}}")),
        expect.iter().sum::<u64>(),
        "{text}"
    );
    for (i, want) in expect.iter().enumerate() {
        let got = sample(
            &text,
            &format!("weir_vserver_http_responses_total{{{labels},class=\"{}xx\"}}", i + 1),
        );
        assert_eq!(got, *want, "class {}xx", i + 1);
    }

    // One JSON access-log line per request, Weir's own answers included.
    let lines: Vec<serde_json::Value> = s
        .stdout
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["target"] == "weir::access")
        .collect();
    assert_eq!(lines.len(), 18, "access log lines: {lines:?}");
    let missing = lines
        .iter()
        .filter(|l| l["status"] == 404 && l["request"] == "GET /missing")
        .count();
    assert_eq!(missing, 3, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l["vserver"] == vs.as_str() && l["lb"] == lb.as_str())
    );
    let own: Vec<_> = lines
        .iter()
        .filter(|l| l["backend"] == "-")
        .map(|l| l["status"].clone())
        .collect();
    assert_eq!(own, [json!(400), json!(503)], "{lines:?}");
    let ok = lines
        .iter()
        .find(|l| l["request"] == "GET /ok")
        .expect("a GET /ok line");
    assert_eq!(ok["backend"], rs.as_str());
    assert!(ok["bytes_in"].as_u64().unwrap_or(0) > 20, "{ok}");
    assert!(ok["bytes_out"].as_u64().unwrap_or(0) > 20, "{ok}");
    assert!(ok["header_ms"].as_f64().unwrap_or(-1.0) >= 0.0, "{ok}");
}
