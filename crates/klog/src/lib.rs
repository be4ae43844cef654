//! The simulated kernel's log, shared by every layer that prints what Linux prints.
//!
//! A component never formats timestamps or keeps its own buffer: it calls [`Printk::printk`] with
//! a level and a finished line (`dev_printk` style lines via [`dev_line`]), and the sink decides
//! how to store and show it. The sink also owns the simulated clock, so rate limiting
//! ([`RateLimit`]) and timestamps come from simulated time, never the wall clock.

use smmu_sync::Mutex;

/// printk levels, as Linux numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Emerg = 0,
    Alert = 1,
    Crit = 2,
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

/// Where kernel log lines go.
pub trait Printk: Send + Sync {
    /// Record one finished line (no trailing newline).
    fn printk(&self, level: Level, line: &str);
    /// Simulated time in nanoseconds since boot.
    fn now_ns(&self) -> u64;
}

/// `dev_printk` formatting: `"<driver or bus> <device name>: <message>"`.
pub fn dev_line(dev_prefix: &str, msg: &str) -> String {
    format!("{dev_prefix}: {msg}")
}

/// One recorded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time_ns: u64,
    pub level: Level,
    pub line: String,
}

/// A log that keeps every line in memory with a manually advanced clock: the sink for tests and
/// for anything that wants the lines back.
#[derive(Debug, Default)]
pub struct MemLog {
    inner: Mutex<(u64, Vec<Record>)>,
}

impl MemLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Advance simulated time.
    pub fn advance_ns(&self, ns: u64) {
        self.inner.lock().0 += ns;
    }

    pub fn records(&self) -> Vec<Record> {
        self.inner.lock().1.clone()
    }

    /// Just the text of every line.
    pub fn lines(&self) -> Vec<String> {
        self.inner.lock().1.iter().map(|r| r.line.clone()).collect()
    }

    pub fn clear(&self) {
        self.inner.lock().1.clear()
    }
}

impl Printk for MemLog {
    fn printk(&self, level: Level, line: &str) {
        let mut g = self.inner.lock();
        let t = g.0;
        g.1.push(Record {
            time_ns: t,
            level,
            line: line.to_string(),
        });
    }

    fn now_ns(&self) -> u64 {
        self.inner.lock().0
    }
}

/// Linux's `___ratelimit`: at most `burst` events per `interval_ns`, judged on simulated time.
/// The default is the kernel's DEFAULT_RATELIMIT_INTERVAL (5 s) and BURST (10).
#[derive(Debug)]
pub struct RateLimit {
    interval_ns: u64,
    burst: u32,
    state: Mutex<RateState>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct RateState {
    begin_ns: Option<u64>,
    printed: u32,
    missed: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new(5_000_000_000, 10)
    }
}

impl RateLimit {
    pub fn new(interval_ns: u64, burst: u32) -> Self {
        RateLimit {
            interval_ns,
            burst,
            state: Mutex::new(RateState::default()),
        }
    }

    /// Whether an event at `now_ns` may print.
    pub fn allow(&self, now_ns: u64) -> bool {
        let mut s = self.state.lock();
        let begin = *s.begin_ns.get_or_insert(now_ns);
        if now_ns.saturating_sub(begin) >= self.interval_ns {
            s.begin_ns = Some(now_ns);
            s.printed = 0;
            s.missed = 0;
        }
        if s.printed < self.burst {
            s.printed += 1;
            true
        } else {
            s.missed += 1;
            false
        }
    }

    /// Events suppressed in the current interval.
    pub fn missed(&self) -> u32 {
        self.state.lock().missed
    }

    /// The limiter's state now (interval start and counts), for the schedule explorer's
    /// booted-machine snapshot, restored in place by [`RateLimit::restore`].
    pub fn snapshot(&self) -> RateLimitSnapshot {
        RateLimitSnapshot {
            interval_ns: self.interval_ns,
            burst: self.burst,
            state: self.state.lock().clone(),
        }
    }

    /// Put the state of `s` back. Refused, changing nothing, when `s` is of a limiter with
    /// another interval or burst.
    pub fn restore(&self, s: &RateLimitSnapshot) -> Result<(), RateLimitSnapshotError> {
        self.snapshot_fits(s)?;
        self.state.lock().clone_from(&s.state);
        Ok(())
    }

    /// Whether [`RateLimit::restore`] would take `s`: the error it would refuse it with.
    pub fn snapshot_fits(&self, s: &RateLimitSnapshot) -> Result<(), RateLimitSnapshotError> {
        if (s.interval_ns, s.burst) != (self.interval_ns, self.burst) {
            return Err(RateLimitSnapshotError {
                snapshot: (s.interval_ns, s.burst),
                limit: (self.interval_ns, self.burst),
            });
        }
        Ok(())
    }
}

/// A [`RateLimit`]'s state at one moment ([`RateLimit::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSnapshot {
    interval_ns: u64,
    burst: u32,
    state: RateState,
}

/// A [`RateLimitSnapshot`] of a limiter with another (interval, burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("snapshot of a rate limit of {} events per {} ns restored into one of {} per {} ns", snapshot.1, snapshot.0, limit.1, limit.0)]
pub struct RateLimitSnapshotError {
    /// (interval in ns, burst) of the snapshot's limiter.
    pub snapshot: (u64, u32),
    /// (interval in ns, burst) of the limiter restored into.
    pub limit: (u64, u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlog_keeps_lines_with_simulated_time() {
        let log = MemLog::new();
        log.printk(
            Level::Notice,
            &dev_line("arm-smmu 5000000.iommu", "disabling translation"),
        );
        log.advance_ns(1500);
        log.printk(Level::Info, "x");
        let r = log.records();
        assert_eq!(r[0].line, "arm-smmu 5000000.iommu: disabling translation");
        assert_eq!((r[0].time_ns, r[1].time_ns), (0, 1500));
    }

    #[test]
    fn ratelimit_allows_burst_per_interval() {
        let rl = RateLimit::default();
        let allowed = (0..15).filter(|_| rl.allow(1000)).count();
        assert_eq!(allowed, 10);
        assert_eq!(rl.missed(), 5);
        assert!(!rl.allow(4_999_999_999));
        assert!(rl.allow(5_000_001_000));
    }

    #[test]
    fn a_restored_ratelimit_continues_as_one_that_never_left() {
        let (rl, twin) = (RateLimit::default(), RateLimit::default());
        for r in [&rl, &twin] {
            (0..7).for_each(|_| {
                r.allow(1000);
            });
        }
        let snap = rl.snapshot();
        // Abandoned: use up the burst and start a new interval.
        (0..20).for_each(|_| {
            rl.allow(2000);
        });
        rl.allow(6_000_000_000);
        rl.restore(&snap).unwrap();
        let a: Vec<bool> = (0..6).map(|i| rl.allow(3000 + i)).collect();
        let b: Vec<bool> = (0..6).map(|i| twin.allow(3000 + i)).collect();
        assert_eq!(a, b);
        assert_eq!(a, [true, true, true, false, false, false]);
        assert_eq!(rl.missed(), twin.missed());
        let other = RateLimit::new(1_000, 10);
        assert_eq!(
            other.restore(&snap).unwrap_err().to_string(),
            "snapshot of a rate limit of 10 events per 5000000000 ns restored into one of 10 per 1000 ns"
        );
        assert!(other.allow(0));
    }
}
