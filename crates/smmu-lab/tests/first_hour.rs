//! A new user's first hour (issue 11): every command tells the truth. Input errors exit 2 in
//! every command and leave nothing behind; nonsense options are refused; a run without DMA says
//! so; results do not depend on --jobs; replay files go where the user asks.

use assert_cmd::Command;
use std::path::Path;

fn lab(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("smmu-lab").expect("binary built by cargo");
    c.current_dir(dir);
    c
}

/// (exit code, stdout, stderr)
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = lab(dir).args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The KBox fixture with its SMMU's compatible changed to one no driver matches.
fn kbox_without_smmu(dir: &Path) -> String {
    let mut blob = lab_fixtures::kbox_dtb();
    let at = blob
        .windows(11)
        .position(|w| w == b"arm,mmu-500")
        .expect("the SMMU compatible");
    blob[at..at + 11].copy_from_slice(b"arm,xyz-500");
    let p = lab_fixtures::write_to(dir, "no-smmu.dtb", &blob);
    p.to_str().unwrap().to_string()
}

#[test]
fn a_board_without_an_smmu_is_an_input_error_in_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let dtb = kbox_without_smmu(dir.path());
    let before = files_in(dir.path());
    for args in [
        vec!["run", "reboot", "--dtb", &dtb],
        vec!["explore", "reboot", "--runs", "5", "--dtb", &dtb],
        vec![
            "explore", "reboot", "--kernel", "all", "--runs", "5", "--dtb", &dtb,
        ],
        vec!["demo", "--runs", "5", "--dtb", &dtb],
    ] {
        let (code, out, err) = run(dir.path(), &args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(
            err.contains("board has no enabled SMMU"),
            "{args:?} must name the cause: {err}"
        );
        assert!(
            !err.contains("violated") && !err.contains("did not complete"),
            "{err}"
        );
    }
    assert_eq!(files_in(dir.path()), before, "no replay file written");
}

#[test]
fn nonsense_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let max = u64::MAX.to_string();
    for (args, msg) in [
        (vec!["demo", "--runs", "0"], "--runs must be at least 1"),
        (vec!["explore", "--runs", "0"], "--runs must be at least 1"),
        (vec!["explore", "--jobs", "0"], "--jobs must be at least 1"),
        (vec!["explore", "--depth", "0"], "--depth must be at least 1 for pct"),
        (vec!["explore", "--runs", &max], "more than can ever finish"),
        (vec!["demo", "--runs", &max], "more than can ever finish"),
        (
            vec!["run", "--traffic", "3200000.sata", "--traffic", "3200000.sata"],
            "--traffic 3200000.sata is given twice",
        ),
        (
            vec!["run", "--cmdline", "arm-smmu.disable_bypas=0"],
            "arm-smmu.disable_bypas: unknown parameter (known: arm-smmu.disable_bypass, arm-smmu.force_stage)",
        ),
        (vec!["run", "--cmdline", "iommu.strict"], "kstrtobool(NULL) is -EINVAL"),
    ] {
        let (code, out, err) = run(dir.path(), &args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    // Quoted values are accepted for every parameter alike.
    let (code, _, err) = run(
        dir.path(),
        &[
            "run",
            "--cmdline",
            "iommu.strict=\"0\" arm-smmu.disable_bypass=\"0\"",
        ],
    );
    assert!(code == 0 || code == 1, "{err}");
    // A DFS is one search: --jobs has no effect there, and the command says so.
    let (code, _, err) = run(
        dir.path(),
        &[
            "explore",
            "--strategy",
            "dfs",
            "--depth",
            "0",
            "--runs",
            "5",
            "--jobs",
            "2",
            "--kernel",
            "quiesce",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("--jobs 2 has no effect with --strategy dfs"),
        "{err}"
    );
}

#[test]
fn a_run_without_dma_says_so_and_every_juno_master_carries_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let juno = lab_fixtures::write_to(dir.path(), "juno-r2.dtb", &lab_fixtures::juno_r2_dtb());
    let juno = juno.to_str().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &["run", "reboot", "--dtb", juno, "--kernel", "linux-6.1"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("properties: all held"), "{out}");
    assert!(
        out.contains("properties: not exercised: no DMA happened"),
        "{out}"
    );
    assert!(out.contains("DMA transactions:     0"), "{out}");
    let (_, out, _) = run(dir.path(), &["demo", "--runs", "2", "--dtb", juno]);
    assert!(!out.contains("held every property"), "{out}");
    assert_eq!(
        out.matches("exercised no property: no DMA happened")
            .count(),
        3,
        "{out}"
    );
    // The PL330 (9 stream IDs) is a master like any other.
    let (code, out, err) = run(
        dir.path(),
        &[
            "run",
            "reboot",
            "--dtb",
            juno,
            "--traffic",
            "7ff00000.dma-controller",
        ],
    );
    assert!(code == 0 || code == 1, "{err}");
    assert!(!out.contains("not exercised"), "{out}");
    let n: u64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("DMA transactions:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a DMA count");
    assert!(n > 0, "{out}");
}

#[test]
fn explore_results_do_not_depend_on_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let explore = |jobs: &str| {
        let out = dir.path().join(format!("j{jobs}"));
        let (code, text, err) = run(
            dir.path(),
            &[
                "explore",
                "reboot",
                "--kernel",
                "linux-6.1",
                "--strategy",
                "random",
                "--runs",
                "24",
                "--keep-going",
                "--jobs",
                jobs,
                "--out",
                out.to_str().unwrap(),
                "--json",
            ],
        );
        assert!(code == 0 || code == 1, "{err}");
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The replay file's path names the --out directory; everything else must agree.
        if let Some(f) = v["kernels"][0]["first_failure"].as_object_mut() {
            f.remove("replay_file");
        }
        v
    };
    let one = explore("1");
    assert_eq!(explore("3"), one);
}

#[test]
fn replay_files_go_to_out_and_the_path_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("replays/nested");
    let (code, text, err) = run(
        dir.path(),
        &[
            "explore",
            "reboot",
            "--kernel",
            "linux-6.1",
            "--runs",
            "200",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    let file = out.join("smmu-lab-replay-linux-6.1.json");
    assert!(file.is_file(), "{text}");
    assert!(
        text.contains(&format!("replay file: {}", file.display())),
        "{text}"
    );
    assert_eq!(files_in(dir.path()), vec!["replays".to_string()]);
}

#[test]
fn decode_names_a_set_wnr() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(dir.path(), &["decode", "gfsynr0", "0x2"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("gfsynr0 = 0x00000002: WNR\n"), "{out}");
    assert!(out.contains("1 (write)"), "{out}");
}

#[test]
fn an_unreadable_device_tree_or_bad_toml_in_a_file_is_shown_as_the_reader_said_it_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[board]\ndtb = \"boards/missing.dtb\"\n\n[kernel]\nversion = \"v6.1\"\n\n[[actor]]\nname = \"shell\"\nkind = \"cpu-task\"\ncpu = 1\nscript = [{ op = \"kexec-execute\" }]\n";
    let cases = [
        (
            "missing.toml",
            base.to_string(),
            "smmu-lab: error: missing.toml:2:7: cannot read device tree boards/missing.dtb: No such file or directory (os error 2)\n",
        ),
        (
            "syntax.toml",
            base.replace("cpu = 1", "cpu = one"),
            "smmu-lab: error: syntax.toml:10:7: string values must be quoted, expected literal string\n",
        ),
        (
            "type.toml",
            base.replace("cpu = 1", "cpu = \"1\""),
            "smmu-lab: error: type.toml:10:7: invalid type: string \"1\", expected u32\n",
        ),
    ];
    for (name, text, _) in &cases {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let before = files_in(dir.path());
    for (name, _, want) in cases {
        for cmd in ["check", "run"] {
            let (code, out, err) = run(dir.path(), &[cmd, name]);
            assert_eq!(
                (code, out.as_str(), err.as_str()),
                (2, "", want),
                "{cmd} {name}"
            );
        }
    }
    assert_eq!(files_in(dir.path()), before, "nothing written");
}
