//! The clock every smmu-lab benchmark reads: the calling thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`).
//!
//! The development and CI machines have two cores shared with other jobs; wall time there
//! mostly measures the time slices given to other processes. Thread CPU time does not count
//! time spent descheduled (caches and the sibling hyperthread are still shared, so figures
//! still move a little with load). Set `BENCH_CLOCK=wall` to measure wall time instead (the
//! two agree on an idle machine).
//!
//! ```
//! let t = bench_clock::Timer::start();
//! let mut x = 0u64;
//! for i in 0..1000 {
//!     x = std::hint::black_box(x.wrapping_add(i));
//! }
//! assert!(t.elapsed() < std::time::Duration::from_secs(1));
//! ```

use std::time::Duration;

/// Which clock [`now`] reads, chosen once from `BENCH_CLOCK`.
fn wall() -> bool {
    static WALL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WALL.get_or_init(|| std::env::var_os("BENCH_CLOCK").is_some_and(|v| v == "wall"))
}

/// CPU time consumed by the calling thread (or, with `BENCH_CLOCK=wall`, time since a fixed
/// process-wide instant).
pub fn now() -> Duration {
    if wall() {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        return EPOCH.get_or_init(std::time::Instant::now).elapsed();
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass, which lives on our stack;
    // CLOCK_THREAD_CPUTIME_ID is supported on every Linux this project runs on.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Measures the time of a stretch of code on [`now`]'s clock.
#[derive(Debug, Clone, Copy)]
pub struct Timer(Duration);

impl Timer {
    /// Start measuring.
    pub fn start() -> Timer {
        Timer(now())
    }

    /// Time since [`Timer::start`].
    pub fn elapsed(&self) -> Duration {
        now().saturating_sub(self.0)
    }
}

/// Time `iters` runs of `f` (the shape criterion's `iter_custom` wants).
#[inline]
pub fn time_iters(iters: u64, mut f: impl FnMut()) -> Duration {
    let t = Timer::start();
    for _ in 0..iters {
        f();
    }
    t.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_advances_with_work_and_not_with_sleep() {
        let t = Timer::start();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x ^ i.wrapping_mul(0x9e37_79b9));
        }
        let busy = t.elapsed();
        assert!(busy > Duration::ZERO, "work costs CPU time");
        let t = Timer::start();
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            t.elapsed() < Duration::from_millis(25),
            "sleeping is not CPU time"
        );
    }
}
