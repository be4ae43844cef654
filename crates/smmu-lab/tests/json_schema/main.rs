//! docs/json.md and the `--json` output cannot drift: every command's JSON has exactly the
//! documented top-level keys and every documented nested path, and the verdict fields
//! round-trip (serde) to the numbers the text output prints.

mod commands;
mod file_run;
mod machine;
mod schemas;

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
    msis_lost: Option<u64>,
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
    irq_threads: u64,
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
    // Both machines run on sim::exec: what the NIC saw and the CPUs are measured.
    let measured = v.execution == "exec-contexts";
    assert!(measured, "{}", v.execution);
    let nic_line = if measured {
        format!(
            "  NIC saw:              {} TX / {} RX DMA aborts{}, {} transactions held back (Bus Master Enable clear)\n",
            e.tx_dma_aborts,
            e.rx_dma_aborts,
            if e.tx_ring_stalled {
                sim::enetc::watchdog::stalled_ring_note()
            } else {
                ""
            },
            v.bme_suppressed,
        ) + &match v.msis_lost {
            Some(n) => format!(
                "  MSIs lost:            {n} (blocked, or not translated to the ITS: no interrupt)\n"
            ),
            None => String::new(),
        }
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
