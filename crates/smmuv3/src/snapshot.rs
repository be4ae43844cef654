//! Saving the model's state and putting it back in place, for the schedule explorer's
//! booted-machine snapshot: every schedule starts from the same booted machine, restored into
//! the one a worker already has (its memory and interrupt wiring stay).
//!
//! Saved: everything behind the model's lock (registers and queue pointers, TLB, configuration
//! cache, counters, interrupts raised but not yet delivered, invalidations not yet in effect).
//! Not saved: the memory the model walks and writes (stream table, CDs, page tables, queues,
//! MSIs), which is [`physmem`]'s to save, and the interrupt handler, which is wiring.

use crate::state::State;
use crate::{SmmuV3, SmmuV3Config};
use thiserror::Error;

/// The model's state at one moment ([`SmmuV3::snapshot`]).
#[derive(Clone)]
pub struct SmmuV3Snapshot {
    config: SmmuV3Config,
    state: State,
}

/// A snapshot cannot be put back into this model.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SmmuV3SnapshotError {
    /// The snapshot is of a model with another configuration.
    #[error(
        "snapshot of a {snapshot} model restored into a {model} model of another configuration"
    )]
    ConfigDiffers {
        /// The snapshot's preset name.
        snapshot: &'static str,
        /// The model's preset name.
        model: &'static str,
    },
}

impl SmmuV3 {
    /// The model's state now. Take it while nothing else accesses the model.
    pub fn snapshot(&self) -> SmmuV3Snapshot {
        SmmuV3Snapshot {
            config: self.cfg.clone(),
            state: self.state.lock().clone(),
        }
    }

    /// Put the state of `snap` back. Refused, changing nothing, when `snap` is of a model of
    /// another configuration. Restore with the memory of the same moment, while nothing else
    /// accesses the model.
    pub fn restore(&self, snap: &SmmuV3Snapshot) -> Result<(), SmmuV3SnapshotError> {
        if snap.config != self.cfg {
            return Err(SmmuV3SnapshotError::ConfigDiffers {
                snapshot: snap.config.name,
                model: self.cfg.name,
            });
        }
        self.state.lock().clone_from(&snap.state);
        Ok(())
    }
}
