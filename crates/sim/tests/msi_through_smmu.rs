//! The ENETC's MSIs through the SMMU in whole runs of the LS1028A machine (the SMMU-level
//! exact values are in `enetc_msi.rs`).

use explore::RunResult;
use sim::scenario::{Property, RebootConfig, RebootOutcome, RebootScenario, ReplayToken};
use std::sync::Arc;

fn run(token: &str) -> RebootOutcome {
    let t: ReplayToken = token.parse().expect("a token");
    let mut config = RebootConfig::new(t.kernel, sim::kbox_a230_ls());
    config.trigger = t.trigger;
    let scn = Arc::new(RebootScenario {
        config,
        properties: Property::DEFAULT.to_vec(),
        boot_cache: Default::default(),
    });
    match t.schedule.replay(scn, 2_000_000).expect("fits").outcome {
        RunResult::Completed(Ok(o)) => o,
        other => panic!("{other:?}"),
    }
}

const LOST: &str = "MSI write lost (blocked, or not translated to the ITS): no interrupt";

/// Timeline indices of the lost MSI and of vector 0's interrupts.
fn lost_then_irqs(o: &RebootOutcome) -> (Vec<usize>, Vec<usize>) {
    let at = |p: &dyn Fn(&str) -> bool| -> Vec<usize> {
        o.timeline
            .iter()
            .enumerate()
            .filter(|(_, e)| p(&e.text))
            .map(|(i, _)| i)
            .collect()
    };
    (
        at(&|t| t.starts_with(LOST)),
        at(&|t| t.contains("enetc_msix (vector 0)")),
    )
}

/// Under linux-6.1, PF0's poll re-enables its vector while the group's release tears its
/// stream map entry down: the MSI the function then sends is blocked by the SMMU and raises
/// nothing, so its NAPI is never scheduled again: no later `enetc_msix` on vector 0.
#[test]
fn under_61_a_lost_msi_schedules_no_napi() {
    let o = run("reboot:linux-6.1:random@16");
    assert_eq!(o.verdict.msis_lost, Some(1));
    let (lost, irqs) = lost_then_irqs(&o);
    assert_eq!(lost.len(), 1);
    assert!(!irqs.is_empty() && irqs.iter().all(|&i| i < lost[0]));
    // Nothing strayed: the write was blocked, not bypassed.
    assert!(!o
        .verdict
        .stray_write_addrs
        .contains(&smmu_addr::PhysAddr::new(0xffff_e040)));
}

/// Under linux-6.2 (sCR0.CLIENTPD at shutdown) the MSI bypasses translation: its IOVA
/// 0xffff_e040 is used as a physical address (LS1028A DRAM starts at 0x8000_0000, so it
/// lands in memory): stray DMA in the verdict, and no interrupt.
#[test]
fn under_62_the_msi_is_stray_dma_at_its_iova() {
    let o = run("reboot:linux-6.2:random@7");
    assert_eq!(o.verdict.msis_lost, Some(1));
    assert_eq!(
        o.verdict.stray_write_addrs,
        [0xfffe_007au64, 0xffff_e040].map(smmu_addr::PhysAddr::new)
    );
    let (lost, irqs) = lost_then_irqs(&o);
    assert_eq!(lost.len(), 1);
    assert!(irqs.iter().all(|&i| i < lost[0]));
}
