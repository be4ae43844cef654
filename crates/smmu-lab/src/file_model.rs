//! Scenario files on the command line: load a file (with an optional kernel in place of its
//! own), run, explore and replay it on whichever model runs it, and the replay tokens that
//! name a file's run: `STEM@HASH:KERNEL:SCHEDULE`, where HASH is the first 12 hex digits of
//! the file's SHA-256, so a token recorded against one version of a file is refused against
//! an edited one.

use crate::sim::scenario::{Property, RebootScenario, ScheduleRef};
use explore::{ExploreOptions, RunResult, Schedule};
use kernel_history::KernelSpec;
use scenario_file::{Budget, Runnable, ScenarioFile};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Whether a command's positional argument names a scenario file rather than a built-in
/// scenario (`reboot`, `kexec`, `unbind`).
pub fn is_file_arg(s: &str) -> bool {
    s.ends_with(".toml")
}

/// A file loaded for a kernel, ready to run.
pub struct Loaded {
    pub scenario: ScenarioFile,
    pub kernel: KernelSpec,
    pub runnable: Runnable,
}

/// Read, validate and prepare `path` for `kernel` (the file's own when `None`).
pub fn load(path: &Path, kernel: Option<&KernelSpec>) -> Result<Loaded, String> {
    let scenario = scenario_file::load(path).map_err(|e| e.to_string())?;
    let kernel = kernel.cloned().unwrap_or_else(|| scenario.kernel.clone());
    let runnable = scenario_file::runnable(&scenario, &kernel).map_err(|e| e.to_string())?;
    Ok(Loaded {
        scenario,
        kernel,
        runnable,
    })
}

impl Loaded {
    /// The same file for another kernel.
    pub fn with_kernel(&self, kernel: &KernelSpec) -> Result<Loaded, String> {
        let runnable =
            scenario_file::runnable(&self.scenario, kernel).map_err(|e| e.to_string())?;
        Ok(Loaded {
            scenario: self.scenario.clone(),
            kernel: kernel.clone(),
            runnable,
        })
    }

    /// Check only property `name` from now on.
    pub fn restrict(&mut self, name: &str) -> Result<(), String> {
        match &mut self.runnable {
            Runnable::Machine { properties, .. } => {
                let p = Property::from_name(name).ok_or_else(|| {
                    format!("property '{name}' is not checked by the reboot machine that runs this file")
                })?;
                *properties = vec![p];
            }
            Runnable::Stack(c) => {
                let p = scenario_file::stack::StackProperty::from_name(name).ok_or_else(|| {
                    format!(
                        "property '{name}' is not checked by the real stack that runs this file"
                    )
                })?;
                c.properties = vec![p];
            }
        }
        Ok(())
    }

    /// The token of a run of this file on this kernel.
    pub fn token(&self, schedule: ScheduleRef) -> FileToken {
        FileToken {
            stem: file_stem(&self.scenario.path),
            hash: self.scenario.content_hash.short(),
            kernel: self.kernel.clone(),
            schedule,
        }
    }
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What an exploration of a file found.
pub struct Found {
    pub runs: u64,
    pub failing_runs: u64,
    pub exhausted: bool,
    pub failures: BTreeMap<String, u64>,
    /// The first failure: its run index, violations and minimised schedule.
    pub first: Option<(u64, Vec<String>, Schedule)>,
}

fn options(b: Budget, jobs: usize, stop_at_first: bool) -> ExploreOptions {
    ExploreOptions {
        strategy: b.strategy,
        runs: b.runs,
        seed: b.seed,
        jobs,
        stop_at_first,
        max_steps: crate::run_cmd::MAX_STEPS,
    }
}

fn found<O>(
    scn: Arc<impl explore::Scenario<Outcome = O>>,
    report: explore::Report<RunResult<O>>,
) -> Found
where
    O: Clone + Send + 'static,
{
    let first = report.first_failure.as_ref().map(|f| {
        let property = f.violations.first().cloned().unwrap_or_default();
        let (schedule, _) =
            explore::minimise(scn, &f.schedule, &property, crate::run_cmd::MAX_STEPS);
        (f.index, f.violations.clone(), schedule)
    });
    Found {
        runs: report.runs,
        failing_runs: report.failing_runs,
        exhausted: report.exhausted,
        failures: report.failures,
        first,
    }
}

/// Explore the file under `budget`.
pub fn explore_file(
    l: &Loaded,
    budget: Budget,
    jobs: usize,
    stop_at_first: bool,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Found {
    let opts = options(budget, jobs, stop_at_first);
    match &l.runnable {
        Runnable::Machine { config, properties } => {
            let scn = Arc::new(RebootScenario {
                config: (**config).clone(),
                properties: properties.clone(),
                boot_cache: Default::default(),
            });
            let r = explore::explore(scn.clone(), opts, progress);
            found(scn, r)
        }
        Runnable::Stack(c) => {
            let scn = Arc::new((**c).clone());
            let r = explore::explore(scn.clone(), opts, progress);
            found(scn, r)
        }
    }
}

/// A property violation one run of a file found, as its model reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// The property's name (`no-fault`, `no-deadlock`, ...).
    pub property: String,
    /// What happened.
    pub message: String,
}

/// One run of a file: its log, its findings (the reboot machine's verdict object when that
/// model ran it), and the checked properties it violated.
pub struct RunText {
    /// `reboot machine` or `real stack`.
    pub model: &'static str,
    /// The kernel log, then (real stack) the actors' lines.
    pub log: Vec<String>,
    /// The reboot machine's verdict (the same object `run --json` prints for built-in runs).
    pub verdict: Option<crate::sim::scenario::Verdict>,
    /// The real stack's findings.
    pub findings: Vec<Finding>,
    /// The checked properties this run violated.
    pub violations: Vec<String>,
    /// The log and verdict as text.
    pub text: String,
}

/// The text of a real-stack run: its log, then its verdict.
fn findings_text(log: &[String], kernel: &KernelSpec, model: &str, findings: &[Finding]) -> String {
    let mut text = String::new();
    for line in log {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!("\nverdict ({kernel}, {model}):\n"));
    if findings.is_empty() {
        text.push_str("  nothing found\n");
    }
    for f in findings {
        text.push_str(&format!("  {}: {}\n", f.property, f.message));
    }
    text
}

/// Run the file on `schedule`. `Err` when a sparse schedule does not fit the file.
pub fn run_file(l: &Loaded, schedule: &ScheduleRef) -> Result<RunText, String> {
    let max = crate::run_cmd::MAX_STEPS;
    let misfit = |s: &ScheduleRef| {
        format!("schedule {s} does not fit this file and kernel (another smmu-lab version?)")
    };
    let model = l.runnable.model();
    match &l.runnable {
        Runnable::Machine { config, properties } => {
            let scn = Arc::new(RebootScenario {
                config: (**config).clone(),
                properties: properties.clone(),
                boot_cache: Default::default(),
            });
            let rec = schedule.replay(scn, max).map_err(|e| e.to_string())?;
            let o = match rec.outcome {
                RunResult::Completed(Ok(o)) => o,
                RunResult::Completed(Err(e)) => return Err(e.to_string()),
                RunResult::Failed(p) => return Err(format!("internal error (please report): {p}")),
            };
            let text = format!("{}\n{}", o.log, crate::common::verdict_text(&o.verdict));
            Ok(RunText {
                model,
                log: o.log.lines().map(str::to_string).collect(),
                verdict: Some(o.verdict),
                findings: Vec::new(),
                violations: rec.violations,
                text,
            })
        }
        Runnable::Stack(c) => {
            let rec = replay_on(Arc::new((**c).clone()), schedule, max)
                .ok_or_else(|| misfit(schedule))?;
            let o = match rec.outcome {
                RunResult::Completed(o) => o,
                RunResult::Failed(p) => return Err(format!("internal error (please report): {p}")),
            };
            let findings: Vec<Finding> = o
                .findings
                .iter()
                .map(|(p, m)| Finding {
                    property: p.name().to_string(),
                    message: m.clone(),
                })
                .collect();
            Ok(RunText {
                model,
                text: findings_text(&o.log, &l.kernel, model, &findings),
                log: o.log,
                verdict: None,
                findings,
                violations: rec.violations,
            })
        }
    }
}

/// Replay `schedule` on `scn`; `None` when a sparse schedule does not fit it.
fn replay_on<S: explore::Scenario>(
    scn: Arc<S>,
    schedule: &ScheduleRef,
    max: usize,
) -> Option<explore::RunRecord<RunResult<S::Outcome>>> {
    match schedule {
        ScheduleRef::Sparse(s) => explore::replay(scn, s, max).ok(),
        ScheduleRef::Seeded { strategy, seed } => {
            Some(explore::run_one(scn, *strategy, *seed, max))
        }
    }
}

/// A replay token of a file's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileToken {
    /// The file's stem.
    pub stem: String,
    /// The first 12 hex digits of the file's SHA-256.
    pub hash: String,
    /// The kernel run.
    pub kernel: KernelSpec,
    /// The interleaving.
    pub schedule: ScheduleRef,
}

impl fmt::Display for FileToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}:{}:{}",
            self.stem, self.hash, self.kernel, self.schedule
        )
    }
}

impl std::str::FromStr for FileToken {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("replay token '{s}' is not of the form FILE@HASH:KERNEL:SCHEDULE");
        let mut parts = s.trim().splitn(3, ':');
        let (Some(file), Some(k), Some(sch)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let (stem, hash) = file.rsplit_once('@').ok_or_else(bad)?;
        if hash.len() != 12 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "replay token '{s}': '{hash}' is not a 12-hex-digit file hash"
            ));
        }
        let kernel = KernelSpec::parse(k).map_err(|e| format!("replay token: {e}"))?;
        let schedule: ScheduleRef = sch.parse().map_err(|e| format!("replay token: {e}"))?;
        Ok(FileToken {
            stem: stem.to_string(),
            hash: hash.to_string(),
            kernel,
            schedule,
        })
    }
}

/// Replay `token` against the file at `path`: refused (exit 2) when the file changed since
/// the token was recorded.
pub fn load_for_token(path: &Path, token: &FileToken) -> Result<Loaded, String> {
    let scenario = scenario_file::load(path).map_err(|e| e.to_string())?;
    let now = scenario.content_hash.short();
    if now != token.hash {
        return Err(format!(
            "{}: the file has changed since this token was recorded (token: sha256 {}..., file now: sha256 {}...); explore the file again for a token of this version",
            path.display(),
            token.hash,
            now
        ));
    }
    load(path, Some(&token.kernel))
}
