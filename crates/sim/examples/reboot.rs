//! The seed's `reboot -f` under ping flood on the LS1028A (Kontron KBox A-230-LS), run once
//! under each kernel behaviour with the same interleaving, and the three verdicts.
//!
//! `cargo run --release -p sim --example reboot [SEED]`

use explore::{RunResult, Strategy};
use sim::scenario::{KernelBehaviour, Property, RebootConfig, RebootScenario};
use std::sync::Arc;

fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let board = sim::kbox_a230_ls();
    println!(
        "reboot -f during a ping flood on {}, seed {seed}\n",
        board.hardware_name()
    );
    for kernel in KernelBehaviour::ALL {
        let scenario = Arc::new(RebootScenario {
            config: RebootConfig::new(kernel, board.clone()),
            properties: Property::DEFAULT.to_vec(),
            boot_cache: Default::default(),
        });
        // One run, its interleaving chosen by a seeded random scheduler: the same seed gives the
        // same run, byte for byte.
        let rec = explore::run_one(scenario, Strategy::Random, seed, 2_000_000);
        match rec.outcome {
            RunResult::Completed(Ok(o)) => {
                let v = &o.verdict;
                println!(
                    "{kernel}: {} | oops: {} | stray DMA {}w/{}r | blocked {} | packets {}/{} | {}",
                    if rec.violations.is_empty() {
                        "all properties held".to_string()
                    } else {
                        format!("violated {}", rec.violations.join(", "))
                    },
                    match &v.oops {
                        Some(oops) => format!("{} from {}", oops.dma_call, oops.caller),
                        None => "none".into(),
                    },
                    v.stray_dma_writes,
                    v.stray_dma_reads,
                    v.blocked_transactions,
                    v.packets_delivered,
                    v.packets_dropped,
                    if v.completed {
                        format!("restarted after {} µs", v.shutdown_time_ns / 1000)
                    } else {
                        "kernel panic".into()
                    }
                );
            }
            RunResult::Completed(Err(e)) => println!("{kernel}: the machine did not boot: {e}"),
            RunResult::Failed(p) => println!("{kernel}: simulator panic: {p}"),
        }
    }
}
