//! The transaction path: CLIENTPD, stream matching, S2CR, context bank, TLB, walk, permission
//! checks and fault recording; and the ATS1PR/ATS1PW address translation operation.

use crate::config::{Config, Version};
use crate::state::{Bank, Pending, State, StreamMatch};
use crate::tlb::{Entry, Tag, Tlb};
use crate::types::Counters;
use crate::types::{
    BypassReason, ContextFaultKind, DmaFault, Event, GlobalFaultKind, TerminateReason, Translation,
};
use crate::walk::{self, desc, Geometry, Leaf, Steps, WalkError};
use physmem::PhysMem;
use smmu_arch::regs::{self, cba2r, cbar, fsynr0, gfsynr0, s2cr, scr0, sctlr, tcr, tcr2, vtcr};
use smmu_arch::Access;

/// The registers a translation reads from a bank, copied out so the TLB can be updated after.
#[derive(Debug, Clone, Copy)]
struct View {
    sctlr: u32,
    cbar: u32,
    cba2r: u32,
    tcr: u32,
    tcr2: u32,
    ttbr0: u64,
    ttbr1: u64,
}

impl View {
    fn of(b: &Bank) -> Self {
        View {
            sctlr: b.sctlr,
            cbar: b.cbar,
            cba2r: b.cba2r,
            tcr: b.tcr,
            tcr2: b.tcr2,
            ttbr0: b.ttbr0,
            ttbr1: b.ttbr1,
        }
    }
}

/// Whether a bank with these CBA2R and TCR values uses the AArch64 formats (v2: CBA2R.VA64;
/// v1 has no CBA2R: TCR.EAE clear).
pub(crate) fn is_aarch64(cfg: &Config, cba2r: u32, tcr: u32) -> bool {
    match cfg.version {
        Version::V2 => cba2r & cba2r::VA64 != 0,
        Version::V1 => tcr & tcr::EAE == 0,
    }
}

fn view_aarch64(cfg: &Config, v: &View) -> bool {
    is_aarch64(cfg, v.cba2r, v.tcr)
}

#[inline]
fn low_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn granule_supported(cfg: &Config, shift: u32) -> bool {
    match shift {
        12 => cfg.granule_4k || cfg.version == Version::V1,
        14 => cfg.granule_16k,
        16 => cfg.granule_64k,
        _ => false,
    }
}

/// Leaf sizes a context with this granule can cache.
fn leaf_shifts(granule_shift: u32) -> &'static [u32] {
    match granule_shift {
        12 => &[12, 21, 30],
        14 => &[14, 25],
        _ => &[16, 29],
    }
}

const ALL_SHIFTS: &[u32] = &[12, 14, 16, 21, 25, 29, 30];

/// A fault found while translating through a bank, before it is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CbFault {
    /// Bank to record in.
    pub bank: usize,
    pub kind: ContextFaultKind,
    pub level: u32,
    pub stage: u8,
    /// The fault happened fetching a stage-1 table through stage 2 (FSYNR0.PTWF).
    pub ptw: bool,
    /// FSR.FORMAT of the recording bank.
    pub format: u32,
    /// For a nested stage-2 fault, the stage-1 bank (FSYNR0.S1CBNDX).
    pub s1_bank: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum CbError {
    Fault(CbFault),
    Terminate(TerminateReason),
}

/// A bank's successful result.
pub(crate) struct CbOk {
    /// Output address of the byte translated.
    pub pa: u64,
    pub shift: u32,
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

impl CbOk {
    /// The result of a transaction answered by TLB entry `e` (which passed the access's check).
    #[inline]
    fn tlb_hit(e: &Entry, va: u64, privileged: bool) -> CbOk {
        CbOk {
            pa: e.pa_base | (va & low_mask(e.shift)),
            shift: e.shift,
            tlb_hit: true,
            desc: 0,
            disabled: false,
            read_ok: perm_fault(e, Access::Read, privileged).is_none(),
            write_ok: perm_fault(e, Access::Write, privileged).is_none(),
            epoch: e.epoch,
        }
    }
}

struct S1Setup<'a> {
    steps: &'a Steps,
    input: u64,
    asid: u16,
    format: u32,
}

/// The context fault a failed walk reports, and the level it names.
fn walk_err(e: WalkError) -> (ContextFaultKind, u32) {
    match e {
        WalkError::Translation { level } => (ContextFaultKind::Translation, level),
        WalkError::AddressSize { level } => (ContextFaultKind::AddressSize, level),
        WalkError::External { level, .. } => (ContextFaultKind::External, level),
        WalkError::Stage2 { level, .. } => (ContextFaultKind::Translation, level),
    }
}

/// The address-independent part of an AArch64 stage-1 regime (both TTBR regions), decoded once
/// per register generation: a transaction only picks its region and masks its address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct S1Fast {
    /// Sign-extension bit from TCR2.SEP (v2), or none.
    sep_bit: Option<u32>,
    in0: u32,
    in1: u32,
    /// Walk geometry of each region; `None` when the region faults (EPDx or bad granule).
    r0: Option<Steps>,
    r1: Option<Steps>,
    asid: u16,
}

impl S1Fast {
    /// Decode an AArch64 stage-1 bank's registers.
    fn decode(cfg: &Config, v: &View, out_bits: u32) -> Self {
        let sep_bit = if cfg.version == Version::V2 {
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
        let pa_bits = if cfg.version == Version::V2 {
            regs::size_code_to_bits(regs::field(v.tcr2, tcr2::PASIZE_SHIFT, tcr2::PASIZE_WIDTH))
        } else {
            cfg.oas
        };
        let region = |ttbr: u64, tg: u32, epd: bool, in_bits: u32| -> Option<Steps> {
            if epd || !granule_supported(cfg, tg) {
                return None;
            }
            let mut geo = Geometry {
                granule_shift: tg,
                input_bits: in_bits,
                start_level: Geometry::stage1_start_level(tg, in_bits),
                table_base: 0,
                oas: pa_bits.min(out_bits),
            };
            let align = (geo.start_index_bits() + 3).max(3);
            geo.table_base = ttbr & 0x0000_ffff_ffff_fffe & !low_mask(align);
            Some(Steps::new(geo))
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
        let asid_ttbr = if v.tcr & tcr::A1 != 0 {
            v.ttbr1
        } else {
            v.ttbr0
        };
        let asid16 = cfg.version == Version::V2 && v.tcr2 & tcr2::AS != 0;
        let asid = (asid_ttbr >> 48) as u16;
        S1Fast {
            sep_bit,
            in0,
            in1,
            r0: region(v.ttbr0, tg0, v.tcr & tcr::EPD0 != 0, in0),
            r1: region(v.ttbr1, tg1, v.tcr & tcr::EPD1 != 0, in1),
            asid: if asid16 { asid } else { asid & 0xff },
        }
    }

    /// The walk setup for `va`: sign extension, region selection, address masking.
    #[inline]
    fn resolve(&self, va: u64) -> Result<S1Setup<'_>, u32> {
        let va = match self.sep_bit {
            Some(b) => {
                let sh = 63 - b;
                (((va << sh) as i64) >> sh) as u64
            }
            None => va,
        };
        let steps = if va >> self.in0 == 0 {
            self.r0.as_ref()
        } else if (!va) >> self.in1 == 0 {
            self.r1.as_ref()
        } else {
            None
        };
        let steps = steps.ok_or(0u32)?;
        Ok(S1Setup {
            input: va & low_mask(steps.geo.input_bits),
            steps,
            asid: self.asid,
            format: 2,
        })
    }
}

/// A stage-1 setup decoded for one transaction (formats without a cached [`S1Fast`]).
struct OwnedS1 {
    steps: Steps,
    input: u64,
    asid: u16,
    format: u32,
}

/// Decode a stage-1 bank for `va`: region (TTBR0/TTBR1), granule, start level, ASID.
fn s1_setup(cfg: &Config, v: &View, va: u64, out_bits: u32) -> Result<OwnedS1, u32> {
    if view_aarch64(cfg, v) {
        let f = S1Fast::decode(cfg, v, out_bits);
        let r = f.resolve(va)?;
        Ok(OwnedS1 {
            steps: *r.steps,
            input: r.input,
            asid: r.asid,
            format: r.format,
        })
    } else if v.tcr & tcr::EAE != 0 && (cfg.aarch32_l || cfg.version == Version::V1) {
        // AArch32 long-descriptor: 32-bit VA, 4K granule, 8-bit ASID, 40-bit output.
        if va >> 32 != 0 {
            return Err(1);
        }
        let t0sz = v.tcr & 7;
        let t1sz = (v.tcr >> 16) & 7;
        let in0 = 32 - t0sz;
        let in1 = 32 - t1sz;
        let (ttbr, epd, in_bits) = if va >> in0 == 0 {
            (v.ttbr0, v.tcr & tcr::EPD0 != 0, in0)
        } else if t1sz == 0 || (va >> in1) == low_mask(32 - in1) {
            (v.ttbr1, v.tcr & tcr::EPD1 != 0, in1)
        } else {
            return Err(1);
        };
        if epd {
            return Err(1);
        }
        let asid_ttbr = if v.tcr & tcr::A1 != 0 {
            v.ttbr1
        } else {
            v.ttbr0
        };
        let start = Geometry::stage1_start_level(12, in_bits);
        let mut geo = Geometry {
            granule_shift: 12,
            input_bits: in_bits,
            start_level: start,
            table_base: 0,
            oas: 40u32.min(out_bits),
        };
        let align = (geo.start_index_bits() + 3).max(3);
        geo.table_base = ttbr & 0x0000_00ff_ffff_ffff & !low_mask(align);
        Ok(OwnedS1 {
            steps: Steps::new(geo),
            input: va & low_mask(in_bits),
            asid: ((asid_ttbr >> 48) & 0xff) as u16,
            format: 1,
        })
    } else {
        // AArch32 short-descriptor walks are not modelled.
        Err(1)
    }
}

/// Decode a stage-2 bank (VTCR in the TCR slot, VTTBR in TTBR0).
fn s2_setup(cfg: &Config, v: &View) -> Result<(Geometry, u32), u32> {
    let aarch64 = view_aarch64(cfg, v);
    let (in_bits, tg, pa_bits, format) = if aarch64 {
        let t0sz = regs::field(v.tcr, vtcr::T0SZ_SHIFT, vtcr::T0SZ_WIDTH).max(16);
        let tg = match regs::field(v.tcr, vtcr::TG0_SHIFT, 2) {
            0 => 12,
            1 => 16,
            2 => 14,
            _ => 0,
        };
        let ps = regs::size_code_to_bits(regs::field(v.tcr, vtcr::PS_SHIFT, vtcr::PS_WIDTH));
        (64 - t0sz, tg, ps, 2)
    } else {
        // AArch32 VTCR: signed 4-bit T0SZ, 4K granule, 40-bit output.
        let t0sz = ((((v.tcr & 0xf) as i32) << 28) >> 28) as i64;
        ((32 - t0sz).clamp(25, 40) as u32, 12, 40, 1)
    };
    if !granule_supported(cfg, tg) {
        return Err(0);
    }
    let sl0 = regs::field(v.tcr, vtcr::SL0_SHIFT, vtcr::SL0_WIDTH);
    let start = match (tg, sl0) {
        (12, 0) => 2,
        (12, 1) => 1,
        (12, 2) => 0,
        (_, 0) => 3,
        (_, 1) => 2,
        (_, 2) => 1,
        _ => return Err(0),
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
        return Err(start);
    }
    let align = (geo.start_index_bits() + 3).max(3);
    geo.table_base = v.ttbr0 & 0x0000_ffff_ffff_fffe & !low_mask(align);
    Ok((geo, format))
}

/// Stage-1 permissions of a leaf (readable, writable, unprivileged-accessible).
fn s1_perms(leaf: &Leaf) -> (bool, bool, bool) {
    let ro =
        leaf.desc & desc::s1::AP_RDONLY != 0 || leaf.aptable & desc::table::APTABLE_RDONLY != 0;
    let unpriv =
        leaf.desc & desc::s1::AP_UNPRIV != 0 && leaf.aptable & desc::table::APTABLE_NO_UNPRIV == 0;
    (true, !ro, unpriv)
}

/// Stage-2 permissions of a leaf (S2AP: read, write).
fn s2_perms(leaf: &Leaf) -> (bool, bool) {
    (
        leaf.desc & desc::s2::S2AP_READ != 0,
        leaf.desc & desc::s2::S2AP_WRITE != 0,
    )
}

fn af_ok(leaf: &Leaf, sctlr_v: u32) -> bool {
    leaf.desc & desc::leaf::AF != 0 || sctlr_v & sctlr::AFFD != 0
}

/// Which stage (1 or 2) refuses `access` under entry `e`, with the level to report.
fn perm_fault(e: &Entry, access: Access, privileged: bool) -> Option<(u8, u32)> {
    let s1_ok = match access {
        Access::Read => e.readable,
        Access::Write => e.writable,
    } && (privileged || e.unpriv);
    if !s1_ok {
        return Some((1, u32::from(e.level)));
    }
    let s2_ok = match access {
        Access::Read => e.s2_readable,
        Access::Write => e.s2_writable,
    };
    if !s2_ok {
        return Some((2, u32::from(e.s2_level)));
    }
    None
}

/// A context bank's translation regime decoded from its registers (and its stage-2 bank's):
/// everything a transaction needs that does not depend on the address. Cached per bank for
/// one register generation.
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
    sctlr: u32,
    /// Stage-1 registers when stage 1 translates.
    s1: Option<View>,
    /// Stage 1 pre-decoded when it uses the AArch64 format.
    s1_fast: Option<S1Fast>,
    s1_out_bits: u32,
    /// Stage-2 bank and its registers when stage 2 translates.
    s2: Option<(usize, View)>,
    /// Stage-2 walk setup, or the fault it gives (reported after any stage-1 setup fault).
    s2_cfg: Result<Option<(Steps, u32)>, CbFault>,
    vmid: u16,
}

impl State {
    /// Decode bank `n`'s regime from its registers.
    fn decode_regime(&self, cfg: &Config, n: usize) -> Regime {
        let fault = |bank: usize, kind, level: u32, stage: u8, format: u32| CbFault {
            bank,
            kind,
            level,
            stage,
            ptw: false,
            format,
            s1_bank: n,
        };
        let Some(b) = self.banks.get(n) else {
            return Regime::Fails(CbError::Fault(fault(
                n,
                ContextFaultKind::Translation,
                0,
                1,
                2,
            )));
        };
        let v = View::of(b);
        let ty = regs::field(v.cbar, cbar::TYPE_SHIFT, cbar::TYPE_WIDTH);
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
            cbar::TYPE_S1_TRANS_S2_FAULT => {
                return Regime::Fails(CbError::Terminate(TerminateReason::Stage2Fault))
            }
            _ => {
                let s2n = regs::field(v.cbar, 8, 8) as usize;
                let Some(s2b) = self.banks.get(s2n) else {
                    return Regime::Fails(CbError::Fault(fault(
                        n,
                        ContextFaultKind::Translation,
                        0,
                        1,
                        2,
                    )));
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
            Some((s2n, _)) => self.vmid(cfg, s2n),
            None => self.vmid(cfg, n),
        };
        let s1_out_bits = if s2.is_some() { cfg.ias } else { cfg.oas };
        let s1_fast = s1
            .filter(|s1v| view_aarch64(cfg, s1v))
            .map(|s1v| S1Fast::decode(cfg, &s1v, s1_out_bits));
        let s2_cfg = match s2 {
            Some((s2n, ref s2v)) => match s2_setup(cfg, s2v) {
                Ok((geo, format)) => Ok(Some((Steps::new(geo), format))),
                Err(level) => {
                    let format = if view_aarch64(cfg, s2v) { 2 } else { 1 };
                    Err(fault(s2n, ContextFaultKind::Translation, level, 2, format))
                }
            },
            None => Ok(None),
        };
        Regime::Translate(Plan {
            sctlr: v.sctlr,
            s1,
            s1_fast,
            s1_out_bits,
            s2,
            s2_cfg,
            vmid,
        })
    }

    /// Decode bank `n`'s regime again if a register was written since it was cached.
    #[inline(always)]
    fn refresh_regime(&mut self, cfg: &Config, n: usize) {
        if !matches!(self.decoded.get(n), Some(&(g, _)) if g == self.gen) {
            self.redecode_regime(cfg, n);
        }
    }

    /// The slow half of [`State::refresh_regime`]: after a register write only.
    #[cold]
    #[inline(never)]
    fn redecode_regime(&mut self, cfg: &Config, n: usize) {
        let r = self.decode_regime(cfg, n);
        if self.decoded.len() < self.banks.len() {
            self.decoded.resize(self.banks.len(), (0, Regime::Flat));
        }
        if let Some(slot) = self.decoded.get_mut(n) {
            *slot = (self.gen, r);
        }
    }

    /// Bank `n`'s stage-1 walk setup as now programmed, when it is a stage-1-only AArch64
    /// context (see `crate::DetachedWalk`, feature `bench-internals`).
    #[cfg(feature = "bench-internals")]
    pub(crate) fn stage1_walker(&mut self, cfg: &Config, n: usize) -> Option<S1Fast> {
        self.refresh_regime(cfg, n);
        match self.decoded.get(n) {
            Some((_, Regime::Translate(p))) if p.s2.is_none() => p.s1_fast,
            _ => None,
        }
    }

    /// Translate `va` through bank `n`. `use_tlb` is false for ATS operations.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn cb_translate(
        &mut self,
        cfg: &Config,
        mem: &PhysMem,
        n: usize,
        va: u64,
        access: Access,
        privileged: bool,
        use_tlb: bool,
    ) -> Result<CbOk, CbError> {
        // The context epoch a walk now would carry (see `Bank::epoch`).
        let epoch = self.banks.get(n).map_or(0, |b| b.epoch);
        let flat = CbOk {
            pa: va,
            shift: 12,
            tlb_hit: false,
            desc: 0,
            disabled: true,
            read_ok: true,
            write_ok: true,
            epoch,
        };
        let fault = |bank: usize, kind, level: u32, stage: u8, format: u32| {
            CbError::Fault(CbFault {
                bank,
                kind,
                level,
                stage,
                ptw: false,
                format,
                s1_bank: n,
            })
        };
        // The bank's decoded regime, rebuilt only after a register write (any write bumps
        // `gen`); TLB contents are separate and only change on a fill or a TLBI.
        self.refresh_regime(cfg, n);
        // Borrowed, not copied: the plan is a few hundred bytes.
        let plan = match self.decoded.get(n) {
            Some((_, Regime::Translate(p))) => p,
            Some((_, Regime::Flat)) => return Ok(flat),
            Some((_, Regime::Fails(e))) => return Err(*e),
            // No such bank (the same fault `decode_regime` gives it).
            None => return Err(fault(n, ContextFaultKind::Translation, 0, 1, 2)),
        };
        // The common regime (stage 1 only, AArch64) on its successful paths; anything else
        // comes back as `None` with nothing changed and takes the general path below.
        if use_tlb && plan.s2.is_none() && self.fast_paths {
            if let Some(f) = plan.s1_fast.as_ref() {
                if let Some(ok) = s1_only(
                    &mut self.tlb,
                    &mut self.counters,
                    mem,
                    f,
                    plan,
                    n,
                    epoch,
                    va,
                    access,
                    privileged,
                ) {
                    return Ok(ok);
                }
            }
        }
        // Borrowed from the plan, not copied: the views are large and a miss needs few fields.
        let (s1, s2, vmid) = (plan.s1.as_ref(), plan.s2.as_ref(), plan.vmid);
        // Stage-1 setup for this address (needed for the ASID tag before looking in the TLB).
        let slow: OwnedS1;
        let s1_cfg = match s1 {
            Some(s1v) => {
                let r = match plan.s1_fast {
                    Some(ref f) => f.resolve(va),
                    None => match s1_setup(cfg, s1v, va, plan.s1_out_bits) {
                        Ok(o) => {
                            slow = o;
                            Ok(S1Setup {
                                steps: &slow.steps,
                                input: slow.input,
                                asid: slow.asid,
                                format: slow.format,
                            })
                        }
                        Err(level) => Err(level),
                    },
                };
                match r {
                    Ok(s) => Some(s),
                    Err(level) => {
                        let format = if view_aarch64(cfg, s1v) { 2 } else { 1 };
                        return Err(fault(n, ContextFaultKind::Translation, level, 1, format));
                    }
                }
            }
            None => None,
        };
        let s2_cfg = match &plan.s2_cfg {
            Ok(c) => c.as_ref(),
            Err(f) => return Err(CbError::Fault(*f)),
        };
        let tag = Tag {
            cb: n as u16,
            vmid,
            asid: s1_cfg.as_ref().map_or(0, |s| s.asid),
        };
        let shifts = match (&s1_cfg, &s2_cfg) {
            (Some(a), Some((b, _))) if a.steps.geo.granule_shift != b.geo.granule_shift => {
                ALL_SHIFTS
            }
            (Some(a), _) => leaf_shifts(a.steps.geo.granule_shift),
            (None, Some((b, _))) => leaf_shifts(b.geo.granule_shift),
            (None, None) => ALL_SHIFTS,
        };
        let s1_format = s1_cfg.as_ref().map_or(2, |s| s.format);
        if use_tlb {
            if let Some(e) = self.tlb.lookup(tag, va, shifts) {
                self.counters.tlb_hits += 1;
                if let Some((stage, level)) = perm_fault(&e, access, privileged) {
                    let (bank, format) = match (stage, s2) {
                        (2, Some(&(s2n, ref s2v))) => {
                            (s2n, if view_aarch64(cfg, s2v) { 2 } else { 1 })
                        }
                        _ => (n, s1_format),
                    };
                    return Err(fault(
                        bank,
                        ContextFaultKind::Permission,
                        level,
                        stage,
                        format,
                    ));
                }
                return Ok(CbOk::tlb_hit(&e, va, privileged));
            }
            self.counters.tlb_misses += 1;
        }
        self.counters.walks += 1;
        let mut reads = 0u64;

        // Stage 2 walk helper over an IPA.
        let s2_walk = |ipa: u64, reads: &mut u64| -> Option<Result<Leaf, WalkError>> {
            let (steps, _) = s2_cfg?;
            Some(walk::walk_steps(mem, steps, ipa, reads))
        };

        // Stage 1.
        let mut s2_ptw_fault: Option<(WalkError, u64)> = None;
        let s1_leaf = match s1_cfg {
            Some(ref s) => {
                let mut xlate = |ipa: u64| -> Result<u64, u64> {
                    let mut r = 0u64;
                    match s2_walk(ipa, &mut r) {
                        None => Ok(ipa),
                        Some(Ok(l)) => {
                            if l.desc & desc::leaf::AF == 0 || l.desc & desc::s2::S2AP_READ == 0 {
                                // Not readable (or no access flag) at stage 2.
                                s2_ptw_fault =
                                    Some((WalkError::Translation { level: l.level }, ipa));
                                return Err(ipa);
                            }
                            Ok(l.out_base | (ipa & low_mask(l.shift)))
                        }
                        Some(Err(e)) => {
                            s2_ptw_fault = Some((e, ipa));
                            Err(ipa)
                        }
                    }
                };
                // Nested: every table address goes through stage 2 first; otherwise the
                // prepared single-stage walk.
                let r = if s2.is_some() {
                    walk::walk(mem, &s.steps.geo, s.input, Some(&mut xlate), &mut reads)
                } else {
                    walk::walk_steps(mem, s.steps, s.input, &mut reads)
                };
                match r {
                    Ok(l) => Some(l),
                    Err(WalkError::Stage2 { .. }) => {
                        let (e, _) =
                            s2_ptw_fault.unwrap_or((WalkError::Translation { level: 0 }, 0));
                        let (kind, level) = walk_err(e);
                        let (s2n, format) = match s2 {
                            Some(&(s2n, ref s2v)) => {
                                (s2n, if view_aarch64(cfg, s2v) { 2 } else { 1 })
                            }
                            None => (n, 2),
                        };
                        self.counters.descriptor_reads += reads;
                        return Err(CbError::Fault(CbFault {
                            bank: s2n,
                            kind,
                            level,
                            stage: 2,
                            ptw: true,
                            format,
                            s1_bank: n,
                        }));
                    }
                    Err(e) => {
                        self.counters.descriptor_reads += reads;
                        let (kind, level) = walk_err(e);
                        return Err(fault(n, kind, level, 1, s.format));
                    }
                }
            }
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
        if let Some(l) = s1_leaf {
            if !af_ok(&l, plan.sctlr) {
                self.counters.descriptor_reads += reads;
                return Err(fault(
                    n,
                    ContextFaultKind::AccessFlag,
                    l.level,
                    1,
                    s1_format,
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
        if let Some(&(s2n, ref s2v)) = s2 {
            let format = if view_aarch64(cfg, s2v) { 2 } else { 1 };
            match s2_walk(ipa, &mut reads) {
                Some(Ok(l)) => {
                    if !af_ok(&l, s2v.sctlr) {
                        self.counters.descriptor_reads += reads;
                        return Err(fault(s2n, ContextFaultKind::AccessFlag, l.level, 2, format));
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
                Some(Err(e)) => {
                    self.counters.descriptor_reads += reads;
                    let (kind, level) = walk_err(e);
                    return Err(fault(s2n, kind, level, 2, format));
                }
                None => {}
            }
        }
        self.counters.descriptor_reads += reads;
        let shift = shift.min(63);
        entry.shift = shift;
        entry.va_base = va & !low_mask(shift);
        entry.pa_base = pa & !low_mask(shift);
        if s1_leaf.is_some() && s2.is_none() {
            entry.ipa_base = u64::MAX;
        }
        if use_tlb {
            self.tlb.insert(entry);
        }
        if let Some((stage, level)) = perm_fault(&entry, access, privileged) {
            let (bank, format) = match (stage, s2) {
                (2, Some(&(s2n, ref s2v))) => (s2n, if view_aarch64(cfg, s2v) { 2 } else { 1 }),
                _ => (n, s1_format),
            };
            return Err(fault(
                bank,
                ContextFaultKind::Permission,
                level,
                stage,
                format,
            ));
        }
        Ok(CbOk {
            pa,
            shift,
            tlb_hit: false,
            desc: s1_leaf.map_or(0, |l| l.desc),
            disabled: false,
            read_ok: perm_fault(&entry, Access::Read, privileged).is_none(),
            write_ok: perm_fault(&entry, Access::Write, privileged).is_none(),
            epoch,
        })
    }

    fn count_fault(&mut self, kind: ContextFaultKind) {
        let c = &mut self.counters;
        match kind {
            ContextFaultKind::Translation => c.fault_translation += 1,
            ContextFaultKind::AccessFlag => c.fault_access_flag += 1,
            ContextFaultKind::Permission => c.fault_permission += 1,
            ContextFaultKind::AddressSize => c.fault_address_size += 1,
            ContextFaultKind::External => c.fault_external += 1,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn global_fault(
        &mut self,
        cfg: &Config,
        kind: GlobalFaultKind,
        sid: u32,
        iova: u64,
        access: Access,
        privileged: bool,
        p: &mut Pending,
    ) -> DmaFault {
        let mut synr0 = 0;
        if access == Access::Write {
            synr0 |= gfsynr0::WNR;
        }
        if privileged {
            synr0 |= gfsynr0::PNU;
        }
        match kind {
            GlobalFaultKind::UnidentifiedStream => self.counters.fault_usf += 1,
            GlobalFaultKind::StreamMatchConflict => self.counters.fault_smcf += 1,
            GlobalFaultKind::UnimplementedContextBank => self.counters.fault_ucbf += 1,
        }
        let recorded = self.record_global(cfg, kind.gfsr_bit(), synr0, sid, iova, p);
        DmaFault::Global {
            kind,
            sid,
            iova,
            recorded,
            client_abort: self.scr0 & scr0::GFRE != 0,
        }
    }

    /// One transaction from stream `sid`.
    pub(crate) fn translate(
        &mut self,
        cfg: &Config,
        mem: &PhysMem,
        sid: u32,
        iova: u64,
        access: Access,
        p: &mut Pending,
    ) -> Result<Translation, DmaFault> {
        self.counters.transactions += 1;
        // Micro-TLB: the result of a recent transaction of this stream on this page, valid
        // while no register has been written since.
        let vpn = iova >> 12;
        let slot = ((vpn ^ u64::from(sid).wrapping_mul(0x9e37_79b9_7f4a_7c15)) as usize)
            % crate::state::UTLB_ENTRIES;
        if let Some(u) = self.utlb.get(slot) {
            let allowed = match access {
                Access::Read => u.read,
                Access::Write => u.write,
            };
            if u.gen == self.gen && u.sid == sid && u.vpn == vpn && allowed {
                let (pa, cb) = (u.pa_page | (iova & 0xfff), u.cb);
                let leaf_size = 1u64 << u.shift;
                self.counters.tlb_hits += 1;
                self.counters.translated += 1;
                p.fill = Some(*u);
                p.event(|| Event::Translated {
                    sid,
                    iova,
                    access,
                    pa,
                    cb,
                    tlb_hit: true,
                });
                return Ok(Translation::Translated {
                    pa,
                    cb,
                    leaf_size,
                    tlb_hit: true,
                    epoch: u.epoch,
                });
            }
        }
        let bypass = |s: &mut State, reason: BypassReason, p: &mut Pending| {
            match reason {
                BypassReason::ClientPd => s.counters.bypass_clientpd += 1,
                BypassReason::S2crBypass => s.counters.bypass_s2cr += 1,
                BypassReason::UnmatchedBypass => s.counters.bypass_unmatched += 1,
                BypassReason::CbDisabled => s.counters.bypass_cb_disabled += 1,
            }
            p.event(|| Event::Bypassed {
                sid,
                iova,
                access,
                reason,
            });
            Ok(Translation::Bypass { pa: iova, reason })
        };
        let faulted = |f: DmaFault, p: &mut Pending| {
            p.event(|| Event::Faulted {
                sid,
                iova,
                access,
                fault: f,
            });
            Err(f)
        };
        if self.scr0 & scr0::CLIENTPD != 0 {
            return bypass(self, BypassReason::ClientPd, p);
        }
        let group = match self.match_stream(cfg, sid) {
            StreamMatch::Group(g) => g,
            StreamMatch::Conflict(g) => {
                // MMU-500 with SMCFCFG clear uses the lowest matching entry.
                if cfg.mmu500 && self.scr0 & scr0::SMCFCFG == 0 {
                    g
                } else {
                    let f = self.global_fault(
                        cfg,
                        GlobalFaultKind::StreamMatchConflict,
                        sid,
                        iova,
                        access,
                        false,
                        p,
                    );
                    return faulted(f, p);
                }
            }
            StreamMatch::Unmatched => {
                if self.scr0 & scr0::USFCFG != 0 {
                    let f = self.global_fault(
                        cfg,
                        GlobalFaultKind::UnidentifiedStream,
                        sid,
                        iova,
                        access,
                        false,
                        p,
                    );
                    return faulted(f, p);
                }
                return bypass(self, BypassReason::UnmatchedBypass, p);
            }
        };
        let s2cr_v = self.s2cr.get(group as usize).copied().unwrap_or(0);
        let privileged =
            regs::field(s2cr_v, s2cr::PRIVCFG_SHIFT, s2cr::PRIVCFG_WIDTH) == s2cr::PRIVCFG_PRIV;
        match regs::field(s2cr_v, s2cr::TYPE_SHIFT, s2cr::TYPE_WIDTH) {
            s2cr::TYPE_TRANS => {}
            s2cr::TYPE_BYPASS => return bypass(self, BypassReason::S2crBypass, p),
            _ => {
                self.counters.terminated += 1;
                return faulted(
                    DmaFault::Terminated {
                        reason: TerminateReason::S2crFault,
                        sid,
                        iova,
                    },
                    p,
                );
            }
        }
        let n = regs::field(s2cr_v, s2cr::CBNDX_SHIFT, s2cr::CBNDX_WIDTH) as usize;
        if n >= self.banks.len() {
            let f = self.global_fault(
                cfg,
                GlobalFaultKind::UnimplementedContextBank,
                sid,
                iova,
                access,
                privileged,
                p,
            );
            return faulted(f, p);
        }
        match self.cb_translate(cfg, mem, n, iova, access, privileged, true) {
            Ok(ok) if ok.disabled => bypass(self, BypassReason::CbDisabled, p),
            Ok(ok) => {
                self.counters.translated += 1;
                let fill = crate::state::MicroEntry {
                    gen: self.gen,
                    sid,
                    vpn,
                    pa_page: ok.pa & !0xfff,
                    cb: n as u16,
                    shift: ok.shift as u8,
                    read: ok.read_ok,
                    write: ok.write_ok,
                    epoch: ok.epoch,
                };
                if let Some(u) = self.utlb.get_mut(slot) {
                    *u = fill;
                }
                p.fill = Some(fill);
                let (pa, tlb_hit) = (ok.pa, ok.tlb_hit);
                p.event(|| Event::Translated {
                    sid,
                    iova,
                    access,
                    pa,
                    cb: n as u16,
                    tlb_hit,
                });
                Ok(Translation::Translated {
                    pa: ok.pa,
                    cb: n as u16,
                    leaf_size: 1u64 << ok.shift,
                    tlb_hit: ok.tlb_hit,
                    epoch: ok.epoch,
                })
            }
            Err(CbError::Terminate(reason)) => {
                self.counters.terminated += 1;
                faulted(DmaFault::Terminated { reason, sid, iova }, p)
            }
            Err(CbError::Fault(f)) => {
                self.count_fault(f.kind);
                let mut syn = regs::make(f.level, fsynr0::PLVL_SHIFT, fsynr0::PLVL_WIDTH);
                if access == Access::Write {
                    syn |= fsynr0::WNR;
                }
                if privileged {
                    syn |= fsynr0::PNU;
                }
                if f.ptw {
                    syn |= fsynr0::PTWF;
                }
                if f.stage == 2 && f.bank != f.s1_bank {
                    syn |= regs::make(
                        f.s1_bank as u32,
                        fsynr0::S1CBNDX_SHIFT,
                        fsynr0::S1CBNDX_WIDTH,
                    );
                }
                let recorded =
                    self.record_context(cfg, f.bank, f.kind.fsr_bit(), f.format, syn, iova, sid, p);
                let client_abort = self
                    .banks
                    .get(f.bank)
                    .is_some_and(|b| b.sctlr & sctlr::CFRE != 0);
                faulted(
                    DmaFault::Context {
                        kind: f.kind,
                        cb: f.bank as u16,
                        stage: f.stage,
                        level: f.level as u8,
                        iova,
                        recorded,
                        client_abort,
                    },
                    p,
                )
            }
        }
    }
}

/// A transaction through a stage-1-only AArch64 bank that succeeds: the general path's steps
/// (TLB lookup, or walk, access flag and permission checks, then fill) without its stage-2 and
/// nested machinery. Returns `None`, having changed nothing, wherever the general path would
/// fault, so the caller redoes the transaction there and the fault is recorded exactly once
/// and exactly as before (`State::fast_paths` off gives the general path alone, for tests).
#[allow(clippy::too_many_arguments)]
#[inline]
fn s1_only(
    tlb: &mut Tlb,
    counters: &mut Counters,
    mem: &PhysMem,
    f: &S1Fast,
    plan: &Plan,
    n: usize,
    epoch: u64,
    va: u64,
    access: Access,
    privileged: bool,
) -> Option<CbOk> {
    let s = f.resolve(va).ok()?;
    let tag = Tag {
        cb: n as u16,
        vmid: plan.vmid,
        asid: s.asid,
    };
    if let Some(e) = tlb.lookup(tag, va, leaf_shifts(s.steps.geo.granule_shift)) {
        if perm_fault(&e, access, privileged).is_some() {
            return None;
        }
        counters.tlb_hits += 1;
        return Some(CbOk::tlb_hit(&e, va, privileged));
    }
    let mut reads = 0u64;
    let l = walk::walk_steps(mem, s.steps, s.input, &mut reads).ok()?;
    if !af_ok(&l, plan.sctlr) {
        return None;
    }
    let (readable, writable, unpriv) = s1_perms(&l);
    let shift = l.shift.min(63);
    let pa = l.out_base | (va & low_mask(l.shift));
    let entry = Entry {
        tag,
        va_base: va & !low_mask(shift),
        pa_base: pa & !low_mask(shift),
        shift,
        readable,
        writable,
        unpriv,
        s2_readable: true,
        s2_writable: true,
        level: l.level as u8,
        s2_level: 0,
        ipa_base: u64::MAX,
        epoch,
    };
    if perm_fault(&entry, access, privileged).is_some() {
        return None;
    }
    counters.tlb_misses += 1;
    counters.walks += 1;
    counters.descriptor_reads += reads;
    tlb.insert(entry);
    Some(CbOk {
        pa,
        shift,
        tlb_hit: false,
        desc: l.desc,
        disabled: false,
        read_ok: perm_fault(&entry, Access::Read, privileged).is_none(),
        write_ok: perm_fault(&entry, Access::Write, privileged).is_none(),
        epoch,
    })
}

#[cfg(feature = "bench-internals")]
impl S1Fast {
    /// The output address of `va` by a walk alone (no TLB, no permission or access-flag
    /// check), or `None` when the walk faults.
    #[inline]
    pub(crate) fn walk(&self, mem: &PhysMem, va: u64) -> Option<u64> {
        let s = self.resolve(va).ok()?;
        let mut reads = 0;
        let l = walk::walk_steps(mem, s.steps, s.input, &mut reads).ok()?;
        Some(l.out_base | (va & low_mask(l.shift)))
    }
}

/// Fault status code of a PAR fault record (VMSAv8-64 FST encoding).
fn fst(kind: ContextFaultKind, level: u32) -> u64 {
    let l = u64::from(level & 3);
    match kind {
        ContextFaultKind::AddressSize => l,
        ContextFaultKind::Translation => 0x4 | l,
        ContextFaultKind::AccessFlag => 0x8 | l,
        ContextFaultKind::Permission => 0xc | l,
        ContextFaultKind::External => 0x14 | l,
    }
}

/// ATS1PR / ATS1PW: a privileged translation through bank `n` into a PAR value. Walks afresh
/// (no TLB lookup or fill) and records nothing in FSR.
pub(crate) fn ats(
    state: &mut State,
    cfg: &Config,
    mem: &PhysMem,
    n: usize,
    va: u64,
    access: Access,
) -> u64 {
    match state.cb_translate(cfg, mem, n, va, access, true, false) {
        Ok(ok) => {
            let pa = ok.pa & regs::par::PA_MASK;
            if ok.desc == 0 {
                return pa;
            }
            let attr_idx = (ok.desc >> 2) & 7;
            let mair = state
                .banks
                .get(n)
                .map_or(0, |b| u64::from(b.mair0) | (u64::from(b.mair1) << 32));
            let attr = (mair >> (8 * attr_idx)) & 0xff;
            let sh = (ok.desc >> 8) & 3;
            pa | (attr << 56) | (sh << 7)
        }
        Err(CbError::Fault(f)) => {
            let mut par = regs::par::F | (fst(f.kind, f.level) << 1);
            if f.ptw {
                par |= 1 << 8;
            }
            if f.stage == 2 {
                par |= 1 << 9;
            }
            par
        }
        Err(CbError::Terminate(_)) => regs::par::F | (fst(ContextFaultKind::Translation, 0) << 1),
    }
}
