//! The smmu-lab command line.

mod decode_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Reproduce and rule out IOMMU shutdown races (ARM SMMUv2 / MMU-500) without hardware.
#[derive(Debug, Parser)]
#[command(name = "smmu-lab", version, about, long_about = None)]
struct Cli {
    /// Machine-readable JSON output instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explain a register value field by field.
    #[command(after_help = "Examples:\n  smmu-lab decode gfsr 0x80000002\n  smmu-lab decode sctlr 0x1067\n  smmu-lab decode scr0 0x00201c36")]
    Decode(decode_cmd::Args),
}

/// How a command ended: 0 clean, 1 a checked property was violated, 2 usage or input error.
pub enum Outcome {
    Clean,
    Violated,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode_cmd::run(&args, cli.json),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Violated) => ExitCode::from(1),
        Err(e) => {
            eprintln!("smmu-lab: error: {e}");
            ExitCode::from(2)
        }
    }
}
