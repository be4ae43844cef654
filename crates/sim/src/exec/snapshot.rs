//! The CPUs' state saved and put back in place (the explorer's booted-machine snapshot).

use super::{Cpu, Exec};
use crate::SnapshotError;

/// Every CPU's interrupts, softirqs, NAPI list, works, timers, holder and statistics, and the
/// entropy pool, at one moment ([`Exec::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSnapshot {
    cpus: Vec<Cpu>,
    entropy: u64,
}

impl Exec {
    /// The CPUs now. Take it while no CPU runs.
    pub fn snapshot(&self) -> ExecSnapshot {
        ExecSnapshot {
            cpus: self.cpus.iter().map(|c| c.lock().clone()).collect(),
            entropy: *self.entropy.lock(),
        }
    }

    /// Put the CPUs of `s` back; refused, changing nothing, for a machine with another number
    /// of CPUs.
    pub fn restore(&self, s: &ExecSnapshot) -> Result<(), SnapshotError> {
        if s.cpus.len() != self.cpus.len() {
            return Err(SnapshotError::Shape {
                component: "exec",
                what: "CPUs",
                snapshot: s.cpus.len(),
                live: self.cpus.len(),
            });
        }
        for (live, saved) in self.cpus.iter().zip(&s.cpus) {
            live.lock().clone_from(saved);
        }
        *self.entropy.lock() = s.entropy;
        Ok(())
    }
}
