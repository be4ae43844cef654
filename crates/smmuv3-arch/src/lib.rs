//! The SMMUv3 architecture (Arm IHI 0070) as a contract between hardware and driver.
//!
//! Like `smmu-arch` for SMMUv2, this crate holds no behaviour: the `smmuv3` hardware model decodes
//! these offsets, fields and in-memory layouts, and the `arm-smmu-v3` driver encodes them. The
//! MMIO bus trait is the workspace's one [`Mmio`] (re-exported from `smmu-arch`), so a v3 device
//! plugs into everything a v2 device does.
//!
//! * [`regs`]: the register map of pages 0 and 1 and their fields;
//! * [`cmd`]: the 16-byte commands of the command queue, encoded and decoded as [`cmd::Command`];
//! * [`ste`] and [`cd`]: stream table entries, level-1 descriptors and context descriptors;
//! * [`event`]: the 32-byte event records and their ids;
//! * [`queue`]: the PROD/CONS index arithmetic shared by every circular queue.
//!
//! Tests pin every offset and field against the architecture's values (and Linux's
//! `arm-smmu-v3.h`, which names them), never against each other.

pub mod cd;
pub mod cmd;
pub mod event;
pub mod queue;
pub mod regs;
pub mod ste;

pub use smmu_arch::{Access, IrqReturn, Mmio};

/// An interrupt output of an SMMUv3, as the device tree's `interrupt-names` call them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IrqLine {
    /// `eventq`: the event queue became non-empty (or overflowed).
    Eventq,
    /// `priq`: the PRI queue (not modelled beyond its registers).
    Priq,
    /// `cmdq-sync`: a CMD_SYNC with CS=IRQ completed without an MSI address.
    CmdqSync,
    /// `gerror`: a global error became active.
    Gerror,
}

impl IrqLine {
    /// The device-tree `interrupt-names` string.
    pub fn dt_name(self) -> &'static str {
        match self {
            IrqLine::Eventq => "eventq",
            IrqLine::Priq => "priq",
            IrqLine::CmdqSync => "cmdq-sync",
            IrqLine::Gerror => "gerror",
        }
    }
}

/// Extract `width` bits at `shift`.
#[inline]
pub const fn field(v: u64, shift: u32, width: u32) -> u64 {
    (v >> shift) & ((1u64 << width) - 1)
}

/// `v` placed in `width` bits at `shift` (excess bits dropped).
#[inline]
pub const fn prep(v: u64, shift: u32, width: u32) -> u64 {
    (v & ((1u64 << width) - 1)) << shift
}

/// Mask of bits `hi..=lo`.
#[inline]
pub const fn genmask(hi: u32, lo: u32) -> u64 {
    (u64::MAX >> (63 - hi)) & (u64::MAX << lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_helpers() {
        assert_eq!(genmask(51, 6), 0x000f_ffff_ffff_ffc0);
        assert_eq!(genmask(63, 0), u64::MAX);
        assert_eq!(field(0xabcd, 4, 8), 0xbc);
        assert_eq!(prep(0x1ff, 0, 8), 0xff);
        assert_eq!(IrqLine::CmdqSync.dt_name(), "cmdq-sync");
    }
}
