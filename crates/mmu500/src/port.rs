//! A master's own way into the SMMU: what a TBU is to the device behind it.
//!
//! On an MMU-500 each master sits behind a TBU whose micro-TLB answers repeated translations
//! next to the device; only a micro-TLB miss travels to the shared TCU (the main TLB and the
//! walker). [`Port`] models that split. It belongs to one stream ID and one caller (`&mut
//! self`), keeps a direct-mapped micro-TLB of final results, and answers a hit without the
//! model's lock: one load of the model's register generation (bumped, under the lock, by every
//! register write, so by every TLBI, SMR/S2CR/CB change, sCR0 write and reset) proves the entry
//! still stands. Everything else — a miss, a fault, a bypass, any transaction while a trace
//! sink is installed — goes through [`Mmu500::translate`]'s path, so results, counters,
//! events and fault records are the same as without a port.
//!
//! Counting stays exact without atomic read-modify-writes: a port's hits live in its own
//! counter (only its owner writes it), which [`Mmu500::counters`] adds in and which folds into
//! the model's counters when the port is dropped.
//!
//! ```
//! use mmu500::{BypassReason, Mmu500Config, Mmu500, Translation};
//! use physmem::{PhysMem, Region};
//! use smmu_addr::{Iova, PhysAddr};
//! use smmu_arch::Access;
//! use std::sync::Arc;
//!
//! let mem = Arc::new(PhysMem::new(&[Region::new(physmem::PhysAddr::new(0x8000_0000), 16 << 20)])?);
//! let smmu = Mmu500::new(Mmu500Config::mmu500_ls1028a(), mem)?;
//! // The ENETC's port: its stream ID as it reaches the SMMU (TBU 1, ICID 0x29).
//! let mut enetc = smmu.port(0x429);
//! // Out of reset sCR0.CLIENTPD lets everything through, and the port says so as translate() would.
//! let t = enetc.translate(Iova::new(0x8000_1000), Access::Write)?;
//! assert_eq!(t, Translation::Bypass { pa: PhysAddr::new(0x8000_1000), reason: BypassReason::ClientPd });
//! assert_eq!(smmu.counters().bypass_clientpd, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::micro_tlb::{MicroTlb, StreamKey, PRIVATE};
use crate::{BusError, DmaFault, Mmu500, Translation};
use smmu_addr::Iova;
use smmu_arch::Access;
use smmu_sync::atomic::{AtomicU64, Ordering};
use smmu_sync::{sched_point, Arc, Point};

/// Entries of a port's micro-TLB (direct mapped, see [`MicroTlb`]).
pub const PORT_UTLB_ENTRIES: usize = 64;

/// One stream's port into the SMMU (see the module documentation). Create it with
/// [`Mmu500::port`].
pub struct Port {
    smmu: Arc<Mmu500>,
    sid: u32,
    /// Private to `sid`: only this port's misses fill it.
    utlb: MicroTlb<PORT_UTLB_ENTRIES, PRIVATE>,
    /// Transactions answered by `utlb`; written only by this port.
    hits: Arc<AtomicU64>,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("stream_id", &format_args!("{:#x}", self.sid))
            .finish_non_exhaustive()
    }
}

impl Port {
    pub(crate) fn new(smmu: Arc<Mmu500>, sid: u32, hits: Arc<AtomicU64>) -> Self {
        Port {
            smmu,
            sid,
            utlb: MicroTlb::default(),
            hits,
        }
    }

    /// This port's stream as its micro-TLB takes it (being private, the micro-TLB reads
    /// nothing of it, so building it costs nothing).
    #[inline]
    fn key(&self) -> StreamKey {
        StreamKey::new(self.sid)
    }

    /// The raw incoming stream ID (TBU bits included) this port issues.
    pub fn stream_id(&self) -> u32 {
        self.sid
    }

    /// The SMMU behind this port.
    pub fn smmu(&self) -> &Arc<Mmu500> {
        &self.smmu
    }

    /// One transaction: the same result as [`Mmu500::translate`] for this stream.
    // Always inlined, miss path included: called out of line, a hit paid a prologue and
    // epilogue for the registers the miss path needs; with the miss alone out of line, the two
    // paths' results met in a stack temporary that every hit copied. Inlined whole, a hit
    // costs what it did before the translation pipeline (callgrind over `examples/hit_loop.rs`:
    // 43 instructions per iteration, against 42 then and 74 before this change).
    #[inline(always)]
    pub fn translate(&mut self, iova: Iova, access: Access) -> Result<Translation, DmaFault> {
        sched_point(Point::Dma);
        let iova = iova.as_u64();
        // Acquire pairs with the release store of a register write: an entry filled before
        // that write is never used after it. The published generation carries the tracing bit,
        // which no entry has.
        let gen = self.smmu.gen.load(Ordering::Acquire);
        if let Some(u) = self.utlb.lookup(self.key(), iova, access, gen) {
            // Single writer: a plain load and store, no locked instruction.
            self.hits
                .store(self.hits.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            return Ok(u.translation(iova));
        }
        let (r, fill) = self.smmu.translate_at_tcu(self.sid, iova, access);
        if let Some(f) = fill {
            self.utlb.fill(f);
        }
        r
    }

    /// A device read of `buf.len()` bytes at `iova` (see [`Mmu500::dma_read`]).
    pub fn dma_read(&mut self, iova: Iova, buf: &mut [u8]) -> Result<Vec<Translation>, BusError> {
        let mem = self.smmu.mem.clone();
        crate::dma_read_via(&mem, |a, acc| self.translate(a, acc), iova, buf)
    }

    /// A device write of `data` at `iova` (see [`Mmu500::dma_write`]).
    pub fn dma_write(&mut self, iova: Iova, data: &[u8]) -> Result<Vec<Translation>, BusError> {
        let mem = self.smmu.mem.clone();
        crate::dma_write_via(&mem, |a, acc| self.translate(a, acc), iova, data)
    }
}

/// A port's micro-TLB at one moment ([`Port::snapshot`]).
#[derive(Debug, Clone)]
pub struct PortSnapshot {
    sid: u32,
    utlb: MicroTlb<PORT_UTLB_ENTRIES, PRIVATE>,
}

impl Port {
    /// This port's micro-TLB now (its hit count is saved with the model's
    /// [`Mmu500::snapshot`]).
    pub fn snapshot(&self) -> PortSnapshot {
        PortSnapshot {
            sid: self.sid,
            utlb: self.utlb.clone(),
        }
    }

    /// Put back the micro-TLB of `s`, taken of a port of the same stream (refused otherwise,
    /// changing nothing). Restore the model with it: an entry is good for the register
    /// generation it was filled at.
    pub fn restore(&mut self, s: &PortSnapshot) -> Result<(), crate::ModelSnapshotError> {
        if s.sid != self.sid {
            return Err(crate::ModelSnapshotError::StreamDiffers {
                snapshot: s.sid,
                port: self.sid,
            });
        }
        self.utlb.clone_from(&s.utlb);
        Ok(())
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.smmu.retire_port(&self.hits);
    }
}
