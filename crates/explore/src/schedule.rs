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
        let bad = |why: &str| ScheduleError(format!("{why} in schedule '{text}'"));
        let body = text
            .strip_prefix('s')
            .ok_or_else(|| bad("missing leading 's'"))?;
        let mut deviations = Vec::new();
        let mut step = 0u32;
        if !body.is_empty() {
            for (i, part) in body.split('.').enumerate() {
                let (delta, task) = part
                    .split_once('-')
                    .ok_or_else(|| bad("a deviation without '-'"))?;
                let delta = u32::from_str_radix(delta, 36).map_err(|_| bad("bad step"))?;
                let task = u16::from_str_radix(task, 36).map_err(|_| bad("bad task"))?;
                if i > 0 && delta == 0 {
                    return Err(bad("steps not increasing"));
                }
                step = step
                    .checked_add(delta)
                    .ok_or_else(|| bad("step overflow"))?;
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

/// A schedule text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

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
    fn decode_errors_name_the_problem() {
        assert!(Schedule::decode("x")
            .unwrap_err()
            .0
            .contains("missing leading 's'"));
        assert!(Schedule::decode("s1")
            .unwrap_err()
            .0
            .contains("without '-'"));
        assert!(Schedule::decode("s1-1.0-2")
            .unwrap_err()
            .0
            .contains("not increasing"));
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
