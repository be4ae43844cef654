//! The translation hit paths of `benches/translate.rs`, run a fixed number of times, for
//! instruction counts that do not depend on machine load:
//!
//! ```text
//! cargo build --release -p mmu500 --example hit_loop
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/hit_loop port_tlb_hit 1000000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/hit_loop port_tlb_hit 2000000
//! ```
//!
//! The difference of the two totals ("Collected"), divided by the difference of the counts, is
//! the instructions one transaction costs; set-up cancels out. Rows: `port_tlb_hit`,
//! `port_tlb_hit_64_pages`, `tlb_hit`, `tlb_hit_main` (the same set-up and access patterns as
//! the benchmark rows of those names).

use smmu_addr::Iova;
use smmu_arch::Access;
use std::hint::black_box;
use std::process::ExitCode;

// The benchmark's own set-up (`benches/model/mod.rs`), so that both measure one model.
#[path = "../benches/model/mod.rs"]
mod model;
use model::{IOVA, SID};

/// Pages mapped: the hit rows touch at most 64.
const PAGES: u64 = 64;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(row), Some(Ok(n))) = (args.get(1), args.get(2).map(|n| n.parse::<u64>())) else {
        eprintln!(
            "usage: hit_loop <port_tlb_hit|port_tlb_hit_64_pages|tlb_hit|tlb_hit_main> <count>"
        );
        return ExitCode::from(2);
    };
    let (s, _pt) = model::setup(PAGES);
    let mut port = s.port(SID);
    match row.as_str() {
        "port_tlb_hit" => {
            for _ in 0..n {
                let _ = black_box(port.translate(Iova::new(black_box(IOVA + 0x123)), Access::Read));
            }
        }
        "port_tlb_hit_64_pages" => {
            for k in 0..n {
                let _ =
                    black_box(port.translate(Iova::new(IOVA + (k % PAGES) * 0x1000), Access::Read));
            }
        }
        "tlb_hit" => {
            for _ in 0..n {
                let _ =
                    black_box(s.translate(SID, Iova::new(black_box(IOVA + 0x123)), Access::Read));
            }
        }
        "tlb_hit_main" => {
            for k in 0..n {
                let _ = black_box(s.translate(
                    SID,
                    Iova::new(IOVA + (k % PAGES) * 0x1000),
                    Access::Read,
                ));
            }
        }
        other => {
            eprintln!("hit_loop: unknown row {other:?}");
            return ExitCode::from(2);
        }
    }
    println!("{:?}", s.counters());
    ExitCode::SUCCESS
}
