//! Registering a board's devices with the kernel model and booting it: the SMMU link every master
//! gets, the generic DMA driver, `boot_board`.

use super::{DeviceIndex, DmaConfigure, Driver, GenericDriver, Kernel, KernelError};
use crate::board::{Board, Bus};
use smmu_sync::Arc;

/// Devices of a booted board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootedBoard {
    /// Device of each SMMU (index-aligned with `Board::smmus`).
    pub smmus: Vec<DeviceIndex>,
    /// Device of each master (index-aligned with `Board::masters`).
    pub masters: Vec<DeviceIndex>,
}

/// Stand-in for arm-smmu's `probe_device` link: make every configured master a consumer of
/// its SMMU. A scenario replaces this with the real IOMMU core + driver.
#[derive(Debug, Clone)]
pub struct LinkToSmmu {
    /// The board.
    pub board: Board,
    /// Its devices.
    pub devices: BootedBoard,
}

impl DmaConfigure for LinkToSmmu {
    fn dma_configure(&self, k: &Kernel, dev: DeviceIndex) -> Result<(), KernelError> {
        let Some(m) = k.master_index(dev).and_then(|i| self.board.masters.get(i)) else {
            return Ok(());
        };
        if !m.attached {
            return Ok(());
        }
        match self.devices.smmus.get(m.smmu) {
            Some(&s) if k.is_bound(s) => k.device_link_add(dev, s),
            _ => Ok(()),
        }
    }
}

/// Register a board's devices: SMMUs first (they are populated from the DT and probe early),
/// then masters in the board's registration order. Nothing is bound yet.
pub fn register_board(k: &Kernel, board: &Board) -> BootedBoard {
    let smmus = board
        .smmus
        .iter()
        .map(|s| k.device_register(&s.name, Bus::Platform, None))
        .collect();
    let masters = board
        .masters
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let d = k.device_register(&m.name, m.bus, None);
            k.set_master_index(d, i);
            d
        })
        .collect();
    BootedBoard { smmus, masters }
}

/// The stand-in driver for a board master: named as the board says, binds if a driver is
/// known, `.shutdown` as the driver table says.
pub fn generic_driver(m: &crate::board::Master) -> Arc<dyn Driver> {
    Arc::new(GenericDriver {
        name: m.driver.clone().unwrap_or_else(|| m.bus.name().into()),
        has_shutdown: m.has_shutdown,
        binds: m.driver.is_some(),
    })
}

/// Boot a board: register its devices, bind `smmu_driver(i)` to each enabled SMMU, then probe
/// masters in the board's probe order with `master_driver(i, master)` (use [`generic_driver`]
/// for the ones a scenario does not model). With `link`, [`LinkToSmmu`] is installed as the
/// DMA-configure hook (a scenario that installs the real IOMMU core passes `false` and sets its
/// own hook first). Masters whose driver binds get PCI bus mastering (drivers call
/// `pci_set_master`). Probe failures are part of the model (mali-dp stays unbound), not errors.
pub fn boot_board(
    k: &Kernel,
    board: &Board,
    smmu_driver: &dyn Fn(usize) -> Arc<dyn Driver>,
    master_driver: &dyn Fn(usize, &crate::board::Master) -> Arc<dyn Driver>,
    link: bool,
) -> Result<BootedBoard, KernelError> {
    let booted = register_board(k, board);
    for (i, &d) in booted.smmus.iter().enumerate() {
        if board.smmus.get(i).is_some_and(|s| s.enabled) {
            k.driver_attach(d, smmu_driver(i))?;
        }
    }
    if link {
        k.set_dma_configure(Arc::new(LinkToSmmu {
            board: board.clone(),
            devices: booted.clone(),
        }));
    }
    for i in board.probe_order() {
        let (Some(m), Some(&d)) = (board.masters.get(i), booted.masters.get(i)) else {
            continue;
        };
        if k.driver_attach(d, master_driver(i, m)).is_ok() && m.bus == Bus::Pci {
            k.set_bus_master(d, true);
        }
    }
    Ok(booted)
}
