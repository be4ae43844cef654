//! A generic DMA master (think SATA, USB, eDMA): the driver half maps one buffer per job
//! (alternately `DMA_FROM_DEVICE` and `DMA_TO_DEVICE`), the device half moves it through the
//! SMMU model with the master's wire stream ID, and the driver checks and unmaps it after
//! completion and queues the next. A job advances one phase per [`DmaEngine::step`] (map; transfer;
//! check, unmap and map the next), so a shutdown can run between the map, the transfer and the
//! unmap, as it can on a real machine.
//!
//! The same ownership evidence as the ENETC's is kept: a transaction that bypassed translation
//! is stray, one translated outside the mapping is foreign, and a completed device write the
//! driver does not find is lost. A driver with `.shutdown` calls [`DmaEngine::stop`] from it, so
//! its traffic ends before the SMMU's shutdown; one without keeps going.

use crate::enetc::Crash;
use crate::ownership::{self, DmaEvidence, OwnershipMap, RetiredContexts};
use iommu::{DeviceId, DmaDirection, DmaError, IommuCore};
use mmu500::Mmu500;
use physmem::{FrameAllocator, PhysAddr, PhysMem, FRAME_SIZE};
use smmu_addr::DmaAddr;
use smmu_sync::atomic::{AtomicBool, Ordering};
use smmu_sync::{sched_point, Arc, Mutex, Point};

/// Bytes moved per job.
pub const JOB_LEN: u64 = 512;

/// Identity of one engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The master's device name (`3200000.sata`).
    pub device: String,
    /// Its driver's name (`ahci-qoriq`); the oops frames are named after it.
    pub driver: String,
    /// Stream ID on the wire (TBU bits included where the board knows them).
    pub stream_id: u32,
}

/// What the engine saw; the verdict adds it to the NIC's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Jobs mapped by the driver.
    pub submitted: u64,
    /// Jobs checked and unmapped by the driver.
    pub completed: u64,
    /// Device-to-memory transfers that completed.
    pub writes_done: u64,
    /// Memory-to-device transfers that completed.
    pub reads_done: u64,
    /// Completed device writes whose data the driver did not find.
    pub lost_writes: u64,
    /// DMA-API calls that failed with a typed error (safe mode).
    pub dma_api_errors: u64,
    /// The driver's `.shutdown` stopped the engine.
    pub stopped: bool,
    /// Where its transactions went: blocked, stray, foreign.
    pub bus: DmaEvidence,
}

/// Where the current job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No job: the driver submits the next one.
    Idle,
    /// Mapped, waiting for the device.
    Mapped(Job),
    /// The device is done (`ok`: its transfer completed).
    Done(Job, bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Job {
    seq: u32,
    dma: DmaAddr,
    pa: PhysAddr,
    dir: DmaDirection,
}

/// An engine's job, stop flag, counters and ownership map at one moment
/// ([`DmaEngine::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSnapshot {
    phase: (Phase, u32),
    stopped: bool,
    stats: EngineStats,
    owned: std::collections::BTreeMap<DmaAddr, PhysAddr>,
}

/// One generic DMA master: its driver and its hardware.
pub struct DmaEngine {
    cfg: EngineConfig,
    dev: DeviceId,
    core: Arc<IommuCore>,
    smmu: Arc<Mmu500>,
    mem: Arc<PhysMem>,
    kmem: Arc<FrameAllocator>,
    owned: OwnershipMap,
    retired: Arc<RetiredContexts>,
    phase: Mutex<(Phase, u32)>,
    stopped: AtomicBool,
    stats: Mutex<EngineStats>,
}

/// Recognisable bytes of job `seq`, so a lost or misdirected transfer shows.
fn pattern(seq: u32) -> Vec<u8> {
    (0..JOB_LEN as u32)
        .map(|i| i.wrapping_mul(17).wrapping_add(seq.wrapping_mul(101)) as u8)
        .collect()
}

impl DmaEngine {
    /// The driver's probe: the engine is idle until [`DmaEngine::step`] is called.
    pub fn new(
        cfg: EngineConfig,
        dev: DeviceId,
        core: Arc<IommuCore>,
        smmu: Arc<Mmu500>,
        mem: Arc<PhysMem>,
        kmem: Arc<FrameAllocator>,
        retired: Arc<RetiredContexts>,
    ) -> Arc<DmaEngine> {
        Arc::new(DmaEngine {
            cfg,
            dev,
            core,
            smmu,
            mem,
            kmem,
            owned: OwnershipMap::default(),
            retired,
            phase: Mutex::new((Phase::Idle, 0)),
            stopped: AtomicBool::new(false),
            stats: Mutex::new(EngineStats::default()),
        })
    }

    /// The engine's state now (for the booted-machine snapshot). Take it while it is idle.
    pub fn snapshot(&self) -> EngineSnapshot {
        EngineSnapshot {
            phase: *self.phase.lock(),
            stopped: self.stopped.load(Ordering::SeqCst),
            stats: self.stats.lock().clone(),
            owned: self.owned.snapshot(),
        }
    }

    /// Put the state of `s` back.
    pub fn restore(&self, s: &EngineSnapshot) {
        *self.phase.lock() = s.phase;
        self.stopped.store(s.stopped, Ordering::SeqCst);
        self.stats.lock().clone_from(&s.stats);
        self.owned.restore(&s.owned);
    }

    /// Who this engine is.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// What the engine has seen so far.
    pub fn stats(&self) -> EngineStats {
        self.stats.lock().clone()
    }

    /// The driver's `.shutdown`: no further DMA from this master.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.stats.lock().stopped = true;
    }

    /// Whether [`DmaEngine::stop`] ran.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn crash(&self, mut oops: iommu::Oops, what: &str) -> Box<Crash> {
        let drv = self.cfg.driver.replace('-', "_");
        oops.call_trace.push(format!("{drv}_{what}"));
        oops.call_trace.extend(
            [
                "process_one_work",
                "worker_thread",
                "kthread",
                "ret_from_fork",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        Box::new(Crash {
            oops,
            cpu: 0,
            pid: 31,
            comm: "kworker/0:2".into(),
        })
    }

    /// Advance the current job by one phase. `Ok(false)`: nothing done (stopped, or no memory).
    pub fn step(&self) -> Result<bool, Box<Crash>> {
        if self.stopped() {
            return Ok(false);
        }
        let phase = self.phase.lock().0;
        match phase {
            Phase::Idle => self.submit(),
            Phase::Mapped(job) => {
                let ok = self.transfer(&job);
                self.phase.lock().0 = Phase::Done(job, ok);
                Ok(true)
            }
            // The completion handler queues the next job at once.
            Phase::Done(job, ok) => {
                self.complete(job, ok)?;
                if self.stopped() {
                    return Ok(true);
                }
                self.submit()
            }
        }
    }

    /// The device alone, its driver gone (the kernel that programmed it was replaced by kexec):
    /// it keeps moving the job it was last given, at the DMA address that kernel mapped.
    /// Returns whether it issued DMA.
    pub fn device_step(&self) -> bool {
        if self.stopped() {
            return false;
        }
        let phase = self.phase.lock().0;
        match phase {
            Phase::Idle => false,
            Phase::Mapped(job) | Phase::Done(job, _) => {
                self.transfer(&job);
                true
            }
        }
    }

    /// Driver: allocate and map the next job's buffer.
    fn submit(&self) -> Result<bool, Box<Crash>> {
        sched_point(Point::Kernel);
        let seq = {
            let mut p = self.phase.lock();
            p.1 = p.1.wrapping_add(1);
            p.1
        };
        let dir = if seq % 2 == 1 {
            DmaDirection::FromDevice
        } else {
            DmaDirection::ToDevice
        };
        let Ok(pa) = self.kmem.alloc(FRAME_SIZE) else {
            return Ok(false);
        };
        let fill = match dir {
            DmaDirection::ToDevice => pattern(seq),
            _ => vec![0u8; JOB_LEN as usize],
        };
        let _ = self.mem.write_bytes(pa, &fill);
        match self.core.dma_map_page(self.dev, pa, JOB_LEN, dir) {
            Ok(dma) => {
                self.owned.insert(dma, pa);
                self.stats.lock().submitted += 1;
                self.phase.lock().0 = Phase::Mapped(Job { seq, dma, pa, dir });
                Ok(true)
            }
            Err(e) => {
                let _ = self.kmem.free(pa, FRAME_SIZE);
                match e {
                    DmaError::Oops(o) => Err(self.crash(o, "submit")),
                    _ => {
                        self.stats.lock().dma_api_errors += 1;
                        Ok(true)
                    }
                }
            }
        }
    }

    /// Device: move the job's bytes through the SMMU.
    fn transfer(&self, job: &Job) -> bool {
        let write = job.dir == DmaDirection::FromDevice;
        let r = if write {
            self.smmu
                .dma_write(self.cfg.stream_id, job.dma.bus_iova(), &pattern(job.seq))
        } else {
            let mut buf = vec![0u8; JOB_LEN as usize];
            self.smmu
                .dma_read(self.cfg.stream_id, job.dma.bus_iova(), &mut buf)
        };
        let mut ev = DmaEvidence::default();
        let ok = ownership::account(&self.owned, &self.retired, job.dma, write, r, &mut ev);
        let mut st = self.stats.lock();
        st.bus.merge(&ev);
        if ok {
            if write {
                st.writes_done += 1;
            } else {
                st.reads_done += 1;
            }
        }
        ok
    }

    /// Driver: check a device write, give up ownership, unmap, free.
    fn complete(&self, job: Job, ok: bool) -> Result<bool, Box<Crash>> {
        sched_point(Point::Kernel);
        self.phase.lock().0 = Phase::Idle;
        if ok && job.dir == DmaDirection::FromDevice {
            let mut got = vec![0u8; JOB_LEN as usize];
            let _ = self.mem.read_bytes(job.pa, &mut got);
            if got != pattern(job.seq) {
                self.stats.lock().lost_writes += 1;
            }
        }
        self.owned.remove(job.dma);
        let r = self
            .core
            .dma_unmap_page(self.dev, job.dma, JOB_LEN, job.dir);
        let _ = self.kmem.free(job.pa, FRAME_SIZE);
        match r {
            Ok(()) => {
                self.stats.lock().completed += 1;
                Ok(true)
            }
            Err(DmaError::Oops(o)) => Err(self.crash(o, "complete")),
            Err(_) => {
                self.stats.lock().dma_api_errors += 1;
                Ok(true)
            }
        }
    }
}
