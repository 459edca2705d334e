//! Metrics end to end: exact counters after a known workload, TCP segments
//! from the kernel, the history (ranges, custom windows, restarts), SVG
//! charts, `metrics_token`, and alarms delivered to a webhook that is down
//! at first.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::backends::{add_backend, http_backend, lb_with_vserver, tcp_backend};
use crate::kit::{ADMIN, Server};

/// Samples every second so the tests see history quickly.
const FAST: &str = "[metrics]\ninterval_s = 1\n";

fn status_for(path: &str, _host: Option<&str>) -> u16 {
    match path {
        "/missing" => 404,
        "/broken" => 500,
        _ => 200,
    }
}

/// `GET /metrics` as text.
async fn scrape(s: &Server) -> String {
    let r = s.http.get(format!("{}/metrics", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.unwrap()
}

/// The value of the sample `name{labels}` (labels in exposition order).
fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

/// One request on its own connection: the bytes sent and received.
async fn request(addr: SocketAddr, path: &str) -> (usize, usize, u16) {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: metrics.test\r\nConnection: close\r\n\r\n");
    c.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).await.unwrap();
    let status = String::from_utf8_lossy(&resp[9..12]).parse().unwrap();
    (req.len(), resp.len(), status)
}

/// The history at `path` once some point of `metric` is above zero.
async fn history_with(s: &Server, path: &str, metric: &str) -> Value {
    for _ in 0..100 {
        let h = s.get(ADMIN, path).await.ok(200).clone();
        if h["series"][metric]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p[1].as_f64().unwrap() > 0.0)
        {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{metric} never showed in {path}");
}

/// Polls `check` on fresh scrapes until it holds (the last connections'
/// segments are counted when their tasks end).
async fn settle(s: &Server, what: &str, check: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        let t = scrape(s).await;
        if check(&t) {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never held:\n{}", scrape(s).await);
}

#[tokio::test]
async fn a_known_workload_is_counted_exactly_and_kept_across_restarts() {
    let s = Server::start_with_config(FAST).await;
    let (lb, ip, vs) = lb_with_vserver(
        &s,
        "127.110.1.0/24",
        json!({"protocol": "http", "port": 8301, "health_check": {"interval_s": 300}}),
    )
    .await;
    let (b, _) = http_backend("127.111.1.10", status_for).await;
    add_backend(&s, &lb, &vs, b, 1).await;
    let addr = SocketAddr::new(ip, 8301);

    // 1,000 requests: 850 × 200, 100 × 404, 50 × 500, ten at a time.
    let mut paths = Vec::new();
    paths.extend(std::iter::repeat_n("/ok", 850));
    paths.extend(std::iter::repeat_n("/missing", 100));
    paths.extend(std::iter::repeat_n("/broken", 50));
    let (mut sent, mut received) = (0usize, 0usize);
    let mut statuses = [0u64; 6];
    for chunk in paths.chunks(10) {
        let rs = futures_util::future::join_all(chunk.iter().map(|p| request(addr, p))).await;
        for (req, resp, status) in rs {
            sent += req;
            received += resp;
            statuses[usize::from(status / 100)] += 1;
        }
    }
    assert_eq!(statuses[2..6], [850, 0, 100, 50]);

    // 10 MiB uploaded through a TCP VServer (the backend echoes it back).
    let tcp = s
        .post_applied(
            ADMIN,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "tcp", "port": 8302, "health_check": {"interval_s": 300}}),
        )
        .await;
    tcp.ok(201);
    let tcp_vs = tcp.id();
    let echo = tcp_backend("127.111.1.11", "echo").await;
    add_backend(&s, &lb, &tcp_vs, echo.addr, 1).await;
    let c = TcpStream::connect(SocketAddr::new(ip, 8302)).await.unwrap();
    let (mut r, mut w) = c.into_split();
    const UPLOAD: usize = 10 * 1024 * 1024;
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        got.len()
    });
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..UPLOAD / chunk.len() {
        w.write_all(&chunk).await.unwrap();
    }
    w.shutdown().await.unwrap();
    let echoed = reader.await.unwrap();
    assert_eq!(echoed, "echo\n".len() + UPLOAD);

    let http_labels = format!("lb=\"{lb}\",vserver=\"{vs}\"");
    let tcp_labels = format!("lb=\"{lb}\",vserver=\"{tcp_vs}\"");
    let text = settle(&s, "all connections closed", |t| {
        t.contains(&format!("weir_lb_active_connections{{lb=\"{lb}\"}} 0\n"))
    })
    .await;
    let v = |series: &str| sample(&text, series);
    assert_eq!(v(&format!("weir_vserver_http_requests_total{{{http_labels}}}")), 1000);
    for (class, n) in [("2xx", 850), ("3xx", 0), ("4xx", 100), ("5xx", 50)] {
        assert_eq!(
            v(&format!(
                "weir_vserver_http_responses_total{{{http_labels},class=\"{class}\"}}"
            )),
            n,
            "{class}"
        );
        assert_eq!(
            v(&format!(
                "weir_lb_http_responses_total{{lb=\"{lb}\",class=\"{class}\"}}"
            )),
            n
        );
    }
    assert_eq!(v(&format!("weir_vserver_connections_total{{{http_labels}}}")), 1000);
    // HTTP bytes are exactly what crossed the client sockets.
    assert_eq!(
        v(&format!("weir_vserver_received_bytes_total{{{http_labels}}}")),
        sent as u64
    );
    assert_eq!(
        v(&format!("weir_vserver_sent_bytes_total{{{http_labels}}}")),
        received as u64
    );
    // TCP: the payload, exactly.
    assert_eq!(v(&format!("weir_vserver_connections_total{{{tcp_labels}}}")), 1);
    assert_eq!(
        v(&format!("weir_vserver_received_bytes_total{{{tcp_labels}}}")),
        UPLOAD as u64
    );
    assert_eq!(
        v(&format!("weir_vserver_sent_bytes_total{{{tcp_labels}}}")),
        echoed as u64
    );
    // The LB is the sum of its VServers.
    assert_eq!(v(&format!("weir_lb_connections_total{{lb=\"{lb}\"}}")), 1001);
    assert_eq!(
        v(&format!("weir_lb_received_bytes_total{{lb=\"{lb}\"}}")),
        (sent + UPLOAD) as u64
    );
    // Segments from the kernel: at least one per MSS of payload (loopback's
    // MSS is under 65,536), and at least one per HTTP exchange.
    let seg_in = v(&format!("weir_vserver_received_packets_total{{{tcp_labels}}}"));
    let seg_out = v(&format!("weir_vserver_sent_packets_total{{{tcp_labels}}}"));
    assert!(seg_in >= (UPLOAD / 65_536) as u64, "{seg_in} segments in for 10 MiB");
    assert!(seg_out >= (echoed / 65_536) as u64, "{seg_out} segments out");
    assert!(seg_in < UPLOAD as u64 / 100, "{seg_in} segments in is implausible");
    assert!(v(&format!("weir_vserver_received_packets_total{{{http_labels}}}")) >= 2000);
    assert!(v(&format!("weir_vserver_sent_packets_total{{{http_labels}}}")) >= 1000);
    // Backends: connections and the relayed bytes.
    let rs_labels = |vs: &str| format!("lb=\"{lb}\",vserver=\"{vs}\",backend=\"");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("weir_backend_sent_bytes_total{{{}", rs_labels(&tcp_vs))))
        .unwrap();
    assert!(line.ends_with(&format!(" {UPLOAD}")), "{line}");
    assert!(text.contains(&format!("weir_backend_up{{{}", rs_labels(&vs))));

    // History: samples arrive every second; wait for the traffic's.
    let path = format!("/v1/load-balancers/{lb}/metrics?range=1h");
    let hist = history_with(&s, &path, "http_4xx_per_s").await;
    assert_eq!(hist["resolution_s"], 10);
    let points = hist["series"]["requests_per_s"].as_array().unwrap();
    assert!(!points.is_empty() && points.len() <= 400, "{} points", points.len());
    let ts: Vec<i64> = points.iter().map(|p| p[0].as_i64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "timestamps increase: {ts:?}");
    for m in [
        "new_connections_per_s",
        "bytes_in_per_s",
        "http_2xx_per_s",
        "http_4xx_per_s",
    ] {
        assert!(
            hist["series"][m]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p[1].as_f64().unwrap() > 0.0),
            "{m}: {}",
            hist["series"][m]
        );
    }
    let vs_hist = history_with(
        &s,
        &format!("/v1/load-balancers/{lb}/vservers/{tcp_vs}/metrics?range=6h"),
        "bytes_in_per_s",
    )
    .await;
    assert_eq!(vs_hist["resolution_s"], 60);
    // Only the TCP VServer's traffic: no HTTP requests in its series.
    assert!(
        vs_hist["series"]["requests_per_s"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p[1] == 0.0),
        "{}",
        vs_hist["series"]["requests_per_s"]
    );

    // A custom window is honoured; a reversed or malformed one refused.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let from = ts[0];
    let w = s
        .get(ADMIN, &format!("/v1/load-balancers/{lb}/metrics?from={from}&to={now}"))
        .await;
    let w = w.ok(200);
    assert_eq!(w["from"], from);
    assert!(w["series"]["requests_per_s"].as_array().unwrap().len() <= 400);
    let earlier = now - 60;
    s.get(
        ADMIN,
        &format!("/v1/load-balancers/{lb}/metrics?from={now}&to={earlier}"),
    )
    .await
    .err(400, "invalid_value", Some("from"));
    s.get(ADMIN, &format!("/v1/load-balancers/{lb}/metrics?range=2h"))
        .await
        .err(400, "invalid_value", Some("range"));
    s.get(ADMIN, &format!("/v1/load-balancers/{lb}/metrics?from={from}"))
        .await
        .err(400, "missing_field", Some("to"));
    s.get(ADMIN, "/v1/load-balancers/lb-000000000000/metrics")
        .await
        .err(404, "not_found", None);

    // The chart: well-formed SVG holding the series.
    let svg = s
        .http
        .get(format!(
            "{}/v1/load-balancers/{lb}/metrics.svg?metric=requests_per_s&range=1h",
            s.base
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let svg = svg.text().await.unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let coords: usize = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter(|n| n.parent().is_some_and(|p| p.attribute("class") == Some("series")))
        .map(|n| n.attribute("points").unwrap_or("").split_whitespace().count())
        .sum();
    assert!(coords >= 1, "the series is drawn:\n{svg}");
    assert!(svg.contains("requests/s"));
    s.get(
        ADMIN,
        &format!("/v1/load-balancers/{lb}/vservers/{vs}/metrics.svg?metric=nope"),
    )
    .await
    .err(400, "invalid_value", Some("metric"));

    // Restart (SIGKILL): the samples are still served.
    let before = hist["series"]["http_4xx_per_s"].clone();
    let dir = s.dir.clone();
    let tmp = s.kill().await;
    let cfg = dir.join("weir.toml").to_string_lossy().to_string();
    let s = Server::start_in(&dir, &["--config", &cfg]).await;
    let after = s.get(ADMIN, &path).await.ok(200).clone();
    let old: Vec<&Value> = before
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[1].as_f64().unwrap() > 0.0)
        .collect();
    let kept = after["series"]["http_4xx_per_s"].as_array().unwrap();
    for p in &old {
        assert!(
            kept.iter().any(|q| q[0] == p[0]),
            "sample at {} lost in the restart",
            p[0]
        );
    }
    drop(tmp);
}

#[tokio::test]
async fn metrics_token_guards_the_exposition_and_tenants_see_only_their_own() {
    let s = Server::start_with_config("metrics_token = \"s3cret-scrape\"\n").await;
    let url = format!("{}/metrics", s.base);
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s.http.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s.http.get(&url).bearer_auth("s3cret-scrape").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("# TYPE weir_dataplane_tcp_accepted_total counter")
    );

    let (lb, _, vs) = lb_with_vserver(&s, "127.110.2.0/24", json!({"protocol": "tcp", "port": 8303})).await;
    let (_, other) = s.account("other").await;
    s.get(&other, &format!("/v1/load-balancers/{lb}/metrics"))
        .await
        .err(404, "not_found", None);
    s.get(&other, &format!("/v1/load-balancers/{lb}/vservers/{vs}/metrics"))
        .await
        .err(404, "not_found", None);
    s.get(ADMIN, "/v1/alarms?state=open")
        .await
        .err(400, "invalid_value", Some("state"));
}

/// A webhook receiver on `addr`: records each POSTed JSON body.
async fn receiver(addr: SocketAddr, got: Arc<Mutex<Vec<Value>>>) {
    let l = TcpListener::bind(addr).await.expect("bind receiver");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(s);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    got.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    let ok = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                    if r.get_mut().write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

#[tokio::test]
async fn an_alarm_fires_during_a_burst_reaches_a_late_webhook_and_resolves() {
    let s = Server::start_with_config(FAST).await;
    // The receiver's port: reserved now, listening only once the alarm fired.
    let hook: SocketAddr = {
        let l = std::net::TcpListener::bind("127.111.3.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (tenant, token) = s.account("alarmed").await;
    let _ = tenant;
    let t = s
        .post(
            &token,
            "/v1/alarm-templates",
            json!({
                "name": "burst",
                "rules": [{"scope": "lb", "metric": "new_connections_per_s", "op": ">", "threshold": 5, "for_s": 20}],
                "webhook_url": format!("http://{hook}/hooks/weir"),
            }),
        )
        .await;
    let template = t.ok(201)["id"].as_str().unwrap().to_string();
    // The tenant's own lab: VPC, subnet, LB bound to the template.
    let vpc = s
        .post(&token, "/v1/vpcs", json!({"name": "v", "cidr": "127.0.0.0/8"}))
        .await;
    let sn = s
        .post(
            &token,
            "/v1/subnets",
            json!({"vpc_id": vpc.id(), "name": "s", "cidr": "127.110.3.0/24"}),
        )
        .await;
    let lb = s
        .post(
            &token,
            "/v1/load-balancers",
            json!({"name": "a", "network_type": "internal", "vpc_id": vpc.id(), "subnet_id": sn.id(),
                   "alarm_template_id": template}),
        )
        .await;
    let lb_id = lb.ok(201)["id"].as_str().unwrap().to_string();
    let ip: std::net::IpAddr = lb.body["address"].as_str().unwrap().parse().unwrap();
    let vs = s
        .post_applied(
            &token,
            &format!("/v1/load-balancers/{lb_id}/vservers"),
            json!({"protocol": "tcp", "port": 8304, "health_check": {"interval_s": 300}}),
        )
        .await;
    let vs_id = vs.ok(201)["id"].as_str().unwrap().to_string();
    let echo = tcp_backend("127.111.3.10", "e").await;
    let r = s
        .post_applied(
            &token,
            &format!("/v1/load-balancers/{lb_id}/vservers/{vs_id}/backends"),
            json!({"address": echo.addr.ip().to_string(), "port": echo.addr.port()}),
        )
        .await;
    r.ok(201);

    // A burst of ~25 new connections per second until the alarm fires.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let burst = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let target = SocketAddr::new(ip, 8304);
            for _ in 0..60 * 25 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                if let Ok(mut c) = TcpStream::connect(target).await {
                    let mut b = [0u8; 2];
                    let _ = c.read(&mut b).await;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };
    let firing = async {
        for _ in 0..600 {
            let a = s.get(&token, "/v1/alarms?state=firing").await;
            if a.ok(200)["total"] == 1 {
                return a.body["items"][0].clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the alarm never fired");
    }
    .await;
    assert_eq!(firing["template_id"], template.as_str());
    assert_eq!(firing["resource_id"], lb_id.as_str());
    assert_eq!(firing["rule"]["metric"], "new_connections_per_s");
    assert!(firing["value"].as_f64().unwrap() > 5.0, "{firing}");
    assert_eq!(firing["notified"], false, "the webhook is down");
    let started = time::OffsetDateTime::parse(
        firing["started_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    // Not before the condition held for 20 s: the burst began after the LB.
    // Samples are stamped in whole seconds, so the first one that saw the
    // burst may carry the second the LB was made in.
    let lb_created = time::OffsetDateTime::parse(
        lb.body["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .replace_nanosecond(0)
    .unwrap();
    assert!(
        (started - lb_created).whole_seconds() >= 20,
        "fired at {started}, LB made at {lb_created}"
    );

    // The webhook comes up: the event reaches it (retried with backoff).
    let got = Arc::new(Mutex::new(Vec::new()));
    receiver(hook, got.clone()).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    burst.await.unwrap();
    let wait_for = |kind: &'static str| {
        let got = got.clone();
        async move {
            for _ in 0..600 {
                if let Some(e) = got.lock().unwrap().iter().find(|e| e["type"] == kind) {
                    return e.clone();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no {kind} event reached the webhook");
        }
    };
    let fired = wait_for("alarm.fired").await;
    assert_eq!(fired["alarm"]["id"], firing["id"]);
    assert_eq!(fired["alarm"]["state"], "firing");
    // The burst is over: the alarm resolves, and the webhook hears of it.
    let resolved = wait_for("alarm.resolved").await;
    assert_eq!(resolved["alarm"]["id"], firing["id"]);
    assert_eq!(resolved["alarm"]["state"], "resolved");
    let mut listed = Value::Null;
    for _ in 0..50 {
        listed = s.get(&token, "/v1/alarms?state=resolved").await.ok(200).clone();
        if listed["items"][0]["notified"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], firing["id"]);
    assert_eq!(listed["items"][0]["notified"], true);
    assert!(listed["items"][0]["resolved_at"].is_string());
    assert_eq!(
        s.get(&token, &format!("/v1/alarms?search={lb_id}")).await.ok(200)["total"],
        1
    );
    assert_eq!(
        s.get(&token, "/v1/alarms?search=no-such-thing").await.ok(200)["total"],
        0
    );
    let page = s.get(&token, "/v1/alarms?limit=1&offset=1").await;
    assert_eq!(page.ok(200)["total"], 1);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 0);
    // The admin sees it; another tenant does not.
    assert_eq!(s.get(ADMIN, "/v1/alarms").await.ok(200)["total"], 1);
    let (_, stranger) = s.account("stranger").await;
    assert_eq!(s.get(&stranger, "/v1/alarms").await.ok(200)["total"], 0);
    // Exactly one event of each kind.
    let kinds: Vec<String> = got.lock().unwrap().iter().map(|e| e["type"].to_string()).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
}

#[tokio::test]
async fn the_exposition_passes_promtool() {
    let s = Server::start_with_config(FAST).await;
    let (lb, ip, vs) = lb_with_vserver(
        &s,
        "127.110.4.0/24",
        json!({"protocol": "http", "port": 8305, "health_check": {"interval_s": 300}}),
    )
    .await;
    let (b, _) = http_backend("127.111.4.10", status_for).await;
    add_backend(&s, &lb, &vs, b, 1).await;
    let (_, _, status) = request(SocketAddr::new(ip, 8305), "/missing").await;
    assert_eq!(status, 404);
    let text = scrape(&s).await;
    assert!(
        text.contains(&format!("weir_backend_up{{lb=\"{lb}\",vserver=\"{vs}\"")),
        "{text}"
    );
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (installed by scripts/install-test-deps.sh)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );

    // The CLI summarizes a window: the 404 shows once a sample has it.
    let mut table = String::new();
    for _ in 0..50 {
        let out = crate::cli::weir(&s, &["lb", "metrics", &lb, "--vserver", &vs, "--range", "1h"]).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        table = String::from_utf8_lossy(&out.stdout).into_owned();
        let row = table
            .lines()
            .find(|l| l.contains("http_4xx_per_s"))
            .unwrap_or_default()
            .to_string();
        if row.split_whitespace().any(|c| c.parse::<f64>().is_ok_and(|v| v > 0.0)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(table.contains("resolution 10 s"), "{table}");
    let row = table.lines().find(|l| l.contains("http_4xx_per_s")).unwrap_or_default();
    assert!(
        row.split_whitespace().any(|c| c.parse::<f64>().is_ok_and(|v| v > 0.0)),
        "{table}"
    );
    let out = crate::cli::weir(&s, &["lb", "metrics", &lb, "--range", "2h"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--range"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
