//! The explorer on a two-thread check-then-use race: every strategy, replay, minimise, jobs.

use crate::*;
use smmu_sync::{sched_point, thread, Mutex, Point};
use std::sync::Arc;

/// A check-then-act race: the reader checks a flag, then uses the value; the writer clears
/// the value between the check and the use in some interleavings.
struct Race;

impl Scenario for Race {
    type Outcome = Vec<String>;
    fn run(&self) -> Vec<String> {
        let value = Arc::new(Mutex::new(Some(7u32)));
        let log = Arc::new(Mutex::new(Vec::new()));
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
