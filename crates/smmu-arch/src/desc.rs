//! The VMSAv8-64 long-descriptor format (4K/16K/64K granules, 48-bit output addresses): the bit
//! layout of the translation-table entries the SMMU walks, as the architecture defines it.
//!
//! This is the one statement of the layout in the workspace for the hardware side: the `mmu500`
//! model's walker decodes descriptors with these definitions (its decoding code is its own, so
//! it stays independent of `pgtable`, rule 2). Which bits mean what depends on the stage, so
//! the attribute fields are grouped per stage.

/// Bit 0: the entry is valid. An invalid entry makes the walk stop with a translation fault.
pub const VALID: u64 = 1 << 0;
/// Bit 1: at levels 0–2 a table (set) or a block (clear); at level 3 it must be set (a page).
pub const TABLE: u64 = 1 << 1;
/// Bits [1:0] of a table descriptor, and of a page descriptor at the last level.
pub const TYPE_TABLE_OR_PAGE: u64 = VALID | TABLE;
/// Bits [1:0] of a block descriptor.
pub const TYPE_BLOCK: u64 = VALID;
/// The two type bits.
pub const TYPE_MASK: u64 = VALID | TABLE;

/// Output address bits [47:12] of a table, block or page descriptor (the low bits of a block's
/// address below its size are RES0 and ignored by a walk).
pub const OUTPUT_ADDR: u64 = 0x0000_ffff_ffff_f000;

/// Extract the `width`-bit field at `shift` of descriptor `d` (the `*_SHIFT`/`*_WIDTH` pairs
/// below).
#[inline]
pub const fn field(d: u64, shift: u32, width: u32) -> u64 {
    (d >> shift) & ((1u64 << width) - 1)
}

/// Lower and upper attributes of a leaf (block or page) that both stages share.
pub mod leaf {
    /// Shareability, bits [9:8].
    pub const SH_SHIFT: u32 = 8;
    /// Width of SH.
    pub const SH_WIDTH: u32 = 2;
    /// Access flag, bit 10: clear means the first access faults (an access-flag fault) unless
    /// the hardware manages the flag.
    pub const AF: u64 = 1 << 10;
    /// Execute-never, bits [54:53] (UXN/PXN at stage 1, XN[1:0] at stage 2).
    pub const XN: u64 = 3 << 53;
}

/// Leaf attributes that only a stage-1 descriptor has.
pub mod s1 {
    /// AttrIndx, bits [4:2]: which byte of MAIR gives the memory type.
    pub const ATTRINDX_SHIFT: u32 = 2;
    /// Width of AttrIndx.
    pub const ATTRINDX_WIDTH: u32 = 3;
    /// NS, bit 5.
    pub const NS: u64 = 1 << 5;
    /// AP[1], bit 6: unprivileged (EL0) access allowed.
    pub const AP_UNPRIV: u64 = 1 << 6;
    /// AP[2], bit 7: read-only.
    pub const AP_RDONLY: u64 = 1 << 7;
    /// nG, bit 11: the translation is tagged with the ASID.
    pub const NG: u64 = 1 << 11;
}

/// Leaf attributes that only a stage-2 descriptor has.
pub mod s2 {
    /// MemAttr, bits [5:2]: the memory type, directly (no MAIR at stage 2).
    pub const MEMATTR_SHIFT: u32 = 2;
    /// Width of MemAttr.
    pub const MEMATTR_WIDTH: u32 = 4;
    /// S2AP[0], bit 6: reads allowed.
    pub const S2AP_READ: u64 = 1 << 6;
    /// S2AP[1], bit 7: writes allowed.
    pub const S2AP_WRITE: u64 = 1 << 7;
}

/// Hierarchical attributes of a table descriptor (stage 1 only; they limit everything below).
pub mod table {
    /// PXNTable, bit 59.
    pub const PXNTABLE: u64 = 1 << 59;
    /// UXNTable/XNTable, bit 60.
    pub const XNTABLE: u64 = 1 << 60;
    /// APTable[0], bit 61: no unprivileged access below this table.
    pub const APTABLE_NO_UNPRIV: u64 = 1 << 61;
    /// APTable[1], bit 62: no write access below this table.
    pub const APTABLE_RDONLY: u64 = 1 << 62;
    /// NSTable, bit 63.
    pub const NSTABLE: u64 = 1 << 63;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit positions, against the VMSAv8-64 long-descriptor format.
    #[test]
    fn layout_matches_the_architecture() {
        assert_eq!(TYPE_TABLE_OR_PAGE, 0b11);
        assert_eq!(TYPE_BLOCK, 0b01);
        assert_eq!(OUTPUT_ADDR, ((1u64 << 48) - 1) & !0xfff);
        assert_eq!(leaf::AF, 0x400);
        assert_eq!(leaf::XN, 0x0060_0000_0000_0000);
        assert_eq!((s1::AP_UNPRIV, s1::AP_RDONLY, s1::NG), (0x40, 0x80, 0x800));
        assert_eq!((s2::S2AP_READ, s2::S2AP_WRITE), (0x40, 0x80));
        assert_eq!(
            (
                table::APTABLE_NO_UNPRIV,
                table::APTABLE_RDONLY,
                table::NSTABLE
            ),
            (1 << 61, 1 << 62, 1 << 63)
        );
        // Stage-1 AP and stage-2 S2AP share bits 7:6; the walker reads them per stage.
        assert_eq!(s1::AP_UNPRIV, s2::S2AP_READ);
        assert_eq!(s1::AP_RDONLY, s2::S2AP_WRITE);
        // AttrIndx is bits 4:2 and SH bits 9:8 of a leaf.
        let d = 0b11_0001_1100;
        assert_eq!(field(d, s1::ATTRINDX_SHIFT, s1::ATTRINDX_WIDTH), 0b111);
        assert_eq!(field(d, leaf::SH_SHIFT, leaf::SH_WIDTH), 0b11);
        assert_eq!(field(d, s2::MEMATTR_SHIFT, s2::MEMATTR_WIDTH), 0b0111);
    }
}
