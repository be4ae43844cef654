//! The explorer's booted-machine cache: each worker thread boots one machine per
//! configuration and, before every later schedule, restores it in place to the state it had at
//! the end of boot (ARCHITECTURE.md, "Snapshots are restored in place"). The boot makes no
//! scheduling decision, so skipping it leaves every later decision where it was; the cache
//! checks that, and a machine that cannot be saved or restored gives a scenario error, never a
//! run on a machine in an unknown state.

use super::machine::{Machine, MachineSnapshot};
use super::{boot_prefix, run_booted, MachineSetupError, RebootConfig, RebootOutcome};
use crate::SnapshotError;
use smmu_sync::Arc;
use std::cell::RefCell;

/// Whether [`super::RebootScenario`] boots a machine for every schedule or reuses one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BootCache {
    /// Boot once per worker and configuration; restore the booted state before each later
    /// schedule.
    #[default]
    Reuse,
    /// Boot a new machine for every schedule.
    FreshEachRun,
}

/// A worker's booted machine and its state at the end of boot.
struct Booted {
    config: RebootConfig,
    machine: Arc<Machine>,
    snapshot: MachineSnapshot,
}

thread_local! {
    /// This worker's machine (one: a worker runs one scenario at a time). The explorer runs
    /// every task of an execution as a coroutine on its worker's thread, so this is per worker.
    static BOOTED: RefCell<Option<Booted>> = const { RefCell::new(None) };
    /// Restores made on this thread (see [`restores_on_this_thread`]).
    static RESTORES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many runs on this thread so far started from a restored machine instead of a boot
/// (lets a test see that the cache was used, not only that outputs agree).
pub fn restores_on_this_thread() -> u64 {
    RESTORES.with(|r| r.get())
}

/// [`super::run`], restoring this worker's booted machine instead of booting when it has one
/// of `cfg`. The SMMUv3 machine has no snapshot yet: it boots every run.
pub(super) fn run_reusing(cfg: &RebootConfig) -> Result<RebootOutcome, MachineSetupError> {
    cfg.check()?;
    smmu_sync::clear_interrupt_hooks();
    if let Some(smmu) = crate::v3::smmuv3_index(&cfg.board) {
        return crate::v3::run(cfg, smmu);
    }
    // Taken out while it runs: a run that panics or fails to restore leaves no machine behind.
    let cached = match BOOTED.with(|b| b.borrow_mut().take()) {
        Some(b) if b.config == *cfg => Some(b),
        Some(other) => {
            // Another configuration's machine goes. Its drop frees domains in its driver, and
            // the register writes that makes must not become scheduling decisions of this run.
            smmu_sync::without_sched_points(|| drop(other));
            None
        }
        None => None,
    };
    let booted = match cached {
        Some(b) => {
            b.machine.restore(&b.snapshot)?;
            RESTORES.with(|r| r.set(r.get() + 1));
            b
        }
        None => {
            let (machine, entries) = boot_prefix(cfg)?;
            if entries != 0 {
                return Err(SnapshotError::BootScheduled(entries).into());
            }
            let snapshot = machine.snapshot()?;
            Booted {
                config: cfg.clone(),
                machine: Arc::new(machine),
                snapshot,
            }
        }
    };
    let outcome = run_booted(cfg, &booted.machine);
    // Every actor has been joined, so nothing else holds the machine; one that is still held
    // could be touched during the next restore, so it is not kept.
    if Arc::strong_count(&booted.machine) == 1 {
        BOOTED.with(|b| *b.borrow_mut() = Some(booted));
    }
    outcome
}
