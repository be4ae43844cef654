//! An ENETC-like NIC: the `fsl_enetc` driver half (CPU side: transmit, NAPI poll) and the
//! hardware half (a DMA engine that fetches descriptors and moves packets through the SMMU).
//!
//! Only what the seed's crash depends on is modelled, but that part is real: rings of 16-byte
//! descriptors live in coherent DMA memory, every packet buffer is `dma_map_page`d before the
//! hardware sees it and `dma_unmap_page`d after it completes, and every access of the hardware
//! to memory is a transaction through the SMMU model with the ENETC's stream ID (0x429 on the
//! wire on LS1028A). The engine prefetches receive descriptors, as the real one does, so a packet
//! can be written to a buffer address fetched before the SMMU was turned off.
//!
//! The hardware half also keeps the evidence for the verdict: it knows which physical page each
//! DMA address was mapped to by the driver (the ownership map), so a transaction that lands
//! anywhere else is *stray* (it bypassed translation) or *foreign* (it was translated somewhere
//! the mapping does not own, e.g. through a stale TLB entry).

use crate::dmesg::seed;
use crate::ownership::{self, DmaEvidence, OwnershipMap, RetiredContexts};
use iommu::{DeviceId, DmaDirection, DmaError, IommuCore, Oops};
use mmu500::{BusError, Mmu500, Translation};
use physmem::{FrameAllocator, PhysAddr, PhysMem, FRAME_SIZE};
use smmu_addr::Iova;
use smmu_sync::{sched_point, Arc, Mutex, Point};
use std::collections::VecDeque;

/// Descriptor bytes: DMA address (8), length (2), flags (2), sequence number (4), pad (0).
const DESC_SIZE: u64 = 16;
const FLAG_READY: u16 = 1;
const FLAG_DONE: u16 = 2;
const FLAG_FULL: u16 = 4;
/// Receive buffer size the driver maps.
const RX_BUF_LEN: u64 = 1536;
/// Length of the echo requests of the ping flood (IPv4 + ICMP, 56 data bytes, plus Ethernet).
pub const PING_LEN: usize = 98;
/// Length of an MLDv2 report frame.
pub const MLD_LEN: usize = 90;

/// Geometry and identity of one NIC.
#[derive(Debug, Clone)]
pub struct EnetcConfig {
    /// Descriptors per ring.
    pub ring_size: usize,
    /// Stream ID on the wire (TBU bits included): 0x429 for ENETC PF0 on LS1028A.
    pub stream_id: u32,
    /// Receive descriptors the engine keeps prefetched.
    pub rx_prefetch: usize,
    /// Echo requests the ping-flood peer sends in all.
    pub flood_packets: u32,
}

impl Default for EnetcConfig {
    fn default() -> Self {
        EnetcConfig {
            ring_size: 8,
            stream_id: 0x429,
            rx_prefetch: 2,
            flood_packets: 24,
        }
    }
}

/// The kernel context a DMA-API call came from: it decides the call chain of an oops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxContext {
    /// IPv6 MLD report from the `mld_ifc_work` kworker (the seed's first trace).
    MldWork,
    /// ICMP echo reply sent from NAPI, in softirq.
    PingReply,
}

/// The simulated kernel crashed in this driver: the oops plus the task it happened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// The oops the DMA API reported, with this driver's frames appended.
    pub oops: Oops,
    /// CPU the task ran on.
    pub cpu: u32,
    /// PID of the task.
    pub pid: u32,
    /// Task name (`kworker/0:1`, `ksoftirqd/0`).
    pub comm: &'static str,
}

/// What the NIC saw; the simulator's verdict is built from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NicStats {
    /// Packets handed to the hardware.
    pub tx_queued: u64,
    /// Packets the hardware put on the wire.
    pub tx_sent: u64,
    /// Transmit requests dropped by the driver (ring full or a DMA-API error).
    pub tx_dropped: u64,
    /// Transmit buffers unmapped after completion.
    pub tx_completed: u64,
    /// Echo requests the CPU received intact.
    pub rx_delivered: u64,
    /// Echo requests the hardware wrote into a receive buffer.
    pub rx_written: u64,
    /// Echo requests lost: no descriptor ready, or the transaction was blocked.
    pub rx_dropped: u64,
    /// Echo replies sent.
    pub replies: u64,
    /// MLD reports sent.
    pub mld_reports: u64,
    /// Receive writes the hardware completed but whose data the CPU did not find.
    pub lost_writes: u64,
    /// DMA-API calls that failed with a typed error (safe mode).
    pub dma_api_errors: u64,
    /// Where its transactions went: blocked, stray, foreign.
    pub bus: DmaEvidence,
}

struct TxSlot {
    dma: u64,
    pa: u64,
    len: u64,
}

struct RxSlot {
    dma: u64,
    pa: u64,
}

/// CPU-side driver state.
struct Driver {
    tx: Vec<Option<TxSlot>>,
    tx_head: usize,
    tx_tail: usize,
    rx: Vec<RxSlot>,
    rx_next: usize,
    polls: u64,
}

/// Hardware-side state.
struct Hw {
    tx_next: usize,
    rx_fetch: usize,
    /// Prefetched receive descriptors: (slot, buffer DMA address).
    rx_cache: VecDeque<(usize, u64)>,
    flood_left: u32,
    seq: u32,
}

/// One ENETC function: driver and hardware.
pub struct Enetc {
    cfg: EnetcConfig,
    dev: DeviceId,
    core: Arc<IommuCore>,
    smmu: Arc<Mmu500>,
    mem: Arc<PhysMem>,
    kmem: Arc<FrameAllocator>,
    tx_ring: (u64, u64),
    rx_ring: (u64, u64),
    drv: Mutex<Driver>,
    hw: Mutex<Hw>,
    /// DMA page → physical page the driver mapped it to (the hardware's ownership evidence).
    owned: OwnershipMap,
    /// Context epochs of freed domains on the NIC's SMMU.
    retired: Arc<RetiredContexts>,
    stats: Mutex<NicStats>,
}

/// Payload of echo request `seq`: recognisable bytes, so a lost or misdirected write shows.
fn request_bytes(seq: u32) -> Vec<u8> {
    let mut v = vec![0u8; PING_LEN];
    v[..4].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in v.iter_mut().enumerate().skip(4) {
        *b = (i as u32).wrapping_mul(31).wrapping_add(seq) as u8;
    }
    v
}

impl Enetc {
    /// `enetc_probe` + `ndo_open`: allocate the rings and map every receive buffer.
    pub fn probe(
        cfg: EnetcConfig,
        dev: DeviceId,
        core: Arc<IommuCore>,
        smmu: Arc<Mmu500>,
        mem: Arc<PhysMem>,
        kmem: Arc<FrameAllocator>,
        retired: Arc<RetiredContexts>,
    ) -> Result<Arc<Enetc>, DmaError> {
        let ring_bytes = cfg.ring_size as u64 * DESC_SIZE;
        let tx_ring = core.dma_alloc_coherent(dev, ring_bytes)?;
        let rx_ring = core.dma_alloc_coherent(dev, ring_bytes)?;
        let owned = OwnershipMap::default();
        owned.insert(tx_ring.1, tx_ring.0);
        owned.insert(rx_ring.1, rx_ring.0);
        let mut rx = Vec::with_capacity(cfg.ring_size);
        for slot in 0..cfg.ring_size {
            let pa = kmem.alloc(FRAME_SIZE)?.as_u64();
            let dma = core.dma_map_page(dev, pa, RX_BUF_LEN, DmaDirection::FromDevice)?;
            owned.insert(dma, pa);
            let d = rx_ring.0 + slot as u64 * DESC_SIZE;
            write_desc(&mem, d, dma, RX_BUF_LEN as u16, FLAG_READY, 0);
            rx.push(RxSlot { dma, pa });
        }
        let flood = cfg.flood_packets;
        Ok(Arc::new(Enetc {
            drv: Mutex::new(Driver {
                tx: (0..cfg.ring_size).map(|_| None).collect(),
                tx_head: 0,
                tx_tail: 0,
                rx,
                rx_next: 0,
                polls: 0,
            }),
            hw: Mutex::new(Hw {
                tx_next: 0,
                rx_fetch: 0,
                rx_cache: VecDeque::new(),
                flood_left: flood,
                seq: 0,
            }),
            owned,
            retired,
            stats: Mutex::new(NicStats::default()),
            cfg,
            dev,
            core,
            smmu,
            mem,
            kmem,
            tx_ring,
            rx_ring,
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

    /// Whether the peer has more echo requests to send.
    pub fn flood_done(&self) -> bool {
        self.hw.lock().flood_left == 0
    }

    fn crash(&self, mut oops: Oops, ctx: Ctx) -> Box<Crash> {
        let (frames, cpu, pid, comm): (&[&str], u32, u32, &'static str) = match ctx {
            Ctx::Tx(TxContext::MldWork) => (seed::MLD_XMIT_FRAMES, 0, 23, "kworker/0:1"),
            Ctx::Tx(TxContext::PingReply) => (PING_XMIT_FRAMES, 0, 12, "ksoftirqd/0"),
            Ctx::Poll => (seed::POLL_UNMAP_FRAMES, 0, 12, "ksoftirqd/0"),
        };
        oops.call_trace.extend(frames.iter().map(|s| s.to_string()));
        Box::new(Crash {
            oops,
            cpu,
            pid,
            comm,
        })
    }

    /// `enetc_start_xmit`: copy a frame into a fresh buffer, map it, hand it to the hardware.
    /// `Ok(false)`: dropped (ring full or a DMA-API error in safe mode).
    pub fn start_xmit(&self, ctx: TxContext, frame: &[u8]) -> Result<bool, Box<Crash>> {
        sched_point(Point::Kernel);
        let slot = {
            let d = self.drv.lock();
            let s = d.tx_head % self.cfg.ring_size;
            if d.tx[s].is_some() {
                drop(d);
                self.stats.lock().tx_dropped += 1;
                return Ok(false);
            }
            s
        };
        let pa = match self.kmem.alloc(FRAME_SIZE) {
            Ok(pa) => pa.as_u64(),
            Err(_) => {
                self.stats.lock().tx_dropped += 1;
                return Ok(false);
            }
        };
        let _ = self.mem.write_bytes(PhysAddr::new(pa), frame);
        let len = frame.len() as u64;
        let dma = match self
            .core
            .dma_map_page(self.dev, pa, len, DmaDirection::ToDevice)
        {
            Ok(dma) => dma,
            Err(e) => {
                let _ = self.kmem.free(PhysAddr::new(pa), FRAME_SIZE);
                return match e {
                    DmaError::Oops(o) => Err(self.crash(o, Ctx::Tx(ctx))),
                    _ => {
                        let mut st = self.stats.lock();
                        st.dma_api_errors += 1;
                        st.tx_dropped += 1;
                        Ok(false)
                    }
                };
            }
        };
        self.owned.insert(dma, pa);
        let d = self.tx_ring.0 + slot as u64 * DESC_SIZE;
        write_desc(&self.mem, d, dma, len as u16, FLAG_READY, 0);
        {
            let mut drv = self.drv.lock();
            drv.tx[slot] = Some(TxSlot { dma, pa, len });
            drv.tx_head += 1;
        }
        let mut st = self.stats.lock();
        st.tx_queued += 1;
        match ctx {
            TxContext::MldWork => st.mld_reports += 1,
            TxContext::PingReply => st.replies += 1,
        }
        Ok(true)
    }

    /// `enetc_poll` (NAPI, softirq): reclaim completed transmit buffers, then receive echo
    /// requests and answer them. Returns the work done.
    pub fn poll(&self, budget: usize) -> Result<usize, Box<Crash>> {
        sched_point(Point::Kernel);
        let mut work = 0;
        // Transmit clean-up: enetc_clean_tx_ring -> enetc_unmap_tx_buff.
        loop {
            let (slot, info) = {
                let mut drv = self.drv.lock();
                let s = drv.tx_tail % self.cfg.ring_size;
                let d = self.tx_ring.0 + s as u64 * DESC_SIZE;
                if drv.tx[s].is_none() || read_flags(&self.mem, d) & FLAG_DONE == 0 {
                    break;
                }
                drv.tx_tail += 1;
                (s, drv.tx[s].take())
            };
            let Some(t) = info else { break };
            // The driver gives up ownership before unmapping: DMA after this point is foreign.
            self.owned.remove(t.dma);
            let r = self
                .core
                .dma_unmap_page(self.dev, t.dma, t.len, DmaDirection::ToDevice);
            let _ = self.kmem.free(PhysAddr::new(t.pa), FRAME_SIZE);
            write_desc(
                &self.mem,
                self.tx_ring.0 + slot as u64 * DESC_SIZE,
                0,
                0,
                0,
                0,
            );
            match r {
                Ok(()) => self.stats.lock().tx_completed += 1,
                Err(DmaError::Oops(o)) => return Err(self.crash(o, Ctx::Poll)),
                Err(_) => self.stats.lock().dma_api_errors += 1,
            }
            work += 1;
        }
        // Receive.
        let mut replies = Vec::new();
        for _ in 0..budget {
            let (slot, pa) = {
                let drv = self.drv.lock();
                let s = drv.rx_next % self.cfg.ring_size;
                (s, drv.rx[s].pa)
            };
            let d = self.rx_ring.0 + slot as u64 * DESC_SIZE;
            if read_flags(&self.mem, d) & FLAG_FULL == 0 {
                break;
            }
            let seq = self.mem.read_u32(PhysAddr::new(d + 12)).unwrap_or(0);
            let mut got = vec![0u8; PING_LEN];
            let _ = self.mem.read_bytes(PhysAddr::new(pa), &mut got);
            if got == request_bytes(seq) {
                self.stats.lock().rx_delivered += 1;
                replies.push(seq);
            } else {
                self.stats.lock().lost_writes += 1;
            }
            let dma = self.drv.lock().rx[slot].dma;
            write_desc(&self.mem, d, dma, RX_BUF_LEN as u16, FLAG_READY, 0);
            self.drv.lock().rx_next += 1;
            work += 1;
        }
        self.drv.lock().polls += 1;
        for seq in replies {
            let mut reply = request_bytes(seq);
            reply[4] ^= 0xff; // echo reply: the type byte differs
            self.start_xmit(TxContext::PingReply, &reply)?;
        }
        Ok(work)
    }

    /// One step of the hardware: move one transmit descriptor and one received packet.
    /// Returns whether anything was done.
    pub fn hw_step(&self) -> bool {
        let tx = self.hw_tx();
        let rx = self.hw_rx();
        tx || rx
    }

    fn hw_tx(&self) -> bool {
        let slot = self.hw.lock().tx_next % self.cfg.ring_size;
        let d = self.tx_ring.1 + slot as u64 * DESC_SIZE;
        let mut desc = [0u8; DESC_SIZE as usize];
        if !self.bus_read(d, &mut desc) {
            return false;
        }
        let (addr, len, flags, _) = parse_desc(&desc);
        if flags & FLAG_READY == 0 || flags & FLAG_DONE != 0 {
            return false;
        }
        let mut frame = vec![0u8; len as usize];
        if self.bus_read(addr, &mut frame) {
            self.stats.lock().tx_sent += 1;
        }
        self.hw.lock().tx_next += 1;
        self.bus_write(d + 10, &(flags | FLAG_DONE).to_le_bytes());
        true
    }

    fn hw_rx(&self) -> bool {
        // Prefetch receive descriptors while there is room.
        loop {
            let slot = {
                let hw = self.hw.lock();
                if hw.rx_cache.len() >= self.cfg.rx_prefetch {
                    break;
                }
                hw.rx_fetch % self.cfg.ring_size
            };
            let d = self.rx_ring.1 + slot as u64 * DESC_SIZE;
            let mut desc = [0u8; DESC_SIZE as usize];
            if !self.bus_read(d, &mut desc) {
                break;
            }
            let (addr, _, flags, _) = parse_desc(&desc);
            if flags & FLAG_READY == 0 || flags & FLAG_FULL != 0 {
                break;
            }
            let mut hw = self.hw.lock();
            hw.rx_cache.push_back((slot, addr));
            hw.rx_fetch += 1;
        }
        // The peer sends one echo request.
        let (seq, target) = {
            let mut hw = self.hw.lock();
            if hw.flood_left == 0 {
                return false;
            }
            hw.flood_left -= 1;
            hw.seq += 1;
            (hw.seq, hw.rx_cache.pop_front())
        };
        let Some((slot, addr)) = target else {
            self.stats.lock().rx_dropped += 1;
            return true;
        };
        if !self.bus_write(addr, &request_bytes(seq)) {
            self.stats.lock().rx_dropped += 1;
            return true;
        }
        self.stats.lock().rx_written += 1;
        let d = self.rx_ring.1 + slot as u64 * DESC_SIZE;
        let mut tail = [0u8; 6];
        tail[..2].copy_from_slice(&(FLAG_READY | FLAG_FULL).to_le_bytes());
        tail[2..].copy_from_slice(&seq.to_le_bytes());
        self.bus_write(d + 10, &tail);
        true
    }

    /// A device read through the SMMU; false when it did not complete.
    fn bus_read(&self, iova: u64, buf: &mut [u8]) -> bool {
        let r = self.smmu.dma_read(self.cfg.stream_id, Iova::new(iova), buf);
        self.account(iova, false, r)
    }

    /// A device write through the SMMU; false when it did not complete.
    fn bus_write(&self, iova: u64, data: &[u8]) -> bool {
        let r = self
            .smmu
            .dma_write(self.cfg.stream_id, Iova::new(iova), data);
        self.account(iova, true, r)
    }

    /// Check every chunk of a transaction against the ownership map and count what happened.
    fn account(&self, iova: u64, write: bool, r: Result<Vec<Translation>, BusError>) -> bool {
        let mut ev = DmaEvidence::default();
        let ok = ownership::account(&self.owned, &self.retired, iova, write, r, &mut ev);
        let mut st = self.stats.lock();
        st.bus.merge(&ev);
        ok
    }
}

#[derive(Debug, Clone, Copy)]
enum Ctx {
    Tx(TxContext),
    Poll,
}

fn write_desc(mem: &PhysMem, at: u64, addr: u64, len: u16, flags: u16, seq: u32) {
    let mut b = [0u8; DESC_SIZE as usize];
    b[..8].copy_from_slice(&addr.to_le_bytes());
    b[8..10].copy_from_slice(&len.to_le_bytes());
    b[12..16].copy_from_slice(&seq.to_le_bytes());
    let _ = mem.write_bytes(PhysAddr::new(at), &b);
    // Flags last: the hardware must not see READY before the address.
    let _ = mem.write_bytes(PhysAddr::new(at + 10), &flags.to_le_bytes());
}

fn read_flags(mem: &PhysMem, at: u64) -> u16 {
    let mut b = [0u8; 2];
    let _ = mem.read_bytes(PhysAddr::new(at + 10), &mut b);
    u16::from_le_bytes(b)
}

fn parse_desc(b: &[u8; DESC_SIZE as usize]) -> (u64, u16, u16, u32) {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    (
        u64::from_le_bytes(a),
        u16::from_le_bytes([b[8], b[9]]),
        u16::from_le_bytes([b[10], b[11]]),
        u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
    )
}

/// An echo reply sent from NAPI. Not in the seed: the frames of the transmit half are the seed's,
/// the IPv4 receive half is named without offsets because no log gives them.
const PING_XMIT_FRAMES: &[&str] = &[
    "enetc_start_xmit+0x14c/0x10b0",
    "enetc_xmit+0x60/0xdc",
    "dev_hard_start_xmit+0xb8/0x210",
    "sch_direct_xmit+0x11c/0x420",
    "__dev_queue_xmit+0x354/0xb20",
    "ip_finish_output2",
    "ip_output",
    "ip_push_pending_frames",
    "icmp_reply",
    "icmp_echo",
    "icmp_rcv",
    "ip_local_deliver_finish",
    "__netif_receive_skb_one_core",
    "enetc_poll+0x170/0x910",
    "__napi_poll+0x40/0x1e0",
    "net_rx_action+0x164/0x37c",
    "__do_softirq+0x128/0x368",
    "run_ksoftirqd+0x68/0x90",
    "smpboot_thread_fn+0x14c/0x190",
];
