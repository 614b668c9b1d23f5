//! A simulated clock for replaying searches with several probes in flight: recorded runs answer
//! at once, so the order in which parallel probes finish (and the wall time a search would have
//! taken) comes from their recorded durations on this clock instead of from real time.

use std::future::Future;
use std::sync::Mutex;
use std::task::Poll;

use crate::driver::{ProbeLimits, Report, Runner};
use crate::space::{ConfigId, Space};

#[derive(Debug, Default)]
struct State {
    now: f64,
    /// (finish time, launch sequence) of every sleep not yet finished.
    running: Vec<(f64, u64)>,
    next: u64,
}

/// Simulated time in seconds, starting at 0.
///
/// [`VirtualClock::sleep`] starts a simulated wait at the current time; the returned future
/// completes only when no other running wait ends earlier (ties go to the one started first),
/// and moving past it advances the clock to its end. Every running wait must be polled by the
/// same task, as [`crate::drive`] does with the probes in flight: of the waits it polls, the
/// earliest always completes, so the drive never waits on real time.
#[derive(Debug, Default)]
pub struct VirtualClock {
    state: Mutex<State>,
}

impl VirtualClock {
    pub fn new() -> VirtualClock {
        VirtualClock::default()
    }

    /// Current simulated time in seconds.
    pub fn now(&self) -> f64 {
        self.state.lock().map(|s| s.now).unwrap_or(f64::NAN)
    }

    /// A wait of `duration_s` simulated seconds, started now (at the call, not the first poll).
    /// Resolves to the simulated time it ended at. A negative or non-finite duration counts as 0.
    pub fn sleep(&self, duration_s: f64) -> impl Future<Output = f64> + Send + '_ {
        let duration_s = if duration_s.is_finite() {
            duration_s.max(0.0)
        } else {
            0.0
        };
        let me = self.state.lock().ok().map(|mut s| {
            let me = (s.now + duration_s, s.next);
            s.next += 1;
            s.running.push(me);
            me
        });
        std::future::poll_fn(move |_cx| {
            let Some(me) = me else {
                return Poll::Ready(f64::NAN);
            };
            let Ok(mut s) = self.state.lock() else {
                return Poll::Ready(f64::NAN);
            };
            let first = s
                .running
                .iter()
                .copied()
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            if first == Some(me) {
                s.running.retain(|r| *r != me);
                s.now = s.now.max(me.0);
                Poll::Ready(s.now)
            } else {
                Poll::Pending
            }
        })
    }
}

/// A runner whose probes take simulated time: each answers as `inner` does, once `clock` has
/// run `duration_s(config)` seconds from its launch. Replays of recorded runs and of journals
/// use it, so probes in flight finish in the order their recorded durations give.
pub struct OnClock<'a, R, F> {
    inner: R,
    clock: &'a VirtualClock,
    duration_s: F,
}

impl<'a, R, F: Fn(ConfigId) -> f64> OnClock<'a, R, F> {
    pub fn new(inner: R, clock: &'a VirtualClock, duration_s: F) -> OnClock<'a, R, F> {
        OnClock {
            inner,
            clock,
            duration_s,
        }
    }
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: Runner + Sync, F: Fn(ConfigId) -> f64 + Sync> Runner for OnClock<'_, R, F> {
    fn run(
        &self,
        space: &Space,
        config: ConfigId,
        limits: &ProbeLimits,
    ) -> impl Future<Output = Report> + Send {
        let wait = self.clock.sleep((self.duration_s)(config));
        let probe = self.inner.run(space, config, limits);
        async move {
            let report = probe.await;
            wait.await;
            report
        }
    }

    fn worst_case_usd(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> f64 {
        self.inner.worst_case_usd(space, config, limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::{Context, Waker};

    #[test]
    fn waits_end_in_order_of_their_simulated_end() {
        let clock = VirtualClock::new();
        let mut a = pin!(clock.sleep(30.0));
        let mut b = pin!(clock.sleep(10.0));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(a.as_mut().poll(&mut cx).is_pending(), "b ends first");
        assert_eq!(b.as_mut().poll(&mut cx), Poll::Ready(10.0));
        assert_eq!(clock.now(), 10.0);
        // Started at 10, this one ends at 15: before a.
        let mut c = pin!(clock.sleep(5.0));
        assert!(a.as_mut().poll(&mut cx).is_pending());
        assert_eq!(c.as_mut().poll(&mut cx), Poll::Ready(15.0));
        assert_eq!(a.as_mut().poll(&mut cx), Poll::Ready(30.0));
        assert_eq!(clock.now(), 30.0);
        // Ties: first started, first done; a bad duration is an instant.
        let mut d = pin!(clock.sleep(f64::NAN));
        let mut e = pin!(clock.sleep(0.0));
        assert!(e.as_mut().poll(&mut cx).is_pending());
        assert_eq!(d.as_mut().poll(&mut cx), Poll::Ready(30.0));
        assert_eq!(e.as_mut().poll(&mut cx), Poll::Ready(30.0));
    }
}
