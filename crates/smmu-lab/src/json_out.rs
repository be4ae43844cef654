//! The typed `--json` output of the scenario-file commands: one run of a file
//! (`smmu-lab/run-file/v1`, also `replay FILE.toml TOKEN`), an exploration of a file
//! (`smmu-lab/explore-file/v1`), the corpus check
//! (`smmu-lab/check/v1`) and a bisection (`smmu-lab/bisect/v1`). The text output is rendered
//! from the same values, so the two cannot disagree. Documented field by field in
//! docs/json.md (checked by tests/json_schema/).

use crate::file_model::Finding;
use crate::sim::scenario::Verdict;
use kernel_history::Fix;
use serde::Serialize;

/// `run FILE.toml --json`: one run of a scenario file.
#[derive(Debug, Serialize)]
pub struct FileRun<'a> {
    /// `smmu-lab/run-file/v1`.
    pub schema: &'static str,
    /// The file as given on the command line.
    pub file: String,
    /// The kernel run (the file's, or `--kernel`'s).
    pub kernel: String,
    /// The model that ran it: `reboot machine` or `real stack`.
    pub model: &'static str,
    /// Replay token `STEM@HASH:KERNEL:SCHEDULE`.
    pub token: String,
    /// The command that reproduces the run.
    pub replay: String,
    /// The checked properties the run violated (empty: exit 0).
    pub violations: &'a [String],
    /// The reboot machine's verdict object (the one `run --json` prints); null otherwise.
    pub verdict: Option<&'a Verdict>,
    /// The real stack's findings (empty for the reboot machine).
    pub findings: &'a [Finding],
    /// The kernel log, then the actors' lines.
    pub log: &'a [String],
}

/// The first failure an exploration of a file found (minimised).
#[derive(Debug, Serialize)]
pub struct FirstFailure {
    /// Index of the run.
    pub run: u64,
    /// The properties it violated.
    pub violations: Vec<String>,
    /// Replay token of the minimised failing run.
    pub token: String,
    /// The command that reproduces it.
    pub replay: String,
}

/// `explore FILE.toml --json`.
#[derive(Debug, Serialize)]
pub struct ExploreFile {
    /// `smmu-lab/explore-file/v1`.
    pub schema: &'static str,
    /// The file as given.
    pub file: String,
    /// The scenario's name.
    pub name: String,
    /// The kernel explored.
    pub kernel: String,
    /// The model that ran it.
    pub model: &'static str,
    /// `random`, `pct` or `dfs`.
    pub strategy: String,
    /// Runs explored.
    pub runs: u64,
    /// Runs that violated a checked property.
    pub failing_runs: u64,
    /// The bounded space was explored completely.
    pub exhaustive: bool,
    /// Failing runs per property.
    pub failures: std::collections::BTreeMap<String, u64>,
    /// The first failure (null: none).
    pub first_failure: Option<FirstFailure>,
}

/// A fix as the output names it.
#[derive(Debug, Clone, Serialize)]
pub struct FixRef {
    /// The spec name: a 12-hex Linux commit id, or our change's word.
    pub id: String,
    /// The commit's subject.
    pub subject: String,
}

impl From<Fix> for FixRef {
    fn from(f: Fix) -> FixRef {
        FixRef {
            id: f.id().to_string(),
            subject: f.subject().to_string(),
        }
    }
}

/// The search on the kernel without the fix.
#[derive(Debug, Clone, Serialize)]
pub struct BeforeFix {
    /// The file's kernel.
    pub kernel: String,
    /// The search found the property's failure.
    pub fails: bool,
    /// The index of the first failing run.
    pub run: Option<u64>,
    /// The minimised failing schedule (the token part the file pins).
    pub schedule: Option<String>,
}

/// The search on the kernel with the fix.
#[derive(Debug, Clone, Serialize)]
pub struct AfterFix {
    /// The file's kernel plus the fix.
    pub kernel: String,
    /// The property held in every run.
    pub holds: bool,
    /// Runs explored.
    pub runs: u64,
    /// The bounded space was explored completely.
    pub exhaustive: bool,
    /// `--quick` capped the budget before the space was exhausted.
    pub quick: bool,
    /// The replay token of a run that failed after the fix.
    pub failing_token: Option<String>,
}

/// One corpus file's result.
#[derive(Debug, Clone, Serialize)]
pub struct BugCheck {
    /// The file name.
    pub file: String,
    /// The property the bug violates.
    pub property: String,
    /// The fix.
    pub fixed_by: FixRef,
    /// Before the fix.
    pub before: BeforeFix,
    /// After the fix.
    pub after: AfterFix,
    /// Fails before, holds after, the pinned token reproduces.
    pub ok: bool,
    /// What regressed (empty when `ok`).
    pub problems: Vec<String>,
}

/// `check --json`: the corpus.
#[derive(Debug, Serialize)]
pub struct Check {
    /// `smmu-lab/check/v1`.
    pub schema: &'static str,
    /// The corpus directory (or the one file) checked.
    pub corpus: String,
    /// One entry per file with a `[bug]` record, in file-name order.
    pub bugs: Vec<BugCheck>,
    /// Files checked.
    pub files: usize,
    /// Distinct fixes among them.
    pub distinct_fixes: usize,
    /// Files that fail before their fix and hold after it.
    pub ok: usize,
    /// Files that regressed (exit 1 when not 0).
    pub regressed: usize,
}

/// A kernel of the bisection walk the file's model cannot run.
#[derive(Debug, Serialize)]
pub struct SkippedKernel {
    /// The kernel.
    pub kernel: String,
    /// The fix whose addition made it.
    pub fix: Option<FixRef>,
    /// Why it cannot run.
    pub why: String,
}

/// One kernel of the bisection walk and what its search found.
#[derive(Debug, Serialize)]
pub struct BisectKernel {
    /// The kernel.
    pub kernel: String,
    /// The fix added (or removed) to reach it from the previous one; null for the first.
    pub fix: Option<FixRef>,
    /// The property failed in some explored run.
    pub fails: bool,
    /// The index of the first failing run.
    pub run: Option<u64>,
    /// Its replay token.
    pub token: Option<String>,
    /// Runs explored.
    pub runs: u64,
    /// The bounded space was explored completely.
    pub exhaustive: bool,
}

/// `bisect --json`.
#[derive(Debug, Serialize)]
pub struct Bisect {
    /// `smmu-lab/bisect/v1`.
    pub schema: &'static str,
    /// The file.
    pub file: String,
    /// The property bisected on.
    pub property: String,
    /// First kernel of the walk.
    pub from: String,
    /// Last kernel of the walk.
    pub to: String,
    /// The search on each kernel, in words.
    pub search: String,
    /// Kernels the model cannot run.
    pub skipped: Vec<SkippedKernel>,
    /// The walk, in history order.
    pub kernels: Vec<BisectKernel>,
    /// The last kernel where the property fails (null: it holds on every kernel).
    pub last_failing: Option<String>,
    /// The first fix after which it holds (null: it holds everywhere, or still fails at the
    /// end of the walk).
    pub first_fix: Option<FixRef>,
}

/// Print `v` as one pretty JSON object with its keys in alphabetical order.
pub fn print<T: Serialize>(v: &T) -> Result<(), String> {
    let value = serde_json::to_value(v).map_err(|e| e.to_string())?;
    crate::common::print_json(&value)
}
