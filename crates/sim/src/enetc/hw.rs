//! The ENETC function's hardware half: descriptor fetch, packet DMA, TX completion, the MSI, and
//! the device's side of a blocked or refused transaction. One call of [`Enetc::device_step`]
//! moves one descriptor's worth of data; each transaction first checks the function's Bus
//! Master Enable (a function with BME clear issues no new request) and then goes through the
//! SMMU model.

use super::desc::{parse_desc, DESC_SIZE, FLAG_FULL, FLAG_READY};
use super::driver::{Enetc, BDR_INT_BASE_IDX};
use super::PING_FLOOD_FLOOR_NS;
use crate::ownership;
use mmu500::{BusError, Translation};
use smmu_addr::DmaAddr;
use smmu_arch::Access;
use std::collections::VecDeque;

/// The peer's time from receiving a reply to sending the next request (its own stack, the
/// wire both ways).
const PEER_TURNAROUND_NS: u64 = 50_000;

/// What the device saw of transactions that did not complete (ENETC's error counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceErrors {
    /// Transmit descriptor or frame reads aborted by the interconnect (the SMMU terminated
    /// them): the ring reports a DMA error and stops (its consumer index no longer moves).
    pub tx_dma_aborts: u64,
    /// Receive descriptor reads or frame writes aborted: the frame is discarded and counted as
    /// a receive DMA error.
    pub rx_dma_aborts: u64,
    /// The transmit ring stopped on an error; frames queued after it are never sent. No
    /// transmit timeout follows: `fsl_enetc` has no `ndo_tx_timeout`, so the netdev watchdog
    /// is never armed for it ([`super::watchdog`]).
    pub tx_ring_stalled: bool,
}

/// Hardware-side state.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Hw {
    /// Per transmit ring, the consumer index (ENETC's TBCIR): descriptors before it are done.
    pub(super) tx_ci: Vec<usize>,
    /// Per transmit ring, the producer index (TBPIR), written by the driver.
    pub(super) tx_pi: Vec<usize>,
    /// The transmit ring the engine looks at first next (it serves the rings in turn).
    pub(super) tx_next: usize,
    /// The receive ring the flood's frames land on (RSS).
    pub(super) rx_ring: usize,
    pub(super) rx_fetch: usize,
    /// Prefetched receive descriptors: (slot, buffer DMA address).
    pub(super) rx_cache: VecDeque<(usize, DmaAddr)>,
    pub(super) flood_left: u32,
    pub(super) next_arrival_ns: u64,
    pub(super) last_sent_ns: u64,
    pub(super) seq: u32,
    /// Per vector, its rings' interrupts enabled (RBIER/TBIER); its MSI-X handler clears
    /// them, its poll's completion sets them again.
    pub(super) irq_enabled: Vec<bool>,
    /// Per vector, an event happened while its interrupts were disabled: the MSI is sent on
    /// re-enable.
    pub(super) irq_pending: Vec<bool>,
}

impl Hw {
    pub(super) fn new(flood: u32, rings: usize, rx_ring: usize) -> Hw {
        Hw {
            tx_ci: vec![0; rings],
            tx_pi: vec![0; rings],
            tx_next: 0,
            rx_ring: rx_ring.min(rings.saturating_sub(1)),
            rx_fetch: 0,
            rx_cache: VecDeque::new(),
            flood_left: flood,
            next_arrival_ns: 0,
            last_sent_ns: 0,
            seq: 0,
            irq_enabled: vec![true; rings],
            irq_pending: vec![false; rings],
        }
    }
}

/// Payload of echo request `seq`: recognisable bytes, so a lost or misdirected write shows.
pub(super) fn request_bytes(seq: u32) -> Vec<u8> {
    let mut v = vec![0u8; super::PING_LEN];
    v[..4].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in v.iter_mut().enumerate().skip(4) {
        *b = (i as u32).wrapping_mul(31).wrapping_add(seq) as u8;
    }
    v
}

/// What one device step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceStep {
    /// Something moved (or was attempted).
    pub busy: bool,
    /// The function's MSI of this vector reached the ITS: the vector's interrupt is raised.
    pub msi: Option<usize>,
}

impl Enetc {
    /// Start the peer's flood at `now_ns`.
    pub fn start_flood(&self, now_ns: u64) {
        self.hw.lock().next_arrival_ns = now_ns;
    }

    /// When the peer's next echo request is due.
    pub fn next_arrival_ns(&self) -> u64 {
        self.hw.lock().next_arrival_ns
    }

    /// Whether the peer has more echo requests to send.
    pub fn flood_done(&self) -> bool {
        self.hw.lock().flood_left == 0
    }

    /// One step of the hardware at simulated time `now_ns`: transmit one descriptor if one is
    /// ready, else receive one echo request if the peer has sent one.
    pub fn device_step(&self, now_ns: u64) -> DeviceStep {
        // An event on a ring goes to the vector that ring belongs to.
        let event = match self.hw_tx(now_ns) {
            Some(ring) => Some(ring),
            None => self.hw_rx(now_ns).then(|| self.hw.lock().rx_ring),
        };
        let Some(v) = event else {
            return DeviceStep::default();
        };
        // One MSI per enable period: the vector counts as masked from its MSI until the poll
        // re-enables it. In Linux the MSI-X handler masks it (`enetc_msix` clears RBIER), so
        // while the handler runs this is the same (a second MSI would only re-pend the same
        // LPI). For an MSI that never arrives, whether the function sends another on the next
        // ring event while RBIER is still set is ENETC's interrupt-detect rule, which no
        // source we have states: the model assumes it does not (ARCHITECTURE.md, "MSIs
        // through the SMMU").
        let msi = {
            let mut hw = self.hw.lock();
            if hw.irq_enabled[v] {
                hw.irq_enabled[v] = false;
                true
            } else {
                hw.irq_pending[v] = true;
                false
            }
        };
        let raised = msi && self.send_msi(v, false);
        DeviceStep {
            busy: true,
            msi: raised.then_some(v),
        }
    }

    /// The function writes `vector`'s MSI-X message: a posted write of its event ID to the
    /// message address, through the SMMU with its stream ID like any DMA, and only while Bus
    /// Master Enable is set (`on_reenable`: sent as the driver's poll re-enabled the vector,
    /// not on a ring event). Whether it reached the ITS doorbell (and so raised the vector's
    /// interrupt). A blocked write records its fault in the SMMU (the handler reports it); one
    /// translated elsewhere (bypass) lands there: stray DMA. The ITS consumes the write, so
    /// nothing is written to memory when it reaches the doorbell. The vector stays masked
    /// either way: a lost message is not sent again until the driver re-enables the vector.
    /// The function cannot tell: a memory write is posted (no completion), so a lost MSI is
    /// not among its errors ([`DeviceErrors`]) but a count of its own (`NicStats::msis_lost`).
    pub fn send_msi(&self, vector: usize, on_reenable: bool) -> bool {
        if !(self.bus_master)() {
            self.stats.lock().bme_suppressed += 1;
            return false;
        }
        let before = self.stats.lock().bus.clone();
        let data = (BDR_INT_BASE_IDX + vector as u32).to_le_bytes();
        let addr = self.msi.address;
        let translated = self
            .smmu
            .translate(self.cfg.stream_id, addr.bus_iova(), Access::Write);
        let delivered = matches!(&translated, Ok(t) if t.pa() == self.msi.doorbell);
        let r = match translated {
            Ok(t) if delivered => Ok(vec![t]),
            // Not the ITS: the write lands wherever the output address is (memory, if any).
            Ok(t) => match self.mem.write_bytes(t.pa(), &data) {
                Ok(()) => Ok(vec![t]),
                Err(_) => Err(BusError::Unbacked {
                    pa: t.pa(),
                    done: 0,
                    translation: t,
                }),
            },
            Err(fault) => Err(BusError::Fault { fault, done: 0 }),
        };
        self.account(addr, true, r);
        self.note_in_flight(&before);
        let mut st = self.stats.lock();
        st.msis += 1;
        if !delivered {
            st.msis_lost += 1;
            st.msis_lost_on_reenable += u64::from(on_reenable);
        }
        delivered
    }

    /// The driver enables `vector`'s ring interrupts again; true when the function sends its
    /// MSI at once for events that happened meanwhile and the MSI reached the ITS.
    pub(super) fn enable_irq(&self, vector: usize) -> bool {
        let mut hw = self.hw.lock();
        if hw.irq_pending[vector] {
            hw.irq_pending[vector] = false;
            drop(hw);
            self.send_msi(vector, true)
        } else {
            hw.irq_enabled[vector] = true;
            false
        }
    }

    /// The MSI-X handler masks `vector`'s ring interrupts.
    pub(super) fn disable_irq(&self, vector: usize) {
        if let Some(e) = self.hw.lock().irq_enabled.get_mut(vector) {
            *e = false;
        }
    }

    /// Transmit one descriptor of the next ring (in turn) that has one; which ring it was.
    fn hw_tx(&self, now_ns: u64) -> Option<usize> {
        let (ring, slot) = {
            let mut hw = self.hw.lock();
            if self.stats.lock().errors.tx_ring_stalled {
                return None;
            }
            let n = hw.tx_ci.len();
            let ring = (0..n)
                .map(|k| (hw.tx_next + k) % n)
                .find(|&r| hw.tx_ci[r] != hw.tx_pi[r])?;
            hw.tx_next = (ring + 1) % n;
            (ring, hw.tx_ci[ring] % self.cfg.tx_ring_size)
        };
        self.hw_tx_ring(ring, slot, now_ns).then_some(ring)
    }

    fn hw_tx_ring(&self, ring: usize, slot: usize, now_ns: u64) -> bool {
        let d = desc_addr(self.tx_rings[ring].1, slot);
        let mut desc = [0u8; DESC_SIZE as usize];
        match self.bus_read(d, &mut desc) {
            Some(true) => {}
            Some(false) => {
                self.tx_abort();
                return true;
            }
            None => return true,
        }
        let (addr, len, flags, _) = parse_desc(&desc);
        if flags & FLAG_READY == 0 {
            return false;
        }
        // The buffer address is a bus word the driver wrote into the descriptor.
        let addr = DmaAddr::new(addr);
        let mut frame = vec![0u8; len as usize];
        match self.bus_read(addr, &mut frame) {
            Some(true) => {
                self.stats.lock().tx_sent += 1;
                if frame.len() == super::PING_LEN {
                    self.peer_got_reply(now_ns);
                }
            }
            Some(false) => {
                self.tx_abort();
                return true;
            }
            None => return true,
        }
        self.hw.lock().tx_ci[ring] += 1;
        true
    }

    /// The peer received an echo reply: it sends the next request after its turnaround, but
    /// not faster than the configured rate.
    fn peer_got_reply(&self, now_ns: u64) {
        let mut hw = self.hw.lock();
        let at = (now_ns + PEER_TURNAROUND_NS).max(hw.last_sent_ns + self.cfg.flood_interval_ns());
        hw.next_arrival_ns = hw.next_arrival_ns.min(at);
    }

    fn tx_abort(&self) {
        let mut st = self.stats.lock();
        st.errors.tx_dma_aborts += 1;
        st.errors.tx_ring_stalled = true;
    }

    fn hw_rx(&self, now_ns: u64) -> bool {
        // The peer sends one echo request when it is due.
        let seq = {
            let mut hw = self.hw.lock();
            if hw.flood_left == 0 || now_ns < hw.next_arrival_ns {
                return false;
            }
            hw.flood_left -= 1;
            hw.seq += 1;
            // `ping -f`: the next request goes when this one's reply comes back, or after
            // 10 ms without one (its 100-per-second floor). The peer keeps its own time: the
            // request was sent when it was due, however late this engine gets to it, so
            // requests that came in while the engine was not looking are all there.
            let sent = hw.next_arrival_ns;
            hw.last_sent_ns = sent;
            hw.next_arrival_ns = sent + PING_FLOOD_FLOOR_NS;
            hw.seq
        };
        // The frame goes to the next descriptor the engine holds; with none held it fetches
        // one first.
        if self.hw.lock().rx_cache.is_empty() && !self.rx_prefetch(1) {
            self.stats.lock().rx_dropped += 1;
            return true;
        }
        let target = self.hw.lock().rx_cache.pop_front();
        let Some((slot, addr)) = target else {
            self.stats.lock().rx_dropped += 1;
            return true;
        };
        let written = match self.bus_write(addr, &request_bytes(seq)) {
            Some(true) => true,
            Some(false) => {
                let mut st = self.stats.lock();
                st.errors.rx_dma_aborts += 1;
                st.rx_dropped += 1;
                false
            }
            None => {
                self.stats.lock().rx_dropped += 1;
                false
            }
        };
        if !written {
            // The descriptor was used up either way; the engine fetches the next ones.
            self.rx_prefetch(self.cfg.rx_prefetch);
            return true;
        }
        self.stats.lock().rx_written += 1;
        let ring = self.hw.lock().rx_ring;
        let d = desc_addr(self.rx_rings[ring].1, slot);
        let mut tail = [0u8; 6];
        tail[..2].copy_from_slice(&(FLAG_READY | FLAG_FULL).to_le_bytes());
        tail[2..].copy_from_slice(&seq.to_le_bytes());
        // The flags and the sequence number: bytes 10..16 of the descriptor.
        if self.bus_write(DmaAddr::new(d.as_u64() + 10), &tail) == Some(false) {
            self.stats.lock().errors.rx_dma_aborts += 1;
        }
        // Keep the descriptor cache full: the engine fetches the next descriptors after it
        // used one, not when the next frame arrives, so a frame's first transaction is its
        // data write (inferred from how descriptor-caching DMA engines work; not from ENETC's
        // manual). The seed's first reports (GFSYNR0 0x2 with MULTI) follow from it.
        self.rx_prefetch(self.cfg.rx_prefetch);
        true
    }

    /// Fetch receive descriptors until the engine holds `upto` (reads; stops at the first
    /// descriptor the driver has not made ready, or at an aborted read). Whether it holds one.
    fn rx_prefetch(&self, upto: usize) -> bool {
        loop {
            let (ring, slot) = {
                let hw = self.hw.lock();
                if hw.rx_cache.len() >= upto {
                    break;
                }
                (hw.rx_ring, hw.rx_fetch % self.cfg.rx_ring_size)
            };
            let d = desc_addr(self.rx_rings[ring].1, slot);
            let mut desc = [0u8; DESC_SIZE as usize];
            match self.bus_read(d, &mut desc) {
                Some(true) => {}
                Some(false) => {
                    self.stats.lock().errors.rx_dma_aborts += 1;
                    break;
                }
                None => break,
            }
            let (addr, _, flags, _) = parse_desc(&desc);
            if flags & FLAG_READY == 0 || flags & FLAG_FULL != 0 {
                break;
            }
            let mut hw = self.hw.lock();
            hw.rx_cache.push_back((slot, DmaAddr::new(addr)));
            hw.rx_fetch += 1;
        }
        !self.hw.lock().rx_cache.is_empty()
    }

    /// A device read through the SMMU. `None`: not issued (Bus Master Enable clear);
    /// `Some(false)`: aborted.
    fn bus_read(&self, dma: DmaAddr, buf: &mut [u8]) -> Option<bool> {
        if !(self.bus_master)() {
            self.stats.lock().bme_suppressed += 1;
            return None;
        }
        let before = self.stats.lock().bus.clone();
        let r = self.smmu.dma_read(self.cfg.stream_id, dma.bus_iova(), buf);
        let ok = self.account(dma, false, r);
        self.note_in_flight(&before);
        Some(ok)
    }

    /// A transaction that strayed after the function's Bus Master Enable was cleared was
    /// issued before (it was in flight at the clear): count it as such for the verdict.
    fn note_in_flight(&self, before: &crate::ownership::DmaEvidence) {
        if (self.bus_master)() {
            return;
        }
        let mut st = self.stats.lock();
        let now = st.bus.stray_writes + st.bus.stray_reads;
        let then = before.stray_writes + before.stray_reads;
        st.stray_in_flight_at_bme_clear += now.saturating_sub(then);
    }

    /// A device write through the SMMU, as [`Self::bus_read`].
    fn bus_write(&self, dma: DmaAddr, data: &[u8]) -> Option<bool> {
        if !(self.bus_master)() {
            self.stats.lock().bme_suppressed += 1;
            return None;
        }
        let before = self.stats.lock().bus.clone();
        let r = self
            .smmu
            .dma_write(self.cfg.stream_id, dma.bus_iova(), data);
        let ok = self.account(dma, true, r);
        self.note_in_flight(&before);
        Some(ok)
    }

    /// Check every chunk of a transaction against the ownership map and count what happened.
    fn account(&self, dma: DmaAddr, write: bool, r: Result<Vec<Translation>, BusError>) -> bool {
        let mut ev = crate::ownership::DmaEvidence::default();
        let ok = ownership::account(&self.owned, &self.retired, dma, write, r, &mut ev);
        self.stats.lock().bus.merge(&ev);
        ok
    }
}

/// The bus address of descriptor `slot` of the ring at `ring`.
fn desc_addr(ring: DmaAddr, slot: usize) -> DmaAddr {
    DmaAddr::new(ring.as_u64() + slot as u64 * DESC_SIZE)
}
