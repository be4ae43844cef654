//! The one synchronisation facade of smmu-lab (architecture rule 3).
//!
//! Everything concurrent in `iommu`, `arm-smmu` and `sim` takes its locks, atomics, threads and
//! scheduling points from here and nowhere else. Today every item maps to `std`; the schedule
//! explorer (`explore`) swaps the implementation underneath so that the same driver, core and
//! simulator code runs under controlled interleavings. Callers must therefore use only what this
//! crate exports, and mark every point where a real CPU could be preempted in a way that matters
//! (an MMIO access, a DMA transaction, an interrupt) with [`sched_point`].
//!
//! Locks do not poison: a simulated kernel crash is a recorded event, not a Rust panic, so a
//! panic inside a critical section is a bug in smmu-lab and the data stays usable for reporting.

pub use std::sync::Arc;

/// Atomics, with the same names as `std::sync::atomic`.
pub mod atomic {
    pub use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
}

thread_local! {
    static UNDER_EXPLORER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether primitives created now on this thread belong to a schedule-explorer execution.
pub fn under_explorer() -> bool {
    UNDER_EXPLORER.with(|c| c.get())
}

/// Run `f` with every primitive it creates (locks, threads) and every [`sched_point`] it reaches
/// controlled by the schedule explorer (shuttle). Only the `explore` crate calls this, from inside
/// a shuttle execution; shuttle runs all its tasks as coroutines on the calling OS thread, so a
/// thread-local switch covers every simulated CPU. Objects must be created inside `f`.
pub fn with_explorer<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            UNDER_EXPLORER.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(UNDER_EXPLORER.with(|c| c.replace(true)));
    f()
}

/// A mutual-exclusion lock.
#[derive(Debug)]
pub struct Mutex<T> {
    inner: MutexImpl<T>,
}

#[derive(Debug)]
enum MutexImpl<T> {
    Shuttle(shuttle::sync::Mutex<T>),
    Std(std::sync::Mutex<T>),
}

/// Guard of a [`Mutex`].
pub enum MutexGuard<'a, T> {
    Std(std::sync::MutexGuard<'a, T>),
    Shuttle(shuttle::sync::MutexGuard<'a, T>),
}

impl<T> std::ops::Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            MutexGuard::Std(g) => g,
            MutexGuard::Shuttle(g) => g,
        }
    }
}

impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match self {
            MutexGuard::Std(g) => &mut *g,
            MutexGuard::Shuttle(g) => &mut *g,
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> Mutex<T> {
    pub fn new(value: T) -> Self {
        let inner = if under_explorer() {
            MutexImpl::Shuttle(shuttle::sync::Mutex::new(value))
        } else {
            MutexImpl::Std(std::sync::Mutex::new(value))
        };
        Mutex { inner }
    }

    pub fn into_inner(self) -> T {
        match self.inner {
            MutexImpl::Std(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
            MutexImpl::Shuttle(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
        }
    }
}

impl<T> Mutex<T> {
    pub fn lock(&self) -> MutexGuard<'_, T> {
        match &self.inner {
            MutexImpl::Std(m) => MutexGuard::Std(m.lock().unwrap_or_else(|p| p.into_inner())),
            MutexImpl::Shuttle(m) => {
                MutexGuard::Shuttle(m.lock().unwrap_or_else(|p| p.into_inner()))
            }
        }
    }

    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match &self.inner {
            MutexImpl::Std(m) => match m.try_lock() {
                Ok(g) => Some(MutexGuard::Std(g)),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(MutexGuard::Std(p.into_inner())),
                Err(std::sync::TryLockError::WouldBlock) => None,
            },
            MutexImpl::Shuttle(m) => match m.try_lock() {
                Ok(g) => Some(MutexGuard::Shuttle(g)),
                Err(std::sync::TryLockError::Poisoned(p)) => {
                    Some(MutexGuard::Shuttle(p.into_inner()))
                }
                Err(std::sync::TryLockError::WouldBlock) => None,
            },
        }
    }
}

/// A reader-writer lock.
#[derive(Debug)]
pub struct RwLock<T> {
    inner: RwLockImpl<T>,
}

#[derive(Debug)]
enum RwLockImpl<T> {
    Shuttle(shuttle::sync::RwLock<T>),
    Std(std::sync::RwLock<T>),
}

/// Shared guard of a [`RwLock`].
pub enum RwLockReadGuard<'a, T> {
    Std(std::sync::RwLockReadGuard<'a, T>),
    Shuttle(shuttle::sync::RwLockReadGuard<'a, T>),
}

/// Exclusive guard of a [`RwLock`].
pub enum RwLockWriteGuard<'a, T> {
    Std(std::sync::RwLockWriteGuard<'a, T>),
    Shuttle(shuttle::sync::RwLockWriteGuard<'a, T>),
}

impl<T> std::ops::Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            RwLockReadGuard::Std(g) => g,
            RwLockReadGuard::Shuttle(g) => g,
        }
    }
}

impl<T> std::ops::Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            RwLockWriteGuard::Std(g) => g,
            RwLockWriteGuard::Shuttle(g) => g,
        }
    }
}

impl<T> std::ops::DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match self {
            RwLockWriteGuard::Std(g) => &mut *g,
            RwLockWriteGuard::Shuttle(g) => &mut *g,
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> RwLock<T> {
    pub fn new(value: T) -> Self {
        let inner = if under_explorer() {
            RwLockImpl::Shuttle(shuttle::sync::RwLock::new(value))
        } else {
            RwLockImpl::Std(std::sync::RwLock::new(value))
        };
        RwLock { inner }
    }
}

impl<T> RwLock<T> {
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        match &self.inner {
            RwLockImpl::Std(l) => RwLockReadGuard::Std(l.read().unwrap_or_else(|p| p.into_inner())),
            RwLockImpl::Shuttle(l) => {
                RwLockReadGuard::Shuttle(l.read().unwrap_or_else(|p| p.into_inner()))
            }
        }
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        match &self.inner {
            RwLockImpl::Std(l) => {
                RwLockWriteGuard::Std(l.write().unwrap_or_else(|p| p.into_inner()))
            }
            RwLockImpl::Shuttle(l) => {
                RwLockWriteGuard::Shuttle(l.write().unwrap_or_else(|p| p.into_inner()))
            }
        }
    }
}

/// Threads (simulated CPUs and hardware engines run as threads).
pub mod thread {
    /// Handle to join a spawned thread.
    pub enum JoinHandle<T> {
        Std(std::thread::JoinHandle<T>),
        Shuttle(shuttle::thread::JoinHandle<T>),
    }

    impl<T> JoinHandle<T> {
        /// Wait for the thread; `Err` carries its panic payload.
        pub fn join(self) -> std::thread::Result<T> {
            match self {
                JoinHandle::Std(h) => h.join(),
                JoinHandle::Shuttle(h) => h.join(),
            }
        }
    }

    /// Spawn a thread running `f`.
    pub fn spawn<F, T>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if super::under_explorer() {
            JoinHandle::Shuttle(shuttle::thread::spawn(f))
        } else {
            JoinHandle::Std(std::thread::spawn(f))
        }
    }

    /// Let another thread run.
    pub fn yield_now() {
        if super::under_explorer() {
            shuttle::thread::yield_now()
        } else {
            std::thread::yield_now()
        }
    }
}

/// What kind of event a scheduling point stands for. The explorer may weigh or report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Point {
    /// A register read or write by a driver.
    Mmio,
    /// One DMA transaction through the SMMU.
    Dma,
    /// An interrupt raised or handled.
    Irq,
    /// A step of a kernel actor (a driver callback, a shutdown step).
    Kernel,
}

/// Mark a point where a real CPU could be preempted in a way that matters. Free on std threads;
/// a context-switch opportunity under the explorer. Never call it while holding a lock.
#[inline]
pub fn sched_point(_what: Point) {
    if under_explorer() {
        shuttle_engine::runtime::thread::continuation::switch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop_after_panic<G>(_g: G) -> ! {
        panic!("holder dies");
    }

    #[test]
    fn explorer_mode_runs_the_same_code_under_shuttle() {
        // Two threads increment under the facade's lock; under shuttle's DFS every interleaving
        // must give 2.
        shuttle::check_dfs(
            || {
                with_explorer(|| {
                    let m = Arc::new(Mutex::new(0));
                    let m2 = m.clone();
                    let t = thread::spawn(move || {
                        sched_point(Point::Kernel);
                        *m2.lock() += 1;
                    });
                    sched_point(Point::Kernel);
                    *m.lock() += 1;
                    t.join().unwrap();
                    assert_eq!(*m.lock(), 2);
                })
            },
            None,
        );
        assert!(!under_explorer());
    }

    #[test]
    fn lock_survives_a_panicking_holder() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let r = thread::spawn(move || {
            let mut g = m2.lock();
            *g = 2;
            drop_after_panic(g);
        })
        .join();
        assert!(r.is_err());
        assert_eq!(*m.lock(), 2);
    }

    #[test]
    fn rwlock_and_try_lock() {
        let l = RwLock::new(5);
        assert_eq!(*l.read(), 5);
        *l.write() = 6;
        assert_eq!(*l.read(), 6);
        let m = Mutex::new(());
        let g = m.lock();
        assert!(m.try_lock().is_none());
        drop(g);
        assert!(m.try_lock().is_some());
    }
}
