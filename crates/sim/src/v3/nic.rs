//! A flooded PCI function behind an SMMUv3: its driver (no `.shutdown`, like `fsl_enetc`) keeps
//! a small receive ring mapped through the DMA API, and its hardware writes each received frame
//! through the SMMU model with its stream ID.
//!
//! Each ring slot is one page from kernel memory, mapped `DMA_FROM_DEVICE`. The hardware takes
//! the oldest posted slot, writes a frame (a pattern unique to the slot's sequence number) at
//! its DMA address, and marks it done; the driver's poll unmaps a done slot, checks the frame
//! arrived where the mapping says, and maps a fresh page. The ownership evidence is kept where
//! it happens: a write that bypassed translation is stray (its address is the DMA address used
//! as a physical one), a translated write outside the slot's page is foreign, a terminated one is
//! blocked, and a completed write the driver does not find is lost.

use crate::ownership::DmaEvidence;
use iommu::{DeviceId, DmaDirection, DmaError, IommuCore, Oops};
use physmem::{FrameAllocator, PhysAddr, PhysMem, FRAME_SIZE};
use smmu_addr::DmaAddr;
use smmu_sync::{Arc, Mutex};
use smmuv3::{Outcome, SmmuV3};
use std::collections::VecDeque;

/// Receive buffers the driver keeps posted.
pub const RING: usize = 4;
/// Bytes per received frame (an echo request, as in the seed's ping flood).
pub const FRAME_LEN: usize = 98;

/// One posted receive buffer.
#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: u32,
    dma: DmaAddr,
    pa: u64,
}

/// What the function's counters say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// Frames the hardware wrote (whatever the SMMU did with them).
    pub rx_written: u64,
    /// Frames the driver found and delivered.
    pub rx_delivered: u64,
    /// Frames the hardware had no posted buffer for.
    pub rx_dropped: u64,
    /// Completed writes whose data the driver did not find.
    pub lost_writes: u64,
    /// DMA-API calls that failed with a typed error (safe core).
    pub dma_api_errors: u64,
    /// Where the transactions went.
    pub bus: DmaEvidence,
}

#[derive(Default)]
struct Ring {
    posted: VecDeque<Slot>,
    done: VecDeque<(Slot, bool)>,
    next_seq: u32,
}

/// The driver and hardware halves of one flooded function.
pub struct FloodedFunction {
    /// Its name (`0000:00:01.0`).
    pub name: String,
    dev: DeviceId,
    sid: u32,
    core: Arc<IommuCore>,
    mem: Arc<PhysMem>,
    kmem: Arc<FrameAllocator>,
    ring: Mutex<Ring>,
    stats: Mutex<FunctionStats>,
    flood_left: Mutex<u32>,
}

/// The frame of sequence number `seq`.
fn frame(seq: u32) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    for (i, b) in f.iter_mut().enumerate() {
        *b = (i as u32)
            .wrapping_mul(13)
            .wrapping_add(seq.wrapping_mul(7)) as u8
            | 1;
    }
    f
}

impl FloodedFunction {
    /// The driver's probe: fill the receive ring. An error is the probe failing.
    pub fn probe(
        name: &str,
        dev: DeviceId,
        sid: u32,
        flood: u32,
        core: Arc<IommuCore>,
        mem: Arc<PhysMem>,
        kmem: Arc<FrameAllocator>,
    ) -> Result<Arc<FloodedFunction>, DmaError> {
        let f = Arc::new(FloodedFunction {
            name: name.to_string(),
            dev,
            sid,
            core,
            mem,
            kmem,
            ring: Mutex::new(Ring::default()),
            stats: Mutex::new(FunctionStats::default()),
            flood_left: Mutex::new(flood),
        });
        for _ in 0..RING {
            f.post()?;
        }
        Ok(f)
    }

    /// Counters so far.
    pub fn stats(&self) -> FunctionStats {
        self.stats.lock().clone()
    }

    /// Map a fresh page and post it.
    fn post(&self) -> Result<(), DmaError> {
        let pa = self
            .kmem
            .alloc(FRAME_SIZE)
            .map_err(|_| DmaError::Invalid("receive buffer pool exhausted"))?
            .as_u64();
        let dma = self.core.dma_map_page(
            self.dev,
            PhysAddr::new(pa),
            FRAME_SIZE,
            DmaDirection::FromDevice,
        )?;
        let mut r = self.ring.lock();
        let seq = r.next_seq;
        r.next_seq = r.next_seq.wrapping_add(1);
        r.posted.push_back(Slot { seq, dma, pa });
        Ok(())
    }

    /// One NAPI poll: unmap every completed buffer, check its frame, post a fresh one. The
    /// NULL-group oops of a Linux-faithful core is returned, not printed.
    pub fn poll(&self) -> Result<(), Oops> {
        loop {
            let Some((slot, written)) = self.ring.lock().done.pop_front() else {
                return Ok(());
            };
            match self
                .core
                .dma_unmap_page(self.dev, slot.dma, FRAME_SIZE, DmaDirection::FromDevice)
            {
                Err(DmaError::Oops(o)) => return Err(o),
                Err(_) => self.stats.lock().dma_api_errors += 1,
                Ok(()) => {}
            }
            if written {
                let mut got = [0u8; FRAME_LEN];
                let found = self
                    .mem
                    .read_bytes(PhysAddr::new(slot.pa), &mut got)
                    .is_ok()
                    && got == frame(slot.seq);
                let mut s = self.stats.lock();
                if found {
                    s.rx_delivered += 1;
                } else {
                    s.lost_writes += 1;
                }
            }
            let _ = self.kmem.free(PhysAddr::new(slot.pa), FRAME_SIZE);
            match self.post() {
                Err(DmaError::Oops(o)) => return Err(o),
                Err(_) => self.stats.lock().dma_api_errors += 1,
                Ok(()) => {}
            }
        }
    }

    /// The hardware: receive one frame of the flood into the oldest posted buffer, through the
    /// SMMU. Returns false once the flood is over.
    pub fn hw_step(&self, smmu: &SmmuV3) -> bool {
        {
            let mut left = self.flood_left.lock();
            if *left == 0 {
                return false;
            }
            *left -= 1;
        }
        let Some(slot) = self.ring.lock().posted.pop_front() else {
            self.stats.lock().rx_dropped += 1;
            return true;
        };
        let data = frame(slot.seq);
        let r = smmu.dma_write(self.sid, slot.dma.bus_iova(), &data);
        let mut s = self.stats.lock();
        s.rx_written += 1;
        s.bus.transactions += 1;
        let written = match r {
            Ok(Outcome::Translated { pa }) => {
                if pa < slot.pa || pa + FRAME_LEN as u64 > slot.pa + FRAME_SIZE {
                    s.bus.foreign_writes += 1;
                }
                true
            }
            Ok(Outcome::Bypassed { pa, .. }) => {
                s.bus.stray_writes += 1;
                if s.bus.stray_write_addrs.len() < crate::ownership::STRAY_ADDRS_KEPT {
                    s.bus.stray_write_addrs.push(pa);
                }
                false
            }
            Ok(Outcome::Aborted(_)) | Err(smmuv3::BusError::Aborted(_)) => {
                s.bus.blocked += 1;
                false
            }
            // Bypassed to an address that is not memory: stray all the same.
            Err(smmuv3::BusError::Memory { pa, .. }) => {
                s.bus.stray_writes += 1;
                if s.bus.stray_write_addrs.len() < crate::ownership::STRAY_ADDRS_KEPT {
                    s.bus.stray_write_addrs.push(pa);
                }
                false
            }
        };
        drop(s);
        self.ring.lock().done.push_back((slot, written));
        true
    }
}
