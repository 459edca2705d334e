//! Control-plane latency with a large store: fills Weir with 10,000 LBs
//! (one VServer each) and 100,000 backends through the API, then measures
//! create latency and searched-list latency at that size.
//!
//! `cargo run --release -p weir-bench --bin api-latency -- [--lbs N] [--backends-per-lb N]`
//! Starts its own `target/release/weir serve` on a temp dir; stops it by PID.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Semaphore;

const TOKEN: &str = "bench-admin";
const CONCURRENCY: usize = 8;

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(Value, Duration)> {
        let t = Instant::now();
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        let dt = t.elapsed();
        if !status.is_success() {
            bail!("POST {path}: {status} {v}");
        }
        Ok((v, dt))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(Value, Duration)> {
        let t = Instant::now();
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        let dt = t.elapsed();
        if !status.is_success() {
            bail!("GET {path}: {status} {v}");
        }
        Ok((v, dt))
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn report(name: &str, v: &mut [Duration]) {
    println!(
        "{name:<44} n={:<7} p50={:>7.2} ms  p99={:>7.2} ms",
        v.len(),
        pct(v, 0.50),
        pct(v, 0.99)
    );
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let lbs = arg("--lbs", 10_000);
    let per_lb = arg("--backends-per-lb", 10);
    let bin = std::env::current_exe()?.with_file_name("weir");
    if !bin.exists() {
        bail!("{} not found: run `cargo build --release -p weir` first", bin.display());
    }
    let dir = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
    let mut child = tokio::process::Command::new(&bin)
        .args(["serve", "--api-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("WEIR_ADMIN_TOKEN", TOKEN)
        .env("WEIR_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting weir serve")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let base = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await??
            .context("weir exited")?;
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_string();
        }
    };
    let api = Arc::new(Api {
        http: reqwest::Client::new(),
        base,
    });
    let result = run(api, lbs, per_lb).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(api: Arc<Api>, lbs: usize, per_lb: usize) -> anyhow::Result<()> {
    let (vpc, _) = api
        .post("/v1/vpcs", json!({"name": "bench", "cidr": "10.0.0.0/8"}))
        .await?;
    let vpc = vpc["id"].as_str().unwrap_or_default().to_string();
    let (subnet, _) = api
        .post(
            "/v1/subnets",
            json!({"vpc_id": vpc, "name": "lbs", "cidr": "10.0.0.0/12"}),
        )
        .await?;
    let subnet = subnet["id"].as_str().unwrap_or_default().to_string();

    let started = Instant::now();
    let sem = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = Vec::with_capacity(lbs);
    for i in 0..lbs {
        let api = api.clone();
        let (vpc, subnet) = (vpc.clone(), subnet.clone());
        let permit = sem.clone().acquire_owned().await?;
        tasks.push(tokio::spawn(async move {
            let _p = permit;
            let body =
                json!({"name": format!("shop-{i:05}"), "network_type": "internal", "vpc_id": vpc, "subnet_id": subnet});
            let (lb, t_lb) = api.post("/v1/load-balancers", body).await?;
            let lb = lb["id"].as_str().unwrap_or_default().to_string();
            let (vs, t_vs) = api
                .post(
                    &format!("/v1/load-balancers/{lb}/vservers"),
                    json!({"protocol": "http", "port": 80}),
                )
                .await?;
            let vs = vs["id"].as_str().unwrap_or_default().to_string();
            let mut t_rs = Vec::with_capacity(per_lb);
            for j in 0..per_lb {
                let addr = format!("10.{}.{}.{}", 16 + (i / 65536) % 200, (i / 256) % 256, i % 256);
                let (_, t) = api
                    .post(
                        &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends"),
                        json!({"address": addr, "port": 8000 + j, "weight": 1 + j % 100}),
                    )
                    .await?;
                t_rs.push(t);
            }
            anyhow::Ok((t_lb, t_vs, t_rs))
        }));
    }
    let (mut c_lb, mut c_vs, mut c_rs) = (Vec::new(), Vec::new(), Vec::new());
    for t in tasks {
        let (a, b, c) = t.await??;
        c_lb.push(a);
        c_vs.push(b);
        c_rs.extend(c);
    }
    println!(
        "filled {lbs} LBs, {} VServers, {} backends in {:.1} s (concurrency {CONCURRENCY})",
        c_vs.len(),
        c_rs.len(),
        started.elapsed().as_secs_f64()
    );
    report("create LB (during fill)", &mut c_lb);
    report("create VServer (during fill)", &mut c_vs);
    report("create backend (during fill)", &mut c_rs);

    // At full size, one client at a time: the latency a single operator sees.
    let mut full_lb = Vec::new();
    for i in 0..500 {
        let body = json!({"name": format!("late-{i}"), "network_type": "internal", "vpc_id": vpc, "subnet_id": subnet});
        full_lb.push(api.post("/v1/load-balancers", body).await?.1);
    }
    report("create LB (store full, sequential)", &mut full_lb);
    let (lb0, _) = api.get("/v1/load-balancers?limit=1").await?;
    let lb0 = lb0["items"][0]["id"].as_str().unwrap_or_default().to_string();
    let (mut full_vs, mut full_rs) = (Vec::new(), Vec::new());
    for i in 0..300 {
        let (vs, t) = api
            .post(
                &format!("/v1/load-balancers/{lb0}/vservers"),
                json!({"protocol": "tcp", "port": 10_000 + i}),
            )
            .await?;
        full_vs.push(t);
        let vs = vs["id"].as_str().unwrap_or_default().to_string();
        let (_, t) = api
            .post(
                &format!("/v1/load-balancers/{lb0}/vservers/{vs}/backends"),
                json!({"address": "10.250.0.1", "port": 80}),
            )
            .await?;
        full_rs.push(t);
    }
    report("create VServer (store full, sequential)", &mut full_vs);
    report("create backend (store full, sequential)", &mut full_rs);

    let mut search = Vec::new();
    for i in 0..500 {
        let (v, t) = api
            .get(&format!(
                "/v1/load-balancers?search=shop-{:04}&limit=100",
                (i * 7) % (lbs / 10).max(1)
            ))
            .await?;
        if v["total"].as_u64().unwrap_or(0) == 0 {
            bail!("search found nothing");
        }
        search.push(t);
    }
    report("list LBs, search=shop-NNNN (10 hits)", &mut search);
    let mut broad = Vec::new();
    for _ in 0..200 {
        broad.push(api.get("/v1/load-balancers?search=shop&limit=100").await?.1);
    }
    report("list LBs, search=shop (page of 100)", &mut broad);
    let mut first = Vec::new();
    for _ in 0..200 {
        first.push(api.get("/v1/load-balancers?limit=100").await?.1);
    }
    report("list LBs, first page of 100", &mut first);
    Ok(())
}
