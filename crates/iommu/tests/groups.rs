//! Groups, release and unregister against the seed log (ls1028a-kontron-kbox.md §6).

mod common;
use common::*;
use iommu::*;

/// The KBox masters: (name, bus, bus position, stream ID), in probe order (which is the order
/// their groups were created: group numbers 0..=20). Bus positions are the bus-list order.
fn kbox() -> Vec<(&'static str, Bus, u64, u32)> {
    use Bus::*;
    vec![
        ("platform f080000.display", Platform, 7, 0x3d),
        ("etnaviv-gpu f0c0000.gpu", Platform, 8, 0x3e),
        ("etnaviv etnaviv", Platform, 9, 0x3e), // same stream: shares group 1
        ("ahci-qoriq 3200000.sata", Platform, 5, 0x3c),
        ("mscc_felix 0000:00:00.5", Pci, 4, 0x4d),
        ("fsl_enetc 0000:00:00.0", Pci, 0, 0x429),
        ("fsl_enetc 0000:00:00.1", Pci, 1, 0x42a),
        ("fsl_enetc 0000:00:00.2", Pci, 2, 0x42b),
        ("fsl_enetc 0000:00:00.6", Pci, 5, 0x42e),
        ("fsl_enetc_mdio 0000:00:00.3", Pci, 3, 0x42c),
        ("dwc3 3100000.usb", Platform, 3, 0x1),
        ("dwc3 3110000.usb", Platform, 4, 0x2),
        ("sdhci-esdhc 2140000.mmc", Platform, 0, 0x3a),
        ("sdhci-esdhc 2150000.mmc", Platform, 1, 0x3b),
        ("caam_jr 8010000.jr", Platform, 10, 0x1a),
        ("caam_jr 8020000.jr", Platform, 11, 0x1b),
        ("caam_jr 8030000.jr", Platform, 12, 0x1c),
        ("caam_jr 8040000.jr", Platform, 13, 0x1d),
        ("fsl-edma 22c0000.dma-controller", Platform, 2, 0x20),
        ("pcieport 0001:00:00.0", Pci, 6, 0x3f01),
        ("pcieport 0002:00:00.0", Pci, 7, 0x3f02),
        ("fsl-qdma 8380000.dma-controller", Platform, 6, 0x21),
    ]
}

fn probe_kbox(r: &Rig) -> Vec<DeviceId> {
    kbox()
        .into_iter()
        .map(|(n, bus, pos, sid)| {
            r.core
                .probe_device(DeviceDesc::new(n, bus, pos, &[sid]), r.inst)
                .unwrap()
        })
        .collect()
}

#[test]
fn groups_numbered_in_creation_order_and_shared_by_key() {
    let r = rig(CoreConfig::default());
    let ids = probe_kbox(&r);
    let groups: Vec<u32> = ids.iter().map(|&d| r.core.group_of(d).unwrap()).collect();
    assert_eq!(
        groups,
        [0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    );
    assert_eq!(r.core.group_members(1), [ids[1], ids[2]]);
    assert_eq!(
        r.log.lines()[..3],
        [
            "platform f080000.display: Adding to iommu group 0",
            "etnaviv-gpu f0c0000.gpu: Adding to iommu group 1",
            "etnaviv etnaviv: Adding to iommu group 1",
        ]
    );
    assert_eq!(r.core.stats().groups_created, 21);
    // One default domain per group.
    assert_eq!(r.fake.live_domains(), 21);
}

#[test]
fn group_numbers_are_reused_lowest_first() {
    let r = rig(CoreConfig::default());
    let a = r.core.probe_device(platform("a a", 0, 1), r.inst).unwrap();
    let b = r.core.probe_device(platform("b b", 1, 2), r.inst).unwrap();
    let c = r.core.probe_device(platform("c c", 2, 3), r.inst).unwrap();
    r.core.release_device(b);
    assert_eq!(r.core.group_of(b), None);
    let d = r.core.probe_device(platform("d d", 3, 4), r.inst).unwrap();
    assert_eq!([a, c, d].map(|x| r.core.group_of(x).unwrap()), [0, 2, 1]);
    // Group 1's domain was freed in the driver when the group went away.
    assert_eq!(
        r.fake
            .counters
            .domains_freed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn unregister_releases_in_bus_order_like_the_seed() {
    let r = rig(CoreConfig::default());
    let ids = probe_kbox(&r);
    r.log.clear();
    let order = r.core.release_order(r.inst);
    r.core.unregister(r.inst).unwrap();
    assert_eq!(r.log.lines().len(), 22);
    // Against the seed patch from ../shared (skipped, with a message, on a clone with nothing
    // beside it).
    if let Some(seed) = lab_fixtures::shared::seed_patch() {
        let want: Vec<&str> = seed
            .lines()
            .filter(|l| l.contains("Removing from iommu group"))
            .collect();
        assert_eq!(want.len(), 22);
        assert_eq!(r.log.lines(), want);
    }
    assert!(r
        .log
        .records()
        .iter()
        .all(|rec| rec.level == klog::Level::Info));
    // The driver saw release_device in the same order.
    assert_eq!(r.fake.released(), order);
    assert!(ids.iter().all(|&d| r.core.group_of(d).is_none()));
    assert!(r.core.groups().is_empty());
    assert_eq!(r.fake.live_domains(), 0);
    assert_eq!(r.core.stats().devices_released, 22);
    // Releasing again is a no-op.
    r.core.release_device(ids[0]);
    assert_eq!(r.log.lines().len(), 22);
    assert_eq!(
        r.core.unregister(r.inst),
        Err(CoreError::NoInstance(r.inst.0))
    );
}

#[test]
fn shared_group_is_freed_with_its_last_member() {
    let r = rig(CoreConfig::default());
    let ids = probe_kbox(&r);
    r.core.release_device(ids[1]);
    assert_eq!(r.core.groups().len(), 21);
    assert_eq!(r.core.group_of(ids[2]), Some(1));
    r.core.release_device(ids[2]);
    assert_eq!(r.core.groups().len(), 20);
    assert_eq!(
        r.log.lines()[22..],
        [
            "etnaviv-gpu f0c0000.gpu: Removing from iommu group 1",
            "etnaviv etnaviv: Removing from iommu group 1"
        ]
    );
}

#[test]
fn before_57365a04c921_unregister_keeps_groups() {
    let r = rig(CoreConfig {
        unregister_releases_devices: false,
        ..CoreConfig::default()
    });
    let ids = probe_kbox(&r);
    r.log.clear();
    r.core.unregister(r.inst).unwrap();
    assert!(r.log.lines().is_empty());
    assert_eq!(r.core.group_of(ids[5]), Some(4));
    // The DMA API keeps working on the devices.
    let a = r
        .core
        .dma_map_page(ids[5], paddr(RAM), 1500, DmaDirection::ToDevice)
        .unwrap();
    r.core
        .dma_unmap_page(ids[5], a, 1500, DmaDirection::ToDevice)
        .unwrap();
}

#[test]
fn probe_errors_are_typed() {
    let r = rig(CoreConfig::default());
    // The fake driver refuses a master without stream IDs.
    assert_eq!(
        r.core
            .probe_device(DeviceDesc::new("x y", Bus::Platform, 0, &[]), r.inst),
        Err(CoreError::Driver(DriverError::NoDevice))
    );
    assert_eq!(
        r.core.probe_device(platform("x y", 0, 1), InstanceId(9)),
        Err(CoreError::NoInstance(9))
    );
    assert!(r.core.groups().is_empty());
}

#[test]
fn passthrough_gives_identity_domains_and_direct_dma() {
    let r = rig(CoreConfig {
        passthrough: true,
        ..CoreConfig::default()
    });
    let d = r
        .core
        .probe_device(pci("fsl_enetc 0000:00:00.0", 0, 0x429), r.inst)
        .unwrap();
    assert_eq!(
        r.core.default_domain(d).unwrap().kind(),
        DomainKind::Identity
    );
    let a = r
        .core
        .dma_map_page(d, paddr(RAM + 0x1234), 100, DmaDirection::FromDevice)
        .unwrap();
    assert_eq!(a, DmaAddr::from_phys(paddr(RAM + 0x1234)));
    // Linux's direct DMA never looks at the group and keeps working after release; the safe
    // core refuses a released device (the Linux-faithful core's behaviour is tested in dma.rs).
    r.core.release_device(d);
    assert_eq!(
        r.core.dma_unmap_page(d, a, 100, DmaDirection::FromDevice),
        Err(DmaError::DeviceReleased)
    );
}

#[test]
fn unmanaged_domains_map_and_attach() {
    let r = rig(CoreConfig::default());
    let d = r
        .core
        .probe_device(platform("etnaviv-gpu f0c0000.gpu", 0, 1), r.inst)
        .unwrap();
    let dom = r.core.alloc_unmanaged(r.inst).unwrap();
    r.core.attach_device(d, &dom).unwrap();
    assert!(std::sync::Arc::ptr_eq(
        &r.core.attached_domain(d).unwrap(),
        &dom
    ));
    r.core
        .iommu_map(
            &dom,
            iova(0x40_0000),
            paddr(RAM + 0x20_0000),
            0x20_3000,
            Prot::READ,
        )
        .unwrap();
    assert_eq!(phys(&r, &dom, 0x40_0010u64, 0), RAM + 0x20_0010);
    assert_eq!(phys(&r, &dom, 0x60_2fffu64, 0), RAM + 0x40_2fff);
    assert_eq!(r.fake.mapped_pages(dom.driver_domain()), 0x203);
    assert_eq!(
        r.core.iommu_unmap(&dom, iova(0x40_0000), 0x20_3000),
        Ok(0x20_3000)
    );
    assert_eq!(phys(&r, &dom, 0x40_0010u64, 0), 0);
    assert_eq!(
        r.core
            .iommu_map(&dom, iova(0x800), paddr(RAM), 0x1000, Prot::READ),
        Err(CoreError::Driver(DriverError::Unaligned {
            iova: iova(0x800),
            paddr: paddr(RAM),
            size: 0x1000,
            min_page: smmu_addr::PageSize::SZ_4K
        }))
    );
    r.core.detach_device(d).unwrap();
    assert_eq!(r.core.attached_domain(d).unwrap().kind(), DomainKind::Dma);
    // iommu_map refuses DMA-API-managed domains.
    let def = r.core.default_domain(d).unwrap();
    assert_eq!(
        r.core
            .iommu_map(&def, iova(0x1000), paddr(RAM), 0x1000, Prot::READ),
        Err(CoreError::WrongKind(DomainKind::Dma))
    );
}

/// `claim_dma_owner` takes a group reference and puts it on every return — except, before
/// a6a9a5da6808 (`claim_owner_puts_group_on_error` off), the NULL-owner -EINVAL return.
#[test]
fn a_null_dma_owner_leaks_the_group_reference_only_before_a6a9a5da6808() {
    for (puts, leaked) in [(true, 0), (false, 1)] {
        let r = rig(CoreConfig {
            claim_owner_puts_group_on_error: puts,
            ..CoreConfig::default()
        });
        let sata = r
            .core
            .probe_device(platform("ahci-qoriq 3200000.sata", 5, 0x3c), r.inst)
            .unwrap();
        let g = r.core.group_of(sata).unwrap();
        assert_eq!(
            r.core.claim_dma_owner(sata, None),
            Err(CoreError::Invalid("NULL DMA owner"))
        );
        assert_eq!(r.core.group_refs_outstanding(g), Some(leaked));
        // A real owner's claim puts its reference; a second owner is refused (-EPERM).
        r.core.claim_dma_owner(sata, Some("vfio")).unwrap();
        assert_eq!(
            r.core.claim_dma_owner(sata, Some("iommufd")),
            Err(CoreError::OwnerBusy)
        );
        r.core.release_dma_owner(sata);
        r.core.claim_dma_owner(sata, Some("iommufd")).unwrap();
        assert_eq!(r.core.group_refs_outstanding(g), Some(leaked));
    }
}

/// A device's direct regions are identity-mapped in its default domain by the probe, and a
/// second member of the group finds them mapped (no warning).
#[test]
fn direct_regions_are_identity_mapped_once_per_group() {
    let r = rig(CoreConfig::default());
    let mut gpu = platform("etnaviv-gpu f0c0000.gpu", 8, 0x3e);
    gpu.direct_regions = vec![(paddr(0x9f00_0000), 0x2000)];
    let mut etnaviv = platform("etnaviv etnaviv", 9, 0x3e);
    etnaviv.direct_regions = gpu.direct_regions.clone();
    let a = r.core.probe_device(gpu, r.inst).unwrap();
    let b = r.core.probe_device(etnaviv, r.inst).unwrap();
    assert_eq!(r.core.group_of(a), r.core.group_of(b));
    assert_eq!(r.core.device_domain(a), r.core.device_domain(b));
    let dom = r.core.default_domain(a).unwrap();
    assert_eq!(phys(&r, &dom, 0x9f00_1000u64, 0), 0x9f00_1000);
    assert_eq!(phys(&r, &dom, 0x9f00_2000u64, 0), 0);
    assert_eq!(r.core.stats().warnings, 0);
}

/// A lazy unmap arms the flush-queue timer; its expiry flushes the queue, and a release of
/// the group's last device deletes the timer with the queue.
#[test]
fn the_flush_queue_timer_fires_once_armed_and_dies_with_the_group() {
    let r = rig(CoreConfig {
        strict: false,
        ..CoreConfig::default()
    });
    let nic = r
        .core
        .probe_device(pci("fsl_enetc 0000:00:00.2", 2, 0x42b), r.inst)
        .unwrap();
    assert_eq!(r.core.fq_timer_expiry(nic), Ok(false), "nothing queued");
    let iova = r
        .core
        .dma_map_page(nic, paddr(0x8000_1000), 0x1000, DmaDirection::ToDevice)
        .unwrap();
    r.core
        .dma_unmap_page(nic, iova, 0x1000, DmaDirection::ToDevice)
        .unwrap();
    assert_eq!(r.core.default_domain(nic).unwrap().fq_len(), 1);
    assert_eq!(r.core.fq_timer_expiry(nic), Ok(true));
    assert_eq!(r.core.default_domain(nic).unwrap().fq_len(), 0);
    let iova = r
        .core
        .dma_map_page(nic, paddr(0x8000_1000), 0x1000, DmaDirection::ToDevice)
        .unwrap();
    r.core
        .dma_unmap_page(nic, iova, 0x1000, DmaDirection::ToDevice)
        .unwrap();
    r.core.release_device(nic);
    assert_eq!(
        r.core.fq_timer_expiry(nic),
        Ok(false),
        "deleted with the queue"
    );
}

/// `iommu_domain_free` as Linux has it: an attached domain is freed anyway (the driver's
/// context goes at once, the group keeps the pointer), every later use is a use-after-free,
/// and dropping the last reference afterwards does not free it a second time. The safe core
/// refuses to free an attached domain.
#[test]
fn domain_free_of_an_attached_domain() {
    let r = rig(CoreConfig {
        linux_faithful: true,
        ..CoreConfig::default()
    });
    let d = r
        .core
        .probe_device(platform("etnaviv-gpu f0c0000.gpu", 0, 1), r.inst)
        .unwrap();
    let before = r.fake.live_domains();
    let dom = r.core.alloc_unmanaged(r.inst).unwrap();
    r.core.attach_device(d, &dom).unwrap();
    let group = r.core.group_of(d).unwrap();
    assert_eq!(r.core.groups_attached_to(&dom), vec![group]);
    r.core.iommu_domain_free(&dom).unwrap();
    assert!(dom.is_freed());
    assert_eq!(r.fake.live_domains(), before, "the driver freed it at once");
    let uaf = |function| CoreError::UseAfterFree {
        object: "struct iommu_domain",
        function,
    };
    assert_eq!(
        r.core
            .iommu_map(&dom, iova(0), paddr(RAM), 0x1000, Prot::READ),
        Err(uaf("iommu_map"))
    );
    assert_eq!(
        r.core.iommu_unmap(&dom, iova(0), 0x1000),
        Err(uaf("iommu_unmap"))
    );
    assert_eq!(
        r.core.attach_device(d, &dom),
        Err(uaf("iommu_attach_device"))
    );
    assert_eq!(
        r.core.iommu_domain_free(&dom),
        Err(uaf("iommu_domain_free"))
    );
    // The group still points at it: the detach is the one call that does not dereference it.
    assert_eq!(r.core.iommu_detach_device(d, &dom), Ok(true));
    drop(dom);
    assert_eq!(r.fake.live_domains(), before);
    assert_eq!(r.core.stats().warnings, 0);

    let safe = rig(CoreConfig::default());
    let d = safe
        .core
        .probe_device(platform("etnaviv-gpu f0c0000.gpu", 0, 1), safe.inst)
        .unwrap();
    let dom = safe.core.alloc_unmanaged(safe.inst).unwrap();
    safe.core.attach_device(d, &dom).unwrap();
    assert_eq!(
        safe.core.iommu_domain_free(&dom),
        Err(CoreError::DomainAttached {
            group: safe.core.group_of(d).unwrap()
        })
    );
    assert!(!dom.is_freed());
}

/// A detach of a domain the group is not attached to, and an unbind's
/// `iommu_device_unuse_default_domain` with no claim left, are kernel warnings that change
/// nothing; a bind's `use_default_domain` is refused while a user owns the group.
#[test]
fn detach_and_unuse_warn_on_misuse() {
    let r = rig(CoreConfig::default());
    let d = r
        .core
        .probe_device(platform("etnaviv-gpu f0c0000.gpu", 0, 1), r.inst)
        .unwrap();
    let a = r.core.alloc_unmanaged(r.inst).unwrap();
    let b = r.core.alloc_unmanaged(r.inst).unwrap();
    r.core.attach_device(d, &a).unwrap();
    assert_eq!(r.core.iommu_detach_device(d, &b), Ok(false));
    assert!(std::sync::Arc::ptr_eq(
        &r.core.attached_domain(d).unwrap(),
        &a
    ));
    r.core.unuse_default_domain(d);
    assert_eq!(r.core.stats().warnings, 2);
    let lines = r.log.lines();
    let warnings: Vec<&String> = lines.iter().filter(|l| l.contains("WARNING:")).collect();
    assert_eq!(warnings.len(), 2);
    assert!(warnings[0].ends_with("WARNING: at drivers/iommu/iommu.c: etnaviv-gpu f0c0000.gpu: iommu_detach_device of a domain its group is not attached to"), "{}", warnings[0]);
    assert!(warnings[1].ends_with("WARNING: at drivers/iommu/iommu.c: etnaviv-gpu f0c0000.gpu: iommu_device_unuse_default_domain with no claim on the group"), "{}", warnings[1]);
    assert_eq!(r.core.iommu_detach_device(d, &a), Ok(true));
    r.core.use_default_domain(d).unwrap();
    r.core.unuse_default_domain(d);
    r.core.claim_dma_owner(d, Some("vfio")).unwrap();
    assert_eq!(
        r.core.use_default_domain(d),
        Err(CoreError::DefaultDomainBusy)
    );
    assert_eq!(r.core.stats().warnings, 2);
}
