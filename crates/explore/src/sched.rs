//! The schedulers handed to shuttle: per-run random and PCT schedulers, our preemption-bounded
//! DFS and sparse replay, all behind one recording driver that runs exactly one execution per
//! `Runner::run` so that each run's outcome can be inspected before the next.
//!
//! Random and PCT runs are independent: run *i* gets a fresh scheduler seeded from (seed, *i*)
//! alone, so the set of schedules explored and every result are the same whichever worker
//! thread makes a run, and `--jobs` changes only the wall time. (Shuttle's own schedulers carry
//! state from one execution to the next, which made results depend on how runs were split.)

use crate::schedule::{default_choice, Decision, Schedule};
use shuttle::scheduler::{self, Scheduler, Task, TaskId};
use std::cell::RefCell;
use std::rc::Rc;

/// How interleavings are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Uniformly random choice at every decision ([`RandomRun`], one per run).
    Random,
    /// Probabilistic concurrency testing with `depth` priority change points ([`PctRun`], one
    /// per run).
    Pct { depth: usize },
    /// Every interleaving that departs from the default policy at most `preemption_bound`
    /// times, depth first. A departure is a preemption (switching away from a task that could
    /// continue) or a different pick when a task yields (delay bounding, which subsumes
    /// preemption bounding and keeps the space polynomial when tasks yield often). Finishes
    /// when the bounded space is exhausted.
    Dfs { preemption_bound: usize },
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Random => "random",
            Strategy::Pct { .. } => "pct",
            Strategy::Dfs { .. } => "dfs",
        }
    }
}

/// Preemption-bounded depth-first search over scheduling decisions.
#[derive(Debug)]
pub struct BoundedDfs {
    bound: usize,
    /// Decisions of the current execution's prefix: options (default first), index chosen,
    /// and departures spent before this decision.
    stack: Vec<DfsLevel>,
    step: usize,
    started: bool,
    /// This worker explores the subtrees whose first departure is at a decision `d` with
    /// `d % parts == part` (plus the all-default run, which every worker makes once).
    part: usize,
    parts: usize,
}

#[derive(Debug, Clone)]
struct DfsLevel {
    options: Vec<usize>,
    index: usize,
    spent_before: usize,
}

impl DfsLevel {
    /// Option 0 is the default policy's pick; any other costs one departure.
    fn cost(&self, index: usize) -> usize {
        usize::from(index != 0)
    }
}

impl BoundedDfs {
    pub fn new(bound: usize) -> Self {
        Self::partitioned(bound, 0, 1)
    }

    /// Worker `part` of `parts` splitting one search: together they explore the same space,
    /// each subtree exactly once.
    pub fn partitioned(bound: usize, part: usize, parts: usize) -> Self {
        BoundedDfs {
            bound,
            stack: Vec::new(),
            step: 0,
            started: false,
            part,
            parts: parts.max(1),
        }
    }

    /// Move to the next unexplored prefix; false when the bounded space is exhausted.
    fn backtrack(&mut self) -> bool {
        let (bound, part, parts) = (self.bound, self.part, self.parts);
        while let Some(depth) = self.stack.len().checked_sub(1) {
            let Some(level) = self.stack.get_mut(depth) else {
                break;
            };
            let mine = |l: &DfsLevel, j: usize| {
                l.spent_before > 0 || l.cost(j) == 0 || depth % parts == part
            };
            let next = (level.index + 1..level.options.len())
                .find(|&j| level.spent_before + level.cost(j) <= bound && mine(level, j));
            match next {
                Some(j) => {
                    level.index = j;
                    return true;
                }
                None => {
                    self.stack.pop();
                }
            }
        }
        false
    }
}

impl Scheduler for BoundedDfs {
    fn new_execution(&mut self) -> Option<scheduler::Schedule> {
        if self.started && !self.backtrack() {
            return None;
        }
        self.started = true;
        self.step = 0;
        Some(scheduler::Schedule::new(0))
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        let ids = sorted_ids(runnable);
        let current = current.map(usize::from);
        if ids.len() == 1 {
            // No choice: not a decision (keeps the tree small and steps comparable).
            return ids.first().map(|&t| TaskId::from(t));
        }
        let step = self.step;
        self.step += 1;
        if let Some(level) = self.stack.get(step) {
            // Replaying the prefix: the program is deterministic, so the options are the same.
            return level.options.get(level.index).map(|&t| TaskId::from(t));
        }
        let default = default_choice(&ids, current, is_yielding)?;
        let mut options = vec![default];
        options.extend(ids.iter().copied().filter(|&t| t != default));
        let spent_before = self
            .stack
            .last()
            .map(|l| l.spent_before + l.cost(l.index))
            .unwrap_or(0);
        self.stack.push(DfsLevel {
            options,
            index: 0,
            spent_before,
        });
        Some(TaskId::from(default))
    }

    fn next_u64(&mut self) -> u64 {
        0
    }
}

/// Follows a sparse schedule: the default policy except at recorded deviations.
#[derive(Debug)]
pub struct SparseReplay {
    schedule: Schedule,
    step: usize,
    next: usize,
    /// Deviations whose task was not runnable at its step (the schedule does not fit the run).
    pub diverged: usize,
}

impl SparseReplay {
    pub fn new(schedule: Schedule) -> Self {
        SparseReplay {
            schedule,
            step: 0,
            next: 0,
            diverged: 0,
        }
    }
}

impl Scheduler for SparseReplay {
    fn new_execution(&mut self) -> Option<scheduler::Schedule> {
        self.step = 0;
        self.next = 0;
        self.diverged = 0;
        Some(scheduler::Schedule::new(0))
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        let ids = sorted_ids(runnable);
        if ids.len() == 1 {
            return ids.first().map(|&t| TaskId::from(t));
        }
        let step = self.step as u32;
        self.step += 1;
        let mut choice = default_choice(&ids, current.map(usize::from), is_yielding)?;
        if let Some(d) = self.schedule.deviations.get(self.next) {
            if d.step == step {
                self.next += 1;
                if ids.contains(&usize::from(d.task)) {
                    choice = usize::from(d.task);
                } else {
                    self.diverged += 1;
                }
            }
        }
        Some(TaskId::from(choice))
    }

    fn next_u64(&mut self) -> u64 {
        0
    }
}

fn sorted_ids(runnable: &[&Task]) -> Vec<usize> {
    let mut ids: Vec<usize> = runnable.iter().map(|t| usize::from(t.id())).collect();
    ids.sort_unstable();
    ids
}

/// SplitMix64: a small, well-known generator; each run's scheduler owns one.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is below 2^-40 for the sizes used here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random run: a uniform choice among the runnable tasks at every decision.
#[derive(Debug)]
pub struct RandomRun {
    rng: SplitMix,
}

impl RandomRun {
    pub fn new(seed: u64) -> Self {
        RandomRun {
            rng: SplitMix(seed),
        }
    }
}

impl Scheduler for RandomRun {
    fn new_execution(&mut self) -> Option<scheduler::Schedule> {
        Some(scheduler::Schedule::new(0))
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        _current: Option<TaskId>,
        _is_yielding: bool,
    ) -> Option<TaskId> {
        let ids = sorted_ids(runnable);
        let pick = self.rng.below(ids.len());
        ids.get(pick).map(|&t| TaskId::from(t))
    }

    fn next_u64(&mut self) -> u64 {
        self.rng.next()
    }
}

/// One PCT run (Burckhardt et al., ASPLOS 2010): tasks get random distinct priorities as they
/// appear, the highest-priority runnable task runs, and at `depth - 1` random decisions among
/// the first `steps` (the length of a probe run) the running task drops to the lowest priority.
/// A yielding task drops too, so spin-waits make progress (as in shuttle's PCT).
#[derive(Debug)]
pub struct PctRun {
    rng: SplitMix,
    /// Task ids, highest priority first.
    order: Vec<usize>,
    change_points: Vec<usize>,
    steps: usize,
}

impl PctRun {
    pub fn new(seed: u64, depth: usize, steps: usize) -> Self {
        let mut rng = SplitMix(seed);
        let points = depth.max(1).saturating_sub(1).min(steps.saturating_sub(1));
        let mut change_points = Vec::with_capacity(points);
        while change_points.len() < points {
            let p = 1 + rng.below(steps - 1);
            if !change_points.contains(&p) {
                change_points.push(p);
            }
        }
        PctRun {
            rng,
            order: Vec::new(),
            change_points,
            steps: 0,
        }
    }
}

impl Scheduler for PctRun {
    fn new_execution(&mut self) -> Option<scheduler::Schedule> {
        Some(scheduler::Schedule::new(0))
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        let ids = sorted_ids(runnable);
        for &t in &ids {
            if !self.order.contains(&t) {
                let at = self.rng.below(self.order.len() + 1);
                self.order.insert(at, t);
            }
        }
        if ids.len() > 1 {
            if self.change_points.contains(&self.steps) || is_yielding {
                if let Some(cur) = current.map(usize::from) {
                    self.order.retain(|&t| t != cur);
                    self.order.push(cur);
                }
            }
            self.steps += 1;
        }
        self.order
            .iter()
            .find(|t| ids.contains(t))
            .map(|&t| TaskId::from(t))
    }

    fn next_u64(&mut self) -> u64 {
        self.rng.next()
    }
}

/// The scheduler behind one driver.
pub(crate) enum Inner {
    Random(RandomRun),
    Pct(PctRun),
    Dfs(BoundedDfs),
    Replay(SparseReplay),
}

impl Inner {
    /// The scheduler of one random or PCT run (`probe_steps`: decisions of the probe run, for
    /// PCT's change points), or of a whole DFS search.
    pub(crate) fn for_run(strategy: Strategy, run_seed: u64, probe_steps: usize) -> Inner {
        match strategy {
            Strategy::Random => Inner::Random(RandomRun::new(run_seed)),
            Strategy::Pct { depth } => Inner::Pct(PctRun::new(run_seed, depth, probe_steps)),
            Strategy::Dfs { preemption_bound } => Inner::Dfs(BoundedDfs::new(preemption_bound)),
        }
    }

    fn get(&mut self) -> &mut dyn Scheduler {
        match self {
            Inner::Random(s) => s,
            Inner::Pct(s) => s,
            Inner::Dfs(s) => s,
            Inner::Replay(s) => s,
        }
    }
}

/// Records every decision of one execution and stops shuttle after it.
pub(crate) struct Driver {
    pub(crate) inner: Inner,
    armed: bool,
    pub(crate) trace: Vec<Decision>,
}

impl Driver {
    pub(crate) fn new(inner: Inner) -> Self {
        Driver {
            inner,
            armed: false,
            trace: Vec::new(),
        }
    }

    pub(crate) fn arm(&mut self) {
        self.armed = true;
        self.trace.clear();
    }

    /// Deviations that did not apply: their task could not run at their step, or the run
    /// ended before reaching them. Either way the schedule does not describe this run.
    pub(crate) fn diverged(&self) -> usize {
        match &self.inner {
            Inner::Replay(r) => r.diverged + r.schedule.deviations.len().saturating_sub(r.next),
            _ => 0,
        }
    }
}

/// The handle shuttle owns; the explorer keeps another to read the trace.
#[derive(Clone)]
pub(crate) struct SharedDriver(pub(crate) Rc<RefCell<Driver>>);

impl Scheduler for SharedDriver {
    fn new_execution(&mut self) -> Option<scheduler::Schedule> {
        let mut d = self.0.borrow_mut();
        if !d.armed {
            return None;
        }
        d.armed = false;
        d.inner.get().new_execution()
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        let mut d = self.0.borrow_mut();
        let chosen = d.inner.get().next_task(runnable, current, is_yielding)?;
        if runnable.len() < 2 {
            // Only decisions with a choice are part of a schedule.
            return Some(chosen);
        }
        d.trace.push(Decision {
            runnable: sorted_ids(runnable),
            current: current.map(usize::from),
            yielding: is_yielding,
            chosen: usize::from(chosen),
        });
        Some(chosen)
    }

    fn next_u64(&mut self) -> u64 {
        self.0.borrow_mut().inner.get().next_u64()
    }
}
