//! Replay tokens: the text that names one run exactly.

use super::{KernelBehaviour, RebootScenario, Trigger};
use smmu_sync::Arc;
use std::fmt;
use std::num::ParseIntError;
use thiserror::Error;

/// Why a schedule text (`s…`, `random@N`, `pctD@N`) does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleRefError {
    /// The seed after `@` is not a `u64`.
    #[error("schedule '{text}': seed '{seed}' is not a number")]
    BadSeed {
        /// The whole schedule text.
        text: String,
        /// The part after `@`.
        seed: String,
        /// Why it is not a number.
        #[source]
        source: ParseIntError,
    },
    /// The strategy before `@` is neither `random` nor `pctD` with D ≥ 1.
    #[error("schedule '{text}': '{name}' is not random or pctN (N ≥ 1)")]
    BadStrategy {
        /// The whole schedule text.
        text: String,
        /// The part before `@`.
        name: String,
    },
    /// A sparse schedule (`s…`) that does not decode.
    #[error(transparent)]
    Sparse(#[from] explore::ScheduleError),
}

/// A sparse schedule that names a task which could not run at that step on this machine
/// (another board, command line or version).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("schedule {schedule} does not fit this machine (another board, command line or smmu-lab version?)")]
pub struct ScheduleMisfit {
    /// The schedule that did not fit.
    pub schedule: explore::Schedule,
}

/// Why a replay token (`SCENARIO:KERNEL:SCHEDULE`) does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplayTokenError {
    /// Fewer than three `:`-separated parts.
    #[error("replay token '{text}' is not of the form SCENARIO:KERNEL:SCHEDULE")]
    Form {
        /// The token text.
        text: String,
    },
    /// The first part names no scenario.
    #[error("replay token: unknown scenario '{name}' (reboot, kexec, unbind)")]
    UnknownScenario {
        /// The first part.
        name: String,
    },
    /// The second part names no kernel behaviour.
    #[error("replay token: unknown kernel '{name}' (linux-6.1, linux-6.2, quiesce)")]
    UnknownKernel {
        /// The second part.
        name: String,
    },
    /// The third part is not a schedule.
    #[error("replay token: {0}")]
    Schedule(#[source] ScheduleRefError),
}

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
    type Err = ScheduleRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((name, seed)) = s.split_once('@') {
            let seed: u64 = seed.parse().map_err(|source| ScheduleRefError::BadSeed {
                text: s.to_string(),
                seed: seed.to_string(),
                source,
            })?;
            let strategy = match name {
                "random" => explore::Strategy::Random,
                _ => match name.strip_prefix("pct").map(str::parse::<usize>) {
                    Some(Ok(depth)) if depth > 0 => explore::Strategy::Pct { depth },
                    _ => {
                        return Err(ScheduleRefError::BadStrategy {
                            text: s.to_string(),
                            name: name.to_string(),
                        })
                    }
                },
            };
            return Ok(ScheduleRef::Seeded { strategy, seed });
        }
        Ok(ScheduleRef::Sparse(explore::Schedule::decode(s)?))
    }
}

impl ScheduleRef {
    /// Run the scenario on this schedule. `Err` when a sparse schedule does not fit it (names
    /// a task that could not run at that step: another board, command line or version).
    pub fn replay(
        &self,
        scenario: Arc<RebootScenario>,
        max_steps: usize,
    ) -> Result<explore::ScenarioRunRecord<RebootScenario>, ScheduleMisfit> {
        match self {
            ScheduleRef::Sparse(s) => {
                explore::replay(scenario, s, max_steps).map_err(|_| ScheduleMisfit {
                    schedule: s.clone(),
                })
            }
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
    type Err = ReplayTokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().splitn(3, ':');
        let (Some(t), Some(k), Some(sch)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ReplayTokenError::Form {
                text: s.to_string(),
            });
        };
        let trigger = Trigger::from_name(t).ok_or_else(|| ReplayTokenError::UnknownScenario {
            name: t.to_string(),
        })?;
        let kernel =
            KernelBehaviour::from_name(k).ok_or_else(|| ReplayTokenError::UnknownKernel {
                name: k.to_string(),
            })?;
        let schedule: ScheduleRef = sch.parse().map_err(ReplayTokenError::Schedule)?;
        Ok(ReplayToken {
            trigger,
            kernel,
            schedule,
        })
    }
}
