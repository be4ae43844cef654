//! Context descriptors (64 bytes): the stage-1 translation of one substream.

use crate::genmask;

/// Bytes per CD.
pub const CD_BYTES: u64 = 64;

/// Dword 0 fields.
pub const T0SZ_SHIFT: u32 = 0;
pub const TG0_SHIFT: u32 = 6;
pub const IRGN0_SHIFT: u32 = 8;
pub const ORGN0_SHIFT: u32 = 10;
pub const SH0_SHIFT: u32 = 12;
pub const EPD0: u64 = 1 << 14;
pub const ENDI: u64 = 1 << 15;
pub const T1SZ_SHIFT: u32 = 16;
pub const EPD1: u64 = 1 << 30;
pub const V: u64 = 1 << 31;
/// Bits [34:32]: intermediate physical size of the stage-1 output.
pub const IPS_SHIFT: u32 = 32;
pub const AFFD: u64 = 1 << 35;
pub const WXN: u64 = 1 << 36;
pub const UWXN: u64 = 1 << 37;
pub const TBI0: u64 = 1 << 38;
pub const AA64: u64 = 1 << 41;
pub const HD: u64 = 1 << 42;
pub const HA: u64 = 1 << 43;
/// Stall faults.
pub const S: u64 = 1 << 44;
/// Record faults in the event queue.
pub const R: u64 = 1 << 45;
/// Abort (rather than respond RAZ/WI to) faulting transactions.
pub const A: u64 = 1 << 46;
/// ASID set: the ASID is not shared with CPU TLB broadcast.
pub const ASET: u64 = 1 << 47;
pub const ASID_SHIFT: u32 = 48;

/// Dword 1: bits [51:4] TTB0.
pub const TTB0_MASK: u64 = genmask(51, 4);
/// Dword 3: MAIR.
pub const MAIR_DWORD: usize = 3;

/// TG0 encodings (same as TCR_EL1.TG0).
pub const TG0_4K: u64 = 0;
pub const TG0_64K: u64 = 1;
pub const TG0_16K: u64 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_match_linux() {
        assert_eq!(V | R | A | ASET | AA64, 0x0000_e200_8000_0000);
        assert_eq!(1u64 << ASID_SHIFT, 0x0001_0000_0000_0000);
        assert_eq!(TTB0_MASK, 0x000f_ffff_ffff_fff0);
    }
}
