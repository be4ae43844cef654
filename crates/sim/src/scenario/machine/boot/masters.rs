//! Boot's master phases: the NIC's and the generic DMA engines' drivers, and the driver probe
//! of every master in board order.

use super::super::drivers::{EnetcDriver, EngineDriver};
use super::super::{EngineSlot, MachineSetupError, GENERIC_DMA_DRIVER};
use super::smmus::{IommuIdOf, Smmus};
use super::Booting;
use crate::dma_engine::{DmaEngine, EngineConfig};
use crate::enetc::Enetc;
use crate::kernel::{Driver, GenericDriver, Kernel, KernelError};
use crate::{Bus, DeviceIndex};
use smmu_sync::{Arc, Mutex};
use std::collections::BTreeMap;

impl Booting<'_> {
    /// Linux: `fsl_enetc` is the driver of the flooded NIC function; its probe (at driver
    /// probe time, below) maps its rings through the IOMMU core.
    pub(super) fn nic_driver(
        &self,
        smmus: &Smmus,
        nic_idx: Option<usize>,
        iommu_id: &impl IommuIdOf,
    ) -> Result<Option<Arc<EnetcDriver>>, MachineSetupError> {
        let (cfg, board, kernel) = (self.cfg, &self.cfg.board, &self.kernel);
        let (core, mem, kmem) = (&self.core, &self.mem, &self.kmem);
        let enetc_drv = match nic_idx.and_then(|i| board.masters.get(i)) {
            None => None,
            Some(nic_master) => {
                let mut nic_cfg = cfg.nic.clone();
                // One ring pair and MSI-X vector per online CPU unless configured.
                nic_cfg.rings = nic_cfg.ring_pairs(board.cpus);
                if let Some(w) = nic_master.wire_ids().and_then(|w| w.first().copied()) {
                    nic_cfg.stream_id = u32::from(w);
                }
                let nic_model = smmus.model_of(nic_master).ok_or(MachineSetupError::NoNic)?;
                // Its MSI-X messages are writes to its host's ITS (the tree's msi-map).
                let doorbell = board.msi_doorbell(nic_master).ok_or_else(|| {
                    MachineSetupError::NoMsiController {
                        nic: nic_master.name.clone(),
                    }
                })?;
                let nic_retired = smmus.retired_of(nic_master);
                let (core, mem, kmem, iommu_id) =
                    (core.clone(), mem.clone(), kmem.clone(), iommu_id.clone());
                let weak_kernel = Arc::downgrade(kernel);
                Some(Arc::new(EnetcDriver {
                    make: Box::new(move |k: &Kernel, dev: DeviceIndex| {
                        let id = iommu_id(k, dev)?;
                        Enetc::probe(
                            nic_cfg.clone(),
                            id,
                            core.clone(),
                            nic_model.clone(),
                            mem.clone(),
                            kmem.clone(),
                            nic_retired.clone(),
                            doorbell,
                            {
                                let k = weak_kernel.clone();
                                Box::new(move || k.upgrade().is_some_and(|k| k.bus_master(dev)))
                            },
                        )
                        .map_err(|e| KernelError::ProbeFailed {
                            dev: k.device_name(dev),
                            reason: e.to_string(),
                        })
                    }),
                    nic: Mutex::new(None),
                }))
            }
        };
        Ok(enetc_drv)
    }

    /// Linux: the drivers of the masters asked to run traffic; a master whose own driver is
    /// not modelled gets the generic DMA engine's, as `driver_override` would bind it.
    #[allow(clippy::type_complexity)]
    pub(super) fn engine_drivers(
        &self,
        smmus: &Smmus,
        nic_idx: Option<usize>,
        iommu_id: &impl IommuIdOf,
    ) -> Result<(BTreeMap<usize, Arc<EngineDriver>>, Vec<Option<usize>>), MachineSetupError> {
        let (cfg, board) = (self.cfg, &self.cfg.board);
        let (core, mem, kmem) = (&self.core, &self.mem, &self.kmem);
        // The generic DMA engines asked for: any master behind a modelled SMMU that the kernel
        // probes. One whose own driver smmu-lab does not model (or that does not bind) gets the
        // generic engine's driver, as a test driver bound with `driver_override` would be.
        let capable: Vec<usize> = (0..board.masters.len())
            .filter(|&i| Some(i) != nic_idx)
            .filter(|&i| {
                board.masters.get(i).is_some_and(|m| {
                    m.attached && m.probes && !m.ids.is_empty() && smmus.model_of(m).is_some()
                })
            })
            .collect();
        let mut engine_drvs: BTreeMap<usize, Arc<EngineDriver>> = BTreeMap::new();
        let mut engine_order = Vec::new();
        for name in &cfg.traffic {
            let found = capable
                .iter()
                .copied()
                .find(|&i| board.masters.get(i).is_some_and(|m| &m.name == name));
            if found.is_some() && engine_order.contains(&found) {
                // Asked for twice: one engine.
                continue;
            }
            let Some(i) = found else {
                return Err(MachineSetupError::UnknownTraffic {
                    name: name.clone(),
                    known: capable
                        .iter()
                        .filter_map(|&i| board.masters.get(i).map(|m| m.name.clone()))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            let Some(m) = board.masters.get(i) else {
                continue;
            };
            let Some(model) = smmus.model_of(m) else {
                continue;
            };
            let freed = smmus.retired_of(m);
            let driver = m
                .driver
                .clone()
                .unwrap_or_else(|| GENERIC_DMA_DRIVER.to_string());
            let stream_id = m
                .wire_ids()
                .and_then(|w| w.first().copied())
                .or_else(|| m.ids.first().map(|id| id.sid))
                .map(u32::from)
                .unwrap_or(0);
            let ecfg = EngineConfig {
                device: m.name.clone(),
                driver: driver.clone(),
                stream_id,
            };
            let (core, mem, kmem, iommu_id) =
                (core.clone(), mem.clone(), kmem.clone(), iommu_id.clone());
            engine_drvs.insert(
                i,
                Arc::new(EngineDriver {
                    name: driver,
                    has_shutdown: m.has_shutdown,
                    make: Box::new(move |k: &Kernel, dev: DeviceIndex| {
                        let id = iommu_id(k, dev)?;
                        Ok(DmaEngine::new(
                            ecfg.clone(),
                            id,
                            core.clone(),
                            model.clone(),
                            mem.clone(),
                            kmem.clone(),
                            freed.clone(),
                        ))
                    }),
                    engine: Mutex::new(None),
                }),
            );
            engine_order.push(Some(i));
        }
        Ok((engine_drvs, engine_order))
    }

    /// Linux: driver probe at `device_initcall`: each master, in the board's probe order, is
    /// bound to its driver (after `dma_configure`), and PCI functions become bus masters.
    pub(super) fn probe_masters(
        &self,
        nic_idx: Option<usize>,
        enetc_drv: &Option<Arc<EnetcDriver>>,
        engine_drvs: &BTreeMap<usize, Arc<EngineDriver>>,
    ) {
        let (board, booted, kernel) = (&self.cfg.board, &self.booted, &self.kernel);
        for i in board.probe_order() {
            let (Some(m), Some(&d)) = (board.masters.get(i), booted.masters.get(i)) else {
                continue;
            };
            let drv: Arc<dyn Driver> = match (&enetc_drv, engine_drvs.get(&i)) {
                (Some(e), _) if Some(i) == nic_idx => e.clone(),
                (_, Some(e)) => e.clone(),
                _ => Arc::new(GenericDriver {
                    name: m.driver.clone().unwrap_or_else(|| m.bus.name().into()),
                    has_shutdown: m.has_shutdown,
                    binds: m.driver.is_some(),
                }),
            };
            if kernel.driver_attach(d, drv).is_ok() && m.bus == Bus::Pci {
                kernel.set_bus_master(d, true);
            }
        }
    }

    /// After probe: the NIC and the DMA engines the drivers made, each one that must have
    /// probed named when it did not.
    pub(super) fn probed(
        &self,
        enetc_drv: &Option<Arc<EnetcDriver>>,
        engine_drvs: &BTreeMap<usize, Arc<EngineDriver>>,
        engine_order: Vec<Option<usize>>,
    ) -> Result<(Option<Arc<Enetc>>, Vec<EngineSlot>), MachineSetupError> {
        let (board, booted) = (&self.cfg.board, &self.booted);
        let nic = match &enetc_drv {
            None => None,
            Some(e) => Some(
                e.nic
                    .lock()
                    .clone()
                    .ok_or_else(|| MachineSetupError::NotProbed {
                        driver: "fsl_enetc".into(),
                    })?,
            ),
        };
        let mut engines = Vec::new();
        for i in engine_order.into_iter().flatten() {
            let (Some(m), Some(drv), Some(&dev)) = (
                board.masters.get(i),
                engine_drvs.get(&i),
                booted.masters.get(i),
            ) else {
                continue;
            };
            let engine = drv
                .engine
                .lock()
                .clone()
                .ok_or_else(|| MachineSetupError::NotProbed {
                    driver: m.name.clone(),
                })?;
            engines.push(EngineSlot {
                engine,
                dev,
                pci: m.bus == Bus::Pci,
            });
        }
        Ok((nic, engines))
    }
}
