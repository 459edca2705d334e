//! How much disk the metrics history takes: simulates `--days` of samples
//! every `--interval` seconds for one LB with `--vservers` VServers through
//! the real history code (SQLite file, rollups, retention), and prints the
//! database's size after the first day and at the end (the steady state once
//! the 5-minute tier is full).
//!
//!   cargo run --release -p weir-bench --bin history-growth -- --vservers 10 --days 31

use std::time::Instant;

use weir_metrics::db::Db;
use weir_metrics::history::{History, Retention};

fn arg(name: &str, default: i64) -> anyhow::Result<i64> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == name {
            return Ok(args
                .next()
                .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?
                .parse()?);
        }
    }
    Ok(default)
}

/// The database and its WAL, in bytes.
fn size(dir: &std::path::Path) -> u64 {
    ["metrics.db", "metrics.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn main() -> anyhow::Result<()> {
    let vservers = arg("--vservers", 10)?;
    let days = arg("--days", 31)?;
    let interval = arg("--interval", 10)?;
    let dir = tempfile::tempdir()?;
    let db = Db::open(&dir.path().join("metrics.db"))?;
    let h = History::new(db.clone(), Retention::default(), interval);
    let resources: Vec<String> = std::iter::once("lb-000000000001".to_string())
        .chain((0..vservers).map(|i| format!("vs-{i:012}")))
        .collect();
    let start = 1_800_000_000i64;
    let started = Instant::now();
    let mut ts = start;
    let mut day1 = 0;
    let per_day = 86_400 / interval;
    for day in 0..days {
        for i in 0..per_day {
            let rows: Vec<(String, weir_metrics::Values)> = resources
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    let mut v = [0.0; weir_metrics::METRICS];
                    for (j, x) in v.iter_mut().enumerate() {
                        *x = ((i as usize * 7 + k * 13 + j * 31) % 1000) as f64 * 1.37;
                    }
                    (r.clone(), v)
                })
                .collect();
            h.record(ts, &rows)?;
            h.maintain(ts)?;
            ts += interval;
        }
        if day == 0 {
            db.with(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))?;
            day1 = size(dir.path());
        }
    }
    db.with(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))?;
    let end = size(dir.path());
    let n = resources.len() as u64;
    println!(
        "{} resources (1 LB + {vservers} VServers), {interval} s samples, {days} days simulated in {:.1} s",
        n,
        started.elapsed().as_secs_f64()
    );
    println!("after 1 day:   {:>10} bytes = {:>8} bytes per resource", day1, day1 / n);
    println!(
        "after {days} days: {:>10} bytes = {:>8} bytes per resource (steady state: 1 d raw + 30 d of 5-min)",
        end,
        end / n
    );
    Ok(())
}
