//! Step 7, fault: a fault found on the way, as the step that found it describes it
//! ([`CbFault`], with its stage, level and register format as types), turned into what the
//! architecture records (sGFSR/sGFSYNRn/sGFAR, or FSR/FAR/FSYNR0/CBFRSYNRA of a bank, or a PAR
//! fault record for ATS1*), counted, and reported to the client as a [`DmaFault`].

use crate::config::Mmu500Config;
use crate::state::{Pending, Registers};
use crate::types::{ContextFaultKind, DmaFault, GlobalFaultKind, Mmu500Counters, TraceEvent};
use crate::walk::WalkError;
use smmu_addr::Iova;
use smmu_arch::regs::{self, cbfrsynra, fsr, fsynr0, gfsr, gfsynr0, gfsynr1, par, scr0, sctlr};
use smmu_arch::{Access, LookupLevel, Stage};

/// The translation table format of the bank that records a fault (FSR.FORMAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// AArch32 long-descriptor (also what the model reports for the unmodelled
    /// short-descriptor format).
    AArch32Long,
    AArch64,
}

impl Format {
    /// The FSR.FORMAT field value.
    pub fn fsr_field(self) -> u32 {
        match self {
            Format::AArch32Long => 1,
            Format::AArch64 => 2,
        }
    }

    /// The format of a bank that does (`true`) or does not use the AArch64 formats.
    pub fn of(aarch64: bool) -> Format {
        if aarch64 {
            Format::AArch64
        } else {
            Format::AArch32Long
        }
    }
}

/// A fault found while translating through a bank, before it is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CbFault {
    /// Bank to record in.
    pub bank: usize,
    pub kind: ContextFaultKind,
    pub level: LookupLevel,
    pub stage: Stage,
    /// The fault happened fetching a stage-1 table through stage 2 (FSYNR0.PTWF).
    pub ptw: bool,
    /// FSR.FORMAT of the recording bank.
    pub format: Format,
    /// For a nested stage-2 fault, the stage-1 bank (FSYNR0.S1CBNDX).
    pub s1_bank: usize,
}

impl CbFault {
    /// A fault in bank `bank` of a transaction that entered through bank `s1_bank`, not on a
    /// stage-1 table fetch.
    pub fn new(
        s1_bank: usize,
        bank: usize,
        kind: ContextFaultKind,
        stage: Stage,
        level: LookupLevel,
        format: Format,
    ) -> CbFault {
        CbFault {
            bank,
            kind,
            level,
            stage,
            ptw: false,
            format,
            s1_bank,
        }
    }
}

/// How a transaction through a bank failed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CbError {
    Fault(CbFault),
    /// The bank's configuration is an invalid context (CBAR.TYPE = stage 1 with stage 2
    /// fault): a global ICF with sGFSYNR0.Nested set, not a context fault.
    InvalidContext,
}

impl From<CbFault> for CbError {
    fn from(f: CbFault) -> Self {
        CbError::Fault(f)
    }
}

/// The context fault a failed walk reports, and the level it names.
pub(crate) fn walk_fault(e: WalkError) -> (ContextFaultKind, LookupLevel) {
    match e {
        WalkError::Translation { level } => {
            (ContextFaultKind::Translation, LookupLevel::new(level))
        }
        WalkError::AddressSize { level } => {
            (ContextFaultKind::AddressSize, LookupLevel::new(level))
        }
        WalkError::External { level, .. } => (ContextFaultKind::External, LookupLevel::new(level)),
        WalkError::Stage2 { level, .. } => (ContextFaultKind::Translation, LookupLevel::new(level)),
    }
}

impl Registers {
    /// Record a global fault; returns whether its syndrome was captured (false: MULTI only).
    pub(crate) fn record_global(
        &mut self,
        cfg: &Mmu500Config,
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
            self.gfsynr1 = regs::make(sid, gfsynr1::STREAMID_SHIFT, gfsynr1::STREAMID_WIDTH);
            self.gfsynr2 = 0;
            self.gfar = iova;
            true
        };
        let (gfsr, gfsynr0, gfsynr1) = (self.gfsr, self.gfsynr0, self.gfsynr1);
        p.event(|| TraceEvent::GlobalFaultRecorded {
            gfsr,
            gfsynr0,
            gfsynr1,
        });
        self.update_global_level(cfg, p);
        recorded
    }

    /// Record a context fault in bank `n`; returns whether FAR/FSYNR0 were captured.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_context(
        &mut self,
        cfg: &Mmu500Config,
        n: usize,
        bit: u32,
        format: Format,
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
            b.fsr = bit | (format.fsr_field() << fsr::FORMAT_SHIFT);
            b.far = far;
            b.fsynr0 = fsynr0;
            b.cbfrsynra = regs::make(sid, cbfrsynra::SID_SHIFT, cbfrsynra::SID_WIDTH);
            true
        };
        let (fsr_v, far_v, fsynr) = (b.fsr, b.far, b.fsynr0);
        p.event(|| TraceEvent::ContextFaultRecorded {
            cb: n as u16,
            fsr: fsr_v,
            far: far_v,
            fsynr0: fsynr,
        });
        self.update_cb_level(cfg, n, p);
        recorded
    }
}

fn count_fault(c: &mut Mmu500Counters, kind: ContextFaultKind) {
    match kind {
        ContextFaultKind::Translation => c.fault_translation += 1,
        ContextFaultKind::AccessFlag => c.fault_access_flag += 1,
        ContextFaultKind::Permission => c.fault_permission += 1,
        ContextFaultKind::AddressSize => c.fault_address_size += 1,
        ContextFaultKind::External => c.fault_external += 1,
    }
}

/// Record and count a global fault of stream `sid` at `iova`. A global fault records the
/// transaction's input attributes as they arrived (SMMUv2 spec §3.4), not S2CR.PRIVCFG's
/// override: a client transaction here is an unprivileged data access, so sGFSYNR0 holds WNR
/// and, for a nested invalid context, Nested.
#[allow(clippy::too_many_arguments)]
pub(crate) fn global(
    regs: &mut Registers,
    counters: &mut Mmu500Counters,
    cfg: &Mmu500Config,
    kind: GlobalFaultKind,
    sid: u32,
    iova: u64,
    access: Access,
    p: &mut Pending,
) -> DmaFault {
    let mut synr0 = 0;
    if access == Access::Write {
        synr0 |= gfsynr0::WNR;
    }
    match kind {
        GlobalFaultKind::UnidentifiedStream => counters.fault_usf += 1,
        GlobalFaultKind::StreamMatchConflict => counters.fault_smcf += 1,
        GlobalFaultKind::UnimplementedContextBank => counters.fault_ucbf += 1,
        GlobalFaultKind::InvalidContext { nested } => {
            counters.fault_icf += 1;
            if nested {
                synr0 |= gfsynr0::NESTED;
            }
        }
    }
    let recorded = regs.record_global(cfg, kind.gfsr_bit(), synr0, sid, iova, p);
    DmaFault::Global {
        kind,
        sid,
        iova: Iova::new(iova),
        recorded,
        client_abort: regs.scr0 & scr0::GFRE != 0,
    }
}

/// Record and count context fault `f` of stream `sid` at `iova`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn context(
    regs: &mut Registers,
    counters: &mut Mmu500Counters,
    cfg: &Mmu500Config,
    f: CbFault,
    sid: u32,
    iova: u64,
    access: Access,
    privileged: bool,
    p: &mut Pending,
) -> DmaFault {
    count_fault(counters, f.kind);
    let mut syn = regs::make(
        u32::from(f.level.get()),
        fsynr0::PLVL_SHIFT,
        fsynr0::PLVL_WIDTH,
    );
    if access == Access::Write {
        syn |= fsynr0::WNR;
    }
    if privileged {
        syn |= fsynr0::PNU;
    }
    if f.ptw {
        syn |= fsynr0::PTWF;
    }
    if f.stage == Stage::S2 && f.bank != f.s1_bank {
        syn |= regs::make(
            f.s1_bank as u32,
            fsynr0::S1CBNDX_SHIFT,
            fsynr0::S1CBNDX_WIDTH,
        );
    }
    let recorded = regs.record_context(cfg, f.bank, f.kind.fsr_bit(), f.format, syn, iova, sid, p);
    let client_abort = regs
        .banks
        .get(f.bank)
        .is_some_and(|b| b.sctlr & sctlr::CFRE != 0);
    DmaFault::Context {
        kind: f.kind,
        cb: f.bank as u16,
        stage: f.stage,
        level: f.level,
        iova: Iova::new(iova),
        recorded,
        client_abort,
    }
}

/// Fault status code of a PAR fault record (VMSAv8-64 FST encoding).
fn fst(kind: ContextFaultKind, level: LookupLevel) -> u64 {
    let l = u64::from(level.get()) & par::fst::LEVEL_MASK;
    l | match kind {
        ContextFaultKind::AddressSize => par::fst::ADDRESS_SIZE,
        ContextFaultKind::Translation => par::fst::TRANSLATION,
        ContextFaultKind::AccessFlag => par::fst::ACCESS_FLAG,
        ContextFaultKind::Permission => par::fst::PERMISSION,
        ContextFaultKind::External => par::fst::EXTERNAL_WALK,
    }
}

/// The PAR value an ATS1* operation that failed with `e` publishes.
pub(crate) fn par_fault(e: CbError) -> u64 {
    match e {
        CbError::Fault(f) => par::fault(fst(f.kind, f.level), f.ptw, f.stage == Stage::S2),
        CbError::InvalidContext => par::fault(
            fst(ContextFaultKind::Translation, LookupLevel::L0),
            false,
            false,
        ),
    }
}
