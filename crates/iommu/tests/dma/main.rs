//! The DMA API: strict and lazy invalidation, misuse, the seed's oops, IOVA limits.

mod coherent;
#[path = "../common/mod.rs"]
mod common;
use common::*;
use iommu::fake::FakeDriver;
use iommu::*;
use std::sync::atomic::Ordering::Relaxed;

use DmaDirection::{Bidirectional, FromDevice, ToDevice};

fn lazy() -> CoreConfig {
    CoreConfig {
        strict: false,
        ..CoreConfig::default()
    }
}

fn enetc(r: &Rig) -> DeviceId {
    r.core
        .probe_device(pci("fsl_enetc 0000:00:00.0", 0, 0x429), r.inst)
        .unwrap()
}

#[test]
fn map_gives_iova_plus_offset_and_translates() {
    let r = rig(CoreConfig::default());
    let d = enetc(&r);
    let dom = r.core.default_domain(d).unwrap();
    assert_eq!(dom.kind(), DomainKind::Dma);
    let a = r
        .core
        .dma_map_page(d, paddr(RAM + 0x5123), 0x2000, ToDevice)
        .unwrap();
    assert_eq!(a.as_u64() & 0xfff, 0x123);
    // PCI, 64-bit mask: 32-bit first, top-down; 0x2123 bytes need 3 pages, rounded to 4.
    assert_eq!(a, da(0x1_0000_0000 - 0x4000 + 0x123));
    assert_eq!(phys(&r, &dom, a, 0), RAM + 0x5123);
    assert_eq!(phys(&r, &dom, a, 0x1fff), RAM + 0x7122);
    assert_eq!(r.fake.mapped_pages(dom.driver_domain()), 3);
    r.core.dma_unmap_page(d, a, 0x2000, ToDevice).unwrap();
    assert_eq!(r.fake.mapped_pages(dom.driver_domain()), 0);
    assert_eq!(r.core.stats().maps, 1);
    assert_eq!(r.core.stats().unmaps, 1);
}

#[test]
fn strict_unmap_syncs_and_reuses_at_once() {
    let r = rig(CoreConfig::default());
    let d = enetc(&r);
    let a = r
        .core
        .dma_map_page(d, paddr(RAM), 4096, FromDevice)
        .unwrap();
    let syncs = r.fake.counters.iotlb_syncs.load(Relaxed);
    r.core.dma_unmap_page(d, a, 4096, FromDevice).unwrap();
    assert_eq!(r.fake.counters.iotlb_syncs.load(Relaxed), syncs + 1);
    let b = r
        .core
        .dma_map_page(d, paddr(RAM), 4096, FromDevice)
        .unwrap();
    assert_eq!(a, b, "strict: the IOVA comes straight back from the rcache");
    assert_eq!(r.fake.counters.flush_alls.load(Relaxed), 0);
}

#[test]
fn lazy_unmap_waits_for_the_flush_all() {
    let r = rig(lazy());
    let d = enetc(&r);
    let dom = r.core.default_domain(d).unwrap();
    assert_eq!(dom.kind(), DomainKind::DmaFq);
    let a = r
        .core
        .dma_map_page(d, paddr(RAM), 4096, FromDevice)
        .unwrap();
    let syncs = r.fake.counters.iotlb_syncs.load(Relaxed);
    r.core.dma_unmap_page(d, a, 4096, FromDevice).unwrap();
    assert_eq!(
        r.fake.counters.iotlb_syncs.load(Relaxed),
        syncs,
        "no sync in lazy mode"
    );
    assert_eq!(dom.fq_len(), 1);
    let b = r
        .core
        .dma_map_page(d, paddr(RAM), 4096, FromDevice)
        .unwrap();
    assert_ne!(a, b, "a queued IOVA is not reused before the flush");
    r.core.flush_queue_drain();
    assert_eq!(r.fake.counters.flush_alls.load(Relaxed), 1);
    assert_eq!(dom.fq_len(), 0);
    let c = r
        .core
        .dma_map_page(d, paddr(RAM), 4096, FromDevice)
        .unwrap();
    assert_eq!(a, c, "after the flush-all the IOVA is free again");
}

#[test]
fn full_flush_queue_flushes_all() {
    let r = rig(lazy());
    let d = enetc(&r);
    let dom = r.core.default_domain(d).unwrap();
    let addrs: Vec<DmaAddr> = (0..257)
        .map(|i| {
            r.core
                .dma_map_page(d, paddr(RAM + i * 4096), 64, ToDevice)
                .unwrap()
        })
        .collect();
    for &a in &addrs[..256] {
        r.core.dma_unmap_page(d, a, 64, ToDevice).unwrap();
    }
    assert_eq!(dom.fq_len(), 256);
    assert_eq!(r.fake.counters.flush_alls.load(Relaxed), 0);
    r.core.dma_unmap_page(d, addrs[256], 64, ToDevice).unwrap();
    assert_eq!(r.fake.counters.flush_alls.load(Relaxed), 1);
    assert_eq!(dom.fq_len(), 1);
    assert_eq!(r.core.stats().fq_flushes, 1);
}

#[test]
fn flush_queue_timer_runs_on_simulated_time() {
    let r = rig(lazy());
    let d = enetc(&r);
    let dom = r.core.default_domain(d).unwrap();
    let a = r.core.dma_map_page(d, paddr(RAM), 4096, ToDevice).unwrap();
    r.core.dma_unmap_page(d, a, 4096, ToDevice).unwrap();
    r.log.advance_ns(9_999_999);
    r.core.run_timers();
    assert_eq!(dom.fq_len(), 1);
    r.log.advance_ns(1);
    // The next DMA API call on the domain notices the expired timer.
    let b = r.core.dma_map_page(d, paddr(RAM), 4096, ToDevice).unwrap();
    assert_eq!(dom.fq_len(), 0);
    assert_eq!(r.fake.counters.flush_alls.load(Relaxed), 1);
    assert_eq!(a, b);
}

#[test]
fn driver_without_fq_falls_back_to_strict() {
    let mut f = FakeDriver::new(SMMU);
    f.no_fq = true;
    let r = rig_with(lazy(), f);
    let d = enetc(&r);
    assert_eq!(r.core.default_domain(d).unwrap().kind(), DomainKind::Dma);
}

#[test]
fn misuse_is_a_typed_error() {
    let r = rig(CoreConfig::default());
    let d = enetc(&r);
    let a = r.core.dma_map_page(d, paddr(RAM), 100, ToDevice).unwrap();
    assert_eq!(
        r.core.dma_unmap_page(d, a, 200, ToDevice),
        Err(DmaError::WrongSize {
            addr: a,
            mapped: 100,
            requested: 200
        })
    );
    assert_eq!(
        r.core.dma_unmap_page(d, a, 100, FromDevice),
        Err(DmaError::WrongDirection { addr: a })
    );
    assert_eq!(
        r.core
            .dma_unmap_page(d, da(a.as_u64() + 4096), 100, ToDevice),
        Err(DmaError::NotMapped {
            addr: da(a.as_u64() + 4096)
        })
    );
    assert!(matches!(
        r.core.dma_unmap_sg(d, &[(a, 100)], ToDevice),
        Err(DmaError::WrongKind { .. })
    ));
    r.core.dma_unmap_page(d, a, 100, ToDevice).unwrap();
    assert_eq!(
        r.core.dma_unmap_page(d, a, 100, ToDevice),
        Err(DmaError::NotMapped { addr: a })
    );
    assert!(matches!(
        r.core.dma_map_page(d, paddr(RAM), 100, DmaDirection::None),
        Err(DmaError::Invalid(_))
    ));
    assert!(matches!(
        r.core.dma_map_page(d, paddr(RAM), 0, ToDevice),
        Err(DmaError::Invalid(_))
    ));
    assert!(matches!(
        r.core.dma_map_page(d, paddr(u64::MAX - 10), 100, ToDevice),
        Err(DmaError::Invalid(_))
    ));
    assert_eq!(
        r.core.dma_map_page(DeviceId(77), paddr(RAM), 100, ToDevice),
        Err(DmaError::NoDevice)
    );
    r.fake.fail_maps.store(true, Relaxed);
    assert_eq!(
        r.core.dma_map_page(d, paddr(RAM), 100, ToDevice),
        Err(DmaError::Driver(DriverError::Exhausted(
            Resource::InjectedFailure
        )))
    );
    r.fake.fail_maps.store(false, Relaxed);
    // The failed map gave its IOVA back.
    let b = r.core.dma_map_page(d, paddr(RAM), 100, ToDevice).unwrap();
    assert_eq!(a, b);
    assert_eq!(r.core.stats().dma_errors, 10);
}

#[test]
fn linux_faithful_oopses_on_map_and_unmap_after_release() {
    let r = rig(CoreConfig {
        linux_faithful: true,
        ..CoreConfig::default()
    });
    let d = enetc(&r);
    let a = r.core.dma_map_page(d, paddr(RAM), 1500, ToDevice).unwrap();
    r.core.unregister(r.inst).unwrap();
    let Err(DmaError::Oops(o)) = r.core.dma_map_page(d, paddr(RAM + 4096), 1500, ToDevice) else {
        panic!("expected an oops on the map path");
    };
    assert_eq!(o.path, OopsPath::MapPage);
    assert_eq!(o.fault_addr, 0x98);
    assert_eq!(o.pc, "iommu_get_dma_domain+0x14/0x20");
    assert_eq!(o.lr, "iommu_dma_map_page+0x9c/0x254");
    assert_eq!(
        o.call_trace,
        [
            "iommu_get_dma_domain+0x14/0x20",
            "dma_map_page_attrs+0x1ec/0x250"
        ]
    );
    assert_eq!(o.code, "d503201f f9416800 d503233f d50323bf (f9404c00)");
    let Err(DmaError::Oops(u)) = r.core.dma_unmap_page(d, a, 1500, ToDevice) else {
        panic!("expected an oops on the unmap path");
    };
    // The fault address is the build's layout, not the path's: the same build faults at 0x98.
    assert_eq!(u.fault_addr, 0x98);
    assert_eq!(
        u.code_line(),
        "Code: d503201f f9416800 d503233f d50323bf (f9404c00)"
    );
    // The seed's second report came from a build with `default_domain` at 0xa8.
    let u = iommu::Oops::null_group(OopsPath::UnmapPage, 0xa8);
    assert_eq!(u.fault_addr, 0xa8);
    assert_eq!(u.lr, "iommu_dma_unmap_page+0x38/0xe0");
    assert_eq!(
        u.call_trace,
        [
            "iommu_get_dma_domain+0x14/0x20",
            "dma_unmap_page_attrs+0x38/0x1d0"
        ]
    );
    assert_eq!(
        u.code_line(),
        "Code: d503201f f9416800 d503233f d50323bf (f9405400)"
    );
    assert_eq!(r.core.stats().oopses, 2);
    let r = rig(CoreConfig {
        linux_faithful: true,
        group_default_domain_offset: 0xa8,
        ..CoreConfig::default()
    });
    let d = enetc(&r);
    let a = r.core.dma_map_page(d, paddr(RAM), 1500, ToDevice).unwrap();
    r.core.unregister(r.inst).unwrap();
    let Err(DmaError::Oops(u)) = r.core.dma_unmap_page(d, a, 1500, ToDevice) else {
        panic!("expected an oops on the unmap path");
    };
    assert_eq!(u.unable_line().rsplit(' ').next(), Some("00000000000000a8"));
    // The domain with the live mapping is kept alive for the hardware still using it.
    assert_eq!(r.core.orphaned_domains().len(), 1);
    assert_eq!(r.fake.live_domains(), 1);
}

#[test]
fn safe_mode_gives_typed_errors_after_release() {
    let r = rig(CoreConfig::default());
    let d = enetc(&r);
    let a = r.core.dma_map_page(d, paddr(RAM), 1500, ToDevice).unwrap();
    r.core.release_device(d);
    assert_eq!(
        r.core.dma_map_page(d, paddr(RAM), 1500, ToDevice),
        Err(DmaError::DeviceReleased)
    );
    assert_eq!(
        r.core.dma_unmap_page(d, a, 1500, ToDevice),
        Err(DmaError::DeviceReleased)
    );
    assert_eq!(
        r.core.dma_alloc_coherent(d, 4096),
        Err(DmaError::DeviceReleased)
    );
    assert_eq!(
        r.core.dma_map_sg(d, &[(paddr(RAM), 10)], ToDevice),
        Err(DmaError::DeviceReleased)
    );
    assert_eq!(r.core.stats().oopses, 0);
}

#[test]
fn iova_limits_follow_mask_and_32bit_first() {
    let r = rig(CoreConfig::default());
    let p = r
        .core
        .probe_device(pci("fsl_enetc 0000:00:00.0", 0, 0x429), r.inst)
        .unwrap();
    let mut plat = platform("dwc3 3100000.usb", 0, 1);
    let plat64 = r.core.probe_device(plat.clone(), r.inst).unwrap();
    plat.dma_mask = (1 << 32) - 1;
    plat.fwspec.ids = vec![2];
    let plat32 = r.core.probe_device(plat.clone(), r.inst).unwrap();
    plat.bus_dma_limit = (1 << 30) - 1;
    plat.fwspec.ids = vec![3];
    let plat_lim = r.core.probe_device(plat, r.inst).unwrap();
    let m = |d| {
        r.core
            .dma_map_page(d, paddr(RAM), 4096, ToDevice)
            .unwrap()
            .as_u64()
    };
    assert_eq!(m(p), (1 << 32) - 4096);
    assert_eq!(
        m(plat64),
        (1 << 48) - 4096,
        "platform: no 32-bit-first in v6.1"
    );
    assert_eq!(m(plat32), (1 << 32) - 4096);
    assert_eq!(m(plat_lim), (1 << 30) - 4096);
    // forcedac: PCI goes high too.
    let r2 = rig(CoreConfig {
        forcedac: true,
        ..CoreConfig::default()
    });
    let p2 = enetc(&r2);
    assert_eq!(
        r2.core.dma_map_page(p2, paddr(RAM), 4096, ToDevice),
        Ok(da((1 << 48) - 4096))
    );
}

#[test]
fn msi_window_is_reserved() {
    let r = rig(CoreConfig::default());
    let mut desc = platform("x x", 0, 1);
    desc.dma_mask = 0x0810_0000 + 0x1fff; // top of the window + 2 pages
    let d = r.core.probe_device(desc, r.inst).unwrap();
    let a = r.core.dma_map_page(d, paddr(RAM), 4096, ToDevice).unwrap();
    let b = r.core.dma_map_page(d, paddr(RAM), 4096, ToDevice).unwrap();
    let c = r.core.dma_map_page(d, paddr(RAM), 4096, ToDevice).unwrap();
    assert_eq!(
        [a, b, c].map(DmaAddr::as_u64),
        [0x0810_1000, 0x0810_0000, 0x07ff_f000]
    );
}

#[test]
fn scatterlists_share_one_iova_range() {
    let r = rig(CoreConfig::default());
    let d = enetc(&r);
    let dom = r.core.default_domain(d).unwrap();
    let segs = [
        (paddr(RAM + 0x10), 0x100),
        (paddr(RAM + 0x3000), 0x1800),
        (paddr(RAM + 0x9ff0), 0x20),
    ];
    let out = r.core.dma_map_sg(d, &segs, Bidirectional).unwrap();
    assert_eq!(out.len(), 3);
    for (&(pa, len), &(da, dlen)) in segs.iter().zip(&out) {
        assert_eq!(len, dlen);
        assert_eq!(phys(&r, &dom, da, 0), pa.as_u64());
        assert_eq!(phys(&r, &dom, da, len - 1), pa.as_u64() + len - 1);
    }
    // 1 + 2 + 2 pages, contiguous in IOVA space.
    let first = out[0].0.as_u64() & !0xfff;
    assert_eq!(out[1].0, da(first + 0x1000));
    assert_eq!(out[2].0, da(first + 0x3ff0));
    assert!(matches!(
        r.core.dma_unmap_sg(d, &out[..2], Bidirectional),
        Err(DmaError::WrongSize { .. }) | Err(DmaError::WrongKind { .. })
    ));
    r.core.dma_unmap_sg(d, &out, Bidirectional).unwrap();
    assert_eq!(r.fake.mapped_pages(dom.driver_domain()), 0);
    assert_eq!(dom.live_mappings(), 0);
}

#[test]
fn huge_requests_fail_cleanly() {
    let r = rig(CoreConfig::default());
    let d = enetc(&r);
    let big = 1u64 << 62;
    assert!(matches!(
        r.core.dma_map_sg(d, &[(PhysAddr::ZERO, big); 4], ToDevice),
        Err(DmaError::Invalid(_))
    ));
    assert_eq!(
        r.core.dma_map_page(d, paddr(0), big, ToDevice),
        Err(DmaError::NoIovaSpace { size: big })
    );
    assert!(matches!(
        r.core.dma_alloc_coherent(d, big),
        Err(DmaError::Invalid(_))
    ));
    assert_eq!(r.core.default_domain(d).unwrap().live_mappings(), 0);
}

/// DMA-API misuse under an identity (passthrough) default domain: the safe core gives the same
/// typed errors as under a DMA domain; the Linux-faithful core keeps dma-direct's behaviour,
/// which checks none of it (each of these succeeded in the safe core too before the fix).
#[test]
fn passthrough_misuse_is_typed_in_the_safe_core_and_silent_in_the_faithful_one() {
    for faithful in [false, true] {
        let r = rig(CoreConfig {
            passthrough: true,
            linux_faithful: faithful,
            ..CoreConfig::default()
        });
        let d = enetc(&r);
        let safe = !faithful;
        // A huge size with a 64-bit mask.
        let huge = r.core.dma_map_page(d, paddr(RAM), 1 << 40, ToDevice);
        assert_eq!(
            huge.clone().err(),
            safe.then_some(DmaError::NotSystemMemory {
                paddr: paddr(RAM),
                size: 1 << 40
            }),
            "faithful={faithful}"
        );
        if let Ok(a) = huge {
            r.core.dma_unmap_page(d, a, 1 << 40, ToDevice).unwrap();
        }
        // A partial dma_unmap_sg, then dma_unmap_page of one of its segments.
        let list = [(paddr(RAM), 100), (paddr(RAM + 0x1000), 200)];
        let segs = r.core.dma_map_sg(d, &list, ToDevice).unwrap();
        assert_eq!(segs, [(da(RAM), 100), (da(RAM + 0x1000), 200)]);
        let partial = r.core.dma_unmap_sg(d, &segs[..1], ToDevice);
        let page_of_sg = r.core.dma_unmap_page(d, segs[1].0, segs[1].1, ToDevice);
        if safe {
            assert_eq!(partial, Err(DmaError::WrongKind { addr: da(RAM) }));
            assert_eq!(
                page_of_sg,
                Err(DmaError::WrongKind {
                    addr: da(RAM + 0x1000)
                })
            );
            // Nothing was half-removed: the whole list still unmaps.
            r.core.dma_unmap_sg(d, &segs, ToDevice).unwrap();
        } else {
            assert_eq!((partial, page_of_sg), (Ok(()), Ok(())));
        }
        assert_eq!(r.core.live_mappings(d), 0);
        // dma_unmap_page on a coherent buffer.
        let (pa, dma) = r.core.dma_alloc_coherent(d, 4096).unwrap();
        let page_of_coherent = r.core.dma_unmap_page(d, dma, 4096, Bidirectional);
        let free = r.core.dma_free_coherent(d, 4096, pa, dma);
        if safe {
            assert_eq!(page_of_coherent, Err(DmaError::WrongKind { addr: dma }));
            assert_eq!(free, Ok(()));
        } else {
            // The record went away, the frames did not: the free that should work fails.
            assert_eq!(page_of_coherent, Ok(()));
            assert_eq!(free, Err(DmaError::NotMapped { addr: dma }));
        }
        // Calls after the device is released, and after the SMMU is unregistered.
        let live = r.core.dma_map_page(d, paddr(RAM), 64, ToDevice).unwrap();
        let other = r
            .core
            .probe_device(pci("fsl_enetc 0000:00:00.1", 1, 0x42a), r.inst)
            .unwrap();
        r.core.release_device(d);
        r.core.unregister(r.inst).unwrap();
        for dev in [d, other] {
            let map = r.core.dma_map_page(dev, paddr(RAM), 64, ToDevice);
            let sg = r.core.dma_map_sg(dev, &[(paddr(RAM), 64)], ToDevice);
            let coherent = r.core.dma_alloc_coherent(dev, 4096).map(|_| ());
            if safe {
                assert_eq!(map, Err(DmaError::DeviceReleased));
                assert_eq!(sg, Err(DmaError::DeviceReleased));
                assert_eq!(coherent, Err(DmaError::DeviceReleased));
            } else {
                assert_eq!(map, Ok(da(RAM)));
                assert_eq!(sg, Ok(vec![(da(RAM), 64)]));
                assert_eq!(coherent, Ok(()));
            }
        }
        let unmap = r.core.dma_unmap_page(d, live, 64, ToDevice);
        assert_eq!(
            unmap,
            if safe {
                Err(DmaError::DeviceReleased)
            } else {
                Ok(())
            }
        );
    }
}

/// Under a DMA domain, dma_unmap_page of an sg mapping is a kind error too.
#[test]
fn unmap_page_of_an_sg_mapping_is_wrong_kind() {
    let r = rig(CoreConfig::default());
    let d = enetc(&r);
    let segs = r
        .core
        .dma_map_sg(
            d,
            &[(paddr(RAM), 100), (paddr(RAM + 0x1000), 200)],
            ToDevice,
        )
        .unwrap();
    for (a, l) in [segs[0], (segs[0].0, 300)] {
        assert_eq!(
            r.core.dma_unmap_page(d, a, l, ToDevice),
            Err(DmaError::WrongKind { addr: a })
        );
    }
    r.core.dma_unmap_sg(d, &segs, ToDevice).unwrap();
}

/// `dma_map_sg` whose mapping fails: with a3884774d731's signed check the call fails and the
/// IOVA goes back; with the unsigned check of before, the call "succeeds" with addresses that
/// nothing maps and the IOVA stays taken.
#[test]
fn a_failed_map_sg_is_an_error_only_with_the_signed_result_check() {
    let segs = [(paddr(RAM), 0x1000), (paddr(RAM + 0x3000), 0x800)];
    for signed in [true, false] {
        let r = rig(CoreConfig {
            map_sg_signed_result_check: signed,
            // Freed ranges go straight back to the tree (no range cache in between).
            iova_rcache: false,
            ..CoreConfig::default()
        });
        let d = enetc(&r);
        let dom = r.core.default_domain(d).unwrap();
        r.fake.fail_maps.store(true, Relaxed);
        let got = r.core.dma_map_sg(d, &segs, FromDevice);
        r.fake.fail_maps.store(false, Relaxed);
        let next = r
            .core
            .dma_map_page(d, paddr(RAM), 0x1000, FromDevice)
            .unwrap();
        if signed {
            assert!(
                matches!(
                    got,
                    Err(DmaError::Driver(DriverError::Exhausted(
                        Resource::InjectedFailure
                    )))
                ),
                "{got:?}"
            );
            // The IOVA was given back: the next map reuses it.
            assert_eq!(next, da(0xffff_f000));
            assert_eq!(r.core.stats().dma_errors, 1);
        } else {
            let list = got.unwrap();
            assert_eq!(list, [(da(0xffff_e000), 0x1000), (da(0xffff_f000), 0x800)]);
            for (iova, _) in &list {
                assert_eq!(phys(&r, &dom, *iova, 0), 0, "{iova:#x} is unmapped");
            }
            // The IOVA stays taken: the next map gets the range below it.
            assert_eq!(next, da(0xffff_d000));
            assert_eq!(r.core.stats().dma_errors, 0);
        }
    }
}
