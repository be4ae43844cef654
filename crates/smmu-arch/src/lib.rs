//! The SMMUv2 architecture as a contract between hardware and driver.
//!
//! Both sides of the bus use this crate: the `mmu500` hardware model decodes these offsets and
//! fields, and the `arm-smmu` driver encodes them. It holds no behaviour, only the register map
//! (offsets and bit fields, as in the SMMUv2 architecture and Linux's `arm-smmu.h`), the MMIO
//! bus trait through which a driver reaches a device, and the names of interrupt lines. Keeping
//! the map in one place means a wrong offset is wrong for both, so tests pin every offset and
//! field against the reference values rather than against each other.

pub mod decode;
pub mod desc;
pub mod names;
pub mod regs;

/// A memory-mapped register window, seen from the CPU side of the bus.
///
/// Offsets are bytes from the base of the device's `reg` window. Real MMIO cannot fail: an access
/// to an unimplemented location reads as zero and ignores writes (RAZ/WI), which is what
/// implementations must do too.
pub trait Mmio: Send + Sync {
    fn read32(&self, offset: u64) -> u32;
    fn write32(&self, offset: u64, value: u32);
    fn read64(&self, offset: u64) -> u64;
    fn write64(&self, offset: u64, value: u64);
}

impl<T: Mmio + ?Sized> Mmio for std::sync::Arc<T> {
    fn read32(&self, offset: u64) -> u32 {
        (**self).read32(offset)
    }
    fn write32(&self, offset: u64, value: u32) {
        (**self).write32(offset, value)
    }
    fn read64(&self, offset: u64) -> u64 {
        (**self).read64(offset)
    }
    fn write64(&self, offset: u64, value: u64) {
        (**self).write64(offset, value)
    }
}

/// An interrupt output of the SMMU. Global fault lines are numbered from 0 in the order of the
/// device tree's first `#global-interrupts` entries; context lines by context-bank index (the
/// CBAR.IRPTNDX Linux programs equals the bank index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IrqLine {
    Global(u8),
    Context(u16),
}

/// Whether a driver's interrupt handler dealt with the interrupt (Linux's `irqreturn_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqReturn {
    None,
    Handled,
}

/// A transaction's direction, as the SMMU sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}
