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

mod kernel_mutex;
pub use kernel_mutex::{set_task_name, Deadlock, KernelMutex, KernelMutexGuard};
mod spin_irq;
pub use spin_irq::{SpinLockIrq, SpinLockIrqGuard};

/// Atomics, with the same names as `std::sync::atomic`.
pub mod atomic {
    pub use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
}

thread_local! {
    /// This thread's switches, one bit each (`EXPLORER`, `POINTS_OFF`, `HAS_HOOKS`), in one
    /// word: a [`sched_point`] on a plain std thread with no hook costs one load of it. A `Cell`
    /// of a `Copy` value with a const initialiser has no destructor, so reading it needs no
    /// lazy-registration check (a thread-local `RefCell<Vec<_>>` does, on every access).
    static FLAGS: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
    /// Interrupt hooks by task (see [`set_interrupt_hook`]): (task id, hook, nesting depth).
    /// `FLAGS` has `HAS_HOOKS` set exactly while this is not empty.
    static HOOKS: std::cell::RefCell<Vec<(usize, InterruptHook, u8)>> =
        const { std::cell::RefCell::new(Vec::new()) };
    /// Interrupt-mask hooks by task (see [`set_irq_mask_hook`]).
    static MASK_HOOKS: std::cell::RefCell<Vec<(usize, IrqMaskHook)>> =
        const { std::cell::RefCell::new(Vec::new()) };
    /// How many times this thread's tasks handed control to the explorer's scheduler (see
    /// [`scheduler_entries`]).
    static SCHED_ENTRIES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many times the tasks of this thread have entered the explorer's scheduler so far (a
/// scheduling point, a spawn, a yield or a contended lock under the explorer; every one of them
/// may draw from the scheduler's generator). Work that leaves it unchanged made no scheduling
/// decision, so skipping it leaves every later decision where it was: the explorer's
/// booted-machine cache checks its boot with it.
pub fn scheduler_entries() -> u64 {
    SCHED_ENTRIES.with(|c| c.get())
}

/// Count one entry into the explorer's scheduler.
fn entering_scheduler() {
    SCHED_ENTRIES.with(|c| c.set(c.get().wrapping_add(1)));
}

/// `FLAGS` bit: primitives created now belong to a schedule-explorer execution.
const EXPLORER: u8 = 1;
/// `FLAGS` bit: [`sched_point`] does nothing (inside [`without_sched_points`]).
const POINTS_OFF: u8 = 2;
/// `FLAGS` bit: some task of this thread has an interrupt hook.
const HAS_HOOKS: u8 = 4;

#[inline]
fn flags() -> u8 {
    FLAGS.with(|f| f.get())
}

/// Set `bit` of this thread's flags to `on`; returns whether it was set before.
fn set_flag(bit: u8, on: bool) -> bool {
    FLAGS.with(|f| {
        let old = f.get();
        f.set(if on { old | bit } else { old & !bit });
        old & bit != 0
    })
}

/// What a simulated CPU does at a scheduling point of the code it runs: take the interrupts
/// pending for it.
pub type InterruptHook = Arc<dyn Fn() + Send + Sync>;

fn task_key() -> usize {
    current_task().unwrap_or(0)
}

/// Install (or with `None` remove) the calling task's interrupt hook: from now on every
/// [`sched_point`] this task reaches runs the hook after the switch, as a CPU takes a pending
/// interrupt at any instruction where its interrupts are enabled. The hook's own scheduling
/// points may run it again, nested at most [`MAX_HOOK_NESTING`] deep (an interrupt taken
/// during a softirq that an interrupt's exit started); the hook decides what may nest. Remove
/// it before the task ends.
pub fn set_interrupt_hook(hook: Option<InterruptHook>) {
    let key = task_key();
    HOOKS.with(|h| {
        let mut h = h.borrow_mut();
        h.retain(|(k, _, _)| *k != key);
        if let Some(f) = hook {
            h.push((key, f, 0));
        }
        set_flag(HAS_HOOKS, !h.is_empty());
    });
}

/// How deep an interrupt hook may nest in itself.
pub const MAX_HOOK_NESTING: u8 = 2;

/// Remove every interrupt hook and interrupt-mask hook of this thread's tasks (a new execution
/// starts).
pub fn clear_interrupt_hooks() {
    HOOKS.with(|h| h.borrow_mut().clear());
    MASK_HOOKS.with(|h| h.borrow_mut().clear());
    set_flag(HAS_HOOKS, false);
}

/// What a simulated CPU does when the code it runs masks (`true`) or unmasks (`false`) its
/// interrupts.
pub type IrqMaskHook = Arc<dyn Fn(bool) + Send + Sync>;

/// Install (or with `None` remove) the calling task's interrupt-mask hook: the CPU the task
/// runs on, told by [`local_irq_save`] and its guard's drop. Remove it before the task ends.
pub fn set_irq_mask_hook(hook: Option<IrqMaskHook>) {
    let key = task_key();
    MASK_HOOKS.with(|h| {
        let mut h = h.borrow_mut();
        h.retain(|(k, _)| *k != key);
        if let Some(f) = hook {
            h.push((key, f));
        }
    });
}

/// `local_irq_save`: the calling task's CPU takes no interrupt until the returned guard is
/// dropped (`local_irq_restore`); an interrupt that comes meanwhile stays pending. Nests. A task
/// with no mask hook (no simulated CPU under it) masks nothing.
#[must_use = "interrupts are unmasked again when the guard is dropped"]
pub fn local_irq_save() -> IrqsOff {
    let key = task_key();
    let hook = MASK_HOOKS.with(|h| {
        h.borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, f)| f.clone())
    });
    if let Some(f) = &hook {
        f(true);
    }
    IrqsOff { hook }
}

/// Interrupts masked on the CPU of the task that called [`local_irq_save`]; dropping it is
/// `local_irq_restore`, told to the same CPU.
pub struct IrqsOff {
    hook: Option<IrqMaskHook>,
}

impl Drop for IrqsOff {
    fn drop(&mut self) {
        if let Some(f) = self.hook.take() {
            f(false);
        }
    }
}

/// Run the calling task's interrupt hook, if it has one and is not inside it already.
fn run_interrupt_hook() {
    let key = task_key();
    let hook = HOOKS.with(|h| {
        let mut h = h.borrow_mut();
        let e = h.iter_mut().find(|(k, _, _)| *k == key)?;
        if e.2 >= MAX_HOOK_NESTING {
            return None;
        }
        e.2 += 1;
        Some(e.1.clone())
    });
    let Some(f) = hook else { return };
    f();
    HOOKS.with(|h| {
        if let Some(e) = h.borrow_mut().iter_mut().find(|(k, _, _)| *k == key) {
            e.2 = e.2.saturating_sub(1);
        }
    });
}

/// The explorer's id of the running task (0 for the task that started the execution, then
/// in spawn order); `None` outside the explorer. Lets a simulator say which simulated CPU did
/// something.
pub fn current_task() -> Option<usize> {
    if under_explorer() {
        Some(usize::from(shuttle::current::me()))
    } else {
        None
    }
}

/// Run `f` with [`sched_point`] turned into a no-op on this thread: for set-up work that no
/// other actor can observe yet (booting the simulated machine before its CPUs start), so the
/// explorer does not spend decisions there.
pub fn without_sched_points<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            set_flag(POINTS_OFF, self.0);
        }
    }
    let _reset = Reset(set_flag(POINTS_OFF, true));
    f()
}

/// Whether primitives created now on this thread belong to a schedule-explorer execution.
// Inlined: every lock and scheduling point asks, on paths as short as a TLB hit.
#[inline]
pub fn under_explorer() -> bool {
    flags() & EXPLORER != 0
}

/// Run `f` with every primitive it creates (locks, threads) and every [`sched_point`] it reaches
/// controlled by the schedule explorer (shuttle). Only the `explore` crate calls this, from inside
/// a shuttle execution; shuttle runs all its tasks as coroutines on the calling OS thread, so a
/// thread-local switch covers every simulated CPU. Objects must be created inside `f`.
pub fn with_explorer<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            set_flag(EXPLORER, self.0);
        }
    }
    let _reset = Reset(set_flag(EXPLORER, true));
    kernel_mutex::reset_registry();
    f()
}

/// Under the explorer a lock that is taken waits by yielding to shuttle, so the holder (a
/// suspended coroutine on the same OS thread) can run. An uncontended lock is not a scheduling
/// point: interleavings are explored at the [`sched_point`]s that model real preemption
/// (MMIO, DMA, interrupts, kernel steps), which keeps runs short enough to try thousands per
/// second. A deadlock shows up as a run that exceeds the explorer's step bound.
fn contended() {
    if under_explorer() {
        entering_scheduler();
        shuttle::thread::yield_now();
    } else {
        std::thread::yield_now();
    }
}

/// A mutual-exclusion lock.
#[derive(Debug, Default)]
pub struct Mutex<T> {
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

    pub fn lock(&self) -> MutexGuard<'_, T> {
        if !under_explorer() {
            return self.inner.lock().unwrap_or_else(|p| p.into_inner());
        }
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            contended();
        }
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
pub struct RwLock<T> {
    inner: std::sync::RwLock<T>,
}

/// Shared guard of a [`RwLock`].
pub type RwLockReadGuard<'a, T> = std::sync::RwLockReadGuard<'a, T>;
/// Exclusive guard of a [`RwLock`].
pub type RwLockWriteGuard<'a, T> = std::sync::RwLockWriteGuard<'a, T>;

impl<T> RwLock<T> {
    pub const fn new(value: T) -> Self {
        RwLock {
            inner: std::sync::RwLock::new(value),
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        if !under_explorer() {
            return self.inner.read().unwrap_or_else(|p| p.into_inner());
        }
        loop {
            match self.inner.try_read() {
                Ok(g) => return g,
                Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => contended(),
            }
        }
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        if !under_explorer() {
            return self.inner.write().unwrap_or_else(|p| p.into_inner());
        }
        loop {
            match self.inner.try_write() {
                Ok(g) => return g,
                Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => contended(),
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
            super::entering_scheduler();
            JoinHandle::Shuttle(shuttle::thread::spawn(move || {
                let r = f();
                super::kernel_mutex::task_finished();
                r
            }))
        } else {
            JoinHandle::Std(std::thread::spawn(f))
        }
    }

    /// Let another thread run.
    pub fn yield_now() {
        if super::under_explorer() {
            super::entering_scheduler();
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
///
/// On a std thread without interrupt hooks (every device's DMA in a benchmark, a TLB hit
/// through a port) this is one thread-local load and a branch; the rest is out of line.
#[inline]
pub fn sched_point(_what: Point) {
    let f = flags();
    if f != 0 {
        sched_point_slow(f);
    }
}

/// [`sched_point`] when some flag is set: points turned off, the explorer, or a hook.
#[inline(never)]
fn sched_point_slow(f: u8) {
    if f & POINTS_OFF != 0 {
        return;
    }
    if f & EXPLORER != 0 {
        entering_scheduler();
        shuttle_engine::runtime::thread::continuation::switch()
    }
    // Read again: the tasks that ran during the switch may have installed or removed hooks.
    if flags() & HAS_HOOKS != 0 {
        run_interrupt_hook();
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
                    assert_eq!(current_task(), Some(0));
                })
            },
            None,
        );
        assert!(!under_explorer());
    }

    #[test]
    fn scheduler_entries_count_what_may_draw_a_decision_and_nothing_else() {
        shuttle::check_dfs(
            || {
                with_explorer(|| {
                    let start = scheduler_entries();
                    // Turned-off points, uncontended locks: no entry.
                    without_sched_points(|| {
                        sched_point(Point::Mmio);
                        sched_point(Point::Dma);
                    });
                    let m = Mutex::new(0);
                    *m.lock() += 1;
                    assert_eq!(scheduler_entries(), start);
                    // A point, a yield, a spawn: one entry each.
                    sched_point(Point::Kernel);
                    assert_eq!(scheduler_entries(), start + 1);
                    thread::yield_now();
                    assert_eq!(scheduler_entries(), start + 2);
                    let t = thread::spawn(|| {});
                    assert_eq!(scheduler_entries(), start + 3);
                    t.join().unwrap();
                })
            },
            None,
        );
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
    fn a_lock_held_across_a_point_is_waited_for_under_the_explorer() {
        // Task A holds the lock across a scheduling point; B must wait by yielding, never block
        // the one OS thread shuttle runs both on. (Random, not DFS: shuttle's DFS would also
        // explore a waiter spinning forever.)
        shuttle::check_random(
            || {
                with_explorer(|| {
                    let m = Arc::new(Mutex::new(Vec::new()));
                    let rw = Arc::new(RwLock::new(0));
                    let (m2, rw2) = (m.clone(), rw.clone());
                    let t = thread::spawn(move || {
                        let mut g = m2.lock();
                        let w = rw2.write();
                        sched_point(Point::Kernel);
                        g.push("a");
                        drop(w);
                    });
                    sched_point(Point::Kernel);
                    let _r = *rw.read();
                    m.lock().push("b");
                    t.join().unwrap();
                    let mut v = m.lock().clone();
                    v.sort();
                    assert_eq!(v, vec!["a", "b"]);
                })
            },
            300,
        );
    }

    #[test]
    fn a_hook_runs_at_each_point_until_removed_and_never_with_points_off() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let count = move || runs.load(Ordering::Relaxed);
        thread::spawn(move || {
            assert_eq!(flags(), 0);
            sched_point(Point::Dma);
            set_interrupt_hook(Some(Arc::new(move || {
                r.fetch_add(1, Ordering::Relaxed);
            })));
            sched_point(Point::Dma);
            sched_point(Point::Mmio);
            assert_eq!(count(), 2);
            without_sched_points(|| sched_point(Point::Dma));
            assert_eq!(count(), 2);
            assert_eq!(flags(), HAS_HOOKS, "points back on after the closure");
            set_interrupt_hook(None);
            assert_eq!(flags(), 0);
            sched_point(Point::Dma);
            assert_eq!(count(), 2);
            set_interrupt_hook(Some(Arc::new(|| {})));
            clear_interrupt_hooks();
            assert_eq!(flags(), 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn irq_save_tells_the_tasks_cpu_and_its_guard_restores_it() {
        use std::sync::atomic::{AtomicI32, Ordering};
        thread::spawn(|| {
            // No hook: nothing to tell.
            drop(local_irq_save());
            let depth = Arc::new(AtomicI32::new(0));
            let d = depth.clone();
            set_irq_mask_hook(Some(Arc::new(move |on| {
                d.fetch_add(if on { 1 } else { -1 }, Ordering::Relaxed);
            })));
            let outer = local_irq_save();
            let inner = local_irq_save();
            assert_eq!(depth.load(Ordering::Relaxed), 2);
            // The guard keeps the CPU it masked: removing the hook does not lose the restore.
            set_irq_mask_hook(None);
            drop(inner);
            assert_eq!(depth.load(Ordering::Relaxed), 1);
            drop(outer);
            assert_eq!(depth.load(Ordering::Relaxed), 0);
            drop(local_irq_save());
            assert_eq!(depth.load(Ordering::Relaxed), 0);
            set_irq_mask_hook(Some(Arc::new(|_| panic!("cleared"))));
            clear_interrupt_hooks();
            drop(local_irq_save());
        })
        .join()
        .unwrap();
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
