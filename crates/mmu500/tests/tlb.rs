//! TLB behaviour a driver can observe: stale entries survive until the invalidation that covers
//! them, and only that one.

mod common;

use common::*;
use mmu500::{Mmu500Config, Translation};
use pgtable::Prot;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{cb, gr0};
use smmu_arch::{Access, Mmio};

const SID: u32 = 0x29;
const IOVA: u64 = 0x1000_0000;
const OLD: u64 = 0x9000_0000;
const NEW: u64 = 0x9100_0000;

fn s1_rig(asid: u16) -> (Rig, pgtable::PageTable<pgtable::NoTlb>) {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let mut pt = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
    pt.map_pages(
        Iova::new(IOVA),
        PhysAddr::new(OLD),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(0x4000_0000),
        PhysAddr::new(0xa000_0000),
        PageSize::SZ_2M,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    program_from(&r.smmu, 0, &pt, asid);
    map_stream(&r.smmu, 0, SID, 0, 0);
    enable(&r.smmu);
    (r, pt)
}

fn pa(r: &Rig, iova: u64) -> (u64, bool) {
    match r
        .smmu
        .translate(SID, Iova::new(iova), Access::Read)
        .unwrap()
    {
        Translation::Translated { pa, tlb_hit, .. } => (pa.as_u64(), tlb_hit),
        t => panic!("not translated: {t:?}"),
    }
}

#[test]
fn stale_entry_survives_until_tlbiva_for_its_asid() {
    let (r, pt) = s1_rig(3);
    let b = cbo(&r.smmu, 0);
    assert_eq!(pa(&r, IOVA + 8), (OLD + 8, false));
    assert_eq!(pa(&r, IOVA + 8), (OLD + 8, true));
    retarget(&r, &pt, IOVA, NEW);
    assert_eq!(pa(&r, IOVA + 8), (OLD + 8, true), "stale until invalidated");
    // Wrong ASID, wrong page, a global sync: none of them help.
    r.smmu.write64(b + cb::S1_TLBIVA, tlbiva(IOVA, 4));
    r.smmu.write64(b + cb::S1_TLBIVA, tlbiva(IOVA + 0x1000, 3));
    r.smmu.write32(gr0::STLBGSYNC, 0xffff_ffff);
    assert_eq!(pa(&r, IOVA + 8), (OLD + 8, true));
    r.smmu.write64(b + cb::S1_TLBIVA, tlbiva(IOVA, 3));
    r.smmu.write32(b + cb::TLBSYNC, 0xffff_ffff);
    assert_eq!(r.smmu.read32(b + cb::TLBSTATUS), 0);
    assert_eq!(pa(&r, IOVA + 8), (NEW + 8, false));
}

#[test]
fn tlbival_tlbiasid_and_tlbiallnsnh_also_invalidate() {
    let (r, pt) = s1_rig(0);
    let b = cbo(&r.smmu, 0);
    let ops: [(&str, &dyn Fn()); 4] = [
        ("TLBIVAL", &|| {
            r.smmu.write64(b + cb::S1_TLBIVAL, IOVA >> 12)
        }),
        ("TLBIASID", &|| r.smmu.write32(b + cb::S1_TLBIASID, 0)),
        ("TLBIALLNSNH", &|| {
            r.smmu.write32(gr0::TLBIALLNSNH, 0xffff_ffff)
        }),
        // Stage-1 banks carry CBAR.VMID 0 as Linux programs them.
        ("TLBIVMID", &|| r.smmu.write32(gr0::TLBIVMID, 0)),
    ];
    let mut target = OLD;
    for (name, op) in ops {
        pa(&r, IOVA);
        let next = target + 0x10_0000;
        retarget(&r, &pt, IOVA, next);
        assert_eq!(pa(&r, IOVA).0, target, "{name}: stale before");
        op();
        assert_eq!(pa(&r, IOVA).0, next, "{name}: fresh after");
        target = next;
    }
    // TLBIALLH touches no non-hyp entries.
    pa(&r, IOVA);
    retarget(&r, &pt, IOVA, OLD);
    r.smmu.write32(gr0::TLBIALLH, 0xffff_ffff);
    assert_eq!(pa(&r, IOVA).0, target);
}

#[test]
fn a_block_entry_is_cached_once_and_invalidated_by_any_address_inside() {
    let (r, pt) = s1_rig(0);
    let b = cbo(&r.smmu, 0);
    assert_eq!(pa(&r, 0x4000_0000), (0xa000_0000, false));
    assert_eq!(pa(&r, 0x401f_f000), (0xa01f_f000, true));
    match r
        .smmu
        .translate(SID, Iova::new(0x4010_0000), Access::Read)
        .unwrap()
    {
        Translation::Translated { leaf_size, .. } => assert_eq!(leaf_size, PageSize::SZ_2M),
        t => panic!("{t:?}"),
    }
    retarget(&r, &pt, 0x4000_0000, 0xa040_0000);
    assert_eq!(pa(&r, 0x4000_1000).0, 0xa000_1000);
    r.smmu.write64(b + cb::S1_TLBIVA, 0x4012_3000 >> 12);
    assert_eq!(pa(&r, 0x4000_1000), (0xa040_1000, false));
}

#[test]
fn unmapped_but_not_invalidated_still_translates() {
    let (r, mut pt) = s1_rig(0);
    pa(&r, IOVA);
    let mut g = pgtable::Gather::default();
    assert_eq!(
        pt.unmap_pages(Iova::new(IOVA), PageSize::SZ_4K, PageCount::ONE, &mut g),
        SZ_4K
    );
    // The missing invalidation is observable as DMA to the old page.
    assert_eq!(pa(&r, IOVA).0, OLD);
    r.smmu.write64(cbo(&r.smmu, 0) + cb::S1_TLBIVA, IOVA >> 12);
    assert!(r
        .smmu
        .translate(SID, Iova::new(IOVA), Access::Read)
        .is_err());
}

#[test]
fn stage2_entries_are_invalidated_by_ipa_and_vmid() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let mut pt = s2_table(&r, pgtable::PGSIZES_4K, 40, 48);
    pt.map_pages(
        Iova::new(IOVA),
        PhysAddr::new(OLD),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    program_from(&r.smmu, 1, &pt, 0); // VMID 2
    map_stream(&r.smmu, 0, SID, 0, 1);
    enable(&r.smmu);
    let b = cbo(&r.smmu, 1);
    let step = |to: u64, op: &dyn Fn(), expect_fresh: bool| {
        let before = pa(&r, IOVA).0;
        retarget(&r, &pt, IOVA, to);
        op();
        let after = pa(&r, IOVA).0;
        if expect_fresh {
            assert_eq!(after, to);
        } else {
            assert_eq!(after, before);
        }
    };
    step(NEW, &|| r.smmu.write32(gr0::TLBIVMID, 3), false);
    step(
        NEW,
        &|| r.smmu.write64(b + cb::S2_TLBIIPAS2, (IOVA + 0x1000) >> 12),
        false,
    );
    step(
        NEW,
        &|| r.smmu.write64(b + cb::S2_TLBIIPAS2, IOVA >> 12),
        true,
    );
    step(
        OLD,
        &|| r.smmu.write64(b + cb::S2_TLBIIPAS2L, IOVA >> 12),
        true,
    );
    step(NEW, &|| r.smmu.write32(gr0::TLBIVMID, 2), true);
}

#[test]
fn capacity_is_finite_and_replacement_deterministic() {
    let run = || {
        let cfg = Mmu500Config {
            tlb_entries: 8,
            ..Mmu500Config::mmu500_ls1028a()
        };
        let r = rig(cfg);
        let mut pt = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
        pt.map_pages(
            Iova::new(IOVA),
            PhysAddr::new(OLD),
            PageSize::SZ_4K,
            PageCount::new(64),
            Prot::READ,
        )
        .unwrap();
        program_from(&r.smmu, 0, &pt, 0);
        map_stream(&r.smmu, 0, SID, 0, 0);
        enable(&r.smmu);
        let mut hits = Vec::new();
        for i in 0..256u64 {
            let iova = IOVA + ((i * 7) % 64) * 0x1000;
            hits.push(pa(&r, iova).1);
        }
        assert!(r.smmu.tlb_entries() <= 8);
        (hits, r.smmu.counters())
    };
    let (a, ca) = run();
    let (b, cb) = run();
    assert_eq!(a, b);
    assert_eq!(ca, cb);
    assert_eq!(ca.tlb_hits + ca.tlb_misses, 256);
    assert!(
        ca.tlb_misses > 64,
        "a 64-page working set cannot fit 8 entries"
    );
}

#[test]
fn register_writes_reach_the_next_walk_while_cached_entries_stay_stale() {
    // The model caches each bank's decoded registers; that cache must follow every register
    // write, while TLB entries follow only TLBIs.
    let (r, _pt) = s1_rig(3);
    let b = cbo(&r.smmu, 0);
    assert_eq!(pa(&r, IOVA + 8), (OLD + 8, false));
    let mut pt2 = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
    pt2.map_pages(
        Iova::new(IOVA),
        PhysAddr::new(NEW),
        PageSize::SZ_4K,
        PageCount::new(2),
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    // A new table under the same ASID, installed by register writes only (no TLBI).
    program_from(&r.smmu, 0, &pt2, 3);
    assert_eq!(
        pa(&r, IOVA + 8),
        (OLD + 8, true),
        "cached entry stays stale"
    );
    assert_eq!(
        pa(&r, IOVA + 0x1008),
        (NEW + 0x1008, false),
        "new walk uses new TTBR0"
    );
    // Translation switched off: the very next transaction bypasses.
    r.smmu.write32(b + cb::SCTLR, 0x1066);
    assert!(matches!(
        r.smmu.translate(SID, Iova::new(IOVA + 8), Access::Read).unwrap(),
        Translation::Bypass { pa, .. } if pa == PhysAddr::new(IOVA + 8)
    ));
}

/// The (epoch, tlb_hit) of a translation of `iova`.
fn provenance(r: &Rig, iova: u64) -> (u64, bool) {
    match r
        .smmu
        .translate(SID, Iova::new(iova), Access::Read)
        .unwrap()
    {
        Translation::Translated { epoch, tlb_hit, .. } => (epoch, tlb_hit),
        t => panic!("not translated: {t:?}"),
    }
}

#[test]
fn translations_report_the_bank_programming_that_produced_them() {
    // A domain's bank is torn down (SCTLR = 0) without a TLB flush and the bank is programmed
    // again with the same ASID over new tables: the old entry still answers, and says it came
    // from the earlier programming.
    let (r, _old) = s1_rig(0);
    let b = cbo(&r.smmu, 0);
    let first = r.smmu.context_epoch(0).unwrap();
    assert!(first > 0);
    assert_eq!(provenance(&r, IOVA), (first, false));
    assert_eq!(provenance(&r, IOVA), (first, true));
    // Writes that do not define the regime (FSR, TLBSYNC, ACTLR) leave the epoch alone.
    r.smmu.write32(b + cb::FSR, 0);
    r.smmu.write32(b + cb::TLBSYNC, 0xffff_ffff);
    assert_eq!(r.smmu.context_epoch(0), Some(first));
    r.smmu.write32(b + cb::SCTLR, 0);
    let torn_down = r.smmu.context_epoch(0).unwrap();
    assert!(torn_down > first);
    let mut new = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
    new.map_pages(
        Iova::new(IOVA + 0x10_0000),
        PhysAddr::new(NEW),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    program_from(&r.smmu, 0, &new, 0);
    let second = r.smmu.context_epoch(0).unwrap();
    assert!(second > torn_down);
    // The stale entry (old tables, freed by now in a real kernel) still hits...
    assert_eq!(pa(&r, IOVA), (OLD, true));
    assert_eq!(provenance(&r, IOVA), (first, true));
    // ...while the new tables' translations carry the new epoch.
    assert_eq!(provenance(&r, IOVA + 0x10_0000), (second, false));
    // After TLBIASID the old IOVA faults: nothing of the first programming is left.
    r.smmu.write32(b + cb::S1_TLBIASID, 0);
    assert!(r
        .smmu
        .translate(SID, Iova::new(IOVA), Access::Read)
        .is_err());
    assert_eq!(r.smmu.context_epoch(64), None);
}
