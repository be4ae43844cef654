//! The kernel-model drivers the machine registers: the IOMMU core's `dma_configure`, the ENETC
//! driver and the generic DMA-engine driver (the SMMU's platform driver, shared with the
//! SMMUv3 machine, is `crate::smmu_platform`).

use crate::dma_engine::DmaEngine;
use crate::enetc::Enetc;
use crate::kernel::{DmaConfigure, Driver, Kernel, KernelError};
use crate::mmio_log::MmioLog;
use crate::{Board, DeviceIndex};
use iommu::{DeviceDesc, InstanceId, IommuCore};
use smmu_sync::{Arc, Mutex};
use std::collections::BTreeMap;

/// The IOMMU side of `really_probe` → `dma_configure`: probe the master onto its SMMU's IOMMU
/// instance (group, default domain) and link it to the SMMU as its consumer.
pub(super) struct IommuDmaConfigure {
    pub(super) board: Board,
    pub(super) smmu_devs: Vec<Option<(DeviceIndex, InstanceId)>>,
    pub(super) core: Arc<IommuCore>,
    pub(super) iommu_ids: Mutex<BTreeMap<DeviceIndex, iommu::DeviceId>>,
    pub(super) bus_pos: BTreeMap<DeviceIndex, u64>,
    pub(super) mmio_log: Option<Arc<MmioLog>>,
}

impl DmaConfigure for IommuDmaConfigure {
    fn dma_configure(&self, k: &Kernel, dev: DeviceIndex) -> Result<(), KernelError> {
        let Some(m) = k.master_index(dev).and_then(|i| self.board.masters.get(i)) else {
            return Ok(());
        };
        let Some(Some((smmu_dev, inst))) = self.smmu_devs.get(m.smmu).copied() else {
            return Ok(());
        };
        if !m.attached || !k.is_bound(smmu_dev) {
            return Ok(());
        }
        let bus = m.bus;
        let ids: Vec<u32> = m.ids.iter().map(|id| id.fwid()).collect();
        if let Some(l) = &self.mmio_log {
            l.phase(&format!("attach {}", m.name));
        }
        let mut desc = DeviceDesc::new(
            &m.log_prefix(),
            bus,
            self.bus_pos.get(&dev).copied().unwrap_or(0),
            &ids,
        );
        desc.coherent = true;
        let id = self
            .core
            .probe_device(desc, inst)
            .map_err(|e| KernelError::ProbeFailed {
                dev: k.device_name(dev),
                reason: e.to_string(),
            })?;
        self.iommu_ids.lock().insert(dev, id);
        k.device_link_add(dev, smmu_dev)
    }
}

/// Builds the NIC at `fsl_enetc` probe time.
pub(super) type MakeNic =
    Box<dyn Fn(&Kernel, DeviceIndex) -> Result<Arc<Enetc>, KernelError> + Send + Sync>;

/// `fsl_enetc` bound to the flooded function: the real NIC model.
pub(super) struct EnetcDriver {
    pub(super) make: MakeNic,
    pub(super) nic: Mutex<Option<Arc<Enetc>>>,
}

impl Driver for EnetcDriver {
    fn name(&self) -> &str {
        "fsl_enetc"
    }
    fn probe(&self, k: &Kernel, dev: DeviceIndex) -> Result<(), KernelError> {
        let nic = (self.make)(k, dev)?;
        *self.nic.lock() = Some(nic);
        Ok(())
    }
    // fsl_enetc has no .shutdown: that is the point.
}

/// Builds a generic DMA engine at its driver's probe time.
pub(super) type MakeEngine =
    Box<dyn Fn(&Kernel, DeviceIndex) -> Result<Arc<DmaEngine>, KernelError> + Send + Sync>;

/// The driver of a master that runs generic traffic: its `.shutdown` (where the board's driver
/// has one) stops the engine.
pub(super) struct EngineDriver {
    pub(super) name: String,
    pub(super) has_shutdown: bool,
    pub(super) make: MakeEngine,
    pub(super) engine: Mutex<Option<Arc<DmaEngine>>>,
}

impl Driver for EngineDriver {
    fn name(&self) -> &str {
        &self.name
    }
    fn probe(&self, k: &Kernel, dev: DeviceIndex) -> Result<(), KernelError> {
        *self.engine.lock() = Some((self.make)(k, dev)?);
        Ok(())
    }
    fn has_shutdown(&self) -> bool {
        self.has_shutdown
    }
    fn shutdown(&self, _k: &Kernel, _dev: DeviceIndex) {
        if let Some(e) = self.engine.lock().as_ref() {
            e.stop();
        }
    }
    fn remove(&self, _k: &Kernel, _dev: DeviceIndex) {
        if let Some(e) = self.engine.lock().as_ref() {
            e.stop();
        }
    }
}
