//! The model's state behind its one lock, in three groups: the architectural registers, the
//! caches the model keeps in front of them (micro-TLB, TLB, resolved streams, decoded
//! regimes), and the counters. Register access is in `mmio`, the transaction path in `xlate`.

use crate::config::{ArchVersion, Mmu500Config};
use crate::micro_tlb::{MicroTlb, SHARED};
use crate::tlb::Tlb;
use crate::types::{Mmu500Counters, TraceEvent};
use crate::xlate::{Regime, StreamCache};
use smmu_arch::regs::{self, cba2r, cbar, fsr, scr0, sctlr};
use smmu_arch::FaultIrq;

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

/// Work to do once the lock is released.
#[derive(Default)]
pub(crate) struct Pending {
    pub events: Vec<TraceEvent>,
    pub raised: Vec<FaultIrq>,
    /// Whether events should be built at all (a sink is installed).
    pub trace: bool,
    /// The micro-TLB entry a successful translation filled, handed to a [`crate::Port`].
    pub fill: Option<crate::micro_tlb::MicroEntry>,
}

impl Pending {
    #[inline]
    pub fn event(&mut self, f: impl FnOnce() -> TraceEvent) {
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

/// Indices of the 64-bit write-only registers' latches (see `mmio`).
pub(crate) const LATCHES: usize = 10;

/// Entries of the model's own micro-TLB (in front of the TLB, shared by every stream).
pub(crate) const UTLB_ENTRIES: usize = 16;

/// The architectural registers (and the interface state that goes with them).
#[derive(Clone)]
pub(crate) struct Registers {
    /// Register generation: bumped by every register write. Every cache derived from the
    /// registers (micro-TLBs, decoded regimes) is tagged with it.
    pub gen: u64,
    pub scr0: u32,
    pub sacr: u32,
    pub gfar: u64,
    pub gfsr: u32,
    pub gfsynr0: u32,
    pub gfsynr1: u32,
    pub gfsynr2: u32,
    /// Remaining sTLBGSTATUS polls that read "active".
    pub gsync_pending: u32,
    /// Current level of the global interrupt output.
    pub global_level: bool,
    pub smr: Vec<u32>,
    pub s2cr: Vec<u32>,
    pub banks: Vec<Bank>,
}

/// What the model caches in front of the registers and the tables. None of it is visible
/// except through the TLB's architectural behaviour (stale entries until invalidated).
#[derive(Clone)]
pub(crate) struct Caches {
    /// Results of recent transactions, valid for one register generation.
    pub utlb: MicroTlb<UTLB_ENTRIES, SHARED>,
    /// The TLB proper.
    pub tlb: Tlb,
    /// Stream IDs already resolved against the SMRs.
    pub streams: StreamCache,
    /// Each bank's decoded translation regime with the register generation it was decoded at.
    pub regimes: Vec<(u64, Regime)>,
}

/// The whole mutable state.
#[derive(Clone)]
pub(crate) struct State {
    pub regs: Registers,
    pub caches: Caches,
    pub counters: Mmu500Counters,
}

impl State {
    pub fn new(cfg: &Mmu500Config) -> Self {
        let bank = Bank {
            sctlr: cfg.sctlr_reset,
            actlr: if cfg.mmu500 { cfg.actlr_reset } else { 0 },
            ..Bank::default()
        };
        State {
            regs: Registers {
                gen: 1,
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
            },
            caches: Caches {
                utlb: MicroTlb::default(),
                tlb: Tlb::new(cfg.tlb_entries, cfg.tlb_seed),
                streams: StreamCache::default(),
                regimes: Vec::new(),
            },
            counters: Mmu500Counters::default(),
        }
    }

    /// Decode a byte offset into the register window.
    pub fn locate(cfg: &Mmu500Config, offset: u64) -> Loc {
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
}

impl Registers {
    // ----- interrupt levels -----

    pub fn update_global_level(&mut self, cfg: &Mmu500Config, p: &mut Pending) {
        let level = self.gfsr != 0 && self.scr0 & scr0::GFIE != 0;
        if level && !self.global_level {
            p.raised.push(FaultIrq::Global(cfg.global_irq));
        }
        self.global_level = level;
    }

    pub fn context_line(&self, cfg: &Mmu500Config, n: usize) -> FaultIrq {
        match cfg.version {
            ArchVersion::V2 => FaultIrq::Context(n as u16),
            ArchVersion::V1 => FaultIrq::Context(regs::field(
                self.banks.get(n).map_or(0, |b| b.cbar),
                cbar::IRPTNDX_SHIFT,
                cbar::IRPTNDX_WIDTH,
            ) as u16),
        }
    }

    pub fn update_cb_level(&mut self, cfg: &Mmu500Config, n: usize, p: &mut Pending) {
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
    pub fn irq_level(&self, cfg: &Mmu500Config, line: FaultIrq) -> bool {
        match line {
            FaultIrq::Global(i) => i == cfg.global_irq && self.global_level,
            FaultIrq::Context(i) => (0..self.banks.len())
                .any(|n| self.banks[n].level && self.context_line(cfg, n) == FaultIrq::Context(i)),
        }
    }

    /// The VMID a bank's TLB entries are tagged with.
    pub fn vmid(&self, cfg: &Mmu500Config, n: usize) -> u16 {
        let Some(b) = self.banks.get(n) else {
            return 0;
        };
        if cfg.vmid16 && self.scr0 & scr0::VMID16EN != 0 {
            (b.cba2r >> cba2r::VMID16_SHIFT) as u16
        } else {
            regs::field(b.cbar, cbar::VMID_SHIFT, cbar::VMID_WIDTH) as u16
        }
    }
}

/// Implemented sCR0 bits for this configuration.
pub(crate) fn scr0_mask(cfg: &Mmu500Config) -> u32 {
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

/// Implemented S2CR bits (EXIDVALID and 31:30 read as zero).
pub(crate) fn s2cr_mask() -> u32 {
    0x3fff_ffff & !regs::s2cr::EXIDVALID
}
