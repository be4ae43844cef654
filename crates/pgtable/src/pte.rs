//! The descriptors pgtable writes: [`Pte`], a typed VMSAv8-64 long descriptor, with the leaf
//! attributes of each stage as their own types ([`S1Attrs`], [`S2Attrs`]).
//!
//! The bit layout is `smmu_arch::desc`, the one statement of it in the workspace (the hardware
//! walkers decode with the same definitions, in their own code). This module adds what only the
//! software side needs: Linux's `prot` → attribute rules ([`LeafAttrs::from_prot`]) and a
//! human-readable decode ([`describe`]).
//!
//! The page-table code itself keeps descriptors as `u64` words in its loops (the `pub(crate)`
//! helpers below); [`Pte`] is what crosses the public API.

use crate::config::MAX_LEVELS;
use crate::{Prot, Quirks};
use smmu_addr::PhysAddr;
use smmu_arch::desc;
use smmu_arch::Stage;

// ------------------------------------------------------------------ raw words (crate-internal)

/// Bits [1:0] of a table descriptor (and of a page at the last level).
pub(crate) const TYPE_TABLE: u64 = desc::TYPE_TABLE_OR_PAGE;
/// Bits [1:0]: the valid bit and the type.
pub(crate) const TYPE_MASK: u64 = desc::TYPE_MASK;
/// Bits [1:0] of a page descriptor.
pub(crate) const TYPE_PAGE: u64 = desc::TYPE_TABLE_OR_PAGE;
/// Bits [1:0] of a block descriptor.
pub(crate) const TYPE_BLOCK: u64 = desc::TYPE_BLOCK;
/// Output-address bits 47:12.
pub(crate) const ADDR_MASK: u64 = desc::OUTPUT_ADDR;
/// Software bit 55: the non-coherent table-install protocol marks a cleaned table with it.
pub(crate) const SW_SYNC: u64 = 1 << 55;
/// Table descriptor: next level is non-secure (NS quirk).
pub(crate) const NSTABLE: u64 = desc::table::NSTABLE;
/// Attribute bits kept when a block is split: 11:2 and XN (not the contiguous bit).
pub(crate) const ATTR_MASK: u64 = (0x3ff << 2) | desc::leaf::XN;
/// The shareability field, bits [9:8].
const SH_MASK: u64 = field_mask(desc::leaf::SH_SHIFT, desc::leaf::SH_WIDTH);
/// The stage-1 AP[2:1] field, bits [7:6].
const S1_AP_MASK: u64 = desc::s1::AP_UNPRIV | desc::s1::AP_RDONLY;
/// The stage-2 S2AP field, bits [7:6].
const S2AP_MASK: u64 = desc::s2::S2AP_READ | desc::s2::S2AP_WRITE;
/// The stage-1 AttrIndx field, bits [4:2].
const ATTRINDX_MASK: u64 = field_mask(desc::s1::ATTRINDX_SHIFT, desc::s1::ATTRINDX_WIDTH);
/// The stage-2 MemAttr field, bits [5:2].
const MEMATTR_MASK: u64 = field_mask(desc::s2::MEMATTR_SHIFT, desc::s2::MEMATTR_WIDTH);

const fn field_mask(shift: u32, width: u32) -> u64 {
    ((1 << width) - 1) << shift
}

/// Whether a descriptor is valid.
#[inline(always)]
pub(crate) const fn is_valid(pte: u64) -> bool {
    pte & desc::VALID != 0
}

/// Whether a valid descriptor at level `lvl` is a leaf (page at level 3, block above).
#[inline(always)]
pub(crate) const fn is_leaf(pte: u64, lvl: u32) -> bool {
    pte & desc::TYPE_MASK == leaf_type(lvl)
}

/// Whether a descriptor at level `lvl` points to a next-level table.
#[inline(always)]
pub(crate) const fn is_table(pte: u64, lvl: u32) -> bool {
    lvl < MAX_LEVELS - 1 && pte & desc::TYPE_MASK == TYPE_TABLE
}

/// Output address (or next-table address) of a descriptor.
#[inline(always)]
pub(crate) const fn pte_addr(pte: u64) -> u64 {
    pte & ADDR_MASK
}

/// Leaf type bits for level `lvl`.
#[inline(always)]
pub(crate) const fn leaf_type(lvl: u32) -> u64 {
    if lvl == MAX_LEVELS - 1 {
        TYPE_PAGE
    } else {
        TYPE_BLOCK
    }
}

// ------------------------------------------------------------------------------ typed view

/// One VMSAv8-64 long descriptor (a translation-table entry), as pgtable writes it.
///
/// What the bits mean depends on the level (bits [1:0] are "table" above the last level and
/// "page" at it) and, for a leaf's attributes, on the stage: [`Pte::kind`] takes the level,
/// [`Pte::s1_attrs`] / [`Pte::s2_attrs`] decode the attributes of a leaf of each stage.
/// `{:#x}` prints the raw word.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pte(u64);

/// What a descriptor is at the level it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PteKind {
    /// Bit 0 clear: a walk stops with a translation fault.
    Invalid,
    /// A pointer to the next level's table.
    Table(PhysAddr),
    /// A block (above the last level) or page (at it) mapping this output address.
    Leaf(PhysAddr),
    /// Bits [1:0] = 0b01 at the last level: reserved, a walk faults.
    Reserved,
}

impl Pte {
    /// The all-zero (invalid) descriptor.
    pub const INVALID: Pte = Pte(0);

    /// The descriptor with these 64 bits.
    pub const fn from_bits(bits: u64) -> Pte {
        Pte(bits)
    }

    /// The 64 bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// A table descriptor pointing at `next` (NSTable set when `ns`).
    pub const fn table(next: PhysAddr, ns: bool) -> Pte {
        let nstable = if ns { NSTABLE } else { 0 };
        Pte((next.as_u64() & ADDR_MASK) | TYPE_TABLE | nstable)
    }

    /// A leaf at level `lvl` (a page at the last level, a block above it) mapping `out`.
    pub fn leaf(out: PhysAddr, lvl: u32, attrs: LeafAttrs) -> Pte {
        Pte((out.as_u64() & ADDR_MASK) | attrs.bits() | leaf_type(lvl))
    }

    /// Bit 0.
    pub const fn is_valid(self) -> bool {
        is_valid(self.0)
    }

    /// The output address (of a leaf) or next-table address (of a table), bits [47:12].
    pub const fn addr(self) -> PhysAddr {
        PhysAddr::new(pte_addr(self.0))
    }

    /// What this descriptor is when read at level `lvl`.
    pub const fn kind(self, lvl: u32) -> PteKind {
        if !is_valid(self.0) {
            PteKind::Invalid
        } else if is_table(self.0, lvl) {
            PteKind::Table(self.addr())
        } else if is_leaf(self.0, lvl) {
            PteKind::Leaf(self.addr())
        } else {
            PteKind::Reserved
        }
    }

    /// The leaf attributes, read as a stage-1 descriptor.
    pub const fn s1_attrs(self) -> S1Attrs {
        let b = self.0;
        S1Attrs {
            ap: match b & S1_AP_MASK {
                0 => S1Ap::PrivRw,
                desc::s1::AP_UNPRIV => S1Ap::Rw,
                desc::s1::AP_RDONLY => S1Ap::PrivRo,
                _ => S1Ap::Ro,
            },
            attr_indx: AttrIndx(((b & ATTRINDX_MASK) >> desc::s1::ATTRINDX_SHIFT) as u8),
            ng: b & desc::s1::NG != 0,
            ns: b & desc::s1::NS != 0,
            common: CommonAttrs::decode(b),
        }
    }

    /// The leaf attributes, read as a stage-2 descriptor.
    pub const fn s2_attrs(self) -> S2Attrs {
        let b = self.0;
        S2Attrs {
            s2ap: match b & S2AP_MASK {
                0 => S2Ap::None,
                desc::s2::S2AP_READ => S2Ap::ReadOnly,
                desc::s2::S2AP_WRITE => S2Ap::WriteOnly,
                _ => S2Ap::ReadWrite,
            },
            mem_attr: MemAttr(((b & MEMATTR_MASK) >> desc::s2::MEMATTR_SHIFT) as u8),
            common: CommonAttrs::decode(b),
        }
    }

    /// The leaf attributes for `stage`.
    pub const fn attrs(self, stage: Stage) -> LeafAttrs {
        match stage {
            Stage::S1 => LeafAttrs::S1(self.s1_attrs()),
            Stage::S2 => LeafAttrs::S2(self.s2_attrs()),
        }
    }
}

impl std::fmt::Debug for Pte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pte({:#x})", self.0)
    }
}

impl std::fmt::LowerHex for Pte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::LowerHex::fmt(&self.0, f)
    }
}

/// Stage-1 AP[2:1]: who may read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum S1Ap {
    /// 0b00: privileged read/write, no unprivileged access.
    PrivRw,
    /// 0b01: read/write at any privilege.
    Rw,
    /// 0b10: privileged read-only.
    PrivRo,
    /// 0b11: read-only at any privilege.
    Ro,
}

/// Stage-1 AttrIndx: which byte of MAIR holds the memory type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttrIndx(pub u8);

impl AttrIndx {
    /// Normal non-cacheable (io-pgtable's MAIR index 0).
    pub const NC: AttrIndx = AttrIndx(crate::MAIR_IDX_NC as u8);
    /// Normal write-back read/write-allocate (index 1).
    pub const CACHE: AttrIndx = AttrIndx(crate::MAIR_IDX_CACHE as u8);
    /// Device-nGnRE (index 2).
    pub const DEV: AttrIndx = AttrIndx(crate::MAIR_IDX_DEV as u8);
    /// Inner non-cacheable, outer write-back (index 3).
    pub const INC_OCACHE: AttrIndx = AttrIndx(crate::MAIR_IDX_INC_OCACHE as u8);
}

/// Stage-2 S2AP: which accesses the stage-2 translation allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum S2Ap {
    /// 0b00: none.
    None,
    /// 0b01: reads only.
    ReadOnly,
    /// 0b10: writes only.
    WriteOnly,
    /// 0b11: reads and writes.
    ReadWrite,
}

/// Stage-2 MemAttr[3:0]: the memory type, directly (stage 2 has no MAIR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemAttr(pub u8);

impl MemAttr {
    /// Device-nGnRE.
    pub const DEVICE: MemAttr = MemAttr(0x1);
    /// Normal, inner and outer non-cacheable.
    pub const NORMAL_NC: MemAttr = MemAttr(0x5);
    /// Normal, inner and outer write-back.
    pub const NORMAL_WB: MemAttr = MemAttr(0xf);
}

/// Shareability, SH[1:0].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shareability {
    /// 0b00.
    Non,
    /// 0b01: reserved.
    Reserved,
    /// 0b10.
    Outer,
    /// 0b11.
    Inner,
}

/// Leaf attributes both stages have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommonAttrs {
    /// SH.
    pub sh: Shareability,
    /// The access flag.
    pub af: bool,
    /// Both execute-never bits set.
    pub xn: bool,
}

impl CommonAttrs {
    const fn decode(b: u64) -> CommonAttrs {
        CommonAttrs {
            sh: match (b & SH_MASK) >> desc::leaf::SH_SHIFT {
                0 => Shareability::Non,
                1 => Shareability::Reserved,
                2 => Shareability::Outer,
                _ => Shareability::Inner,
            },
            af: b & desc::leaf::AF != 0,
            xn: b & desc::leaf::XN == desc::leaf::XN,
        }
    }

    const fn bits(self) -> u64 {
        let sh = match self.sh {
            Shareability::Non => 0,
            Shareability::Reserved => 1,
            Shareability::Outer => 2,
            Shareability::Inner => 3,
        };
        let mut b = sh << desc::leaf::SH_SHIFT;
        if self.af {
            b |= desc::leaf::AF;
        }
        if self.xn {
            b |= desc::leaf::XN;
        }
        b
    }
}

/// A stage-1 leaf's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct S1Attrs {
    /// AP[2:1].
    pub ap: S1Ap,
    /// AttrIndx.
    pub attr_indx: AttrIndx,
    /// nG: tagged with the ASID.
    pub ng: bool,
    /// NS: non-secure output.
    pub ns: bool,
    /// SH, AF, XN.
    pub common: CommonAttrs,
}

/// A stage-2 leaf's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct S2Attrs {
    /// S2AP.
    pub s2ap: S2Ap,
    /// MemAttr.
    pub mem_attr: MemAttr,
    /// SH, AF, XN.
    pub common: CommonAttrs,
}

/// A leaf's attributes, per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeafAttrs {
    /// Stage-1 layout.
    S1(S1Attrs),
    /// Stage-2 layout.
    S2(S2Attrs),
}

impl LeafAttrs {
    /// The attribute bits (everything but the type bits and the output address).
    pub const fn bits(self) -> u64 {
        match self {
            LeafAttrs::S1(a) => {
                let ap = match a.ap {
                    S1Ap::PrivRw => 0,
                    S1Ap::Rw => desc::s1::AP_UNPRIV,
                    S1Ap::PrivRo => desc::s1::AP_RDONLY,
                    S1Ap::Ro => desc::s1::AP_UNPRIV | desc::s1::AP_RDONLY,
                };
                let mut b = ap
                    | (((a.attr_indx.0 as u64) << desc::s1::ATTRINDX_SHIFT) & ATTRINDX_MASK)
                    | a.common.bits();
                if a.ng {
                    b |= desc::s1::NG;
                }
                if a.ns {
                    b |= desc::s1::NS;
                }
                b
            }
            LeafAttrs::S2(a) => {
                let s2ap = match a.s2ap {
                    S2Ap::None => 0,
                    S2Ap::ReadOnly => desc::s2::S2AP_READ,
                    S2Ap::WriteOnly => desc::s2::S2AP_WRITE,
                    S2Ap::ReadWrite => desc::s2::S2AP_READ | desc::s2::S2AP_WRITE,
                };
                s2ap | (((a.mem_attr.0 as u64) << desc::s2::MEMATTR_SHIFT) & MEMATTR_MASK)
                    | a.common.bits()
            }
        }
    }

    /// The attributes io-pgtable-arm gives a leaf mapped with `prot` (`arm_lpae_prot_to_pte`).
    pub fn from_prot(stage: Stage, quirks: Quirks, prot: Prot) -> LeafAttrs {
        let common = CommonAttrs {
            sh: if prot.contains(Prot::CACHE) {
                Shareability::Inner
            } else {
                Shareability::Outer
            },
            af: true,
            xn: prot.contains(Prot::NOEXEC),
        };
        match stage {
            Stage::S1 => {
                let rdonly = prot.contains(Prot::READ) && !prot.contains(Prot::WRITE);
                let unpriv = !prot.contains(Prot::PRIV);
                LeafAttrs::S1(S1Attrs {
                    ap: match (rdonly, unpriv) {
                        (false, false) => S1Ap::PrivRw,
                        (false, true) => S1Ap::Rw,
                        (true, false) => S1Ap::PrivRo,
                        (true, true) => S1Ap::Ro,
                    },
                    attr_indx: if prot.contains(Prot::MMIO) {
                        AttrIndx::DEV
                    } else if prot.contains(Prot::CACHE) {
                        AttrIndx::CACHE
                    } else {
                        AttrIndx::NC
                    },
                    ng: true,
                    ns: quirks.arm_ns,
                    common,
                })
            }
            Stage::S2 => LeafAttrs::S2(S2Attrs {
                s2ap: match (prot.contains(Prot::READ), prot.contains(Prot::WRITE)) {
                    (false, false) => S2Ap::None,
                    (true, false) => S2Ap::ReadOnly,
                    (false, true) => S2Ap::WriteOnly,
                    (true, true) => S2Ap::ReadWrite,
                },
                mem_attr: if prot.contains(Prot::MMIO) {
                    MemAttr::DEVICE
                } else if prot.contains(Prot::CACHE) {
                    MemAttr::NORMAL_WB
                } else {
                    MemAttr::NORMAL_NC
                },
                common,
            }),
        }
    }
}

/// Attribute bits of a leaf for `prot` (everything but the type and the address), as
/// `arm_lpae_prot_to_pte` computes them.
pub(crate) fn prot_to_pte(stage: Stage, quirks: Quirks, prot: Prot) -> u64 {
    let bits = LeafAttrs::from_prot(stage, quirks, prot).bits();
    // The NS quirk's bit 5 goes into stage-2 leaves as well (io-pgtable ORs it in regardless
    // of the stage).
    if quirks.arm_ns {
        bits | desc::s1::NS
    } else {
        bits
    }
}

/// One-line meaning of a descriptor found at level `lvl` (for dumps and logs).
pub fn describe(stage: Stage, pte: Pte, lvl: u32) -> String {
    let out = match pte.kind(lvl) {
        PteKind::Invalid => return "invalid".to_string(),
        PteKind::Reserved => return format!("reserved type {}", pte.bits() & desc::TYPE_MASK),
        PteKind::Table(next) => {
            let mut s = format!("table -> {next:#x}");
            if pte.bits() & NSTABLE != 0 {
                s.push_str(" NSTABLE");
            }
            if pte.bits() & SW_SYNC != 0 {
                s.push_str(" SW_SYNC");
            }
            return s;
        }
        PteKind::Leaf(out) => out,
    };
    let kind = if lvl == MAX_LEVELS - 1 {
        "page"
    } else {
        "block"
    };
    let mut s = format!("{kind} pa {out:#x}");
    let common = match pte.attrs(stage) {
        LeafAttrs::S1(a) => {
            s.push_str(match a.ap {
                S1Ap::PrivRo | S1Ap::Ro => " RO",
                S1Ap::PrivRw | S1Ap::Rw => " RW",
            });
            s.push_str(match a.ap {
                S1Ap::Rw | S1Ap::Ro => " EL0",
                S1Ap::PrivRw | S1Ap::PrivRo => " PRIV",
            });
            s.push_str(match a.attr_indx {
                AttrIndx::NC => " attr0(NC)",
                AttrIndx::CACHE => " attr1(WB)",
                AttrIndx::DEV => " attr2(DEV)",
                AttrIndx::INC_OCACHE => " attr3(INC-OWB)",
                _ => " attr?",
            });
            if a.ng {
                s.push_str(" nG");
            }
            if a.ns {
                s.push_str(" NS");
            }
            a.common
        }
        LeafAttrs::S2(a) => {
            s.push_str(match a.s2ap {
                S2Ap::None => " HAP--",
                S2Ap::ReadOnly => " HAP-R",
                S2Ap::WriteOnly => " HAP-W",
                S2Ap::ReadWrite => " HAP-RW",
            });
            s.push_str(match a.mem_attr {
                MemAttr::NORMAL_WB => " OIWB",
                MemAttr::NORMAL_NC => " NC",
                MemAttr::DEVICE => " DEV",
                _ => " MEMATTR?",
            });
            a.common
        }
    };
    s.push_str(match common.sh {
        Shareability::Inner => " IS",
        Shareability::Outer => " OS",
        Shareability::Non => " NSH",
        Shareability::Reserved => " SH?",
    });
    if common.af {
        s.push_str(" AF");
    }
    if common.xn {
        s.push_str(" XN");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every attribute value survives encode → decode, for both stages.
    #[test]
    fn attributes_round_trip() {
        for p in 0..64 {
            for stage in [Stage::S1, Stage::S2] {
                let a = LeafAttrs::from_prot(stage, Quirks::default(), Prot(p));
                let pte = Pte::leaf(PhysAddr::new(0x8000_1000), 3, a);
                assert_eq!(pte.attrs(stage), a, "prot {p:#x} {stage:?}");
                assert_eq!(pte.kind(3), PteKind::Leaf(PhysAddr::new(0x8000_1000)));
                assert_eq!(pte.kind(2), PteKind::Table(PhysAddr::new(0x8000_1000)));
            }
        }
        let t = Pte::table(PhysAddr::new(0x1234_5000), true);
        assert_eq!(t.bits(), 0x8000_0000_1234_5003);
        assert_eq!(Pte::from_bits(0x4001).kind(3), PteKind::Reserved);
    }

    /// The bit values io-pgtable-arm writes for a few `prot`s.
    #[test]
    fn prot_bits_match_io_pgtable() {
        let rw = Prot::READ | Prot::WRITE;
        // S1 RW cacheable: nG | AF | SH_IS | AttrIndx 1 | AP_UNPRIV.
        assert_eq!(
            prot_to_pte(Stage::S1, Quirks::default(), rw | Prot::CACHE),
            0x800 | 0x400 | 0x300 | 0x4 | 0x40
        );
        // S2 R-only device, XN: S2AP read | MemAttr 1 | SH_OS | AF | XN.
        assert_eq!(
            prot_to_pte(
                Stage::S2,
                Quirks::default(),
                Prot::READ | Prot::MMIO | Prot::NOEXEC
            ),
            0x40 | 0x4 | 0x200 | 0x400 | (3 << 53)
        );
    }
}
