//! Scenario files on the real stack: `run`, `check` and `bisect` of a file.

use super::*;

/// A finding of the real stack.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Finding {
    property: String,
    message: String,
}

/// `smmu-lab/run-file/v1`, as docs/json.md documents it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRun {
    schema: String,
    file: String,
    kernel: String,
    model: String,
    token: String,
    replay: String,
    violations: Vec<String>,
    verdict: Option<Verdict>,
    findings: Vec<Finding>,
    log: Vec<String>,
}

#[test]
fn file_run_check_and_bisect_json_match_the_doc_and_the_text() {
    let repo = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let file = "scenarios/linux/33729a5fc0ca.toml";

    // run FILE.toml: the real stack's finding, and the same token replays to the same object.
    let v = json(repo, &["run", file], 1);
    check_against_doc("smmu-lab/run-file/v1", &v);
    let r: FileRun = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(
        (r.schema.as_str(), r.file.as_str(), r.kernel.as_str()),
        ("smmu-lab/run-file/v1", file, "v6.12")
    );
    assert_eq!(r.model, "real stack");
    assert_eq!(r.violations, ["no-block-split"]);
    assert!(r.verdict.is_none());
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].property, "no-block-split");
    assert!(r.findings[0].message.contains("the block was split"));
    assert!(r
        .log
        .contains(&"3200000.sata: iommu_unmap(d, 0x200000, 0x1000) = 0x1000".to_string()));
    assert!(r.token.starts_with("33729a5fc0ca@") && r.token.ends_with(":v6.12:random@0"));
    assert_eq!(r.replay, format!("smmu-lab replay {file} {}", r.token));
    let text = output(repo, &["run", file], 1);
    for line in &r.log {
        assert!(text.contains(line.as_str()), "{line}");
    }
    let again = json(repo, &["replay", file, &r.token], 1);
    assert_eq!(again, v, "replay prints the run's object");

    // A reboot-machine file carries the verdict object of `run --json`.
    let v = json(repo, &["run", "scenarios/kdump-ping-flood.toml"], 1);
    let r: FileRun = serde_json::from_value(v).unwrap();
    assert_eq!(r.model, "reboot machine");
    assert!(r.findings.is_empty());
    let verdict = r.verdict.expect("the machine's verdict");
    assert!(verdict.stray_dma_writes > 0 && verdict.completed);
    assert_eq!(r.violations, ["no-stray-dma"]);

    // explore FILE.toml: the first failure and its token, as the text prints them.
    let args = [
        "explore",
        "scenarios/linux/53f613134984.toml",
        "--strategy",
        "dfs",
        "--runs",
        "100",
    ];
    let v = json(repo, &args, 1);
    check_against_doc("smmu-lab/explore-file/v1", &v);
    assert_eq!(v["model"], "real stack");
    assert_eq!(v["failures"]["no-deadlock"], 1);
    let token = v["first_failure"]["token"].as_str().unwrap();
    assert!(token.ends_with(":v5.16-53f613134984:s"), "{token}");
    let text = output(repo, &args, 1);
    assert!(
        text.contains(&format!(
            "  reproduce: smmu-lab replay scenarios/linux/53f613134984.toml {token}\n"
        )),
        "{text}"
    );

    // check FILE.toml: one bug, the numbers of the text line.
    let v = json(repo, &["check", file], 0);
    check_against_doc("smmu-lab/check/v1", &v);
    assert_eq!((v["files"].as_u64(), v["ok"].as_u64()), (Some(1), Some(1)));
    let b = &v["bugs"][0];
    assert_eq!(b["before"]["schedule"], "s");
    assert_eq!(b["after"]["kernel"], "v6.12+33729a5fc0ca");
    assert_eq!(b["fixed_by"]["id"], "33729a5fc0ca");
    assert_eq!(
        output(repo, &["check", file], 0),
        "33729a5fc0ca.toml            no-block-split     fails on v6.12 (run 0, token s); holds on +33729a5fc0ca (1 runs, exhaustive)  ok\n1 files, 1 distinct fixes: 1 fail before their fix and hold after it, 0 regressed\n"
    );

    // bisect: the walk, the last failing kernel and the first fix, as the text says.
    let args = [
        "bisect",
        "scenarios/linux/33729a5fc0ca.toml",
        "--property",
        "no-block-split",
        "--from",
        "v6.12",
    ];
    let v = json(repo, &args, 0);
    check_against_doc("smmu-lab/bisect/v1", &v);
    assert_eq!(v["last_failing"], "v6.12+229e6ee43d2a");
    assert_eq!(v["first_fix"]["id"], "33729a5fc0ca");
    let kernels = v["kernels"].as_array().unwrap();
    assert_eq!(kernels.len(), 4, "{v}");
    assert!(kernels[0]["fix"].is_null() && kernels[0]["fails"] == true);
    let text = output(repo, &args, 0);
    assert!(text.contains(
        "first fix after which it holds: 33729a5fc0ca \"iommu/io-pgtable-arm: Remove split on unmap behavior\" (v6.12+229e6ee43d2a+33729a5fc0ca;"
    ), "{text}");
}
