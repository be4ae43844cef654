//! The register file seen through MMIO: reads, writes and their side effects (fault status
//! write-1-to-clear, TLB maintenance, ATS1* operations), and the architected register names.

use crate::config::{ArchVersion, Mmu500Config};
use crate::state::{s2cr_mask, scr0_mask, Loc, Pending, State, FSR_FORMAT_MASK, SACR_CACHE_LOCK};
use crate::tlb::Match;
use crate::types::{RegName, Space, TlbiOp, TraceEvent};
use smmu_addr::Iova;
use smmu_arch::regs::{self, cb, cba2r, cbar, fsr, gfsr, gr0, gr1, scr0, smr, tlbi};

/// The latch of each 64-bit write-only register (`Bank::latch`, `state::LATCHES` of them).
fn latch_index(off: u64) -> Option<usize> {
    Some(match off & !7 {
        cb::S1_TLBIVA => 0,
        cb::S1_TLBIVAA => 1,
        cb::S1_TLBIASID => 2,
        cb::S1_TLBIALL => 3,
        cb::S1_TLBIVAL => 4,
        cb::S1_TLBIVAAL => 5,
        cb::S2_TLBIIPAS2 => 6,
        cb::S2_TLBIIPAS2L => 7,
        cb::ATS1PR => 8,
        cb::ATS1PW => 9,
        _ => return None,
    })
}

impl State {
    fn tlbi(&mut self, op: TlbiOp, m: Match, p: &mut Pending) {
        let removed = self.caches.tlb.invalidate(m);
        self.counters.tlb_invalidations += 1;
        p.event(|| TraceEvent::TlbInvalidate { op, removed });
    }

    // ----- register reads -----

    pub fn read32(&mut self, cfg: &Mmu500Config, offset: u64) -> u32 {
        if !offset.is_multiple_of(4) {
            return 0;
        }
        match Self::locate(cfg, offset) {
            Loc::Gr0(o) => self.read_gr0(cfg, o),
            Loc::Gr1(o) => self.read_gr1(cfg, o),
            Loc::Cb(n, o) => self.read_cb(cfg, n, o),
            Loc::None => 0,
        }
    }

    fn read_gr0(&mut self, cfg: &Mmu500Config, o: u64) -> u32 {
        match o {
            gr0::SCR0 => self.regs.scr0,
            gr0::SACR if cfg.mmu500 => self.regs.sacr,
            gr0::ID0 => cfg.id0(),
            gr0::ID1 => cfg.id1(),
            gr0::ID2 => cfg.id2(),
            gr0::ID7 => cfg.id7(),
            GFAR_LO => self.regs.gfar as u32,
            GFAR_HI => (self.regs.gfar >> 32) as u32,
            gr0::SGFSR => self.regs.gfsr,
            gr0::SGFSYNR0 => self.regs.gfsynr0,
            gr0::SGFSYNR1 => self.regs.gfsynr1,
            gr0::SGFSYNR2 => self.regs.gfsynr2,
            gr0::STLBGSTATUS if self.regs.gsync_pending > 0 => {
                self.regs.gsync_pending -= 1;
                regs::tlbstatus::SACTIVE
            }
            o if (gr0::SMR..gr0::SMR + 4 * self.regs.smr.len() as u64).contains(&o) => self
                .regs
                .smr
                .get(((o - gr0::SMR) / 4) as usize)
                .copied()
                .unwrap_or(0),
            o if (gr0::S2CR..gr0::S2CR + 4 * self.regs.s2cr.len() as u64).contains(&o) => self
                .regs
                .s2cr
                .get(((o - gr0::S2CR) / 4) as usize)
                .copied()
                .unwrap_or(0),
            _ => 0,
        }
    }

    fn read_gr1(&mut self, cfg: &Mmu500Config, o: u64) -> u32 {
        let n = ((o & 0x3ff) / 4) as usize;
        let Some(b) = self.regs.banks.get(n) else {
            return 0;
        };
        match o & !0x3ff {
            gr1::CBAR => b.cbar,
            gr1::CBFRSYNRA => b.cbfrsynra,
            gr1::CBA2R if cfg.version == ArchVersion::V2 => b.cba2r,
            _ => 0,
        }
    }

    fn read_cb(&mut self, cfg: &Mmu500Config, n: usize, o: u64) -> u32 {
        let v2 = cfg.version == ArchVersion::V2;
        let Some(b) = self.regs.banks.get_mut(n) else {
            return 0;
        };
        let lo = |v: u64| v as u32;
        let hi = |v: u64| (v >> 32) as u32;
        match o {
            cb::SCTLR => b.sctlr,
            cb::ACTLR if cfg.mmu500 => b.actlr,
            cb::TCR2 if v2 => b.tcr2,
            cb::TTBR0 => lo(b.ttbr0),
            cb::TTBR0_HI => hi(b.ttbr0),
            cb::TTBR1 => lo(b.ttbr1),
            cb::TTBR1_HI => hi(b.ttbr1),
            cb::TCR => b.tcr,
            cb::CONTEXTIDR => b.contextidr,
            cb::S1_MAIR0 => b.mair0,
            cb::S1_MAIR1 => b.mair1,
            cb::PAR if cfg.atos => lo(b.par),
            cb::PAR_HI if cfg.atos => hi(b.par),
            cb::FSR => b.fsr,
            cb::FAR => lo(b.far),
            cb::FAR_HI => hi(b.far),
            cb::FSYNR0 => b.fsynr0,
            cb::FSYNR1 => b.fsynr1,
            cb::TLBSTATUS if b.sync_pending > 0 => {
                b.sync_pending -= 1;
                regs::tlbstatus::SACTIVE
            }
            // An ATS1* operation stays ACTIVE for `ats_polls` reads of ATSR; PAR takes its
            // result when it completes (the architecture: PAR is valid once ACTIVE reads 0).
            cb::ATSR if cfg.atos && b.ats_pending > 0 => {
                b.ats_pending -= 1;
                if b.ats_pending == 0 {
                    b.par = b.par_pending;
                }
                regs::atsr::ACTIVE
            }
            _ => 0,
        }
    }

    pub fn read64(&mut self, cfg: &Mmu500Config, offset: u64) -> u64 {
        let lo = u64::from(self.read32(cfg, offset));
        let hi = u64::from(self.read32(cfg, offset.wrapping_add(4)));
        lo | (hi << 32)
    }

    // ----- register writes -----

    /// A 32-bit write. 64-bit registers take the half addressed.
    pub fn write32(
        &mut self,
        cfg: &Mmu500Config,
        mem: &physmem::PhysMem,
        offset: u64,
        v: u32,
        p: &mut Pending,
    ) {
        self.regs.gen += 1;
        if !offset.is_multiple_of(4) {
            return;
        }
        match Self::locate(cfg, offset) {
            Loc::Gr0(o) => self.write_gr0(cfg, o, v, p),
            Loc::Gr1(o) => self.write_gr1(cfg, o, v),
            Loc::Cb(n, o) => {
                if let Some(li) = latch_index(o) {
                    let Some(b) = self.regs.banks.get_mut(n) else {
                        return;
                    };
                    let Some(l) = b.latch.get_mut(li) else { return };
                    if o.is_multiple_of(8) {
                        *l = (*l & !0xffff_ffff) | u64::from(v);
                    } else {
                        *l = (*l & 0xffff_ffff) | (u64::from(v) << 32);
                    }
                    let full = *l;
                    self.cb_op(cfg, mem, n, o & !7, full, p);
                } else {
                    self.write_cb(cfg, n, o, v, p);
                }
            }
            Loc::None => {}
        }
    }

    /// A 64-bit write: whole for 64-bit registers, two halves otherwise.
    pub fn write64(
        &mut self,
        cfg: &Mmu500Config,
        mem: &physmem::PhysMem,
        offset: u64,
        v: u64,
        p: &mut Pending,
    ) {
        self.regs.gen += 1;
        if offset.is_multiple_of(8) {
            if let Loc::Cb(n, o) = Self::locate(cfg, offset) {
                if let Some(li) = latch_index(o) {
                    if let Some(l) = self.regs.banks.get_mut(n).and_then(|b| b.latch.get_mut(li)) {
                        *l = v;
                    }
                    self.cb_op(cfg, mem, n, o, v, p);
                    return;
                }
            }
        }
        self.write32(cfg, mem, offset, v as u32, p);
        self.write32(cfg, mem, offset.wrapping_add(4), (v >> 32) as u32, p);
    }

    fn write_gr0(&mut self, cfg: &Mmu500Config, o: u64, v: u32, p: &mut Pending) {
        match o {
            gr0::SCR0 => {
                self.regs.scr0 = v & scr0_mask(cfg);
                self.caches.streams.clear();
                self.regs.update_global_level(cfg, p);
            }
            gr0::SACR if cfg.mmu500 => self.regs.sacr = v,
            gr0::SGFSR => {
                self.regs.gfsr &= !(v & gfsr::ALL);
                self.regs.update_global_level(cfg, p);
            }
            gr0::SGFSRRESTORE => {
                self.regs.gfsr = v & gfsr::ALL;
                self.regs.update_global_level(cfg, p);
            }
            gr0::TLBIVMID => {
                let vmid = if cfg.vmid16 && self.regs.scr0 & scr0::VMID16EN != 0 {
                    v as u16
                } else {
                    v as u16 & regs::VMID8_MASK
                };
                self.tlbi(TlbiOp::Vmid(vmid), Match::Vmid(vmid), p);
            }
            gr0::TLBIALLNSNH => self.tlbi(TlbiOp::AllNsnh, Match::All, p),
            // No hypervisor contexts are modelled: nothing is tagged as Hyp.
            gr0::TLBIALLH => p.event(|| TraceEvent::TlbInvalidate {
                op: TlbiOp::AllHyp,
                removed: 0,
            }),
            gr0::STLBGSYNC => self.regs.gsync_pending = cfg.sync_polls,
            o if (gr0::SMR..gr0::SMR + 4 * self.regs.smr.len() as u64).contains(&o) => {
                let m = smr_mask(cfg);
                if let Some(s) = self.regs.smr.get_mut(((o - gr0::SMR) / 4) as usize) {
                    *s = v & m;
                }
                self.caches.streams.clear();
            }
            o if (gr0::S2CR..gr0::S2CR + 4 * self.regs.s2cr.len() as u64).contains(&o) => {
                if let Some(s) = self.regs.s2cr.get_mut(((o - gr0::S2CR) / 4) as usize) {
                    *s = v & s2cr_mask();
                }
            }
            _ => {}
        }
    }

    fn write_gr1(&mut self, cfg: &Mmu500Config, o: u64, v: u32) {
        let n = ((o & 0x3ff) / 4) as usize;
        let s2_only = (n as u32) < cfg.num_s2cb;
        let gen = self.regs.gen;
        let Some(b) = self.regs.banks.get_mut(n) else {
            return;
        };
        if matches!(o & !0x3ff, gr1::CBAR | gr1::CBA2R) {
            b.epoch = gen;
        }
        match o & !0x3ff {
            gr1::CBAR => {
                let mut w = v & if cfg.version == ArchVersion::V1 {
                    u32::MAX
                } else {
                    0x00ff_ffff
                };
                let ty_mask = regs::make(3, cbar::TYPE_SHIFT, cbar::TYPE_WIDTH);
                let force = if s2_only || !cfg.stage1 {
                    Some(cbar::TYPE_S2_TRANS)
                } else if !cfg.stage2 {
                    Some(cbar::TYPE_S1_TRANS_S2_BYPASS)
                } else {
                    None
                };
                if let Some(t) = force {
                    w = (w & !ty_mask) | regs::make(t, cbar::TYPE_SHIFT, cbar::TYPE_WIDTH);
                }
                b.cbar = w;
            }
            gr1::CBA2R if cfg.version == ArchVersion::V2 => {
                let mut m = cba2r::VA64 | cba2r::MONC;
                if cfg.vmid16 {
                    m |= regs::make(u32::MAX, cba2r::VMID16_SHIFT, cba2r::VMID16_WIDTH);
                }
                b.cba2r = v & m;
            }
            _ => {}
        }
    }

    fn write_cb(&mut self, cfg: &Mmu500Config, n: usize, o: u64, v: u32, p: &mut Pending) {
        let v2 = cfg.version == ArchVersion::V2;
        let sacr = self.regs.sacr;
        let gen = self.regs.gen;
        let Some(b) = self.regs.banks.get_mut(n) else {
            return;
        };
        if matches!(
            o,
            cb::SCTLR
                | cb::TCR2
                | cb::TTBR0
                | cb::TTBR0_HI
                | cb::TTBR1
                | cb::TTBR1_HI
                | cb::TCR
                | cb::CONTEXTIDR
                | cb::S1_MAIR0
                | cb::S1_MAIR1
        ) {
            b.epoch = gen;
        }
        let set_lo = |r: &mut u64, v: u32| *r = (*r & !0xffff_ffff) | u64::from(v);
        let set_hi = |r: &mut u64, v: u32| *r = (*r & 0xffff_ffff) | (u64::from(v) << 32);
        match o {
            cb::SCTLR => {
                b.sctlr = v & SCTLR_MASK;
                self.regs.update_cb_level(cfg, n, p);
            }
            cb::ACTLR if cfg.mmu500 && sacr & SACR_CACHE_LOCK == 0 => b.actlr = v & 0x3,
            cb::TCR2 if v2 => b.tcr2 = v,
            cb::TTBR0 => set_lo(&mut b.ttbr0, v),
            cb::TTBR0_HI => set_hi(&mut b.ttbr0, v),
            cb::TTBR1 => set_lo(&mut b.ttbr1, v),
            cb::TTBR1_HI => set_hi(&mut b.ttbr1, v),
            cb::TCR => b.tcr = v,
            cb::CONTEXTIDR => b.contextidr = v,
            cb::S1_MAIR0 => b.mair0 = v,
            cb::S1_MAIR1 => b.mair1 = v,
            cb::PAR if cfg.atos => set_lo(&mut b.par, v),
            cb::PAR_HI if cfg.atos => set_hi(&mut b.par, v),
            cb::FSR => {
                b.fsr &= !(v & fsr::FAULT);
                if b.fsr & fsr::FAULT == 0 {
                    b.fsr = 0;
                }
                self.regs.update_cb_level(cfg, n, p);
            }
            cb::FSRRESTORE => {
                b.fsr = v & (fsr::FAULT | FSR_FORMAT_MASK);
                self.regs.update_cb_level(cfg, n, p);
            }
            cb::FAR => set_lo(&mut b.far, v),
            cb::FAR_HI => set_hi(&mut b.far, v),
            cb::FSYNR0 => b.fsynr0 = v,
            cb::FSYNR1 => b.fsynr1 = v,
            cb::TLBSYNC => b.sync_pending = cfg.sync_polls,
            _ => {}
        }
    }

    /// A write to one of a bank's 64-bit operation registers (TLBI by VA/IPA/ASID, ATS1*).
    /// `v` is the register's latched 64-bit value; a write to either 32-bit half performs the
    /// operation with the whole latch (for AArch32 contexts the low word is the operation in the
    /// 32-bit encoding).
    fn cb_op(
        &mut self,
        cfg: &Mmu500Config,
        mem: &physmem::PhysMem,
        n: usize,
        o: u64,
        v: u64,
        p: &mut Pending,
    ) {
        let Some(b) = self.regs.banks.get(n) else {
            return;
        };
        let aarch64 = crate::xlate::is_aarch64(cfg, b.cba2r, b.tcr);
        let vmid = self.regs.vmid(cfg, n);
        let asid16 = cfg.version == ArchVersion::V2 && b.tcr2 & regs::tcr2::AS != 0;
        let cbi = n as u16;
        // Decode (va, asid) from either encoding.
        let (va, asid) = if aarch64 {
            let va = sign_extend_56((v & tlbi::VA_MASK) << tlbi::ADDR_SHIFT);
            let asid = (v >> tlbi::ASID_SHIFT) as u16;
            (
                va,
                if asid16 {
                    asid
                } else {
                    asid & regs::ASID8_MASK
                },
            )
        } else {
            // AArch32 encoding: VA[31:12] | ASID[7:0] in the low word.
            (v & tlbi::AARCH32_VA_MASK, v as u16 & regs::ASID8_MASK)
        };
        match o {
            cb::S1_TLBIVA | cb::S1_TLBIVAL => self.tlbi(
                TlbiOp::Va {
                    cb: cbi,
                    asid,
                    va: Iova::new(va),
                },
                Match::Va { vmid, asid, va },
                p,
            ),
            cb::S1_TLBIVAA | cb::S1_TLBIVAAL => self.tlbi(
                TlbiOp::VaAllAsid {
                    cb: cbi,
                    va: Iova::new(va),
                },
                Match::VaAllAsid { vmid, va },
                p,
            ),
            cb::S1_TLBIASID => {
                let asid = if asid16 {
                    v as u16
                } else {
                    v as u16 & regs::ASID8_MASK
                };
                self.tlbi(
                    TlbiOp::Asid { cb: cbi, asid },
                    Match::Asid { vmid, asid },
                    p,
                )
            }
            cb::S1_TLBIALL => self.tlbi(TlbiOp::CbAll { cb: cbi }, Match::Vmid(vmid), p),
            cb::S2_TLBIIPAS2 | cb::S2_TLBIIPAS2L => {
                let ipa = (v & tlbi::IPA_MASK) << tlbi::ADDR_SHIFT;
                let op = TlbiOp::Ipa {
                    cb: cbi,
                    ipa: Iova::new(ipa),
                };
                self.tlbi(op, Match::Ipa { vmid, ipa }, p)
            }
            cb::ATS1PR | cb::ATS1PW if cfg.atos => {
                let va = regs::ats1::va(v, aarch64);
                let access = if o == cb::ATS1PW {
                    smmu_arch::Access::Write
                } else {
                    smmu_arch::Access::Read
                };
                let par = crate::xlate::ats(self, cfg, mem, n, va, access);
                if let Some(b) = self.regs.banks.get_mut(n) {
                    b.ats_pending = cfg.ats_polls;
                    b.par_pending = par;
                    if cfg.ats_polls == 0 {
                        b.par = par;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Sign-extend a 56-bit VA (TLBI operands carry VA[55:12]).
fn sign_extend_56(va: u64) -> u64 {
    (((va << 8) as i64) >> 8) as u64
}

/// GR0 offsets of the two halves of sGFAR (64-bit).
pub(crate) const GFAR_LO: u64 = gr0::SGFAR;
pub(crate) const GFAR_HI: u64 = gr0::SGFAR + regs::HIGH_WORD;

/// Writable SCTLR bits: M..HUPCF, WXN, UWXN, ASIDPNE, TRANSIENTCFG, MEMATTR, MTCFG, SHCFG,
/// RACFG, WACFG, NSCFG.
pub(crate) const SCTLR_MASK: u32 = 0x3fdf_d7ff;

/// Implemented SMR bits: ID and MASK are NUMSIDB wide (MASK at most 15 bits below VALID).
pub(crate) fn smr_mask(cfg: &Mmu500Config) -> u32 {
    let id = regs::make(cfg.sid_mask(), smr::ID_SHIFT, smr::ID_WIDTH);
    // Without EXIDS the mask field's top bit is SMR.VALID, so MASK has one bit fewer than ID.
    let mask = regs::make(cfg.sid_mask(), smr::MASK_SHIFT, smr::MASK_WIDTH) & !smr::VALID;
    id | mask | smr::VALID
}

/// The architected name of the register at `offset`, if any.
pub(crate) fn reg_name(cfg: &Mmu500Config, offset: u64) -> Option<RegName> {
    let named = |space, name| {
        Some(RegName {
            space,
            name,
            index: None,
        })
    };
    match State::locate(cfg, offset) {
        Loc::Gr0(o) => {
            let g = Space::Gr0;
            match o {
                gr0::SCR0 => named(g, "sCR0"),
                gr0::SACR => named(g, "sACR"),
                gr0::ID0 => named(g, "ID0"),
                gr0::ID1 => named(g, "ID1"),
                gr0::ID2 => named(g, "ID2"),
                gr0::ID7 => named(g, "ID7"),
                GFAR_LO => named(g, "sGFAR"),
                gr0::SGFSR => named(g, "sGFSR"),
                gr0::SGFSRRESTORE => named(g, "sGFSRRESTORE"),
                gr0::SGFSYNR0 => named(g, "sGFSYNR0"),
                gr0::SGFSYNR1 => named(g, "sGFSYNR1"),
                gr0::SGFSYNR2 => named(g, "sGFSYNR2"),
                gr0::TLBIVMID => named(g, "TLBIVMID"),
                gr0::TLBIALLNSNH => named(g, "TLBIALLNSNH"),
                gr0::TLBIALLH => named(g, "TLBIALLH"),
                gr0::STLBGSYNC => named(g, "sTLBGSYNC"),
                gr0::STLBGSTATUS => named(g, "sTLBGSTATUS"),
                0x800..=0xbff => Some(RegName {
                    space: g,
                    name: "SMR",
                    index: Some(((o - 0x800) / 4) as u32),
                }),
                0xc00..=0xfff => Some(RegName {
                    space: g,
                    name: "S2CR",
                    index: Some(((o - 0xc00) / 4) as u32),
                }),
                _ => None,
            }
        }
        Loc::Gr1(o) => {
            let name = match o & !0x3ff {
                gr1::CBAR => "CBAR",
                gr1::CBFRSYNRA => "CBFRSYNRA",
                gr1::CBA2R => "CBA2R",
                _ => return None,
            };
            Some(RegName {
                space: Space::Gr1,
                name,
                index: Some(((o & 0x3ff) / 4) as u32),
            })
        }
        Loc::Cb(n, o) => {
            let name = match o {
                cb::SCTLR => "SCTLR",
                cb::ACTLR => "ACTLR",
                cb::RESUME => "RESUME",
                cb::TCR2 => "TCR2",
                cb::TTBR0 | cb::TTBR0_HI => "TTBR0",
                cb::TTBR1 | cb::TTBR1_HI => "TTBR1",
                cb::TCR => "TCR",
                cb::CONTEXTIDR => "CONTEXTIDR",
                cb::S1_MAIR0 => "MAIR0",
                cb::S1_MAIR1 => "MAIR1",
                cb::PAR | cb::PAR_HI => "PAR",
                cb::FSR => "FSR",
                cb::FSRRESTORE => "FSRRESTORE",
                cb::FAR | cb::FAR_HI => "FAR",
                cb::FSYNR0 => "FSYNR0",
                cb::FSYNR1 => "FSYNR1",
                cb::S1_TLBIVA | cb::S1_TLBIVA_HI => "TLBIVA",
                cb::S1_TLBIVAA | cb::S1_TLBIVAA_HI => "TLBIVAA",
                cb::S1_TLBIASID => "TLBIASID",
                cb::S1_TLBIALL => "TLBIALL",
                cb::S1_TLBIVAL | cb::S1_TLBIVAL_HI => "TLBIVAL",
                cb::S1_TLBIVAAL | cb::S1_TLBIVAAL_HI => "TLBIVAAL",
                cb::S2_TLBIIPAS2 | cb::S2_TLBIIPAS2_HI => "TLBIIPAS2",
                cb::S2_TLBIIPAS2L | cb::S2_TLBIIPAS2L_HI => "TLBIIPAS2L",
                cb::TLBSYNC => "TLBSYNC",
                cb::TLBSTATUS => "TLBSTATUS",
                cb::ATS1PR | cb::ATS1PR_HI => "ATS1PR",
                cb::ATS1PW | cb::ATS1PW_HI => "ATS1PW",
                cb::ATSR => "ATSR",
                _ => return None,
            };
            named(Space::Cb(n as u16), name)
        }
        Loc::None => None,
    }
}
