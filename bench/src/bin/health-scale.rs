//! The health checker at scale: (1) CPU and memory of `weir serve` probing
//! 10,000 TCP backends every 5 s, and whether each one really is probed every
//! interval; (2) how long a killed backend takes to turn `invalid` (interval
//! 1 s, unhealthy threshold 2), over 100 kills.
//!
//! `cargo run --release -p weir-bench --bin health-scale -- [--backends N] [--measure-s S] [--kills N] [--workers N]`
//! Starts its own `target/release/weir serve` on a temp dir; stops it by PID.
//!
//! (1) All backends are `127.81.x.y:P`, served by ONE listener of this process
//! bound to `0.0.0.0:P` (Linux delivers a connect to any 127/8 address there);
//! a dedicated thread accepts and drops, and tells the backends apart by the
//! accepted socket's local address, so every probe is counted per backend.
//! CPU is utime+stime of the weir process from `/proc/PID/stat`, memory its
//! `VmRSS`. (2) Each of the kill backends is its own listener on
//! `127.82.0.x:Q`, dropped (connects are refused) and bound again. Part (2)
//! runs while the 10,000 backends of part (1) are still being probed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

const TOKEN: &str = "bench-admin";
/// Concurrency of the backend creates (as `api-latency`).
const CONCURRENCY: usize = 8;
/// Part (1): the VServer's check.
const SCALE_INTERVAL_S: u64 = 5;
/// Part (2): the VServer's check.
const KILL_INTERVAL_S: u64 = 1;
const KILL_UNHEALTHY: u64 = 2;
/// How often part (2) polls a killed backend's status.
const POLL: Duration = Duration::from_millis(20);
/// Addresses per /24 used in part (1): 127.81.x.1 ..= 127.81.x.250.
const PER_OCTET: usize = 250;

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let r = req.bearer_auth(TOKEN).timeout(Duration::from_secs(30)).send().await?;
        let status = r.status();
        let v: Value = if status == reqwest::StatusCode::NO_CONTENT {
            Value::Null
        } else {
            r.json().await?
        };
        if !status.is_success() {
            bail!("{what}: {status} {v}");
        }
        Ok(v)
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let req = self.http.post(format!("{}{path}", self.base)).json(&body);
        self.send(req, &format!("POST {path}")).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req, &format!("GET {path}")).await
    }

    /// Waits (bounded) until the data plane has applied the store's revision.
    async fn wait_applied(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st = self.get("/v1/system/status").await?;
            if st["applied_revision"].as_u64() >= st["revision"].as_u64() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("revision not applied within 60 s: {st}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn health_flips(&self) -> anyhow::Result<u64> {
        Ok(self.get("/v1/system/status").await?["dataplane"]["health_flips"]
            .as_u64()
            .unwrap_or(0))
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nearest-rank percentile of sorted seconds, in ms.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |s| s * 1000.0)
}

// ---------------------------------------------------------------- /proc

/// CPU time (utime + stime, in clock ticks) and RSS / peak RSS (KiB) of a process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    ticks: u64,
    /// Of which in the kernel (stime).
    sys_ticks: u64,
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
}

fn usage(pid: u32) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc/PID/stat")?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/PID/status")?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Usage {
        ticks: field(14) + field(15),
        sys_ticks: field(15),
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        threads: kib("Threads:"),
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------- part (1) listener

/// Probes seen at the shared listener, per backend, while `counting`.
struct Tally {
    counting: bool,
    started: Instant,
    accepts: u64,
    /// Accepts to an address that is not one of the backends.
    stray: u64,
    /// Per backend: probes in the window, first and last probe, longest gap between two.
    seen: Vec<(u32, Option<Instant>, Option<Instant>, Duration)>,
}

struct Shared {
    tally: Mutex<Tally>,
    total: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn scale_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 81, (i / PER_OCTET) as u8, (1 + i % PER_OCTET) as u8)
}

fn scale_index(ip: IpAddr, n: usize) -> Option<usize> {
    let IpAddr::V4(v4) = ip else { return None };
    let [a, b, c, d] = v4.octets();
    let (c, d) = (usize::from(c), usize::from(d));
    let i = c * PER_OCTET + d.checked_sub(1)?;
    (a == 127 && b == 81 && (1..=PER_OCTET).contains(&d) && i < n).then_some(i)
}

/// Binds `0.0.0.0:0` with the deepest backlog the kernel allows and accepts
/// (then drops) on a dedicated thread until `stop`.
fn start_sink(n: usize) -> anyhow::Result<(u16, Arc<Shared>, std::thread::JoinHandle<()>)> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?;
    let listener = sock.listen(65_535)?.into_std()?;
    listener.set_nonblocking(false)?;
    let port = listener.local_addr()?.port();
    let shared = Arc::new(Shared {
        tally: Mutex::new(Tally {
            counting: false,
            started: Instant::now(),
            accepts: 0,
            stray: 0,
            seen: vec![(0, None, None, Duration::ZERO); n],
        }),
        total: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let sh = shared.clone();
    let thread = std::thread::Builder::new().name("probe-sink".into()).spawn(move || {
        while !sh.stop.load(Ordering::Relaxed) {
            let (s, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("health-scale: accept: {e}");
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            };
            let local = s.local_addr();
            drop(s);
            sh.total.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            let mut t = sh.lock();
            if !t.counting {
                continue;
            }
            // Only loopback clients count (the socket listens on every interface).
            let idx = match local {
                Ok(l) if peer.ip().is_loopback() => scale_index(l.ip(), n),
                _ => None,
            };
            let Some(i) = idx else {
                t.stray += 1;
                continue;
            };
            t.accepts += 1;
            if let Some(e) = t.seen.get_mut(i) {
                if let Some(last) = e.2 {
                    e.3 = e.3.max(now - last);
                }
                e.0 += 1;
                e.1.get_or_insert(now);
                e.2 = Some(now);
            }
        }
    })?;
    Ok((port, shared, thread))
}

// ---------------------------------------------------------------- part (2) listeners

/// A backend that can be killed (its address then refuses connects) and
/// started again on the same address.
struct Killable {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Killable {
    fn start(addr: SocketAddr) -> anyhow::Result<Killable> {
        let mut k = Killable { addr, task: None };
        k.restart()?;
        Ok(k)
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.set_reuseaddr(true)?;
        sock.bind(self.addr).with_context(|| format!("bind {}", self.addr))?;
        let l = sock.listen(1024)?;
        self.task = Some(tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                drop(s);
            }
        }));
        Ok(())
    }

    /// Returns once the listener is closed.
    async fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

// ---------------------------------------------------------------- main

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = arg("--backends", 10_000).clamp(1, 200 * PER_OCTET);
    let measure = Duration::from_secs(arg("--measure-s", 60).max(5) as u64);
    let kills = arg("--kills", 100).clamp(1, 250);
    let workers = arg("--workers", 4).clamp(1, kills);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(l) => println!("open-files limit of the benchmark: {l}"),
        Err(e) => eprintln!("health-scale: cannot raise the open-files limit: {e}"),
    }
    let bin = std::env::current_exe()?.with_file_name("weir");
    if !bin.exists() {
        bail!("{} not found: run `cargo build --release -p weir` first", bin.display());
    }
    let dir = std::env::temp_dir().join(format!("weir-bench-health-{}", std::process::id()));
    let mut child = tokio::process::Command::new(&bin)
        .args(["serve", "--api-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("WEIR_ADMIN_TOKEN", TOKEN)
        // Flips are logged at warn; part (2) makes 100 on purpose.
        .env("WEIR_LOG", "warn,weir_health::cell=error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting weir serve")?;
    let pid = child.id().context("weir pid")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let base = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await??
            .context("weir exited")?;
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_string();
        }
    };
    println!("weir serve: pid {pid}, {base}; load average {}", loadavg());
    let api = Arc::new(Api {
        http: reqwest::Client::new(),
        base,
    });
    let result = run(api, pid, n, measure, kills, workers).await;
    // Stops weir by its PID (SIGKILL to the child we spawned).
    let _ = child.start_kill();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(api: Arc<Api>, pid: u32, n: usize, measure: Duration, kills: usize, workers: usize) -> anyhow::Result<()> {
    let tck = clk_tck();
    let vpc = id(&api
        .post("/v1/vpcs", json!({"name": "bench", "cidr": "127.0.0.0/8"}))
        .await?);
    let subnet = id(&api
        .post(
            "/v1/subnets",
            json!({"vpc_id": vpc, "name": "lbs", "cidr": "127.80.0.0/24"}),
        )
        .await?);
    let lb = id(&api
        .post(
            "/v1/load-balancers",
            json!({"name": "health-bench", "network_type": "internal", "vpc_id": vpc, "subnet_id": subnet}),
        )
        .await?);

    let (port, sink, thread) = start_sink(n)?;
    let result = match scale(&api, pid, tck, &lb, n, measure, port, &sink).await {
        Ok(()) => {
            // The 10,000 keep being probed during part (2): its 100 creates
            // (100 revisions) must not restart their schedules (no bursts).
            let (p0, t0) = (sink.total.load(Ordering::Relaxed), Instant::now());
            let r = kill_loop(&api, &lb, kills, workers).await;
            let rate = (sink.total.load(Ordering::Relaxed) - p0) as f64 / t0.elapsed().as_secs_f64();
            println!(
                "part (1) probes during part (2): {rate:.0}/s (expected {:.0}/s)",
                n as f64 / SCALE_INTERVAL_S as f64
            );
            r
        }
        Err(e) => Err(e),
    };
    println!("load average at the end: {}", loadavg());
    // Stop the sink: set the flag, then wake its blocking accept.
    sink.stop.store(true, Ordering::Relaxed);
    let _ = std::net::TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1));
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::task::spawn_blocking(move || thread.join()),
    )
    .await;
    result
}

/// Part (1): `port` and `sink` from [`start_sink`].
#[allow(clippy::too_many_arguments)]
async fn scale(
    api: &Arc<Api>,
    pid: u32,
    tck: f64,
    lb: &str,
    n: usize,
    measure: Duration,
    port: u16,
    sink: &Shared,
) -> anyhow::Result<()> {
    let idle = usage(pid)?;
    let vs = id(&api
        .post(
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "tcp", "port": 7801,
                   "health_check": {"interval_s": SCALE_INTERVAL_S, "timeout_s": 2}}),
        )
        .await?);
    println!("part 1: {n} backends 127.81.x.y:{port}, one listener on 0.0.0.0:{port}");

    let started = Instant::now();
    let before_fill = usage(pid)?;
    let sem = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        let (api, path) = (api.clone(), format!("/v1/load-balancers/{lb}/vservers/{vs}/backends"));
        tasks.push(tokio::spawn(async move {
            let _p = permit;
            api.post(&path, json!({"address": scale_ip(i).to_string(), "port": port}))
                .await
                .map(|_| ())
        }));
    }
    for t in tasks {
        t.await??;
    }
    api.wait_applied().await?;
    let fill = started.elapsed();
    let after_fill = usage(pid)?;
    println!(
        "created {n} backends in {:.1} s (concurrency {CONCURRENCY}); weir CPU during the fill {:.1} s",
        fill.as_secs_f64(),
        (after_fill.ticks - before_fill.ticks) as f64 / tck
    );

    // Every backend valid (bounded).
    let vs_path = format!("/v1/load-balancers/{lb}/vservers/{vs}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = api.get(&vs_path).await?;
        if v["health"] == "all_healthy" && v["backend_count"].as_u64() == Some(n as u64) {
            break;
        }
        if Instant::now() > deadline {
            bail!("not all healthy 120 s after the fill: {}", v["health"]);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_valid = started.elapsed();
    let valid = count_valid(api, &vs_path, n).await?;
    println!(
        "all {valid}/{n} valid {:.1} s after the first create ({:.1} s after the last)",
        all_valid.as_secs_f64(),
        (all_valid - fill).as_secs_f64()
    );
    // Let the start-up spread (first period = interval × [0.5, 1.5)) settle.
    tokio::time::sleep(Duration::from_secs(2 * SCALE_INTERVAL_S)).await;

    let flips0 = api.health_flips().await?;
    {
        let mut t = sink.lock();
        t.counting = true;
        t.started = Instant::now();
    }
    let u0 = usage(pid)?;
    let t0 = Instant::now();
    let (mut prev, mut prev_t) = (u0, t0);
    let mut peak_cpu = 0.0f64;
    println!("measuring {} s:", measure.as_secs());
    while t0.elapsed() < measure {
        let step = Duration::from_secs(5).min(measure.saturating_sub(t0.elapsed()));
        tokio::time::sleep(step.max(Duration::from_millis(100))).await;
        let u = usage(pid)?;
        let now = Instant::now();
        let cpu = (u.ticks - prev.ticks) as f64 / tck / (now - prev_t).as_secs_f64() * 100.0;
        peak_cpu = peak_cpu.max(cpu);
        let accepts = sink.lock().accepts;
        println!(
            "  t={:>5.1} s  cpu {cpu:>5.1}%  rss {:>6.1} MiB  probes seen {accepts}",
            t0.elapsed().as_secs_f64(),
            mib(u.rss_kib)
        );
        (prev, prev_t) = (u, now);
    }
    let (u1, t1) = (usage(pid)?, Instant::now());
    let window = t1 - t0;
    let (accepts, stray, gaps, never) = {
        let mut t = sink.lock();
        t.counting = false;
        let end = t1;
        let start = t.started;
        // Per backend, the longest stretch without a probe, counting the
        // window's edges (a backend probed only at the start would show it).
        let mut gaps: Vec<f64> = Vec::with_capacity(n);
        let mut never = 0usize;
        for e in &t.seen {
            match (e.1, e.2) {
                (Some(first), Some(last)) => {
                    gaps.push(e.3.max(first - start).max(end - last).as_secs_f64());
                }
                _ => never += 1,
            }
        }
        gaps.sort_by(f64::total_cmp);
        (t.accepts, t.stray, gaps, never)
    };
    let flips1 = api.health_flips().await?;
    let valid_after = count_valid(api, &vs_path, n).await?;
    let secs = window.as_secs_f64();
    let cpu = (u1.ticks - u0.ticks) as f64 / tck / secs * 100.0;
    let expected = n as f64 * secs / SCALE_INTERVAL_S as f64;
    let late = gaps
        .iter()
        .filter(|g| **g > SCALE_INTERVAL_S as f64 * 1.1 + 0.25)
        .count();
    println!();
    println!("== (1) {n} TCP backends, interval {SCALE_INTERVAL_S} s, over {secs:.1} s ==");
    println!(
        "weir CPU: {cpu:.1}% of one core (mean; {:.1}% in the kernel), {peak_cpu:.1}% (max of 5 s samples); {:.0} µs CPU per probe",
        (u1.sys_ticks - u0.sys_ticks) as f64 / tck / secs * 100.0,
        (u1.ticks - u0.ticks) as f64 / tck * 1e6 / accepts.max(1) as f64
    );
    println!(
        "weir RSS: {:.1} MiB idle before the VServer, {:.1} MiB at the end (peak {:.1} MiB); {} threads",
        mib(idle.rss_kib),
        mib(u1.rss_kib),
        mib(u1.hwm_kib),
        u1.threads
    );
    println!(
        "probes seen at the listener: {accepts} = {:.0}/s (expected {:.0} = {:.0}/s; ratio {:.3}); stray accepts {stray}",
        accepts as f64 / secs,
        expected,
        n as f64 / SCALE_INTERVAL_S as f64,
        accepts as f64 / expected
    );
    println!(
        "longest gap without a probe per backend: p50 {:.2} s, p99 {:.2} s, max {:.2} s; backends with a gap > {:.2} s: {late}; never probed: {never}",
        pct(&gaps, 0.5) / 1000.0,
        pct(&gaps, 0.99) / 1000.0,
        gaps.last().copied().unwrap_or(0.0),
        SCALE_INTERVAL_S as f64 * 1.1 + 0.25
    );
    println!(
        "health flips during the window: {}; valid after: {valid_after}/{n}",
        flips1 - flips0
    );
    let (tw_weir, tw_sink) = time_wait(port);
    println!("TIME_WAIT sockets at the end: {tw_weir} on weir's side, {tw_sink} on the backends' side");
    println!();
    Ok(())
}

/// TIME_WAIT sockets (state 06 in `/proc/net/tcp`) towards `port` and from it.
fn time_wait(port: u16) -> (usize, usize) {
    let Ok(text) = std::fs::read_to_string("/proc/net/tcp") else {
        return (0, 0);
    };
    let hex = format!(":{port:04X}");
    let (mut to, mut from) = (0, 0);
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let (Some(local), Some(remote), Some(&"06")) = (f.get(1), f.get(2), f.get(3)) {
            to += usize::from(remote.ends_with(&hex));
            from += usize::from(local.ends_with(&hex));
        }
    }
    (to, from)
}

/// Backends of a VServer whose status is `valid`, by pages of 1,000.
async fn count_valid(api: &Api, vs_path: &str, n: usize) -> anyhow::Result<usize> {
    let mut valid = 0;
    let mut offset = 0;
    while offset < n {
        let page = api
            .get(&format!("{vs_path}/backends?limit=1000&offset={offset}"))
            .await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        valid += items.iter().filter(|b| b["status"] == "valid").count();
        offset += items.len();
    }
    Ok(valid)
}

/// One kill as measured.
struct Kill {
    /// Kill → first poll that saw `invalid`.
    observed: f64,
    /// Kill → `last_check.at` of the probe that flipped it (the checker's own time).
    checker: Option<f64>,
    /// Restart → first poll that saw `valid` again.
    readmit: f64,
    detail: String,
}

/// Part (2).
async fn kill_loop(api: &Arc<Api>, lb: &str, kills: usize, workers: usize) -> anyhow::Result<()> {
    let vs = id(&api
        .post(
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "tcp", "port": 7802,
                   "health_check": {"interval_s": KILL_INTERVAL_S, "timeout_s": 1, "unhealthy_threshold": KILL_UNHEALTHY}}),
        )
        .await?);
    let port = 7900;
    let mut backends = Vec::with_capacity(kills);
    for i in 0..kills {
        let addr = SocketAddr::from((Ipv4Addr::new(127, 82, 0, 1 + i as u8), port));
        let k = Killable::start(addr)?;
        let rs = id(&api
            .post(
                &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends"),
                json!({"address": addr.ip().to_string(), "port": port}),
            )
            .await?);
        backends.push((i, k, rs));
    }
    api.wait_applied().await?;
    println!("part 2: {kills} backends 127.82.0.x:{port}, each its own listener; {workers} kills at a time");
    let base = format!("/v1/load-balancers/{lb}/vservers/{vs}/backends");
    for (_, _, rs) in &backends {
        wait_status(api, &format!("{base}/{rs}"), "valid", Duration::from_secs(10)).await?;
    }

    let started = Instant::now();
    let mut lanes: Vec<Vec<(usize, Killable, String)>> = (0..workers).map(|_| Vec::new()).collect();
    for (j, b) in backends.into_iter().enumerate() {
        if let Some(l) = lanes.get_mut(j % workers) {
            l.push(b);
        }
    }
    let mut tasks = Vec::new();
    for lane in lanes {
        let (api, base) = (api.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for (i, mut k, rs) in lane {
                // A uniform phase between the last probe and the kill
                // (golden-ratio sequence, reproducible): killing right after
                // the probe that re-admitted it would always measure ~2 intervals.
                let phase = ((i as f64 + 1.0) * 0.618_033_988_75).fract() * KILL_INTERVAL_S as f64;
                tokio::time::sleep(Duration::from_secs_f64(phase)).await;
                let path = format!("{base}/{rs}");
                k.kill().await;
                let killed_at = OffsetDateTime::now_utc();
                let (observed, b) = wait_status(&api, &path, "invalid", Duration::from_secs(15)).await?;
                let checker = b["last_check"]["at"]
                    .as_str()
                    .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
                    .map(|at| (at - killed_at).as_seconds_f64());
                k.restart()?;
                let (readmit, _) = wait_status(&api, &path, "valid", Duration::from_secs(15)).await?;
                out.push(Kill {
                    observed: observed.as_secs_f64(),
                    checker,
                    readmit: readmit.as_secs_f64(),
                    detail: b["last_check"]["detail"].as_str().unwrap_or_default().to_string(),
                });
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let took = started.elapsed();
    let mut observed: Vec<f64> = all.iter().map(|k| k.observed).collect();
    observed.sort_by(f64::total_cmp);
    let mut checker: Vec<f64> = all.iter().filter_map(|k| k.checker).collect();
    checker.sort_by(f64::total_cmp);
    let mut readmit: Vec<f64> = all.iter().map(|k| k.readmit).collect();
    readmit.sort_by(f64::total_cmp);
    let bound = (KILL_INTERVAL_S * KILL_UNHEALTHY + 1) as f64;
    let over = observed.iter().filter(|s| **s > bound).count();
    let mut details: Vec<&str> = all.iter().map(|k| k.detail.as_str()).collect();
    details.sort_unstable();
    details.dedup();
    println!();
    println!(
        "== (2) detection time over {} kills (interval {KILL_INTERVAL_S} s, timeout 1 s, unhealthy_threshold {KILL_UNHEALTHY}; polled every {} ms) in {:.0} s ==",
        all.len(),
        POLL.as_millis(),
        took.as_secs_f64()
    );
    for (name, v) in [
        ("kill -> API shows invalid", &observed),
        ("kill -> flipping probe (last_check.at)", &checker),
        ("restart -> API shows valid (threshold 2)", &readmit),
    ] {
        println!(
            "{name:<42} n={:<4} min {:>5.0} ms  p50 {:>5.0} ms  p90 {:>5.0} ms  p99 {:>5.0} ms  max {:>5.0} ms",
            v.len(),
            pct(v, 0.0),
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99),
            pct(v, 1.0)
        );
    }
    println!("bound interval × unhealthy_threshold + 1 s = {bound:.0} s: {over} kills over it; details: {details:?}");
    Ok(())
}

/// Polls a backend every [`POLL`] until its status is `want`; returns the
/// time it took and the backend as last read.
async fn wait_status(api: &Api, path: &str, want: &str, within: Duration) -> anyhow::Result<(Duration, Value)> {
    let started = Instant::now();
    loop {
        let b = api.get(path).await?;
        if b["status"] == want {
            return Ok((started.elapsed(), b));
        }
        if started.elapsed() > within {
            bail!("{path} still {} after {within:?} (want {want}): {b}", b["status"]);
        }
        tokio::time::sleep(POLL).await;
    }
}
