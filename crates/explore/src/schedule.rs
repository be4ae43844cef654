//! Schedules: what was chosen at each scheduling decision, in a sparse, replayable form.
//!
//! A run's interleaving is fully described by the decisions where the scheduler did something
//! other than the *default policy* (keep running the current task if it can run; otherwise the
//! lowest-numbered runnable task). Recording only those deviations gives short tokens, makes
//! replay independent of which strategy found the run, and makes minimisation simple: drop
//! deviations while the failure persists.

use std::fmt;
use thiserror::Error;

/// What the default policy picks: keep running the current task unless it yields or cannot
/// run; then the next runnable task after it in id order (wrapping), so a task that waits by
/// yielding lets the others progress.
pub fn default_choice(runnable: &[usize], current: Option<usize>, yielding: bool) -> Option<usize> {
    match current {
        Some(c) if runnable.contains(&c) && !(yielding && runnable.len() > 1) => Some(c),
        Some(c) if yielding => runnable
            .iter()
            .copied()
            .filter(|&t| t > c)
            .min()
            .or_else(|| runnable.iter().copied().filter(|&t| t != c).min()),
        _ => runnable.iter().copied().min(),
    }
}

/// One decision as it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Runnable task ids, ascending.
    pub runnable: Vec<usize>,
    pub current: Option<usize>,
    /// The current task asked to yield (it waits for something another task holds).
    pub yielding: bool,
    pub chosen: usize,
}

impl Decision {
    /// Switching away from a task that could have continued and did not ask to yield.
    pub fn is_preemption(&self) -> bool {
        !self.yielding
            && matches!(self.current, Some(c) if c != self.chosen && self.runnable.contains(&c))
    }
}

/// A departure from the default policy: at decision `step`, run `task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deviation {
    pub step: u32,
    pub task: u16,
}

/// A replayable interleaving.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Sorted by step.
    pub deviations: Vec<Deviation>,
}

impl Schedule {
    /// The sparse form of a recorded run.
    pub fn from_trace(trace: &[Decision]) -> Schedule {
        let deviations = trace
            .iter()
            .enumerate()
            .filter(|(_, d)| default_choice(&d.runnable, d.current, d.yielding) != Some(d.chosen))
            .map(|(i, d)| Deviation {
                step: i as u32,
                task: d.chosen as u16,
            })
            .collect();
        Schedule { deviations }
    }

    /// The same schedule without deviation `i`.
    pub fn without(&self, i: usize) -> Schedule {
        let mut deviations = self.deviations.clone();
        if i < deviations.len() {
            deviations.remove(i);
        }
        Schedule { deviations }
    }

    /// Compact text form: `s` then, per deviation, the step delta and task as base-36 numbers
    /// separated by `.` and `-`; `s` alone is the default schedule.
    pub fn encode(&self) -> String {
        let mut out = String::from("s");
        let mut prev = 0u32;
        for (i, d) in self.deviations.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(&base36(u64::from(d.step - prev)));
            out.push('-');
            out.push_str(&base36(u64::from(d.task)));
            prev = d.step;
        }
        out
    }

    /// Parse [`encode`](Self::encode)'s output.
    pub fn decode(text: &str) -> Result<Schedule, ScheduleError> {
        let schedule = || text.to_string();
        let body = text
            .strip_prefix('s')
            .ok_or_else(|| ScheduleError::MissingPrefix {
                schedule: schedule(),
            })?;
        let mut deviations = Vec::new();
        let mut step = 0u32;
        if !body.is_empty() {
            for (i, part) in body.split('.').enumerate() {
                let (delta, task) =
                    part.split_once('-')
                        .ok_or_else(|| ScheduleError::DeviationWithoutDash {
                            schedule: schedule(),
                        })?;
                let delta =
                    u32::from_str_radix(delta, 36).map_err(|source| ScheduleError::BadStep {
                        schedule: schedule(),
                        source,
                    })?;
                let task =
                    u16::from_str_radix(task, 36).map_err(|source| ScheduleError::BadTask {
                        schedule: schedule(),
                        source,
                    })?;
                if i > 0 && delta == 0 {
                    return Err(ScheduleError::StepsNotIncreasing {
                        schedule: schedule(),
                    });
                }
                step = step
                    .checked_add(delta)
                    .ok_or_else(|| ScheduleError::StepOverflow {
                        schedule: schedule(),
                    })?;
                deviations.push(Deviation { step, task });
            }
        }
        Ok(Schedule { deviations })
    }
}

fn base36(mut v: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if v == 0 {
        return "0".into();
    }
    let mut s = Vec::new();
    while v > 0 {
        s.push(DIGITS[(v % 36) as usize]);
        v /= 36;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// A schedule text that does not parse: one variant per problem [`Schedule::decode`] finds,
/// each with the whole text as given.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    /// The text does not start with `s`.
    #[error("missing leading 's' in schedule '{schedule}'")]
    MissingPrefix {
        /// The text as given.
        schedule: String,
    },
    /// A deviation that is not `step-task`.
    #[error("a deviation without '-' in schedule '{schedule}'")]
    DeviationWithoutDash {
        /// The text as given.
        schedule: String,
    },
    /// A step distance that is not a base-36 `u32`.
    #[error("bad step in schedule '{schedule}'")]
    BadStep {
        /// The text as given.
        schedule: String,
        /// Why the number does not parse.
        source: std::num::ParseIntError,
    },
    /// A task that is not a base-36 `u16`.
    #[error("bad task in schedule '{schedule}'")]
    BadTask {
        /// The text as given.
        schedule: String,
        /// Why the number does not parse.
        source: std::num::ParseIntError,
    },
    /// A deviation after the first at distance 0 from the one before it.
    #[error("steps not increasing in schedule '{schedule}'")]
    StepsNotIncreasing {
        /// The text as given.
        schedule: String,
    },
    /// The step distances add up past `u32::MAX`.
    #[error("step overflow in schedule '{schedule}'")]
    StepOverflow {
        /// The text as given.
        schedule: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sparse_form_keeps_only_deviations() {
        let trace = vec![
            Decision {
                runnable: vec![0, 1],
                current: Some(0),
                yielding: false,
                chosen: 0,
            },
            Decision {
                runnable: vec![0, 1],
                current: Some(0),
                yielding: false,
                chosen: 1,
            },
            Decision {
                runnable: vec![0, 2],
                current: Some(1),
                yielding: false,
                chosen: 2,
            },
            // A yielding task handing over to the next one is the default, not a deviation.
            Decision {
                runnable: vec![0, 2],
                current: Some(2),
                yielding: true,
                chosen: 0,
            },
        ];
        let s = Schedule::from_trace(&trace);
        assert_eq!(
            s.deviations,
            vec![
                Deviation { step: 1, task: 1 },
                Deviation { step: 2, task: 2 }
            ]
        );
        assert!(trace[1].is_preemption());
        assert!(!trace[2].is_preemption());
        assert_eq!(s.encode(), "s1-1.1-2");
    }

    #[test]
    fn decode_errors_are_one_variant_per_problem_with_the_same_text() {
        use std::error::Error as _;
        let schedule = |t: &str| t.to_string();
        assert_eq!(
            Schedule::decode("x"),
            Err(ScheduleError::MissingPrefix {
                schedule: schedule("x")
            })
        );
        assert_eq!(
            Schedule::decode("x").unwrap_err().to_string(),
            "missing leading 's' in schedule 'x'"
        );
        assert_eq!(
            Schedule::decode("s1"),
            Err(ScheduleError::DeviationWithoutDash {
                schedule: schedule("s1")
            })
        );
        assert_eq!(
            Schedule::decode("s1").unwrap_err().to_string(),
            "a deviation without '-' in schedule 's1'"
        );
        assert_eq!(
            Schedule::decode("s1-1.0-2"),
            Err(ScheduleError::StepsNotIncreasing {
                schedule: schedule("s1-1.0-2")
            })
        );
        assert_eq!(
            Schedule::decode("s1-1.0-2").unwrap_err().to_string(),
            "steps not increasing in schedule 's1-1.0-2'"
        );
        assert_eq!(
            Schedule::decode("szzzzzzz-1").unwrap_err().to_string(),
            "bad step in schedule 'szzzzzzz-1'"
        );
        assert_eq!(
            Schedule::decode("s1z141z3-1.1z141z3-1"),
            Err(ScheduleError::StepOverflow {
                schedule: schedule("s1z141z3-1.1z141z3-1")
            })
        );
        assert_eq!(
            Schedule::decode("s1z141z3-1.1z141z3-1")
                .unwrap_err()
                .to_string(),
            "step overflow in schedule 's1z141z3-1.1z141z3-1'"
        );
        // The number errors keep the integer parser's error as their source.
        let bad_step = Schedule::decode("s!-1").unwrap_err();
        let ScheduleError::BadStep { source, .. } = &bad_step else {
            panic!("{bad_step:?}")
        };
        assert_eq!(*source, u32::from_str_radix("!", 36).unwrap_err());
        assert_eq!(
            bad_step.source().map(|s| s.to_string()),
            Some("invalid digit found in string".to_string())
        );
        let bad_task = Schedule::decode("s1-zzzz").unwrap_err();
        assert_eq!(bad_task.to_string(), "bad task in schedule 's1-zzzz'");
        let ScheduleError::BadTask { source, .. } = &bad_task else {
            panic!("{bad_task:?}")
        };
        assert_eq!(*source, u16::from_str_radix("zzzz", 36).unwrap_err());
        assert!(bad_task.source().is_some());
        assert!(Schedule::decode("x").unwrap_err().source().is_none());
        assert_eq!(Schedule::decode("s").unwrap(), Schedule::default());
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(mut steps in proptest::collection::btree_set(0u32..100_000, 0..50), tasks in proptest::collection::vec(0u16..40, 50)) {
            let deviations: Vec<Deviation> = std::mem::take(&mut steps)
                .into_iter()
                .zip(tasks)
                .map(|(step, task)| Deviation { step, task })
                .collect();
            let s = Schedule { deviations };
            prop_assert_eq!(Schedule::decode(&s.encode()).unwrap(), s);
        }
    }
}
