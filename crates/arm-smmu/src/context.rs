//! Context banks: the per-domain configuration (stage, format, ASID/VMID, CBAR type), the
//! register shadow Linux keeps per bank, and the order in which a bank is written
//! (reference §8.3–8.4).

use crate::config::{Features, SmmuConfig};
use crate::fw::Version;
use crate::io::{Page, SmmuIo};
use smmu_addr::{PageSize, PhysAddr};
use smmu_arch::regs::{
    bits_to_size_code, cb, cba2r, cbar, gr1, make, sctlr, tcr, tcr2, ttbr, vtcr,
};

/// What a domain's context bank does (Linux's `arm_smmu_domain_stage`): stage-1 or stage-2
/// translation, or no bank at all. The page-table format's stage is `pgtable::Stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainStage {
    /// Stage 1 (CBAR type S1_TRANS_S2_BYPASS).
    S1,
    /// Stage 2 (CBAR type S2_TRANS).
    S2,
    /// Identity domain (v6.1): no context bank, S2CR BYPASS.
    Bypass,
}

/// Context (table) format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtxFmt {
    /// VMSAv8-64 LPAE descriptors (CBA2R.VA64).
    AArch64,
    /// AArch32 long descriptors (TCR.EAE).
    AArch32L,
}

/// Linux's `arm_smmu_cfg` for a finalised domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CbCfg {
    /// Context bank index.
    pub cbndx: u32,
    /// Context interrupt index (= bank on SMMUv2, round-robin on v1).
    pub irptndx: u32,
    /// ASID (S1) or VMID (S2): one storage, as in Linux.
    pub asid_vmid: u16,
    /// CBAR.TYPE.
    pub cbar: u32,
    /// Context (table) format.
    pub fmt: CtxFmt,
}

impl CbCfg {
    /// Whether the bank translates at stage 1.
    pub fn stage1(&self) -> bool {
        self.cbar != cbar::TYPE_S2_TRANS
    }
}

/// What the page table tells the driver for programming a bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableHw {
    /// Base of the top-level table.
    pub pgd: PhysAddr,
    /// Translation granule (4K, 16K, 64K).
    pub granule: PageSize,
    /// Input address bits.
    pub ias: u32,
    /// Output address bits.
    pub oas: u32,
    /// First walk level (0..=3), after any stage-2 concatenation.
    pub start_level: u32,
    /// Walk is cache coherent (inner-shareable WBWA attributes).
    pub coherent: bool,
    /// MAIR (stage 1).
    pub mair: u64,
}

fn tg0(granule: PageSize) -> u32 {
    if granule == PageSize::SZ_64K {
        tcr::TG0_64K
    } else if granule == PageSize::SZ_16K {
        tcr::TG0_16K
    } else {
        tcr::TG0_4K
    }
}

/// (SH, IRGN, ORGN) for the walk (io-pgtable: coherent → inner-shareable WBWA, else outer NC).
fn walk_attrs(coherent: bool) -> (u32, u32, u32) {
    if coherent {
        (3, 1, 1)
    } else {
        (2, 0, 0)
    }
}

/// `ips`/`ps` code for an output size (52 → 6).
fn ps_code(oas: u32) -> u32 {
    if oas > 48 {
        6
    } else {
        bits_to_size_code(oas)
    }
}

/// Linux's `arm_smmu_cb` register shadow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CbShadow {
    /// The owning domain's configuration.
    pub cfg: CbCfg,
    /// TTBR0/TTBR1 (ASID in bits 63:48 for stage 1).
    pub ttbr: [u64; 2],
    /// TCR (or VTCR) and TCR2.
    pub tcr: [u32; 2],
    /// MAIR0/MAIR1.
    pub mair: [u32; 2],
}

impl CbShadow {
    /// Linux `arm_smmu_init_context_bank` for the LPAE formats.
    pub fn new(cfg: CbCfg, t: &TableHw) -> Self {
        let (sh, irgn, orgn) = walk_attrs(t.coherent);
        let tsz = 64u32.saturating_sub(t.ias);
        let mut s = CbShadow {
            cfg,
            ttbr: [0; 2],
            tcr: [0; 2],
            mair: [0; 2],
        };
        if cfg.stage1() {
            s.tcr[0] = make(tg0(t.granule), tcr::TG0_SHIFT, 2)
                | make(sh, tcr::SH0_SHIFT, 2)
                | make(orgn, tcr::ORGN0_SHIFT, 2)
                | make(irgn, tcr::IRGN0_SHIFT, 2)
                | make(tsz, tcr::T0SZ_SHIFT, tcr::T0SZ_WIDTH)
                | tcr::EPD1;
            s.tcr[1] = make(ps_code(t.oas), tcr2::PASIZE_SHIFT, tcr2::PASIZE_WIDTH)
                | make(tcr2::SEP_UPSTREAM, tcr2::SEP_SHIFT, tcr2::SEP_WIDTH);
            match cfg.fmt {
                CtxFmt::AArch64 => s.tcr[1] |= tcr2::AS,
                CtxFmt::AArch32L => s.tcr[0] |= tcr::EAE,
            }
            let asid = u64::from(cfg.asid_vmid) << ttbr::ASID_SHIFT;
            s.ttbr = [t.pgd.as_u64() | asid, asid];
            s.mair = [t.mair as u32, (t.mair >> 32) as u32];
        } else {
            let k = u32::from(t.granule == PageSize::SZ_4K);
            let sl0 = !(t.start_level + k) & 3;
            s.tcr[0] = vtcr::RES1
                | make(ps_code(t.oas), vtcr::PS_SHIFT, vtcr::PS_WIDTH)
                | make(tg0(t.granule), vtcr::TG0_SHIFT, 2)
                | make(sh, vtcr::SH0_SHIFT, 2)
                | make(orgn, vtcr::ORGN0_SHIFT, 2)
                | make(irgn, vtcr::IRGN0_SHIFT, 2)
                | make(sl0, vtcr::SL0_SHIFT, vtcr::SL0_WIDTH)
                | make(tsz, vtcr::T0SZ_SHIFT, vtcr::T0SZ_WIDTH);
            s.ttbr[0] = t.pgd.as_u64();
        }
        s
    }
}

/// Linux `arm_smmu_write_context_bank`: an unowned bank only gets SCTLR = 0.
///
/// CBA2R and TCR2 are written for every version above V1 (so MMU-401 too) and CBAR.IRPTNDX for
/// every version below V2, as Linux's comparisons do.
///
/// The order of the writes is Linux's (reference arm-smmu-v2.md §8.4) and it matters: each
/// register is written only after the registers that decide how it is read, and SCTLR.M, which
/// lets the bank translate, comes last, so the bank never translates with a half-written
/// configuration. The comments at each step say what depends on what.
pub fn write_context_bank(io: &SmmuIo, cfg: &SmmuConfig, idx: u32, shadow: Option<&CbShadow>) {
    let page = Page::Cb(idx);
    let Some(s) = shadow else {
        // Clearing SCTLR.M is the whole job: a bank that does not translate ignores the rest.
        io.write(page, cb::SCTLR, 0);
        return;
    };
    let c = &s.cfg;
    let stage1 = c.stage1();
    let vmid16 = cfg.features.has(Features::VMID16);
    // CBA2R first: its VA64 bit selects the AArch64 or AArch32 layout of TCR and the TTBRs,
    // and with 16-bit VMIDs it holds the VMID the bank's TLB entries are tagged with, so it
    // must be right before any of those are written.
    if cfg.version > Version::V1 {
        let mut reg = if c.fmt == CtxFmt::AArch64 {
            cba2r::VA64
        } else {
            0
        };
        if vmid16 {
            reg |= make(
                u32::from(c.asid_vmid),
                cba2r::VMID16_SHIFT,
                cba2r::VMID16_WIDTH,
            );
        }
        io.write(Page::Gr1, gr1::cba2r(idx), reg);
    }
    // CBAR next: its TYPE says which stages the bank performs (stage 1 with stage 2 bypassed,
    // or stage 2), which decides whether TCR is read as a stage-1 TCR or as a VTCR and whether
    // the TTBR1 and MAIR writes below mean anything.
    let mut reg = make(c.cbar, cbar::TYPE_SHIFT, cbar::TYPE_WIDTH);
    if cfg.version < Version::V2 {
        reg |= make(c.irptndx, cbar::IRPTNDX_SHIFT, cbar::IRPTNDX_WIDTH);
    }
    if stage1 {
        reg |= make(
            cbar::S1_BPSHCFG_NSH,
            cbar::S1_BPSHCFG_SHIFT,
            cbar::S1_BPSHCFG_WIDTH,
        ) | make(
            cbar::S1_MEMATTR_WB,
            cbar::S1_MEMATTR_SHIFT,
            cbar::S1_MEMATTR_WIDTH,
        );
    } else if !vmid16 {
        reg |= make(u32::from(c.asid_vmid), cbar::VMID_SHIFT, cbar::VMID_WIDTH);
    }
    io.write(Page::Gr1, gr1::cbar(idx), reg);

    // TCR2 then TCR, both before the TTBRs: TCR (with TCR2.AS on SMMUv2) decides how the
    // TTBRs' fields are interpreted, in particular whether an ASID is 8 or 16 bits wide, so
    // the ASID in TTBR0/TTBR1 would be read with the wrong width if the TTBRs came first.
    if stage1 && cfg.version > Version::V1 {
        io.write(page, cb::TCR2, s.tcr[1]);
    }
    io.write(page, cb::TCR, s.tcr[0]);

    // The table bases (and, for stage 1, the ASID they carry) once their format is settled.
    io.writeq(page, cb::TTBR0, s.ttbr[0]);
    if stage1 {
        io.writeq(page, cb::TTBR1, s.ttbr[1]);
        // The memory attributes the descriptors' AttrIndx fields select; they only matter
        // once the bank translates, so anywhere before SCTLR would do. Linux writes them here.
        io.write(page, cb::S1_MAIR0, s.mair[0]);
        io.write(page, cb::S1_MAIR1, s.mair[1]);
    }
    // SCTLR last: setting M turns translation on, so everything it uses is already in place.
    // A transaction that hits the bank earlier faults or bypasses per the previous SCTLR, and
    // never walks half-written tables or registers.
    let mut sc = sctlr::CFIE | sctlr::CFRE | sctlr::AFE | sctlr::TRE | sctlr::M;
    if stage1 {
        sc |= sctlr::S1_ASIDPNE;
    }
    io.write(page, cb::SCTLR, sc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_stage1_values() {
        // reference §8.4: S1 AArch64, 4K, coherent, ias = oas = 48, ASID 0.
        let t = TableHw {
            pgd: PhysAddr::new(0x8000_1000),
            granule: PageSize::SZ_4K,
            ias: 48,
            oas: 48,
            start_level: 0,
            coherent: true,
            mair: 0xf404ff44,
        };
        let cfg = CbCfg {
            cbndx: 3,
            irptndx: 3,
            asid_vmid: 3,
            cbar: cbar::TYPE_S1_TRANS_S2_BYPASS,
            fmt: CtxFmt::AArch64,
        };
        let s = CbShadow::new(cfg, &t);
        assert_eq!(s.tcr, [0x0080_3510, 0x0003_8015]);
        assert_eq!(s.ttbr, [(3 << 48) | 0x8000_1000, 3 << 48]);
        assert_eq!(s.mair, [0xf404ff44, 0]);
    }

    #[test]
    fn stage2_vtcr() {
        // 4K granule, ias 40 concatenated to start level 1 → SL0 1; PS 48 → 5; T0SZ 24.
        let t = TableHw {
            pgd: PhysAddr::new(0x9000_0000),
            granule: PageSize::SZ_4K,
            ias: 40,
            oas: 48,
            start_level: 1,
            coherent: true,
            mair: 0,
        };
        let cfg = CbCfg {
            cbndx: 0,
            irptndx: 0,
            asid_vmid: 1,
            cbar: cbar::TYPE_S2_TRANS,
            fmt: CtxFmt::AArch64,
        };
        let s = CbShadow::new(cfg, &t);
        assert_eq!(s.tcr[0], 0x8000_0000 | (5 << 16) | 0x3500 | (1 << 6) | 24);
        assert_eq!(s.ttbr[0], 0x9000_0000);
    }
}
