//! `smmu-lab kernel` and `smmu-lab validate`: real output, exit 2 with file:line:col for bad
//! files, and the run a valid file stands for today actually runs.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::PathBuf;

fn lab() -> Command {
    let mut c = Command::cargo_bin("smmu-lab").expect("binary built by cargo");
    c.env("RUST_BACKTRACE", "1");
    c
}

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn stdout_of(args: &[&str], code: i32) -> String {
    let out = lab()
        .current_dir(repo())
        .args(args)
        .assert()
        .code(code)
        .get_output()
        .clone();
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn kernel_show_lists_fixes_switches_and_todays_behaviour() {
    let out = stdout_of(&["kernel", "show", "v6.1+ce31e6ca68bd"], 0);
    assert!(out.starts_with("kernel v6.1+ce31e6ca68bd\n"), "{out}");
    assert!(out.contains(
        "    57365a04c921       iommu: Move bus setup to IOMMU device registration  [Linux v6.1, in the preset]\n"
    ));
    assert!(out.contains(
        "    ce31e6ca68bd       iommu/arm-smmu: Don't unregister on shutdown  [Linux v6.2, added]\n"
    ));
    assert!(out.contains("    arm-smmu  .shutdown runs .remove (unregisters): no\n"));
    assert!(out.contains("    arm-smmu-v3  .shutdown runs .remove (unregisters): yes\n"));
    // Only the series' arm-smmu half: today's linux-6.2 has both, which matters on SMMUv3.
    assert!(
        out.ends_with(
            "  reboot machine: runs it as --kernel linux-6.2\n  (on SMMUv3 boards --kernel linux-6.2 runs arm-smmu-v3 with 32ea2c57dc21, unlike this kernel)\n"
        ),
        "{out}"
    );
    let out = stdout_of(&["kernel", "show", "v6.1+ce31e6ca68bd+32ea2c57dc21"], 0);
    assert!(
        out.ends_with("  reboot machine: runs it as --kernel linux-6.2\n"),
        "{out}"
    );
    assert!(
        out.contains("    arm-smmu  device_group() under stream_map_mutex: yes\n"),
        "{out}"
    );

    let out = stdout_of(&["kernel", "show", "v5.14-4e4abae311e4"], 0);
    // 85c7a0f1ef62 (v4.20) stays in v5.14 when 4e4abae311e4 is removed.
    assert!(
        out.contains("    85c7a0f1ef62       iommu/io-pgtable-arm: Fix race handling in split_blk_unmap()  [Linux v4.20, in the preset]\n"),
        "{out}"
    );
    assert!(out.contains("    -4e4abae311e4"), "{out}");
    assert!(
        out.contains(
            "    arm-smmu-v3  kdump kernel resets and keeps the SMMU, event queue off: yes\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("    arm-smmu  TLB maintenance registers written with the constant 0: yes\n"),
        "{out}"
    );
    let out = stdout_of(&["kernel", "show", "v6.0"], 0);
    assert!(out.contains("    iommu     unregister releases the instance's devices: no\n"));
    assert!(
        out.contains("  reboot machine: cannot run it yet: kernel v6.0: today's machine runs only")
    );

    let v: serde_json::Value = serde_json::from_str(&stdout_of(
        &["--json", "kernel", "show", "v6.2-ce31e6ca68bd"],
        0,
    ))
    .unwrap();
    assert_eq!(v["schema"], "smmu-lab/kernel/v1");
    assert_eq!(v["kernel"], "v6.2-ce31e6ca68bd");
    assert_eq!(v["removed"][0], "ce31e6ca68bd");
    assert_eq!(v["switches"]["arm_smmu"]["shutdown_runs_remove"], true);
    assert_eq!(v["runs_today_as"], "linux-6.1");
}

#[test]
fn kernel_errors_exit_2() {
    for (spec, msg) in [
        ("v6.1-ce31e6ca68bd", "v6.1 does not contain ce31e6ca68bd"),
        ("v6.1+0123456789ab", "unknown fix '0123456789ab'"),
        ("v5.4", "unknown kernel version 'v5.4'"),
        ("v6.2+ce31e6ca68bd", "v6.2 already contains ce31e6ca68bd"),
        (
            "v6.1+quiesce-quiesce",
            "fix quiesce is named more than once",
        ),
    ] {
        lab()
            .args(["kernel", "show", spec])
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains(msg));
    }
}

#[test]
fn kernel_list_names_every_preset_and_fix() {
    let out = stdout_of(&["kernel", "list"], 0);
    assert!(
        out.contains("  v5.14            b63b3439b856 85c7a0f1ef62 4e4abae311e4 3f54c447df34\n"),
        "{out}"
    );
    assert!(
        out.contains("  v6.1             b63b3439b856 85c7a0f1ef62 4e4abae311e4 3f54c447df34 b1a1347912a7 211ff31b3d33 53f613134984 556f99ac8866 d7061627d701 b54240ad4943 a3884774d731 ac9a5d522bb8 57365a04c921\n"),
        "{out}"
    );
    assert!(
        out.contains("  v6.13  (current) b63b3439b856 85c7a0f1ef62 4e4abae311e4 "),
        "{out}"
    );
    for id in [
        "57365a04c921",
        "ce31e6ca68bd",
        "32ea2c57dc21",
        "quiesce",
        "guarded_dma_domain",
    ] {
        assert!(out.contains(&format!("  {id:<18} ")), "{id}");
    }
}

#[test]
fn validate_accepts_the_examples_and_names_todays_run() {
    let out = stdout_of(
        &[
            "validate",
            "scenarios/reboot-ping-flood.toml",
            "scenarios/lazy-unmap-vs-unbind.toml",
        ],
        0,
    );
    assert!(
        out.starts_with("scenarios/reboot-ping-flood.toml: valid\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "  runs on:      reboot machine: smmu-lab run scenarios/reboot-ping-flood.toml\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("  same as:      smmu-lab run reboot --kernel linux-6.1\n"),
        "{out}"
    );
    assert!(out.contains("scenarios/lazy-unmap-vs-unbind.toml: valid\n"));
    assert!(
        out.contains("  runs on:      not yet: scenarios/lazy-unmap-vs-unbind.toml:"),
        "{out}"
    );
}

/// The command `validate` prints for the seed's file is the seed's run: it violates no-oops.
#[test]
fn the_printed_run_command_runs_the_seed() {
    let out = stdout_of(&["validate", "scenarios/reboot-ping-flood.toml"], 0);
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("same as:"))
        .unwrap()
        .trim()
        .to_string();
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    let run = stdout_of(&args, 1);
    assert!(
        run.contains("Unable to handle kernel NULL pointer dereference"),
        "{run}"
    );
}

#[test]
fn a_bad_file_is_exit_2_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "[board]\nbuiltin = \"kbox-a230-ls\"\n\n[kernel]\nversion = \"v6.1+ce31e6ca68be\"\n",
    )
    .unwrap();
    let path = p.display().to_string();
    lab()
        .args(["validate", &path])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(format!(
            "{path}:5:11: kernel: unknown fix 'ce31e6ca68be'"
        )));
    lab()
        .args(["validate", "no/such/file.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no/such/file.toml: "));
}

/// docs/scenarios.md shows real output: every `<!-- output: smmu-lab ARGS -->` block is what
/// the command prints now, and every `<!-- file: PATH -->` block is the file as it is.
#[test]
fn docs_scenarios_md_is_current() {
    let doc = std::fs::read_to_string(repo().join("docs/scenarios.md")).unwrap();
    let mut checked = 0;
    let update = std::env::var("UPDATE_DOCS").is_ok_and(|v| v == "1");
    let mut fresh: Vec<(usize, usize, String)> = Vec::new();
    let lines: Vec<&str> = doc.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let marker = line.trim();
        let (kind, what) = if let Some(cmd) = marker
            .strip_prefix("<!-- output: smmu-lab ")
            .and_then(|s| s.strip_suffix(" -->"))
        {
            ("output", cmd)
        } else if let Some(cmd) = marker
            .strip_prefix("<!-- output, exit 1: smmu-lab ")
            .and_then(|s| s.strip_suffix(" -->"))
        {
            ("output, exit 1", cmd)
        } else if let Some(path) = marker
            .strip_prefix("<!-- file: ")
            .and_then(|s| s.strip_suffix(" -->"))
        {
            ("file", path)
        } else {
            continue;
        };
        // The fenced block right after the marker.
        assert!(lines[i + 1].starts_with("```"), "no block after {marker}");
        let end = lines[i + 2..]
            .iter()
            .position(|l| l.starts_with("```"))
            .unwrap()
            + i
            + 2;
        let block = lines[i + 2..end].join("\n") + "\n";
        let want = if kind.starts_with("output") {
            let args: Vec<&str> = what.split_whitespace().collect();
            stdout_of(&args, if kind == "output" { 0 } else { 1 })
        } else {
            std::fs::read_to_string(repo().join(what)).unwrap()
        };
        if update && block != want {
            fresh.push((i + 2, end, want));
        } else {
            assert_eq!(
                block, want,
                "docs/scenarios.md block for {marker} has drifted \
                 (UPDATE_DOCS=1 cargo test -p smmu-lab --release --test kernel_validate regenerates)"
            );
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} generated blocks");
    if !fresh.is_empty() {
        let mut out: Vec<String> = Vec::new();
        let mut at = 0;
        for (from, to, text) in &fresh {
            out.extend(lines[at..*from].iter().map(|l| l.to_string()));
            out.extend(text.lines().map(str::to_string));
            at = *to;
        }
        out.extend(lines[at..].iter().map(|l| l.to_string()));
        std::fs::write(repo().join("docs/scenarios.md"), out.join("\n") + "\n").unwrap();
    }

    // The typo example: same position and message (the doc abbreviates the board's masters).
    let shown = lines
        .iter()
        .find_map(|l| l.strip_prefix("smmu-lab: error: scenarios/lazy-unmap-vs-unbind.toml"))
        .unwrap();
    let shown = shown.split("...").next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("typo.toml");
    let text = std::fs::read_to_string(repo().join("scenarios/lazy-unmap-vs-unbind.toml"))
        .unwrap()
        .replacen(
            "{ op = \"dma-map-page\", device = \"3200000.sata\"",
            "{ op = \"dma-map-page\", device = \"3300000.sata\"",
            1,
        );
    std::fs::write(&p, text).unwrap();
    let out = lab()
        .args(["validate", &p.display().to_string()])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(&format!("smmu-lab: error: {}{shown}", p.display())),
        "{err}\nvs doc: {shown}"
    );
}

/// `--kernel` takes a kernel spec that one of today's behaviours runs: the same run, byte for
/// byte, as the behaviour's own name; a valid spec no behaviour runs is exit 2 with the reason.
#[test]
fn run_takes_kernel_specs() {
    let by_name = stdout_of(
        &["run", "reboot", "--kernel", "linux-6.1", "--seed", "0"],
        1,
    );
    for spec in ["v6.1", "v6.2-ce31e6ca68bd"] {
        let by_spec = stdout_of(&["run", "reboot", "--kernel", spec, "--seed", "0"], 1);
        assert_eq!(by_spec, by_name, "{spec}");
    }
    // Exit 0 since Bus Master Enable is checked on every transaction: kexec on v6.2 no longer
    // strays (the seed-2 run used to, through the per-step check).
    let by_name = stdout_of(&["run", "kexec", "--kernel", "linux-6.2", "--seed", "2"], 0);
    let by_spec = stdout_of(
        &[
            "run",
            "kexec",
            "--kernel",
            "v6.1+ce31e6ca68bd",
            "--seed",
            "2",
        ],
        0,
    );
    assert_eq!(by_spec, by_name);
    for (spec, msg) in [
        (
            "v6.0",
            "kernel v6.0 cannot run yet: kernel v6.0: today's machine runs only",
        ),
        ("v6.1-ce31e6ca68bd", "v6.1 does not contain ce31e6ca68bd"),
        ("v6.1+quiesce", "arm-smmu has no shutdown path"),
    ] {
        lab()
            .args(["run", "--kernel", spec])
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains(msg));
    }
}
