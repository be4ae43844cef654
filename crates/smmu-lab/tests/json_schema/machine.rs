//! `run`, `replay` and `explore` on the simulated machine: their JSON, the replay file, and the
//! verdict as the text prints it.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Run {
    schema: String,
    token: String,
    replay: String,
    hash: String,
    properties_checked: Vec<String>,
    violations: Vec<String>,
    verdict: Verdict,
    log: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayFile {
    schema: String,
    token: String,
    dtb: Option<String>,
    cmdline: String,
    no_timestamps: bool,
    flood: u32,
    actor_steps: u32,
    traffic: Vec<String>,
    pci: Vec<String>,
    gbpa: String,
    properties: Vec<String>,
    build: Option<String>,
    dma_core: String,
    tx_ring: usize,
    rx_ring: usize,
    flood_rate: u64,
}

#[test]
fn run_and_replay_json_match_the_doc_and_the_text() {
    let dir = tempfile::tempdir().unwrap();
    for (kernel, seed, code) in [
        ("linux-6.1", "5", 1),
        // Seed 2: seed 3 has no stray DMA since the ENETC's MSIs go through the SMMU.
        ("linux-6.2", "2", 1),
        ("quiesce", "3", 0),
    ] {
        let args = ["run", "reboot", "--kernel", kernel, "--seed", seed];
        let v = json(dir.path(), &args, code);
        check_against_doc("smmu-lab/run/v2", &v);
        let run: Run = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(run.schema, "smmu-lab/run/v2");
        let text = output(dir.path(), &args, code);
        // Text and JSON describe the same run: log, verdict numbers, hash, token, replay.
        let (log, rest) = text.split_once("\n\nverdict").unwrap();
        assert_eq!(log.lines().collect::<Vec<_>>(), run.log);
        assert!(rest.starts_with(&verdict_text(&run.verdict)["verdict".len()..]));
        assert!(text.contains(&format!("\nhash: {}\n", run.hash)));
        assert!(text.ends_with(&format!("\nreplay: {}\n", run.replay)));
        assert_eq!(run.replay, format!("smmu-lab replay {}", run.token));
        assert_eq!(run.verdict.kernel, kernel);
        // An SMMUv2 reboot: no next kernel probed anything.
        assert_eq!(run.verdict.smmu_probe_failures, 0);
        assert_eq!(
            run.properties_checked,
            [
                "no-oops",
                "no-stray-dma",
                "no-foreign-dma",
                "no-lost-write",
                "no-dma-through-freed-domain",
                "no-use-after-free"
            ]
        );
        assert_eq!(run.violations.is_empty(), code == 0);
        if run.violations.is_empty() {
            assert!(text.contains("\nproperties: all held\n"));
        } else {
            assert!(text.contains(&format!(
                "\nproperties violated: {}\n",
                run.violations.join(", ")
            )));
        }
        // Replay prints the same object.
        let r = json(dir.path(), &["replay", &run.token], code);
        assert_eq!(r, v);
    }
}

#[test]
fn explore_json_matches_the_doc_the_text_and_the_replay_file() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["explore", "reboot", "--kernel", "all", "--runs", "50"];
    let v = json(dir.path(), &args, 1);
    check_against_doc("smmu-lab/explore/v2", &v);
    let text = output(dir.path(), &args, 1);
    let kernels = v["kernels"].as_array().unwrap();
    let names: Vec<&str> = kernels
        .iter()
        .map(|k| k["kernel"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["linux-6.1", "linux-6.2", "quiesce"]);
    for k in kernels {
        let name = k["kernel"].as_str().unwrap();
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("{name:<10} ")))
            .unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[1], k["runs"].to_string(), "{row}");
        assert_eq!(cols[2], k["failing_runs"].to_string(), "{row}");
        let f = &k["first_failure"];
        if f.is_null() {
            assert_eq!(cols[7], "-");
            continue;
        }
        assert_eq!(cols[7], f["token"].as_str().unwrap());
        let verdict: Verdict = serde_json::from_value(f["verdict"].clone()).unwrap();
        let section = text.split(&format!("{name} (pct)")).nth(1).unwrap();
        let expected: String = verdict_text(&verdict)
            .lines()
            .skip(1)
            .map(|l| format!("  {l}\n"))
            .collect();
        assert!(
            section.contains(&expected),
            "{name}: {expected}\nnot in\n{section}"
        );
        // The replay file: documented keys, the same token, and it replays to that verdict.
        let file_text =
            std::fs::read_to_string(dir.path().join(f["replay_file"].as_str().unwrap())).unwrap();
        let file_json: serde_json::Value = serde_json::from_str(&file_text).unwrap();
        check_against_doc("smmu-lab/replay/v1", &file_json);
        let file: ReplayFile = serde_json::from_value(file_json).unwrap();
        assert_eq!(file.token, f["token"].as_str().unwrap());
        assert_eq!(
            (file.dtb, file.cmdline.as_str(), file.no_timestamps),
            (None, "", false)
        );
        assert_eq!((file.flood, file.actor_steps), (10_000, 100_000));
        assert_eq!(
            (
                file.build.as_deref(),
                file.dma_core.as_str(),
                file.tx_ring,
                file.rx_ring,
                file.flood_rate
            ),
            (None, "linux", 2048, 2048, 2000)
        );
        assert!(file.traffic.is_empty());
        assert!(file.pci.is_empty());
        assert_eq!(file.gbpa, "bypass");
        assert_eq!(file.schema, "smmu-lab/replay/v1");
        assert!(!file.properties.is_empty());
        let replayed: Run = serde_json::from_value(json(
            dir.path(),
            &["replay", f["replay_file"].as_str().unwrap()],
            1,
        ))
        .unwrap();
        assert_eq!(verdict_text(&replayed.verdict), verdict_text(&verdict));
        assert_eq!(replayed.token, file.token);
    }
}
