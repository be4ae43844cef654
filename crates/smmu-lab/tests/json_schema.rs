//! docs/json.md and the `--json` output cannot drift: every command's JSON has exactly the
//! documented top-level keys and every documented nested path, and the verdict fields
//! round-trip (serde) to the numbers the text output prints.

use assert_cmd::Command;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/json.md"));

fn lab() -> Command {
    Command::cargo_bin("smmu-lab").expect("binary built by cargo")
}

fn output(dir: &std::path::Path, args: &[&str], code: i32) -> String {
    let out = lab()
        .current_dir(dir)
        .args(args)
        .assert()
        .code(code)
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).expect("UTF-8")
}

fn json(dir: &std::path::Path, args: &[&str], code: i32) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let text = output(dir, &a, code);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}\n{text}"))
}

/// Schema name → documented field paths, from the `## …: `smmu-lab/X/v1`` sections' tables.
fn documented() -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in DOC.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            current = h
                .split('`')
                .nth(1)
                .filter(|s| s.starts_with("smmu-lab/"))
                .map(str::to_string);
            if let Some(c) = &current {
                map.insert(c.clone(), Vec::new());
            }
        } else if let (Some(c), Some(row)) = (&current, line.strip_prefix("| `")) {
            let field = row.split('`').next().unwrap_or_default().to_string();
            map.get_mut(c).unwrap().push(field);
        }
    }
    map
}

/// Does `path` (`a.b`, `a[].b`) exist in `v`? Arrays must have at least one element that has
/// it; a null on the way (an absent optional object) counts as present only when no element
/// has a non-null value to look into.
fn has_path(v: &serde_json::Value, path: &str) -> bool {
    fn walk(v: &serde_json::Value, parts: &[&str]) -> bool {
        let Some((first, rest)) = parts.split_first() else {
            return true;
        };
        let (key, array) = match first.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (*first, false),
        };
        let Some(child) = v.get(key) else {
            return false;
        };
        if array {
            child
                .as_array()
                .is_some_and(|a| a.iter().any(|e| walk(e, rest)))
        } else if child.is_null() {
            true
        } else {
            walk(child, rest)
        }
    }
    walk(v, &path.split('.').collect::<Vec<_>>())
}

fn check_against_doc(schema: &str, v: &serde_json::Value) {
    let doc = documented();
    let fields = doc
        .get(schema)
        .unwrap_or_else(|| panic!("{schema} is not documented in docs/json.md"));
    assert_eq!(v["schema"], schema);
    let top_doc: BTreeSet<&str> = fields
        .iter()
        .map(String::as_str)
        .filter(|f| !f.contains('.'))
        .collect();
    let top_out: BTreeSet<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        top_out, top_doc,
        "{schema}: top-level keys differ from docs/json.md"
    );
    for f in fields.iter().filter(|f| f.contains('.')) {
        assert!(has_path(v, f), "{schema}: documented path {f} is missing");
    }
}

/// Verdict, as docs/json.md documents it (unknown fields are an error).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Verdict {
    kernel: String,
    execution: String,
    oops: Option<Oops>,
    stray_dma_writes: u64,
    stray_dma_reads: u64,
    stray_write_addrs: Vec<u64>,
    foreign_dma: u64,
    freed_domain_dma: u64,
    lost_writes: u64,
    blocked_transactions: u64,
    dma_transactions: u64,
    global_faults_logged: u64,
    context_faults_logged: u64,
    packets_delivered: u64,
    packets_dropped: u64,
    shutdown_time_ns: u64,
    completed: bool,
    use_after_free: u64,
    nic_errors: NicErrors,
    bme_suppressed: u64,
    stray_in_flight_at_bme_clear: u64,
    cpu0: Cpu0,
    trigger_cpu: u32,
    build: String,
    dma_core: String,
    smmu_probe_failures: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct NicErrors {
    tx_dma_aborts: u64,
    rx_dma_aborts: u64,
    tx_ring_stalled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Cpu0 {
    hardirqs: u64,
    softirq_on_irq_exit: u64,
    softirq_in_ksoftirqd: u64,
    ksoftirqd_wakeups: u64,
    time_squeeze: u64,
    works: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Oops {
    fault_addr: u64,
    dma_call: String,
    caller: String,
    comm: String,
    pid: u32,
    cpu: u32,
}

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

/// The verdict as the text output prints it (see common::verdict_text).
fn verdict_text(v: &Verdict) -> String {
    let oops = match &v.oops {
        Some(o) => format!(
            "yes: NULL dereference at {:#x} in iommu_get_dma_domain via {} from {} ({})",
            o.fault_addr, o.dma_call, o.caller, o.comm
        ),
        None => "no".into(),
    };
    let addrs: Vec<String> = v
        .stray_write_addrs
        .iter()
        .map(|a| format!("{a:#x}"))
        .collect();
    let at = if addrs.is_empty() {
        String::new()
    } else {
        format!(" at {}", addrs.join(", "))
    };
    let e = &v.nic_errors;
    let c = &v.cpu0;
    // The network-actor model (SMMUv3) measures neither what the NIC saw nor the CPUs.
    let measured = v.execution == "exec-contexts";
    assert!(
        measured || v.execution == "network-actor",
        "{}",
        v.execution
    );
    let nic_line = if measured {
        format!(
            "  NIC saw:              {} TX / {} RX DMA aborts{}, {} transactions held back (Bus Master Enable clear)\n",
            e.tx_dma_aborts,
            e.rx_dma_aborts,
            if e.tx_ring_stalled { ", TX ring stopped" } else { "" },
            v.bme_suppressed
        )
    } else {
        String::new()
    };
    let cpu_line = if measured {
        format!(
            "  CPU 0:                {} hardirqs, softirqs {} on irq exit / {} in ksoftirqd/0, {} work items; reboot task on CPU {}\n",
            c.hardirqs, c.softirq_on_irq_exit, c.softirq_in_ksoftirqd, c.works, v.trigger_cpu
        )
    } else {
        String::new()
    };
    format!(
        "verdict ({}, build {}, {} DMA core):
  oops:                 {oops}
  stray DMA:            {} writes{at}, {} reads (untranslated: IOVA used as physical address)
{}  foreign DMA:          {}
  freed-domain DMA:     {} (translated by a freed domain's tables or TLB entries)
  lost writes:          {}
  use-after-free:       {} (DMA-API calls that used a domain a concurrent release freed)
  blocked transactions: {}
  DMA transactions:     {}
{}{}  faults logged:        {} global, {} context
  packets:              {} delivered, {} dropped
  shutdown:             {} in {} µs of simulated time
",
        v.kernel,
        v.build,
        v.dma_core,
        v.stray_dma_writes,
        v.stray_dma_reads,
        if v.stray_in_flight_at_bme_clear > 0 {
            format!("                        {} of them issued before Bus Master Enable was cleared (in flight at the clear; none issued after)\n", v.stray_in_flight_at_bme_clear)
        } else {
            String::new()
        },
        v.foreign_dma,
        v.freed_domain_dma,
        v.lost_writes,
        v.use_after_free,
        v.blocked_transactions,
        v.dma_transactions,
        nic_line,
        cpu_line,
        v.global_faults_logged,
        v.context_faults_logged,
        v.packets_delivered,
        v.packets_dropped,
        if v.completed {
            "completed"
        } else {
            "did not complete"
        },
        v.shutdown_time_ns / 1000
    )
}

#[test]
fn the_doc_covers_every_schema() {
    let doc = documented();
    let names: Vec<&str> = doc.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "smmu-lab/bisect/v1",
            "smmu-lab/board/v1",
            "smmu-lab/check/v1",
            "smmu-lab/decode/v1",
            "smmu-lab/demo/v2",
            "smmu-lab/explore-file/v1",
            "smmu-lab/explore/v2",
            "smmu-lab/kernel/v1",
            "smmu-lab/kernels/v1",
            "smmu-lab/replay/v1",
            "smmu-lab/run-file/v1",
            "smmu-lab/run/v2",
            "smmu-lab/validate/v1",
        ]
    );
    assert!(doc.values().all(|f| f.len() >= 3));
}

#[test]
fn run_and_replay_json_match_the_doc_and_the_text() {
    let dir = tempfile::tempdir().unwrap();
    for (kernel, seed, code) in [
        ("linux-6.1", "3", 1),
        ("linux-6.2", "3", 1),
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
fn errors_print_no_json() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["run", "--kernel", "nope", "--json"][..],
        &["decode", "gfsr", "zz", "--json"],
        &["replay", "garbage", "--json"],
    ] {
        assert_eq!(output(dir.path(), args, 2), "");
    }
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
