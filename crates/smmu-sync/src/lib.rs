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

/// A mutual-exclusion lock.
#[derive(Debug, Default)]
pub struct Mutex<T: ?Sized> {
    inner: std::sync::Mutex<T>,
}

/// Guard of a [`Mutex`].
pub type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Mutex {
            inner: std::sync::Mutex::new(value),
        }
    }

    pub fn into_inner(self) -> T {
        self.inner.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T: ?Sized> Mutex<T> {
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.inner.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// A reader-writer lock.
#[derive(Debug, Default)]
pub struct RwLock<T: ?Sized> {
    inner: std::sync::RwLock<T>,
}

pub type RwLockReadGuard<'a, T> = std::sync::RwLockReadGuard<'a, T>;
pub type RwLockWriteGuard<'a, T> = std::sync::RwLockWriteGuard<'a, T>;

impl<T> RwLock<T> {
    pub const fn new(value: T) -> Self {
        RwLock {
            inner: std::sync::RwLock::new(value),
        }
    }
}

impl<T: ?Sized> RwLock<T> {
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Threads (simulated CPUs and hardware engines run as threads).
pub mod thread {
    pub use std::thread::JoinHandle;

    /// Spawn a thread running `f`.
    pub fn spawn<F, T>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        std::thread::spawn(f)
    }

    /// Let another thread run.
    pub fn yield_now() {
        std::thread::yield_now()
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
/// a context-switch opportunity under the explorer.
#[inline]
pub fn sched_point(_what: Point) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_survives_a_panicking_holder() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let r = thread::spawn(move || {
            let mut g = m2.lock();
            *g = 2;
            panic!("holder dies");
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
