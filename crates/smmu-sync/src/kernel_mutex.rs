//! Kernel sleeping locks (Linux's `struct mutex`) as the simulated kernel takes them: held
//! across scheduling points, each with its kernel name, and — under the schedule explorer — a
//! wait that can never end is returned as a [`Deadlock`] naming the tasks and locks involved,
//! instead of spinning until the explorer's step bound.
//!
//! A wait can never end when the holder has returned without releasing the lock (an error path
//! that forgot its unlock: [`KernelMutexGuard::leak`]) or when the holders wait for each other
//! in a cycle. The wait-for graph lives in a per-execution registry (the explorer runs an
//! execution's tasks as coroutines of one OS thread; [`crate::with_explorer`] clears it).
//! Outside the explorer the lock is a plain spinning mutex.

use crate::{current_task, under_explorer};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use thiserror::Error;

static NEXT_LOCK: AtomicU64 = AtomicU64::new(1);

#[derive(Default)]
struct Registry {
    /// Task id → the name it runs as.
    names: BTreeMap<usize, String>,
    /// Tasks that have returned.
    finished: BTreeSet<usize>,
    /// Lock id → (its name, the holding task).
    held: BTreeMap<u64, (String, usize)>,
    /// Task → the lock id it waits for.
    waiting: BTreeMap<usize, u64>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Forget every task and lock: a new execution starts.
pub(crate) fn reset_registry() {
    REGISTRY.with(|r| *r.borrow_mut() = Registry::default());
}

/// Name the calling task in deadlock verdicts (the explorer's task number otherwise).
pub fn set_task_name(name: &str) {
    if let Some(t) = current_task() {
        REGISTRY.with(|r| r.borrow_mut().names.insert(t, name.to_string()));
    }
}

/// The calling task has returned: a lock it still holds is never released.
pub(crate) fn task_finished() {
    if let Some(t) = current_task() {
        REGISTRY.with(|r| {
            let mut r = r.borrow_mut();
            r.finished.insert(t);
            r.waiting.remove(&t);
        });
    }
}

/// A wait for a kernel mutex that can never end.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("deadlock: {}", chain.join("; "))]
pub struct Deadlock {
    /// Who waits for what, held by whom, ending in why it never ends.
    pub chain: Vec<String>,
}

/// A kernel `struct mutex` with its name (`stream_map_mutex`, `group 0->mutex`).
#[derive(Debug)]
pub struct KernelMutex {
    id: u64,
    name: String,
    locked: AtomicBool,
}

/// Holding a [`KernelMutex`]; dropping it is `mutex_unlock`.
#[derive(Debug)]
#[must_use = "dropping the guard unlocks the mutex"]
pub struct KernelMutexGuard<'a> {
    m: &'a KernelMutex,
}

impl KernelMutex {
    /// An unlocked mutex called `name`.
    pub fn new(name: &str) -> KernelMutex {
        KernelMutex {
            id: NEXT_LOCK.fetch_add(1, Ordering::Relaxed),
            name: name.to_string(),
            locked: AtomicBool::new(false),
        }
    }

    /// Its kernel name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `mutex_lock`: waits (yielding) while another task holds it. Under the explorer a wait
    /// that can never end is `Err`, and the caller stops where the kernel would hang.
    pub fn lock(&self) -> Result<KernelMutexGuard<'_>, Deadlock> {
        loop {
            if self
                .locked
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                if let Some(me) = current_task() {
                    REGISTRY.with(|r| {
                        let mut r = r.borrow_mut();
                        r.waiting.remove(&me);
                        r.held.insert(self.id, (self.name.clone(), me));
                    });
                }
                return Ok(KernelMutexGuard { m: self });
            }
            if under_explorer() {
                if let Some(me) = current_task() {
                    let found = REGISTRY.with(|r| {
                        let mut r = r.borrow_mut();
                        r.waiting.insert(me, self.id);
                        let d = deadlock(&r, me, self.id);
                        if d.is_some() {
                            r.waiting.remove(&me);
                        }
                        d
                    });
                    if let Some(d) = found {
                        return Err(d);
                    }
                }
            }
            crate::thread::yield_now();
        }
    }

    /// Whether some task holds it.
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Acquire)
    }

    /// Put the mutex back to unlocked, whoever held it: for restoring a snapshot taken while
    /// it was unlocked, after a run that was abandoned while a task held it or that leaked it
    /// ([`KernelMutexGuard::leak`]). Only while no task runs that could still hold a guard of
    /// it; the explorer's record of holders is per execution and reset by
    /// [`crate::with_explorer`].
    pub fn reset_unlocked(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

impl KernelMutexGuard<'_> {
    /// Return without `mutex_unlock`: the lock stays held by this task for good (the
    /// missing-unlock error path of a kernel function).
    pub fn leak(self) {
        std::mem::forget(self);
    }
}

impl Drop for KernelMutexGuard<'_> {
    fn drop(&mut self) {
        if under_explorer() {
            REGISTRY.with(|r| r.borrow_mut().held.remove(&self.m.id));
        }
        self.m.locked.store(false, Ordering::Release);
    }
}

fn task_name(r: &Registry, t: usize) -> String {
    r.names
        .get(&t)
        .cloned()
        .unwrap_or_else(|| format!("task {t}"))
}

/// Why `me`'s wait for lock `lock` can never end, if it cannot.
fn deadlock(r: &Registry, me: usize, lock: u64) -> Option<Deadlock> {
    let mut chain = Vec::new();
    let (mut waiter, mut lock) = (me, lock);
    let mut seen = BTreeSet::new();
    loop {
        let (name, holder) = r.held.get(&lock)?.clone();
        chain.push(format!(
            "{} waits for {name}, held by {}",
            task_name(r, waiter),
            task_name(r, holder)
        ));
        if r.finished.contains(&holder) {
            chain.push(format!(
                "{} has returned without releasing it",
                task_name(r, holder)
            ));
            return Some(Deadlock { chain });
        }
        if holder == me {
            return Some(Deadlock { chain });
        }
        if !seen.insert(holder) {
            return None;
        }
        lock = *r.waiting.get(&holder)?;
        waiter = holder;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{thread, with_explorer, Arc};

    #[test]
    fn a_leaked_mutex_is_a_deadlock_naming_both_tasks() {
        shuttle::check_dfs(
            || {
                with_explorer(|| {
                    let m = Arc::new(KernelMutex::new("stream_map_mutex"));
                    let m2 = m.clone();
                    let a = thread::spawn(move || {
                        set_task_name("probe-a");
                        m2.lock().unwrap().leak();
                    });
                    a.join().unwrap();
                    set_task_name("probe-b");
                    let e = m.lock().unwrap_err();
                    assert_eq!(
                        e.to_string(),
                        "deadlock: probe-b waits for stream_map_mutex, held by probe-a; probe-a has returned without releasing it"
                    );
                })
            },
            None,
        );
    }

    #[test]
    fn an_unlocked_mutex_is_taken_in_turn() {
        shuttle::check_dfs(
            || {
                with_explorer(|| {
                    let m = Arc::new(KernelMutex::new("group 0->mutex"));
                    let n = Arc::new(crate::Mutex::new(0));
                    let (m2, n2) = (m.clone(), n.clone());
                    let a = thread::spawn(move || {
                        let g = m2.lock().unwrap();
                        crate::sched_point(crate::Point::Kernel);
                        *n2.lock() += 1;
                        drop(g);
                    });
                    let g = m.lock().unwrap();
                    *n.lock() += 1;
                    drop(g);
                    a.join().unwrap();
                    assert_eq!(*n.lock(), 2);
                    assert!(!m.is_locked());
                })
            },
            Some(2000),
        );
    }
}
