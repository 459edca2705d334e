//! When to probe next: pure functions of the interval and a uniform random
//! number in `[0, 1)`, so the spread is tested without clocks or sleeps.
//!
//! A new (or changed) target is probed at once; the second probe comes after
//! [`first_period`] (uniform over a whole interval, so thousands of targets
//! that started together — a restart, a big update — spread out instead of
//! firing in step forever); later probes come every [`period`] (±10%).

use std::ops::Add;
use std::time::Duration;

/// Relative jitter on every period after the second probe.
pub const JITTER: f64 = 0.1;

/// The delay before the second probe: `interval × [0.5, 1.5)`. The mean stays
/// one interval, the phase is uniform.
pub fn first_period(interval: Duration, u: f64) -> Duration {
    interval.mul_f64(0.5 + unit(u))
}

/// The delay between later probes: `interval × [0.9, 1.1)`.
pub fn period(interval: Duration, u: f64) -> Duration {
    interval.mul_f64(1.0 - JITTER + 2.0 * JITTER * unit(u))
}

/// The next due time: `due + period`, never in the past. A probe that had to
/// wait for a concurrency permit does not cause a catch-up burst.
pub fn next_due<I: Add<Duration, Output = I> + Ord>(due: I, period: Duration, now: I) -> I {
    (due + period).max(now)
}

fn unit(u: f64) -> f64 {
    if u.is_finite() { u.clamp(0.0, 1.0) } else { 0.5 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Duration = Duration::from_secs(10);

    #[test]
    fn first_period_spans_one_interval() {
        assert_eq!(first_period(I, 0.0), Duration::from_secs(5));
        assert_eq!(first_period(I, 0.5), I);
        assert_eq!(first_period(I, 1.0), Duration::from_secs(15));
    }

    #[test]
    fn period_is_within_ten_percent() {
        assert_eq!(period(I, 0.0), Duration::from_secs(9));
        assert_eq!(period(I, 0.5), I);
        assert_eq!(period(I, 1.0), Duration::from_secs(11));
        for u in [-1.0, 2.0, f64::NAN, f64::INFINITY] {
            let p = period(I, u);
            assert!(
                p >= Duration::from_secs(9) && p <= Duration::from_secs(11),
                "{u}: {p:?}"
            );
        }
    }

    #[test]
    fn next_due_never_in_the_past() {
        let d = Duration::from_secs;
        assert_eq!(next_due(d(100), d(10), d(101)), d(110));
        assert_eq!(next_due(d(100), d(10), d(125)), d(125));
    }

    #[test]
    fn uniform_inputs_spread_evenly() {
        // 1,000 targets with evenly spread random draws land in 10 buckets evenly.
        let mut buckets = [0u32; 10];
        for k in 0..1000 {
            let u = (k as f64 + 0.5) / 1000.0;
            let p = first_period(I, u).as_secs_f64();
            buckets[((p - 5.0) as usize).min(9)] += 1;
        }
        assert!(buckets.iter().all(|&n| n == 100), "{buckets:?}");
    }
}
