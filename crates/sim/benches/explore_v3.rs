//! Explorer speed on the SMMUv3 race (issue 16): QEMU's virt board (the repo's fixture) with a
//! PCI function at 00:01.0 without `.shutdown`, flooded under `reboot -f`. A bench binary
//! printing a table; thread CPU time (bench-clock), so other jobs on the shared cores do not
//! count.
//!
//! `cargo bench -p sim --bench explore_v3`

use explore::{ExploreOptions, Strategy};
use sim::scenario::{KernelBehaviour, Property, RebootConfig, RebootScenario};
use std::sync::Arc;

fn scenario(kernel: KernelBehaviour, gbpa_abort: bool) -> Arc<RebootScenario> {
    let mut b = sim::Board::from_dtb(&lab_fixtures::qemu_virt_smmuv3_dtb()).expect("fixture");
    b.add_pci_function(&"00:01.0=e1000e".parse().expect("bdf"))
        .expect("placed");
    let mut config = RebootConfig::new(kernel, b);
    config.traffic = vec!["0000:00:01.0".into()];
    config.gbpa_abort = gbpa_abort;
    Arc::new(RebootScenario {
        config,
        properties: Property::DEFAULT.to_vec(),
        boot_cache: Default::default(),
    })
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs = if quick { 20 } else { 2000 };
    println!(
        "schedules per second (CPU time), SMMUv3 reboot on QEMU virt, one core ({runs} runs each):"
    );
    for (kernel, gbpa_abort) in [
        (KernelBehaviour::Linux61, false),
        (KernelBehaviour::Linux62, false),
        (KernelBehaviour::Linux62, true),
        (KernelBehaviour::Quiesce, false),
    ] {
        for strategy in [Strategy::Random, Strategy::Pct { depth: 3 }] {
            let t = bench_clock::Timer::start();
            let rep = explore::explore(
                scenario(kernel, gbpa_abort),
                ExploreOptions {
                    strategy,
                    runs,
                    seed: 1,
                    jobs: 1,
                    stop_at_first: false,
                    max_steps: 2_000_000,
                },
                &|_, _| {},
            );
            let secs = t.elapsed().as_secs_f64();
            println!(
                "  {:<10} gbpa={:<6} {:<7} {:>8.0} schedules/s  ({} runs, {} failing: {:?})",
                kernel.name(),
                if gbpa_abort { "abort" } else { "bypass" },
                strategy.name(),
                rep.runs as f64 / secs,
                rep.runs,
                rep.failing_runs,
                rep.failures
            );
        }
    }
}
