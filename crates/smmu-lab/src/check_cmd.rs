//! `smmu-lab check [DIR]`: run the corpus of real Linux bugs. For each file with a `[bug]`
//! record: on the file's kernel (before the fix) the explorer must find the property's failure
//! within the stated budget, and the pinned replay token must reproduce it; on that kernel
//! with the fix it must hold in every run of the stated budget. One line per bug; any
//! regression makes the exit status 1.

use crate::common::shell_quote;
use crate::file_model::{self, Loaded};
use crate::sim::scenario::ScheduleRef;
use crate::Outcome;
use explore::{Schedule, Strategy};
use scenario_file::{Budget, Bug};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The corpus directory (every *.toml in it with a [bug] record).
    #[arg(default_value = "scenarios/linux", value_name = "DIR")]
    dir: PathBuf,
    /// Worker threads for random and pct searches (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Cap every "after the fix" budget at N runs (a quick pass; the line says so).
    #[arg(long, value_name = "N")]
    quick: Option<u64>,
}

/// A budget in words: `dfs ≤2 preemptions, ≤100000 runs`.
pub fn budget_text(b: &Budget) -> String {
    match b.strategy {
        Strategy::Dfs { preemption_bound } => {
            format!("dfs depth {preemption_bound}, ≤{} runs", b.runs)
        }
        Strategy::Pct { depth } => format!("pct depth {depth}, {} runs, seed {}", b.runs, b.seed),
        Strategy::Random => format!("random, {} runs, seed {}", b.runs, b.seed),
    }
}

/// The result of one corpus file.
pub struct BugResult {
    pub line: String,
    pub ok: bool,
}

fn check_one(path: &Path, jobs: usize, quick: Option<u64>) -> Result<Option<BugResult>, String> {
    let mut l = file_model::load(path, None)?;
    let Some(bug) = l.scenario.bug.clone() else {
        return Ok(None);
    };
    l.restrict(bug.property.name)?;
    let fix = bug.fixed_by;
    let mut problems = Vec::new();

    // Before the fix: the search finds the failure, and the pinned token reproduces it.
    let before = file_model::explore_file(&l, bug.before, jobs, true, &|_, _| {});
    let before_text = match &before.first {
        Some((run, _, schedule)) => {
            let found = ScheduleRef::Sparse(schedule.clone()).to_string();
            pinned(&l, &bug, schedule, &mut problems)?;
            format!("fails on {} (run {run}, token {found})", l.kernel)
        }
        None => {
            problems.push(format!(
                "no failure on {} within {}",
                l.kernel,
                budget_text(&bug.before)
            ));
            format!("HOLDS on {}", l.kernel)
        }
    };

    // After the fix: it holds in every run of the budget.
    let after_kernel = l.kernel.with_fix(fix);
    let mut after = l.with_kernel(&after_kernel)?;
    after.restrict(bug.property.name)?;
    let mut budget = bug.after;
    let capped = quick.is_some_and(|q| q < budget.runs);
    if let Some(q) = quick {
        budget.runs = budget.runs.min(q);
    }
    let a = file_model::explore_file(&after, budget, jobs, true, &|_, _| {});
    let after_text = match &a.first {
        None => format!(
            "holds on +{fix} ({} runs{}{})",
            a.runs,
            if a.exhausted { ", exhaustive" } else { "" },
            if capped && !a.exhausted {
                ", quick"
            } else {
                ""
            }
        ),
        Some((run, v, s)) => {
            problems.push(format!(
                "fails on {after_kernel} at run {run} ({}), token {}",
                v.join(", "),
                after.token(ScheduleRef::Sparse(s.clone()))
            ));
            format!("FAILS on +{fix}")
        }
    };
    let ok = problems.is_empty();
    let mut line = format!(
        "{:<28} {:<18} {before_text}; {after_text}  {}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bug.property.name,
        if ok { "ok" } else { "REGRESSION" }
    );
    for p in problems {
        line.push_str(&format!("\n    {p}"));
    }
    Ok(Some(BugResult { line, ok }))
}

/// Compare the minimised failure with the pinned token and replay the pinned one.
fn pinned(
    l: &Loaded,
    bug: &Bug,
    found: &Schedule,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    let Some(token) = &bug.token else {
        problems.push(format!(
            "no pinned token: add token = \"{}\" to [bug] before",
            found.encode()
        ));
        return Ok(());
    };
    let schedule: ScheduleRef = token.parse()?;
    if token != &found.encode() {
        problems.push(format!(
            "the search now finds token {}, the file pins {token}",
            found.encode()
        ));
    }
    let r = file_model::run_file(l, &schedule)?;
    if !r.violations.iter().any(|v| v == bug.property.name) {
        problems.push(format!(
            "the pinned token {token} no longer violates {}",
            bug.property.name
        ));
    }
    Ok(())
}

/// Every `*.toml` in `dir`, sorted.
pub fn corpus_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

pub fn run(args: &Args, json: bool) -> Result<Outcome, String> {
    if json {
        return Err("--json is not available for check yet".into());
    }
    if args.jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    let files = corpus_files(&args.dir)?;
    // Every file is validated before anything runs.
    let mut with_bug = Vec::new();
    for f in &files {
        let s = scenario_file::load(f).map_err(|e| e.to_string())?;
        if s.bug.is_some() {
            with_bug.push(f.clone());
        }
    }
    if with_bug.is_empty() {
        return Err(format!(
            "{}: no scenario file with a [bug] record",
            shell_quote(&args.dir.display().to_string())
        ));
    }
    let mut failed = 0;
    let mut fixes = std::collections::BTreeSet::new();
    for f in &with_bug {
        if let Ok(s) = scenario_file::load(f) {
            if let Some(b) = s.bug {
                fixes.insert(b.fixed_by);
            }
        }
        if let Some(r) = check_one(f, args.jobs, args.quick)? {
            outln!("{}", r.line);
            if !r.ok {
                failed += 1;
            }
        }
    }
    outln!(
        "{} files, {} distinct fixes: {} fail before their fix and hold after it, {} regressed",
        with_bug.len(),
        fixes.len(),
        with_bug.len() - failed,
        failed
    );
    Ok(if failed == 0 {
        Outcome::Clean
    } else {
        Outcome::Violated
    })
}
