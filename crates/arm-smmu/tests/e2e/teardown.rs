//! Release and shutdown seen from the DMA side: the seed's global fault after release, and each
//! shutdown policy.

use super::*;

#[test]
fn seed_global_fault_after_release() {
    let b = ls1028a(ModuleParams::default(), ShutdownPolicy::Linux61);
    let dom = attach_enetc(&b);
    b.smmu
        .map_pages(
            dom,
            Iova::new(0x1000),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    b.model
        .dma_write(ENETC_SID, Iova::new(0x1000), b"ok")
        .unwrap();
    b.smmu.release_device(DeviceId(4));
    b.log.clear();
    let e = b
        .model
        .dma_write(ENETC_SID, Iova::new(0x1000), b"tx")
        .unwrap_err();
    assert!(matches!(
        e,
        BusError::Fault {
            fault: DmaFault::Global { sid: 0x429, .. },
            ..
        }
    ));
    assert_eq!(
        b.log.lines(),
        vec![
            format!("{LS}: Blocked unknown Stream ID 0x429; boot with \"arm-smmu.disable_bypass=0\" to allow, but this may have security implications"),
            format!("{LS}: \tGFSR 0x00000002, GFSYNR0 0x00000002, GFSYNR1 0x00000429, GFSYNR2 0x00000000"),
        ]
    );
    // The seed's MULTI variant: a write and then a read arrive before the handler runs.
    b.model.clear_irq_handler();
    b.log.clear();
    b.model
        .dma_write(ENETC_SID, Iova::new(0x1000), b"tx")
        .unwrap_err();
    let mut buf = [0u8; 4];
    b.model
        .dma_read(ENETC_SID, Iova::new(0x1000), &mut buf)
        .unwrap_err();
    b.smmu.handle_global_fault();
    assert_eq!(
        b.log.lines(),
        vec![
            format!("{LS}: Blocked unknown Stream ID 0x429; boot with \"arm-smmu.disable_bypass=0\" to allow, but this may have security implications"),
            format!("{LS}: \tGFSR 0x80000002, GFSYNR0 0x00000002, GFSYNR1 0x00000429, GFSYNR2 0x00000000"),
        ]
    );
}

#[test]
fn shutdown_policies_seen_from_dma() {
    for policy in [
        ShutdownPolicy::Linux61,
        ShutdownPolicy::Linux62,
        ShutdownPolicy::Quiesce,
    ] {
        let b = ls1028a(ModuleParams::default(), policy);
        let dom = attach_enetc(&b);
        // An IOVA that is also a RAM address, so untranslated DMA visibly lands somewhere.
        let iova = RAM_BASE + 0x50_0000;
        let pa = RAM_BASE + 0x40_0000;
        b.smmu
            .map_pages(
                dom,
                Iova::new(iova),
                PhysAddr::new(pa),
                PageSize::SZ_4K,
                PageCount::new(1),
                Prot::READ | Prot::WRITE,
            )
            .unwrap();
        b.model
            .dma_write(ENETC_SID, Iova::new(iova), b"before")
            .unwrap();
        let s = b.smmu.clone();
        let mut unregistered = false;
        b.smmu.shutdown(&mut || {
            unregistered = true;
            s.release_device(DeviceId(4));
        });
        assert_eq!(unregistered, policy == ShutdownPolicy::Linux61);
        assert!(b
            .log
            .lines()
            .iter()
            .any(|l| l == &format!("{LS}: disabling translation")
                || l == &format!("{LS}: blocking all streams")));
        let r = b.model.dma_write(ENETC_SID, Iova::new(iova), b"after!");
        match policy {
            // sCR0 = CLIENTPD: the IOVA is used as a physical address.
            ShutdownPolicy::Linux61 | ShutdownPolicy::Linux62 => {
                assert!(
                    matches!(
                        r.as_deref(),
                        Ok([Translation::Bypass {
                            reason: BypassReason::ClientPd,
                            ..
                        }])
                    ),
                    "{policy:?}: {r:?}"
                );
                assert_eq!(read(&b, iova, 6), b"after!", "stray DMA at PA = IOVA");
            }
            ShutdownPolicy::Quiesce => {
                assert!(r.is_err(), "{r:?}");
                // And an unknown stream is blocked too.
                assert!(b.model.dma_write(0x7, Iova::new(iova), b"x").is_err());
            }
        }
        assert_eq!(read(&b, pa, 6), b"before");
    }
}
