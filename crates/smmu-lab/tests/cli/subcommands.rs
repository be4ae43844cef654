//! Every subcommand works: demo, board, decode, help and version.

use super::*;

#[test]
fn demo_shows_the_three_kernels() {
    let out = stdout_of(&["demo", "--runs", "50"], 0);
    assert!(out.starts_with(
        "smmu-lab demo: reboot -f during a ping flood on Kontron KBox A-230-LS (DT)\n"
    ));
    assert!(out.contains("linux-6.1, from `reboot -f` on:"));
    let last: Vec<&str> = out.lines().rev().take(3).collect();
    assert!(last[2].starts_with("linux-6.1 violated no-oops: smmu-lab replay reboot:linux-6.1:"));
    assert!(
        last[1].starts_with("linux-6.2 violated no-stray-dma: smmu-lab replay reboot:linux-6.2:")
    );
    assert!(last[0].starts_with("quiesce held every property: smmu-lab replay reboot:quiesce:"));
}

#[test]
fn board_lists_smmus_and_groups() {
    let builtin = stdout_of(&["board"], 0);
    assert!(
        builtin.starts_with("Board: Kontron KBox A-230-LS\n"),
        "{builtin}"
    );
    assert!(builtin.contains("DMA masters (23):"));
    assert!(builtin.contains("| 0x5000000 | 0x800000 |"));
    let dir = tempfile::tempdir().unwrap();
    let juno = stdout_of(&["board", &board(dir.path(), "juno-r2.dtb")], 0);
    assert!(
        juno.starts_with("Board: ARM Juno development board (r2)\n"),
        "{juno}"
    );
}

#[test]
fn decode_explains_the_seed_gfsr() {
    let out = stdout_of(&["decode", "gfsr", "0x80000002"], 0);
    assert!(out.contains("MULTI + USF"), "{out}");
    assert!(out.contains("no SMR matched the stream ID"));
    // Decimal and underscores are accepted too.
    assert_eq!(stdout_of(&["decode", "gfsr", "2147483650"], 0), out);
    assert_eq!(stdout_of(&["decode", "gfsr", "0x8000_0002"], 0), out);
}

#[test]
fn help_and_version() {
    let help = stdout_of(&["--help"], 0);
    for cmd in ["demo", "run", "explore", "replay", "board", "decode"] {
        assert!(
            help.contains(&format!("\n  {cmd} ")),
            "{cmd} missing from:\n{help}"
        );
    }
    let version = stdout_of(&["--version"], 0);
    assert_eq!(version, format!("smmu-lab {}\n", env!("CARGO_PKG_VERSION")));
}
