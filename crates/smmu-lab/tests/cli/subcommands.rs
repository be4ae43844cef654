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

/// The `--property` help of every subcommand that takes it names every property the simulator
/// checks and the true default set (it once listed six of eight and an outdated default).
#[test]
fn property_help_names_every_property_and_the_default() {
    use sim::scenario::Property;
    for sub in ["run", "explore", "replay"] {
        let help = stdout_of(&[sub, "--help"], 0);
        let entry = help
            .split("--property <PROPERTIES>")
            .nth(1)
            .unwrap_or_else(|| panic!("{sub} --help has no --property:\n{help}"));
        // The entry runs to the next option.
        let entry: String = entry
            .split("\n  -")
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for p in Property::ALL {
            assert!(
                entry.contains(p.name()),
                "{sub} --help omits {}: {entry}",
                p.name()
            );
        }
        let left_out: Vec<&str> = Property::ALL
            .iter()
            .filter(|p| !Property::DEFAULT.contains(p))
            .map(|p| p.name())
            .collect();
        assert_eq!(left_out, ["no-fault", "smmu-probed"]);
        assert!(
            entry.contains("Default: all but no-fault and smmu-probed"),
            "{sub}: {entry}"
        );
    }
}
