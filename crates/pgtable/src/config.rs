//! Page-table configuration: what a driver asks for ([`PgTableRequest`]), what io-pgtable-arm
//! derives from it ([`PgTableCfg`], [`TableGeometry`]) and the translation-control register
//! values the SMMU driver programs from it.

use crate::error::{PgTableError, PgTableRequestError};
use crate::table::SplitRace;
use smmu_addr::PageSize;
use smmu_arch::Stage;

/// The page-size family of the 4 KiB granule (the sizes themselves are `smmu_addr::PageSize`'s).
pub const PGSIZES_4K: u64 =
    PageSize::bitmap_of(&[PageSize::SZ_4K, PageSize::SZ_2M, PageSize::SZ_1G]);
/// The page-size family of the 16 KiB granule.
pub const PGSIZES_16K: u64 = PageSize::bitmap_of(&[PageSize::SZ_16K, PageSize::SZ_32M]);
/// The page-size family of the 64 KiB granule (4 TiB blocks need 52-bit OAS, not supported).
pub const PGSIZES_64K: u64 = PageSize::bitmap_of(&[PageSize::SZ_64K, PageSize::SZ_512M]);

/// Largest supported input/output address size (52-bit LPA is not modelled).
pub const MAX_ADDR_BITS: u32 = 48;
/// Smallest supported input address size.
pub const MIN_IAS: u32 = 32;
/// Maximum number of translation levels.
pub const MAX_LEVELS: u32 = 4;
/// Maximum entries of a stage-2 PGD that may be concatenated at the next level.
pub const S2_MAX_CONCAT_PAGES: u64 = 16;

/// The MAIR value io-pgtable-arm programs for stage 1 (indices: 0 NC, 1 WBRWA, 2 device,
/// 3 inner-NC/outer-WB).
///
/// The upper 32 bits are all ones, as in Linux: io-pgtable-arm builds the value from `int`
/// shifts, and `ARM_LPAE_MAIR_ATTR_INC_OWBRWA (0xf4) << 24` is a negative `int`, so it is
/// sign-extended when the sum is widened to the 64-bit MAIR. The arm-smmu driver therefore
/// writes CB S1_MAIR1 = 0xffffffff (attribute indices 4..7 = 0xff, which no descriptor uses).
pub const MAIR: u64 = 0xffff_ffff_f404_ff44;
/// MAIR index of normal non-cacheable memory.
pub const MAIR_IDX_NC: u64 = 0;
/// MAIR index of write-back read/write-allocate memory.
pub const MAIR_IDX_CACHE: u64 = 1;
/// MAIR index of Device-nGnRE memory.
pub const MAIR_IDX_DEV: u64 = 2;
/// MAIR index of inner non-cacheable, outer WBRWA memory.
pub const MAIR_IDX_INC_OCACHE: u64 = 3;

/// Translation granule (the smallest page, and the size of every non-PGD table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granule {
    /// 4 KiB pages, 2 MiB and 1 GiB blocks.
    G4K,
    /// 16 KiB pages, 32 MiB blocks.
    G16K,
    /// 64 KiB pages, 512 MiB blocks.
    G64K,
}

impl Granule {
    /// The granule's page size.
    pub const fn size(self) -> PageSize {
        match self {
            Granule::G4K => PageSize::SZ_4K,
            Granule::G16K => PageSize::SZ_16K,
            Granule::G64K => PageSize::SZ_64K,
        }
    }
    /// log2 of the size (`pg_shift`).
    pub const fn shift(self) -> u32 {
        match self {
            Granule::G4K => 12,
            Granule::G16K => 14,
            Granule::G64K => 16,
        }
    }
    /// The page sizes a table of this granule can map.
    pub const fn page_sizes(self) -> u64 {
        match self {
            Granule::G4K => PGSIZES_4K,
            Granule::G16K => PGSIZES_16K,
            Granule::G64K => PGSIZES_64K,
        }
    }
    /// TCR.TG0 / VTCR.TG0 encoding (4K = 0, 64K = 1, 16K = 2).
    pub const fn tg0(self) -> u64 {
        match self {
            Granule::G4K => 0,
            Granule::G64K => 1,
            Granule::G16K => 2,
        }
    }
    /// TCR.TG1 encoding (16K = 1, 4K = 2, 64K = 3), for completeness.
    pub const fn tg1(self) -> u64 {
        match self {
            Granule::G16K => 1,
            Granule::G4K => 2,
            Granule::G64K => 3,
        }
    }
}

/// Which rule decides whether a stage-2 start level is folded into a concatenated PGD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum S2Concat {
    /// v6.1–v6.12: whenever the start level is 0 and the PGD has at most 16 entries.
    #[default]
    V6_1,
    /// Current Linux: only where the architecture makes it mandatory (16K start 0 with
    /// oas or ias 48; 4K start 0 with oas 40 or 42; 16K start 1 with oas 40).
    Mandatory,
}

/// What unmapping part of a block does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PartialUnmap {
    /// Linux ≤ 6.12: split the block into a table and unmap the requested part.
    #[default]
    Split,
    /// Linux ≥ 6.13: refuse (unmap returns 0).
    Refuse,
}

/// How many entries one map or unmap step may touch at a concatenated stage-2 PGD, whose
/// index runs past one table page (`d71fa842d33c`, v6.13; stable 5.15.174, 6.1.120, 6.6.64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PgdRunBound {
    /// Linux v5.15–v6.12: a table page's entry count minus the PGD index, which is zero or
    /// negative from the second page on. A map of a start-level block there writes nothing and
    /// reports that count times the page size as bytes mapped (wrapped, as Linux's `size_t`);
    /// an unmap there clears nothing and returns 0, leaving the subtree mapped.
    TableMinusIndex,
    /// `d71fa842d33c`: the entries left in the index's own table page.
    #[default]
    WithinPage,
}

/// How strictly `map_pages` and `iova_to_phys` check their input: Linux's checks, or
/// smmu-lab's stricter ones. Valid requests give the same tables either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fidelity {
    /// smmu-lab's checks: the whole IOVA and PA range is checked against IAS/OAS before
    /// anything is written (`IovaRange` wins over `Exists`), a block map meeting a leaf
    /// changes nothing, and `iova_to_phys` beyond the IAS returns 0.
    #[default]
    Safe,
    /// Linux io-pgtable-arm (v6.1–v6.12) under the IOMMU core's map loop: each call that
    /// fills one table checks only its first IOVA against the IAS and its first PA against the
    /// OAS (so later pages may map past the OAS, and a range crossing the top of the IAS maps
    /// up to it, then fails and is unmapped again, leaving its new tables); a run of entries
    /// at the start level is bounded by a full table's entry count, not the PGD's (a small
    /// PGD is overrun into the rest of its page); a block map frees the tables in its way one
    /// by one until it meets a leaf (`Exists`), so the mappings under the freed tables are
    /// lost; `iova_to_phys` ignores IOVA bits above the IAS.
    Linux,
}

/// Whether unmap gives back tables that it leaves empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TableReclaim {
    /// Linux: empty tables stay until the page table is freed (or a block replaces them).
    #[default]
    Keep,
    /// Free a table as soon as an unmap leaves it empty, so unmapping everything returns every
    /// table but the PGD. The parent entry is cleared, then a last-level table gets a
    /// `tlb_flush_walk` of its range and a higher one a `tlb_flush_all`, before the page is
    /// freed. Not Linux behaviour: an extension for long-lived domains.
    FreeEmpty,
}

/// Optional io-pgtable quirks that change descriptor or register bits (stage 1 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Quirks {
    /// IO_PGTABLE_QUIRK_ARM_NS: NS in leaves, NSTABLE in table descriptors.
    pub arm_ns: bool,
    /// IO_PGTABLE_QUIRK_ARM_OUTER_WBWA: ORGN = WBWA for a non-coherent walk.
    pub outer_wbwa: bool,
}

/// What a driver asks for (Linux's `io_pgtable_cfg` before `alloc_io_pgtable_ops`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PgTableRequest {
    /// Stage 1 or stage 2 format.
    pub stage: Stage,
    /// Page sizes the IOMMU supports; restricted to one granule's family.
    pub pgsize_bitmap: u64,
    /// Input address bits (clamped to 48; at least 32).
    pub ias: u32,
    /// Output address bits: one of 32, 36, 40, 42, 44, 48 (larger values clamp to 48).
    pub oas: u32,
    /// Table walks snoop CPU caches (FEAT_COHERENT_WALK): decides SH/IRGN/ORGN.
    pub coherent_walk: bool,
    /// Stage-2 PGD concatenation rule (v6.1 by default).
    pub s2_concat: S2Concat,
    /// What a partial unmap of a block does (split by default).
    pub partial_unmap: PartialUnmap,
    /// What the loser of a race to split one block does (since 85c7a0f1ef62 by default).
    pub split_race: SplitRace,
    /// A step's bound at a concatenated PGD (d71fa842d33c's, by default).
    pub pgd_run_bound: PgdRunBound,
    /// Whether unmap frees emptied tables (Linux keeps them).
    pub reclaim: TableReclaim,
    /// Stage-1 quirks.
    pub quirks: Quirks,
    /// Linux's input checks or smmu-lab's stricter ones.
    pub fidelity: Fidelity,
}

impl PgTableRequest {
    /// A coherent-walk configuration with Linux v6.1 defaults for everything else (the PGD
    /// bound as 6.1.y stable has it since 6.1.120).
    pub const fn new(stage: Stage, pgsize_bitmap: u64, ias: u32, oas: u32) -> Self {
        PgTableRequest {
            stage,
            pgsize_bitmap,
            ias,
            oas,
            coherent_walk: true,
            s2_concat: S2Concat::V6_1,
            partial_unmap: PartialUnmap::Split,
            split_race: SplitRace::UnmapFromWinner,
            pgd_run_bound: PgdRunBound::WithinPage,
            reclaim: TableReclaim::Keep,
            quirks: Quirks {
                arm_ns: false,
                outer_wbwa: false,
            },
            fidelity: Fidelity::Safe,
        }
    }
}

/// Shape of the tree: levels, index widths and PGD size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableGeometry {
    /// Translation granule.
    pub granule: Granule,
    /// log2(granule).
    pub pg_shift: u32,
    /// Index bits of a non-PGD table (`pg_shift - 3`).
    pub bits_per_level: u32,
    /// Level of the PGD (0..=3); after stage-2 concatenation one more than for stage 1.
    pub start_level: u32,
    /// Index bits of the PGD.
    pub pgd_bits: u32,
}

impl TableGeometry {
    /// Levels walked (`4 - start_level`).
    #[inline]
    pub const fn levels(&self) -> u32 {
        MAX_LEVELS - self.start_level
    }
    /// Entries in the PGD.
    #[inline]
    pub const fn pgd_entries(&self) -> u64 {
        1 << self.pgd_bits
    }
    /// PGD size in bytes (8 per entry).
    #[inline]
    pub const fn pgd_size(&self) -> u64 {
        8 << self.pgd_bits
    }
    /// Bytes allocated for the PGD: at least one 4 KiB page, as Linux allocates whole pages.
    #[inline]
    pub const fn pgd_alloc_size(&self) -> u64 {
        let s = self.pgd_size();
        if s < PageSize::SZ_4K.bytes() {
            PageSize::SZ_4K.bytes()
        } else {
            s
        }
    }
    /// IOVA bit where the index of level `lvl` starts.
    #[inline]
    pub const fn level_shift(&self, lvl: u32) -> u32 {
        (MAX_LEVELS - lvl) * self.bits_per_level + 3
    }
    /// Bytes one entry of level `lvl` maps.
    #[inline]
    pub const fn block_size(&self, lvl: u32) -> u64 {
        1 << self.level_shift(lvl)
    }
    /// [`block_size`](Self::block_size) as a [`PageSize`] (`lvl` is at most 3, so the shift is
    /// at most 55 and always a valid size).
    #[inline]
    pub const fn level_page_size(&self, lvl: u32) -> PageSize {
        match PageSize::from_shift(self.level_shift(lvl)) {
            Ok(size) => size,
            Err(_) => PageSize::SZ_4K,
        }
    }
    /// The granule as a [`PageSize`].
    #[inline]
    pub const fn granule_size(&self) -> PageSize {
        self.level_page_size(MAX_LEVELS - 1)
    }
    /// Entries in a table of level `lvl`.
    #[inline]
    pub const fn entries(&self, lvl: u32) -> u64 {
        if lvl == self.start_level {
            1 << self.pgd_bits
        } else {
            1 << self.bits_per_level
        }
    }
    /// Index of `iova` in a table of level `lvl`.
    #[inline]
    pub const fn index(&self, iova: u64, lvl: u32) -> u64 {
        (iova >> self.level_shift(lvl)) & (self.entries(lvl) - 1)
    }
    /// The level whose entries map exactly `size` bytes, if any.
    pub fn level_of(&self, size: u64) -> Option<u32> {
        (self.start_level..MAX_LEVELS).find(|&l| self.block_size(l) == size)
    }
}

/// The finalised configuration (Linux's `io_pgtable_cfg` after allocation): restricted page
/// sizes, geometry, and the fields of the translation-control register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PgTableCfg {
    /// Stage 1 or stage 2 format.
    pub stage: Stage,
    /// The page sizes actually supported (one granule family ∩ what was asked).
    pub pgsize_bitmap: u64,
    /// Input address bits after clamping.
    pub ias: u32,
    /// Output address bits after clamping.
    pub oas: u32,
    /// Whether table walks are cache coherent.
    pub coherent_walk: bool,
    /// The concatenation rule the geometry was computed with.
    pub s2_concat: S2Concat,
    /// Partial-unmap behaviour.
    pub partial_unmap: PartialUnmap,
    /// Lost-split-race behaviour.
    pub split_race: SplitRace,
    /// A step's bound at a concatenated PGD.
    pub pgd_run_bound: PgdRunBound,
    /// Empty-table behaviour.
    pub reclaim: TableReclaim,
    /// Stage-1 quirks.
    pub quirks: Quirks,
    /// Input checks.
    pub fidelity: Fidelity,
    /// Levels, start level and PGD size.
    pub geom: TableGeometry,
}

/// The granule chosen for a requested bitmap, with a 4 KiB CPU page (Linux's
/// `arm_lpae_restrict_pgsizes`).
pub fn choose_granule(pgsize_bitmap: u64) -> Option<Granule> {
    const PAGE_SIZE: u64 = PageSize::SZ_4K.bytes();
    let below = pgsize_bitmap & (PAGE_SIZE - 1);
    let above = pgsize_bitmap & !(PAGE_SIZE - 1);
    let g = if pgsize_bitmap & PAGE_SIZE != 0 {
        PAGE_SIZE
    } else if below != 0 {
        1 << (63 - below.leading_zeros())
    } else if above != 0 {
        1 << above.trailing_zeros()
    } else {
        0
    };
    [Granule::G4K, Granule::G16K, Granule::G64K]
        .into_iter()
        .find(|granule| granule.size().bytes() == g)
}

/// IPS / PS encoding of an output address size.
pub const fn ips_of(oas: u32) -> Option<u64> {
    match oas {
        32 => Some(0),
        36 => Some(1),
        40 => Some(2),
        42 => Some(3),
        44 => Some(4),
        48 => Some(5),
        52 => Some(6),
        _ => None,
    }
}

// TCR / VTCR field positions (SMMUv2 context-bank view, same as the CPU's TCR_EL1 low half).
const TCR_T0SZ_SHIFT: u32 = 0;
const TCR_SL0_SHIFT: u32 = 6;
const TCR_IRGN0_SHIFT: u32 = 8;
const TCR_ORGN0_SHIFT: u32 = 10;
const TCR_SH0_SHIFT: u32 = 12;
const TCR_TG0_SHIFT: u32 = 14;
const VTCR_PS_SHIFT: u32 = 16;
const TCR_EPD1: u64 = 1 << 23;
const VTCR_RES1: u64 = 1 << 31;
const TCR2_AS: u64 = 1 << 4;
const TCR2_SEP_SHIFT: u32 = 15;
const TCR2_SEP_UPSTREAM: u64 = 7;

/// Shareability: inner.
pub const SH_IS: u64 = 3;
/// Shareability: outer.
pub const SH_OS: u64 = 2;
/// Cacheability: non-cacheable.
pub const RGN_NC: u64 = 0;
/// Cacheability: write-back, write-allocate.
pub const RGN_WBWA: u64 = 1;

impl PgTableCfg {
    /// Validate and finalise a configuration exactly as io-pgtable-arm's allocation does.
    pub fn new(req: PgTableRequest) -> Result<Self, PgTableError> {
        let granule = choose_granule(req.pgsize_bitmap).ok_or(PgTableRequestError::NoGranule {
            bitmap: req.pgsize_bitmap,
        })?;
        let pgsize_bitmap = req.pgsize_bitmap & granule.page_sizes();
        if !granule.size().in_bitmap(pgsize_bitmap) {
            return Err(PgTableRequestError::GranuleNotInBitmap {
                bitmap: req.pgsize_bitmap,
                granule,
            }
            .into());
        }
        let ias = req.ias.min(MAX_ADDR_BITS);
        let oas = req.oas.min(MAX_ADDR_BITS);
        if ias < MIN_IAS {
            return Err(PgTableRequestError::IasTooSmall { ias: req.ias }.into());
        }
        if ips_of(oas).is_none() {
            return Err(PgTableRequestError::UnsupportedOas { oas: req.oas }.into());
        }
        if req.stage == Stage::S2 && (req.quirks.arm_ns || req.quirks.outer_wbwa) {
            return Err(PgTableRequestError::Stage2Quirks { quirks: req.quirks }.into());
        }
        let pg_shift = granule.shift();
        let bits_per_level = pg_shift - 3;
        let va_bits = ias - pg_shift;
        let levels = va_bits.div_ceil(bits_per_level);
        let mut geom = TableGeometry {
            granule,
            pg_shift,
            bits_per_level,
            start_level: MAX_LEVELS - levels,
            pgd_bits: va_bits - bits_per_level * (levels - 1),
        };
        if req.stage == Stage::S2 {
            let concat = match req.s2_concat {
                S2Concat::V6_1 => {
                    geom.start_level == 0 && geom.pgd_entries() <= S2_MAX_CONCAT_PAGES
                }
                S2Concat::Mandatory => {
                    let mandatory = match (granule, geom.start_level) {
                        (Granule::G16K, 0) => oas == 48 || ias == 48,
                        (Granule::G4K, 0) => oas == 40 || oas == 42,
                        (Granule::G16K, 1) => oas == 40,
                        _ => false,
                    };
                    if mandatory && geom.pgd_entries() > S2_MAX_CONCAT_PAGES {
                        return Err(PgTableRequestError::Stage2ConcatTooLarge {
                            pages: geom.pgd_entries(),
                        }
                        .into());
                    }
                    mandatory
                }
            };
            if concat {
                geom.pgd_bits += bits_per_level;
                geom.start_level += 1;
            }
        }
        Ok(PgTableCfg {
            stage: req.stage,
            pgsize_bitmap,
            ias,
            oas,
            coherent_walk: req.coherent_walk,
            s2_concat: req.s2_concat,
            partial_unmap: req.partial_unmap,
            split_race: req.split_race,
            pgd_run_bound: req.pgd_run_bound,
            fidelity: req.fidelity,
            reclaim: req.reclaim,
            quirks: req.quirks,
            geom,
        })
    }

    /// The granule size in bytes (the `granule` argument of the TLB callbacks).
    #[inline]
    pub const fn granule(&self) -> u64 {
        1 << self.geom.pg_shift
    }

    /// SH field of the walk attributes.
    pub const fn sh(&self) -> u64 {
        if self.coherent_walk {
            SH_IS
        } else {
            SH_OS
        }
    }
    /// IRGN field of the walk attributes.
    pub const fn irgn(&self) -> u64 {
        if self.coherent_walk {
            RGN_WBWA
        } else {
            RGN_NC
        }
    }
    /// ORGN field of the walk attributes.
    pub const fn orgn(&self) -> u64 {
        if self.coherent_walk || (matches!(self.stage, Stage::S1) && self.quirks.outer_wbwa) {
            RGN_WBWA
        } else {
            RGN_NC
        }
    }
    /// T0SZ = 64 − ias.
    pub const fn tsz(&self) -> u64 {
        64 - self.ias as u64
    }
    /// IPS / PS code of the output size.
    pub fn ips(&self) -> u64 {
        // oas was validated by `new`.
        ips_of(self.oas).unwrap_or(0)
    }
    /// VTCR.SL0: NOT(start_level + k) & 3 with k = 1 for the 4K granule.
    pub const fn sl0(&self) -> u64 {
        let k = if self.geom.pg_shift == 12 { 1 } else { 0 };
        !(self.geom.start_level as u64 + k) & 3
    }

    /// MAIR for stage 1 ([`MAIR`]); 0 for stage 2, which has none.
    pub const fn mair(&self) -> u64 {
        match self.stage {
            Stage::S1 => MAIR,
            Stage::S2 => 0,
        }
    }
    /// CB S1_MAIR0: low half of [`mair`](Self::mair).
    pub const fn smmu_mair0(&self) -> u32 {
        self.mair() as u32
    }
    /// CB S1_MAIR1: high half of [`mair`](Self::mair).
    pub const fn smmu_mair1(&self) -> u32 {
        (self.mair() >> 32) as u32
    }

    /// Stage-1 TCR as the arm-smmu driver writes it to CB_TCR for an AArch64 context:
    /// TG0 | SH0 | ORGN0 | IRGN0 | T0SZ | EPD1 (`arm_smmu_lpae_tcr`).
    pub fn s1_tcr(&self) -> u32 {
        (self.geom.granule.tg0() << TCR_TG0_SHIFT
            | self.sh() << TCR_SH0_SHIFT
            | self.orgn() << TCR_ORGN0_SHIFT
            | self.irgn() << TCR_IRGN0_SHIFT
            | self.tsz() << TCR_T0SZ_SHIFT
            | TCR_EPD1) as u32
    }

    /// Stage-2 VTCR as written to CB_TCR: RES1 | PS | TG0 | SH0 | ORGN0 | IRGN0 | SL0 | T0SZ
    /// (`arm_smmu_lpae_vtcr`). Computed for either stage; meaningful for stage 2.
    pub fn vtcr(&self) -> u32 {
        (VTCR_RES1
            | self.ips() << VTCR_PS_SHIFT
            | self.geom.granule.tg0() << TCR_TG0_SHIFT
            | self.sh() << TCR_SH0_SHIFT
            | self.orgn() << TCR_ORGN0_SHIFT
            | self.irgn() << TCR_IRGN0_SHIFT
            | self.sl0() << TCR_SL0_SHIFT
            | self.tsz() << TCR_T0SZ_SHIFT) as u32
    }

    /// The value for CB_TCR: [`s1_tcr`](Self::s1_tcr) for stage 1, [`vtcr`](Self::vtcr) for
    /// stage 2.
    pub fn smmu_tcr(&self) -> u32 {
        match self.stage {
            Stage::S1 => self.s1_tcr(),
            Stage::S2 => self.vtcr(),
        }
    }

    /// The value for CB_TCR2 (stage 1 on SMMUv2 only): PASIZE(ips) | AS | SEP_UPSTREAM, i.e.
    /// `arm_smmu_lpae_tcr2` plus the AS bit the driver adds for an AArch64 context. 0 for
    /// stage 2, where the driver does not write TCR2.
    pub fn smmu_tcr2(&self) -> u32 {
        match self.stage {
            Stage::S1 => (self.ips() | TCR2_AS | TCR2_SEP_UPSTREAM << TCR2_SEP_SHIFT) as u32,
            Stage::S2 => 0,
        }
    }
}
