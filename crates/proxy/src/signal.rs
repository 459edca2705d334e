//! One-way signals that many connections wait on (a backend's drain, the
//! data plane's stop), with no lock on the hot path.
//!
//! A `CancellationToken` waiter takes the token's mutex on every poll (its
//! `is_cancelled`, then the `Notified` waker update), and one token is
//! shared by every connection of a backend or of the whole data plane: a
//! relay watching it would take that shared lock on each wake-up. A
//! [`Signal`] pairs the token with a flag: a waiter registers its waker
//! once (again only if its task's waker changes), and each later poll is
//! one atomic load.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

#[derive(Debug, Default)]
pub struct Signal {
    raised: AtomicBool,
    token: CancellationToken,
}

impl Signal {
    /// Raises it (once; later calls do nothing more) and wakes every waiter.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Ready once the signal is raised.
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            signal: self,
            waker: None,
            fut: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Signal::wait`]'s future.
    pub struct Wait<'a> {
        signal: &'a Signal,
        // The waker the token holds for this waiter.
        waker: Option<Waker>,
        #[pin]
        fut: Option<WaitForCancellationFuture<'a>>,
    }
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if this.signal.is_raised() {
            return Poll::Ready(());
        }
        // Registered with this task already: `raise` will wake it.
        if this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        *this.waker = Some(cx.waker().clone());
        if this.fut.is_none() {
            this.fut.set(Some(this.signal.token.cancelled()));
        }
        match this.fut.as_pin_mut() {
            Some(f) => f.poll(cx),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_waiter_is_woken_by_the_raise() {
        let s = Arc::new(Signal::default());
        let waiting = tokio::spawn({
            let s = s.clone();
            async move {
                // Polled several times before the raise (the select's
                // other branch wakes it), so the later polls take the
                // registered path.
                let mut w = std::pin::pin!(s.wait());
                let mut ticks = 0;
                loop {
                    tokio::select! {
                        () = &mut w => return ticks,
                        () = tokio::time::sleep(Duration::from_millis(5)) => ticks += 1,
                    }
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        s.raise();
        let ticks = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the raise")
            .unwrap();
        assert!(ticks >= 2, "the waiter was polled while registered ({ticks} ticks)");
        assert!(s.is_raised());
    }

    #[tokio::test]
    async fn a_wait_begun_after_the_raise_is_ready_at_once() {
        let s = Signal::default();
        s.raise();
        s.raise();
        tokio::time::timeout(Duration::from_millis(100), s.wait())
            .await
            .expect("ready");
    }
}
