//! The function's state for the booted-machine snapshot.

use super::driver::{Driver, Enetc};
use super::hw::Hw;
use super::Kasan;
use super::NicStats;
use physmem::PhysAddr;
use smmu_addr::DmaAddr;

/// The driver's rings, the hardware's state, the ownership map, the counters and the
/// unprinted KASAN reports of one ENETC function at one moment ([`Enetc::snapshot`]).
#[derive(Clone, PartialEq, Eq)]
pub struct EnetcSnapshot {
    drv: Driver,
    hw: Hw,
    owned: std::collections::BTreeMap<DmaAddr, PhysAddr>,
    stats: NicStats,
    kasan: Vec<Kasan>,
}

impl std::fmt::Debug for EnetcSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnetcSnapshot")
            .field("owned_pages", &self.owned.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Enetc {
    /// The function's state now (for the booted-machine snapshot; the descriptors and buffers
    /// are in simulated memory, saved with it). Take it while nothing runs.
    pub fn snapshot(&self) -> EnetcSnapshot {
        EnetcSnapshot {
            drv: self.drv.lock().clone(),
            hw: self.hw.lock().clone(),
            owned: self.owned.snapshot(),
            stats: self.stats.lock().clone(),
            kasan: self.kasan.lock().clone(),
        }
    }

    /// Put the state of `s` back; refused, changing nothing, for a function with another
    /// number of rings.
    pub fn restore(&self, s: &EnetcSnapshot) -> Result<(), crate::SnapshotError> {
        let mut drv = self.drv.lock();
        let (live, snap) = (drv.ring_counts(), s.drv.ring_counts());
        if live != snap {
            return Err(crate::SnapshotError::Shape {
                component: "fsl_enetc",
                what: "rings",
                snapshot: snap.0 + snap.1,
                live: live.0 + live.1,
            });
        }
        drv.clone_from(&s.drv);
        drop(drv);
        self.hw.lock().clone_from(&s.hw);
        self.owned.restore(&s.owned);
        self.stats.lock().clone_from(&s.stats);
        self.kasan.lock().clone_from(&s.kasan);
        Ok(())
    }
}
