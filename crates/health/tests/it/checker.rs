//! The checker against real loopback backends: ejection and re-admission
//! timing, removal, changes, re-enabling, shutdown and a modest scale run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_health::{Checker, Probe, Status, Table};

use crate::support::{Counting, Http, HttpServer, closed_tcp_port, eventually, target};

fn checker(max_concurrent: usize) -> (Arc<Table>, Arc<Checker>) {
    let table = Arc::new(Table::new());
    let checker = Checker::new(table.clone(), max_concurrent);
    (table, checker)
}

#[tokio::test]
async fn dead_backend_is_ejected_in_time_and_readmitted() {
    let backend = Counting::start().await;
    let addr = backend.addr;
    let (table, checker) = checker(16);
    // interval 200 ms, timeout 150 ms, healthy 2, unhealthy 3
    let t = target("b-1", addr, Probe::Tcp, 200);
    checker.update(vec![t.clone()]);
    let cell = table.get("b-1").expect("update creates the cell");
    assert_eq!(cell.status(), Status::Checking);
    assert!(cell.is_candidate());
    eventually("first probe makes it valid", Duration::from_secs(1), || {
        cell.status() == Status::Valid
    })
    .await;
    assert_eq!(cell.last_check().unwrap().detail, "ok");

    backend.stop().await;
    let bound = t.interval * t.unhealthy_threshold + Duration::from_secs(1);
    let took = eventually("dead backend becomes invalid", bound, || {
        cell.status() == Status::Invalid
    })
    .await;
    let last = cell.last_check().unwrap();
    assert!(!last.ok);
    assert_eq!(last.detail, "connect refused");
    eprintln!("ejected after {took:?} (bound {bound:?})");

    let backend = Counting::on(addr).await;
    let took = eventually("back again: re-admitted", Duration::from_secs(3), || {
        cell.status() == Status::Valid
    })
    .await;
    eprintln!("re-admitted after {took:?}");
    assert!(backend.count() >= 2, "healthy_threshold 2 needs two successes");
    assert_eq!(table.flips(), 3, "checking→valid→invalid→valid");
    checker.shutdown();
}

#[tokio::test]
async fn removed_targets_stop_being_probed() {
    let backend = Counting::start().await;
    let (table, checker) = checker(16);
    checker.update(vec![target("b-1", backend.addr, Probe::Tcp, 100)]);
    eventually("probed a few times", Duration::from_secs(2), || backend.count() >= 3).await;
    checker.update(vec![]);
    assert_eq!(checker.targets(), 0);
    // Let a connection already in the kernel's queue be counted, then watch.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = backend.count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(backend.count(), seen, "no probe after removal");
    assert!(table.get("b-1").is_some(), "the table is the caller's to retain");
}

#[tokio::test]
async fn unchanged_targets_are_left_alone_changed_ones_probed_at_once() {
    let backend = Counting::start().await;
    let (_table, checker) = checker(16);
    // A long interval: any probe after the first is due to an update.
    let t = target("b-1", backend.addr, Probe::Tcp, 60_000);
    checker.update(vec![t.clone()]);
    eventually("new target probed at once", Duration::from_secs(1), || {
        backend.count() == 1
    })
    .await;

    checker.update(vec![t.clone()]);
    checker.update(vec![t.clone()]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(backend.count(), 1, "same settings: no new probe");

    for change in [
        |t: &mut weir_health::Target| t.timeout += Duration::from_millis(1),
        |t: &mut weir_health::Target| t.interval += Duration::from_secs(1),
        |t: &mut weir_health::Target| t.healthy_threshold += 1,
        |t: &mut weir_health::Target| t.unhealthy_threshold += 1,
    ] {
        let before = backend.count();
        let mut t2 = t.clone();
        change(&mut t2);
        checker.update(vec![t2]);
        eventually("changed target probed at once", Duration::from_secs(1), || {
            backend.count() == before + 1
        })
        .await;
        checker.update(vec![t.clone()]); // and back: changed again
        eventually("changed back, probed again", Duration::from_secs(1), || {
            backend.count() == before + 2
        })
        .await;
    }
    assert_eq!(checker.targets(), 1);
}

#[tokio::test]
async fn fixing_a_check_readmits_at_once() {
    let server = HttpServer::start(Http::NeedsHost).await;
    let (table, checker) = checker(16);
    let mut t = target(
        "b-1",
        server.addr,
        Probe::Http {
            path: "/".into(),
            host: None,
        },
        60_000,
    );
    checker.update(vec![t.clone()]);
    let cell = table.cell("b-1");
    eventually("400 without Host", Duration::from_secs(1), || {
        cell.status() == Status::Invalid
    })
    .await;
    assert_eq!(cell.last_check().unwrap().detail, "HTTP 400");

    t.probe = Probe::Http {
        path: "/".into(),
        host: Some("app.example".into()),
    };
    checker.update(vec![t]);
    assert_eq!(
        cell.status(),
        Status::Invalid,
        "a changed check keeps the status until its result"
    );
    eventually("the fixed check re-admits at once", Duration::from_secs(1), || {
        cell.status() == Status::Valid
    })
    .await;
    assert_eq!(cell.last_check().unwrap().detail, "HTTP 200");
}

#[tokio::test]
async fn reenabled_backend_is_checking_and_probed_at_once() {
    let addr = closed_tcp_port().await;
    let (table, checker) = checker(16);
    let t = target("b-1", addr, Probe::Tcp, 60_000);
    checker.update(vec![t.clone()]);
    let cell = table.cell("b-1");
    eventually("first failure ejects at once", Duration::from_secs(1), || {
        cell.status() == Status::Invalid
    })
    .await;
    assert_eq!(cell.checks(), 1);

    checker.update(vec![]); // disabled: left out of the target set
    assert_eq!(cell.status(), Status::Invalid);
    checker.update(vec![t]); // re-enabled
    assert_eq!(cell.status(), Status::Checking, "a re-enabled backend starts over");
    assert!(cell.is_candidate());
    eventually("probed at once", Duration::from_secs(1), || cell.checks() == 2).await;
    assert_eq!(cell.status(), Status::Invalid);
}

#[tokio::test]
async fn passive_failures_eject_between_probes() {
    let backend = Counting::start().await;
    let (table, checker) = checker(16);
    checker.update(vec![target("b-1", backend.addr, Probe::Tcp, 60_000)]);
    let cell = table.cell("b-1");
    eventually("valid", Duration::from_secs(1), || cell.status() == Status::Valid).await;
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(cell.passive_failure("connect refused", now), None);
    assert_eq!(cell.passive_failure("connect refused", now), None);
    assert_eq!(cell.passive_failure("connect refused", now), Some(Status::Invalid));
    assert!(!cell.is_candidate());
    assert_eq!(table.flips(), 2);
}

#[tokio::test]
async fn shutdown_stops_everything() {
    let backend = Counting::start().await;
    let (_table, checker) = checker(16);
    checker.update(vec![target("b-1", backend.addr, Probe::Tcp, 100)]);
    eventually("probed", Duration::from_secs(1), || backend.count() >= 1).await;
    checker.shutdown();
    assert_eq!(checker.targets(), 0);
    checker.update(vec![target("b-2", backend.addr, Probe::Tcp, 100)]);
    assert_eq!(checker.targets(), 0, "updates after shutdown are ignored");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = backend.count();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(backend.count(), seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_from_a_plain_thread_uses_the_runtime_it_was_made_in() {
    let backend = Counting::start().await;
    let (table, checker) = checker(16);
    let t = target("b-1", backend.addr, Probe::Tcp, 60_000);
    let c = checker.clone();
    std::thread::spawn(move || c.update(vec![t])).join().unwrap();
    let cell = table.cell("b-1");
    eventually("probed", Duration::from_secs(1), || cell.status() == Status::Valid).await;
}

/// 2,000 targets on one listening port, interval 1 s, 64 probes in flight at
/// most: every target is probed at least twice within 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_targets_do_not_fall_behind() {
    const N: usize = 2000;
    const MAX: usize = 64;
    let backend = Counting::threaded();
    let (table, checker) = checker(MAX);
    let targets: Vec<_> = (0..N)
        .map(|i| target(&format!("b-{i}"), backend.addr, Probe::Tcp, 1000))
        .collect();
    let cells: Vec<_> = targets.iter().map(|t| table.cell(&t.backend_id)).collect();
    let start = Instant::now();
    checker.update(targets.clone());
    let update_took = start.elapsed();
    let mut peak = 0;
    let took = eventually("every target probed twice", Duration::from_secs(3), || {
        peak = peak.max(checker.in_flight());
        cells.iter().all(|c| c.checks() >= 2)
    })
    .await;
    assert!(peak <= MAX, "{peak} in flight");
    let bad: Vec<_> = cells
        .iter()
        .filter(|c| c.status() != Status::Valid)
        .map(|c| (c.backend_id().to_string(), c.status(), c.last_check()))
        .collect();
    assert!(
        bad.is_empty(),
        "{} not valid, e.g. {:?}",
        bad.len(),
        &bad[..bad.len().min(3)]
    );

    let again = Instant::now();
    checker.update(targets);
    let noop_took = again.elapsed();
    eprintln!(
        "{N} targets: update {update_took:?}, all probed twice after {took:?}, peak in flight {peak}, \
         no-op update {noop_took:?}, {} probes, {} connections",
        checker.probes(),
        backend.count()
    );
    checker.shutdown();
}
