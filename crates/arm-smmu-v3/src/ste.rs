//! Stream table and context descriptor programming, per kernel version.
//!
//! * v6.1 (`arm_smmu_write_strtab_ent`, `arm_smmu_write_ctx_desc`): for a translating STE,
//!   write dwords 1–3, CFGI_STE + SYNC, write dword 0, CFGI_STE + SYNC, then PREFETCH_CONFIG;
//!   for bypass/abort, write dwords 0–2 and CFGI_STE + SYNC. A new CD: dwords 1–3, sync, dword 0,
//!   sync (the syncs are CFGI_CD for every master of the domain, or a lone CMD_SYNC if none).
//! * v6.12 (`arm_smmu_write_entry`): compute which bits the current and target entries use;
//!   if only one qword's used bits change, a hitless update (write the unused bits, sync, the
//!   critical qword, sync, the rest, sync), otherwise a breaking one (V = 0 first); each step
//!   syncs only if it changed something. STEs are followed by PREFETCH_CONFIG.

use crate::hw::{at, Hw};
use crate::probe::feat;
use physmem::PhysAddr;
use smmuv3_arch::cmd::Command;
use smmuv3_arch::{cd, ste};

/// Qwords compared by the v6.12 entry writer (STE and CD are both 64 bytes).
pub const NUM_ENTRY_QWORDS: usize = 8;

pub type Entry = [u64; NUM_ENTRY_QWORDS];

/// v6.1 abort/bypass STE as `arm_smmu_init_bypass_stes` writes it (SHCFG incoming in dword 1).
pub fn v61_bypass_or_abort(abort: bool) -> Entry {
    let cfg = if abort {
        ste::CFG_ABORT
    } else {
        ste::CFG_BYPASS
    };
    let mut e = [0; 8];
    e[0] = ste::V | (cfg << ste::CFG_SHIFT);
    e[1] = ste::SHCFG_INCOMING << ste::SHCFG_SHIFT;
    e
}

/// v6.12 `arm_smmu_make_abort_ste`.
pub fn v612_abort() -> Entry {
    let mut e = [0; 8];
    e[0] = ste::V | (ste::CFG_ABORT << ste::CFG_SHIFT);
    e
}

/// v6.12 `arm_smmu_make_bypass_ste`.
pub fn v612_bypass() -> Entry {
    v61_bypass_or_abort(false)
}

/// The initial STE of a stream nobody attached (both versions, per `disable_bypass`).
pub(crate) fn initial(hw: &Hw) -> Entry {
    let abort = hw.params.disable_bypass;
    match hw.version {
        crate::fw::KernelVersion::V6_1 => v61_bypass_or_abort(abort),
        crate::fw::KernelVersion::V6_12 if abort => v612_abort(),
        crate::fw::KernelVersion::V6_12 => v612_bypass(),
    }
}

/// Dword 1 of a stage-1 STE: SSID0 for non-PASID traffic, WBRA walks, inner shareable, NS-EL1.
fn s1_dword1(hw: &Hw) -> u64 {
    let mut d = (ste::S1DSS_SSID0 << ste::S1DSS_SHIFT)
        | (ste::S1C_CACHE_WBRA << ste::S1CIR_SHIFT)
        | (ste::S1C_CACHE_WBRA << ste::S1COR_SHIFT)
        | (3 << ste::S1CSH_SHIFT)
        | (ste::STRW_NSEL1 << ste::STRW_SHIFT);
    if hw.has(feat::STALLS) {
        d |= ste::S1STALLD;
    }
    d
}

/// A stage-1 STE pointing at a linear CD table of one CD.
pub(crate) fn s1(hw: &Hw, cdtab: PhysAddr) -> Entry {
    let mut e = [0; 8];
    e[0] = ste::V
        | (ste::CFG_S1_TRANS << ste::CFG_SHIFT)
        | (cdtab.as_u64() & ste::S1CTXPTR_MASK)
        | (ste::S1FMT_LINEAR << ste::S1FMT_SHIFT);
    e[1] = s1_dword1(hw);
    e
}

/// A stage-2 STE.
pub fn s2(vmid: u16, vtcr: u64, vttbr: u64) -> Entry {
    let mut e = [0; 8];
    e[0] = ste::V | (ste::CFG_S2_TRANS << ste::CFG_SHIFT);
    e[2] = u64::from(vmid)
        | ((vtcr << ste::VTCR_SHIFT) & ste::VTCR_MASK)
        | ste::S2PTW
        | ste::S2AA64
        | ste::S2R;
    e[3] = vttbr & ste::S2TTB_MASK;
    e
}

/// The stage-1 CD both versions build for a DMA domain (`arm_smmu_write_ctx_desc` /
/// `arm_smmu_make_s1_cd`): TCR fields from the page table, EPD1, V, IPS, AA64, R, A, ASET, ASID;
/// TTB0 in dword 1; MAIR in dword 3.
pub fn s1_cd(tcr: &CdTcr, asid: u16, ttbr: u64, mair: u64) -> Entry {
    let mut e = [0; 8];
    e[0] = (tcr.tsz << cd::T0SZ_SHIFT)
        | (tcr.tg << cd::TG0_SHIFT)
        | (tcr.irgn << cd::IRGN0_SHIFT)
        | (tcr.orgn << cd::ORGN0_SHIFT)
        | (tcr.sh << cd::SH0_SHIFT)
        | cd::EPD1
        | cd::V
        | (tcr.ips << cd::IPS_SHIFT)
        | cd::AA64
        | cd::R
        | cd::A
        | cd::ASET
        | (u64::from(asid) << cd::ASID_SHIFT);
    e[1] = ttbr & cd::TTB0_MASK;
    e[3] = mair;
    e
}

/// The stage-1 TCR fields io-pgtable hands the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdTcr {
    pub tsz: u64,
    pub tg: u64,
    pub irgn: u64,
    pub orgn: u64,
    pub sh: u64,
    pub ips: u64,
}

/// v6.12 `arm_smmu_get_ste_used`.
pub fn ste_used(e: &Entry) -> Entry {
    let mut u = [0u64; 8];
    u[0] = ste::V;
    if e[0] & ste::V == 0 {
        return u;
    }
    u[0] |= ste::CFG_MASK;
    let cfg = ste::config(e[0]);
    if cfg & 1 != 0 {
        u[0] |= (3 << ste::S1FMT_SHIFT) | ste::S1CTXPTR_MASK | (0x1f << ste::S1CDMAX_SHIFT);
        u[1] |= (3 << ste::S1DSS_SHIFT)
            | (3 << ste::S1CIR_SHIFT)
            | (3 << ste::S1COR_SHIFT)
            | (3 << ste::S1CSH_SHIFT)
            | ste::S1STALLD
            | (3 << ste::STRW_SHIFT)
            | (3 << ste::EATS_SHIFT);
        u[2] |= ste::S2VMID_MASK;
        if (e[1] >> ste::S1DSS_SHIFT) & 3 == ste::S1DSS_BYPASS {
            u[1] |= 3 << ste::SHCFG_SHIFT;
        }
    }
    if cfg & 2 != 0 {
        u[1] |= (3 << ste::EATS_SHIFT) | (3 << ste::SHCFG_SHIFT);
        u[2] |= ste::S2VMID_MASK
            | ste::VTCR_MASK
            | ste::S2AA64
            | ste::S2ENDI
            | ste::S2PTW
            | ste::S2S
            | ste::S2R;
        u[3] |= ste::S2TTB_MASK;
    }
    if cfg == ste::CFG_BYPASS {
        u[1] |= 3 << ste::SHCFG_SHIFT;
    }
    u
}

/// v6.12 `arm_smmu_get_cd_used`.
pub fn cd_used(e: &Entry) -> Entry {
    let mut u = [0u64; 8];
    u[0] = cd::V;
    if e[0] & cd::V == 0 {
        return u;
    }
    u = [u64::MAX; 8];
    if e[0] & cd::EPD0 != 0 {
        u[0] &= !((0x3f << cd::T0SZ_SHIFT)
            | (3 << cd::TG0_SHIFT)
            | (3 << cd::IRGN0_SHIFT)
            | (3 << cd::ORGN0_SHIFT)
            | (3 << cd::SH0_SHIFT));
        u[1] &= !cd::TTB0_MASK;
    }
    u
}

/// v6.12 `arm_smmu_write_entry`: update the entry at `pa` from its current content to
/// `target`, calling `sync` after every step that changed memory.
pub(crate) fn write_entry(
    hw: &Hw,
    pa: PhysAddr,
    target: &Entry,
    used: fn(&Entry) -> Entry,
    sync: &dyn Fn(),
) {
    let mut cur: Entry = hw.read_words::<8>(pa);
    let cur_used = used(&cur);
    let target_used = used(target);
    let mut unused_update = [0u64; 8];
    let mut diff = 0u8;
    for i in 0..NUM_ENTRY_QWORDS {
        unused_update[i] = (cur[i] & cur_used[i]) | (target[i] & !cur_used[i]);
        if unused_update[i] & target_used[i] != target[i] {
            diff |= 1 << i;
        }
    }
    let set = |cur: &mut Entry, src: &Entry, start: usize, len: usize| {
        let mut changed = false;
        for i in start..start + len {
            if cur[i] != src[i] {
                cur[i] = src[i];
                hw.write_words(at(pa, 8 * i as u64), &[src[i]]);
                changed = true;
            }
        }
        if changed {
            sync();
        }
    };
    if diff.count_ones() == 1 {
        let critical = diff.trailing_zeros() as usize;
        set(&mut cur, &unused_update, 0, NUM_ENTRY_QWORDS);
        set(&mut cur, target, critical, 1);
        set(&mut cur, target, 0, NUM_ENTRY_QWORDS);
    } else if diff != 0 {
        unused_update[0] = 0;
        set(&mut cur, &unused_update, 0, 1);
        set(&mut cur, target, 1, NUM_ENTRY_QWORDS - 1);
        set(&mut cur, target, 0, 1);
    } else {
        set(&mut cur, target, 0, NUM_ENTRY_QWORDS);
    }
}

/// Install `target` as the STE of `sid` at `pa`, as `version` does.
pub(crate) fn write_ste(hw: &Hw, sid: u32, pa: PhysAddr, target: &Entry) {
    let cfgi = || {
        let _ = hw.issue_sync(Command::CfgiSte { sid, leaf: true });
    };
    match hw.version {
        crate::fw::KernelVersion::V6_1 => {
            let translating = matches!(
                ste::config(target[0]),
                ste::CFG_S1_TRANS | ste::CFG_S2_TRANS | ste::CFG_NESTED
            );
            if !translating {
                hw.write_words(pa, &target[..3]);
                cfgi();
                return;
            }
            hw.write_words(at(pa, 8), &target[1..4]);
            cfgi();
            hw.write_words(pa, &target[..1]);
            cfgi();
        }
        crate::fw::KernelVersion::V6_12 => write_entry(hw, pa, target, ste_used, &cfgi),
    }
    // "It's likely that we'll want to use the new STE soon." (v6.1 only after a translating
    // STE, which returns early above otherwise.)
    let _ = hw.issue(&[Command::PrefetchConfig { sid }], false);
}
