//! The booted machine saved and put back in place: what the explorer's boot cache restores
//! before every schedule (ARCHITECTURE.md, "Snapshots are restored in place").
//!
//! Every component's mutable state is saved by the component itself; this file gathers them.
//! The objects, the `Arc`s between them and the closures that wire them (interrupt handlers,
//! the context-release hook, reboot notifiers, the NIC's bus-master check) are the machine's
//! and stay; only state moves. Restore while no actor runs.

use super::{Machine, SavedParts};
use crate::dma_engine::EngineSnapshot;
use crate::dmesg::DmesgSnapshot;
use crate::enetc::{Crash, EnetcSnapshot};
use crate::exec::ExecSnapshot;
use crate::firmware::FallbackRequest;
use crate::kernel::KernelSnapshot;
use crate::scenario::timeline::TimelineEvent;
use crate::snapshot::SameArcs;
use crate::{DeviceIndex, Kernel, SnapshotError};
use arm_smmu::ArmSmmu;
use mmu500::ModelSnapshot;
use physmem::{AllocSnapshot, MemSnapshot};
use smmu_arch::FaultIrq;
use smmu_sync::atomic::Ordering;
use smmu_sync::Arc;
use std::collections::BTreeMap;
use std::sync::Weak;

/// The whole booted machine at one moment ([`Machine::snapshot`]).
pub(in crate::scenario) struct MachineSnapshot {
    /// The machine it was taken of (its kernel's identity; weak, so a snapshot keeps nothing
    /// alive).
    of: Weak<Kernel>,
    /// Simulated memory (page tables, descriptor rings, buffers written) and its pools.
    mem: MemSnapshot,
    pools: Vec<AllocSnapshot>,
    /// Each MMU-500 model (registers, TLBs, counters).
    models: Vec<ModelSnapshot>,
    /// sim's own components.
    sim: SimSnapshot,
    /// The driver and core layers.
    layers: LayerSnapshot,
}

/// The driver and core layers: the IOMMU core (groups, domains, IOVA allocators, DMA state,
/// their kernel mutexes) and each boot-time arm-smmu instance (domains with their page-table
/// objects, stream and context maps, rate limits, `stream_map_mutex`).
struct LayerSnapshot {
    core: iommu::CoreSnapshot,
    smmus: Vec<arm_smmu::ArmSmmuSnapshot>,
}

/// sim's own components: the kernel, the CPUs, the log, the timeline, the firmware loader,
/// the masters' models and drivers, and the machine's own fields.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::scenario) struct SimSnapshot {
    kernel: KernelSnapshot,
    exec: ExecSnapshot,
    log: DmesgSnapshot,
    timeline: (bool, Vec<TimelineEvent>),
    firmware: Vec<FallbackRequest>,
    nic: Option<EnetcSnapshot>,
    engines: Vec<EngineSnapshot>,
    retired: Vec<BTreeMap<u16, u64>>,
    iommu_ids: BTreeMap<DeviceIndex, iommu::DeviceId>,
    mmio_log: Option<(Vec<String>, bool)>,
    trigger_done: bool,
    crash: Option<Crash>,
    kasan_reported: u64,
    mld_armed: bool,
    pending_irqs: Vec<(usize, FaultIrq)>,
    /// The arm-smmu instance of each SMMU (a kexec replaces them with the next kernel's).
    drivers: SameArcs<ArmSmmu>,
    new_kernel: bool,
}

impl Machine {
    /// The whole machine now. Take it at the end of boot, before any actor starts.
    pub(in crate::scenario) fn snapshot(&self) -> Result<MachineSnapshot, SnapshotError> {
        let SavedParts {
            mem, pools, core, ..
        } = &self.saved;
        let layers = LayerSnapshot {
            core: core.snapshot()?,
            smmus: self
                .drivers
                .lock()
                .iter()
                .map(|d| d.snapshot())
                .collect::<Result<_, _>>()?,
        };
        Ok(MachineSnapshot {
            of: Arc::downgrade(&self.kernel),
            mem: mem.snapshot(),
            pools: pools.iter().map(|p| p.snapshot()).collect(),
            models: self.models().map(|m| m.snapshot()).collect(),
            sim: self.snapshot_sim(),
            layers,
        })
    }

    /// Put the whole machine back to `s`. Refused, changing nothing, when `s` was taken of
    /// another machine; any other refusal leaves the machine in an unknown state: the caller
    /// must not run it again.
    ///
    /// Order matters because restores drop what a run made: sim's part first (it drops the
    /// arm-smmu instances a kexec's next kernel probed), then the driver and core layers (they
    /// drop the domains and page tables a run made, which frees frames and writes SMMU
    /// registers), and only then the MMU-500 models, the frame pools and the memory, whose
    /// restores overwrite what those drops did.
    pub(in crate::scenario) fn restore(&self, s: &MachineSnapshot) -> Result<(), SnapshotError> {
        if !std::ptr::eq(s.of.as_ptr(), Arc::as_ptr(&self.kernel)) {
            return Err(SnapshotError::OtherMachine);
        }
        self.restore_sim(&s.sim)?;
        // The core first: the domains a run made that it drops are freed in arm-smmu, whose
        // restore then puts its own state back.
        self.saved.core.restore(&s.layers.core)?;
        let drivers = self.drivers.lock().clone();
        if drivers.len() != s.layers.smmus.len() {
            return Err(SnapshotError::Shape {
                component: "arm-smmu",
                what: "instances",
                snapshot: s.layers.smmus.len(),
                live: drivers.len(),
            });
        }
        for (d, saved) in drivers.iter().zip(&s.layers.smmus) {
            d.restore(saved)?;
        }
        let models: Vec<_> = self.models().collect();
        if models.len() != s.models.len() {
            return Err(SnapshotError::Shape {
                component: "MMU-500 models",
                what: "models",
                snapshot: s.models.len(),
                live: models.len(),
            });
        }
        for (m, saved) in models.iter().zip(&s.models) {
            m.restore(saved)?;
        }
        let SavedParts { mem, pools, .. } = &self.saved;
        if pools.len() != s.pools.len() {
            return Err(SnapshotError::Shape {
                component: "frame allocators",
                what: "pools",
                snapshot: s.pools.len(),
                live: pools.len(),
            });
        }
        for (p, saved) in pools.iter().zip(&s.pools) {
            p.restore(saved)?;
        }
        mem.restore(&s.mem)?;
        Ok(())
    }

    /// The MMU-500 models, in SMMU order.
    fn models(&self) -> impl Iterator<Item = &Arc<mmu500::Mmu500>> {
        self.next_kernel.smmus.iter().map(|(_, m)| m)
    }

    /// sim's own components now.
    pub(in crate::scenario) fn snapshot_sim(&self) -> SimSnapshot {
        let s = &self.saved;
        SimSnapshot {
            kernel: self.kernel.snapshot(),
            exec: self.exec.snapshot(),
            log: self.log.snapshot(),
            timeline: self.timeline.snapshot(),
            firmware: self.firmware.snapshot(),
            nic: self.nic.as_ref().map(|n| n.snapshot()),
            engines: self.engines.iter().map(|e| e.engine.snapshot()).collect(),
            retired: s.retired.iter().map(|r| r.snapshot()).collect(),
            iommu_ids: s.dma_cfg.iommu_ids.lock().clone(),
            mmio_log: self.mmio_log.as_ref().map(|l| l.snapshot()),
            trigger_done: self.trigger_done.load(Ordering::SeqCst),
            crash: self.crash.lock().clone(),
            kasan_reported: self.kasan_reported.load(Ordering::SeqCst),
            mld_armed: self.mld_armed.load(Ordering::SeqCst),
            pending_irqs: self.pending_irqs.lock().clone(),
            drivers: SameArcs(self.drivers.lock().clone()),
            new_kernel: self.new_kernel.load(Ordering::SeqCst),
        }
    }

    /// Put sim's own components back to `s`.
    pub(in crate::scenario) fn restore_sim(&self, s: &SimSnapshot) -> Result<(), SnapshotError> {
        let saved = &self.saved;
        let shape = |what, snapshot, live| SnapshotError::misfit("machine", what, snapshot, live);
        let misfit = shape("engines", s.engines.len(), self.engines.len())
            .or_else(|| shape("SMMUs", s.retired.len(), saved.retired.len()))
            .or_else(|| shape("SMMU drivers", s.drivers.0.len(), self.drivers.lock().len()))
            .or_else(|| {
                shape(
                    "NICs",
                    usize::from(s.nic.is_some()),
                    usize::from(self.nic.is_some()),
                )
            })
            .or_else(|| {
                shape(
                    "MMIO logs",
                    usize::from(s.mmio_log.is_some()),
                    usize::from(self.mmio_log.is_some()),
                )
            });
        if let Some(e) = misfit {
            return Err(e);
        }
        self.kernel.restore(&s.kernel)?;
        self.exec.restore(&s.exec)?;
        if let (Some(n), Some(saved)) = (&self.nic, &s.nic) {
            n.restore(saved)?;
        }
        self.log.restore(&s.log);
        self.timeline.restore(&s.timeline);
        self.firmware.restore(&s.firmware);
        for (e, saved) in self.engines.iter().zip(&s.engines) {
            e.engine.restore(saved);
        }
        for (r, saved) in saved.retired.iter().zip(&s.retired) {
            r.restore(saved);
        }
        saved.dma_cfg.iommu_ids.lock().clone_from(&s.iommu_ids);
        if let (Some(l), Some(saved)) = (&self.mmio_log, &s.mmio_log) {
            l.restore(saved);
        }
        self.trigger_done.store(s.trigger_done, Ordering::SeqCst);
        self.crash.lock().clone_from(&s.crash);
        self.kasan_reported
            .store(s.kasan_reported, Ordering::SeqCst);
        self.mld_armed.store(s.mld_armed, Ordering::SeqCst);
        self.pending_irqs.lock().clone_from(&s.pending_irqs);
        self.drivers.lock().clone_from(&s.drivers.0);
        self.new_kernel.store(s.new_kernel, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::boot;
    use crate::exec::Exec;
    use crate::scenario::{boot_prefix, run_booted, KernelBehaviour, RebootConfig, Trigger};
    use crate::{Dmesg, Kernel, SnapshotError};
    use smmu_sync::Arc;

    fn config(kernel: KernelBehaviour, trigger: Trigger) -> RebootConfig {
        let mut c = RebootConfig::new(kernel, crate::kbox_a230_ls());
        c.trigger = trigger;
        c.mmio_log = true;
        c.max_actor_steps = 3_000;
        c
    }

    /// After a whole run (on std threads: the CPUs, the NIC, the trigger), restoring the
    /// boot-end snapshot puts every sim component back exactly: the kernel's bindings, links
    /// and hooks, the CPUs, the log, the timeline, the NIC's rings, the machine's own flags.
    #[test]
    fn a_restored_machine_s_own_components_are_those_of_the_end_of_boot() {
        for trigger in [
            Trigger::Reboot,
            Trigger::Kexec,
            Trigger::UnbindSmmu,
            Trigger::CrashKexec,
        ] {
            for kernel in [KernelBehaviour::Linux61, KernelBehaviour::Quiesce] {
                let cfg = config(kernel, trigger);
                let m = Arc::new(boot(&cfg).expect("boots"));
                let booted = m.snapshot_sim();
                // On std threads the OS decides the interleaving: a trigger may come before the
                // NIC's first transaction, so only "the run changed the machine" is asserted.
                run_booted(&cfg, &m).expect("runs");
                let after = m.snapshot_sim();
                assert_ne!(after, booted, "the run changed nothing: {trigger:?}");
                m.restore_sim(&booted).expect("fits");
                assert_eq!(m.snapshot_sim(), booted, "{trigger:?} {kernel:?}");
                assert_eq!(m.log.text(), {
                    let fresh = boot(&cfg).expect("boots");
                    fresh.log.text()
                });
            }
        }
    }

    /// The boot prefix never enters the explorer's scheduler: that is what lets the cache skip
    /// it without moving a single later decision.
    #[test]
    fn the_boot_prefix_makes_no_scheduling_decision_under_the_explorer() {
        struct BootOnly(RebootConfig);
        impl explore::Scenario for BootOnly {
            type Outcome = Option<u64>;
            fn run(&self) -> Option<u64> {
                boot_prefix(&self.0).ok().map(|(_, entries)| entries)
            }
            fn violations(&self, o: &Option<u64>) -> Vec<String> {
                match o {
                    Some(0) => vec![],
                    other => vec![format!("{other:?}")],
                }
            }
        }
        for trigger in [Trigger::Reboot, Trigger::Kexec] {
            for kernel in [
                KernelBehaviour::Linux61,
                KernelBehaviour::Linux62,
                KernelBehaviour::Quiesce,
            ] {
                let s = Arc::new(BootOnly(config(kernel, trigger)));
                let rec = explore::run_one(s, explore::Strategy::Random, 1, 1_000);
                assert!(
                    matches!(rec.outcome, explore::RunResult::Completed(Some(0))),
                    "{kernel:?}: {:?}",
                    rec.outcome
                );
            }
        }
    }

    #[test]
    fn a_snapshot_of_another_shape_is_refused_and_changes_nothing() {
        let two = Exec::new(2);
        let one = Exec::new(1);
        let before = one.snapshot();
        assert_eq!(
            one.restore(&two.snapshot()),
            Err(SnapshotError::Shape {
                component: "exec",
                what: "CPUs",
                snapshot: 2,
                live: 1
            })
        );
        assert_eq!(one.snapshot(), before);

        let cfg = config(KernelBehaviour::Linux61, Trigger::Reboot);
        let m = boot(&cfg).expect("boots");
        let empty = Kernel::new(Arc::new(Dmesg::new()));
        let devices = match empty.restore(&m.kernel.snapshot()) {
            Err(SnapshotError::Shape {
                component: "kernel",
                snapshot,
                live: 0,
                ..
            }) => snapshot,
            other => panic!("{other:?}"),
        };
        assert!(devices > 20, "{devices}");
        assert_eq!(
            empty.snapshot(),
            Kernel::new(Arc::new(Dmesg::new())).snapshot()
        );
    }
}
