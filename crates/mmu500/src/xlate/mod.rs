//! The transaction path, as a pipeline of named steps, one per module:
//!
//! 1. [`stream`]: the stream ID against the SMRs (after sCR0.CLIENTPD);
//! 2. [`s2cr`]: the matched group's S2CR — translate through a bank, bypass or fault;
//! 3. [`context`]: the bank's (and its stage-2 bank's) decoded regime, cached per register
//!    generation — translation off, terminated, or a plan of stages;
//! 4. [`regime`]: the stage-1 region and walk setup for the address;
//! 5. [`tlb`]: the TLB lookup under the context's tag, and the permission check;
//! 6. [`walk`]: on a miss, the stage-1 (nested: through stage 2) and stage-2 walks, access
//!    flags, and the entry that fills the TLB;
//! 7. [`fault`]: a fault from any step, recorded as the architecture records it.
//!
//! In front of all of it sits the micro-TLB ([`crate::micro_tlb`]), which answers a repeat of a
//! recent successful transaction until the next register write. The ATS1PR/ATS1PW operation
//! runs steps 3–7 without the TLB and turns the result into a PAR value.

pub(crate) mod context;
pub(crate) mod fault;
pub(crate) mod regime;
pub(crate) mod s2cr;
pub(crate) mod stream;
pub(crate) mod tlb;
pub(crate) mod walk;

pub(crate) use context::Regime;
pub(crate) use regime::is_aarch64;
#[cfg(feature = "bench-internals")]
pub(crate) use regime::S1Regime;
pub(crate) use stream::StreamCache;

use crate::config::Mmu500Config;
use crate::micro_tlb::{MicroEntry, StreamKey};
use crate::state::{Pending, State};
use crate::tlb::Tag;
use crate::types::{BypassReason, DmaFault, GlobalFaultKind, TraceEvent, Translation};
use context::no_such_bank;
use fault::{CbError, CbFault, Format};
use physmem::PhysMem;
use s2cr::S2crAction;
use smmu_addr::{Iova, PageSize, PhysAddr};
use smmu_arch::desc;
use smmu_arch::regs::{mair, par, scr0};
use smmu_arch::{Access, Stage};
use stream::StreamMatch;

/// A bank's successful result.
pub(crate) struct CbOk {
    /// Output address of the byte translated.
    pub pa: u64,
    pub leaf_size: PageSize,
    pub tlb_hit: bool,
    /// Stage-1 leaf descriptor (attributes for PAR); 0 when not walked.
    pub desc: u64,
    /// SCTLR.M was clear (bypass).
    pub disabled: bool,
    /// Whether a read / a write with the same attributes would pass the permission checks.
    pub read_ok: bool,
    pub write_ok: bool,
    /// The bank context epoch of the tables (or TLB entry) that produced the result.
    pub epoch: u64,
}

impl State {
    /// Steps 3 to 6 for `va` through bank `n`; `use_tlb` is false for ATS operations.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn cb_translate(
        &mut self,
        cfg: &Mmu500Config,
        mem: &PhysMem,
        n: usize,
        va: u64,
        access: Access,
        privileged: bool,
        use_tlb: bool,
    ) -> Result<CbOk, CbError> {
        // The context epoch a walk now would carry (see `Bank::epoch`).
        let epoch = self.regs.banks.get(n).map_or(0, |b| b.epoch);
        // Step 3: the decoded regime (borrowed: the plan is a few hundred bytes).
        context::refresh(&mut self.caches.regimes, &self.regs, cfg, n);
        let plan = match self.caches.regimes.get(n).map(|(_, r)| r) {
            Some(Regime::Translate(p)) => p,
            Some(Regime::Flat) => {
                return Ok(CbOk {
                    pa: va,
                    leaf_size: PageSize::SZ_4K,
                    tlb_hit: false,
                    desc: 0,
                    disabled: true,
                    read_ok: true,
                    write_ok: true,
                    epoch,
                })
            }
            Some(Regime::Fails(e)) => return Err(*e),
            None => return Err(no_such_bank(n).into()),
        };
        // Step 4: stage-1 setup for this address (the ASID tags the TLB lookup).
        let s1 = match &plan.s1 {
            Some(r) => Some(r.resolve(va).map_err(|level| {
                CbFault::new(
                    n,
                    n,
                    crate::ContextFaultKind::Translation,
                    Stage::S1,
                    level,
                    r.format,
                )
            })?),
            None => None,
        };
        let s2 = plan.s2.as_ref().map_err(|f| *f)?.as_ref();
        let tag = Tag {
            cb: n as u16,
            vmid: plan.vmid,
            asid: s1.as_ref().map_or(0, |s| s.asid),
        };
        let s1_format = s1.as_ref().map_or(Format::AArch64, |s| s.format);
        // Step 5.
        if use_tlb {
            let shifts = tlb::shifts(s1.as_ref(), s2);
            if let Some(r) = tlb::lookup(
                &self.caches.tlb,
                &mut self.counters,
                tag,
                va,
                shifts,
                access,
                privileged,
                s1_format,
                s2,
            ) {
                return r.map_err(CbError::Fault);
            }
        }
        // Step 6.
        let w = walk::walk(
            mem,
            &mut self.counters,
            plan,
            s1.as_ref(),
            s2,
            n,
            va,
            tag,
            epoch,
        )?;
        if use_tlb {
            self.caches.tlb.insert(w.entry);
        }
        tlb::check_permission(&w.entry, access, privileged, n, s1_format, s2)?;
        Ok(CbOk {
            pa: w.pa,
            desc: w.desc,
            ..CbOk::from_entry(&w.entry, va, privileged, false)
        })
    }

    /// One transaction from stream `sid`.
    pub(crate) fn translate(
        &mut self,
        cfg: &Mmu500Config,
        mem: &PhysMem,
        sid: u32,
        iova: u64,
        access: Access,
        p: &mut Pending,
    ) -> Result<Translation, DmaFault> {
        self.counters.transactions += 1;
        // The micro-TLB: a recent transaction of this stream on this page, valid while no
        // register has been written since.
        if let Some(u) = self
            .caches
            .utlb
            .lookup(StreamKey::new(sid), iova, access, self.regs.gen)
        {
            let t = u.translation(iova);
            self.counters.tlb_hits += 1;
            self.counters.translated += 1;
            p.fill = Some(*u);
            let (pa, cb) = (t.pa(), u.cb);
            p.event(|| TraceEvent::Translated {
                sid,
                iova: Iova::new(iova),
                access,
                pa,
                cb,
                tlb_hit: true,
            });
            return Ok(t);
        }
        let r = self.translate_uncached(cfg, mem, sid, iova, access, p);
        match r {
            Ok(t) => p.event(|| match t {
                Translation::Translated {
                    pa, cb, tlb_hit, ..
                } => TraceEvent::Translated {
                    sid,
                    iova: Iova::new(iova),
                    access,
                    pa,
                    cb,
                    tlb_hit,
                },
                Translation::Bypass { reason, .. } => TraceEvent::Bypassed {
                    sid,
                    iova: Iova::new(iova),
                    access,
                    reason,
                },
            }),
            Err(fault) => p.event(|| TraceEvent::Faulted {
                sid,
                iova: Iova::new(iova),
                access,
                fault,
            }),
        }
        r
    }

    /// Record a global fault of this transaction (sGFSR and its syndromes, the interrupt) and
    /// the report the client gets.
    fn global_fault(
        &mut self,
        cfg: &Mmu500Config,
        kind: GlobalFaultKind,
        sid: u32,
        iova: u64,
        access: Access,
        p: &mut Pending,
    ) -> DmaFault {
        fault::global(
            &mut self.regs,
            &mut self.counters,
            cfg,
            kind,
            sid,
            iova,
            access,
            p,
        )
    }

    /// Steps 1 to 7 of a transaction the micro-TLB did not answer.
    fn translate_uncached(
        &mut self,
        cfg: &Mmu500Config,
        mem: &PhysMem,
        sid: u32,
        iova: u64,
        access: Access,
        p: &mut Pending,
    ) -> Result<Translation, DmaFault> {
        if self.regs.scr0 & scr0::CLIENTPD != 0 {
            return Ok(self.bypass(iova, BypassReason::ClientPd));
        }
        // Step 1.
        let group = match self.caches.streams.resolve(&self.regs, cfg, sid) {
            StreamMatch::Group(g) => g,
            // MMU-500 with SMCFCFG clear uses the lowest matching entry.
            StreamMatch::Conflict(g) if cfg.mmu500 && self.regs.scr0 & scr0::SMCFCFG == 0 => g,
            StreamMatch::Conflict(_) => {
                let kind = GlobalFaultKind::StreamMatchConflict;
                return Err(self.global_fault(cfg, kind, sid, iova, access, p));
            }
            StreamMatch::Unmatched if self.regs.scr0 & scr0::USFCFG != 0 => {
                let kind = GlobalFaultKind::UnidentifiedStream;
                return Err(self.global_fault(cfg, kind, sid, iova, access, p));
            }
            StreamMatch::Unmatched => return Ok(self.bypass(iova, BypassReason::UnmatchedBypass)),
        };
        // Step 2.
        let (n, privileged) = match self.regs.s2cr_action(group) {
            S2crAction::Translate { cb, privileged } => (cb, privileged),
            S2crAction::Bypass => return Ok(self.bypass(iova, BypassReason::S2crBypass)),
            // "Any transaction that maps to this Stream mapping group incurs an invalid context
            // fault" (SMMUv2 spec, S2CR fault context): recorded in sGFSR, the global
            // interrupt raised if sCR0.GFIE, the client aborted if sCR0.GFRE.
            S2crAction::Fault => {
                let kind = GlobalFaultKind::InvalidContext { nested: false };
                return Err(self.global_fault(cfg, kind, sid, iova, access, p));
            }
        };
        if n >= self.regs.banks.len() {
            let kind = GlobalFaultKind::UnimplementedContextBank;
            return Err(self.global_fault(cfg, kind, sid, iova, access, p));
        }
        // Steps 3 to 6, and 7 for a context fault.
        match self.cb_translate(cfg, mem, n, iova, access, privileged, true) {
            Ok(ok) if ok.disabled => Ok(self.bypass(iova, BypassReason::CbDisabled)),
            Ok(ok) => {
                self.counters.translated += 1;
                let fill = MicroEntry {
                    gen: self.regs.gen,
                    sid,
                    vpn: iova >> 12,
                    pa_page: ok.pa & !0xfff,
                    cb: n as u16,
                    leaf_size: ok.leaf_size,
                    read: ok.read_ok,
                    write: ok.write_ok,
                    epoch: ok.epoch,
                };
                self.caches.utlb.fill(fill);
                p.fill = Some(fill);
                Ok(Translation::Translated {
                    pa: PhysAddr::new(ok.pa),
                    cb: n as u16,
                    leaf_size: ok.leaf_size,
                    tlb_hit: ok.tlb_hit,
                    epoch: ok.epoch,
                })
            }
            Err(CbError::InvalidContext) => Err(self.global_fault(
                cfg,
                GlobalFaultKind::InvalidContext { nested: true },
                sid,
                iova,
                access,
                p,
            )),
            Err(CbError::Fault(f)) => Err(fault::context(
                &mut self.regs,
                &mut self.counters,
                cfg,
                f,
                sid,
                iova,
                access,
                privileged,
                p,
            )),
        }
    }

    /// Bank `n`'s stage-1 regime as now programmed, when it is a stage-1-only context (see
    /// `crate::DetachedWalk`, feature `bench-internals`).
    #[cfg(feature = "bench-internals")]
    pub(crate) fn stage1_regime(&mut self, cfg: &Mmu500Config, n: usize) -> Option<S1Regime> {
        context::refresh(&mut self.caches.regimes, &self.regs, cfg, n);
        match self.caches.regimes.get(n)? {
            (_, Regime::Translate(p)) if matches!(p.s2, Ok(None)) => p.s1,
            _ => None,
        }
    }

    /// A transaction passed through untranslated, counted by reason.
    fn bypass(&mut self, iova: u64, reason: BypassReason) -> Translation {
        let c = &mut self.counters;
        match reason {
            BypassReason::ClientPd => c.bypass_clientpd += 1,
            BypassReason::S2crBypass => c.bypass_s2cr += 1,
            BypassReason::UnmatchedBypass => c.bypass_unmatched += 1,
            BypassReason::CbDisabled => c.bypass_cb_disabled += 1,
        }
        Translation::Bypass {
            pa: PhysAddr::new(iova),
            reason,
        }
    }
}

/// ATS1PR / ATS1PW: a privileged translation through bank `n` into a PAR value. Walks afresh
/// (no TLB lookup or fill) and records nothing in FSR.
pub(crate) fn ats(
    state: &mut State,
    cfg: &Mmu500Config,
    mem: &PhysMem,
    n: usize,
    va: u64,
    access: Access,
) -> u64 {
    match state.cb_translate(cfg, mem, n, va, access, true, false) {
        Ok(ok) => {
            // Without a stage-1 leaf there are no attributes to report: the address alone.
            if ok.desc == 0 {
                return par::success(ok.pa, 0, 0);
            }
            let attr_idx = desc::field(ok.desc, desc::s1::ATTRINDX_SHIFT, desc::s1::ATTRINDX_WIDTH);
            let m = state
                .regs
                .banks
                .get(n)
                .map_or(0, |b| mair::value(b.mair0, b.mair1));
            let sh = desc::field(ok.desc, desc::leaf::SH_SHIFT, desc::leaf::SH_WIDTH);
            par::success(ok.pa, sh, mair::attr(m, attr_idx))
        }
        Err(e) => fault::par_fault(e),
    }
}

#[cfg(feature = "bench-internals")]
impl S1Regime {
    /// The output address of `va` by a walk alone (no TLB, no permission or access-flag
    /// check), or `None` when the walk faults.
    #[inline]
    pub(crate) fn walk_only(&self, mem: &PhysMem, va: u64) -> Option<u64> {
        let s = self.resolve(va).ok()?;
        let mut reads = 0;
        let l =
            crate::walk::walk(mem, s.steps, s.input, crate::walk::single_stage, &mut reads).ok()?;
        Some(l.out_base | (va & regime::low_mask(l.shift)))
    }
}
