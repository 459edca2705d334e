//! One backend's health: a status the proxy reads with one atomic load, and
//! the consecutive-result counters that decide when it flips.
//!
//! Writers (probe results, passive failures, threshold changes) serialise on a
//! small mutex; the status itself is mirrored into an atomic so the hot path
//! never takes the lock. The clock is an argument, never read here.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

/// Default thresholds until [`Cell::set_thresholds`] is called (the model's defaults).
const DEFAULT_HEALTHY: u32 = 2;
const DEFAULT_UNHEALTHY: u32 = 3;

/// A backend's health status.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not probed yet (new or re-enabled): a candidate for traffic until the first result.
    Checking = 0,
    /// Healthy: a candidate for traffic.
    Valid = 1,
    /// Unhealthy: gets no new traffic.
    Invalid = 2,
}

impl Status {
    fn from_u8(v: u8) -> Status {
        match v {
            1 => Status::Valid,
            2 => Status::Invalid,
            _ => Status::Checking,
        }
    }

    /// The API's spelling: `checking`, `valid`, `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Checking => "checking",
            Status::Valid => "valid",
            Status::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Status> for weir_model::backend::BackendStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Checking => weir_model::backend::BackendStatus::Checking,
            Status::Valid => weir_model::backend::BackendStatus::Valid,
            Status::Invalid => weir_model::backend::BackendStatus::Invalid,
        }
    }
}

/// The most recent observation of a backend: a probe result, or a failure
/// seen by live traffic (its detail then starts with `traffic: `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCheck {
    pub at: OffsetDateTime,
    pub ok: bool,
    pub detail: String,
}

impl From<LastCheck> for weir_model::backend::LastCheck {
    fn from(c: LastCheck) -> Self {
        weir_model::backend::LastCheck {
            at: c.at,
            ok: c.ok,
            detail: c.detail,
        }
    }
}

/// Counters behind the status; changed only under the cell's mutex.
struct State {
    healthy_threshold: u32,
    unhealthy_threshold: u32,
    successes: u32,
    failures: u32,
    /// The next probe success re-admits at once (set by [`Cell::recheck`]).
    admit_next_success: bool,
    last: Option<LastCheck>,
}

/// One backend's health, shared (`Arc`) by the checker and the proxy.
/// Hot-path reads ([`Cell::status`], [`Cell::is_candidate`]) are one atomic load.
pub struct Cell {
    backend_id: Box<str>,
    status: AtomicU8,
    /// Mirror of `State::failures`, so [`Cell::passive_success`] can skip the lock.
    failures_hint: AtomicU32,
    /// Probe results recorded (not passive failures).
    checks: AtomicU64,
    /// Status changes, shared with the [`crate::Table`] that made this cell.
    flips: Arc<AtomicU64>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cell")
            .field("backend_id", &self.backend_id)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Cell {
    /// A standalone cell in state `Checking` (with its own flip counter). Cells
    /// that the proxy and the checker share come from [`crate::Table::cell`].
    pub fn new(backend_id: &str) -> Cell {
        Cell::with_counter(backend_id, Arc::new(AtomicU64::new(0)))
    }

    pub(crate) fn with_counter(backend_id: &str, flips: Arc<AtomicU64>) -> Cell {
        Cell {
            backend_id: backend_id.into(),
            status: AtomicU8::new(Status::Checking as u8),
            failures_hint: AtomicU32::new(0),
            checks: AtomicU64::new(0),
            flips,
            state: Mutex::new(State {
                healthy_threshold: DEFAULT_HEALTHY,
                unhealthy_threshold: DEFAULT_UNHEALTHY,
                successes: 0,
                failures: 0,
                admit_next_success: false,
                last: None,
            }),
        }
    }

    pub fn backend_id(&self) -> &str {
        &self.backend_id
    }

    /// The current status: one atomic load.
    pub fn status(&self) -> Status {
        Status::from_u8(self.status.load(Ordering::Acquire))
    }

    /// A candidate for new traffic: not `Invalid`.
    ///
    /// A new backend is `Checking` and IS a candidate (like HAProxy starting
    /// servers up) and is probed at once; if that first probe fails it becomes
    /// `Invalid` immediately, without waiting for `unhealthy_threshold`; the
    /// first success makes it `Valid` at once. After that the thresholds apply:
    /// `unhealthy_threshold` consecutive failures → `Invalid`, `healthy_threshold`
    /// consecutive successes → `Valid`.
    pub fn is_candidate(&self) -> bool {
        self.status() != Status::Invalid
    }

    pub fn last_check(&self) -> Option<LastCheck> {
        self.lock().last.clone()
    }

    /// Probe results recorded since the cell was created.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Records a probe result; returns `Some(new status)` when the status flipped.
    pub fn record(&self, ok: bool, detail: String, at: OffsetDateTime) -> Option<Status> {
        self.checks.fetch_add(1, Ordering::Relaxed);
        let mut st = self.lock();
        let old = self.status();
        let admit = std::mem::take(&mut st.admit_next_success);
        let new = if ok {
            st.failures = 0;
            st.successes = st.successes.saturating_add(1);
            match old {
                Status::Checking => Status::Valid,
                Status::Invalid if admit || st.successes >= st.healthy_threshold => Status::Valid,
                s => s,
            }
        } else {
            st.successes = 0;
            st.failures = st.failures.saturating_add(1);
            match old {
                // The first probe result decides a new backend.
                Status::Checking => Status::Invalid,
                Status::Valid if st.failures >= st.unhealthy_threshold => Status::Invalid,
                s => s,
            }
        };
        st.last = Some(LastCheck { at, ok, detail });
        self.apply(&mut st, old, new)
    }

    /// A failure seen by live traffic (connect refused or timed out, reset):
    /// counts toward `unhealthy_threshold` exactly like a failed probe, so N
    /// passive failures in a row eject the backend, but never re-admits it, and
    /// does not apply the first-result rule (a `Checking` backend needs
    /// `unhealthy_threshold` of them, or one failed probe). Returns `Some` on a flip.
    pub fn passive_failure(&self, detail: &str, at: OffsetDateTime) -> Option<Status> {
        let mut st = self.lock();
        let old = self.status();
        st.successes = 0;
        st.failures = st.failures.saturating_add(1);
        let new = match old {
            Status::Valid | Status::Checking if st.failures >= st.unhealthy_threshold => Status::Invalid,
            s => s,
        };
        st.last = Some(LastCheck {
            at,
            ok: false,
            detail: format!("traffic: {detail}"),
        });
        self.apply(&mut st, old, new)
    }

    /// A clean exchange seen by live traffic: breaks a run of passive failures
    /// (so occasional resets under heavy traffic do not add up to an ejection),
    /// never changes the status. Lock-free unless failures are pending.
    pub fn passive_success(&self) {
        if self.failures_hint.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut st = self.lock();
        st.failures = 0;
        self.failures_hint.store(0, Ordering::Relaxed);
    }

    /// Sets the thresholds (at least 1 each); they apply from the next result.
    pub fn set_thresholds(&self, healthy: u32, unhealthy: u32) {
        let mut st = self.lock();
        st.healthy_threshold = healthy.max(1);
        st.unhealthy_threshold = unhealthy.max(1);
    }

    /// Back to `Checking` (a candidate, decided by its next probe), counters
    /// cleared, `last_check` kept. Used when a backend re-enters the checked
    /// set (re-enabled). Returns `Some(Checking)` if the status changed.
    pub fn reset(&self) -> Option<Status> {
        let mut st = self.lock();
        let old = self.status();
        st.successes = 0;
        st.failures = 0;
        st.admit_next_success = false;
        self.apply(&mut st, old, Status::Checking)
    }

    /// The check itself changed: results under the old settings stop counting
    /// (counters cleared), the status is kept, and the first success under the
    /// new settings re-admits an `Invalid` backend at once (fixing a wrong
    /// check takes effect at once). Failures still need `unhealthy_threshold`,
    /// so editing a check never ejects on a single result.
    pub fn recheck(&self) {
        let mut st = self.lock();
        st.successes = 0;
        st.failures = 0;
        st.admit_next_success = true;
        self.failures_hint.store(0, Ordering::Relaxed);
    }

    /// Publishes `new`, counts and logs a flip.
    fn apply(&self, st: &mut State, old: Status, new: Status) -> Option<Status> {
        self.failures_hint.store(st.failures, Ordering::Relaxed);
        if new == old {
            return None;
        }
        st.successes = 0;
        st.failures = 0;
        self.failures_hint.store(0, Ordering::Relaxed);
        self.status.store(new as u8, Ordering::Release);
        self.flips.fetch_add(1, Ordering::Relaxed);
        let detail = st.last.as_ref().map(|c| c.detail.as_str()).unwrap_or("");
        match new {
            Status::Invalid => {
                tracing::warn!(backend = %self.backend_id, from = %old, to = %new, detail, "backend health changed")
            }
            _ => tracing::info!(backend = %self.backend_id, from = %old, to = %new, detail, "backend health changed"),
        }
        Some(new)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);

    fn cell(healthy: u32, unhealthy: u32) -> Cell {
        let c = Cell::new("b-1");
        c.set_thresholds(healthy, unhealthy);
        c
    }

    fn ok(c: &Cell) -> Option<Status> {
        c.record(true, "ok".into(), T)
    }

    fn fail(c: &Cell) -> Option<Status> {
        c.record(false, "connect refused".into(), T)
    }

    #[test]
    fn new_cell_is_checking_and_a_candidate() {
        let c = Cell::new("b-1");
        assert_eq!(c.status(), Status::Checking);
        assert!(c.is_candidate());
        assert_eq!(c.last_check(), None);
        assert_eq!(c.checks(), 0);
    }

    #[test]
    fn first_success_makes_valid_at_once() {
        let c = cell(3, 3);
        assert_eq!(ok(&c), Some(Status::Valid));
        assert!(c.is_candidate());
    }

    #[test]
    fn first_failure_makes_invalid_at_once() {
        let c = cell(2, 3);
        assert_eq!(fail(&c), Some(Status::Invalid));
        assert!(!c.is_candidate());
        let last = c.last_check().unwrap();
        assert!(!last.ok);
        assert_eq!(last.detail, "connect refused");
        assert_eq!(last.at, T);
    }

    #[test]
    fn unhealthy_threshold_consecutive_failures_eject() {
        let c = cell(2, 3);
        ok(&c);
        assert_eq!(fail(&c), None);
        assert_eq!(fail(&c), None);
        assert_eq!(c.status(), Status::Valid);
        assert_eq!(fail(&c), Some(Status::Invalid));
        assert_eq!(fail(&c), None, "no flip while it stays invalid");
    }

    #[test]
    fn a_success_breaks_a_failure_run() {
        let c = cell(2, 3);
        ok(&c);
        fail(&c);
        fail(&c);
        ok(&c);
        fail(&c);
        fail(&c);
        assert_eq!(c.status(), Status::Valid);
        assert_eq!(fail(&c), Some(Status::Invalid));
    }

    #[test]
    fn healthy_threshold_consecutive_successes_readmit() {
        let c = cell(3, 1);
        fail(&c);
        assert_eq!(ok(&c), None);
        assert_eq!(ok(&c), None);
        assert_eq!(c.status(), Status::Invalid);
        assert_eq!(ok(&c), Some(Status::Valid));

        // A failure in the middle restarts the count.
        assert_eq!(fail(&c), Some(Status::Invalid));
        ok(&c);
        ok(&c);
        fail(&c);
        ok(&c);
        ok(&c);
        assert_eq!(c.status(), Status::Invalid);
        assert_eq!(ok(&c), Some(Status::Valid));
    }

    #[test]
    fn passive_failures_eject_but_never_readmit() {
        let c = cell(2, 3);
        ok(&c);
        let now = T + time::Duration::seconds(5);
        assert_eq!(c.passive_failure("connect refused", now), None);
        assert_eq!(c.passive_failure("connection reset", now), None);
        assert_eq!(c.passive_failure("connect refused", now), Some(Status::Invalid));
        let last = c.last_check().unwrap();
        assert_eq!(last.detail, "traffic: connect refused");
        assert_eq!(last.at, now);
        assert!(!last.ok);
        // More passive failures do nothing; only probes re-admit.
        assert_eq!(c.passive_failure("connect refused", now), None);
        assert_eq!(ok(&c), None);
        assert_eq!(ok(&c), Some(Status::Valid));
    }

    #[test]
    fn passive_and_probe_failures_add_up() {
        let c = cell(2, 3);
        ok(&c);
        fail(&c);
        c.passive_failure("connect refused", T);
        assert_eq!(fail(&c), Some(Status::Invalid));
    }

    #[test]
    fn passive_failures_on_a_checking_cell_use_the_threshold() {
        let c = cell(2, 2);
        assert_eq!(c.passive_failure("connect refused", T), None);
        assert_eq!(c.status(), Status::Checking);
        assert_eq!(c.passive_failure("connect refused", T), Some(Status::Invalid));
        assert_eq!(c.checks(), 0, "passive failures are not probes");
    }

    #[test]
    fn passive_success_breaks_a_passive_failure_run() {
        let c = cell(2, 3);
        ok(&c);
        c.passive_failure("connection reset", T);
        c.passive_failure("connection reset", T);
        c.passive_success();
        c.passive_failure("connection reset", T);
        c.passive_failure("connection reset", T);
        assert_eq!(c.status(), Status::Valid);
        assert_eq!(c.passive_failure("connection reset", T), Some(Status::Invalid));
        c.passive_success();
        assert_eq!(c.status(), Status::Invalid, "traffic never re-admits");
    }

    #[test]
    fn threshold_changes_apply_to_the_next_result() {
        let c = cell(2, 5);
        ok(&c);
        fail(&c);
        fail(&c);
        c.set_thresholds(2, 2);
        assert_eq!(fail(&c), Some(Status::Invalid));
        c.set_thresholds(0, 0);
        assert_eq!(ok(&c), Some(Status::Valid), "a threshold of 0 counts as 1");
    }

    #[test]
    fn reset_makes_checking_again() {
        let c = cell(2, 1);
        fail(&c);
        assert_eq!(c.reset(), Some(Status::Checking));
        assert!(c.is_candidate());
        assert_eq!(c.reset(), None);
        assert!(c.last_check().is_some(), "history is kept");
        assert_eq!(fail(&c), Some(Status::Invalid), "first-result rule applies again");
    }

    #[test]
    fn recheck_readmits_on_first_success_but_never_ejects_on_one_failure() {
        let c = cell(3, 2);
        fail(&c);
        ok(&c);
        c.recheck();
        assert_eq!(c.status(), Status::Invalid, "status kept");
        assert_eq!(
            ok(&c),
            Some(Status::Valid),
            "first success under the new check re-admits"
        );

        c.recheck();
        assert_eq!(fail(&c), None, "a single failure does not eject a valid backend");
        assert_eq!(fail(&c), Some(Status::Invalid));

        // Only the first result after a recheck is special.
        c.recheck();
        fail(&c);
        assert_eq!(ok(&c), None);
        assert_eq!(ok(&c), None);
        assert_eq!(ok(&c), Some(Status::Valid));

        // Counters from before the change do not count.
        let c = cell(2, 2);
        ok(&c);
        fail(&c);
        c.recheck();
        assert_eq!(fail(&c), None);
    }

    #[test]
    fn flips_are_counted() {
        let flips = Arc::new(AtomicU64::new(0));
        let c = Cell::with_counter("b-1", flips.clone());
        c.set_thresholds(1, 1);
        ok(&c); // Checking → Valid
        ok(&c);
        fail(&c); // → Invalid
        fail(&c);
        c.passive_failure("x", T);
        ok(&c); // → Valid
        c.reset(); // → Checking
        assert_eq!(flips.load(Ordering::Relaxed), 4);
        assert_eq!(c.checks(), 5);
    }

    #[test]
    fn status_conversions() {
        for s in [Status::Checking, Status::Valid, Status::Invalid] {
            assert_eq!(Status::from_u8(s as u8), s);
        }
        assert_eq!(Status::Invalid.to_string(), "invalid");
        let m: weir_model::backend::BackendStatus = Status::Valid.into();
        assert_eq!(m, weir_model::backend::BackendStatus::Valid);
    }
}
