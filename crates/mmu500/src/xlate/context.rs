//! Step 3, context bank: what the stream's bank (and, nested, its stage-2 bank) says a
//! transaction goes through — translation off, a configuration that terminates every
//! transaction, or a [`Plan`] of decoded stages. Cached per bank for one register generation.

use super::fault::{CbError, CbFault, Format};
use super::regime::{is_aarch64, S1Regime, S2Regime, View};
use crate::config::Mmu500Config;
use crate::state::Registers;
use crate::types::ContextFaultKind;
use smmu_arch::regs::{self, cbar, sctlr};
use smmu_arch::{LookupLevel, Stage};

/// A context bank's translation regime decoded from its registers (and its stage-2 bank's):
/// everything a transaction needs that does not depend on the address.
// Stored inline per bank so a lookup is one copy with no indirection; boxing would add a load.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Regime {
    /// Translation disabled: output = input.
    Flat,
    /// Every transaction through the bank ends in this error.
    Fails(CbError),
    /// Translate with this plan.
    Translate(Plan),
}

/// The decoded stages of a translating bank.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// The bank's SCTLR (AFFD for the stage-1 access flag check).
    pub sctlr: u32,
    /// Stage 1, when it translates.
    pub s1: Option<S1Regime>,
    /// Stage 2 when it translates, or the fault it gives (reported after any stage-1 setup
    /// fault).
    pub s2: Result<Option<S2Regime>, CbFault>,
    /// The VMID the bank's TLB entries are tagged with.
    pub vmid: u16,
}

/// The fault a transaction through a bank that does not exist takes.
pub(crate) fn no_such_bank(n: usize) -> CbFault {
    CbFault::new(
        n,
        n,
        ContextFaultKind::Translation,
        Stage::S1,
        LookupLevel::L0,
        Format::AArch64,
    )
}

/// Decode bank `n`'s regime from its registers.
fn decode(regs: &Registers, cfg: &Mmu500Config, n: usize) -> Regime {
    let Some(b) = regs.banks.get(n) else {
        return Regime::Fails(no_such_bank(n).into());
    };
    let v = View::of(b);
    let ty = regs::field(b.cbar, cbar::TYPE_SHIFT, cbar::TYPE_WIDTH);
    let enabled = v.sctlr & sctlr::M != 0;
    // Resolve what each stage is: (stage-1 bank view, stage-2 bank index and view).
    let (s1, s2): (Option<View>, Option<(usize, View)>) = match ty {
        cbar::TYPE_S2_TRANS => {
            if !enabled {
                return Regime::Flat;
            }
            (None, Some((n, v)))
        }
        cbar::TYPE_S1_TRANS_S2_BYPASS => {
            if !enabled {
                return Regime::Flat;
            }
            (Some(v), None)
        }
        // Stage 1 followed by a faulting stage 2: an invalid context fault (spec §3.8.4).
        cbar::TYPE_S1_TRANS_S2_FAULT => return Regime::Fails(CbError::InvalidContext),
        _ => {
            let s2n = regs::field(b.cbar, 8, 8) as usize;
            let Some(s2b) = regs.banks.get(s2n) else {
                return Regime::Fails(no_such_bank(n).into());
            };
            let s2v = View::of(s2b);
            let s1 = enabled.then_some(v);
            let s2 = (s2v.sctlr & sctlr::M != 0).then_some((s2n, s2v));
            if s1.is_none() && s2.is_none() {
                return Regime::Flat;
            }
            (s1, s2)
        }
    };
    let vmid = match s2 {
        Some((s2n, _)) => regs.vmid(cfg, s2n),
        None => regs.vmid(cfg, n),
    };
    let s1_out_bits = if s2.is_some() { cfg.ias } else { cfg.oas };
    let s2 = match s2 {
        Some((s2n, ref s2v)) => S2Regime::decode(cfg, s2n, s2v).map(Some).map_err(|level| {
            let format = Format::of(is_aarch64(cfg, s2v.cba2r, s2v.tcr));
            CbFault::new(
                n,
                s2n,
                ContextFaultKind::Translation,
                Stage::S2,
                level,
                format,
            )
        }),
        None => Ok(None),
    };
    Regime::Translate(Plan {
        sctlr: v.sctlr,
        s1: s1.map(|s1v| S1Regime::decode(cfg, &s1v, s1_out_bits)),
        s2,
        vmid,
    })
}

/// Decode bank `n`'s regime again if a register was written since it was cached in `regimes`
/// (then `regimes[n]` holds it, for a bank that exists).
#[inline(always)]
pub(crate) fn refresh(
    regimes: &mut Vec<(u64, Regime)>,
    regs: &Registers,
    cfg: &Mmu500Config,
    n: usize,
) {
    if !matches!(regimes.get(n), Some(&(g, _)) if g == regs.gen) {
        redecode(regimes, regs, cfg, n);
    }
}

/// The slow half of [`refresh`]: after a register write only.
#[cold]
#[inline(never)]
fn redecode(regimes: &mut Vec<(u64, Regime)>, regs: &Registers, cfg: &Mmu500Config, n: usize) {
    let r = decode(regs, cfg, n);
    if regimes.len() < regs.banks.len() {
        regimes.resize(regs.banks.len(), (0, Regime::Flat));
    }
    if let Some(slot) = regimes.get_mut(n) {
        *slot = (regs.gen, r);
    }
}
