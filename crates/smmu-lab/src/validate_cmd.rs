//! `smmu-lab validate FILE.toml...`: check scenario files against the vocabulary, the kernel
//! history and their boards, without running them.

use crate::common::{shell_quote, DEFAULT_ACTOR_STEPS, DEFAULT_FLOOD};
use crate::CommandOutcome;
use scenario_file::{load, today, BoardSource, ScenarioFile};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files (TOML; format: docs/scenarios.md).
    #[arg(required = true, value_name = "FILE.toml")]
    files: Vec<PathBuf>,
}

/// The `smmu-lab run` command that runs `s` today, if the file is one of today's built-in runs.
fn run_command(s: &ScenarioFile) -> Result<String, String> {
    let c = today::reboot_config(s).map_err(|e| e.to_string())?;
    let mut cmd = format!("smmu-lab run {} --kernel {}", c.trigger.name(), c.kernel);
    if let BoardSource::Dtb { resolved, .. } = &s.board_source {
        cmd.push_str(&format!(
            " --dtb {}",
            shell_quote(&resolved.display().to_string())
        ));
    }
    if !c.cmdline.text.is_empty() {
        cmd.push_str(&format!(" --cmdline {}", shell_quote(&c.cmdline.text)));
    }
    if c.nic.flood_packets != DEFAULT_FLOOD {
        cmd.push_str(&format!(" --flood {}", c.nic.flood_packets));
    }
    if c.max_actor_steps != DEFAULT_ACTOR_STEPS {
        cmd.push_str(&format!(" --actor-steps {}", c.max_actor_steps));
    }
    for t in &c.traffic {
        cmd.push_str(&format!(" --traffic {}", shell_quote(t)));
    }
    Ok(cmd)
}

/// The properties the model that runs `s` checks.
fn properties(s: &ScenarioFile) -> String {
    let names: Vec<&str> = match scenario_file::runnable(s, &s.kernel) {
        Ok(scenario_file::Runnable::Machine { properties, .. }) => {
            properties.iter().map(|p| p.name()).collect()
        }
        Ok(scenario_file::Runnable::Stack(c)) => c.properties.iter().map(|p| p.name()).collect(),
        Err(_) => s.properties.iter().map(|p| p.name).collect(),
    };
    names.join(", ")
}

/// Which model runs the file, or why none does.
fn model(s: &ScenarioFile) -> Result<&'static str, String> {
    scenario_file::runnable(s, &s.kernel)
        .map(|r| r.model())
        .map_err(|e| e.to_string())
}

fn summary(s: &ScenarioFile) -> Vec<(String, String)> {
    let board = match &s.board_source {
        BoardSource::Builtin(n) => format!("built-in {n} ({})", s.board.hardware_name()),
        BoardSource::Dtb { written, .. } => format!("{written} ({})", s.board.hardware_name()),
    };
    let fixes: Vec<&str> = s.kernel.fixes().iter().map(|f| f.id()).collect();
    let drivers: Vec<String> = s
        .drivers
        .iter()
        .map(|d| {
            format!(
                "{} {} ({} .shutdown, DMA {})",
                d.device,
                d.name,
                if d.has_shutdown { "has" } else { "no" },
                d.dma.name()
            )
        })
        .collect();
    let actors: Vec<String> = s
        .actors
        .iter()
        .map(|a| {
            let ops: Vec<&str> = a.script.iter().map(|st| st.op.name()).collect();
            let on = match (a.cpu, &a.device) {
                (Some(c), _) => format!(" on CPU {c}"),
                (None, Some(d)) => format!(" of {d}"),
                _ => String::new(),
            };
            format!("{} ({}{on}): {}", a.name, a.kind.name(), ops.join(", "))
        })
        .collect();
    vec![
        ("name".into(), s.name.clone()),
        ("board".into(), board),
        (
            "kernel".into(),
            format!(
                "{} ({})",
                s.kernel,
                if fixes.is_empty() {
                    "no fixes".into()
                } else {
                    fixes.join(" ")
                }
            ),
        ),
        (
            "cmdline".into(),
            if s.cmdline.text.is_empty() {
                "(empty)".into()
            } else {
                s.cmdline.text.clone()
            },
        ),
        ("drivers".into(), drivers.join("; ")),
        ("actors".into(), actors.join("; ")),
        ("properties".into(), properties(s)),
        ("content hash".into(), format!("sha256:{}", s.content_hash)),
    ]
}

pub fn run(args: &Args, json: bool) -> Result<CommandOutcome, String> {
    let mut out = Vec::new();
    for f in &args.files {
        // The first invalid file ends the command with its error (exit 2).
        let s = load(f).map_err(|e| e.to_string())?;
        out.push(s);
    }
    if json {
        let files: Vec<_> = out
            .iter()
            .map(|s| {
                let mut o = serde_json::Map::new();
                o.insert("file".into(), s.path.display().to_string().into());
                for (k, v) in summary(s) {
                    o.insert(k.replace(' ', "_"), v.into());
                }
                let rc = run_command(s);
                o.insert("runs_today_as".into(), rc.as_ref().ok().cloned().into());
                o.insert("not_today_because".into(), rc.err().into());
                let m = model(s);
                o.insert("model".into(), m.as_ref().ok().copied().into());
                o.insert("not_runnable_because".into(), m.err().into());
                serde_json::Value::Object(o)
            })
            .collect();
        crate::common::print_json(&serde_json::json!({
            "schema": "smmu-lab/validate/v1",
            "files": files,
        }))?;
        return Ok(CommandOutcome::Clean);
    }
    for s in &out {
        outln!("{}: valid", s.path.display());
        for (k, v) in summary(s) {
            outln!("  {:<13} {}", format!("{k}:"), v);
        }
        match model(s) {
            Ok(m) => outln!(
                "  {:<13} {m}: smmu-lab run {}",
                "runs on:",
                shell_quote(&s.path.display().to_string())
            ),
            Err(why) => outln!("  {:<13} not yet: {why}", "runs on:"),
        }
        if let Ok(cmd) = run_command(s) {
            outln!("  {:<13} {cmd}", "same as:");
        }
    }
    Ok(CommandOutcome::Clean)
}
