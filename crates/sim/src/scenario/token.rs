//! Replay tokens: the text that names one run exactly.

use super::{KernelBehaviour, RebootScenario, Trigger};
use smmu_sync::Arc;
use std::fmt;

/// Which interleaving: an explicit sparse schedule, or run 0 of a seeded strategy (what
/// `smmu-lab run --seed N` takes, with a short token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleRef {
    /// `s…`: deviations from the default policy.
    Sparse(explore::Schedule),
    /// `random@N` or `pctD@N`.
    Seeded {
        /// Random or PCT.
        strategy: explore::Strategy,
        /// The explorer seed.
        seed: u64,
    },
}

impl fmt::Display for ScheduleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleRef::Sparse(s) => f.write_str(&s.encode()),
            ScheduleRef::Seeded {
                strategy: explore::Strategy::Pct { depth },
                seed,
            } => write!(f, "pct{depth}@{seed}"),
            ScheduleRef::Seeded { seed, .. } => write!(f, "random@{seed}"),
        }
    }
}

impl std::str::FromStr for ScheduleRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((name, seed)) = s.split_once('@') {
            let seed: u64 = seed
                .parse()
                .map_err(|_| format!("schedule '{s}': seed '{seed}' is not a number"))?;
            let strategy = match name {
                "random" => explore::Strategy::Random,
                _ => match name.strip_prefix("pct").map(str::parse::<usize>) {
                    Some(Ok(depth)) if depth > 0 => explore::Strategy::Pct { depth },
                    _ => {
                        return Err(format!(
                            "schedule '{s}': '{name}' is not random or pctN (N ≥ 1)"
                        ))
                    }
                },
            };
            return Ok(ScheduleRef::Seeded { strategy, seed });
        }
        explore::Schedule::decode(s)
            .map(ScheduleRef::Sparse)
            .map_err(|e| e.to_string())
    }
}

impl ScheduleRef {
    /// Run the scenario on this schedule. `Err` when a sparse schedule does not fit it (names
    /// a task that could not run at that step: another board, command line or version).
    pub fn replay(
        &self,
        scenario: Arc<RebootScenario>,
        max_steps: usize,
    ) -> Result<explore::Record<RebootScenario>, String> {
        match self {
            ScheduleRef::Sparse(s) => explore::replay(scenario, s, max_steps).map_err(|_| {
                format!("schedule {s} does not fit this machine (another board, command line or smmu-lab version?)")
            }),
            ScheduleRef::Seeded { strategy, seed } => {
                Ok(explore::run_one(scenario, *strategy, *seed, max_steps))
            }
        }
    }
}

/// What names one run exactly, given the same board and command line: scenario, kernel and
/// schedule. Text form `reboot:linux-6.1:s4-1.2-2` or `reboot:linux-6.1:random@3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayToken {
    /// The scenario.
    pub trigger: Trigger,
    /// The kernel behaviour.
    pub kernel: KernelBehaviour,
    /// The interleaving.
    pub schedule: ScheduleRef,
}

impl fmt::Display for ReplayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.trigger.name(),
            self.kernel.name(),
            self.schedule
        )
    }
}

impl std::str::FromStr for ReplayToken {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().splitn(3, ':');
        let (Some(t), Some(k), Some(sch)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "replay token '{s}' is not of the form SCENARIO:KERNEL:SCHEDULE"
            ));
        };
        let trigger = Trigger::from_name(t).ok_or_else(|| {
            format!("replay token: unknown scenario '{t}' (reboot, kexec, unbind)")
        })?;
        let kernel = KernelBehaviour::from_name(k).ok_or_else(|| {
            format!("replay token: unknown kernel '{k}' (linux-6.1, linux-6.2, quiesce)")
        })?;
        let schedule: ScheduleRef = sch.parse().map_err(|e| format!("replay token: {e}"))?;
        Ok(ReplayToken {
            trigger,
            kernel,
            schedule,
        })
    }
}
