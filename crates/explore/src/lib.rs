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

//!
//! The modules: `run` executes one run inside shuttle and records it; `exploration` is
//! [`explore`], many runs and their [`Report`]; `single` is [`run_one`], [`replay`] and
//! [`minimise`]; `sched` holds the schedulers and `schedule` the sparse [`Schedule`].

mod exploration;
mod failure;
mod run;
mod sched;
mod schedule;
mod single;

pub use exploration::explore;
pub use failure::RunFailure;
pub use sched::{BoundedDfs, PctRun, RandomRun, SparseReplay, Strategy};
pub use schedule::{default_choice, Decision, Deviation, Schedule, ScheduleError};
pub use single::{minimise, replay, run_one};

use std::collections::BTreeMap;

/// Something to run under controlled interleavings.
pub trait Scenario: Send + Sync + 'static {
    /// What one run produces (log, verdict, ...).
    type Outcome: Clone + Send + 'static;

    /// Run once. Called inside a shuttle execution with the sync facade in explorer mode, on the
    /// worker's thread. Every object the run uses must be created here, or be state the
    /// scenario restored in place before this run with no task of an earlier execution left
    /// holding it (sim's boot cache does that: smmu-sync's locks are plain locks underneath,
    /// and its kernel mutexes' wait graph is reset per execution).
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
pub type ScenarioRunRecord<S> = RunRecord<RunResult<<S as Scenario>::Outcome>>;

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

/// A run's outcome, or why it has none (which becomes the [`PANIC_PROPERTY`] violation).
#[derive(Debug, Clone)]
pub enum RunResult<O> {
    Completed(O),
    Failed(RunFailure),
}

#[cfg(test)]
mod tests;
