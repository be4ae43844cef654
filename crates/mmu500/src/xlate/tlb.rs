//! Step 5, TLB: look the address up under the context's tag (bank, VMID, ASID) for every leaf
//! size the context's granules allow; a hit is checked against the access like a walk's result.

use super::fault::{CbFault, Format};
use super::regime::{leaf_shifts, low_mask, S1Setup, S2Regime, ALL_SHIFTS};
use super::CbOk;
use crate::tlb::{Entry, Tag, Tlb};
use crate::types::{ContextFaultKind, Mmu500Counters};
use smmu_addr::PageSize;
use smmu_arch::Access;
use smmu_arch::{LookupLevel, Stage};

/// The leaf sizes to probe for a context with these stages.
#[inline]
pub(crate) fn shifts(s1: Option<&S1Setup<'_>>, s2: Option<&S2Regime>) -> &'static [u32] {
    match (s1, s2) {
        (Some(a), Some(b)) if a.steps.geo.granule_shift != b.steps.geo.granule_shift => ALL_SHIFTS,
        (Some(a), _) => leaf_shifts(a.steps.geo.granule_shift),
        (None, Some(b)) => leaf_shifts(b.steps.geo.granule_shift),
        (None, None) => ALL_SHIFTS,
    }
}

/// Which stage refuses `access` under entry `e`, with the level to report.
#[inline]
pub(crate) fn refusing_stage(e: &Entry, access: Access, privileged: bool) -> Option<(Stage, u8)> {
    let s1_ok = match access {
        Access::Read => e.readable,
        Access::Write => e.writable,
    } && (privileged || e.unpriv);
    if !s1_ok {
        return Some((Stage::S1, e.level));
    }
    let s2_ok = match access {
        Access::Read => e.s2_readable,
        Access::Write => e.s2_writable,
    };
    if !s2_ok {
        return Some((Stage::S2, e.s2_level));
    }
    None
}

/// The permission check of entry `e` (from the TLB or just walked) for a transaction through
/// bank `n`: the permission fault, recorded in the bank of the refusing stage.
#[inline]
pub(crate) fn check_permission(
    e: &Entry,
    access: Access,
    privileged: bool,
    n: usize,
    s1_format: Format,
    s2: Option<&S2Regime>,
) -> Result<(), CbFault> {
    let Some((stage, level)) = refusing_stage(e, access, privileged) else {
        return Ok(());
    };
    let (bank, format) = match (stage, s2) {
        (Stage::S2, Some(s2)) => (s2.bank, s2.format),
        _ => (n, s1_format),
    };
    Err(CbFault::new(
        n,
        bank,
        ContextFaultKind::Permission,
        stage,
        LookupLevel::new(u32::from(level)),
        format,
    ))
}

/// The leaf size of a TLB entry with leaf shift `shift`. The walker's leaf shifts come from a
/// granule and a level (12 to 39), so `from_shift` always accepts them; the 4 KiB fallback only
/// keeps this function total.
#[inline]
pub(crate) fn leaf_size(shift: u32) -> PageSize {
    PageSize::from_shift(shift).unwrap_or(PageSize::SZ_4K)
}

impl CbOk {
    /// The result of a transaction answered by entry `e` (which passed the access's check).
    #[inline]
    pub(crate) fn from_entry(e: &Entry, va: u64, privileged: bool, tlb_hit: bool) -> CbOk {
        CbOk {
            pa: e.pa_base | (va & low_mask(e.shift)),
            leaf_size: leaf_size(e.shift),
            tlb_hit,
            desc: 0,
            disabled: false,
            read_ok: refusing_stage(e, Access::Read, privileged).is_none(),
            write_ok: refusing_stage(e, Access::Write, privileged).is_none(),
            epoch: e.epoch,
        }
    }
}

/// Look `va` up; `None` on a miss (counted), else the hit's result or permission fault.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn lookup(
    tlb: &Tlb,
    counters: &mut Mmu500Counters,
    tag: Tag,
    va: u64,
    shifts: &[u32],
    access: Access,
    privileged: bool,
    s1_format: Format,
    s2: Option<&S2Regime>,
) -> Option<Result<CbOk, CbFault>> {
    let Some(e) = tlb.lookup(tag, va, shifts) else {
        counters.tlb_misses += 1;
        return None;
    };
    counters.tlb_hits += 1;
    Some(
        check_permission(&e, access, privileged, usize::from(tag.cb), s1_format, s2)
            .map(|()| CbOk::from_entry(&e, va, privileged, true)),
    )
}
