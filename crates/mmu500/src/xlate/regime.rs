//! Step 4, regime: a context bank's translation-regime registers decoded into what the walk
//! needs — for stage 1 both TTBR regions (granule, start level, table base, output size), the
//! ASID and the format; for stage 2 the VTCR geometry. Decoded once per register generation
//! (see `context`), so a transaction only picks its region and masks its address.

use super::fault::Format;
use crate::config::{ArchVersion, Mmu500Config};
use crate::walk::{Geometry, Steps};
use smmu_arch::regs::{self, cba2r, tcr, tcr2, ttbcr, ttbr, vtcr};
use smmu_arch::LookupLevel;

/// The registers a bank's regime is decoded from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub sctlr: u32,
    pub cba2r: u32,
    pub tcr: u32,
    pub tcr2: u32,
    pub ttbr0: u64,
    pub ttbr1: u64,
}

impl View {
    pub fn of(b: &crate::state::Bank) -> Self {
        View {
            sctlr: b.sctlr,
            cba2r: b.cba2r,
            tcr: b.tcr,
            tcr2: b.tcr2,
            ttbr0: b.ttbr0,
            ttbr1: b.ttbr1,
        }
    }

    fn format(&self, cfg: &Mmu500Config) -> Format {
        Format::of(is_aarch64(cfg, self.cba2r, self.tcr))
    }
}

/// Whether a bank with these CBA2R and TCR values uses the AArch64 formats (v2: CBA2R.VA64;
/// v1 has no CBA2R: TCR.EAE clear).
pub(crate) fn is_aarch64(cfg: &Mmu500Config, cba2r: u32, tcr: u32) -> bool {
    match cfg.version {
        ArchVersion::V2 => cba2r & cba2r::VA64 != 0,
        ArchVersion::V1 => tcr & tcr::EAE == 0,
    }
}

#[inline]
pub(crate) fn low_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn granule_supported(cfg: &Mmu500Config, shift: u32) -> bool {
    match shift {
        12 => cfg.granule_4k || cfg.version == ArchVersion::V1,
        14 => cfg.granule_16k,
        16 => cfg.granule_64k,
        _ => false,
    }
}

/// Leaf sizes a context with this granule can cache.
pub(crate) fn leaf_shifts(granule_shift: u32) -> &'static [u32] {
    match granule_shift {
        12 => &[12, 21, 30],
        14 => &[14, 25],
        _ => &[16, 29],
    }
}

/// Every leaf size (a context whose two stages use different granules).
pub(crate) const ALL_SHIFTS: &[u32] = &[12, 14, 16, 21, 25, 29, 30];

/// A stage-1 walk set up for one address.
pub(crate) struct S1Setup<'a> {
    pub steps: &'a Steps,
    /// The address reduced to the region's input bits.
    pub input: u64,
    pub asid: u16,
    pub format: Format,
}

/// How a stage-1 regime picks its region for an address.
#[derive(Debug, Clone, Copy)]
enum Regions {
    /// AArch64: sign extension from TCR2.SEP (v2) or none; TTBR0 below 2^in0, TTBR1 above
    /// 2^64 - 2^in1, a translation fault at level 0 between.
    AArch64 { sep_bit: Option<u32> },
    /// AArch32 long-descriptor: 32-bit VA; TTBR0 below 2^in0, TTBR1 at the top (everything
    /// else with T1SZ = 0), a translation fault at level 1 otherwise.
    AArch32 { t1sz_zero: bool },
    /// AArch32 short-descriptor: not modelled, every address faults (level 1).
    Short,
}

/// A stage-1 regime decoded from a bank's registers: both TTBR regions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct S1Regime {
    regions: Regions,
    in0: u32,
    in1: u32,
    /// Walk geometry of each region; `None` when the region faults (EPDx or bad granule).
    r0: Option<Steps>,
    r1: Option<Steps>,
    asid: u16,
    pub format: Format,
}

impl S1Regime {
    /// Decode a stage-1 bank's registers; `out_bits` bounds the output (the IPA size when
    /// stage 2 follows).
    pub fn decode(cfg: &Mmu500Config, v: &View, out_bits: u32) -> Self {
        if is_aarch64(cfg, v.cba2r, v.tcr) {
            Self::decode_aarch64(cfg, v, out_bits)
        } else if v.tcr & tcr::EAE != 0 && (cfg.aarch32_l || cfg.version == ArchVersion::V1) {
            Self::decode_aarch32(v, out_bits)
        } else {
            S1Regime {
                regions: Regions::Short,
                in0: 0,
                in1: 0,
                r0: None,
                r1: None,
                asid: 0,
                format: Format::AArch32Long,
            }
        }
    }

    fn decode_aarch64(cfg: &Mmu500Config, v: &View, out_bits: u32) -> Self {
        let sep_bit = if cfg.version == ArchVersion::V2 {
            match regs::field(v.tcr2, tcr2::SEP_SHIFT, tcr2::SEP_WIDTH) {
                0 => Some(31),
                1 => Some(35),
                2 => Some(39),
                3 => Some(41),
                4 => Some(43),
                5 => Some(47),
                _ => None,
            }
        } else {
            None
        };
        let t0sz = regs::field(v.tcr, tcr::T0SZ_SHIFT, 6).clamp(16, 39);
        let t1sz = regs::field(v.tcr, tcr::T1SZ_SHIFT, 6).clamp(16, 39);
        let (in0, in1) = (64 - t0sz, 64 - t1sz);
        let pa_bits = if cfg.version == ArchVersion::V2 {
            regs::size_code_to_bits(regs::field(v.tcr2, tcr2::PASIZE_SHIFT, tcr2::PASIZE_WIDTH))
        } else {
            cfg.oas
        };
        let region = |ttbr: u64, tg: u32, epd: bool, in_bits: u32| -> Option<Steps> {
            if epd || !granule_supported(cfg, tg) {
                return None;
            }
            Some(stage1_steps(
                ttbr & 0x0000_ffff_ffff_fffe,
                tg,
                in_bits,
                pa_bits.min(out_bits),
            ))
        };
        let tg0 = match regs::field(v.tcr, tcr::TG0_SHIFT, 2) {
            0 => 12,
            1 => 16,
            2 => 14,
            _ => 0,
        };
        let tg1 = match regs::field(v.tcr, tcr::TG1_SHIFT, 2) {
            1 => 14,
            2 => 12,
            3 => 16,
            _ => 0,
        };
        let asid16 = cfg.version == ArchVersion::V2 && v.tcr2 & tcr2::AS != 0;
        let asid = (asid_ttbr(v) >> ttbr::ASID_SHIFT) as u16;
        S1Regime {
            regions: Regions::AArch64 { sep_bit },
            in0,
            in1,
            r0: region(v.ttbr0, tg0, v.tcr & tcr::EPD0 != 0, in0),
            r1: region(v.ttbr1, tg1, v.tcr & tcr::EPD1 != 0, in1),
            asid: if asid16 {
                asid
            } else {
                asid & regs::ASID8_MASK
            },
            format: Format::AArch64,
        }
    }

    /// AArch32 long-descriptor: 32-bit VA, 4K granule, 8-bit ASID, 40-bit output.
    fn decode_aarch32(v: &View, out_bits: u32) -> Self {
        let t0sz = regs::field(v.tcr, ttbcr::T0SZ_SHIFT, ttbcr::TSZ_WIDTH);
        let t1sz = regs::field(v.tcr, ttbcr::T1SZ_SHIFT, ttbcr::TSZ_WIDTH);
        let (in0, in1) = (32 - t0sz, 32 - t1sz);
        let oas = 40u32.min(out_bits);
        let region = |base: u64, epd: bool, in_bits: u32| {
            (!epd).then(|| stage1_steps(base & ttbr::AARCH32_BADDR_MASK, 12, in_bits, oas))
        };
        S1Regime {
            regions: Regions::AArch32 {
                t1sz_zero: t1sz == 0,
            },
            in0,
            in1,
            r0: region(v.ttbr0, v.tcr & tcr::EPD0 != 0, in0),
            r1: region(v.ttbr1, v.tcr & tcr::EPD1 != 0, in1),
            asid: (asid_ttbr(v) >> ttbr::ASID_SHIFT) as u16 & regs::ASID8_MASK,
            format: Format::AArch32Long,
        }
    }

    /// The walk setup for `va`: sign extension, region selection, address masking; or the
    /// level of the translation fault the address takes.
    #[inline]
    pub fn resolve(&self, va: u64) -> Result<S1Setup<'_>, LookupLevel> {
        let (va, region, miss) = match self.regions {
            Regions::AArch64 { sep_bit } => {
                let va = match sep_bit {
                    Some(b) => {
                        let sh = 63 - b;
                        (((va << sh) as i64) >> sh) as u64
                    }
                    None => va,
                };
                let region = if va >> self.in0 == 0 {
                    self.r0.as_ref()
                } else if (!va) >> self.in1 == 0 {
                    self.r1.as_ref()
                } else {
                    None
                };
                (va, region, LookupLevel::L0)
            }
            Regions::AArch32 { t1sz_zero } => {
                if va >> 32 != 0 {
                    return Err(LookupLevel::L1);
                }
                let region = if va >> self.in0 == 0 {
                    self.r0.as_ref()
                } else if t1sz_zero || (va >> self.in1) == low_mask(32 - self.in1) {
                    self.r1.as_ref()
                } else {
                    None
                };
                (va, region, LookupLevel::L1)
            }
            Regions::Short => return Err(LookupLevel::L1),
        };
        let steps = region.ok_or(miss)?;
        Ok(S1Setup {
            input: va & low_mask(steps.geo.input_bits),
            steps,
            asid: self.asid,
            format: self.format,
        })
    }
}

/// The TTBR whose ASID field tags the context (TCR.A1).
fn asid_ttbr(v: &View) -> u64 {
    if v.tcr & tcr::A1 != 0 {
        v.ttbr1
    } else {
        v.ttbr0
    }
}

/// A stage-1 region's walk: start level from the input size, table base aligned to the start
/// table's size.
fn stage1_steps(ttbr: u64, granule_shift: u32, input_bits: u32, oas: u32) -> Steps {
    let mut geo = Geometry {
        granule_shift,
        input_bits,
        start_level: Geometry::stage1_start_level(granule_shift, input_bits),
        table_base: 0,
        oas,
    };
    let align = (geo.start_index_bits() + 3).max(3);
    geo.table_base = ttbr & !low_mask(align);
    Steps::new(geo)
}

/// A decoded stage-2 bank.
#[derive(Debug, Clone, Copy)]
pub(crate) struct S2Regime {
    pub bank: usize,
    /// The stage-2 bank's SCTLR (AFFD for the stage-2 access flag check).
    pub sctlr: u32,
    pub format: Format,
    pub steps: Steps,
}

impl S2Regime {
    /// Decode stage-2 bank `bank` (VTCR in the TCR slot, VTTBR in TTBR0), or the level of the
    /// translation fault every transaction through it takes.
    pub fn decode(cfg: &Mmu500Config, bank: usize, v: &View) -> Result<S2Regime, LookupLevel> {
        let format = v.format(cfg);
        let (in_bits, tg, pa_bits) = match format {
            Format::AArch64 => {
                let t0sz = regs::field(v.tcr, vtcr::T0SZ_SHIFT, vtcr::T0SZ_WIDTH).max(16);
                let tg = match regs::field(v.tcr, vtcr::TG0_SHIFT, 2) {
                    0 => 12,
                    1 => 16,
                    2 => 14,
                    _ => 0,
                };
                let ps =
                    regs::size_code_to_bits(regs::field(v.tcr, vtcr::PS_SHIFT, vtcr::PS_WIDTH));
                (64 - t0sz, tg, ps)
            }
            Format::AArch32Long => {
                // AArch32 VTCR: signed 4-bit T0SZ, 4K granule, 40-bit output.
                let unused = 32 - vtcr::AARCH32_T0SZ_WIDTH;
                let t0sz = i64::from((v.tcr << unused) as i32 >> unused);
                ((32 - t0sz).clamp(25, 40) as u32, 12, 40)
            }
        };
        if !granule_supported(cfg, tg) {
            return Err(LookupLevel::L0);
        }
        let sl0 = regs::field(v.tcr, vtcr::SL0_SHIFT, vtcr::SL0_WIDTH);
        let start = match (tg, sl0) {
            (12, 0) => 2,
            (12, 1) => 1,
            (12, 2) => 0,
            (_, 0) => 3,
            (_, 1) => 2,
            (_, 2) => 1,
            _ => return Err(LookupLevel::L0),
        };
        let mut geo = Geometry {
            granule_shift: tg,
            input_bits: in_bits.min(48),
            start_level: start,
            table_base: 0,
            oas: pa_bits.min(cfg.oas),
        };
        let idx = (geo.input_bits as i64) - (geo.level_shift(start) as i64);
        // At most 16 concatenated tables at the start level.
        if idx < 1 || idx > i64::from(geo.stride() + 4) {
            return Err(LookupLevel::new(start));
        }
        let align = (geo.start_index_bits() + 3).max(3);
        geo.table_base = v.ttbr0 & 0x0000_ffff_ffff_fffe & !low_mask(align);
        Ok(S2Regime {
            bank,
            sctlr: v.sctlr,
            format,
            steps: Steps::new(geo),
        })
    }
}
