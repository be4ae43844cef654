//! The board-facing and history commands: `demo`, `board`, `decode`, `kernel` and `validate`.

use super::*;

#[test]
fn demo_json_matches_the_doc() {
    let dir = tempfile::tempdir().unwrap();
    let v = json(dir.path(), &["demo", "--runs", "50"], 0);
    check_against_doc("smmu-lab/demo/v2", &v);
    let text = output(dir.path(), &["demo", "--runs", "50"], 0);
    for k in v["kernels"].as_array().unwrap() {
        let verdict: Verdict = serde_json::from_value(k["verdict"].clone()).unwrap();
        assert_eq!(k["kernel"].as_str().unwrap(), verdict.kernel);
        let replay = k["replay"].as_str().unwrap();
        assert!(text.contains(&format!(": {replay}\n")), "{replay}");
        let row = text
            .lines()
            .find(|l| l.starts_with("stray DMA (writes/reads)"))
            .unwrap();
        assert!(row.contains(&format!(
            "{}/{}",
            verdict.stray_dma_writes, verdict.stray_dma_reads
        )));
    }
}

#[test]
fn board_json_matches_the_doc() {
    let dir = tempfile::tempdir().unwrap();
    // The built-in board, the repo's fixtures, and a real blob with no fixture when ../shared
    // is present.
    let mut paths: Vec<Option<String>> = vec![None];
    for (name, blob) in lab_fixtures::all() {
        let p = lab_fixtures::write_to(dir.path(), name, &blob);
        paths.push(Some(p.display().to_string()));
    }
    paths.extend(
        lab_fixtures::shared::path("boards/ls1028a-rdb.dtb").map(|p| Some(p.display().to_string())),
    );
    for path in paths {
        let mut args = vec!["board"];
        args.extend(path.as_deref());
        let v = json(dir.path(), &args, 0);
        check_against_doc("smmu-lab/board/v1", &v);
        let text = output(dir.path(), &args, 0);
        let model = v["board"]["model"].as_str().unwrap();
        assert!(text.starts_with(&format!("Board: {model}\n")));
        let masters = v["board"]["masters"].as_array().unwrap().len();
        assert_eq!(v["expected_groups"].as_array().unwrap().len(), masters);
        if masters > 0 {
            assert!(
                text.contains(&format!("DMA masters ({masters}):")),
                "{text}"
            );
        }
    }
}

#[test]
fn decode_json_matches_the_doc() {
    let dir = tempfile::tempdir().unwrap();
    let v = json(dir.path(), &["decode", "gfsr", "0x80000002"], 0);
    check_against_doc("smmu-lab/decode/v1", &v);
    assert_eq!(v["value"], "0x80000002");
    assert_eq!(v["summary"], "MULTI + USF");
    assert_eq!(v["unknown_bits"], "0x00000000");
    let set: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["value"] != 0)
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(set, ["USF", "MULTI"]);
    let v = json(dir.path(), &["decode", "sctlr", "0x1067"], 0);
    check_against_doc("smmu-lab/decode/v1", &v);
}

#[test]
fn kernel_and_validate_json_match_the_doc() {
    let repo = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    check_against_doc("smmu-lab/kernels/v1", &json(repo, &["kernel", "list"], 0));
    let v = json(repo, &["kernel", "show", "v6.2-ce31e6ca68bd+quiesce"], 0);
    check_against_doc("smmu-lab/kernel/v1", &v);
    assert!(v["runs_today_as"].is_null() && v["not_today_because"].is_string());
    let v = json(
        repo,
        &[
            "validate",
            "scenarios/reboot-ping-flood.toml",
            "scenarios/lazy-unmap-vs-unbind.toml",
        ],
        0,
    );
    check_against_doc("smmu-lab/validate/v1", &v);
    assert_eq!(
        v["files"][0]["runs_today_as"],
        "smmu-lab run reboot --kernel linux-6.1"
    );
    assert!(v["files"][1]["runs_today_as"].is_null());
}
