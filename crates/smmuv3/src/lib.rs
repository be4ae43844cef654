//! A hardware model of an Arm SMMUv3 (`arm,smmu-v3`), written from the architecture (IHI 0070).
//!
//! The model is a register window ([`Mmio`]) plus a transaction port ([`SmmuV3::translate`],
//! [`SmmuV3::dma_read`], [`SmmuV3::dma_write`]). Everything else a driver uses lives in
//! simulated memory it owns: the command and event queues, the stream table, context
//! descriptors and page tables. Interrupts are delivered to one handler ([`IrqHandler`]) as wired
//! lines, or written as MSIs into memory where the preset implements them and the driver set
//! an address.
//!
//! What it models:
//!
//! * ID registers from a [`SmmuV3Config`] preset ([`SmmuV3Config::qemu_virt`] matches QEMU's `virt`);
//! * CR0/CR0ACK, CR1, CR2, GBPA (bypass or abort while SMMUEN = 0), IRQ_CTRL/ACK,
//!   GERROR/GERRORN with toggle semantics;
//! * linear and 2-level stream tables, STEs (abort, bypass, stage 1, stage 2, nested) with the
//!   C_BAD_STE checks, CDs with ASIDs (C_BAD_CD);
//! * the command queue (CFGI_*, TLBI_*, PREFETCH_CONFIG, CMD_SYNC by SEV, MSI or wired IRQ,
//!   CERROR_ILL / CERROR_ABT);
//! * the event queue with its overflow rules;
//! * a walker of its own (`walk`), a finite TLB and a configuration cache that stay stale until
//!   invalidated.
//!
//! [`SmmuV3::snapshot`] / [`SmmuV3::restore`] save everything behind the model's lock and put
//! it back in place, for the schedule explorer's booted-machine snapshot; the memory it walks
//! (tables, queues) is physmem's to save, and the interrupt handler is wiring.
//!
//! Concurrency: one lock (from `smmu-sync`) covers the state; a transaction marks a
//! `sched_point(Dma)` before taking it, so the explorer can interleave DMA with MMIO. Interrupts
//! raised under the lock are delivered after it is released, so a handler may access registers.

mod cmdq;
mod config;
mod evtq;
mod mmio;
mod snapshot;
mod state;
mod strtab;
mod tlb;
mod walk;
mod xlate;

pub use config::{SmmuV3Config, SmmuV3ConfigError};
pub use smmuv3_arch::{Access, IrqLine, Mmio};
pub use snapshot::{SmmuV3Snapshot, SmmuV3SnapshotError};

use physmem::{PhysAddr, PhysError, PhysMem};
use smmu_addr::Iova;
use smmu_sync::{sched_point, Arc, Mutex, Point, RwLock};
use state::State;
use thiserror::Error;

/// Receives the model's wired interrupts.
pub type IrqHandler = Arc<dyn Fn(IrqLine) + Send + Sync>;

/// Why a transaction passed untranslated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BypassReason {
    /// SMMU_CR0.SMMUEN = 0 and GBPA.ABORT = 0.
    Disabled,
    /// STE.Config = bypass.
    Ste,
}

/// Why a transaction was terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbortReason {
    /// SMMUEN = 0 and GBPA.ABORT = 1.
    GlobalAbort,
    /// STE.Config = abort (no event).
    SteAbort,
    /// A configuration error or fault with this event id (recorded if the configuration says so).
    Event(u8),
}

/// What happened to one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Translated { pa: PhysAddr },
    Bypassed { pa: PhysAddr, why: BypassReason },
    Aborted(AbortReason),
}

impl Outcome {
    /// The output address, unless the transaction was terminated.
    pub fn pa(&self) -> Option<PhysAddr> {
        match *self {
            Outcome::Translated { pa } | Outcome::Bypassed { pa, .. } => Some(pa),
            Outcome::Aborted(_) => None,
        }
    }
}

/// A DMA transaction that did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BusError {
    #[error("transaction terminated by the SMMU: {0:?}")]
    Aborted(AbortReason),
    #[error("translated to {pa:#x}, which is not memory: {source}")]
    Memory { pa: PhysAddr, source: PhysError },
}

/// Activity counters (monotonic since creation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmmuV3Counters {
    pub transactions: u64,
    pub tlb_hits: u64,
    pub tlb_misses: u64,
    pub cfg_hits: u64,
    pub cfg_misses: u64,
    pub faults: u64,
    pub commands: u64,
    pub command_errors: u64,
    pub cfgi: u64,
    pub tlbi: u64,
    pub syncs: u64,
    pub sevs: u64,
    pub events: u64,
    pub events_lost: u64,
    pub events_discarded: u64,
    pub overflows: u64,
    pub gerrors: u64,
    pub msis: u64,
    pub wired_irqs: u64,
}

/// One SMMUv3.
pub struct SmmuV3 {
    cfg: SmmuV3Config,
    mem: Arc<PhysMem>,
    state: Mutex<State>,
    irq: RwLock<Option<IrqHandler>>,
}

impl std::fmt::Debug for SmmuV3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmmuV3")
            .field("cfg", &self.cfg.name)
            .finish_non_exhaustive()
    }
}

impl SmmuV3 {
    /// A model at reset, walking tables and queues in `mem`.
    pub fn new(cfg: SmmuV3Config, mem: Arc<PhysMem>) -> Result<Arc<SmmuV3>, SmmuV3ConfigError> {
        cfg.validate()?;
        let state = Mutex::new(State::new(&cfg));
        Ok(Arc::new(SmmuV3 {
            cfg,
            mem,
            state,
            irq: RwLock::new(None),
        }))
    }

    pub fn config(&self) -> &SmmuV3Config {
        &self.cfg
    }

    /// Bytes of register window (pages 0 and 1).
    pub fn window_size(&self) -> u64 {
        smmuv3_arch::regs::WINDOW_SIZE
    }

    /// Back to reset values, caches emptied (a warm reset, as before a kexec'd kernel probes).
    pub fn reset(&self) {
        self.state.lock().reset(&self.cfg);
    }

    pub fn set_irq_handler(&self, h: IrqHandler) {
        *self.irq.write() = Some(h);
    }

    pub fn clear_irq_handler(&self) {
        *self.irq.write() = None;
    }

    pub fn counters(&self) -> SmmuV3Counters {
        self.state.lock().counters
    }

    /// Entries currently in the TLB and the configuration cache.
    pub fn cached(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.tlb.len(), s.cfgc.len())
    }

    /// Run `f` on the state, then deliver the wired interrupts it raised, lock released.
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let (out, pending) = {
            let mut s = self.state.lock();
            let out = f(&mut s);
            (out, std::mem::take(&mut s.pending))
        };
        if !pending.is_empty() {
            let h = self.irq.read().clone();
            if let Some(h) = h {
                for line in pending {
                    sched_point(Point::Irq);
                    h(line);
                }
            }
        }
        out
    }

    /// Translate one transaction of stream `sid` at input address `ia`.
    pub fn translate(&self, sid: u32, ia: Iova, access: Access) -> Outcome {
        sched_point(Point::Dma);
        self.with_state(|s| s.translate(&self.cfg, &self.mem, sid, ia.as_u64(), access))
    }

    /// A device read of `buf.len()` bytes at `ia` (one translation: the buffer must not cross
    /// the translated page).
    pub fn dma_read(&self, sid: u32, ia: Iova, buf: &mut [u8]) -> Result<Outcome, BusError> {
        let o = self.translate(sid, ia, Access::Read);
        match o.pa() {
            Some(pa) => self
                .mem
                .read_bytes(pa, buf)
                .map(|_| o)
                .map_err(|source| BusError::Memory { pa, source }),
            None => Err(BusError::Aborted(match o {
                Outcome::Aborted(r) => r,
                _ => AbortReason::GlobalAbort,
            })),
        }
    }

    /// A device write of `data` at `ia` (one translation).
    pub fn dma_write(&self, sid: u32, ia: Iova, data: &[u8]) -> Result<Outcome, BusError> {
        let o = self.translate(sid, ia, Access::Write);
        match o.pa() {
            Some(pa) => self
                .mem
                .write_bytes(pa, data)
                .map(|_| o)
                .map_err(|source| BusError::Memory { pa, source }),
            None => Err(BusError::Aborted(match o {
                Outcome::Aborted(r) => r,
                _ => AbortReason::GlobalAbort,
            })),
        }
    }
}

impl Mmio for SmmuV3 {
    fn read32(&self, offset: u64) -> u32 {
        self.state.lock().read32(&self.cfg, offset)
    }
    fn write32(&self, offset: u64, value: u32) {
        self.with_state(|s| s.write32(&self.cfg, &self.mem, offset, value))
    }
    fn read64(&self, offset: u64) -> u64 {
        self.state.lock().read64(&self.cfg, offset)
    }
    fn write64(&self, offset: u64, value: u64) {
        self.with_state(|s| s.write64(&self.cfg, &self.mem, offset, value))
    }
}
