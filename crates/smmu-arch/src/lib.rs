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

/// An interrupt output of an SMMUv1/v2: each signals faults, global or of one context bank
/// (Linux's `arm_smmu_global_fault` and `arm_smmu_context_fault` handle them). Global fault
/// lines are numbered from 0 in the order of the device tree's first `#global-interrupts`
/// entries; context lines by context-bank index (the CBAR.IRPTNDX Linux programs equals the
/// bank index). An SMMUv3's lines are `smmuv3_arch::IrqLine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultIrq {
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

/// A translation stage: stage 1 (virtual address to IPA, the OS's tables) or stage 2 (IPA to
/// physical address, the hypervisor's tables). Fault reports name the stage that faulted; a
/// page table is built in one stage's format (its leaf attributes and control register), so
/// `pgtable` re-exports this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Stage 1 (ARM_64_LPAE_S1): MAIR attribute indices and AP bits; TCR, TCR2 and MAIR.
    S1,
    /// Stage 2 (ARM_64_LPAE_S2): MemAttr and S2AP bits; VTCR; possibly a concatenated PGD.
    S2,
}

impl Stage {
    /// The stage number (1 or 2).
    pub fn number(self) -> u8 {
        match self {
            Stage::S1 => 1,
            Stage::S2 => 2,
        }
    }
}

/// Shown as the stage number, as fault reports print it.
impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// The translation-table lookup level a fault names (FSYNR0.PLVL, the PAR fault status level):
/// 0 to 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupLevel(u8);

impl LookupLevel {
    pub const L0: LookupLevel = LookupLevel(0);
    pub const L1: LookupLevel = LookupLevel(1);
    pub const L2: LookupLevel = LookupLevel(2);
    pub const L3: LookupLevel = LookupLevel(3);

    /// A walker level (0..=3; anything larger keeps its two low bits, as the 2-bit PLVL field
    /// does).
    pub fn new(level: u32) -> LookupLevel {
        LookupLevel((level & 3) as u8)
    }

    /// The level number, 0 to 3.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// Shown as the level number, as fault reports print it.
impl std::fmt::Display for LookupLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
