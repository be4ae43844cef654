//! Replay reproduces runs and explorations byte for byte, from a token or a file.

use super::*;

#[test]
fn replay_of_a_run_token_is_byte_identical() {
    for (kernel, seed) in [
        ("linux-6.1", "0"),
        ("linux-6.1", "5"),
        ("linux-6.2", "0"),
        ("linux-6.2", "3"),
        ("quiesce", "0"),
        ("quiesce", "3"),
    ] {
        {
            let args = ["run", "reboot", "--kernel", kernel, "--seed", seed];
            // Whichever verdict the seed gives (quiesce always holds), the replay gives it too.
            let code = lab().args(args).output().unwrap().status.code().unwrap();
            assert!(
                code == 1 || (code == 0 && kernel != "linux-6.1"),
                "{args:?}"
            );
            let run = stdout_of(&args, code);
            let token = line_value(&run, "replay: smmu-lab replay");
            assert_eq!(token, format!("reboot:{kernel}:random@{seed}"));
            let replay = stdout_of(&["replay", &token], code);
            assert_eq!(run, replay, "replay of {token} differs");
            assert_eq!(line_value(&run, "hash:").len(), 16);
        }
    }
    let run = stdout_of(
        &[
            "run",
            "kexec",
            "--kernel",
            "quiesce",
            "--seed",
            "7",
            "--cmdline",
            "iommu.strict=0",
            "--flood",
            "8",
        ],
        0,
    );
    let cmd = line_value(&run, "replay: smmu-lab ");
    assert_eq!(
        cmd,
        "replay kexec:quiesce:random@7 --cmdline iommu.strict=0 --flood 8"
    );
    let args: Vec<&str> = cmd.split(' ').collect();
    assert_eq!(stdout_of(&args, 0), run);
}

#[test]
fn replay_of_an_explore_token_reproduces_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = lab()
        .current_dir(dir.path())
        .args(["explore", "reboot", "--kernel", "all", "--runs", "50"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let mut checked = 0;
    for (kernel, property) in [("linux-6.1", "no-oops"), ("linux-6.2", "no-stray-dma")] {
        let section = out
            .split(&format!("{kernel} (pct)"))
            .nth(1)
            .unwrap_or_else(|| panic!("{kernel} missing:\n{out}"));
        let token = line_value(section, "reproduce: smmu-lab replay");
        let by_token = lab()
            .current_dir(dir.path())
            .args(["replay", &token])
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        let by_token = String::from_utf8(by_token).unwrap();
        assert_eq!(line_value(&by_token, "properties violated:"), property);
        // The verdict explore printed is the verdict of the replayed run.
        let explored: Vec<&str> = section
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("oops:"))
            .take(8)
            .map(str::trim)
            .collect();
        let replayed: Vec<&str> = by_token
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("oops:"))
            .take(8)
            .map(str::trim)
            .collect();
        assert_eq!(explored, replayed);
        // The replay file explore wrote gives the same run, hash included.
        let file = format!("smmu-lab-replay-{kernel}.json");
        assert_eq!(line_value(section, "replay file:"), file);
        assert!(dir.path().join(&file).is_file());
        let by_file = lab()
            .current_dir(dir.path())
            .args(["replay", &file])
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        assert_eq!(String::from_utf8(by_file).unwrap(), by_token);
        checked += 1;
    }
    assert_eq!(checked, 2);
    // No failure under quiesce: no replay file for it.
    assert!(!dir.path().join("smmu-lab-replay-quiesce.json").exists());
}

#[test]
fn explore_replay_file_keeps_the_machine_options() {
    let dir = tempfile::tempdir().unwrap();
    let juno_free = [
        "explore",
        "reboot",
        "--kernel",
        "linux-6.1",
        "--runs",
        "50",
        "--no-timestamps",
        "--cmdline",
        "iommu.strict=0",
        "--out",
        "out",
    ];
    let out = lab()
        .current_dir(dir.path())
        .args(juno_free)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(
        line_value(&out, "replay file:"),
        "out/smmu-lab-replay-linux-6.1.json"
    );
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/smmu-lab-replay-linux-6.1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file["schema"], "smmu-lab/replay/v1");
    assert_eq!(file["cmdline"], "iommu.strict=0");
    assert_eq!(file["no_timestamps"], true);
    let cmd = line_value(&out, "reproduce: smmu-lab ");
    assert!(
        cmd.ends_with(" --cmdline iommu.strict=0 --no-timestamps"),
        "{cmd}"
    );
    let by_cmd = stdout_of(&cmd.split(' ').collect::<Vec<_>>(), 1);
    let by_file = lab()
        .current_dir(dir.path())
        .args(["replay", "out/smmu-lab-replay-linux-6.1.json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(by_file).unwrap(), by_cmd);
    assert!(!by_cmd.contains("[    0.0"), "timestamps kept:\n{by_cmd}");
}

#[test]
fn replay_json_equals_run_json() {
    let run = stdout_of(
        &["run", "--kernel", "linux-6.2", "--seed", "2", "--json"],
        1,
    );
    let replay = stdout_of(&["replay", "reboot:linux-6.2:random@2", "--json"], 1);
    assert_eq!(run, replay);
}
