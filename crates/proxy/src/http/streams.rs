//! Runs an HTTP/2 connection's streams inside the connection's own task
//! (hyper's executor hook) instead of spawning a task per stream.
//!
//! Why: with a task per stream, each stream that finishes wakes the
//! connection task, which tokio runs right away (its LIFO slot), so every
//! response goes out in its own TLS record and `writev`, even when ten came
//! back from the backends in the same poller tick. Polled here, the streams
//! that are ready all finish first and the connection then writes their
//! responses together; no task is spawned per request either. A stream
//! still gets its own waker (`FuturesUnordered`), so only woken streams
//! are polled.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use crossbeam_queue::SegQueue;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::task::AtomicWaker;

type Stream = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The streams running on one connection.
pub(crate) type Running = FuturesUnordered<Stream>;

/// hyper's executor for one connection: queues the streams hyper starts
/// (lock-free) for [`Streams::drive`] to poll.
#[derive(Clone, Default)]
pub(crate) struct Streams(Arc<Inbox>);

#[derive(Default)]
struct Inbox {
    new: SegQueue<Stream>,
    waker: AtomicWaker,
}

impl<F: Future<Output = ()> + Send + 'static> hyper::rt::Executor<F> for Streams {
    fn execute(&self, fut: F) {
        self.0.new.push(Box::pin(fut));
        self.0.waker.wake();
    }
}

impl Streams {
    /// Drives `conn` and the streams it starts (kept in `running`, so they
    /// outlive this future if it is dropped for a graceful shutdown).
    pub(crate) async fn drive<C: Future + Unpin>(&self, running: &mut Running, mut conn: C) -> C::Output {
        std::future::poll_fn(|cx| {
            self.0.waker.register(cx.waker());
            loop {
                while let Some(f) = self.0.new.pop() {
                    running.push(f);
                }
                // Streams first: what they finish goes out with the
                // connection's next write.
                while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
                if let Poll::Ready(out) = Pin::new(&mut conn).poll(cx) {
                    return Poll::Ready(out);
                }
                if self.0.new.is_empty() {
                    return Poll::Pending;
                }
            }
        })
        .await
    }
}
