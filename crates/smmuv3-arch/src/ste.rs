//! Stream table entries (64 bytes, eight dwords) and level-1 stream table descriptors.

use crate::genmask;

/// Bytes per STE.
pub const STE_BYTES: u64 = 64;
/// Dwords per STE.
pub const STE_DWORDS: usize = 8;
/// Bytes per level-1 descriptor.
pub const L1_DESC_BYTES: u64 = 8;

/// Dword 0.
pub const V: u64 = 1 << 0;
/// Bits [3:1]: Config.
pub const CFG_SHIFT: u32 = 1;
pub const CFG_MASK: u64 = 0x7 << CFG_SHIFT;
/// Config values (the three bits of STE.Config).
pub const CFG_ABORT: u64 = 0b000;
pub const CFG_BYPASS: u64 = 0b100;
pub const CFG_S1_TRANS: u64 = 0b101;
pub const CFG_S2_TRANS: u64 = 0b110;
pub const CFG_NESTED: u64 = 0b111;
/// Bits [5:4]: S1Fmt (0 linear CD table).
pub const S1FMT_SHIFT: u32 = 4;
pub const S1FMT_LINEAR: u64 = 0;
pub const S1FMT_64K_L2: u64 = 2;
/// Bits [51:6]: S1ContextPtr.
pub const S1CTXPTR_MASK: u64 = genmask(51, 6);
/// Bits [63:59]: S1CDMax (log2 of the number of CDs).
pub const S1CDMAX_SHIFT: u32 = 59;

/// Dword 1.
pub const S1DSS_SHIFT: u32 = 0;
pub const S1DSS_TERMINATE: u64 = 0;
pub const S1DSS_BYPASS: u64 = 1;
pub const S1DSS_SSID0: u64 = 2;
pub const S1CIR_SHIFT: u32 = 2;
pub const S1COR_SHIFT: u32 = 4;
pub const S1CSH_SHIFT: u32 = 6;
/// Write-back read-allocate, the value Linux gives S1CIR/S1COR.
pub const S1C_CACHE_WBRA: u64 = 1;
pub const S1STALLD: u64 = 1 << 27;
pub const EATS_SHIFT: u32 = 28;
pub const STRW_SHIFT: u32 = 30;
pub const STRW_NSEL1: u64 = 0;
pub const STRW_EL2: u64 = 2;
/// Bits [45:44]: SHCFG; 1 = use the incoming shareability.
pub const SHCFG_SHIFT: u32 = 44;
pub const SHCFG_INCOMING: u64 = 1;

/// Dword 2.
pub const S2VMID_MASK: u64 = 0xffff;
/// Bits [50:32]: the stage-2 VTCR fields.
pub const VTCR_SHIFT: u32 = 32;
pub const VTCR_MASK: u64 = genmask(50, 32);
/// Fields within the 19-bit VTCR value.
pub mod vtcr {
    pub const T0SZ_SHIFT: u32 = 0;
    pub const SL0_SHIFT: u32 = 6;
    pub const IR0_SHIFT: u32 = 8;
    pub const OR0_SHIFT: u32 = 10;
    pub const SH0_SHIFT: u32 = 12;
    pub const TG_SHIFT: u32 = 14;
    pub const PS_SHIFT: u32 = 16;
}
pub const S2AA64: u64 = 1 << 51;
pub const S2ENDI: u64 = 1 << 52;
pub const S2AFFD: u64 = 1 << 53;
pub const S2PTW: u64 = 1 << 54;
pub const S2S: u64 = 1 << 57;
/// Record stage-2 translation-class faults in the event queue.
pub const S2R: u64 = 1 << 58;

/// Dword 3: bits [51:4] S2TTB.
pub const S2TTB_MASK: u64 = genmask(51, 4);

/// Level-1 descriptor: bits [4:0] SPAN (0 = invalid; else the L2 table has 2^(SPAN-1) STEs).
pub const L1_SPAN_MASK: u64 = 0x1f;
/// Level-1 descriptor: bits [51:6] L2Ptr.
pub const L1_L2PTR_MASK: u64 = genmask(51, 6);

/// STE.Config of dword 0.
pub const fn config(d0: u64) -> u64 {
    (d0 & CFG_MASK) >> CFG_SHIFT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_match_linux() {
        assert_eq!(CFG_MASK, 0xe);
        assert_eq!(config(V | (CFG_S1_TRANS << CFG_SHIFT)), 5);
        assert_eq!(SHCFG_INCOMING << SHCFG_SHIFT, 0x1000_0000_0000);
        assert_eq!(S2R | S2PTW | S2AA64, 0x0448_0000_0000_0000);
        assert_eq!(S1CTXPTR_MASK, 0x000f_ffff_ffff_ffc0);
    }
}
