//! A register-accurate model of an Arm SMMUv2: the MMU-500 of the NXP LS1028A (the seed
//! machine), a generic SMMUv2 and an MMU-401, built from one [`Mmu500Config`].
//!
//! A driver written from the architecture programs it through [`smmu_arch::Mmio`] (GR0, GR1 and
//! context-bank pages at the architected offsets) and sees what silicon would show: ID registers
//! generated from the configuration, reset values, write-1-to-clear fault status, RAZ/WI for
//! unimplemented space, stream matching with SMCF/USF global faults whose syndromes keep the
//! first fault (MULTI for the rest), context faults, a finite TLB whose stale entries survive
//! until the right invalidation, the ATS1PR address translation operation, and interrupt lines.
//!
//! Devices reach memory through [`Mmu500::translate`], [`Mmu500::dma_read`] and
//! [`Mmu500::dma_write`], which report how each transaction was resolved (translated, bypassed
//! and why, or faulted) so a simulator can flag DMA that passed untranslated. A device model
//! that owns one master's traffic can go through a [`Port`] (that master's TBU) instead: the
//! same results, with repeats answered by the port's micro-TLB without the model's lock.
//!
//! The table walker (`walk`) is written from the VMSAv8-64 architecture, independently of the
//! `pgtable` crate, which tests use as the second implementation in a differential check.
//!
//! Concurrency: all state sits behind one `smmu_sync::Mutex`; every MMIO access and transaction
//! starts with a `sched_point` outside the lock; interrupt handlers and event sinks are called
//! after the lock is released (a handler reads registers).
//!
//! # Example
//!
//! The LS1028A's MMU-500 out of reset: ID registers from the configuration, traffic passing
//! untranslated while sCR0.CLIENTPD is set, and an unmatched stream faulting (USF in sGFSR) once
//! the SMMU is enabled with USFCFG set, as Linux programs it with `disable_bypass`.
//!
//! ```
//! use mmu500::{BypassReason, Mmu500Config, Mmu500, Translation};
//! use physmem::{PhysMem, Region};
//! use smmu_addr::{Iova, PageSize, PhysAddr};
//! use smmu_arch::{regs::{gr0, scr0}, Access, Mmio};
//! use std::sync::Arc;
//!
//! let mem = Arc::new(PhysMem::new(&[Region::new(physmem::PhysAddr::new(0x8000_0000), 16 << 20)])?);
//! let smmu = Mmu500::new(Mmu500Config::mmu500_ls1028a(), mem)?;
//! assert_eq!(smmu.read32(gr0::ID0) & 0xff, 128, "ID0.NUMSMRG: 128 stream match groups");
//!
//! let reset = smmu.read32(gr0::SCR0);
//! assert_ne!(reset & scr0::CLIENTPD, 0);
//! let t = smmu.translate(0x429, Iova::new(0x8000_1000), Access::Write)?;
//! assert_eq!(t, Translation::Bypass { pa: PhysAddr::new(0x8000_1000), reason: BypassReason::ClientPd });
//!
//! smmu.write32(gr0::SCR0, (reset & !scr0::CLIENTPD) | scr0::USFCFG);
//! assert!(smmu.translate(0x429, Iova::new(0x8000_1000), Access::Write).is_err());
//! assert_eq!(smmu.read32(gr0::SGFSR), 0x2, "USF: no SMR matched the stream ID");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
pub mod hyp;
mod micro_tlb;
mod mmio;
mod port;
mod snapshot;
mod state;
mod tlb;
mod types;
mod walk;
mod xlate;

pub use config::{ArchVersion, IdDecode, Mmu500Config, Mmu500ConfigError};
pub use port::{Port, PortSnapshot, PORT_UTLB_ENTRIES};
pub use snapshot::{ModelSnapshot, ModelSnapshotError};
pub use types::{
    BusError, BypassReason, ContextFaultKind, DmaFault, GlobalFaultKind, Mmu500Counters, RegName,
    Space, TlbiOp, TraceEvent, Translation,
};

use physmem::PhysMem;
use smmu_addr::{Iova, PageSize, PhysAddr};
use smmu_arch::{Access, FaultIrq, Mmio};
use smmu_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use smmu_sync::{sched_point, Arc, Mutex, Point, RwLock};
use state::{Pending, State};

/// Bit of the published generation set while a trace sink is installed (`State::gen` never
/// reaches it), so no micro-TLB entry matches and every transaction takes the traced path.
const TRACING: u64 = 1 << 63;

/// Called with the line when an interrupt output rises.
pub type IrqHandler = Arc<dyn Fn(FaultIrq) + Send + Sync>;
/// Receives every [`TraceEvent`] (the simulator's trace).
pub type EventSink = Arc<dyn Fn(&TraceEvent) + Send + Sync>;

/// The SMMU model. Share it with `Arc`; every method takes `&self`.
pub struct Mmu500 {
    cfg: Mmu500Config,
    mem: Arc<PhysMem>,
    state: Mutex<State>,
    irq_handler: RwLock<Option<IrqHandler>>,
    event_sink: RwLock<Option<EventSink>>,
    tracing: AtomicBool,
    /// `State::gen` as last published under the lock (release), with [`TRACING`] set while a
    /// trace sink is installed: what a [`Port`] checks its micro-TLB against without taking
    /// the lock (one load decides both "nothing changed" and "no event to emit").
    gen: AtomicU64,
    /// Hit counters of live ports (added into [`Mmu500::counters`]). Lock order: `state`
    /// before `ports`.
    ports: Mutex<Vec<Arc<AtomicU64>>>,
}

impl std::fmt::Debug for Mmu500 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mmu500")
            .field("config", &self.cfg.name)
            .finish_non_exhaustive()
    }
}

impl Mmu500 {
    /// A model in its reset state, walking tables in `mem`.
    pub fn new(config: Mmu500Config, mem: Arc<PhysMem>) -> Result<Arc<Mmu500>, Mmu500ConfigError> {
        config.validate()?;
        let state = State::new(&config);
        Ok(Arc::new(Mmu500 {
            gen: AtomicU64::new(state.regs.gen),
            state: Mutex::new(state),
            cfg: config,
            mem,
            irq_handler: RwLock::new(None),
            event_sink: RwLock::new(None),
            tracing: AtomicBool::new(false),
            ports: Mutex::new(Vec::new()),
        }))
    }

    /// The configuration this instance was built from.
    pub fn config(&self) -> &Mmu500Config {
        &self.cfg
    }

    /// Bytes of the register window (`2 * numpage` pages).
    pub fn window_size(&self) -> u64 {
        self.cfg.window_size()
    }

    /// Return every register, the TLB and the counters to their reset state (a board reset).
    pub fn reset(&self) {
        let mut s = self.state.lock();
        // The generation keeps counting across a reset, so no micro-TLB entry survives it.
        let gen = s.regs.gen + 1;
        *s = State::new(&self.cfg);
        s.regs.gen = gen;
        // Context epochs keep counting too: nothing walked before the reset shares one.
        for b in &mut s.regs.banks {
            b.epoch = gen;
        }
        self.publish(&s);
        for hits in self.ports.lock().iter() {
            hits.store(0, Ordering::Relaxed);
        }
    }

    /// Context bank `cb`'s context epoch: the register generation of the last write to one of
    /// its translation-regime registers (SCTLR, TCR, TCR2, TTBR0/1, CONTEXTIDR, MAIR0/1, CBAR,
    /// CBA2R). Every [`Translation::Translated`] reports the epoch its tables (or TLB entry)
    /// came from, so a checker that reads the epoch when a domain's bank is torn down can
    /// recognise, from the model's own state, any later translation by that domain's tables
    /// or stale TLB entries. `None` for a bank that does not exist.
    pub fn context_epoch(&self, cb: u16) -> Option<u64> {
        self.state
            .lock()
            .regs
            .banks
            .get(usize::from(cb))
            .map(|b| b.epoch)
    }

    /// A port for stream `stream_id` (the raw incoming ID, TBU bits included): translations
    /// through a private micro-TLB, as a TBU gives the master behind it (see [`Port`]).
    pub fn port(self: &Arc<Self>, stream_id: u32) -> Port {
        let hits = Arc::new(AtomicU64::new(0));
        self.ports.lock().push(hits.clone());
        Port::new(self.clone(), stream_id, hits)
    }

    /// Fold a dropped port's hits into the counters and forget it.
    fn retire_port(&self, hits: &Arc<AtomicU64>) {
        let mut s = self.state.lock();
        let mut ports = self.ports.lock();
        add_port_hits(&mut s.counters, hits.load(Ordering::Relaxed));
        ports.retain(|p| !Arc::ptr_eq(p, hits));
    }

    /// Install the interrupt callback, called (outside the model's lock) when a line rises: a
    /// new fault while its enable bit is set, or an enable set while a fault is pending.
    pub fn set_irq_handler(&self, handler: IrqHandler) {
        *self.irq_handler.write() = Some(handler);
    }

    /// Remove the interrupt callback.
    pub fn clear_irq_handler(&self) {
        *self.irq_handler.write() = None;
    }

    /// Install the trace sink.
    pub fn set_event_sink(&self, sink: EventSink) {
        *self.event_sink.write() = Some(sink);
        let s = self.state.lock();
        self.tracing.store(true, Ordering::Release);
        self.publish(&s);
    }

    /// Remove the trace sink.
    pub fn clear_event_sink(&self) {
        *self.event_sink.write() = None;
        let s = self.state.lock();
        self.tracing.store(false, Ordering::Release);
        self.publish(&s);
    }

    /// Publish the register generation (and the tracing bit) for ports; called with the lock
    /// held after anything that bumps `gen`.
    fn publish(&self, s: &State) {
        let trace = if self.tracing.load(Ordering::Relaxed) {
            TRACING
        } else {
            0
        };
        self.gen.store(s.regs.gen | trace, Ordering::Release);
    }

    /// Level of an interrupt line: fault status nonzero and its enable set.
    pub fn irq_pending(&self, line: FaultIrq) -> bool {
        self.state.lock().regs.irq_level(&self.cfg, line)
    }

    /// Snapshot of the counters.
    pub fn counters(&self) -> Mmu500Counters {
        let s = self.state.lock();
        let mut c = s.counters.clone();
        for hits in self.ports.lock().iter() {
            add_port_hits(&mut c, hits.load(Ordering::Relaxed));
        }
        c
    }

    /// A privileged ATS1PR/ATS1PW-style translation through context bank `cb`, returned as a
    /// PAR value without touching any register: walks afresh with no TLB lookup or fill and
    /// records no fault. For benchmarks that compare the model's walk with a software walk
    /// (feature `bench-internals`).
    #[cfg(feature = "bench-internals")]
    pub fn walk_only(&self, cb: usize, va: u64, access: Access) -> u64 {
        let mut s = self.state.lock();
        xlate::ats(&mut s, &self.cfg, &self.mem, cb, va, access)
    }

    /// The walker a TLB miss through stage-1 bank `cb` runs, detached from the model: a
    /// snapshot of the bank's decoded registers, so it walks without the lock and without the
    /// TLB. `None` unless the bank is a stage-1-only context. For measuring the walk on
    /// its own against a software walk (benches/translate.rs); it does not follow later
    /// register writes. Feature `bench-internals`.
    #[cfg(feature = "bench-internals")]
    pub fn detached_walk(&self, cb: usize) -> Option<DetachedWalk> {
        let f = self.state.lock().stage1_regime(&self.cfg, cb)?;
        Some(DetachedWalk {
            mem: self.mem.clone(),
            regime: f,
        })
    }

    /// Live TLB entries.
    pub fn tlb_entries(&self) -> usize {
        self.state.lock().caches.tlb.len()
    }

    /// The architected name of the register at `offset`, if any.
    pub fn reg_name(&self, offset: u64) -> Option<RegName> {
        mmio::reg_name(&self.cfg, offset)
    }

    fn pending(&self) -> Pending {
        Pending {
            trace: self.tracing.load(Ordering::Acquire),
            ..Pending::default()
        }
    }

    /// Deliver events and interrupts gathered under the lock (which must be released).
    fn finish(&self, p: Pending) {
        if !p.events.is_empty() {
            let sink = self.event_sink.read().clone();
            if let Some(sink) = sink {
                for e in &p.events {
                    sink(e);
                }
            }
        }
        if !p.raised.is_empty() {
            let handler = self.irq_handler.read().clone();
            if let Some(h) = handler {
                for line in p.raised {
                    sched_point(Point::Irq);
                    h(line);
                }
            }
        }
    }

    /// One transaction from stream `stream_id` (the raw incoming ID, TBU bits included) at
    /// input address `iova`.
    pub fn translate(
        &self,
        stream_id: u32,
        iova: Iova,
        access: Access,
    ) -> Result<Translation, DmaFault> {
        sched_point(Point::Dma);
        self.translate_at_tcu(stream_id, iova.as_u64(), access).0
    }

    /// The shared part of a transaction (under the lock), with the micro-TLB entry it filled.
    fn translate_at_tcu(
        &self,
        stream_id: u32,
        iova: u64,
        access: Access,
    ) -> (Result<Translation, DmaFault>, Option<micro_tlb::MicroEntry>) {
        let mut p = self.pending();
        let r = self
            .state
            .lock()
            .translate(&self.cfg, &self.mem, stream_id, iova, access, &mut p);
        let fill = p.fill.take();
        if p.trace || !p.raised.is_empty() {
            self.finish(p);
        }
        (r, fill)
    }

    /// A device read of `buf.len()` bytes at `iova`. Returns each chunk's translation; a fault
    /// terminates the transfer (bytes before it were read).
    pub fn dma_read(
        &self,
        stream_id: u32,
        iova: Iova,
        buf: &mut [u8],
    ) -> Result<Vec<Translation>, BusError> {
        dma_read_via(
            &self.mem,
            |a, acc| self.translate(stream_id, a, acc),
            iova,
            buf,
        )
    }

    /// A device write of `data` at `iova`. Returns each chunk's translation; a fault terminates
    /// the transfer (bytes before it were written).
    pub fn dma_write(
        &self,
        stream_id: u32,
        iova: Iova,
        data: &[u8],
    ) -> Result<Vec<Translation>, BusError> {
        dma_write_via(
            &self.mem,
            |a, acc| self.translate(stream_id, a, acc),
            iova,
            data,
        )
    }
}

/// See [`Mmu500::detached_walk`] (feature `bench-internals`).
#[cfg(feature = "bench-internals")]
pub struct DetachedWalk {
    mem: Arc<PhysMem>,
    regime: xlate::S1Regime,
}

#[cfg(feature = "bench-internals")]
impl DetachedWalk {
    /// The output address of `va` by the model's walk, or `None` when the walk faults.
    #[inline]
    pub fn walk(&self, va: u64) -> Option<u64> {
        self.regime.walk_only(&self.mem, va)
    }
}

/// Count `n` port hits: each is a transaction translated by a (micro-)TLB hit.
fn add_port_hits(c: &mut Mmu500Counters, n: u64) {
    c.transactions += n;
    c.tlb_hits += n;
    c.translated += n;
}

/// A device read of `buf.len()` bytes at `iova`, each chunk translated by `translate`.
fn dma_read_via(
    mem: &PhysMem,
    translate: impl FnMut(Iova, Access) -> Result<Translation, DmaFault>,
    iova: Iova,
    buf: &mut [u8],
) -> Result<Vec<Translation>, BusError> {
    let len = buf.len();
    dma_chunks(translate, iova, len, Access::Read, |pa, r| {
        mem.read_bytes(pa, buf.get_mut(r).unwrap_or_default())
    })
}

/// A device write of `data` at `iova`, each chunk translated by `translate`.
fn dma_write_via(
    mem: &PhysMem,
    translate: impl FnMut(Iova, Access) -> Result<Translation, DmaFault>,
    iova: Iova,
    data: &[u8],
) -> Result<Vec<Translation>, BusError> {
    dma_chunks(translate, iova, data.len(), Access::Write, |pa, r| {
        mem.write_bytes(pa, data.get(r).unwrap_or_default())
    })
}

/// Split `[iova, iova + len)` into transactions no larger than the mapping they hit, translate
/// each with `translate` and run `f(pa, range)` on each translated chunk.
fn dma_chunks(
    mut translate: impl FnMut(Iova, Access) -> Result<Translation, DmaFault>,
    iova: Iova,
    len: usize,
    access: Access,
    mut f: impl FnMut(PhysAddr, std::ops::Range<usize>) -> Result<(), physmem::PhysError>,
) -> Result<Vec<Translation>, BusError> {
    if iova.checked_add(len as u64).is_none() {
        return Err(BusError::Wrap { iova, len });
    }
    let mut out = Vec::with_capacity(1 + len / 4096);
    let mut done = 0usize;
    while done < len {
        // In range: `iova + len` does not wrap (checked above) and `done < len`.
        let addr = Iova::new(iova.as_u64() + done as u64);
        let t = translate(addr, access).map_err(|fault| BusError::Fault { fault, done })?;
        let chunk_size = match t {
            Translation::Translated { leaf_size, .. } => leaf_size,
            // Untranslated traffic is split at frames, the granule of simulated memory.
            Translation::Bypass { .. } => PageSize::SZ_4K,
        };
        let room = chunk_size.bytes() - addr.page_offset(chunk_size);
        let n = (room.min((len - done) as u64)) as usize;
        f(t.pa(), done..done + n).map_err(|_| BusError::Unbacked {
            pa: t.pa(),
            done,
            translation: t,
        })?;
        out.push(t);
        done += n;
    }
    Ok(out)
}

impl Mmio for Mmu500 {
    fn read32(&self, offset: u64) -> u32 {
        sched_point(Point::Mmio);
        self.state.lock().read32(&self.cfg, offset)
    }

    fn write32(&self, offset: u64, value: u32) {
        sched_point(Point::Mmio);
        let mut p = self.pending();
        p.event(|| TraceEvent::MmioWrite {
            offset,
            value: u64::from(value),
            width: 32,
            name: mmio::reg_name(&self.cfg, offset),
        });
        {
            let mut s = self.state.lock();
            s.write32(&self.cfg, &self.mem, offset, value, &mut p);
            self.publish(&s);
        }
        self.finish(p);
    }

    fn read64(&self, offset: u64) -> u64 {
        sched_point(Point::Mmio);
        self.state.lock().read64(&self.cfg, offset)
    }

    fn write64(&self, offset: u64, value: u64) {
        sched_point(Point::Mmio);
        let mut p = self.pending();
        p.event(|| TraceEvent::MmioWrite {
            offset,
            value,
            width: 64,
            name: mmio::reg_name(&self.cfg, offset),
        });
        {
            let mut s = self.state.lock();
            s.write64(&self.cfg, &self.mem, offset, value, &mut p);
            self.publish(&s);
        }
        self.finish(p);
    }
}
