//! The LS1028A MMU-500's shutdown under each policy: Linux 6.1's unregister, 6.2's disable, and
//! the quiesce.

use super::*;

#[test]
fn shutdown_linux61_unregisters_then_clientpd() {
    let (r, _dom, _) = ls1028a_attached(ShutdownPolicy::Linux61);
    let s = r.smmu.clone();
    let bus = r.bus.clone();
    let mut writes_at_unregister = None;
    r.smmu.shutdown(&mut || {
        writes_at_unregister = Some(bus.writes().len());
        s.release_device(DeviceId(1));
    });
    assert_eq!(writes_at_unregister, Some(0));
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, FAULT), w(0x800, 0x7c00_0029), w(0x0, 0x1)],
    );
    assert_eq!(
        r.log.lines().last().unwrap(),
        "arm-smmu 5000000.iommu: disabling translation"
    );
}

#[test]
fn shutdown_linux62_only_disables_translation_remove_unregisters() {
    let (r, _dom, _) = ls1028a_attached(ShutdownPolicy::Linux62);
    let mut called = 0;
    r.smmu.shutdown(&mut || called += 1);
    assert_eq!(called, 0);
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0x0, 0x1)],
    );
    let n = r.log.lines().len();
    assert_eq!(r.log.lines()[n - 1], format!("{LS}: disabling translation"));
    r.bus.clear();
    let s = r.smmu.clone();
    r.smmu.remove(&mut || {
        called += 1;
        s.release_device(DeviceId(1));
    });
    assert_eq!(called, 1);
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, FAULT), w(0x800, 0x7c00_0029), w(0x0, 0x1)],
    );
}

#[test]
fn shutdown_quiesce_blocks_every_stream() {
    let params = ModuleParams {
        disable_bypass: false,
        force_stage: 0,
    };
    let r = ls1028a(params, ShutdownPolicy::Quiesce);
    r.smmu.device_reset();
    r.smmu.test_smr_masks();
    r.smmu
        .probe_device(&master(1, "m", &[0x7c00_0029]))
        .unwrap();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(1)).unwrap();
    r.bus.clear();
    let mut called = 0;
    r.smmu.shutdown(&mut || called += 1);
    assert_eq!(called, 0, "Quiesce never unregisters on shutdown");
    let mut want: Vec<W> = (0..128).map(|i| w(0xc00 + 4 * i, FAULT)).collect();
    want.push(w(0x0, 0x0020_1c36)); // CLIENTPD stays clear, USFCFG set
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &want,
    );
    // Nothing can re-open a stream afterwards, even with disable_bypass=0.
    assert_eq!(r.smmu.attach_dev(dom, DeviceId(1)), Err(DriverError::Busy));
    assert_eq!(
        r.smmu.probe_device(&master(2, "n", &[0x7c00_0030])),
        Err(DriverError::Busy)
    );
    r.bus.clear();
    r.smmu.release_device(DeviceId(1));
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, FAULT), w(0x800, 0x7c00_0029)],
    );
    // The DMA API keeps working for software.
    assert_eq!(
        r.smmu.map_pages(
            dom,
            Iova::new(0x4000),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ
        ),
        Ok(0x1000)
    );
}
