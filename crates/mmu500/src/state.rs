//! The register file and its side effects (everything behind the model's one lock).

use crate::config::{Config, Version};
use crate::tlb::{FxBuild, Match, Tlb};
use crate::types::{Counters, Event, RegName, Space, TlbiOp};
use smmu_arch::regs::{self, cb, cba2r, cbar, fsr, gfsr, gr0, gr1, scr0, sctlr, smr};
use smmu_arch::IrqLine;
use std::collections::HashMap;

/// MMU-500 sACR.CACHE_LOCK: ACTLR writes are ignored while set.
pub(crate) const SACR_CACHE_LOCK: u32 = 1 << 26;
/// FSR.FORMAT field mask.
pub(crate) const FSR_FORMAT_MASK: u32 = 3 << fsr::FORMAT_SHIFT;

/// One context bank's registers (its page, plus its GR1 entries).
#[derive(Debug, Clone, Default)]
pub(crate) struct Bank {
    pub sctlr: u32,
    pub actlr: u32,
    pub tcr2: u32,
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub tcr: u32,
    pub contextidr: u32,
    pub mair0: u32,
    pub mair1: u32,
    pub par: u64,
    pub fsr: u32,
    pub far: u64,
    pub fsynr0: u32,
    pub fsynr1: u32,
    pub cbar: u32,
    pub cba2r: u32,
    pub cbfrsynra: u32,
    /// Remaining TLBSTATUS polls that read "active".
    pub sync_pending: u32,
    /// Latches of the 64-bit write-only registers, so that two 32-bit halves compose.
    pub latch: [u64; LATCHES],
    /// Current level of this bank's interrupt output.
    pub level: bool,
    /// Context epoch: the model's register generation at the last write to a register that
    /// defines this bank's translation regime (SCTLR, TCR, TCR2, TTBR0/1, CONTEXTIDR,
    /// MAIR0/1, and CBAR/CBA2R in GR1). Every walk and every TLB entry filled from it carries
    /// the epoch, so a translation can be traced to the bank programming that produced it:
    /// a checker that knows which programmings were torn down (a freed domain) can tell a
    /// stale TLB hit or a walk of freed tables from a translation of the live domain. Not
    /// architectural state; nothing in the model's behaviour depends on it.
    pub epoch: u64,
    /// ATSR.ACTIVE reads left before the pending ATS1* operation completes.
    pub ats_pending: u32,
    /// PAR value the pending ATS1* operation will publish when it completes.
    pub par_pending: u64,
}

/// Indices of the 64-bit write-only registers' latches.
pub(crate) const LATCHES: usize = 10;
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

/// How a stream ID resolved against the SMRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamMatch {
    Group(u32),
    Unmatched,
    /// More than one SMR matched; the lowest index is kept for SMCFCFG = 0.
    Conflict(u32),
}

/// Work to do once the lock is released.
#[derive(Default)]
pub(crate) struct Pending {
    pub events: Vec<Event>,
    pub raised: Vec<IrqLine>,
    /// Whether events should be built at all (a sink is installed).
    pub trace: bool,
    /// The micro-TLB entry a successful translation filled, handed to a [`crate::Port`].
    pub fill: Option<MicroEntry>,
}

impl Pending {
    #[inline]
    pub fn event(&mut self, f: impl FnOnce() -> Event) {
        if self.trace {
            self.events.push(f());
        }
    }
}

/// Where an offset lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loc {
    Gr0(u64),
    Gr1(u64),
    Cb(usize, u64),
    None,
}

/// Entries of the micro-TLB (direct mapped).
pub(crate) const UTLB_ENTRIES: usize = 16;

/// A micro-TLB entry: the final result of a recent successful transaction for one stream and
/// 4 KiB input page, valid only while `gen` equals [`State::gen`]. Any register write bumps the
/// generation, so the micro-TLB never outlives a change the main TLB would see (like the TBU
/// micro-TLBs in front of an MMU-500's TCU TLB, which invalidation also reaches).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MicroEntry {
    pub gen: u64,
    pub sid: u32,
    pub vpn: u64,
    pub pa_page: u64,
    pub cb: u16,
    pub shift: u8,
    pub read: bool,
    pub write: bool,
    /// The context epoch of the translation that filled the entry.
    pub epoch: u64,
}

/// The whole mutable state.
pub(crate) struct State {
    /// Generation of the micro-TLB: bumped by every register write.
    pub gen: u64,
    pub utlb: [MicroEntry; UTLB_ENTRIES],
    pub scr0: u32,
    pub sacr: u32,
    pub gfar: u64,
    pub gfsr: u32,
    pub gfsynr0: u32,
    pub gfsynr1: u32,
    pub gfsynr2: u32,
    pub gsync_pending: u32,
    pub global_level: bool,
    pub smr: Vec<u32>,
    pub s2cr: Vec<u32>,
    pub banks: Vec<Bank>,
    pub tlb: Tlb,
    pub smr_cache: HashMap<u32, StreamMatch, FxBuild>,
    /// The last stream resolved (a one-entry memo in front of `smr_cache`: a device streams
    /// many transactions in a row); cleared with it.
    pub last_match: Option<(u32, StreamMatch)>,
    /// Each bank's decoded translation regime with the generation it was decoded at (valid
    /// while that equals `gen`, so any register write invalidates it).
    pub decoded: Vec<(u64, crate::xlate::Regime)>,
    pub counters: Counters,
    /// Whether transactions may take the specialised successful paths (on, except in the
    /// tests that compare them with the general path).
    pub fast_paths: bool,
}

impl State {
    pub fn new(cfg: &Config) -> Self {
        let bank = Bank {
            sctlr: cfg.sctlr_reset,
            actlr: if cfg.mmu500 { cfg.actlr_reset } else { 0 },
            ..Bank::default()
        };
        State {
            gen: 1,
            utlb: [MicroEntry::default(); UTLB_ENTRIES],
            scr0: cfg.scr0_reset & scr0_mask(cfg),
            sacr: if cfg.mmu500 { cfg.sacr_reset } else { 0 },
            gfar: 0,
            gfsr: 0,
            gfsynr0: 0,
            gfsynr1: 0,
            gfsynr2: 0,
            gsync_pending: 0,
            global_level: false,
            smr: vec![
                0;
                if cfg.stream_match {
                    cfg.num_smrg as usize
                } else {
                    0
                }
            ],
            s2cr: vec![cfg.s2cr_reset & s2cr_mask(); cfg.num_groups() as usize],
            banks: vec![bank; cfg.num_cb as usize],
            tlb: Tlb::new(cfg.tlb_entries, cfg.tlb_seed),
            smr_cache: HashMap::with_hasher(FxBuild::default()),
            last_match: None,
            decoded: Vec::new(),
            counters: Counters::default(),
            fast_paths: true,
        }
    }

    /// Decode a byte offset into the register window.
    pub fn locate(cfg: &Config, offset: u64) -> Loc {
        if offset >= cfg.window_size() {
            return Loc::None;
        }
        let ps = cfg.page_size();
        let page = offset / ps;
        let within = offset % ps;
        if page == 0 {
            Loc::Gr0(within)
        } else if page == 1 {
            Loc::Gr1(within)
        } else if page >= cfg.num_pages() && page - cfg.num_pages() < u64::from(cfg.num_cb) {
            Loc::Cb((page - cfg.num_pages()) as usize, within)
        } else {
            Loc::None
        }
    }

    // ----- interrupt levels -----

    pub fn update_global_level(&mut self, cfg: &Config, p: &mut Pending) {
        let level = self.gfsr != 0 && self.scr0 & scr0::GFIE != 0;
        if level && !self.global_level {
            p.raised.push(IrqLine::Global(cfg.global_irq));
        }
        self.global_level = level;
    }

    pub fn context_line(&self, cfg: &Config, n: usize) -> IrqLine {
        match cfg.version {
            Version::V2 => IrqLine::Context(n as u16),
            Version::V1 => IrqLine::Context(regs::field(
                self.banks.get(n).map_or(0, |b| b.cbar),
                cbar::IRPTNDX_SHIFT,
                cbar::IRPTNDX_WIDTH,
            ) as u16),
        }
    }

    pub fn update_cb_level(&mut self, cfg: &Config, n: usize, p: &mut Pending) {
        let line = self.context_line(cfg, n);
        if let Some(b) = self.banks.get_mut(n) {
            let level = b.fsr & fsr::FAULT != 0 && b.sctlr & sctlr::CFIE != 0;
            if level && !b.level {
                p.raised.push(line);
            }
            b.level = level;
        }
    }

    /// Level of an interrupt line now.
    pub fn irq_level(&self, cfg: &Config, line: IrqLine) -> bool {
        match line {
            IrqLine::Global(i) => i == cfg.global_irq && self.global_level,
            IrqLine::Context(i) => (0..self.banks.len())
                .any(|n| self.banks[n].level && self.context_line(cfg, n) == IrqLine::Context(i)),
        }
    }

    // ----- fault recording -----

    /// Record a global fault; returns whether its syndrome was captured (false: MULTI only).
    pub fn record_global(
        &mut self,
        cfg: &Config,
        bit: u32,
        synr0: u32,
        sid: u32,
        iova: u64,
        p: &mut Pending,
    ) -> bool {
        let recorded = if self.gfsr != 0 {
            self.gfsr |= gfsr::MULTI;
            false
        } else {
            self.gfsr = bit;
            self.gfsynr0 = synr0;
            self.gfsynr1 = sid & 0xffff;
            self.gfsynr2 = 0;
            self.gfar = iova;
            true
        };
        let (gfsr, gfsynr0, gfsynr1) = (self.gfsr, self.gfsynr0, self.gfsynr1);
        p.event(|| Event::GlobalFaultRecorded {
            gfsr,
            gfsynr0,
            gfsynr1,
        });
        self.update_global_level(cfg, p);
        recorded
    }

    /// Record a context fault in bank `n`; returns whether FAR/FSYNR0 were captured.
    #[allow(clippy::too_many_arguments)]
    pub fn record_context(
        &mut self,
        cfg: &Config,
        n: usize,
        bit: u32,
        format: u32,
        fsynr0: u32,
        far: u64,
        sid: u32,
        p: &mut Pending,
    ) -> bool {
        let Some(b) = self.banks.get_mut(n) else {
            return false;
        };
        let recorded = if b.fsr & fsr::FAULT != 0 {
            b.fsr |= fsr::MULTI;
            false
        } else {
            b.fsr = bit | ((format & 3) << fsr::FORMAT_SHIFT);
            b.far = far;
            b.fsynr0 = fsynr0;
            b.cbfrsynra = sid & 0xffff;
            true
        };
        let (fsr_v, far_v, fsynr) = (b.fsr, b.far, b.fsynr0);
        p.event(|| Event::ContextFaultRecorded {
            cb: n as u16,
            fsr: fsr_v,
            far: far_v,
            fsynr0: fsynr,
        });
        self.update_cb_level(cfg, n, p);
        recorded
    }

    // ----- stream matching -----

    /// Forget every resolved stream (SMR, S2CR or SCR0 changed).
    fn clear_smr_cache(&mut self) {
        self.smr_cache.clear();
        self.last_match = None;
    }

    pub fn match_stream(&mut self, cfg: &Config, sid: u32) -> StreamMatch {
        let sid = sid & cfg.sid_mask();
        if !cfg.stream_match {
            return if (sid as usize) < self.s2cr.len() {
                StreamMatch::Group(sid)
            } else {
                StreamMatch::Unmatched
            };
        }
        if let Some((last, m)) = self.last_match {
            if last == sid {
                return m;
            }
        }
        if let Some(&m) = self.smr_cache.get(&sid) {
            self.last_match = Some((sid, m));
            return m;
        }
        let id_mask = cfg.sid_mask();
        let mut found: Option<u32> = None;
        let mut conflict = false;
        for (i, &s) in self.smr.iter().enumerate() {
            if s & smr::VALID == 0 {
                continue;
            }
            let id = regs::field(s, smr::ID_SHIFT, smr::ID_WIDTH);
            // Without EXIDS the mask field's top bit is SMR.VALID, not a mask bit.
            let mask =
                regs::field(s, smr::MASK_SHIFT, smr::MASK_WIDTH) & !(smr::VALID >> smr::MASK_SHIFT);
            if (sid ^ id) & !mask & id_mask == 0 {
                if found.is_some() {
                    conflict = true;
                    break;
                }
                found = Some(i as u32);
            }
        }
        let m = match (found, conflict) {
            (Some(i), true) => StreamMatch::Conflict(i),
            (Some(i), false) => StreamMatch::Group(i),
            (None, _) => StreamMatch::Unmatched,
        };
        if self.smr_cache.len() >= 4096 {
            self.clear_smr_cache();
        }
        self.smr_cache.insert(sid, m);
        self.last_match = Some((sid, m));
        m
    }

    /// The VMID a bank's TLB entries are tagged with.
    pub fn vmid(&self, cfg: &Config, n: usize) -> u16 {
        let Some(b) = self.banks.get(n) else { return 0 };
        if cfg.vmid16 && self.scr0 & scr0::VMID16EN != 0 {
            (b.cba2r >> cba2r::VMID16_SHIFT) as u16
        } else {
            (b.cbar & 0xff) as u16
        }
    }

    fn tlbi(&mut self, op: TlbiOp, m: Match, p: &mut Pending) {
        let removed = self.tlb.invalidate(m);
        self.counters.tlb_invalidations += 1;
        p.event(|| Event::TlbInvalidate { op, removed });
    }

    // ----- register reads -----

    pub fn read32(&mut self, cfg: &Config, offset: u64) -> u32 {
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

    fn read_gr0(&mut self, cfg: &Config, o: u64) -> u32 {
        match o {
            gr0::SCR0 => self.scr0,
            gr0::SACR if cfg.mmu500 => self.sacr,
            gr0::ID0 => cfg.id0(),
            gr0::ID1 => cfg.id1(),
            gr0::ID2 => cfg.id2(),
            gr0::ID7 => cfg.id7(),
            GFAR_LO => self.gfar as u32,
            GFAR_HI => (self.gfar >> 32) as u32,
            gr0::SGFSR => self.gfsr,
            gr0::SGFSYNR0 => self.gfsynr0,
            gr0::SGFSYNR1 => self.gfsynr1,
            gr0::SGFSYNR2 => self.gfsynr2,
            gr0::STLBGSTATUS if self.gsync_pending > 0 => {
                self.gsync_pending -= 1;
                regs::tlbstatus::SACTIVE
            }
            o if (gr0::SMR..gr0::SMR + 4 * self.smr.len() as u64).contains(&o) => self
                .smr
                .get(((o - gr0::SMR) / 4) as usize)
                .copied()
                .unwrap_or(0),
            o if (gr0::S2CR..gr0::S2CR + 4 * self.s2cr.len() as u64).contains(&o) => self
                .s2cr
                .get(((o - gr0::S2CR) / 4) as usize)
                .copied()
                .unwrap_or(0),
            _ => 0,
        }
    }

    fn read_gr1(&mut self, cfg: &Config, o: u64) -> u32 {
        let n = ((o & 0x3ff) / 4) as usize;
        let Some(b) = self.banks.get(n) else { return 0 };
        match o & !0x3ff {
            gr1::CBAR => b.cbar,
            gr1::CBFRSYNRA => b.cbfrsynra,
            gr1::CBA2R if cfg.version == Version::V2 => b.cba2r,
            _ => 0,
        }
    }

    fn read_cb(&mut self, cfg: &Config, n: usize, o: u64) -> u32 {
        let v2 = cfg.version == Version::V2;
        let Some(b) = self.banks.get_mut(n) else {
            return 0;
        };
        let lo = |v: u64| v as u32;
        let hi = |v: u64| (v >> 32) as u32;
        match o {
            cb::SCTLR => b.sctlr,
            cb::ACTLR if cfg.mmu500 => b.actlr,
            cb::TCR2 if v2 => b.tcr2,
            cb::TTBR0 => lo(b.ttbr0),
            0x024 => hi(b.ttbr0),
            cb::TTBR1 => lo(b.ttbr1),
            0x02c => hi(b.ttbr1),
            cb::TCR => b.tcr,
            cb::CONTEXTIDR => b.contextidr,
            cb::S1_MAIR0 => b.mair0,
            cb::S1_MAIR1 => b.mair1,
            cb::PAR if cfg.atos => lo(b.par),
            0x054 if cfg.atos => hi(b.par),
            cb::FSR => b.fsr,
            cb::FAR => lo(b.far),
            0x064 => hi(b.far),
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

    pub fn read64(&mut self, cfg: &Config, offset: u64) -> u64 {
        let lo = u64::from(self.read32(cfg, offset));
        let hi = u64::from(self.read32(cfg, offset.wrapping_add(4)));
        lo | (hi << 32)
    }

    // ----- register writes -----

    /// A 32-bit write. 64-bit registers take the half addressed.
    pub fn write32(
        &mut self,
        cfg: &Config,
        mem: &physmem::PhysMem,
        offset: u64,
        v: u32,
        p: &mut Pending,
    ) {
        self.gen += 1;
        if !offset.is_multiple_of(4) {
            return;
        }
        match Self::locate(cfg, offset) {
            Loc::Gr0(o) => self.write_gr0(cfg, o, v, p),
            Loc::Gr1(o) => self.write_gr1(cfg, o, v),
            Loc::Cb(n, o) => {
                if let Some(li) = latch_index(o) {
                    let Some(b) = self.banks.get_mut(n) else {
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
        cfg: &Config,
        mem: &physmem::PhysMem,
        offset: u64,
        v: u64,
        p: &mut Pending,
    ) {
        self.gen += 1;
        if offset.is_multiple_of(8) {
            if let Loc::Cb(n, o) = Self::locate(cfg, offset) {
                if let Some(li) = latch_index(o) {
                    if let Some(l) = self.banks.get_mut(n).and_then(|b| b.latch.get_mut(li)) {
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

    fn write_gr0(&mut self, cfg: &Config, o: u64, v: u32, p: &mut Pending) {
        match o {
            gr0::SCR0 => {
                self.scr0 = v & scr0_mask(cfg);
                self.clear_smr_cache();
                self.update_global_level(cfg, p);
            }
            gr0::SACR if cfg.mmu500 => self.sacr = v,
            gr0::SGFSR => {
                self.gfsr &= !(v & gfsr::ALL);
                self.update_global_level(cfg, p);
            }
            gr0::SGFSRRESTORE => {
                self.gfsr = v & gfsr::ALL;
                self.update_global_level(cfg, p);
            }
            gr0::TLBIVMID => {
                let vmid = if cfg.vmid16 && self.scr0 & scr0::VMID16EN != 0 {
                    v as u16
                } else {
                    (v & 0xff) as u16
                };
                self.tlbi(TlbiOp::Vmid(vmid), Match::Vmid(vmid), p);
            }
            gr0::TLBIALLNSNH => self.tlbi(TlbiOp::AllNsnh, Match::All, p),
            // No hypervisor contexts are modelled: nothing is tagged as Hyp.
            gr0::TLBIALLH => p.event(|| Event::TlbInvalidate {
                op: TlbiOp::AllHyp,
                removed: 0,
            }),
            gr0::STLBGSYNC => self.gsync_pending = cfg.sync_polls,
            o if (gr0::SMR..gr0::SMR + 4 * self.smr.len() as u64).contains(&o) => {
                let m = smr_mask(cfg);
                if let Some(s) = self.smr.get_mut(((o - gr0::SMR) / 4) as usize) {
                    *s = v & m;
                }
                self.clear_smr_cache();
            }
            o if (gr0::S2CR..gr0::S2CR + 4 * self.s2cr.len() as u64).contains(&o) => {
                if let Some(s) = self.s2cr.get_mut(((o - gr0::S2CR) / 4) as usize) {
                    *s = v & s2cr_mask();
                }
            }
            _ => {}
        }
    }

    fn write_gr1(&mut self, cfg: &Config, o: u64, v: u32) {
        let n = ((o & 0x3ff) / 4) as usize;
        let s2_only = (n as u32) < cfg.num_s2cb;
        let gen = self.gen;
        let Some(b) = self.banks.get_mut(n) else {
            return;
        };
        if matches!(o & !0x3ff, gr1::CBAR | gr1::CBA2R) {
            b.epoch = gen;
        }
        match o & !0x3ff {
            gr1::CBAR => {
                let mut w = v & if cfg.version == Version::V1 {
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
            gr1::CBA2R if cfg.version == Version::V2 => {
                let mut m = cba2r::VA64 | (1 << 1);
                if cfg.vmid16 {
                    m |= 0xffff << cba2r::VMID16_SHIFT;
                }
                b.cba2r = v & m;
            }
            _ => {}
        }
    }

    fn write_cb(&mut self, cfg: &Config, n: usize, o: u64, v: u32, p: &mut Pending) {
        let v2 = cfg.version == Version::V2;
        let sacr = self.sacr;
        let gen = self.gen;
        let Some(b) = self.banks.get_mut(n) else {
            return;
        };
        if matches!(
            o,
            cb::SCTLR
                | cb::TCR2
                | cb::TTBR0
                | 0x024
                | cb::TTBR1
                | 0x02c
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
                self.update_cb_level(cfg, n, p);
            }
            cb::ACTLR if cfg.mmu500 && sacr & SACR_CACHE_LOCK == 0 => b.actlr = v & 0x3,
            cb::TCR2 if v2 => b.tcr2 = v,
            cb::TTBR0 => set_lo(&mut b.ttbr0, v),
            0x024 => set_hi(&mut b.ttbr0, v),
            cb::TTBR1 => set_lo(&mut b.ttbr1, v),
            0x02c => set_hi(&mut b.ttbr1, v),
            cb::TCR => b.tcr = v,
            cb::CONTEXTIDR => b.contextidr = v,
            cb::S1_MAIR0 => b.mair0 = v,
            cb::S1_MAIR1 => b.mair1 = v,
            cb::PAR if cfg.atos => set_lo(&mut b.par, v),
            0x054 if cfg.atos => set_hi(&mut b.par, v),
            cb::FSR => {
                b.fsr &= !(v & fsr::FAULT);
                if b.fsr & fsr::FAULT == 0 {
                    b.fsr = 0;
                }
                self.update_cb_level(cfg, n, p);
            }
            cb::FSRRESTORE => {
                b.fsr = v & (fsr::FAULT | FSR_FORMAT_MASK);
                self.update_cb_level(cfg, n, p);
            }
            cb::FAR => set_lo(&mut b.far, v),
            0x064 => set_hi(&mut b.far, v),
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
        cfg: &Config,
        mem: &physmem::PhysMem,
        n: usize,
        o: u64,
        v: u64,
        p: &mut Pending,
    ) {
        let Some(b) = self.banks.get(n) else { return };
        let aarch64 = crate::xlate::is_aarch64(cfg, b.cba2r, b.tcr);
        let vmid = self.vmid(cfg, n);
        let asid16 = cfg.version == Version::V2 && b.tcr2 & regs::tcr2::AS != 0;
        let cbi = n as u16;
        // Decode (va, asid) from either encoding.
        let (va, asid) = if aarch64 {
            let va = sign_extend_56((v & 0x0000_0fff_ffff_ffff) << 12);
            let asid = (v >> 48) as u16;
            (va, if asid16 { asid } else { asid & 0xff })
        } else {
            // AArch32 encoding: VA[31:12] | ASID[7:0] in the low word.
            (v & 0xffff_f000 & 0xffff_ffff, (v & 0xff) as u16)
        };
        match o {
            cb::S1_TLBIVA | cb::S1_TLBIVAL => self.tlbi(
                TlbiOp::Va { cb: cbi, asid, va },
                Match::Va { vmid, asid, va },
                p,
            ),
            cb::S1_TLBIVAA | cb::S1_TLBIVAAL => self.tlbi(
                TlbiOp::VaAllAsid { cb: cbi, va },
                Match::VaAllAsid { vmid, va },
                p,
            ),
            cb::S1_TLBIASID => {
                let asid = if asid16 { v as u16 } else { (v & 0xff) as u16 };
                self.tlbi(
                    TlbiOp::Asid { cb: cbi, asid },
                    Match::Asid { vmid, asid },
                    p,
                )
            }
            cb::S1_TLBIALL => self.tlbi(TlbiOp::CbAll { cb: cbi }, Match::Vmid(vmid), p),
            cb::S2_TLBIIPAS2 | cb::S2_TLBIIPAS2L => {
                let ipa = (v & 0x0000_000f_ffff_ffff) << 12;
                self.tlbi(TlbiOp::Ipa { cb: cbi, ipa }, Match::Ipa { vmid, ipa }, p)
            }
            cb::ATS1PR | cb::ATS1PW if cfg.atos => {
                let va = if aarch64 { v & !0xfff } else { v & 0xffff_f000 };
                let access = if o == cb::ATS1PW {
                    smmu_arch::Access::Write
                } else {
                    smmu_arch::Access::Read
                };
                let par = crate::xlate::ats(self, cfg, mem, n, va, access);
                if let Some(b) = self.banks.get_mut(n) {
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
pub(crate) const GFAR_HI: u64 = gr0::SGFAR + 4;

/// Writable SCTLR bits: M..HUPCF, WXN, UWXN, ASIDPNE, TRANSIENTCFG, MEMATTR, MTCFG, SHCFG,
/// RACFG, WACFG, NSCFG.
pub(crate) const SCTLR_MASK: u32 = 0x3fdf_d7ff;

/// Implemented sCR0 bits for this configuration.
pub(crate) fn scr0_mask(cfg: &Config) -> u32 {
    // Bits 29:0 except EXIDENABLE (no EXIDS) and SMCFCFG (MMU-500 only); VMID16EN with VMID16.
    let mut m = 0x3fff_ffff & !scr0::EXIDENABLE & !scr0::SMCFCFG;
    if cfg.mmu500 {
        m |= scr0::SMCFCFG;
    }
    if cfg.vmid16 {
        m |= scr0::VMID16EN;
    }
    m
}

/// Implemented SMR bits: ID and MASK are NUMSIDB wide (MASK at most 15 bits below VALID).
pub(crate) fn smr_mask(cfg: &Config) -> u32 {
    let id = cfg.sid_mask() & 0xffff;
    id | ((id & 0x7fff) << smr::MASK_SHIFT) | smr::VALID
}

/// Implemented S2CR bits (EXIDVALID and 31:30 read as zero).
pub(crate) fn s2cr_mask() -> u32 {
    0x3fff_ffff & !regs::s2cr::EXIDVALID
}

/// The architected name of the register at `offset`, if any.
pub(crate) fn reg_name(cfg: &Config, offset: u64) -> Option<RegName> {
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
                cb::TTBR0 | 0x024 => "TTBR0",
                cb::TTBR1 | 0x02c => "TTBR1",
                cb::TCR => "TCR",
                cb::CONTEXTIDR => "CONTEXTIDR",
                cb::S1_MAIR0 => "MAIR0",
                cb::S1_MAIR1 => "MAIR1",
                cb::PAR | 0x054 => "PAR",
                cb::FSR => "FSR",
                cb::FSRRESTORE => "FSRRESTORE",
                cb::FAR | 0x064 => "FAR",
                cb::FSYNR0 => "FSYNR0",
                cb::FSYNR1 => "FSYNR1",
                cb::S1_TLBIVA | 0x604 => "TLBIVA",
                cb::S1_TLBIVAA | 0x60c => "TLBIVAA",
                cb::S1_TLBIASID => "TLBIASID",
                cb::S1_TLBIALL => "TLBIALL",
                cb::S1_TLBIVAL | 0x624 => "TLBIVAL",
                cb::S1_TLBIVAAL | 0x62c => "TLBIVAAL",
                cb::S2_TLBIIPAS2 | 0x634 => "TLBIIPAS2",
                cb::S2_TLBIIPAS2L | 0x63c => "TLBIIPAS2L",
                cb::TLBSYNC => "TLBSYNC",
                cb::TLBSTATUS => "TLBSTATUS",
                cb::ATS1PR | 0x804 => "ATS1PR",
                cb::ATS1PW | 0x80c => "ATS1PW",
                cb::ATSR => "ATSR",
                _ => return None,
            };
            named(Space::Cb(n as u16), name)
        }
        Loc::None => None,
    }
}
