//! What a transaction through the model can come out as, what the model counts, and what it
//! reports to a trace.

use smmu_addr::{Iova, PageSize, PhysAddr};
use smmu_arch::{Access, LookupLevel, Stage};
use std::fmt;
use thiserror::Error;

/// Why a transaction passed untranslated (pa = iova). The simulator uses this to spot "stray DMA".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BypassReason {
    /// sCR0.CLIENTPD = 1: the SMMU is disabled for clients.
    ClientPd,
    /// The stream's S2CR has TYPE = BYPASS.
    S2crBypass,
    /// No SMR matched and sCR0.USFCFG = 0.
    UnmatchedBypass,
    /// The context bank's SCTLR.M = 0.
    CbDisabled,
}

/// A successful transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// Translated by context bank `cb`; `leaf_size` is the block or page size of the mapping.
    /// `epoch` is the bank's context epoch when the tables that produced the result were
    /// walked (see [`crate::Mmu500::context_epoch`]): older than the bank's current epoch when a
    /// TLB entry from an earlier programming of the bank answered.
    Translated {
        pa: PhysAddr,
        cb: u16,
        leaf_size: PageSize,
        tlb_hit: bool,
        epoch: u64,
    },
    /// Passed through untranslated: `pa` is the input address taken as a physical address.
    Bypass { pa: PhysAddr, reason: BypassReason },
}

impl Translation {
    /// The output address.
    pub fn pa(&self) -> PhysAddr {
        match *self {
            Translation::Translated { pa, .. } | Translation::Bypass { pa, .. } => pa,
        }
    }

    /// Whether the transaction went through a context bank's tables.
    pub fn is_translated(&self) -> bool {
        matches!(self, Translation::Translated { .. })
    }
}

/// Global fault classes (sGFSR bits the model raises).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GlobalFaultKind {
    /// USF: no SMR matched and sCR0.USFCFG = 1.
    UnidentifiedStream,
    /// SMCF: more than one SMR matched.
    StreamMatchConflict,
    /// UCBF: the S2CR names a context bank that does not exist.
    UnimplementedContextBank,
    /// ICF, an invalid context fault (SMMUv2 spec §3.8): the matched S2CR has TYPE = FAULT
    /// ("Fault, no index"; the reserved TYPE 3 is "treated as a fault context"), `nested:
    /// false`; or the bank the S2CR names has CBAR.TYPE = stage 1 with stage 2 fault, `nested:
    /// true` (recorded in sGFSYNR0.Nested).
    InvalidContext { nested: bool },
}

impl GlobalFaultKind {
    /// The sGFSR bit.
    pub fn gfsr_bit(self) -> u32 {
        use smmu_arch::regs::gfsr;
        match self {
            GlobalFaultKind::UnidentifiedStream => gfsr::USF,
            GlobalFaultKind::StreamMatchConflict => gfsr::SMCF,
            GlobalFaultKind::UnimplementedContextBank => gfsr::UCBF,
            GlobalFaultKind::InvalidContext { .. } => gfsr::ICF,
        }
    }
}

/// Context fault classes (CB_FSR bits the model raises).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContextFaultKind {
    Translation,
    AccessFlag,
    Permission,
    AddressSize,
    /// External abort on a table walk (descriptor in memory that does not exist).
    External,
}

impl ContextFaultKind {
    /// The CB_FSR bit.
    pub fn fsr_bit(self) -> u32 {
        use smmu_arch::regs::fsr;
        match self {
            ContextFaultKind::Translation => fsr::TF,
            ContextFaultKind::AccessFlag => fsr::AFF,
            ContextFaultKind::Permission => fsr::PF,
            ContextFaultKind::AddressSize => fsr::ASF,
            ContextFaultKind::External => fsr::EF,
        }
    }
}

/// A transaction the SMMU terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DmaFault {
    /// A global fault. `recorded` is false when sGFSR already held one (only MULTI was set).
    /// `client_abort` reflects sCR0.GFRE (abort vs RAZ/WI response to the client).
    #[error("global fault {kind:?} for stream {sid:#x} at {iova:#x}")]
    Global {
        kind: GlobalFaultKind,
        sid: u32,
        iova: Iova,
        recorded: bool,
        client_abort: bool,
    },
    /// A context fault recorded in bank `cb` (for nested stage-2 faults, the stage-2 bank).
    #[error("context fault {kind:?} in bank {cb} (stage {stage}, level {level}) at {iova:#x}")]
    Context {
        kind: ContextFaultKind,
        cb: u16,
        stage: Stage,
        level: LookupLevel,
        iova: Iova,
        recorded: bool,
        client_abort: bool,
    },
}

/// A DMA helper that stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BusError {
    /// The SMMU terminated the chunk at `done` bytes into the buffer.
    #[error("DMA terminated after {done} bytes: {fault}")]
    Fault { fault: DmaFault, done: usize },
    /// The output address is not backed by memory (a bus error from the slave).
    #[error("DMA to unbacked physical address {pa:#x} after {done} bytes")]
    Unbacked {
        pa: PhysAddr,
        done: usize,
        translation: Translation,
    },
    /// The buffer would run past the end of the 64-bit address space.
    #[error("DMA of {len} bytes at {iova:#x} wraps the address space")]
    Wrap { iova: Iova, len: usize },
}

/// Running totals, for the simulator's statistics and the benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mmu500Counters {
    pub transactions: u64,
    pub tlb_hits: u64,
    pub tlb_misses: u64,
    pub walks: u64,
    pub descriptor_reads: u64,
    pub translated: u64,
    pub bypass_clientpd: u64,
    pub bypass_s2cr: u64,
    pub bypass_unmatched: u64,
    pub bypass_cb_disabled: u64,
    pub fault_usf: u64,
    pub fault_smcf: u64,
    pub fault_ucbf: u64,
    /// Invalid context faults (an S2CR of TYPE = FAULT, a bank with stage 2 fault).
    pub fault_icf: u64,
    pub fault_translation: u64,
    pub fault_access_flag: u64,
    pub fault_permission: u64,
    pub fault_address_size: u64,
    pub fault_external: u64,
    pub tlb_invalidations: u64,
}

/// Register space of a named register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Gr0,
    Gr1,
    Cb(u16),
}

/// A register's architected name, for traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegName {
    pub space: Space,
    pub name: &'static str,
    /// Array index (SMR(n), CBAR(n), ...).
    pub index: Option<u32>,
}

impl fmt::Display for RegName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Space::Cb(n) = self.space {
            write!(f, "CB{n}.")?;
        }
        f.write_str(self.name)?;
        if let Some(i) = self.index {
            write!(f, "({i})")?;
        }
        Ok(())
    }
}

/// A TLB maintenance operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlbiOp {
    Vmid(u16),
    AllNsnh,
    AllHyp,
    Va {
        cb: u16,
        asid: u16,
        va: Iova,
    },
    VaAllAsid {
        cb: u16,
        va: Iova,
    },
    Asid {
        cb: u16,
        asid: u16,
    },
    CbAll {
        cb: u16,
    },
    /// TLBIIPAS2: the operand is the stage-2 input address, an [`Iova`] (see `smmu_addr`).
    Ipa {
        cb: u16,
        ipa: Iova,
    },
}

/// What the model reports to an event sink (the simulator's trace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// A register write by the driver (`width` 32 or 64).
    MmioWrite {
        offset: u64,
        value: u64,
        width: u8,
        name: Option<RegName>,
    },
    Translated {
        sid: u32,
        iova: Iova,
        access: Access,
        pa: PhysAddr,
        cb: u16,
        tlb_hit: bool,
    },
    Bypassed {
        sid: u32,
        iova: Iova,
        access: Access,
        reason: BypassReason,
    },
    Faulted {
        sid: u32,
        iova: Iova,
        access: Access,
        fault: DmaFault,
    },
    /// A global fault was written into sGFSR (values after the update).
    GlobalFaultRecorded {
        gfsr: u32,
        gfsynr0: u32,
        gfsynr1: u32,
    },
    /// A context fault was written into a bank's FSR (values after the update).
    ContextFaultRecorded {
        cb: u16,
        fsr: u32,
        far: u64,
        fsynr0: u32,
    },
    TlbInvalidate {
        op: TlbiOp,
        removed: usize,
    },
}
