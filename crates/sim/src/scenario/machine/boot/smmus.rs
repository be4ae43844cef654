//! Boot's SMMU phases: probing each SMMU node with its MMU-500 model, and `of_dma_configure`'s
//! record of each master's IOMMU device id.

use super::super::drivers::IommuDmaConfigure;
use super::super::{bus, MachineSetupError, SmmuSetupError, TimedMmio, IRQ_SMMU_BASE};
use super::{model_config, Booting};
use crate::exec::Irq;
use crate::kernel::{Kernel, KernelError};
use crate::ownership::RetiredContexts;
use crate::smmu_platform::SmmuPlatformDriver;
use crate::DeviceIndex;
use arm_smmu::{ArmSmmu, FirmwareDesc, RateLimits, SmmuEnv};
use iommu::{DeviceId, InstanceId};
use mmu500::Mmu500;
use smmu_arch::FaultIrq;
use smmu_sync::{Arc, Mutex};
use std::collections::BTreeMap;

/// The SMMUs probed, with their models.
pub(super) struct Smmus {
    pub(super) drivers: Vec<Arc<ArmSmmu>>,
    /// Each SMMU node's device and core instance (`None`: not modelled).
    pub(super) smmu_devs: Vec<Option<(DeviceIndex, InstanceId)>>,
    pub(super) models: Vec<Arc<Mmu500>>,
    /// The freed-domain record of each model.
    pub(super) retired: Vec<Arc<RetiredContexts>>,
    /// What a kexec'd kernel needs to probe the same SMMUs again.
    pub(super) next_smmus: Vec<(FirmwareDesc, Arc<Mmu500>)>,
}

impl Smmus {
    /// The model a master's transactions go through: its SMMU among the modelled ones.
    fn model_index(&self, m: &crate::Master) -> usize {
        self.smmu_devs
            .iter()
            .take(m.smmu)
            .filter(|d| d.is_some())
            .count()
    }

    pub(super) fn model_of(&self, m: &crate::Master) -> Option<Arc<Mmu500>> {
        self.models.get(self.model_index(m)).cloned()
    }

    /// The freed-domain record of that SMMU.
    pub(super) fn retired_of(&self, m: &crate::Master) -> Arc<RetiredContexts> {
        self.retired
            .get(self.model_index(m))
            .cloned()
            .unwrap_or_default()
    }
}

/// What a driver's probe calls for a master's IOMMU device id (the function `iommu_id_of`
/// makes), named once for the phases that pass it on.
pub(super) trait IommuIdOf:
    Fn(&Kernel, DeviceIndex) -> Result<DeviceId, KernelError> + Clone + Send + Sync + 'static
{
}

impl<F> IommuIdOf for F where
    F: Fn(&Kernel, DeviceIndex) -> Result<DeviceId, KernelError> + Clone + Send + Sync + 'static
{
}

/// A master's IOMMU device id, as its `dma_configure` recorded it.
pub(super) fn iommu_id_of(
    dma_cfg: Arc<IommuDmaConfigure>,
) -> impl Fn(&Kernel, DeviceIndex) -> Result<DeviceId, KernelError> + Clone + Send + Sync + 'static
{
    move |k: &Kernel, dev: DeviceIndex| {
        dma_cfg
            .iommu_ids
            .lock()
            .get(&dev)
            .copied()
            .ok_or_else(|| KernelError::ProbeFailed {
                dev: k.device_name(dev),
                reason: "no IOMMU device".into(),
            })
    }
}

impl Booting<'_> {
    /// Linux: the SMMU platform driver probes each enabled SMMU node: `arm_smmu_device_probe`
    /// reads the ID registers, registers the instance with the IOMMU core, then resets the
    /// hardware (v6.1's order); its interrupts are requested on the GIC.
    pub(super) fn probe_smmus(&self, limits: &Arc<RateLimits>) -> Result<Smmus, MachineSetupError> {
        let (cfg, board) = (self.cfg, &self.cfg.board);
        let (booted, core, mem, mmio_log) = (&self.booted, &self.core, &self.mem, &self.mmio_log);
        let (log, printk, tables, lpae) = (&self.log, &self.printk, &self.tables, self.lpae);
        let (kernel, exec, pending_irqs) = (&self.kernel, &self.exec, &self.pending_irqs);
        let mut drivers = Vec::new();
        let mut smmu_devs = Vec::new();
        let mut models = Vec::new();
        let mut retired = Vec::new();
        let mut next_smmus = Vec::new();
        for (i, desc) in board.smmus.iter().enumerate() {
            let Some(&dev) = booted.smmus.get(i) else {
                smmu_devs.push(None);
                continue;
            };
            if !desc.enabled {
                smmu_devs.push(None);
                continue;
            }
            let err = |why: SmmuSetupError| MachineSetupError::Smmu {
                name: desc.name.clone(),
                why,
            };
            if desc.version == crate::SmmuVersion::V3 {
                // The smmuv3 model and arm-smmu-v3 driver exist as crates; this scenario runs the
                // SMMUv2 stack only (v3 waits for the kernel-model rework).
                return Err(err(SmmuSetupError::V3NotRun));
            }
            let model_cfg = model_config(desc);
            let model = Mmu500::new(model_cfg, mem.clone()).map_err(|e| err(e.into()))?;
            let fw = FirmwareDesc {
                compatible: desc.matched.clone(),
                reg_base: desc.base,
                reg_size: desc.size,
                dev_name: desc.name.clone(),
                num_global_irqs: Some(desc.global_irqs),
                num_context_irqs: desc.context_irqs,
                dma_coherent: desc.dma_coherent,
            };
            let env = SmmuEnv {
                mmio: Arc::new(TimedMmio {
                    inner: bus(mmio_log, &model, &desc.name),
                    log: log.clone(),
                }),
                log: printk.clone(),
                frames: tables.clone(),
                tables: Arc::new(lpae),
                limits: limits.clone(),
            };
            let smmu = ArmSmmu::probe(&fw, cfg.cmdline.smmu, cfg.kernel.driver_behaviour(), env)
                .map_err(|e| err(e.into()))?;
            // v6.1 order: register with the core (clients may attach), then the RMR step and the
            // reset of the hardware.
            let inst = core.register(smmu.clone());
            smmu.reset_at_probe();
            // Each torn-down domain retires its bank's context epoch, read from the model.
            let freed = Arc::new(RetiredContexts::default());
            {
                let (freed, model) = (freed.clone(), model.clone());
                smmu.set_context_release_hook(Box::new(move |cb| {
                    let cb = cb as u16;
                    if let Some(epoch) = model.context_epoch(cb) {
                        freed.retire(cb, epoch);
                    }
                }));
            }
            retired.push(freed);
            next_smmus.push((fw, model.clone()));
            let (irqs, index, gic) = (pending_irqs.clone(), models.len(), exec.clone());
            model.set_irq_handler(Arc::new(move |line: FaultIrq| {
                let mut p = irqs.lock();
                if !p.contains(&(index, line)) {
                    p.push((index, line));
                }
                drop(p);
                // The GIC routes the SMMU's SPIs to CPU 0.
                gic.raise_irq(0, Irq::Line(IRQ_SMMU_BASE + index as u32));
            }));
            drivers.push(smmu.clone());
            kernel.driver_attach(
                dev,
                Arc::new(SmmuPlatformDriver {
                    smmu,
                    core: core.clone(),
                    inst,
                }),
            )?;
            smmu_devs.push(Some((dev, inst)));
            models.push(model);
        }
        if models.is_empty() {
            return Err(MachineSetupError::NoSmmu);
        }
        Ok(Smmus {
            drivers,
            smmu_devs,
            models,
            retired,
            next_smmus,
        })
    }

    /// Linux: `of_dma_configure` runs before each master's driver probes: it finds the
    /// master's SMMU from its `iommus` property and hands the device to the IOMMU core.
    pub(super) fn dma_configure(&self, smmus: &Smmus) -> Arc<IommuDmaConfigure> {
        let (board, booted, kernel) = (&self.cfg.board, &self.booted, &self.kernel);
        let (core, mmio_log, smmu_devs) = (&self.core, &self.mmio_log, &smmus.smmu_devs);
        // Bus positions: the order devices were added to each bus.
        let mut bus_pos = BTreeMap::new();
        for i in 0..board.masters.len() {
            if let Some(&d) = booted.masters.get(i) {
                bus_pos.insert(d, i as u64);
            }
        }
        let dma_cfg = Arc::new(IommuDmaConfigure {
            board: board.clone(),
            smmu_devs: smmu_devs.clone(),
            core: core.clone(),
            iommu_ids: Mutex::new(BTreeMap::new()),
            bus_pos,
            mmio_log: mmio_log.clone(),
        });
        kernel.set_dma_configure(dma_cfg.clone());
        dma_cfg
    }
}
