//! Differential check of two independent implementations: tables built by `pgtable` (Linux
//! io-pgtable-arm semantics) are walked by the model's own VMSAv8-64 walker, and every answer
//! must agree with `pgtable::iova_to_phys` / `leaf`, for every granule, IAS and stage (through a
//! whole transaction, and for stage 1 also through the detached walker alone).

mod common;

use common::*;
use mmu500::{ContextFaultKind, DmaFault, Mmu500Config, Translation};
use pgtable::{Prot, Stage};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::cb;
use smmu_arch::{Access, Mmio};

/// SplitMix64: a seeded generator, so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn check(stage: Stage, pgsizes: u64, ias: u32, seed: u64) -> (usize, usize) {
    // Every granule, so the walker is checked for all three (the LS1028A's MMU-500 itself
    // has no 16K granule).
    let r = rig(Mmu500Config {
        granule_16k: true,
        ..Mmu500Config::mmu500_ls1028a()
    });
    let oas = 48;
    let mut pt = match stage {
        Stage::S1 => s1_table(&r, pgsizes, ias, oas),
        Stage::S2 => s2_table(&r, pgsizes, ias, oas),
    };
    let sizes: Vec<u64> = (0..64)
        .map(|b| 1u64 << b)
        .filter(|s| pt.cfg().pgsize_bitmap & s != 0)
        .collect();
    let mut rng = Rng(seed);
    let mut mapped = Vec::new();
    for _ in 0..48 {
        // Mostly pages, sometimes blocks.
        let size = if rng.below(4) == 0 {
            sizes[1 + rng.below(sizes.len() as u64 - 1) as usize]
        } else {
            sizes[0]
        };
        let space = 1u64 << ias;
        if size >= space {
            continue;
        }
        // Cluster half the IOVAs so tables are shared and neighbours are unmapped.
        let iova = if rng.below(2) == 0 {
            ((rng.below(space.min(1 << 31)) + (0x4000_0000 % space)) % space) & !(size - 1)
        } else {
            rng.below(space) & !(size - 1)
        };
        let pa = ((1u64 << 28) + rng.below(1u64 << 40)) & !(size - 1);
        let pa = if pa == 0 { size.max(1 << 28) } else { pa };
        let prot = Prot::READ | Prot::WRITE;
        if pt
            .map_pages(
                Iova::new(iova),
                PhysAddr::new(pa),
                PageSize::new(size).unwrap(),
                PageCount::ONE,
                prot,
            )
            .is_ok()
        {
            mapped.push((iova, size));
        }
    }
    let n = 0u32;
    program_from(&r.smmu, n, &pt, 7);
    map_stream(&r.smmu, 0, 0x11, 0, n);
    enable(&r.smmu);
    let b = cbo(&r.smmu, n);
    // The walker a stage-1 miss runs, on its own (only stage-1 contexts have one): a
    // benchmark-only entry point, checked here when it is built (feature `bench-internals`).
    #[cfg(feature = "bench-internals")]
    let walker = r.smmu.detached_walk(n as usize);
    #[cfg(feature = "bench-internals")]
    assert_eq!(walker.is_some(), stage == Stage::S1);
    let mut probes = Vec::new();
    for &(iova, size) in &mapped {
        probes.push(iova);
        probes.push(iova + size - 8);
        probes.push(iova + (rng.below(size) & !7));
        probes.push(iova.wrapping_sub(8) & ((1u64 << ias) - 1));
        probes.push((iova + size) & ((1u64 << ias) - 1));
    }
    for _ in 0..200 {
        probes.push(rng.below(1u64 << ias) & !7);
    }
    // Beyond the input range.
    probes.push(1u64 << ias);
    probes.push(!0xfff);
    let (mut hits, mut holes) = (0, 0);
    for iova in probes {
        let want = pt.iova_to_phys(Iova::new(iova)).map_or(0, PhysAddr::as_u64);
        #[cfg(feature = "bench-internals")]
        if let Some(w) = &walker {
            assert_eq!(
                w.walk(iova).unwrap_or(0),
                want,
                "detached walk of {iova:#x}"
            );
        }
        let got = r.smmu.translate(0x11, Iova::new(iova), Access::Read);
        match got {
            Ok(Translation::Translated { pa, leaf_size, .. }) => {
                assert_eq!(
                    pa.as_u64(),
                    want,
                    "{stage:?} {pgsizes:#x} ias {ias}: iova {iova:#x}"
                );
                assert_eq!(
                    Some(leaf_size.bytes()),
                    pt.leaf(Iova::new(iova)).map(|l| l.size.bytes()),
                    "leaf size at {iova:#x}"
                );
                hits += 1;
            }
            Err(DmaFault::Context {
                kind: ContextFaultKind::Translation,
                ..
            }) => {
                assert_eq!(
                    want, 0,
                    "{stage:?} {pgsizes:#x} ias {ias}: model faulted at mapped {iova:#x}"
                );
                r.smmu.write32(b + cb::FSR, 0xc000_01fe);
                holes += 1;
            }
            other => panic!("{stage:?} {pgsizes:#x} ias {ias}: iova {iova:#x}: {other:?}"),
        }
    }
    (hits, holes)
}

#[test]
fn model_walker_agrees_with_pgtable_for_every_granule_ias_and_stage() {
    let mut total = (0, 0);
    for stage in [Stage::S1, Stage::S2] {
        for pgsizes in [
            pgtable::PGSIZES_4K,
            pgtable::PGSIZES_16K,
            pgtable::PGSIZES_64K,
        ] {
            for ias in [32, 36, 40, 42, 44, 48] {
                for seed in 0..2u64 {
                    let (h, f) = check(stage, pgsizes, ias, seed * 1000 + u64::from(ias));
                    total.0 += h;
                    total.1 += f;
                }
            }
        }
    }
    // Both outcomes were exercised plenty.
    assert!(total.0 > 5000 && total.1 > 5000, "{total:?}");
}
