//! One timer per client connection, shared by all its waits.
//!
//! Every wait of an HTTP/1 connection has a deadline (keep-alive idle, the
//! head within the idle timeout, body progress, the backend's response
//! head). A tokio timer per wait is registered in the timer wheel when the
//! wait starts and removed when it ends: two wheel operations under the
//! driver's lock per wait, four per keep-alive request, for deadlines that
//! almost never pass. Here the connection keeps one timer and a wait only
//! moves it *earlier* when it needs it sooner than it is set; when the
//! timer fires for a wait whose deadline is later, the wait sets it to its
//! own deadline and goes on waiting. A busy keep-alive connection thus
//! touches the wheel about once per timeout period instead of per request.

use std::pin::Pin;
use std::task::{Context, Poll};

use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A wait reached its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimedOut;

/// Allocated on the first wait that has to wait (a request whose bytes are
/// all there never needs one).
#[derive(Default)]
pub(crate) struct Timer(Option<Pin<Box<Sleep>>>);

impl Timer {
    /// `fut`, unless `deadline` passes first.
    pub(crate) fn within<F: Future>(&mut self, deadline: Instant, fut: F) -> Within<'_, F> {
        Within {
            timer: self,
            deadline: Some(deadline),
            after: Duration::ZERO,
            fut,
        }
    }

    /// `fut`, unless it makes no progress for `limit` from its first wait
    /// (the clock is read only if it has to wait: a write the socket takes
    /// at once costs nothing).
    pub(crate) fn after<F: Future>(&mut self, limit: Duration, fut: F) -> Within<'_, F> {
        Within {
            timer: self,
            deadline: None,
            after: limit,
            fut,
        }
    }

    /// Ready once `deadline` has passed; until then the task is woken at
    /// `deadline` (or earlier, for an earlier wait's deadline, and the
    /// timer is then re-armed for this one).
    pub(crate) fn poll_deadline(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let sleep = self.no_later_than(deadline);
        while sleep.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(deadline);
        }
        Poll::Pending
    }

    /// The timer, set to fire at `deadline` or before.
    fn no_later_than(&mut self, deadline: Instant) -> &mut Pin<Box<Sleep>> {
        let sleep = self
            .0
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep
    }
}

pin_project_lite::pin_project! {
    /// [`Timer::within`]'s future: the wait and its deadline, nothing more
    /// (an idle keep-alive connection's task is mostly this).
    pub(crate) struct Within<'a, F> {
        timer: &'a mut Timer,
        // Set on the first wait when only `after` was given.
        deadline: Option<Instant>,
        after: Duration,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Result<F::Output, TimedOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let after = *this.after;
        let deadline = *this.deadline.get_or_insert_with(|| Instant::now() + after);
        this.timer.poll_deadline(cx, deadline).map(|()| Err(TimedOut))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_wait_ends_at_its_own_deadline() {
        let mut t = Timer::default();
        let start = Instant::now();
        // Ready at once: no timer needed.
        assert_eq!(t.within(start + Duration::from_secs(1), async { 7 }).await, Ok(7));
        assert!(t.0.is_none());
        // A short wait sets it; a later, longer wait finds it early and
        // pushes it to its own deadline instead of ending then.
        let r = t
            .within(start + Duration::from_secs(2), std::future::pending::<()>())
            .await;
        assert_eq!(r, Err(TimedOut));
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
        let r = t
            .within(start + Duration::from_secs(60), std::future::pending::<()>())
            .await;
        assert_eq!(r, Err(TimedOut));
        assert_eq!(Instant::now() - start, Duration::from_secs(60));
        // A later wait with a nearer deadline moves it earlier.
        let now = Instant::now();
        let _ = t.within(now + Duration::from_secs(100), async {}).await;
        let r = t
            .within(now + Duration::from_secs(3), std::future::pending::<()>())
            .await;
        assert_eq!(r, Err(TimedOut));
        assert_eq!(Instant::now() - now, Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_finishes_in_time_is_not_cut() {
        let mut t = Timer::default();
        let start = Instant::now();
        let r = t
            .within(start + Duration::from_secs(5), async {
                tokio::time::sleep(Duration::from_secs(4)).await;
                "done"
            })
            .await;
        assert_eq!(r, Ok("done"));
        // The timer stays set for 5 s: a wait with a later deadline outlives it.
        let r = t
            .within(start + Duration::from_secs(20), async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "later"
            })
            .await;
        assert_eq!(r, Ok("later"));
        assert_eq!(Instant::now() - start, Duration::from_secs(14));
    }

    #[tokio::test(start_paused = true)]
    async fn after_counts_from_the_first_wait() {
        let mut t = Timer::default();
        assert_eq!(t.after(Duration::from_secs(2), async { 1 }).await, Ok(1));
        assert!(t.0.is_none(), "no timer for a wait that did not wait");
        tokio::time::sleep(Duration::from_secs(30)).await;
        let start = Instant::now();
        let r = t.after(Duration::from_secs(2), std::future::pending::<()>()).await;
        assert_eq!(r, Err(TimedOut));
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }
}
