//! Exit code 2 from smmu-lab itself: bad command lines, blobs, tokens, files, values and budgets, each named.

use super::*;

#[test]
fn malformed_cmdline_is_an_input_error() {
    usage_error(
        &["run", "--cmdline", "arm-smmu.disable_bypass=maybe"],
        "smmu-lab: error: arm-smmu.disable_bypass: invalid value \"maybe\" (-EINVAL)",
    );
    usage_error(
        &["run", "--cmdline", "foo.bar=1"],
        "smmu-lab: error: kernel parameter 'foo.bar': not a parameter smmu-lab models",
    );
    usage_error(
        &["explore", "--runs", "5", "--cmdline", "foo.bar=1"],
        "kernel parameter 'foo.bar'",
    );
    usage_error(
        &["demo", "--runs", "5", "--cmdline", "iommu.strict=2"],
        "kernel parameter 'iommu.strict': invalid value \"2\" (expected y/n/1/0/on/off)",
    );
}

#[test]
fn bad_dtb_path_is_an_input_error() {
    usage_error(
        &["run", "--dtb", "/nonexistent/board.dtb"],
        "smmu-lab: error: /nonexistent/board.dtb: No such file or directory",
    );
    usage_error(
        &["board", "/nonexistent/board.dtb"],
        "/nonexistent/board.dtb: No such file or directory",
    );
}

#[test]
fn truncated_or_garbage_dtb_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(board(dir.path(), "juno-r2.dtb")).unwrap();
    let truncated = dir.path().join("truncated.dtb");
    std::fs::write(&truncated, &full[..100]).unwrap();
    let t = truncated.to_str().unwrap();
    usage_error(
        &["board", t],
        &format!(
            "{t}: device tree truncated: blob (header totalsize) needs {} bytes, blob has 100",
            full.len()
        ),
    );
    usage_error(&["run", "--dtb", t], "device tree truncated");
    let garbage = dir.path().join("garbage.dtb");
    std::fs::write(
        &garbage,
        b"this is not a device tree blob at all, just text\n",
    )
    .unwrap();
    let g = garbage.to_str().unwrap();
    lab()
        .args(["board", g])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::starts_with(format!(
            "smmu-lab: error: {g}: "
        )))
        .stderr(predicate::str::contains("panicked").not());
    let empty = dir.path().join("empty.dtb");
    std::fs::write(&empty, b"").unwrap();
    usage_error(&["board", empty.to_str().unwrap()], "device tree");
}

#[test]
fn bad_replay_token_is_an_input_error() {
    usage_error(
        &["replay", "garbage"],
        "smmu-lab: error: replay token 'garbage' is not of the form SCENARIO:KERNEL:SCHEDULE",
    );
    usage_error(&["replay", "reboot:linux-9:random@3"], "smmu-lab: error:");
    usage_error(&["replay", "nuke:linux-6.1:random@3"], "smmu-lab: error:");
    usage_error(&["replay", "reboot:linux-6.1:zzz"], "smmu-lab: error:");
}

#[test]
fn bad_replay_file_is_an_input_error() {
    usage_error(
        &["replay", "smmu-lab-replay-linux-6.1.json"],
        "smmu-lab: error: smmu-lab-replay-linux-6.1.json: no such replay file",
    );
    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("x.json");
    std::fs::write(&not_json, "this is not json").unwrap();
    let p = not_json.to_str().unwrap();
    usage_error(
        &["replay", p],
        &format!("smmu-lab: error: {p}: not a replay file"),
    );
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, r#"{"x": 1}"#).unwrap();
    usage_error(
        &["replay", wrong.to_str().unwrap()],
        "not a replay file: missing field `schema`",
    );
    let future = dir.path().join("future.json");
    std::fs::write(
        &future,
        r#"{"schema":"smmu-lab/replay/v9","token":"reboot:linux-6.1:s4x-1","dtb":null,
            "cmdline":"","no_timestamps":false,"flood":24,"actor_steps":48,"properties":[]}"#,
    )
    .unwrap();
    usage_error(
        &["replay", future.to_str().unwrap()],
        "replay file schema 'smmu-lab/replay/v9' is not smmu-lab/replay/v1",
    );
    let bad_prop = dir.path().join("prop.json");
    std::fs::write(
        &bad_prop,
        r#"{"schema":"smmu-lab/replay/v1","token":"reboot:linux-6.1:s4x-1","dtb":null,
            "cmdline":"","no_timestamps":false,"flood":24,"actor_steps":48,"properties":["no-bugs"]}"#,
    )
    .unwrap();
    usage_error(
        &["replay", bad_prop.to_str().unwrap()],
        "unknown property 'no-bugs'",
    );
}

#[test]
fn bad_decode_register_or_value_is_an_input_error() {
    usage_error(
        &["decode", "gfrs", "0x2"],
        "smmu-lab: error: unknown register 'gfrs'; known: gfsr,",
    );
    usage_error(
        &["decode", "gfsr", "0xzz"],
        "smmu-lab: error: '0xzz' is not a 32-bit value (use 0x… for hexadecimal)",
    );
    usage_error(&["decode", "gfsr", "0x100000000"], "is not a 32-bit value");
    usage_error(&["decode", "gfsr", "1.5"], "'1.5' is not a 32-bit value");
}

#[test]
fn zero_budgets_are_input_errors() {
    usage_error(&["explore", "--runs", "0"], "--runs must be at least 1");
    usage_error(
        &["run", "--flood", "0"],
        "--flood and --actor-steps must be at least 1",
    );
}

#[test]
fn bad_builds_rings_rates_and_cores_are_named_with_exit_2() {
    for (args, msg) in [
        (
            vec!["run", "reboot", "--build", "6.3"],
            "smmu-lab: error: unknown kernel build '6.3': choose 6.1-rc5-1930, 6.1-rc5-a8 or 6.2",
        ),
        (
            vec!["run", "reboot", "--kernel", "linux-6.2", "--build", "6.1-rc5-1930"],
            "smmu-lab: error: kernel build '6.1-rc5-1930' is a v6.1 build; the linux-6.2 shutdown policy runs on v6.2 builds (6.2)",
        ),
        (
            vec!["run", "reboot", "--rx-ring", "100"],
            "smmu-lab: error: rx ring size 100: must be a multiple of 8 between 8 and 4096",
        ),
        (
            vec!["explore", "reboot", "--tx-ring", "0"],
            "smmu-lab: error: tx ring size 0: must be a multiple of 8",
        ),
        (
            vec!["run", "reboot", "--flood-rate", "5000000"],
            "smmu-lab: error: flood rate 5000000 packets/s: must be between 100 (ping -f sends at least one request every 10 ms) and 1059322",
        ),
        (
            vec!["run", "reboot", "--flood-rate", "99"],
            "smmu-lab: error: flood rate 99 packets/s: must be between 100",
        ),
        (
            vec!["run", "reboot", "--dma-core", "fast"],
            "smmu-lab: error: unknown DMA core 'fast': choose linux or safe",
        ),
        (
            vec!["demo", "--build", "6.2"],
            "smmu-lab: error: --build does not apply to demo",
        ),
    ] {
        usage_error(&args, msg);
    }
}
