//! Many runs under one strategy and seed, in parallel where the strategy allows, summed up in
//! a [`Report`] that is the same for any number of jobs.

use crate::run::{execute, probe_steps, record, run_seed};
use crate::sched::{Driver, Inner, Strategy};
use crate::{ExploreOptions, Report, RunFailure, RunResult, Scenario, ScenarioRunRecord};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Explore `scenario` under `opts`. `progress(done, failing)` is called after every run.
pub fn explore<S: Scenario>(
    scenario: Arc<S>,
    opts: ExploreOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Report<RunResult<S::Outcome>> {
    let first_fail = AtomicU64::new(u64::MAX);
    let done = AtomicU64::new(0);
    let failing = AtomicU64::new(0);
    // Every run's summary; full records (with outcomes) only for failing runs.
    let summaries: Mutex<Vec<RunSummary>> = Mutex::new(Vec::new());
    let results: Mutex<Vec<ScenarioRunRecord<S>>> = Mutex::new(Vec::new());
    let mut exhausted = false;

    let finish = |rec: ScenarioRunRecord<S>| {
        if !rec.violations.is_empty() {
            first_fail.fetch_min(rec.index, Ordering::SeqCst);
            failing.fetch_add(1, Ordering::SeqCst);
        }
        summaries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(RunSummary {
                index: rec.index,
                violations: rec.violations.clone(),
                exercised: rec.exercised,
                classes: rec.classes.clone(),
            });
        if !rec.violations.is_empty() {
            results.lock().unwrap_or_else(|p| p.into_inner()).push(rec);
        }
        progress(
            done.fetch_add(1, Ordering::SeqCst) + 1,
            failing.load(Ordering::SeqCst),
        );
    };

    if let Strategy::Dfs { .. } = opts.strategy {
        // One search: each execution continues from the previous one's decisions.
        let driver = Rc::new(RefCell::new(Driver::new(Inner::for_run(
            opts.strategy,
            0,
            0,
        ))));
        let mut index = 0;
        while index < opts.runs {
            if opts.stop_at_first && first_fail.load(Ordering::SeqCst) < index {
                break;
            }
            let Some(result) = execute(&scenario, &driver, opts.max_steps) else {
                exhausted = true;
                break;
            };
            finish(record(&*scenario, index, &driver, result));
            index += 1;
        }
    } else {
        let steps = probe_steps(&scenario, opts.strategy, opts.max_steps);
        let next = AtomicU64::new(0);
        let worker = || loop {
            let index = next.fetch_add(1, Ordering::SeqCst);
            if index >= opts.runs
                || (opts.stop_at_first && first_fail.load(Ordering::SeqCst) < index)
            {
                break;
            }
            let driver = Rc::new(RefCell::new(Driver::new(Inner::for_run(
                opts.strategy,
                run_seed(opts.seed, index),
                steps,
            ))));
            let result = execute(&scenario, &driver, opts.max_steps)
                .unwrap_or(Err(RunFailure::SchedulerRefused));
            finish(record(&*scenario, index, &driver, result));
        };
        let jobs = opts.jobs.max(1);
        if jobs == 1 {
            worker();
        } else {
            std::thread::scope(|s| {
                for _ in 0..jobs {
                    s.spawn(worker);
                }
            });
        }
    }

    let mut all = results.into_inner().unwrap_or_else(|p| p.into_inner());
    all.sort_by_key(|r| r.index);
    // With stop_at_first, runs after the first failure may have raced ahead on other workers;
    // drop them so the report is the same whatever the thread timing.
    let cutoff = if opts.stop_at_first {
        first_fail.load(Ordering::SeqCst)
    } else {
        u64::MAX
    };
    all.retain(|r| r.index <= cutoff);
    let mut sums = summaries.into_inner().unwrap_or_else(|p| p.into_inner());
    sums.retain(|r| r.index <= cutoff);
    let mut failures = BTreeMap::new();
    let mut outcomes = BTreeMap::new();
    let mut failing_runs = 0;
    for r in &sums {
        if !r.violations.is_empty() {
            failing_runs += 1;
            for v in &r.violations {
                *failures.entry(v.clone()).or_insert(0) += 1;
            }
        }
        for c in &r.classes {
            *outcomes.entry(c.clone()).or_insert(0) += 1;
        }
    }
    let runs = sums.len() as u64;
    let unexercised_runs = sums.iter().filter(|r| !r.exercised).count() as u64;
    let first_failure = all.into_iter().find(|r| !r.violations.is_empty());
    Report {
        strategy: opts.strategy,
        seed: opts.seed,
        runs,
        failures,
        failing_runs,
        unexercised_runs,
        outcomes,
        first_failure,
        exhausted,
    }
}

/// What the report keeps of every run.
struct RunSummary {
    index: u64,
    violations: Vec<String>,
    exercised: bool,
    classes: Vec<String>,
}
