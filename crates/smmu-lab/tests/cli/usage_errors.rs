//! Exit code 2 from clap: unknown subcommands, options and values.

use super::*;

#[test]
fn unknown_subcommand_is_a_usage_error() {
    usage_error(
        &["frobnicate"],
        "error: unrecognized subcommand 'frobnicate'",
    );
    usage_error(&[], "Usage: smmu-lab [OPTIONS] <COMMAND>");
}

#[test]
fn unknown_option_is_a_usage_error() {
    usage_error(
        &["run", "--bogus"],
        "error: unexpected argument '--bogus' found",
    );
    usage_error(
        &["explore", "--strategy", "bfs"],
        "invalid value 'bfs' for '--strategy",
    );
    usage_error(
        &["explore", "--runs", "x3"],
        "invalid value 'x3' for '--runs <RUNS>'",
    );
    usage_error(&["decode", "gfsr"], "required");
}

#[test]
fn unknown_kernel_scenario_property_are_usage_errors() {
    usage_error(
        &["run", "--kernel", "linux-5.4"],
        "unknown kernel 'linux-5.4': choose linux-6.1, linux-6.2 or quiesce",
    );
    usage_error(
        &["explore", "--kernel", "nope", "--runs", "5"],
        "smmu-lab: error: unknown kernel 'nope'",
    );
    usage_error(
        &["run", "suspend"],
        "unknown scenario 'suspend': choose reboot, kexec, unbind or crash-kexec",
    );
    usage_error(
        &["run", "--property", "no-bugs"],
        "unknown property 'no-bugs': choose no-oops, no-stray-dma, no-foreign-dma, no-lost-write, no-dma-through-freed-domain, no-fault",
    );
    usage_error(
        &["replay", "reboot:linux-6.1:random@3", "--property", "x"],
        "unknown property 'x'",
    );
}
