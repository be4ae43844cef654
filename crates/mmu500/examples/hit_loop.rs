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

use mmu500::{Mmu500, Mmu500Config};
use pgtable::Prot;
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{self, cb, gr0, gr1};
use smmu_arch::{Access, Mmio};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;

const SID: u32 = 0x429;
const IOVA: u64 = 0x10_0000_0000;
const PAGES: u64 = 64;

/// The benchmark's model: LS1028A preset, stream 0x429 to bank 0, a stage-1 AArch64 context
/// over a 48-bit 4 KiB-granule table mapping `PAGES` pages at `IOVA`.
fn setup() -> (Arc<Mmu500>, pgtable::PageTable<pgtable::NoTlb>) {
    let mem =
        Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(0x8000_0000), 0x4000_0000)]).unwrap());
    let alloc =
        Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(0x8000_0000), 0x400_0000).unwrap());
    let s = Mmu500::new(Mmu500Config::mmu500_ls1028a(), mem).unwrap();
    let c = pgtable::PgTableRequest::new(pgtable::Stage::S1, pgtable::PGSIZES_4K, 48, 48);
    let mut pt = pgtable::PageTable::new(c, alloc, pgtable::NoTlb).unwrap();
    pt.map_pages(
        Iova::new(IOVA),
        PhysAddr::new(0x9000_0000),
        PageSize::SZ_4K,
        PageCount::new(PAGES),
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    let cfg = *pt.cfg();
    let b = (s.config().num_pages()) * s.config().page_size();
    let p = s.config().page_size();
    s.write32(p + gr1::cba2r(0), regs::cba2r::VA64);
    s.write32(p + gr1::cbar(0), 0x0001_f300);
    s.write32(b + cb::TCR2, cfg.smmu_tcr2());
    s.write32(b + cb::TCR, cfg.smmu_tcr());
    s.write64(b + cb::TTBR0, pt.smmu_ttbr0(0));
    s.write32(b + cb::S1_MAIR0, cfg.smmu_mair0());
    s.write32(b + cb::SCTLR, 0x1067);
    s.write32(gr0::s2cr(0), 0);
    s.write32(gr0::smr(0), 0xfc00_0029);
    s.write32(gr0::SCR0, 0x0020_1c36);
    (s, pt)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(row), Some(Ok(n))) = (args.get(1), args.get(2).map(|n| n.parse::<u64>())) else {
        eprintln!(
            "usage: hit_loop <port_tlb_hit|port_tlb_hit_64_pages|tlb_hit|tlb_hit_main> <count>"
        );
        return ExitCode::from(2);
    };
    let (s, _pt) = setup();
    let mut port = s.port(SID);
    match row.as_str() {
        "port_tlb_hit" => {
            for _ in 0..n {
                let _ = black_box(port.translate(black_box(IOVA + 0x123), Access::Read));
            }
        }
        "port_tlb_hit_64_pages" => {
            for k in 0..n {
                let _ = black_box(port.translate(IOVA + (k % PAGES) * 0x1000, Access::Read));
            }
        }
        "tlb_hit" => {
            for _ in 0..n {
                let _ = black_box(s.translate(SID, black_box(IOVA + 0x123), Access::Read));
            }
        }
        "tlb_hit_main" => {
            for k in 0..n {
                let _ = black_box(s.translate(SID, IOVA + (k % PAGES) * 0x1000, Access::Read));
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
