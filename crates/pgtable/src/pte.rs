//! Long-descriptor bits, `prot` → descriptor attributes, and a human-readable decode.

use crate::config::{Stage, MAIR_IDX_CACHE, MAIR_IDX_DEV, MAX_LEVELS};
use crate::{Prot, Quirks};

/// Descriptor type bits 1:0 of a block (a leaf above the last level).
pub const TYPE_BLOCK: u64 = 1;
/// Descriptor type bits 1:0 of a table (above the last level).
pub const TYPE_TABLE: u64 = 3;
/// Descriptor type bits 1:0 of a page (a leaf at level 3).
pub const TYPE_PAGE: u64 = 3;
/// Mask of the type bits.
pub const TYPE_MASK: u64 = 3;
/// Valid bit.
pub const VALID: u64 = 1;
/// Shift of the stage-1 MAIR index (ATTRINDX, bits 4:2).
pub const ATTRINDX_SHIFT: u32 = 2;
/// Non-secure output (NS quirk).
pub const NS: u64 = 1 << 5;
/// S1 AP bit 1: EL0 (unprivileged) access allowed.
pub const AP_UNPRIV: u64 = 1 << 6;
/// S1 AP bit 2: read-only.
pub const AP_RDONLY: u64 = 1 << 7;
/// S2 HAP: read allowed.
pub const HAP_READ: u64 = 1 << 6;
/// S2 HAP: write allowed.
pub const HAP_WRITE: u64 = 2 << 6;
/// Shareability: outer.
pub const SH_OS: u64 = 2 << 8;
/// Shareability: inner.
pub const SH_IS: u64 = 3 << 8;
/// Access flag.
pub const AF: u64 = 1 << 10;
/// Not global (S1).
pub const NG: u64 = 1 << 11;
/// Execute-never (both XN bits).
pub const XN: u64 = 3 << 53;
/// Software bit: the non-coherent table-install protocol marks a cleaned table with it.
pub const SW_SYNC: u64 = 1 << 55;
/// Table descriptor: next level is non-secure (NS quirk).
pub const NSTABLE: u64 = 1 << 63;
/// S2 MEMATTR: outer/inner write-back.
pub const MEMATTR_OIWB: u64 = 0xf << 2;
/// S2 MEMATTR: normal non-cacheable.
pub const MEMATTR_NC: u64 = 0x5 << 2;
/// S2 MEMATTR: device.
pub const MEMATTR_DEV: u64 = 0x1 << 2;
/// Output-address bits 47:12.
pub const ADDR_MASK: u64 = ((1 << 48) - 1) & !0xfff;
/// Attribute bits kept when a block is split: 11:2 and XN (not the contiguous bit).
pub const ATTR_MASK: u64 = (0x3ff << 2) | XN;

/// Whether a descriptor is valid.
#[inline(always)]
pub const fn is_valid(pte: u64) -> bool {
    pte & VALID != 0
}

/// Whether a valid descriptor at level `lvl` is a leaf (page at level 3, block above).
#[inline(always)]
pub const fn is_leaf(pte: u64, lvl: u32) -> bool {
    if lvl == MAX_LEVELS - 1 {
        pte & TYPE_MASK == TYPE_PAGE
    } else {
        pte & TYPE_MASK == TYPE_BLOCK
    }
}

/// Whether a descriptor at level `lvl` points to a next-level table.
#[inline(always)]
pub const fn is_table(pte: u64, lvl: u32) -> bool {
    lvl < MAX_LEVELS - 1 && pte & TYPE_MASK == TYPE_TABLE
}

/// Output address (or next-table address) of a descriptor.
#[inline(always)]
pub const fn pte_addr(pte: u64) -> u64 {
    pte & ADDR_MASK
}

/// Leaf type bits for level `lvl`.
#[inline(always)]
pub const fn leaf_type(lvl: u32) -> u64 {
    if lvl == MAX_LEVELS - 1 {
        TYPE_PAGE
    } else {
        TYPE_BLOCK
    }
}

/// Attribute bits of a leaf for `prot` (everything but the type and the address), as
/// `arm_lpae_prot_to_pte` computes them.
#[inline]
pub fn prot_to_pte(stage: Stage, quirks: Quirks, prot: Prot) -> u64 {
    let mut pte = match stage {
        Stage::S1 => {
            let mut p = NG;
            if prot.contains(Prot::READ) && !prot.contains(Prot::WRITE) {
                p |= AP_RDONLY;
            }
            if !prot.contains(Prot::PRIV) {
                p |= AP_UNPRIV;
            }
            if prot.contains(Prot::MMIO) {
                p |= MAIR_IDX_DEV << ATTRINDX_SHIFT;
            } else if prot.contains(Prot::CACHE) {
                p |= MAIR_IDX_CACHE << ATTRINDX_SHIFT;
            }
            p
        }
        Stage::S2 => {
            let mut p = 0;
            if prot.contains(Prot::READ) {
                p |= HAP_READ;
            }
            if prot.contains(Prot::WRITE) {
                p |= HAP_WRITE;
            }
            if prot.contains(Prot::MMIO) {
                p |= MEMATTR_DEV;
            } else if prot.contains(Prot::CACHE) {
                p |= MEMATTR_OIWB;
            } else {
                p |= MEMATTR_NC;
            }
            p
        }
    };
    pte |= if prot.contains(Prot::CACHE) {
        SH_IS
    } else {
        SH_OS
    };
    if prot.contains(Prot::NOEXEC) {
        pte |= XN;
    }
    if quirks.arm_ns {
        pte |= NS;
    }
    pte | AF
}

/// One-line meaning of a descriptor found at level `lvl` (for dumps and logs).
pub fn describe(stage: Stage, pte: u64, lvl: u32) -> String {
    if !is_valid(pte) {
        return "invalid".to_string();
    }
    if is_table(pte, lvl) {
        let mut s = format!("table -> {:#x}", pte_addr(pte));
        if pte & NSTABLE != 0 {
            s.push_str(" NSTABLE");
        }
        if pte & SW_SYNC != 0 {
            s.push_str(" SW_SYNC");
        }
        return s;
    }
    if !is_leaf(pte, lvl) {
        return format!("reserved type {}", pte & TYPE_MASK);
    }
    let kind = if lvl == MAX_LEVELS - 1 {
        "page"
    } else {
        "block"
    };
    let mut s = format!("{kind} pa {:#x}", pte_addr(pte));
    match stage {
        Stage::S1 => {
            s.push_str(if pte & AP_RDONLY != 0 { " RO" } else { " RW" });
            s.push_str(if pte & AP_UNPRIV != 0 {
                " EL0"
            } else {
                " PRIV"
            });
            let idx = (pte >> ATTRINDX_SHIFT) & 7;
            s.push_str(match idx {
                0 => " attr0(NC)",
                1 => " attr1(WB)",
                2 => " attr2(DEV)",
                3 => " attr3(INC-OWB)",
                _ => " attr?",
            });
            if pte & NG != 0 {
                s.push_str(" nG");
            }
            if pte & NS != 0 {
                s.push_str(" NS");
            }
        }
        Stage::S2 => {
            s.push_str(match pte & (HAP_READ | HAP_WRITE) {
                0 => " HAP--",
                HAP_READ => " HAP-R",
                HAP_WRITE => " HAP-W",
                _ => " HAP-RW",
            });
            s.push_str(match (pte >> 2) & 0xf {
                0xf => " OIWB",
                0x5 => " NC",
                0x1 => " DEV",
                _ => " MEMATTR?",
            });
        }
    }
    s.push_str(match pte & (3 << 8) {
        SH_IS => " IS",
        SH_OS => " OS",
        0 => " NSH",
        _ => " SH?",
    });
    if pte & AF != 0 {
        s.push_str(" AF");
    }
    if pte & XN == XN {
        s.push_str(" XN");
    }
    s
}
