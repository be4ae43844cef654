//! Single runs: one seeded run, the replay of a schedule, and the shrinking of a failing one.

use crate::run::{execute, probe_steps, record, run_seed};
use crate::sched::{Driver, Inner, SparseReplay, Strategy};
use crate::{RunFailure, Scenario, ScenarioRunRecord, Schedule};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// One run under `strategy` seeded with `seed` (run 0 of `explore` with the same options).
pub fn run_one<S: Scenario>(
    scenario: Arc<S>,
    strategy: Strategy,
    seed: u64,
    max_steps: usize,
) -> ScenarioRunRecord<S> {
    let steps = probe_steps(&scenario, strategy, max_steps);
    let driver = Rc::new(RefCell::new(Driver::new(Inner::for_run(
        strategy,
        run_seed(seed, 0),
        steps,
    ))));
    let result =
        execute(&scenario, &driver, max_steps).unwrap_or(Err(RunFailure::SchedulerRefused));
    record(&*scenario, 0, &driver, result)
}

/// Replay a schedule. `Err` when the schedule does not fit the scenario (a deviation named a
/// task that could not run at that step), with the record of what ran anyway.
pub fn replay<S: Scenario>(
    scenario: Arc<S>,
    schedule: &Schedule,
    max_steps: usize,
) -> Result<ScenarioRunRecord<S>, ScenarioRunRecord<S>> {
    let driver = Rc::new(RefCell::new(Driver::new(Inner::Replay(SparseReplay::new(
        schedule.clone(),
    )))));
    let result =
        execute(&scenario, &driver, max_steps).unwrap_or(Err(RunFailure::ReplaySchedulerRefused));
    let rec = record(&*scenario, 0, &driver, result);
    if driver.borrow().diverged() > 0 {
        Err(rec)
    } else {
        Ok(rec)
    }
}

/// Shrink a failing schedule: drop deviations, latest first, while the run still violates
/// `property`. Returns the smallest schedule found and its record.
pub fn minimise<S: Scenario>(
    scenario: Arc<S>,
    failing: &Schedule,
    property: &str,
    max_steps: usize,
) -> (Schedule, Option<ScenarioRunRecord<S>>) {
    let mut best = failing.clone();
    let mut best_rec = None;
    let mut i = best.deviations.len();
    while i > 0 {
        i -= 1;
        let candidate = best.without(i);
        if let Ok(rec) = replay(scenario.clone(), &candidate, max_steps) {
            if rec.violations.iter().any(|v| v == property) {
                // The replayed run's own sparse form may be shorter still.
                best = rec.schedule.clone();
                best_rec = Some(rec);
                i = i.min(best.deviations.len());
            }
        }
    }
    if best_rec.is_none() {
        if let Ok(rec) = replay(scenario, &best, max_steps) {
            best_rec = Some(rec);
        }
    }
    (best, best_rec)
}
