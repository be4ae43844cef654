//! One execution of a scenario inside shuttle, under a recording driver, and its record.

use crate::sched::{Driver, Inner, SharedDriver, SparseReplay, Strategy};
use crate::{
    RunFailure, RunRecord, RunResult, Scenario, ScenarioRunRecord, Schedule, PANIC_PROPERTY,
};
use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

fn shuttle_config(max_steps: usize) -> shuttle::Config {
    let mut c = shuttle::Config::new();
    c.failure_persistence = shuttle::FailurePersistence::None;
    c.max_steps = shuttle::MaxSteps::FailAfter(max_steps);
    c.silence_warnings = true;
    c
}

/// Run one execution under `driver`, returning the outcome (or why there is none); `None` when
/// the scheduler declined to start it.
pub(crate) fn execute<S: Scenario>(
    scenario: &Arc<S>,
    driver: &Rc<RefCell<Driver>>,
    max_steps: usize,
) -> Option<Result<S::Outcome, RunFailure>> {
    driver.borrow_mut().arm();
    let slot: Arc<Mutex<Option<S::Outcome>>> = Arc::new(Mutex::new(None));
    let (scn, out) = (scenario.clone(), slot.clone());
    let runner = shuttle::Runner::new(SharedDriver(driver.clone()), shuttle_config(max_steps));
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runner.run(move || {
            let outcome = smmu_sync::with_explorer(|| scn.run());
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        })
    }));
    match result {
        Ok(0) => None,
        Ok(_) => {
            let outcome = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            Some(outcome.ok_or(RunFailure::NoOutcome))
        }
        Err(payload) => Some(Err(RunFailure::Panicked {
            message: panic_message(&payload),
        })),
    }
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

pub(crate) fn record<S: Scenario>(
    scenario: &S,
    index: u64,
    driver: &Rc<RefCell<Driver>>,
    result: Result<S::Outcome, RunFailure>,
) -> ScenarioRunRecord<S> {
    let d = driver.borrow();
    let schedule = Schedule::from_trace(&d.trace);
    let preemptions = d.trace.iter().filter(|x| x.is_preemption()).count();
    let (outcome, violations, exercised, classes) = match result {
        Ok(o) => {
            let v = scenario.violations(&o);
            let e = scenario.exercised(&o);
            let c = scenario.classify(&o);
            (RunResult::Completed(o), v, e, c)
        }
        Err(failure) => (
            RunResult::Failed(failure),
            vec![PANIC_PROPERTY.to_string()],
            true,
            vec![PANIC_PROPERTY.to_string()],
        ),
    };
    RunRecord {
        index,
        schedule,
        outcome,
        violations,
        exercised,
        classes,
        steps: d.trace.len(),
        preemptions,
    }
}

/// Seed of run `index`: distinct, reproducible streams per run.
pub(crate) fn run_seed(seed: u64, index: u64) -> u64 {
    let mut x = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

/// Decisions of the all-default run: PCT places its change points within that many steps.
pub(crate) fn probe_steps<S: Scenario>(
    scenario: &Arc<S>,
    strategy: Strategy,
    max_steps: usize,
) -> usize {
    if !matches!(strategy, Strategy::Pct { .. }) {
        return 0;
    }
    let driver = Rc::new(RefCell::new(Driver::new(Inner::Replay(SparseReplay::new(
        Schedule::default(),
    )))));
    let _ = execute(scenario, &driver, max_steps);
    let steps = driver.borrow().trace.len();
    steps.max(1)
}
