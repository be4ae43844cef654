//! An ENETC-like NIC: the `fsl_enetc` driver half ([`Enetc`]: `ndo_start_xmit`, the MSI-X
//! handler, `enetc_poll` in NAPI) and the hardware half (`hw`: a DMA engine that moves one
//! descriptor's data per step through the SMMU and raises its MSI).
//!
//! Only what the seed's crash depends on is modelled, but that part is real: rings of 16-byte
//! descriptors live in coherent DMA memory (ENETC's default 2048 of each, configurable), every
//! packet buffer is `dma_map_page`d before the hardware sees it and `dma_unmap_page`d after it
//! completes (TX completion in `enetc_clean_tx_ring`); receive pages are mapped when the ring
//! is filled and reused in place while the stack gives them back (`enetc_reuse_page`), a page
//! missing from a slot being mapped afresh (`enetc_refill_rx_ring`). Every access of the hardware to memory is a
//! transaction through the SMMU model with the ENETC's stream ID (0x429 on the wire on
//! LS1028A), issued only while the function's PCI Bus Master Enable is set.
//!
//! The driver's code runs in the context the kernel's execution model ([`crate::exec`]) gives
//! it: MLD reports from the `mld_ifc_work` kworker, the poll and the ICMP echo replies it sends
//! in softirq (on `irq_exit` or in `ksoftirqd`). An Oops names that context's task and ends its
//! call trace with that context's frames.
//!
//! The hardware half keeps the evidence for the verdict: it knows which physical page each DMA
//! address was mapped to by the driver (the ownership map), so a transaction that lands anywhere
//! else is *stray* (it bypassed translation) or *foreign* (translated somewhere the mapping does
//! not own). It also keeps the device's side of a blocked transaction: an aborted read or write
//! is a DMA error the ring sees (ENETC's error counters), and an aborted transmit stalls its ring.

mod desc;
mod driver;
pub(crate) mod frames;
mod hw;
mod snapshot;
pub mod watchdog;

use crate::ownership::DmaEvidence;
pub use driver::{Crash, Enetc, Kasan, MsiRoute};
pub use hw::DeviceErrors;
pub use snapshot::EnetcSnapshot;
use thiserror::Error;

/// Length of the echo requests of the ping flood (IPv4 + ICMP, 56 data bytes, plus Ethernet).
pub const PING_LEN: usize = 98;
/// Length of an MLDv2 report frame.
pub const MLD_LEN: usize = 90;
/// The ping-flood peer's floor: `ping -f` sends the next echo request when the reply comes back,
/// or after 10 ms without one ("as fast as they come back or one hundred times per second,
/// whichever is more", ping(8)). The peer's own behaviour, not the board's: the seed's quiet
/// stretches outlast it several times over (docs/seed-quiet-stretch.md).
pub const PING_FLOOD_FLOOR_NS: u64 = 10_000_000;
/// ENETC's default ring sizes (`ENETC_RX_RING_DEFAULT_SIZE`, `ENETC_TX_RING_DEFAULT_SIZE`).
pub const DEFAULT_RING_SIZE: usize = 2048;
/// Largest ring smmu-lab accepts (the kernel memory pool holds 8192 packet buffers).
pub const MAX_RING_SIZE: usize = 4096;
/// Gigabit line rate for 98-byte frames (plus 20 bytes of preamble, SFD and inter-frame gap).
pub const MAX_FLOOD_RATE: u64 = 1_000_000_000 / (118 * 8);

/// The slowest `ping -f` peer: it sends a request at least every [`PING_FLOOD_FLOOR_NS`], so a
/// most-requests-per-second bound below this could never hold.
pub const MIN_FLOOD_RATE: u64 = 1_000_000_000 / PING_FLOOD_FLOOR_NS;

/// Most RX/TX ring pairs (MSI-X vectors) smmu-lab accepts: an ENETC PF's station interface
/// has 8 receive rings (`si->num_rx_rings`; smmu-lab's bound, from the LS1028A PF
/// configuration as the previous notes give it, not re-read in the reference manual).
pub const MAX_RINGS: usize = 8;
/// Entries of the PF's RSS indirection table (`si->num_rss`): the default table maps entry
/// *i* to ring *i* mod the ring count (`enetc_setup_default_rss_table`).
pub const RSS_ENTRIES: u32 = 64;

/// Geometry and identity of one NIC, and the ping-flood peer on its wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnetcConfig {
    /// RX/TX ring pairs, each with its own MSI-X vector and NAPI instance. 0: one per online
    /// CPU, as `enetc_init_si_rings_params` sets `num_rx_rings` and `bdr_int_num` (the
    /// machine resolves it from the board's `/cpus`). Vector *i* is affine to CPU *i* mod the
    /// CPU count (`irq_set_affinity_hint` in `enetc_setup_irqs`).
    pub rings: usize,
    /// The ping-flood flow's RSS hash (Toeplitz over its IPv4 addresses; ICMP has no ports):
    /// the frames land on ring `table[hash % 64]`. Default 0, ring 0: the seed's receive poll
    /// ran on CPU 0 (seed fact, `ksoftirqd/0`).
    pub flood_rss_hash: u32,
    /// The stack's hash of the echo replies' flow (`skb_tx_hash`: the transmit queue is
    /// `reciprocal_scale(hash, queues)`; ENETC has no `ndo_select_queue` and sets no XPS).
    /// Default 0, queue 0: the seed's TX completion ran in `ksoftirqd/0` (seed fact).
    pub reply_tx_hash: u32,
    /// The stack's hash of the MLD reports' flow (link-local source to ff02::16). Not in the
    /// seed: smmu-lab's default 0x8000_0000 puts them on the upper half of the queues (queue 1
    /// of 2), so their TX completion is polled by the second vector's CPU.
    pub mld_tx_hash: u32,
    /// Transmit descriptors.
    pub tx_ring_size: usize,
    /// Receive descriptors.
    pub rx_ring_size: usize,
    /// Stream ID on the wire (TBU bits included): 0x429 for ENETC PF0 on LS1028A.
    pub stream_id: u32,
    /// Receive descriptors the engine keeps prefetched.
    pub rx_prefetch: usize,
    /// Echo requests the ping-flood peer sends in all.
    pub flood_packets: u32,
    /// Most echo requests per second the peer sends. `ping -f` sends the next request when a
    /// reply comes back (after the peer's own turnaround), and at least 100 a second.
    pub flood_rate: u64,
    /// The MLD unsolicited report interval: `mld_ifc_work` is (re-)armed with a random delay
    /// below it (1 s for MLDv2).
    pub mld_interval_ns: u64,
}

impl Default for EnetcConfig {
    fn default() -> Self {
        EnetcConfig {
            rings: 0,
            flood_rss_hash: 0,
            reply_tx_hash: 0,
            mld_tx_hash: 0x8000_0000,
            tx_ring_size: DEFAULT_RING_SIZE,
            rx_ring_size: DEFAULT_RING_SIZE,
            stream_id: 0x429,
            rx_prefetch: 2,
            flood_packets: 10_000,
            flood_rate: 2_000,
            mld_interval_ns: 1_000_000_000,
        }
    }
}

/// An impossible NIC or flood parameter.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NicConfigError {
    /// A ring size ENETC cannot have.
    #[error("{ring} ring size {size}: must be a multiple of 8 between 8 and {MAX_RING_SIZE} (ENETC's BD ring length is in units of 8 descriptors)")]
    RingSize {
        /// `tx` or `rx`.
        ring: &'static str,
        /// The size asked for.
        size: usize,
    },
    /// A ring count ENETC cannot have.
    #[error("{rings} ring pairs: must be between 1 and {MAX_RINGS} (an ENETC PF's receive rings)")]
    Rings {
        /// The count asked for.
        rings: usize,
    },
    /// A flood rate the wire cannot carry.
    #[error("flood rate {rate} packets/s: must be between {MIN_FLOOD_RATE} (ping -f sends at least one request every 10 ms) and {MAX_FLOOD_RATE} (gigabit line rate for 98-byte frames)")]
    FloodRate {
        /// The rate asked for.
        rate: u64,
    },
}

impl EnetcConfig {
    /// Check the rings and the flood rate.
    pub fn check(&self) -> Result<(), NicConfigError> {
        for (ring, size) in [("tx", self.tx_ring_size), ("rx", self.rx_ring_size)] {
            if !(8..=MAX_RING_SIZE).contains(&size) || size % 8 != 0 {
                return Err(NicConfigError::RingSize { ring, size });
            }
        }
        if self.rings > MAX_RINGS {
            return Err(NicConfigError::Rings { rings: self.rings });
        }
        if !(MIN_FLOOD_RATE..=MAX_FLOOD_RATE).contains(&self.flood_rate) {
            return Err(NicConfigError::FloodRate {
                rate: self.flood_rate,
            });
        }
        Ok(())
    }

    /// The ring pairs (vectors) in use: `rings`, or one per CPU of `cpus`.
    pub fn ring_pairs(&self, cpus: u32) -> usize {
        if self.rings == 0 {
            (cpus.max(1) as usize).min(MAX_RINGS)
        } else {
            self.rings
        }
    }

    /// The receive ring the flood's frames land on (RSS through the default table).
    pub fn flood_rx_ring(&self) -> usize {
        ((self.flood_rss_hash % RSS_ENTRIES) as usize) % self.rings.max(1)
    }

    /// The transmit queue of a flow with the stack's `hash` (`reciprocal_scale`).
    pub fn tx_queue(&self, hash: u32) -> usize {
        ((u64::from(hash) * self.rings.max(1) as u64) >> 32) as usize
    }

    /// Simulated nanoseconds between two echo requests.
    pub fn flood_interval_ns(&self) -> u64 {
        1_000_000_000 / self.flood_rate.max(1)
    }
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
    /// DMA-API calls that failed with a typed error (safe core).
    pub dma_api_errors: u64,
    /// DMA-API calls that used a freed domain (Linux-faithful core).
    pub use_after_free: u64,
    /// Transactions the function did not issue because Bus Master Enable was clear.
    pub bme_suppressed: u64,
    /// Stray transactions issued while Bus Master Enable was set and completed after it was
    /// cleared (in flight at the clear: PCIe does not recall a request already issued).
    pub stray_in_flight_at_bme_clear: u64,
    /// MSI writes the function issued (to its message address, through the SMMU).
    pub msis: u64,
    /// MSI writes that raised no interrupt: the SMMU blocked them, or translated them
    /// somewhere other than the ITS doorbell (bypass: the IOVA used as a physical address).
    pub msis_lost: u64,
    /// Of those, the ones sent when the driver's poll re-enabled the vector (the rest were
    /// sent on a ring event): each lane of the timeline notes its own.
    pub msis_lost_on_reenable: u64,
    /// Where its transactions went: blocked, stray, foreign.
    pub bus: DmaEvidence,
    /// What the device saw of blocked transactions.
    pub errors: DeviceErrors,
}
