//! Step 6, walk: on a TLB miss, walk stage 1 (each table address through stage 2 when nested)
//! and then stage 2, check the access flags, and build the TLB entry the result fills.

use super::context::Plan;
use super::fault::{walk_fault, CbFault};
use super::regime::{low_mask, S1Setup, S2Regime};
use crate::tlb::{Entry, Tag};
use crate::types::{ContextFaultKind, Mmu500Counters};
use crate::walk::{self, desc, WalkError, WalkLeaf};
use physmem::PhysMem;
use smmu_arch::regs::sctlr;
use smmu_arch::{LookupLevel, Stage};

/// A successful walk.
pub(crate) struct Walked {
    /// The entry for the TLB (permissions not yet checked against the access).
    pub entry: Entry,
    /// Output address of the byte translated.
    pub pa: u64,
    /// The stage-1 leaf descriptor (attributes for PAR); 0 without stage 1.
    pub desc: u64,
}

/// Stage-1 permissions of a leaf (readable, writable, unprivileged-accessible).
fn s1_perms(leaf: &WalkLeaf) -> (bool, bool, bool) {
    let ro =
        leaf.desc & desc::s1::AP_RDONLY != 0 || leaf.aptable & desc::table::APTABLE_RDONLY != 0;
    let unpriv =
        leaf.desc & desc::s1::AP_UNPRIV != 0 && leaf.aptable & desc::table::APTABLE_NO_UNPRIV == 0;
    (true, !ro, unpriv)
}

/// Stage-2 permissions of a leaf (S2AP: read, write).
fn s2_perms(leaf: &WalkLeaf) -> (bool, bool) {
    (
        leaf.desc & desc::s2::S2AP_READ != 0,
        leaf.desc & desc::s2::S2AP_WRITE != 0,
    )
}

/// Whether a leaf passes the access flag check (AF set, or SCTLR.AFFD).
fn af_ok(leaf: &WalkLeaf, sctlr_v: u32) -> bool {
    leaf.desc & desc::leaf::AF != 0 || sctlr_v & sctlr::AFFD != 0
}

/// Walk `va` through bank `n`'s stages (`s1` set up for `va`, `s2` from the plan), counting
/// the walk and its descriptor reads.
// Inlined into the bank step: returned through memory, the entry's byte-sized fields were
// written and read back in other widths (store-forwarding stalls: +10 ns on `walk_only`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn walk(
    mem: &PhysMem,
    counters: &mut Mmu500Counters,
    plan: &Plan,
    s1: Option<&S1Setup<'_>>,
    s2: Option<&S2Regime>,
    n: usize,
    va: u64,
    tag: Tag,
    epoch: u64,
) -> Result<Walked, CbFault> {
    counters.walks += 1;
    let mut reads = 0u64;
    let r = walk_stages(mem, plan, s1, s2, n, va, tag, epoch, &mut reads);
    counters.descriptor_reads += reads;
    r
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn walk_stages(
    mem: &PhysMem,
    plan: &Plan,
    s1: Option<&S1Setup<'_>>,
    s2: Option<&S2Regime>,
    n: usize,
    va: u64,
    tag: Tag,
    epoch: u64,
    reads: &mut u64,
) -> Result<Walked, CbFault> {
    let s1_leaf = match s1 {
        Some(s) => Some(walk_stage1(mem, s, s2, n, reads)?),
        None => None,
    };
    let mut entry = Entry {
        tag,
        va_base: 0,
        pa_base: 0,
        shift: 64,
        readable: true,
        writable: true,
        unpriv: true,
        s2_readable: true,
        s2_writable: true,
        level: 0,
        s2_level: 0,
        ipa_base: u64::MAX,
        epoch,
    };
    let mut ipa = va;
    let mut shift = 64u32;
    if let (Some(l), Some(s)) = (s1_leaf, s1) {
        if !af_ok(&l, plan.sctlr) {
            return Err(CbFault::new(
                n,
                n,
                ContextFaultKind::AccessFlag,
                Stage::S1,
                LookupLevel::new(l.level),
                s.format,
            ));
        }
        let (r, w, u) = s1_perms(&l);
        entry.readable = r;
        entry.writable = w;
        entry.unpriv = u;
        entry.level = l.level as u8;
        ipa = l.out_base | (va & low_mask(l.shift));
        shift = l.shift;
    }
    let mut pa = ipa;
    if let Some(s2) = s2 {
        let fault = |kind, level| CbFault::new(n, s2.bank, kind, Stage::S2, level, s2.format);
        match walk::walk(mem, &s2.steps, ipa, walk::single_stage, reads) {
            Ok(l) => {
                if !af_ok(&l, s2.sctlr) {
                    return Err(fault(
                        ContextFaultKind::AccessFlag,
                        LookupLevel::new(l.level),
                    ));
                }
                let (r, w) = s2_perms(&l);
                entry.s2_readable = r;
                entry.s2_writable = w;
                entry.s2_level = l.level as u8;
                pa = l.out_base | (ipa & low_mask(l.shift));
                if s1_leaf.is_none() {
                    entry.ipa_base = ipa & !low_mask(l.shift);
                }
                shift = shift.min(l.shift);
            }
            Err(e) => {
                let (kind, level) = walk_fault(e);
                return Err(fault(kind, level));
            }
        }
    }
    let shift = shift.min(63);
    entry.shift = shift;
    entry.va_base = va & !low_mask(shift);
    entry.pa_base = pa & !low_mask(shift);
    Ok(Walked {
        entry,
        pa,
        desc: s1_leaf.map_or(0, |l| l.desc),
    })
}

/// The stage-1 walk; nested, every table address goes through stage 2 first (those stage-2
/// walks' reads are not counted: they model the walk cache of the stage-2 tables).
#[inline(always)]
fn walk_stage1(
    mem: &PhysMem,
    s: &S1Setup<'_>,
    s2: Option<&S2Regime>,
    n: usize,
    reads: &mut u64,
) -> Result<WalkLeaf, CbFault> {
    let Some(s2) = s2 else {
        return walk::walk(mem, s.steps, s.input, walk::single_stage, reads).map_err(|e| {
            let (kind, level) = walk_fault(e);
            CbFault::new(n, n, kind, Stage::S1, level, s.format)
        });
    };
    let mut refused: Option<WalkError> = None;
    let table_xlate = |ipa: u64| -> Result<u64, u64> {
        let mut uncounted = 0u64;
        match walk::walk(mem, &s2.steps, ipa, walk::single_stage, &mut uncounted) {
            Ok(l) => {
                if l.desc & desc::leaf::AF == 0 || l.desc & desc::s2::S2AP_READ == 0 {
                    // Not readable (or no access flag) at stage 2.
                    refused = Some(WalkError::Translation { level: l.level });
                    return Err(ipa);
                }
                Ok(l.out_base | (ipa & low_mask(l.shift)))
            }
            Err(e) => {
                refused = Some(e);
                Err(ipa)
            }
        }
    };
    match walk::walk(mem, s.steps, s.input, table_xlate, reads) {
        Ok(l) => Ok(l),
        Err(WalkError::Stage2 { .. }) => {
            let (kind, level) = walk_fault(refused.unwrap_or(WalkError::Translation { level: 0 }));
            Err(CbFault {
                ptw: true,
                ..CbFault::new(n, s2.bank, kind, Stage::S2, level, s2.format)
            })
        }
        Err(e) => {
            let (kind, level) = walk_fault(e);
            Err(CbFault::new(n, n, kind, Stage::S1, level, s.format))
        }
    }
}
