//! The smmu-lab command line.

/// Print to standard output; once the reader has gone away (`| head`), further output is
/// dropped instead of panicking, and the command still ends with its own exit code.
macro_rules! out {
    ($($arg:tt)*) => { $crate::write_stdout(format_args!($($arg)*), false) };
}

/// [`out!`] with a newline.
macro_rules! outln {
    () => { $crate::write_stdout(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::write_stdout(format_args!($($arg)*), true) };
}

mod bisect_cmd;
mod board_cmd;
mod check_cmd;
mod common;
mod decode_cmd;
mod demo_cmd;
mod explore_cmd;
mod file_model;
mod json_out;
mod kernel_cmd;
mod mmio_log_out;
mod replay_cmd;
mod report;
mod run_cmd;
mod validate_cmd;

/// The simulator, as `crate::sim` in every command module.
use ::sim;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Reproduce and rule out IOMMU shutdown races (ARM SMMUv2 / MMU-500) without hardware.
#[derive(Debug, Parser)]
#[command(name = "smmu-lab", version, about, long_about = None)]
struct Cli {
    /// Machine-readable JSON output instead of text (schemas: docs/json.md).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The seed's reboot crash on the built-in board under linux-6.1, linux-6.2 and quiesce.
    #[command(after_help = "Example:\n  smmu-lab demo")]
    Demo(demo_cmd::Args),
    /// One run of a scenario: its kernel log and verdict.
    #[command(
        after_help = "Examples:\n  smmu-lab run reboot --kernel linux-6.1 --seed 3\n  smmu-lab run kexec --kernel linux-6.2 --dtb my-board.dtb\n  smmu-lab run reboot --kernel quiesce --cmdline 'iommu.strict=0'"
    )]
    Run(run_cmd::Args),
    /// Many runs under controlled interleavings; a failure is minimised and made replayable.
    #[command(
        after_help = "Examples:\n  smmu-lab explore reboot --kernel linux-6.1 --strategy pct --runs 1000\n  smmu-lab explore reboot --kernel all --strategy random --runs 500 --jobs 2 --keep-going\n  smmu-lab explore reboot --kernel quiesce --strategy dfs --depth 2 --runs 100000"
    )]
    Explore(explore_cmd::Args),
    /// Reproduce a run from a replay token or file, byte for byte.
    #[command(
        after_help = "Examples:\n  smmu-lab replay reboot:linux-6.1:random@3\n  smmu-lab replay smmu-lab-replay-linux-6.1.json"
    )]
    Replay(replay_cmd::Args),
    /// A board's SMMUs, masters, stream IDs and IOMMU groups.
    #[command(after_help = "Examples:\n  smmu-lab board\n  smmu-lab board my-board.dtb --json")]
    Board(board_cmd::Args),
    /// Explain a register value field by field.
    #[command(
        after_help = "Examples:\n  smmu-lab decode gfsr 0x80000002\n  smmu-lab decode sctlr 0x1067\n  smmu-lab decode scr0 0x00201c36"
    )]
    Decode(decode_cmd::Args),
    /// Kernels as a version preset plus named Linux fixes: list them, or show a spec.
    #[command(
        after_help = "Examples:\n  smmu-lab kernel list\n  smmu-lab kernel show v6.1+ce31e6ca68bd"
    )]
    Kernel(kernel_cmd::Args),
    /// Walk the kernel history one fix at a time: the last kernel where a property fails and
    /// the first fix after which it holds.
    #[command(
        after_help = "Example:\n  smmu-lab bisect scenarios/linux/b1a1347912a7.toml --property one-group-per-stream --from v5.14 --to v5.16"
    )]
    Bisect(bisect_cmd::Args),
    /// Run the corpus of real Linux bugs: each fails before its fix and holds after it.
    #[command(after_help = "Example:\n  smmu-lab check scenarios/linux --jobs 2")]
    Check(check_cmd::Args),
    /// Check scenario files (board, kernel, drivers, actors, properties) without running them.
    #[command(after_help = "Example:\n  smmu-lab validate scenarios/reboot-ping-flood.toml")]
    Validate(validate_cmd::Args),
}

/// How a command ended: 0 clean, 1 a checked property was violated, 2 usage or input error.
pub enum CommandOutcome {
    Clean,
    Violated,
}

fn write_stdout(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args);
    if newline {
        let _ = out.write_all(b"\n");
    }
}

/// The explorer builds and drops a whole simulated machine per run, tens of thousands of small
/// allocations each: mimalloc makes them about a third cheaper than the system allocator
/// (BENCHMARKS.md, the explorer's rows).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Demo(a) => demo_cmd::run(a, cli.json),
        Command::Run(a) => run_cmd::run(a, cli.json),
        Command::Explore(a) => explore_cmd::run(a, cli.json),
        Command::Replay(a) => replay_cmd::run(a, cli.json),
        Command::Board(a) => board_cmd::run(a, cli.json),
        Command::Decode(a) => decode_cmd::run(a, cli.json),
        Command::Kernel(a) => kernel_cmd::run(a, cli.json),
        Command::Validate(a) => validate_cmd::run(a, cli.json),
        Command::Bisect(a) => bisect_cmd::run(a, cli.json),
        Command::Check(a) => check_cmd::run(a, cli.json),
    };
    match result {
        Ok(CommandOutcome::Clean) => ExitCode::SUCCESS,
        Ok(CommandOutcome::Violated) => ExitCode::from(1),
        Err(e) => {
            eprintln!("smmu-lab: error: {e}");
            ExitCode::from(2)
        }
    }
}
