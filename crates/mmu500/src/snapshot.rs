//! Saving the model's state and putting it back in place, for the schedule explorer's
//! booted-machine snapshot: every schedule starts from the same booted machine, restored into
//! the one a worker already has (its wiring, the interrupt handler and the ports stay).
//!
//! What is saved is everything the model keeps behind its lock (registers, TLB with its
//! replacement generator, micro-TLB, decoded regimes, resolved streams, counters) and the hit
//! count of every live [`Port`](crate::Port). A port's own micro-TLB belongs to the port:
//! [`Port::snapshot`](crate::Port::snapshot) and [`Port::restore`](crate::Port::restore) save
//! and restore it, and a restored model with a port whose micro-TLB was not restored could hit
//! entries of the abandoned future (their register generation comes round again).
//! The memory the model walks is [`physmem`]'s to save.

use crate::state::State;
use crate::{Mmu500, Mmu500Config};
use smmu_sync::atomic::Ordering;
use thiserror::Error;

/// The model's state at one moment ([`Mmu500::snapshot`]).
#[derive(Clone)]
pub struct ModelSnapshot {
    config: Mmu500Config,
    state: State,
    /// Hits of each live port, in the order the ports were made.
    port_hits: Vec<u64>,
}

/// A snapshot cannot be put back into this model.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelSnapshotError {
    /// The snapshot is of a model with another configuration (the names may still agree: a
    /// board can trim a preset's banks).
    #[error(
        "snapshot of a {snapshot} model restored into a {model} model of another configuration"
    )]
    ConfigDiffers {
        snapshot: &'static str,
        model: &'static str,
    },
    /// Ports were made or dropped since the snapshot: their counts no longer line up.
    #[error("snapshot with {snapshot} live port(s) restored into a model with {live}")]
    PortsDiffer { snapshot: usize, live: usize },
    /// A port's snapshot is of another stream's port.
    #[error(
        "snapshot of the port of stream {snapshot:#x} restored into the port of stream {port:#x}"
    )]
    StreamDiffers { snapshot: u32, port: u32 },
}

impl Mmu500 {
    /// The model's state now. Take it while nothing else accesses the model.
    pub fn snapshot(&self) -> ModelSnapshot {
        let s = self.state.lock();
        let port_hits = self
            .ports
            .lock()
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .collect();
        ModelSnapshot {
            config: self.cfg.clone(),
            state: s.clone(),
            port_hits,
        }
    }

    /// Put the state of `s` back (registers, caches, counters, the ports' hit counts). The
    /// snapshot must be of a model of the same configuration with the same live ports
    /// (refused otherwise, changing nothing); restore each port's micro-TLB with it.
    pub fn restore(&self, snap: &ModelSnapshot) -> Result<(), ModelSnapshotError> {
        if snap.config != self.cfg {
            return Err(ModelSnapshotError::ConfigDiffers {
                snapshot: snap.config.name,
                model: self.cfg.name,
            });
        }
        let mut s = self.state.lock();
        let ports = self.ports.lock();
        if ports.len() != snap.port_hits.len() {
            return Err(ModelSnapshotError::PortsDiffer {
                snapshot: snap.port_hits.len(),
                live: ports.len(),
            });
        }
        for (p, hits) in ports.iter().zip(&snap.port_hits) {
            p.store(*hits, Ordering::Relaxed);
        }
        drop(ports);
        s.clone_from(&snap.state);
        self.publish(&s);
        Ok(())
    }
}
