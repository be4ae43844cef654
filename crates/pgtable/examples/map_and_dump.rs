//! Map a DMA buffer into a stage-1 4K table, print the tables with `dump()`, and the register
//! values a driver programs into the context bank (TCR, TCR2, TTBR0, MAIR).
//!
//! `cargo run -p pgtable --example map_and_dump`

use pgtable::{NoTlb, PageTable, PgTableRequest, Prot, Stage, PGSIZES_4K};
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 64 MiB of DRAM at the LS1028A's base; the tables come from its first 16 MiB.
    const RAM: u64 = 0x8000_0000;
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 64 << 20)])?);
    let alloc = Arc::new(FrameAllocator::new(mem, PhysAddr::new(RAM), 16 << 20)?);
    let mut pt = PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 48),
        alloc,
        NoTlb,
    )?;

    // A 3-page receive buffer at the top of a 32-bit IOVA space (where the DMA API's allocator
    // starts), and one read-only page for a transmit frame.
    let rx_iova = 0xffff_d000;
    let rx_pa = RAM + (32 << 20);
    let mapped = pt.map_pages(
        Iova::new(rx_iova),
        PhysAddr::new(rx_pa),
        PageSize::SZ_4K,
        PageCount::new(3),
        Prot::READ | Prot::WRITE | Prot::CACHE,
    )?;
    println!("mapped {mapped:#x} bytes at IOVA {rx_iova:#x} -> PA {rx_pa:#x}");
    let tx_iova = 0xffff_c000;
    let tx_pa = RAM + (40 << 20);
    pt.map_pages(
        Iova::new(tx_iova),
        PhysAddr::new(tx_pa),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ | Prot::CACHE,
    )?;
    println!(
        "mapped {:#x} bytes at IOVA {tx_iova:#x} -> PA {tx_pa:#x} (read-only)",
        PageSize::SZ_4K
    );
    println!(
        "iova_to_phys({:#x}) = {:#x}\n",
        rx_iova + 0x1234,
        pt.iova_to_phys(Iova::new(rx_iova + 0x1234))
            .map_or(0, PhysAddr::as_u64)
    );

    println!("{}", pt.dump());

    let cfg = pt.cfg();
    println!("context bank registers (stage 1, 4K granule, 48-bit IAS/OAS):");
    println!("  TCR   = {:#010x}", cfg.smmu_tcr());
    println!("  TCR2  = {:#010x}", cfg.smmu_tcr2());
    println!("  TTBR0 = {:#018x}", pt.ttbr());
    println!("  MAIR0 = {:#010x}", cfg.smmu_mair0());
    println!("  MAIR1 = {:#010x}", cfg.smmu_mair1());
    Ok(())
}
