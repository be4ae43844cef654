//! Controlled interleavings of a scenario's concurrent actors.
//!
//! A [`Scenario`] is ordinary simulator code that spawns its actors through `smmu-sync` and marks
//! its scheduling points there. The explorer runs it inside shuttle, one execution at a time, with
//! a chosen [`Strategy`] (random, PCT, or preemption-bounded DFS), records every scheduling
//! decision, and turns a failing run into a sparse [`Schedule`] that [`replay`] reproduces exactly
//! and [`minimise`] shrinks to the fewest deviations from the default policy.
//!
//! Runs are deterministic: run *i* of a given (strategy, seed) always takes the same schedule,
//! whatever the number of worker threads, and a schedule always gives the same outcome. So the
//! runs explored, the failures counted, the first failure and its schedule are the same for any
//! `jobs`; jobs change only the wall time. (A DFS is one search, made on one thread.)
//!
//! # Example
//!
//! A check-then-use race like the seed's: one thread clears a value while the other has already
//! checked it. The explorer finds the interleaving, and its schedule replays to the same outcome.
//!
//! ```
//! use explore::{explore, replay, ExploreOptions, RunResult, Scenario, Strategy};
//! use smmu_sync::{sched_point, thread, Arc, Mutex, Point};
//!
//! struct Race;
//!
//! impl Scenario for Race {
//!     type Outcome = &'static str;
//!
//!     fn run(&self) -> &'static str {
//!         let group = Arc::new(Mutex::new(Some(4u32)));
//!         let g = group.clone();
//!         let release = thread::spawn(move || {
//!             sched_point(Point::Kernel);
//!             *g.lock() = None;
//!         });
//!         let present = group.lock().is_some();
//!         sched_point(Point::Kernel);
//!         let used = if present && group.lock().is_none() { "NULL dereference" } else { "ok" };
//!         let _ = release.join();
//!         used
//!     }
//!
//!     fn violations(&self, outcome: &&'static str) -> Vec<String> {
//!         if *outcome == "ok" { vec![] } else { vec!["no-oops".into()] }
//!     }
//! }
//!
//! let opts = ExploreOptions { strategy: Strategy::Pct { depth: 2 }, runs: 100, seed: 1, ..Default::default() };
//! let report = explore(Arc::new(Race), opts, &|_, _| {});
//! let failure = report.first_failure.expect("PCT finds the race");
//! assert_eq!(failure.violations, ["no-oops"]);
//! let again = replay(Arc::new(Race), &failure.schedule, 10_000).expect("the schedule fits");
//! assert!(matches!(again.outcome, RunResult::Completed("NULL dereference")));
//! ```

mod sched;
mod schedule;

pub use sched::{BoundedDfs, PctRun, RandomRun, SparseReplay, Strategy};
pub use schedule::{default_choice, Decision, Deviation, Schedule, ScheduleError};

use sched::{Driver, Inner, SharedDriver};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Something to run under controlled interleavings.
pub trait Scenario: Send + Sync + 'static {
    /// What one run produces (log, verdict, ...).
    type Outcome: Clone + Send + 'static;

    /// Run once. Called inside a shuttle execution with the sync facade in explorer mode; every
    /// object the run uses must be created here.
    fn run(&self) -> Self::Outcome;

    /// Names of the checked properties this outcome violates; empty when the run passed.
    fn violations(&self, outcome: &Self::Outcome) -> Vec<String>;

    /// Whether the run gave its properties anything to check (a reboot in which no DMA
    /// happened cannot violate a DMA property, nor show that it holds).
    fn exercised(&self, _outcome: &Self::Outcome) -> bool {
        true
    }

    /// Names of the outcome classes this run falls in, for outcome statistics (`explore
    /// --stats`): e.g. which manifestation of a bug it showed. Empty: not classified.
    fn classify(&self, _outcome: &Self::Outcome) -> Vec<String> {
        Vec::new()
    }
}

/// One run's result.
#[derive(Debug, Clone)]
pub struct RunRecord<O> {
    /// Index of the run within the exploration (0-based).
    pub index: u64,
    pub schedule: Schedule,
    pub outcome: O,
    pub violations: Vec<String>,
    /// The outcome gave the properties something to check ([`Scenario::exercised`]).
    pub exercised: bool,
    /// The outcome classes it fell in ([`Scenario::classify`]).
    pub classes: Vec<String>,
    /// Scheduling decisions taken.
    pub steps: usize,
    /// Decisions that switched away from a task that could have continued.
    pub preemptions: usize,
}

/// What an exploration found.
#[derive(Debug, Clone)]
pub struct Report<O> {
    pub strategy: Strategy,
    pub seed: u64,
    /// Runs executed.
    pub runs: u64,
    /// Failing runs per violated property.
    pub failures: BTreeMap<String, u64>,
    /// Runs with at least one violation.
    pub failing_runs: u64,
    /// Runs that exercised none of their properties ([`Scenario::exercised`]).
    pub unexercised_runs: u64,
    /// Runs per outcome class ([`Scenario::classify`]).
    pub outcomes: BTreeMap<String, u64>,
    /// The lowest-indexed failing run.
    pub first_failure: Option<RunRecord<O>>,
    /// DFS only: the bounded space was exhausted before the run budget.
    pub exhausted: bool,
}

/// The record of one run of scenario `S`.
pub type Record<S> = RunRecord<RunResult<<S as Scenario>::Outcome>>;

/// Options of [`explore`].
#[derive(Debug, Clone, Copy)]
pub struct ExploreOptions {
    pub strategy: Strategy,
    /// Run budget.
    pub runs: u64,
    pub seed: u64,
    /// Worker threads for random and PCT runs (0 is taken as 1). Results do not depend on it.
    /// A DFS is one search and runs on one thread whatever this says.
    pub jobs: usize,
    /// Stop at the first failing run (all lower-indexed runs still complete).
    pub stop_at_first: bool,
    /// Scheduling decisions after which a run is cut off as a failure ("livelock").
    pub max_steps: usize,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions {
            strategy: Strategy::Pct { depth: 3 },
            runs: 100,
            seed: 0,
            jobs: 1,
            stop_at_first: true,
            max_steps: 200_000,
        }
    }
}

/// The property name recorded when a run panicked (a bug in smmu-lab, never a simulated event).
pub const PANIC_PROPERTY: &str = "no-panic";

fn shuttle_config(max_steps: usize) -> shuttle::Config {
    let mut c = shuttle::Config::new();
    c.failure_persistence = shuttle::FailurePersistence::None;
    c.max_steps = shuttle::MaxSteps::FailAfter(max_steps);
    c.silence_warnings = true;
    c
}

/// Run one execution under `driver`, returning the outcome (or the panic message).
fn execute<S: Scenario>(
    scenario: &Arc<S>,
    driver: &Rc<RefCell<Driver>>,
    max_steps: usize,
) -> Option<Result<S::Outcome, String>> {
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
            Some(outcome.ok_or_else(|| "run produced no outcome".to_string()))
        }
        Err(payload) => Some(Err(panic_message(&payload))),
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

/// A run's outcome and violations; a panic becomes the [`PANIC_PROPERTY`] violation.
#[derive(Debug, Clone)]
pub enum RunResult<O> {
    Completed(O),
    Panicked(String),
}

fn record<S: Scenario>(
    scenario: &S,
    index: u64,
    driver: &Rc<RefCell<Driver>>,
    result: Result<S::Outcome, String>,
) -> Record<S> {
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
        Err(msg) => (
            RunResult::Panicked(msg),
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
fn run_seed(seed: u64, index: u64) -> u64 {
    let mut x = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

/// Decisions of the all-default run: PCT places its change points within that many steps.
fn probe_steps<S: Scenario>(scenario: &Arc<S>, strategy: Strategy, max_steps: usize) -> usize {
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
    let results: Mutex<Vec<Record<S>>> = Mutex::new(Vec::new());
    let mut exhausted = false;

    let finish = |rec: Record<S>| {
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
                .unwrap_or_else(|| Err("scheduler refused to run".to_string()));
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

/// One run under `strategy` seeded with `seed` (run 0 of `explore` with the same options).
pub fn run_one<S: Scenario>(
    scenario: Arc<S>,
    strategy: Strategy,
    seed: u64,
    max_steps: usize,
) -> Record<S> {
    let steps = probe_steps(&scenario, strategy, max_steps);
    let driver = Rc::new(RefCell::new(Driver::new(Inner::for_run(
        strategy,
        run_seed(seed, 0),
        steps,
    ))));
    let result = execute(&scenario, &driver, max_steps)
        .unwrap_or_else(|| Err("scheduler refused to run".to_string()));
    record(&*scenario, 0, &driver, result)
}

/// Replay a schedule. `Err` when the schedule does not fit the scenario (a deviation named a
/// task that could not run at that step), with the record of what ran anyway.
pub fn replay<S: Scenario>(
    scenario: Arc<S>,
    schedule: &Schedule,
    max_steps: usize,
) -> Result<Record<S>, Record<S>> {
    let driver = Rc::new(RefCell::new(Driver::new(Inner::Replay(SparseReplay::new(
        schedule.clone(),
    )))));
    let result = execute(&scenario, &driver, max_steps)
        .unwrap_or_else(|| Err("replay scheduler refused to run".to_string()));
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
) -> (Schedule, Option<Record<S>>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use smmu_sync::{sched_point, thread, Mutex as SyncMutex, Point};

    /// A check-then-act race: the reader checks a flag, then uses the value; the writer clears
    /// the value between the check and the use in some interleavings.
    struct Race;

    impl Scenario for Race {
        type Outcome = Vec<String>;
        fn run(&self) -> Vec<String> {
            let value = Arc::new(SyncMutex::new(Some(7u32)));
            let log = Arc::new(SyncMutex::new(Vec::new()));
            let (v2, l2) = (value.clone(), log.clone());
            let writer = thread::spawn(move || {
                sched_point(Point::Kernel);
                *v2.lock() = None;
                l2.lock().push("cleared".to_string());
            });
            let present = value.lock().is_some();
            sched_point(Point::Kernel);
            if present {
                let got = *value.lock();
                log.lock().push(match got {
                    Some(v) => format!("used {v}"),
                    None => "NULL dereference".to_string(),
                });
            }
            let _ = writer.join();
            let out = log.lock().clone();
            out
        }
        fn violations(&self, o: &Vec<String>) -> Vec<String> {
            if o.iter().any(|l| l == "NULL dereference") {
                vec!["no-oops".to_string()]
            } else {
                vec![]
            }
        }
    }

    #[test]
    fn every_strategy_finds_the_race_and_replay_reproduces_it() {
        for strategy in [
            Strategy::Random,
            Strategy::Pct { depth: 2 },
            Strategy::Dfs {
                preemption_bound: 2,
            },
        ] {
            let report = explore(
                Arc::new(Race),
                ExploreOptions {
                    strategy,
                    runs: 200,
                    seed: 1,
                    ..Default::default()
                },
                &|_, _| {},
            );
            let first = report
                .first_failure
                .unwrap_or_else(|| panic!("{strategy:?} missed the race"));
            assert_eq!(first.violations, vec!["no-oops".to_string()]);
            let again = replay(Arc::new(Race), &first.schedule, 10_000).unwrap();
            match (&first.outcome, &again.outcome) {
                (RunResult::Completed(a), RunResult::Completed(b)) => assert_eq!(a, b),
                _ => panic!("unexpected panic"),
            }
            let (min, rec) = minimise(Arc::new(Race), &first.schedule, "no-oops", 10_000);
            assert!(min.deviations.len() <= first.schedule.deviations.len());
            assert_eq!(rec.unwrap().violations, vec!["no-oops".to_string()]);
        }
    }

    #[test]
    fn dfs_exhausts_a_small_space_and_counts_all_failures() {
        let report = explore(
            Arc::new(Race),
            ExploreOptions {
                strategy: Strategy::Dfs {
                    preemption_bound: 3,
                },
                runs: 10_000,
                stop_at_first: false,
                ..Default::default()
            },
            &|_, _| {},
        );
        assert!(report.exhausted);
        assert!(report.runs > 2 && report.runs < 10_000, "{}", report.runs);
        assert!(report.failing_runs >= 1);
    }

    /// The runs explored and every reported result are the same for any number of jobs: run
    /// *i* depends on (seed, *i*) only. (With shuttle's stateful schedulers, a worker's runs
    /// depended on which runs it had made before, so results changed with `jobs`.)
    #[test]
    fn results_do_not_depend_on_jobs() {
        for strategy in [
            Strategy::Random,
            Strategy::Pct { depth: 2 },
            Strategy::Dfs {
                preemption_bound: 2,
            },
        ] {
            for stop_at_first in [false, true] {
                let run = |jobs| {
                    let r = explore(
                        Arc::new(Race),
                        ExploreOptions {
                            strategy,
                            runs: 64,
                            seed: 42,
                            jobs,
                            stop_at_first,
                            ..Default::default()
                        },
                        &|_, _| {},
                    );
                    (
                        r.runs,
                        r.failing_runs,
                        r.failures,
                        r.exhausted,
                        r.first_failure.map(|f| (f.index, f.schedule)),
                    )
                };
                let one = run(1);
                for jobs in [0, 2, 3, 4] {
                    assert_eq!(
                        run(jobs),
                        one,
                        "{strategy:?} jobs={jobs} stop={stop_at_first}"
                    );
                }
            }
        }
    }

    #[test]
    fn run_one_is_run_zero_of_explore() {
        let opts = ExploreOptions {
            strategy: Strategy::Random,
            runs: 1,
            seed: 9,
            stop_at_first: false,
            ..Default::default()
        };
        let one = run_one(Arc::new(Race), opts.strategy, opts.seed, opts.max_steps);
        let again = run_one(Arc::new(Race), opts.strategy, opts.seed, opts.max_steps);
        assert_eq!(one.schedule, again.schedule);
        let rep = explore(Arc::new(Race), opts, &|_, _| {});
        assert_eq!(rep.runs, 1);
        if let Some(f) = rep.first_failure {
            assert_eq!(f.schedule, one.schedule);
        }
    }

    #[test]
    fn a_schedule_that_does_not_fit_is_refused() {
        // A deviation far beyond the end of the run, and one naming a task that never exists.
        for text in ["s999999-1", "s0-9"] {
            let s = Schedule::decode(text).unwrap();
            assert!(replay(Arc::new(Race), &s, 10_000).is_err(), "{text}");
        }
    }

    #[test]
    fn the_default_schedule_is_sequential_and_passes() {
        let rec = replay(Arc::new(Race), &Schedule::default(), 10_000).unwrap();
        assert!(rec.violations.is_empty());
        assert_eq!(rec.preemptions, 0);
    }
}
