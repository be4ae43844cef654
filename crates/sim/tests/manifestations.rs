//! The seed's two manifestations, from replay tokens shipped in docs/walkthrough.md, held
//! against the seed's own lines, and the policy and DMA-core axes kept apart.
//!
//! Tokens (pinned: they change only when the model does, and then with a stated reason):
//! * `reboot:linux-6.1:random@32` (build 6.1-rc5-1930): the MLD report from `mld_ifc_work` in
//!   `kworker/0:1` maps after the ENETC's group is gone: the first report, fault at 0x98.
//! * `reboot:linux-6.1:random@23 --build 6.1-rc5-a8`: the reboot task holds CPU 0, softirqs were
//!   deferred to `ksoftirqd/0`, which runs when the reboot task is scheduled out after
//!   `device_shutdown()`: TX completion unmaps after all 22 removal lines, fault at 0xa8.

use explore::{RunResult, Strategy};
use sim::builds::{KernelBuild, SEED_A8};
use sim::scenario::{
    DmaCore, KernelBehaviour, Property, RebootConfig, RebootOutcome, RebootScenario, ReplayToken,
    Trigger,
};
use std::sync::Arc;

const MAX_STEPS: usize = 2_000_000;

fn run(token: &str, build: Option<KernelBuild>) -> RebootOutcome {
    let t: ReplayToken = token.parse().expect("a token");
    let mut config = RebootConfig::new(t.kernel, sim::kbox_a230_ls());
    config.trigger = t.trigger;
    if let Some(b) = build {
        config.build = b;
    }
    let scn = Arc::new(RebootScenario {
        config,
        properties: Property::DEFAULT.to_vec(),
    });
    let rec = t.schedule.replay(scn, MAX_STEPS).expect("the token fits");
    match rec.outcome {
        RunResult::Completed(Ok(o)) => o,
        other => panic!("run did not complete: {other:?}"),
    }
}

/// Our log without timestamps.
fn lines(o: &RebootOutcome) -> Vec<String> {
    o.log
        .lines()
        .map(|l| match l.split_once("] ") {
            Some((ts, rest)) if ts.starts_with('[') => rest.to_string(),
            _ => l.to_string(),
        })
        .collect()
}

/// The seed's lines from the one starting with `first` to the one starting with `last`.
fn seed_block(first: &str, last: &str) -> Vec<String> {
    let text = lab_fixtures::shared::seed_patch().expect("checked by the caller");
    let all: Vec<&str> = text.lines().collect();
    let a = all
        .iter()
        .position(|l| l.starts_with(first))
        .expect("first");
    let b = a + all[a..]
        .iter()
        .position(|l| l.starts_with(last))
        .expect("last");
    all[a..=b].iter().map(|l| l.to_string()).collect()
}

#[test]
fn first_manifestation_map_path_in_the_mld_kworker() {
    let o = run("reboot:linux-6.1:random@32", None);
    let v = o.verdict.oops.clone().expect("an Oops");
    assert_eq!(
        (
            v.fault_addr,
            v.dma_call.as_str(),
            v.caller.as_str(),
            v.comm.as_str(),
            v.pid,
            v.cpu
        ),
        (
            0x98,
            "dma_map_page_attrs",
            "enetc_start_xmit",
            "kworker/0:1",
            23,
            0
        )
    );
    if lab_fixtures::shared::seed_patch().is_none() {
        return;
    }
    // The seed's first report, line by line and in order (it ends at the panic line).
    let seed = seed_block("Unable to handle kernel NULL", "Kernel panic - not syncing");
    let ours = lines(&o);
    let at = ours
        .iter()
        .position(|l| l.starts_with("Unable to handle"))
        .expect("printed");
    assert_eq!(&ours[at..at + seed.len()], &seed[..]);
}

#[test]
fn second_manifestation_unmap_path_in_ksoftirqd_after_every_removal() {
    let o = run("reboot:linux-6.1:random@23", Some(SEED_A8));
    let v = o.verdict.oops.clone().expect("an Oops");
    assert_eq!(
        (
            v.fault_addr,
            v.dma_call.as_str(),
            v.caller.as_str(),
            v.comm.as_str()
        ),
        (
            0xa8,
            "dma_unmap_page_attrs",
            "enetc_unmap_tx_buff.isra.0",
            "ksoftirqd/0"
        )
    );
    assert_eq!(o.verdict.trigger_cpu, 0);
    assert!(o.verdict.cpu0.ksoftirqd_wakeups > 0);
    if lab_fixtures::shared::seed_patch().is_none() {
        return;
    }
    let ours = lines(&o);
    let seed = seed_block("$ reboot -f", "---[ end Kernel panic");
    // All 22 removal lines, in the seed's order, before the Oops.
    let removals = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|l| l.contains("Removing from iommu group"))
            .cloned()
            .collect()
    };
    assert_eq!(removals(&ours), removals(&seed));
    assert_eq!(removals(&seed).len(), 22);
    // Four `Blocked unknown Stream ID` reports after the ENETC's removal, as in the seed (their
    // positions and syndromes differ: see docs/walkthrough.md).
    let usf = ours
        .iter()
        .filter(|l| l.contains("Blocked unknown Stream ID 0x429"))
        .count();
    assert_eq!(usf, 4);
    // The Oops follows the last removal line, and is the seed's report line by line (the
    // reporter trimmed the CPU and Hardware lines).
    let oops_seed = seed_block(
        "Unable to handle kernel NULL pointer dereference at virtual address 00000000000000a8",
        "---[ end Kernel panic",
    );
    let at = ours
        .iter()
        .position(|l| l.starts_with("Unable to handle"))
        .expect("printed");
    // Every removal line comes before the Oops (in this run a last USF report sits between the
    // final removal line and the Oops; in the seed there is none).
    assert_eq!(removals(&ours[..at]).len(), 22);
    let trimmed: Vec<String> = ours[at..]
        .iter()
        .filter(|l| !l.starts_with("CPU: ") && !l.starts_with("Hardware name:"))
        .cloned()
        .collect();
    assert_eq!(trimmed, oops_seed);
}

/// The KASAN-style use-after-free report, pinned line by line. In `reboot:linux-6.1:random@32`
/// (the first manifestation's token) the ENETC's group goes away, its default domain is freed
/// with it, and `ksoftirqd/0` replies to an echo request through the freed domain before
/// `mld_ifc_work` hits the NULL group: the report comes right after the group's removal line
/// and before the Oops, once (KASAN without `kasan_multi_shot`), labelled as simulated.
#[test]
fn the_use_after_free_report_is_printed_as_kasan_does() {
    let o = run("reboot:linux-6.1:random@32", None);
    assert_eq!(o.verdict.use_after_free, 1);
    let ours = lines(&o);
    let bar = "==================================================================";
    let at = ours.iter().position(|l| l == bar).expect("a KASAN report");
    assert_eq!(
        ours[at - 1],
        "fsl_enetc 0000:00:00.0: Removing from iommu group 4"
    );
    let expected = [
        bar,
        "BUG: KASAN: use-after-free in iommu_dma_map_page",
        "Read of size 8 of freed struct iommu_domain by task ksoftirqd/0/12",
        "",
        "CPU: 0 PID: 12 Comm: ksoftirqd/0 Not tainted 6.1.0-rc5-00088-gf3600ff8e322 #1930",
        "Hardware name: Kontron KBox A-230-LS (DT)",
        "Call trace:",
        "iommu_dma_map_page",
        "enetc_start_xmit+0x14c/0x10b0",
        "enetc_xmit+0x60/0xdc",
        "dev_hard_start_xmit+0xb8/0x210",
        "sch_direct_xmit+0x11c/0x420",
        "__dev_queue_xmit+0x354/0xb20",
        "ip_finish_output2",
        "ip_output",
        "ip_push_pending_frames",
        "icmp_reply",
        "icmp_echo",
        "icmp_rcv",
        "ip_local_deliver_finish",
        "__netif_receive_skb_one_core",
        "enetc_poll+0x170/0x910",
        "__napi_poll+0x40/0x1e0",
        "net_rx_action+0x164/0x37c",
        "__do_softirq+0x128/0x368",
        "run_ksoftirqd+0x68/0x90",
        "smpboot_thread_fn+0x14c/0x190",
        "",
        "The object was freed by iommu_group_release (smmu-lab: simulated KASAN report)",
        bar,
    ];
    assert_eq!(&ours[at..at + expected.len()], &expected[..]);
    // One report only, and it comes before the Oops.
    assert_eq!(
        ours.iter().filter(|l| l.starts_with("BUG: KASAN")).count(),
        1
    );
    let oops = ours
        .iter()
        .position(|l| l.starts_with("Unable to handle"))
        .expect("the Oops");
    assert!(at + expected.len() <= oops);
}

#[test]
fn a_62_run_never_prints_a_61_banner() {
    for seed in 0..10 {
        let o = run(&format!("reboot:linux-6.2:random@{seed}"), None);
        assert!(!o.log.contains("6.1.0-rc5"), "{}", o.log);
        assert_eq!(o.verdict.build, "6.2.0 #1");
    }
    // A 6.1 build cannot run the 6.2 policy.
    let mut c = RebootConfig::new(KernelBehaviour::Linux62, sim::kbox_a230_ls());
    c.build = sim::builds::SEED_1930;
    assert_eq!(
        c.check().unwrap_err().to_string(),
        "kernel build '6.1-rc5-1930' is a v6.1 build; the linux-6.2 shutdown policy runs on v6.2 builds (6.2)"
    );
}

/// Quiesce vs linux-6.2 with everything else equal (same DMA core, same build, same seed): the
/// verdicts differ only through the policy.
#[test]
fn the_policy_alone_makes_the_difference_on_one_core() {
    for core in [DmaCore::Linux, DmaCore::Safe] {
        for seed in 0..8 {
            let verdict = |kernel| {
                let mut c = RebootConfig::new(kernel, sim::kbox_a230_ls());
                c.dma_core = core;
                let scn = Arc::new(RebootScenario {
                    config: c,
                    properties: Property::DEFAULT.to_vec(),
                });
                match explore::run_one(scn, Strategy::Random, seed, MAX_STEPS).outcome {
                    RunResult::Completed(Ok(o)) => o.verdict,
                    other => panic!("{other:?}"),
                }
            };
            let (v62, vq) = (
                verdict(KernelBehaviour::Linux62),
                verdict(KernelBehaviour::Quiesce),
            );
            assert_eq!(
                (v62.build.as_str(), v62.dma_core.as_str()),
                (vq.build.as_str(), vq.dma_core.as_str())
            );
            // 6.2 lets the NIC's DMA through untranslated after CLIENTPD; quiesce blocks it.
            assert_eq!(vq.stray_dma_writes + vq.stray_dma_reads, 0, "{vq:?}");
            assert!(vq.oops.is_none() && v62.oops.is_none());
            if v62.stray_dma_writes + v62.stray_dma_reads > 0 {
                assert!(
                    vq.blocked_transactions > 0
                        || vq.nic_errors.rx_dma_aborts + vq.nic_errors.tx_dma_aborts > 0
                        || vq.dma_transactions < v62.dma_transactions
                );
            }
        }
    }
}

#[test]
fn unbind_runs_on_either_core_and_the_verdict_names_it() {
    let verdicts = |core| -> Vec<_> {
        (0..10)
            .map(|seed| {
                let mut c = RebootConfig::new(KernelBehaviour::Quiesce, sim::kbox_a230_ls());
                c.trigger = Trigger::UnbindSmmu;
                c.dma_core = core;
                let scn = Arc::new(RebootScenario {
                    config: c,
                    properties: Property::DEFAULT.to_vec(),
                });
                match explore::run_one(scn, Strategy::Random, seed, MAX_STEPS).outcome {
                    RunResult::Completed(Ok(o)) => o.verdict,
                    other => panic!("{other:?}"),
                }
            })
            .collect()
    };
    // The same policy on both cores: whatever differs comes from the core, and the verdict
    // names the core it ran on.
    for (core, name) in [(DmaCore::Linux, "linux"), (DmaCore::Safe, "safe")] {
        let v = verdicts(core);
        assert!(v
            .iter()
            .all(|v| v.dma_core == name && v.kernel == "quiesce"));
        if core == DmaCore::Safe {
            assert!(v.iter().all(|v| v.oops.is_none() && v.use_after_free == 0));
        }
    }
}

#[test]
fn bad_nic_parameters_are_named() {
    let mut c = RebootConfig::new(KernelBehaviour::Linux61, sim::kbox_a230_ls());
    c.nic.rx_ring_size = 100;
    assert_eq!(
        c.check().unwrap_err().to_string(),
        "rx ring size 100: must be a multiple of 8 between 8 and 4096 (ENETC's BD ring length is in units of 8 descriptors)"
    );
    c.nic.rx_ring_size = 64;
    c.nic.flood_rate = 0;
    assert!(c
        .check()
        .unwrap_err()
        .to_string()
        .starts_with("flood rate 0 packets/s"));
    assert!(KernelBuild::preset("6.1").is_err());
}
