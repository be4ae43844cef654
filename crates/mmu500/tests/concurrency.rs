//! Concurrent use: DMA on several threads while a driver thread reprograms and invalidates, with
//! an interrupt handler that re-enters the model. Nothing deadlocks, and every translated
//! transaction lands inside what was ever mapped.

mod common;

use common::*;
use mmu500::{Mmu500Config, Translation};
use pgtable::Prot;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{cb, gr0, tcr, tcr2};
use smmu_arch::{Access, Mmio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[test]
fn dma_threads_and_a_driver_thread_make_progress_together() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let mut pt = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
    pt.map_pages(
        Iova::new(0x1000_0000),
        PhysAddr::new(0x9000_0000),
        PageSize::SZ_4K,
        PageCount::new(64),
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    program_from(&r.smmu, 0, &pt, 1);
    map_stream(&r.smmu, 0, 0x29, 0x7c00, 0);
    enable(&r.smmu);
    let irqs = Arc::new(AtomicU64::new(0));
    let (weak, n) = (Arc::downgrade(&r.smmu), irqs.clone());
    r.smmu.set_irq_handler(Arc::new(move |_| {
        if let Some(s) = weak.upgrade() {
            n.fetch_add(1, Ordering::Relaxed);
            let g = s.read32(gr0::SGFSR);
            s.write32(gr0::SGFSR, g);
            let f = s.read32(cbo(&s, 0) + cb::FSR);
            s.write32(cbo(&s, 0) + cb::FSR, f);
        }
    }));
    let mut workers = Vec::new();
    for t in 0..3u64 {
        let s = r.smmu.clone();
        workers.push(std::thread::spawn(move || {
            let mut ok = 0;
            for i in 0..2000u64 {
                let iova = 0x1000_0000 + ((i * 7 + t) % 80) * 0x1000;
                let sid = if i % 13 == 0 { 0x55 } else { 0x429 };
                if let Ok(Translation::Translated { pa, .. }) =
                    s.translate(sid, Iova::new(iova), Access::Write)
                {
                    assert!((0x9000_0000..0x9004_0000).contains(&pa.as_u64()), "{pa:#x}");
                    ok += 1;
                }
            }
            ok
        }));
    }
    let s = r.smmu.clone();
    let b = cbo(&s, 0);
    for i in 0..500u64 {
        s.write64(
            b + cb::S1_TLBIVA,
            tlbiva(0x1000_0000 + (i % 64) * 0x1000, 1),
        );
        s.write32(b + cb::TLBSYNC, 0xffff_ffff);
        while s.read32(b + cb::TLBSTATUS) != 0 {}
        s.write32(gr0::TLBIALLNSNH, 0xffff_ffff);
    }
    let ok: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(ok > 0);
    assert!(irqs.load(Ordering::Relaxed) > 0);
}

#[test]
fn ttbr1_region_with_sign_extension() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s = &r.smmu;
    let mut pt = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
    // Bit 47 set: with TCR2.SEP = 5 (bit 47) it sign-extends into the TTBR1 half.
    pt.map_pages(
        Iova::new(0x8000_0000_1000),
        PhysAddr::new(0x9000_0000),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    program_from(s, 0, &pt, 3);
    let b = cbo(s, 0);
    // T1SZ = 16, TG1 = 4K, EPD0; TTBR1 holds the tables; ASID from TTBR1 (A1).
    s.write32(
        b + cb::TCR,
        (16 << tcr::T1SZ_SHIFT) | (tcr::TG1_4K << tcr::TG1_SHIFT) | tcr::EPD0 | tcr::A1,
    );
    s.write32(b + cb::TCR2, 5 | tcr2::AS | (5 << tcr2::SEP_SHIFT));
    s.write64(b + cb::TTBR1, pt.ttbr().as_u64() | (3 << 48));
    s.write64(b + cb::TTBR0, 0);
    map_stream(s, 0, 0x29, 0, 0);
    enable(s);
    assert_eq!(
        s.translate(0x29, Iova::new(0x8000_0000_1234), Access::Read)
            .unwrap()
            .pa()
            .as_u64(),
        0x9000_0234
    );
    // The TTBR0 half is disabled by EPD0.
    assert!(s.translate(0x29, Iova::new(0x1234), Access::Read).is_err());
    s.write32(b + cb::FSR, 0xc000_01fe);
    // With SEP = UPSTREAM the same address stays in the TTBR0 half.
    s.write32(b + cb::TCR2, 5 | tcr2::AS | (7 << tcr2::SEP_SHIFT));
    assert!(s
        .translate(0x29, Iova::new(0x8000_0000_1234), Access::Read)
        .is_err());
}
