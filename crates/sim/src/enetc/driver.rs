//! The `fsl_enetc` driver half: probe/open, `ndo_start_xmit`, the MSI-X handler and
//! `enetc_poll`, each running in the context the execution model gives it.

use super::desc::{desc_at, read_flags, write_desc, DESC_SIZE, FLAG_FULL, FLAG_READY};
use super::frames;
use super::hw::{request_bytes, Hw};
use super::{EnetcConfig, NicStats, PING_LEN, RSS_ENTRIES};
use crate::exec::Context;
use crate::ownership::{OwnershipMap, RetiredContexts};
use iommu::{DeviceId, DmaDirection, DmaError, IommuCore, Oops};
use mmu500::Mmu500;
use physmem::{FrameAllocator, PhysAddr, PhysMem, FRAME_SIZE};
use smmu_addr::DmaAddr;
use smmu_sync::{sched_point, Arc, Mutex, Point};

/// Receive buffer size the driver maps.
const RX_BUF_LEN: u64 = 1536;
/// `ENETC_CBDR_DEFAULT_SIZE`: descriptors in the station interface's control BD ring.
const CBDR_DEFAULT_SIZE: u64 = 64;
/// `sizeof(struct enetc_cbd)`: one control descriptor.
const CBD_SIZE: u64 = 32;
/// `ENETC_CBD_DATA_MEM_ALIGN`: a control command's data buffer is allocated this much larger
/// than its data (`enetc_cbd_alloc_data_mem`), which starts at the next 64-byte boundary.
const CBD_DATA_MEM_ALIGN: u64 = 64;
/// `ENETC_DEFAULT_TX_WORK`: transmit completions one poll reclaims at most (half the ring).
fn tx_work(cfg: &EnetcConfig) -> usize {
    cfg.tx_ring_size / 2
}

/// The simulated kernel crashed in this driver: the oops plus the task it happened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// The oops the DMA API reported, with this driver's and its context's frames appended.
    pub oops: Oops,
    /// CPU the task ran on.
    pub cpu: u32,
    /// PID of the task.
    pub pid: u32,
    /// Task name (`kworker/0:1`, `ksoftirqd/0`).
    pub comm: String,
}

/// A use of freed memory the Linux-faithful DMA core detected (reported KASAN-style).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kasan {
    /// The function that used the freed object.
    pub function: &'static str,
    /// The freed object.
    pub object: &'static str,
    /// Where the call came from, innermost first.
    pub call_trace: Vec<String>,
    /// The task.
    pub cpu: u32,
    /// Its PID.
    pub pid: u32,
    /// Its name.
    pub comm: String,
}

#[derive(Clone, PartialEq, Eq)]
struct TxSlot {
    dma: DmaAddr,
    pa: PhysAddr,
    len: u64,
}

#[derive(Clone, PartialEq, Eq)]
struct RxSlot {
    dma: DmaAddr,
    pa: PhysAddr,
}

/// CPU-side state of one transmit ring.
#[derive(Clone, PartialEq, Eq)]
struct TxRing {
    slots: Vec<Option<TxSlot>>,
    head: usize,
    tail: usize,
}

/// CPU-side state of one receive ring.
#[derive(Clone, PartialEq, Eq)]
struct RxRing {
    slots: Vec<Option<RxSlot>>,
    next: usize,
}

/// CPU-side driver state: one RX and one TX ring per interrupt vector (`enetc_int_vector`).
/// ENETC enables all its transmit rings and gives vector *i* every ring *j* with
/// *j* mod vectors = *i*; smmu-lab models one transmit ring per vector, which the stack's
/// queue selection reaches the same way.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Driver {
    tx: Vec<TxRing>,
    rx: Vec<RxRing>,
}

impl Driver {
    /// Its (transmit, receive) ring counts: a snapshot fits only a function with the same.
    pub(super) fn ring_counts(&self) -> (usize, usize) {
        (self.tx.len(), self.rx.len())
    }
}

/// Which driver path a DMA-API call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Path {
    /// `enetc_start_xmit` for an MLD report (`mld_ifc_work`).
    MldXmit,
    /// `enetc_start_xmit` for an ICMP echo reply (from the receive softirq).
    PingXmit,
    /// `enetc_unmap_tx_buff` in `enetc_clean_tx_ring`.
    TxUnmap,
    /// Receive refill in `enetc_refill_rx_ring`.
    RxRefill,
}

/// Where the function's MSI-X messages go: the ITS doorbell and the address the message holds
/// (`iommu_dma_compose_msi_msg`: the doorbell's IOVA in the function's DMA domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiRoute {
    /// `GITS_TRANSLATER` of the function's ITS.
    pub doorbell: PhysAddr,
    /// The message address the function writes to.
    pub address: DmaAddr,
}

/// `ENETC_BDR_INT_BASE_IDX`: MSI-X entry 0 is the station interface's messaging vector; ring
/// vector *i* is entry 1 + *i*, and its ITS event ID (the message's data) is that index.
pub(super) const BDR_INT_BASE_IDX: u32 = 1;

/// One ENETC function: driver and hardware.
pub struct Enetc {
    pub(super) cfg: EnetcConfig,
    dev: DeviceId,
    core: Arc<IommuCore>,
    pub(super) smmu: Arc<Mmu500>,
    pub(super) mem: Arc<PhysMem>,
    kmem: Arc<FrameAllocator>,
    /// The control BD ring (`si->cbd_ring`): (CPU address, DMA address).
    control_ring: (PhysAddr, DmaAddr),
    /// Each transmit ring's descriptors: (CPU address, DMA address).
    pub(super) tx_rings: Vec<(PhysAddr, DmaAddr)>,
    /// Each receive ring's descriptors.
    pub(super) rx_rings: Vec<(PhysAddr, DmaAddr)>,
    pub(super) drv: Mutex<Driver>,
    pub(super) hw: Mutex<Hw>,
    /// DMA page → physical page the driver mapped it to (the hardware's ownership evidence).
    pub(super) owned: OwnershipMap,
    /// Context epochs of freed domains on the NIC's SMMU.
    pub(super) retired: Arc<RetiredContexts>,
    /// Where its MSI-X writes go.
    pub(super) msi: MsiRoute,
    pub(super) stats: Mutex<NicStats>,
    /// PCI Bus Master Enable of the function, read before every transaction.
    pub(super) bus_master: Box<dyn Fn() -> bool + Send + Sync>,
    pub(super) kasan: Mutex<Vec<Kasan>>,
}

impl Enetc {
    /// `enetc_pf_probe` + `ndo_open`: allocate the control BD ring, write the default RSS
    /// table through a temporary data buffer, allocate the MSI-X vectors (their doorbell at
    /// `doorbell` is mapped into the function's DMA domain), then the rings, and map a buffer
    /// for every receive descriptor (`enetc_refill_rx_ring` over the whole ring).
    #[allow(clippy::too_many_arguments)]
    pub fn probe(
        cfg: EnetcConfig,
        dev: DeviceId,
        core: Arc<IommuCore>,
        smmu: Arc<Mmu500>,
        mem: Arc<PhysMem>,
        kmem: Arc<FrameAllocator>,
        retired: Arc<RetiredContexts>,
        doorbell: PhysAddr,
        bus_master: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> Result<Arc<Enetc>, DmaError> {
        let rings = cfg.rings.max(1);
        let owned = OwnershipMap::default();
        // v6.1 `enetc_pf_probe`, before `enetc_alloc_msix`: `enetc_setup_cbdr` allocates the
        // station interface's control BD ring and keeps it (the device's own memory).
        let control_ring = core.dma_alloc_coherent(dev, CBDR_DEFAULT_SIZE * CBD_SIZE)?;
        owned.insert(control_ring.1, control_ring.0);
        // `enetc_configure_si` on an SI with RSS: `enetc_setup_default_rss_table` writes the
        // table through a control command whose data buffer is a temporary coherent
        // allocation, freed when the command completes; its IOVA goes back to the allocator
        // (the rcache), where the next one-page allocation finds it. (v6.1's
        // `enetc_init_port_rfs_memory`/`_rss_memory` before it do the same per RFS entry and
        // for the port's table, counts from PRFSCAPR/PRSSCAPR, which smmu-lab does not model:
        // each is one more take-and-return of that cached IOVA, so no IOVA after them moves.)
        let rss_data = RSS_ENTRIES as u64 + CBD_DATA_MEM_ALIGN;
        let (cpu_pa, dma) = core.dma_alloc_coherent(dev, rss_data)?;
        core.dma_free_coherent(dev, rss_data, cpu_pa, dma)?;
        // `enetc_alloc_msix` → `pci_alloc_irq_vectors`: the ITS's `its_irq_domain_alloc` calls
        // `iommu_dma_prepare_msi`, which maps the doorbell's page (once for all the vectors);
        // this is before `register_netdev`, so before `enetc_open` maps any ring or buffer.
        let cookie = core.iommu_dma_prepare_msi(dev, doorbell)?;
        let msi = MsiRoute {
            doorbell,
            address: cookie.compose(doorbell),
        };
        owned.insert(msi.address, doorbell);
        let mut tx_rings = Vec::with_capacity(rings);
        let mut tx = Vec::with_capacity(rings);
        for _ in 0..rings {
            let r = core.dma_alloc_coherent(dev, cfg.tx_ring_size as u64 * DESC_SIZE)?;
            owned.insert(r.1, r.0);
            tx_rings.push(r);
            tx.push(TxRing {
                slots: (0..cfg.tx_ring_size).map(|_| None).collect(),
                head: 0,
                tail: 0,
            });
        }
        // enetc_setup_bdrs: the transmit rings, then every receive ring filled.
        let mut rx_rings = Vec::with_capacity(rings);
        let mut rx = Vec::with_capacity(rings);
        for _ in 0..rings {
            let r = core.dma_alloc_coherent(dev, cfg.rx_ring_size as u64 * DESC_SIZE)?;
            owned.insert(r.1, r.0);
            rx_rings.push(r);
        }
        for ring in &rx_rings {
            let mut slots = Vec::with_capacity(cfg.rx_ring_size);
            for slot in 0..cfg.rx_ring_size {
                let pa = kmem.alloc_uninit(FRAME_SIZE)?;
                let dma = core.dma_map_page(dev, pa, RX_BUF_LEN, DmaDirection::FromDevice)?;
                owned.insert(dma, pa);
                let d = desc_at(ring.0, slot);
                write_desc(&mem, d, dma, RX_BUF_LEN as u16, FLAG_READY, 0);
                slots.push(Some(RxSlot { dma, pa }));
            }
            rx.push(RxRing { slots, next: 0 });
        }
        let flood = cfg.flood_packets;
        Ok(Arc::new(Enetc {
            drv: Mutex::new(Driver { tx, rx }),
            hw: Mutex::new(Hw::new(flood, rings, cfg.flood_rx_ring())),
            owned,
            retired,
            msi,
            stats: Mutex::new(NicStats::default()),
            cfg,
            dev,
            core,
            smmu,
            mem,
            kmem,
            control_ring,
            tx_rings,
            rx_rings,
            bus_master,
            kasan: Mutex::new(Vec::new()),
        }))
    }

    /// What the NIC has seen so far.
    pub fn stats(&self) -> NicStats {
        self.stats.lock().clone()
    }

    /// The NIC's device in the IOMMU core.
    pub fn device(&self) -> DeviceId {
        self.dev
    }

    /// Use-after-free reports not yet printed.
    pub fn take_kasan(&self) -> Vec<Kasan> {
        std::mem::take(&mut *self.kasan.lock())
    }

    /// The old kernel is gone (kexec): its driver state no longer runs; the function keeps
    /// whatever it was doing, but no driver will touch it again.
    pub fn kernel_replaced(&self) {
        for e in &mut self.hw.lock().irq_enabled {
            *e = false;
        }
    }

    /// The DMA address of the control BD ring (what `enetc_setup_cbdr` writes to SICBDRBAR).
    pub fn control_ring(&self) -> DmaAddr {
        self.control_ring.1
    }

    /// The DMA address of the buffer mapped in receive ring `ring`'s slot `slot`, if any.
    pub fn rx_buffer(&self, ring: usize, slot: usize) -> Option<DmaAddr> {
        let drv = self.drv.lock();
        let r = drv.rx.get(ring)?;
        r.slots.get(slot)?.as_ref().map(|s| s.dma)
    }

    /// Where the function's MSI-X writes go.
    pub fn msi_route(&self) -> MsiRoute {
        self.msi
    }

    /// The interrupt vectors (one per ring pair).
    pub fn vectors(&self) -> usize {
        self.tx_rings.len()
    }

    fn frames(path: Path, ctx: &Context) -> Vec<String> {
        frames::below_dma_api(path, ctx)
    }

    fn crash(&self, mut oops: Oops, path: Path, ctx: &Context) -> Box<Crash> {
        oops.call_trace.extend(Self::frames(path, ctx));
        let t = ctx.task();
        Box::new(Crash {
            oops,
            cpu: t.cpu,
            pid: t.pid,
            comm: t.comm.clone(),
        })
    }

    /// A DMA-API error: an Oops crashes the kernel, a use-after-free is reported and the call
    /// fails, a typed error (safe core) is counted.
    fn dma_failed(&self, e: DmaError, path: Path, ctx: &Context) -> Result<(), Box<Crash>> {
        match e {
            DmaError::Oops(o) => Err(self.crash(o, path, ctx)),
            DmaError::UseAfterFree { object, function } => {
                let t = ctx.task();
                self.kasan.lock().push(Kasan {
                    function,
                    object,
                    call_trace: Self::frames(path, ctx),
                    cpu: t.cpu,
                    pid: t.pid,
                    comm: t.comm.clone(),
                });
                self.stats.lock().use_after_free += 1;
                Ok(())
            }
            _ => {
                self.stats.lock().dma_api_errors += 1;
                Ok(())
            }
        }
    }

    /// `enetc_start_xmit`: copy a frame into a fresh buffer, map it, hand it to the hardware
    /// (descriptor, then the producer index). `Ok(false)`: dropped.
    pub fn start_xmit(&self, ctx: &Context, mld: bool, frame: &[u8]) -> Result<bool, Box<Crash>> {
        sched_point(Point::Kernel);
        let path = if mld { Path::MldXmit } else { Path::PingXmit };
        // The stack picked the queue (`netdev_pick_tx` → `skb_tx_hash`); the driver takes
        // `priv->tx_ring[skb->queue_mapping]`.
        let q = self.cfg.tx_queue(if mld {
            self.cfg.mld_tx_hash
        } else {
            self.cfg.reply_tx_hash
        });
        let slot = {
            let d = self.drv.lock();
            let s = d.tx[q].head % self.cfg.tx_ring_size;
            if d.tx[q].slots[s].is_some() {
                drop(d);
                self.stats.lock().tx_dropped += 1;
                return Ok(false);
            }
            s
        };
        let Ok(pa) = self.kmem.alloc_uninit(FRAME_SIZE) else {
            self.stats.lock().tx_dropped += 1;
            return Ok(false);
        };
        let _ = self.mem.write_bytes(pa, frame);
        let len = frame.len() as u64;
        let dma = match self
            .core
            .dma_map_page(self.dev, pa, len, DmaDirection::ToDevice)
        {
            Ok(dma) => dma,
            Err(e) => {
                let _ = self.kmem.free(pa, FRAME_SIZE);
                self.dma_failed(e, path, ctx)?;
                self.stats.lock().tx_dropped += 1;
                return Ok(false);
            }
        };
        self.owned.insert(dma, pa);
        let d = desc_at(self.tx_rings[q].0, slot);
        write_desc(&self.mem, d, dma, len as u16, FLAG_READY, 0);
        {
            let mut drv = self.drv.lock();
            drv.tx[q].slots[slot] = Some(TxSlot { dma, pa, len });
            drv.tx[q].head += 1;
        }
        // The producer index register write (TBPIR).
        self.hw.lock().tx_pi[q] += 1;
        let mut st = self.stats.lock();
        st.tx_queued += 1;
        if mld {
            st.mld_reports += 1;
        } else {
            st.replies += 1;
        }
        Ok(true)
    }

    /// `enetc_msix` of `vector`: mask its rings' interrupts; the caller schedules its NAPI.
    pub fn msix_handler(&self, vector: usize) {
        self.disable_irq(vector);
    }

    /// `enetc_poll` with `budget`: reclaim completed transmit buffers (`enetc_clean_tx_ring`),
    /// receive up to `budget` echo requests (unmap each buffer, refill the descriptor with a
    /// freshly mapped one) and answer them. Returns the receive work done and whether the
    /// function sent its MSI when the poll completed and re-enabled interrupts.
    pub fn poll(
        &self,
        vector: usize,
        budget: usize,
        ctx: &Context,
    ) -> Result<(usize, bool), Box<Crash>> {
        sched_point(Point::Kernel);
        let v = vector.min(self.vectors().saturating_sub(1));
        self.clean_tx(v, ctx)?;
        let mut work = 0;
        let mut replies = Vec::new();
        while work < budget {
            let slot = self.drv.lock().rx[v].next % self.cfg.rx_ring_size;
            let d = desc_at(self.rx_rings[v].0, slot);
            if read_flags(&self.mem, d) & FLAG_FULL == 0 {
                break;
            }
            let seq = self
                .mem
                .read_u32(PhysAddr::new(d.as_u64() + 12))
                .unwrap_or(0);
            let buf = self.drv.lock().rx[v].slots[slot]
                .as_ref()
                .map(|b| (b.dma, b.pa));
            match buf {
                Some((dma, pa)) => {
                    // enetc_get_rx_buff: dma_sync_single_range_for_cpu, a no-op for this
                    // dma-coherent function (no group lookup). The stack consumes the echo
                    // request before the next receive, so the page is reusable
                    // (enetc_reuse_page): it goes back to the ring still mapped.
                    let mut got = vec![0u8; PING_LEN];
                    let _ = self.mem.read_bytes(pa, &mut got);
                    if got == request_bytes(seq) {
                        self.stats.lock().rx_delivered += 1;
                        replies.push(seq);
                    } else {
                        self.stats.lock().lost_writes += 1;
                    }
                    write_desc(&self.mem, d, dma, RX_BUF_LEN as u16, FLAG_READY, 0);
                    self.drv.lock().rx[v].next += 1;
                }
                None => {
                    // A slot without a page (a refill failed): enetc_refill_rx_ring.
                    write_desc(&self.mem, d, DmaAddr::ZERO, 0, 0, 0);
                    self.drv.lock().rx[v].next += 1;
                    self.refill(v, slot, ctx)?;
                }
            }
            work += 1;
        }
        for seq in replies {
            let mut reply = request_bytes(seq);
            reply[4] ^= 0xff; // echo reply: the type byte differs
            self.start_xmit(ctx, false, &reply)?;
        }
        let msi = work < budget && self.enable_irq(v);
        Ok((work, msi))
    }

    /// `enetc_refill_rx_ring` for one descriptor: a new page, mapped for the device.
    fn refill(&self, ring: usize, slot: usize, ctx: &Context) -> Result<(), Box<Crash>> {
        let Ok(pa) = self.kmem.alloc_uninit(FRAME_SIZE) else {
            return Ok(());
        };
        match self
            .core
            .dma_map_page(self.dev, pa, RX_BUF_LEN, DmaDirection::FromDevice)
        {
            Ok(dma) => {
                self.owned.insert(dma, pa);
                write_desc(
                    &self.mem,
                    desc_at(self.rx_rings[ring].0, slot),
                    dma,
                    RX_BUF_LEN as u16,
                    FLAG_READY,
                    0,
                );
                self.drv.lock().rx[ring].slots[slot] = Some(RxSlot { dma, pa });
                Ok(())
            }
            Err(e) => {
                let _ = self.kmem.free(pa, FRAME_SIZE);
                self.dma_failed(e, Path::RxRefill, ctx)
            }
        }
    }

    /// `enetc_clean_tx_ring` of `ring`: unmap every buffer before the consumer index (TBCIR).
    fn clean_tx(&self, ring: usize, ctx: &Context) -> Result<(), Box<Crash>> {
        let ci = self.hw.lock().tx_ci[ring];
        for _ in 0..tx_work(&self.cfg) {
            let t = {
                let mut drv = self.drv.lock();
                let r = &mut drv.tx[ring];
                if r.tail >= ci {
                    break;
                }
                let s = r.tail % self.cfg.tx_ring_size;
                r.tail += 1;
                r.slots[s].take()
            };
            let Some(t) = t else { continue };
            // The driver gives up ownership before unmapping: DMA after this point is foreign.
            self.owned.remove(t.dma);
            let r = self
                .core
                .dma_unmap_page(self.dev, t.dma, t.len, DmaDirection::ToDevice);
            let _ = self.kmem.free(t.pa, FRAME_SIZE);
            match r {
                Ok(()) => self.stats.lock().tx_completed += 1,
                Err(e) => self.dma_failed(e, Path::TxUnmap, ctx)?,
            }
        }
        Ok(())
    }
}
