//! kexec after smmu-lab's quiesce shutdown, with a master whose driver has no `.shutdown`
//! still doing DMA: the next kernel's arm-smmu probe opens a bypass window (its RMR step sets
//! sCR0.CLIENTPD on top of the quiesced configuration until its reset's final sCR0 write), and
//! the DMA that lands in it shows in the verdict as stray writes at IOVAs used as physical
//! addresses. Also: the freed-domain property stays quiet on every kernel.

use explore::{RunResult, Strategy};
use sim::scenario::{
    KernelBehaviour, Lane, Property, RebootConfig, RebootOutcome, RebootScenario, Trigger,
};
use std::sync::Arc;

const MAX_STEPS: usize = 2_000_000;

fn kexec_with_sata(kernel: KernelBehaviour) -> RebootConfig {
    let mut c = RebootConfig::new(kernel, sim::kbox_a230_ls());
    c.trigger = Trigger::Kexec;
    // ahci-qoriq has no .shutdown: the SATA controller keeps its last job going.
    c.traffic = vec!["3200000.sata".into()];
    c.timestamps = false;
    c
}

fn run(config: RebootConfig, seed: u64) -> RebootOutcome {
    let scn = Arc::new(RebootScenario {
        config,
        properties: Property::DEFAULT.to_vec(),
        boot_cache: Default::default(),
    });
    match explore::run_one(scn, Strategy::Random, seed, MAX_STEPS).outcome {
        RunResult::Completed(Ok(o)) => o,
        other => panic!("run did not complete: {other:?}"),
    }
}

const RMR_MARK: &str = "next kernel: RMR step sets sCR0.CLIENTPD";
const RESET_MARK: &str = "next kernel: SMMU reset";

/// Timeline texts of the run in order.
fn timeline(o: &RebootOutcome) -> Vec<(Lane, &str)> {
    o.timeline
        .iter()
        .map(|e| (e.lane, e.text.as_str()))
        .collect()
}

#[test]
fn quiesce_then_kexec_opens_a_bypass_window_in_the_next_kernels_probe() {
    let mut stray_runs = 0;
    for seed in 0..12 {
        let o = run(kexec_with_sata(KernelBehaviour::Quiesce), seed);
        let v = &o.verdict;
        assert!(v.completed && v.oops.is_none(), "seed {seed}: {v:?}");
        assert_eq!(v.freed_domain_dma, 0, "seed {seed}");
        // The next kernel probed: its notices follow kexec's, with the RMR step's line.
        let log = &o.log;
        let kexec_at = log.find("kexec_core: Starting new kernel").unwrap();
        let rmr_at = log.rfind("\tpreserved 0 boot mappings").unwrap();
        assert!(kexec_at < rmr_at, "seed {seed}");
        assert!(
            log[kexec_at..].contains("arm-smmu 5000000.iommu: probing hardware configuration...")
        );
        // Quiesce kept translation on and every stream faulting, so nothing bypassed before
        // the next kernel's RMR step set CLIENTPD: every stray transaction is in its window.
        let t = timeline(&o);
        let mark = t
            .iter()
            .position(|(_, e)| e.starts_with(RMR_MARK))
            .expect("the RMR step is on the timeline");
        assert!(t.iter().any(|(_, e)| e.starts_with(RESET_MARK)));
        assert!(
            !t[..mark]
                .iter()
                .any(|(_, e)| e.contains("STRAY") || e.contains("stray read")),
            "seed {seed}: stray DMA before the window: {t:#?}"
        );
        let in_window = t[mark..]
            .iter()
            .filter(|(l, e)| *l == Lane::NicDma && e.contains("STRAY write"))
            .count() as u64;
        assert_eq!(in_window > 0, v.stray_dma_writes > 0, "seed {seed}");
        if v.stray_dma_writes + v.stray_dma_reads > 0 {
            stray_runs += 1;
            // IOVAs used as physical addresses: the SATA job's DMA address, untranslated.
            assert!(
                v.stray_write_addrs.iter().all(|a| a.as_u64() & 0xfff == 0),
                "seed {seed}: {v:?}"
            );
        }
    }
    assert!(stray_runs > 0, "some interleaving puts DMA in the window");
}

#[test]
fn the_freed_domain_property_holds_on_every_kernel_and_trigger() {
    for kernel in KernelBehaviour::ALL {
        for trigger in Trigger::ALL {
            let mut c = kexec_with_sata(kernel);
            c.trigger = trigger;
            for seed in 0..3 {
                let o = run(c.clone(), seed);
                assert_eq!(
                    o.verdict.freed_domain_dma, 0,
                    "{kernel} {trigger:?} seed {seed}"
                );
                assert!(!Property::NoDmaThroughFreedDomain.violated_by(&o.verdict));
            }
        }
    }
    assert!(Property::DEFAULT.contains(&Property::NoDmaThroughFreedDomain));
    assert_eq!(
        Property::from_name("no-dma-through-freed-domain"),
        Some(Property::NoDmaThroughFreedDomain)
    );
}
