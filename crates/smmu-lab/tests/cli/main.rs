//! The command line end to end: every subcommand, every error path and its exit code, replay
//! reproducing runs byte for byte, and quiet output when piped.

mod exit_codes;
mod input_errors;
mod output;
mod replay;
mod subcommands;
mod usage_errors;

use assert_cmd::Command;
use predicates::prelude::*;

fn lab() -> Command {
    let mut c = Command::cargo_bin("smmu-lab").expect("binary built by cargo");
    c.env("RUST_BACKTRACE", "1");
    c
}

/// The repo's fixture standing for the real blob `name`, written into `dir` (the command line
/// reads files; the tests need no ../shared).
fn board(dir: &std::path::Path, name: &str) -> String {
    let (_, blob) = lab_fixtures::all()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture for {name}"));
    let p = lab_fixtures::write_to(dir, name, &blob);
    p.to_str().expect("UTF-8 temp path").to_string()
}

fn stdout_of(args: &[&str], code: i32) -> String {
    let out = lab().args(args).assert().code(code).get_output().clone();
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The value after `prefix` on the line that starts with it.
fn line_value(text: &str, prefix: &str) -> String {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
        .trim()
        .to_string()
}

/// A usage or input error: exit 2, nothing on stdout, the expected message, no panic.
fn usage_error(args: &[&str], message: &str) {
    lab()
        .args(args)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(message))
        .stderr(predicate::str::contains("panicked").not())
        .stderr(predicate::str::contains("stack backtrace").not());
}
