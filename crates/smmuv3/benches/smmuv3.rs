//! Translation through the SMMUv3 model (QEMU-virt preset, stage 1, 4K granule, 48-bit VA so a
//! walk reads 4 descriptors).
//!
//! * `tlb_hit`: one IOVA over and over (configuration cache and TLB hit).
//! * `tlb_hit_64_pages`: 64 pages in turn, all resident in the 256-entry TLB.
//! * `tlb_miss_walk`: 8192 pages in turn; with first-in first-out replacement of 256 entries
//!   every access misses and walks (checked before measuring).
//! * `dma_write_1500`: a 1500-byte packet through the model into memory.
//!
//! Clock: the benchmark thread's CPU time (`bench_clock`).

use criterion::{criterion_group, criterion_main, Criterion};
use pgtable::{NoTlb, PageTable, Prot, Stage};
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmuv3::{Access, Mmio, SmmuV3, SmmuV3Config};
use smmuv3_arch::cmd::{Command, SyncCs, CFGI_ALL};
use smmuv3_arch::regs::*;
use smmuv3_arch::{cd, ste};
use std::hint::black_box;
use std::sync::Arc;

const RAM: u64 = 0x4000_0000;
const SID: u32 = 8;
const IOVA: u64 = 0x10_0000_0000;
const PAGES: u64 = 8192;

fn setup() -> Arc<SmmuV3> {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), 256 << 20)]).unwrap());
    let frames = Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(RAM), 64 << 20).unwrap());
    let s = SmmuV3::new(SmmuV3Config::qemu_virt(), mem.clone()).unwrap();
    let mut pt = PageTable::new(
        pgtable::PgTableRequest::new(Stage::S1, 0x4020_1000, 48, 44),
        frames.clone(),
        NoTlb,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(IOVA),
        PhysAddr::new(RAM + (128 << 20)),
        PageSize::SZ_4K,
        PageCount::new(PAGES),
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    let strtab = frames.alloc(64 << 6).unwrap().as_u64();
    let cmdq = frames.alloc(4096).unwrap().as_u64();
    let evtq = frames.alloc(4096).unwrap().as_u64();
    let cdp = frames.alloc(4096).unwrap().as_u64();
    let d0 = 16
        | cd::EPD1
        | cd::V
        | (4 << cd::IPS_SHIFT)
        | cd::AA64
        | cd::R
        | cd::A
        | cd::ASET
        | (1 << cd::ASID_SHIFT);
    mem.write_u64(PhysAddr::new(cdp), d0).unwrap();
    mem.write_u64(PhysAddr::new(cdp + 8), pt.ttbr().as_u64())
        .unwrap();
    let ste_addr = strtab + u64::from(SID) * 64;
    mem.write_u64(
        PhysAddr::new(ste_addr),
        ste::V | (ste::CFG_S1_TRANS << ste::CFG_SHIFT) | cdp,
    )
    .unwrap();
    s.write64(STRTAB_BASE, strtab);
    s.write32(STRTAB_BASE_CFG, 6);
    s.write64(CMDQ_BASE, cmdq | 8);
    s.write64(EVTQ_BASE, evtq | 7);
    s.write32(CR0, cr0::CMDQEN | cr0::EVTQEN | cr0::SMMUEN);
    let sync = Command::Sync {
        cs: SyncCs::Sev,
        msh: 3,
        msiattr: 0xf,
        msidata: 0,
        msiaddr: 0,
    };
    for (i, c) in [CFGI_ALL, sync].iter().enumerate() {
        let w = c.encode();
        mem.write_u64(PhysAddr::new(cmdq + 16 * i as u64), w[0])
            .unwrap();
        mem.write_u64(PhysAddr::new(cmdq + 16 * i as u64 + 8), w[1])
            .unwrap();
    }
    s.write32(CMDQ_PROD, 2);
    std::mem::forget(pt);
    s
}

fn benches(c: &mut Criterion) {
    let s = setup();
    assert!(s
        .translate(SID, Iova::new(IOVA), Access::Read)
        .pa()
        .is_some());
    c.bench_function("tlb_hit", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                let _ =
                    black_box(s.translate(SID, Iova::new(black_box(IOVA + 0x123)), Access::Read));
            })
        })
    });
    let mut k = 0u64;
    c.bench_function("tlb_hit_64_pages", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                k = (k + 1) % 64;
                let _ = black_box(s.translate(SID, Iova::new(IOVA + k * 0x1000), Access::Read));
            })
        })
    });
    // Every access of the page-by-page pattern must miss.
    for i in 0..PAGES {
        s.translate(SID, Iova::new(IOVA + i * 0x1000), Access::Read);
    }
    let before = s.counters();
    for i in 0..PAGES {
        s.translate(SID, Iova::new(IOVA + i * 0x1000), Access::Read);
    }
    assert_eq!(s.counters().tlb_hits, before.tlb_hits, "pattern must miss");
    let mut j = 0u64;
    c.bench_function("tlb_miss_walk", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                j = (j + 1) % PAGES;
                let _ = black_box(s.translate(SID, Iova::new(IOVA + j * 0x1000), Access::Read));
            })
        })
    });
    let packet = vec![0x5au8; 1500];
    c.bench_function("dma_write_1500", |b| {
        b.iter_custom(|n| {
            bench_clock::time_iters(n, || {
                let _ = black_box(s.dma_write(SID, Iova::new(IOVA + 0x2100), black_box(&packet)));
            })
        })
    });
}

criterion_group!(group, benches);
criterion_main!(group);
