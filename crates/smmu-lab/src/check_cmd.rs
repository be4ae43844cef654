//! `smmu-lab check [DIR]`: run the corpus of real Linux bugs. For each file with a `[bug]`
//! record: on the file's kernel (before the fix) the explorer must find the property's failure
//! within the stated budget, and the pinned replay token must reproduce it; on that kernel
//! with the fix it must hold in every run of the stated budget. One line per bug; any
//! regression makes the exit status 1.

use crate::common::shell_quote;
use crate::file_model::{self, Loaded};
use crate::json_out::{AfterFix, BeforeFix, BugCheck, Check};
use crate::sim::scenario::ScheduleRef;
use crate::CommandOutcome;
use explore::{Schedule, Strategy};
use scenario_file::{Budget, Bug};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The corpus directory (every *.toml in it with a [bug] record), or one file of it.
    #[arg(default_value = "scenarios/linux", value_name = "DIR|FILE.toml")]
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

/// One corpus file: both searches and the pinned token's replay.
fn check_one(path: &Path, jobs: usize, quick: Option<u64>) -> Result<Option<BugCheck>, String> {
    let mut l = file_model::load(path, None)?;
    let Some(bug) = l.scenario.bug.clone() else {
        return Ok(None);
    };
    l.restrict(bug.property.name)?;
    let fix = bug.fixed_by;
    let mut problems = Vec::new();

    // Before the fix: the search finds the failure, and the pinned token reproduces it.
    let b = file_model::explore_file(&l, bug.before, jobs, true, &|_, _| {});
    let before = BeforeFix {
        kernel: l.kernel.to_string(),
        fails: b.first.is_some(),
        run: b.first.as_ref().map(|f| f.0),
        schedule: b
            .first
            .as_ref()
            .map(|f| ScheduleRef::Sparse(f.2.clone()).to_string()),
    };
    match &b.first {
        Some((_, _, schedule)) => pinned(&l, &bug, schedule, &mut problems)?,
        None => problems.push(format!(
            "no failure on {} within {}",
            l.kernel,
            budget_text(&bug.before)
        )),
    }

    // After the fix: it holds in every run of the budget.
    let after_kernel = l.kernel.with_fix(fix);
    let mut after_l = l.with_kernel(&after_kernel)?;
    after_l.restrict(bug.property.name)?;
    let mut budget = bug.after;
    let capped = quick.is_some_and(|q| q < budget.runs);
    if let Some(q) = quick {
        budget.runs = budget.runs.min(q);
    }
    let a = file_model::explore_file(&after_l, budget, jobs, true, &|_, _| {});
    let failing_token = a.first.as_ref().map(|(run, v, s)| {
        let token = after_l.token(ScheduleRef::Sparse(s.clone())).to_string();
        problems.push(format!(
            "fails on {after_kernel} at run {run} ({}), token {token}",
            v.join(", ")
        ));
        token
    });
    let after = AfterFix {
        kernel: after_kernel.to_string(),
        holds: a.first.is_none(),
        runs: a.runs,
        exhaustive: a.exhausted,
        quick: capped && !a.exhausted,
        failing_token,
    };
    Ok(Some(BugCheck {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        property: bug.property.name.to_string(),
        fixed_by: fix.into(),
        before,
        after,
        ok: problems.is_empty(),
        problems,
    }))
}

/// The text line of one corpus file (and its problems, indented, below it).
fn line(r: &BugCheck) -> String {
    let before = match (&r.before.run, &r.before.schedule) {
        (Some(run), Some(s)) => format!("fails on {} (run {run}, token {s})", r.before.kernel),
        _ => format!("HOLDS on {}", r.before.kernel),
    };
    let after = if r.after.holds {
        format!(
            "holds on +{} ({} runs{}{})",
            r.fixed_by.id,
            r.after.runs,
            if r.after.exhaustive {
                ", exhaustive"
            } else {
                ""
            },
            if r.after.quick { ", quick" } else { "" }
        )
    } else {
        format!("FAILS on +{}", r.fixed_by.id)
    };
    let mut line = format!(
        "{:<28} {:<18} {before}; {after}  {}",
        r.file,
        r.property,
        if r.ok { "ok" } else { "REGRESSION" }
    );
    for p in &r.problems {
        line.push_str(&format!("\n    {p}"));
    }
    line
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
    let schedule = token.parse::<ScheduleRef>().map_err(|e| e.to_string())?;
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

/// Every `*.toml` in `dir`, sorted (or `dir` itself when it is a file).
pub fn corpus_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

pub fn run(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    if args.jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    let files = corpus_files(&args.dir)?;
    // Every file is validated before anything runs.
    let mut with_bug = Vec::new();
    let mut fixes = std::collections::BTreeSet::new();
    for f in &files {
        let s = scenario_file::load(f).map_err(|e| e.to_string())?;
        if let Some(b) = s.bug {
            fixes.insert(b.fixed_by);
            with_bug.push(f.clone());
        }
    }
    if with_bug.is_empty() {
        return Err(format!(
            "{}: no scenario file with a [bug] record",
            shell_quote(&args.dir.display().to_string())
        ));
    }
    let mut bugs = Vec::new();
    for f in &with_bug {
        if let Some(r) = check_one(f, args.jobs, args.quick)? {
            if !json {
                outln!("{}", line(&r));
            }
            bugs.push(r);
        }
    }
    let regressed = bugs.iter().filter(|b| !b.ok).count();
    let check = Check {
        schema: "smmu-lab/check/v1",
        corpus: args.dir.display().to_string(),
        files: with_bug.len(),
        distinct_fixes: fixes.len(),
        ok: with_bug.len() - regressed,
        regressed,
        bugs,
    };
    if json {
        crate::json_out::print(&check)?;
    } else {
        outln!(
            "{} files, {} distinct fixes: {} fail before their fix and hold after it, {} regressed",
            check.files,
            check.distinct_fixes,
            check.ok,
            check.regressed
        );
    }
    Ok(if regressed == 0 {
        CommandOutcome::Clean
    } else {
        CommandOutcome::Violated
    })
}
