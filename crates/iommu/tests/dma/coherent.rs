//! Coherent buffers: where their memory and IOVAs come from, and how one-page cycles reuse
//! an IOVA under each invalidation mode.

use super::*;

#[test]
fn coherent_buffers_come_from_the_frame_allocator() {
    let r = rig(CoreConfig::default());
    let d = enetc(&r);
    let dom = r.core.default_domain(d).unwrap();
    let (pa, da) = r.core.dma_alloc_coherent(d, 6000).unwrap();
    assert_eq!(r.frames.outstanding_bytes(), 8192);
    assert_eq!(phys(&r, &dom, da, 5000), pa.as_u64() + 5000);
    assert!(matches!(
        r.core
            .dma_free_coherent(d, 6000, paddr(pa.as_u64() + 4096), da),
        Err(DmaError::WrongKind { .. })
    ));
    assert!(matches!(
        r.core.dma_unmap_page(d, da, 6000, Bidirectional),
        Err(DmaError::WrongKind { .. })
    ));
    r.core.dma_free_coherent(d, 6000, pa, da).unwrap();
    assert_eq!(r.frames.outstanding_bytes(), 0);
    assert_eq!(
        r.core.dma_free_coherent(d, 6000, pa, da),
        Err(DmaError::NotMapped { addr: da })
    );
    assert!(matches!(
        r.core.dma_alloc_coherent(d, 0),
        Err(DmaError::Invalid(_))
    ));
}

/// The ENETC probe's control commands each take a one-page coherent data buffer and free it
/// (v6.1 `enetc_cbd_alloc_data_mem`/`_free_data_mem`). Under strict invalidation each cycle
/// takes the IOVA the last one gave back (the rcache), so any number of them leaves the next
/// one-page allocation where one does; under lazy invalidation a freed IOVA waits in the
/// flush queue, so each cycle takes a new one and the count shows in every later IOVA.
#[test]
fn one_page_coherent_cycles_reuse_one_iova_only_under_strict_invalidation() {
    for cycles in 1..=4u64 {
        for strict in [true, false] {
            let r = rig(if strict {
                CoreConfig::default()
            } else {
                lazy()
            });
            let d = enetc(&r);
            let (_, ring) = r.core.dma_alloc_coherent(d, 64 * 32).unwrap();
            assert_eq!(ring, da(0xffff_f000));
            for i in 0..cycles {
                let (pa, buf) = r.core.dma_alloc_coherent(d, 64 + 64).unwrap();
                let taken = if strict { 0 } else { i };
                assert_eq!(buf, da(0xffff_e000 - taken * 0x1000));
                r.core.dma_free_coherent(d, 64 + 64, pa, buf).unwrap();
            }
            let next = r
                .core
                .dma_map_page(d, paddr(RAM), 4096, FromDevice)
                .unwrap();
            let taken = if strict { 0 } else { cycles };
            assert_eq!(
                next,
                da(0xffff_e000 - taken * 0x1000),
                "strict {strict}, {cycles} cycles"
            );
        }
    }
}
