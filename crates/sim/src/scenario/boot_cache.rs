//! The explorer's booted-machine cache: each worker thread boots one machine per
//! configuration and, before every later schedule, restores it in place to the state it had at
//! the end of boot (ARCHITECTURE.md, "Snapshots are restored in place"). The boot and the
//! restore make no scheduling decision, so skipping the one for the other leaves every later
//! decision where it was; the cache checks that, and a machine that cannot be saved or
//! restored gives a scenario error, never a run on a machine in an unknown state. Both
//! machines (SMMUv2's and SMMUv3's) are cached the same way, through [`Reusable`].

use super::machine::{Machine, MachineSnapshot};
use super::{MachineSetupError, RebootConfig, RebootOutcome};
use crate::v3::V3Machine;
use crate::SnapshotError;
use smmu_sync::Arc;
use std::any::Any;
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

/// A machine the cache can keep: booted once, saved, restored in place before each later run.
pub(super) trait Reusable: Sized + 'static {
    /// Its whole state at one moment.
    type Snapshot: 'static;
    /// Boot `cfg`'s machine with scheduling points off; also how many times the boot entered
    /// the explorer's scheduler (it must be 0 for the machine to be cached).
    fn boot_prefix(cfg: &RebootConfig) -> Result<(Self, u64), MachineSetupError>;
    /// The machine's state now (taken at the end of boot).
    fn snapshot(&self) -> Result<Self::Snapshot, SnapshotError>;
    /// Put the machine back to `s` (refused for a snapshot of another machine).
    fn restore(&self, s: &Self::Snapshot) -> Result<(), SnapshotError>;
    /// The run after boot: the actors, the trigger, the verdict.
    fn run_booted(cfg: &RebootConfig, m: &Arc<Self>) -> Result<RebootOutcome, MachineSetupError>;
}

impl Reusable for Machine {
    type Snapshot = MachineSnapshot;
    fn boot_prefix(cfg: &RebootConfig) -> Result<(Self, u64), MachineSetupError> {
        super::boot_prefix(cfg)
    }
    fn snapshot(&self) -> Result<MachineSnapshot, SnapshotError> {
        Machine::snapshot(self)
    }
    fn restore(&self, s: &MachineSnapshot) -> Result<(), SnapshotError> {
        Machine::restore(self, s)
    }
    fn run_booted(cfg: &RebootConfig, m: &Arc<Self>) -> Result<RebootOutcome, MachineSetupError> {
        super::run_booted(cfg, m)
    }
}

impl Reusable for V3Machine {
    type Snapshot = crate::v3::V3Snapshot;
    fn boot_prefix(cfg: &RebootConfig) -> Result<(Self, u64), MachineSetupError> {
        let smmu = crate::v3::smmuv3_index(&cfg.board).ok_or(MachineSetupError::NoSmmu)?;
        crate::v3::boot_prefix(cfg, smmu)
    }
    fn snapshot(&self) -> Result<Self::Snapshot, SnapshotError> {
        V3Machine::snapshot(self)
    }
    fn restore(&self, s: &Self::Snapshot) -> Result<(), SnapshotError> {
        V3Machine::restore(self, s)
    }
    fn run_booted(cfg: &RebootConfig, m: &Arc<Self>) -> Result<RebootOutcome, MachineSetupError> {
        crate::v3::run_booted(cfg, m)
    }
}

/// A worker's booted machine and its state at the end of boot.
struct Booted<M: Reusable> {
    config: RebootConfig,
    machine: Arc<M>,
    snapshot: M::Snapshot,
}

thread_local! {
    /// This worker's machine (one, of either kind: a worker runs one scenario at a time). The
    /// explorer runs every task of an execution as a coroutine on its worker's thread, so this
    /// is per worker.
    static BOOTED: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    /// Restores made on this thread (see [`restores_on_this_thread`]).
    static RESTORES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many runs on this thread so far started from a restored machine instead of a boot
/// (lets a test see that the cache was used, not only that outputs agree).
pub fn restores_on_this_thread() -> u64 {
    RESTORES.with(|r| r.get())
}

/// [`super::run`], restoring this worker's booted machine instead of booting when it has one
/// of `cfg`.
pub(super) fn run_reusing(cfg: &RebootConfig) -> Result<RebootOutcome, MachineSetupError> {
    cfg.check()?;
    smmu_sync::clear_interrupt_hooks();
    crate::exec::forget_task_cpus();
    if crate::v3::smmuv3_index(&cfg.board).is_some() {
        reusing::<V3Machine>(cfg)
    } else {
        reusing::<Machine>(cfg)
    }
}

/// Restore `s` into `m` with scheduling points off, checking that it entered the explorer's
/// scheduler nowhere (a drop it makes writes registers and takes locks).
fn restore_unscheduled<M: Reusable>(m: &M, s: &M::Snapshot) -> Result<(), SnapshotError> {
    let before = smmu_sync::scheduler_entries();
    smmu_sync::without_sched_points(|| m.restore(s))?;
    match smmu_sync::scheduler_entries().wrapping_sub(before) {
        0 => Ok(()),
        entries => Err(SnapshotError::RestoreScheduled(entries)),
    }
}

fn reusing<M: Reusable>(cfg: &RebootConfig) -> Result<RebootOutcome, MachineSetupError> {
    // Taken out while it runs: a run that panics or fails to restore leaves no machine behind.
    let cached = match BOOTED
        .with(|b| b.borrow_mut().take())
        .map(|b| b.downcast::<Booted<M>>())
    {
        Some(Ok(b)) if b.config == *cfg => Some(b),
        Some(other) => {
            // Another configuration's machine (or the other kind) goes. Its drop frees domains
            // in its driver, and the register writes that makes must not become scheduling
            // decisions of this run.
            smmu_sync::without_sched_points(|| drop(other));
            None
        }
        None => None,
    };
    let booted = match cached {
        Some(b) => {
            restore_unscheduled(&*b.machine, &b.snapshot)?;
            RESTORES.with(|r| r.set(r.get() + 1));
            b
        }
        None => {
            let (machine, entries) = M::boot_prefix(cfg)?;
            if entries != 0 {
                return Err(SnapshotError::BootScheduled(entries).into());
            }
            let snapshot = machine.snapshot()?;
            Box::new(Booted {
                config: cfg.clone(),
                machine: Arc::new(machine),
                snapshot,
            })
        }
    };
    let outcome = M::run_booted(cfg, &booted.machine);
    // Every actor has been joined, so nothing else holds the machine; one that is still held
    // could be touched during the next restore, so it is not kept.
    if Arc::strong_count(&booted.machine) == 1 {
        BOOTED.with(|b| *b.borrow_mut() = Some(booted as Box<dyn Any>));
    }
    outcome
}
