//! TLB maintenance leaves nothing stale in the model's finite TLB.

use super::*;

#[test]
fn tlb_maintenance_leaves_nothing_stale() {
    let b = ls1028a(ModuleParams::default(), ShutdownPolicy::Linux61);
    let dom = attach_enetc(&b);
    let iova = 0x4000_0000;
    let (pa1, pa2) = (RAM_BASE + 0x30_0000, RAM_BASE + 0x31_0000);
    // Fill the model's TLB with translations of more pages than it holds.
    let n = 600u64;
    b.smmu
        .map_pages(
            dom,
            Iova::new(iova),
            PhysAddr::new(pa1 - 0x1000 * 300),
            PageSize::SZ_4K,
            PageCount::new(n),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    for i in 0..n {
        b.model
            .dma_write(ENETC_SID, Iova::new(iova + i * 0x1000), &[i as u8])
            .unwrap();
    }
    let cap = b.model.config().tlb_entries;
    assert!(b.model.tlb_entries() <= cap);
    // Strict unmap of everything, then remap one page elsewhere: DMA must follow the new PTE.
    let mut g = Gather::new();
    assert_eq!(
        b.smmu.unmap_pages(
            dom,
            Iova::new(iova),
            PageSize::SZ_4K,
            PageCount::new(n),
            &mut g
        ),
        n * 0x1000
    );
    b.smmu.iotlb_sync(dom, &mut g);
    for i in 0..n {
        assert!(b
            .model
            .dma_write(ENETC_SID, Iova::new(iova + i * 0x1000), &[0xee])
            .is_err());
    }
    b.smmu
        .map_pages(
            dom,
            Iova::new(iova + 300 * 0x1000),
            PhysAddr::new(pa2),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    b.model
        .dma_write(ENETC_SID, Iova::new(iova + 300 * 0x1000), b"new")
        .unwrap();
    assert_eq!(read(&b, pa2, 3), b"new");
    assert_eq!(
        read(&b, pa1, 3),
        vec![44, 0, 0],
        "old page untouched since its own write"
    );

    // Negative control: a lazy unmap (no leaf invalidation) leaves the model's TLB stale until
    // flush_iotlb_all, proving the checks above are not vacuous.
    b.model
        .dma_write(ENETC_SID, Iova::new(iova + 300 * 0x1000), b"hit")
        .unwrap();
    let mut lazy = Gather::new();
    lazy.queued = true;
    b.smmu.unmap_pages(
        dom,
        Iova::new(iova + 300 * 0x1000),
        PageSize::SZ_4K,
        PageCount::new(1),
        &mut lazy,
    );
    let stale = b
        .model
        .dma_write(ENETC_SID, Iova::new(iova + 300 * 0x1000), b"old");
    assert!(
        matches!(
            stale.as_deref(),
            Ok([Translation::Translated { tlb_hit: true, .. }])
        ),
        "{stale:?}"
    );
    b.smmu.flush_iotlb_all(dom);
    assert!(b
        .model
        .dma_write(ENETC_SID, Iova::new(iova + 300 * 0x1000), b"no")
        .is_err());
}
