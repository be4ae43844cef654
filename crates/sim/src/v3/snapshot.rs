//! The booted SMMUv3 machine saved and put back in place: what the explorer's boot cache
//! restores before every schedule (ARCHITECTURE.md, "Snapshots are restored in place"; the
//! SMMUv2 machine's `scenario/machine/snapshot.rs` is the model this follows).
//!
//! Every component saves its own mutable state; this file gathers them. The objects, the
//! `Arc`s between them and the closures that wire them (the model's interrupt handler, the
//! functions' Bus Master Enable check, the `dma_configure` hook) are the machine's and stay.
//! Restore while no actor runs.

use super::machine::V3Machine;
use super::nic::FunctionSnapshot;
use crate::dmesg::DmesgSnapshot;
use crate::exec::{ExecSnapshot, Task};
use crate::kernel::KernelSnapshot;
use crate::snapshot::SameArcs;
use crate::{DeviceIndex, Kernel, SnapshotError};
use arm_smmu_v3::trace::TracingSnapshot;
use arm_smmu_v3::{ArmSmmuV3, ArmSmmuV3Snapshot, ProbeError};
use physmem::{AllocSnapshot, MemSnapshot};
use smmu_sync::atomic::Ordering;
use smmu_sync::Arc;
use smmuv3::{IrqLine, SmmuV3Snapshot};
use std::collections::BTreeMap;
use std::sync::Weak;

/// The whole booted SMMUv3 machine at one moment ([`V3Machine::snapshot`]).
pub(crate) struct V3Snapshot {
    /// The machine it was taken of (its kernel's identity; weak, so a snapshot keeps nothing
    /// alive).
    of: Weak<Kernel>,
    /// Simulated memory (stream table, queues, page tables, buffers written) and its pools.
    mem: MemSnapshot,
    pools: Vec<AllocSnapshot>,
    /// The smmuv3 model (registers, queue pointers, TLB, configuration cache).
    model: SmmuV3Snapshot,
    /// The MMIO log's bus recorder, when the machine keeps one.
    tracer: Option<TracingSnapshot>,
    core: iommu::CoreSnapshot,
    /// The boot-time arm-smmu-v3 instance.
    driver: ArmSmmuV3Snapshot,
    sim: V3SimSnapshot,
}

/// sim's own components: the kernel, the CPUs, the log, the flooded functions and the
/// machine's own fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct V3SimSnapshot {
    kernel: KernelSnapshot,
    exec: ExecSnapshot,
    log: DmesgSnapshot,
    mmio_log: Option<(Vec<String>, bool)>,
    functions: Vec<FunctionSnapshot>,
    iommu_ids: BTreeMap<DeviceIndex, iommu::DeviceId>,
    pending_irqs: Vec<IrqLine>,
    trigger_done: bool,
    new_kernel: bool,
    secondaries_stopped: bool,
    crash: Option<(iommu::Oops, Task)>,
    next_probe_failed: Option<ProbeError>,
    /// The arm-smmu-v3 instance (a kexec replaces it with the next kernel's).
    driver: SameArcs<ArmSmmuV3>,
}

impl V3Machine {
    /// The whole machine now. Take it at the end of boot, before any actor starts.
    pub(crate) fn snapshot(&self) -> Result<V3Snapshot, SnapshotError> {
        let s = &self.saved;
        let driver = self.smmu.lock().clone();
        Ok(V3Snapshot {
            of: Arc::downgrade(&self.kernel),
            mem: s.mem.snapshot(),
            pools: s.pools.iter().map(|p| p.snapshot()).collect(),
            model: self.model.snapshot(),
            tracer: s.tracer.as_ref().map(|t| t.snapshot()),
            core: s.core.snapshot()?,
            driver: driver.snapshot(),
            sim: self.snapshot_sim(),
        })
    }

    /// Put the whole machine back to `s`. Refused, changing nothing, when `s` was taken of
    /// another machine; any other refusal leaves the machine in an unknown state: the caller
    /// must not run it again.
    ///
    /// The order is the SMMUv2 machine's, for the same reason: restores drop what a run made.
    /// sim's part first (it drops the arm-smmu-v3 instance a kexec's next kernel probed), then
    /// the IOMMU core (the domains a run made are freed in the driver) and the driver (the
    /// tables a run made give their pages back), and only then the bus recorder, the model,
    /// the frame pools and memory, whose restores overwrite the register writes and frees
    /// those drops made.
    pub(crate) fn restore(&self, s: &V3Snapshot) -> Result<(), SnapshotError> {
        if !std::ptr::eq(s.of.as_ptr(), Arc::as_ptr(&self.kernel)) {
            return Err(SnapshotError::OtherMachine);
        }
        let saved = &self.saved;
        if saved.pools.len() != s.pools.len() {
            return Err(SnapshotError::Shape {
                component: "frame allocators",
                what: "pools",
                snapshot: s.pools.len(),
                live: saved.pools.len(),
            });
        }
        self.restore_sim(&s.sim)?;
        saved.core.restore(&s.core)?;
        let driver = self.smmu.lock().clone();
        driver.restore(&s.driver)?;
        if let (Some(t), Some(saved)) = (&saved.tracer, &s.tracer) {
            t.restore(saved);
        }
        self.model.restore(&s.model)?;
        for (p, saved) in saved.pools.iter().zip(&s.pools) {
            p.restore(saved)?;
        }
        saved.mem.restore(&s.mem)?;
        Ok(())
    }

    /// sim's own components now.
    pub(crate) fn snapshot_sim(&self) -> V3SimSnapshot {
        V3SimSnapshot {
            kernel: self.kernel.snapshot(),
            exec: self.exec.snapshot(),
            log: self.log.snapshot(),
            mmio_log: self.mmio_log.as_ref().map(|l| l.snapshot()),
            functions: self.flooded.iter().map(|f| f.f.snapshot()).collect(),
            iommu_ids: self.saved.dma_cfg.ids.lock().clone(),
            pending_irqs: self.pending_irqs.lock().clone(),
            trigger_done: self.trigger_done.load(Ordering::SeqCst),
            new_kernel: self.new_kernel.load(Ordering::SeqCst),
            secondaries_stopped: *self.secondaries_stopped.lock(),
            crash: self.crash.lock().clone(),
            next_probe_failed: self.next_probe_failed.lock().clone(),
            driver: SameArcs(vec![self.smmu.lock().clone()]),
        }
    }

    /// Put sim's own components back to `s`.
    pub(crate) fn restore_sim(&self, s: &V3SimSnapshot) -> Result<(), SnapshotError> {
        let shape =
            |what, snapshot, live| SnapshotError::misfit("SMMUv3 machine", what, snapshot, live);
        let misfit = shape("flooded functions", s.functions.len(), self.flooded.len())
            .or_else(|| {
                shape(
                    "MMIO logs",
                    usize::from(s.mmio_log.is_some()),
                    usize::from(self.mmio_log.is_some()),
                )
            })
            .or_else(|| shape("SMMU drivers", s.driver.0.len(), 1));
        if let Some(e) = misfit {
            return Err(e);
        }
        self.kernel.restore(&s.kernel)?;
        self.exec.restore(&s.exec)?;
        self.log.restore(&s.log);
        if let (Some(l), Some(saved)) = (&self.mmio_log, &s.mmio_log) {
            l.restore(saved);
        }
        for (f, saved) in self.flooded.iter().zip(&s.functions) {
            f.f.restore(saved);
        }
        self.saved.dma_cfg.ids.lock().clone_from(&s.iommu_ids);
        self.pending_irqs.lock().clone_from(&s.pending_irqs);
        self.trigger_done.store(s.trigger_done, Ordering::SeqCst);
        self.new_kernel.store(s.new_kernel, Ordering::SeqCst);
        *self.secondaries_stopped.lock() = s.secondaries_stopped;
        self.crash.lock().clone_from(&s.crash);
        self.next_probe_failed
            .lock()
            .clone_from(&s.next_probe_failed);
        // The next kernel's instance, if a kexec probed one, is dropped here.
        if let Some(d) = s.driver.0.first() {
            let next = std::mem::replace(&mut *self.smmu.lock(), d.clone());
            drop(next);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{boot_prefix, run_booted};
    use crate::scenario::{KernelBehaviour, RebootConfig, Trigger};
    use crate::SnapshotError;
    use smmu_sync::Arc;

    fn config(kernel: KernelBehaviour, trigger: Trigger) -> RebootConfig {
        let mut b = crate::Board::from_dtb(&lab_fixtures::qemu_virt_smmuv3_dtb()).expect("fixture");
        b.add_pci_function(&"00:01.0=e1000e".parse().expect("bdf"))
            .expect("placed");
        let mut c = RebootConfig::new(kernel, b);
        c.trigger = trigger;
        c.traffic = vec!["0000:00:01.0".into()];
        c.mmio_log = true;
        c.max_actor_steps = 3_000;
        c
    }

    fn booted(cfg: &RebootConfig) -> super::V3Machine {
        let smmu = super::super::smmuv3_index(&cfg.board).expect("an SMMUv3");
        let (m, entries) = boot_prefix(cfg, smmu).expect("boots");
        assert_eq!(entries, 0);
        m
    }

    /// The e1000e's MSI goes to QEMU virt's ITS (`its@8080000`, `GITS_TRANSLATER` at
    /// 0x0809_0040), through its DMA domain: the doorbell's page is the domain's first IOVA
    /// page below 4 GiB (PCI), so the message address is 0xffff_f040.
    #[test]
    fn the_flooded_functions_msi_goes_to_the_its_doorbells_iova() {
        let m = booted(&config(KernelBehaviour::Linux61, Trigger::Reboot));
        let f = &m.flooded.first().expect("the e1000e").f;
        assert_eq!(
            f.msi_route(),
            crate::enetc::MsiRoute {
                doorbell: smmu_addr::PhysAddr::new(0x0809_0040),
                address: smmu_addr::DmaAddr::new(0xffff_f040),
            }
        );
    }

    /// After a whole run (on std threads), restoring the boot-end snapshot puts every sim
    /// component back exactly, and the next run's log matches a freshly booted machine's.
    #[test]
    fn a_restored_smmuv3_machine_is_the_one_at_the_end_of_boot() {
        for trigger in [
            Trigger::Reboot,
            Trigger::Kexec,
            Trigger::UnbindSmmu,
            Trigger::CrashKexec,
        ] {
            for kernel in [KernelBehaviour::Linux61, KernelBehaviour::Quiesce] {
                let cfg = config(kernel, trigger);
                let m = Arc::new(booted(&cfg));
                let at_boot = m.snapshot_sim();
                let whole = m.snapshot().expect("a booted machine saves");
                // On std threads the OS decides the interleaving: only "the run changed the
                // machine" is asserted of the run itself.
                run_booted(&cfg, &m).expect("runs");
                assert_ne!(
                    m.snapshot_sim(),
                    at_boot,
                    "the run changed nothing: {trigger:?}"
                );
                m.restore(&whole).expect("fits");
                assert_eq!(m.snapshot_sim(), at_boot, "{trigger:?} {kernel:?}");
                assert_eq!(m.log.text(), booted(&cfg).log.text());
            }
        }
    }

    /// A snapshot names its machine's objects: another machine, even of the same
    /// configuration, refuses it and is left as it was.
    #[test]
    fn a_snapshot_of_another_smmuv3_machine_is_refused_and_changes_nothing() {
        let cfg = config(KernelBehaviour::Linux61, Trigger::Reboot);
        let (a, b) = (booted(&cfg), booted(&cfg));
        let from_a = a.snapshot().expect("saves");
        b.log.advance_ns(1_000);
        let before = b.snapshot_sim();
        assert_eq!(b.restore(&from_a), Err(SnapshotError::OtherMachine));
        assert_eq!(b.snapshot_sim(), before);
        assert_eq!(a.restore(&from_a), Ok(()));
    }
}
