//! The LS1028A MMU-500's attach, map, unmap and flush, the typed map errors, TCR packing, and
//! release back to the reset type.

use super::*;

#[test]
fn ls1028a_attach_map_unmap_flush() {
    let (r, dom, _) = ls1028a_attached(ShutdownPolicy::Linux61);
    let s = &r.smmu;
    let iova = 0x1000_0000;
    let pa = RAM_BASE + 0x5000;
    assert_eq!(
        s.map_pages(
            dom,
            Iova::new(iova),
            PhysAddr::new(pa),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE
        ),
        Ok(0x1000)
    );
    assert!(r.bus.writes().is_empty(), "map issues no register write");
    // LS1028A preset has ATOSNS set: software walk, no register access.
    assert_eq!(
        s.iova_to_phys(dom, Iova::new(iova + 0x123))
            .map_or(0, PhysAddr::as_u64),
        pa + 0x123
    );
    assert!(r.bus.ops().is_empty());
    let mut g = Gather::new();
    assert_eq!(
        s.unmap_pages(
            dom,
            Iova::new(iova),
            PageSize::SZ_4K,
            PageCount::new(1),
            &mut g
        ),
        0x1000
    );
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[q(ls_cb(0) + 0x620, iova >> 12)],
    );
    s.iotlb_sync(dom, &mut g);
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[
            q(ls_cb(0) + 0x620, iova >> 12),
            w(ls_cb(0) + 0x7f0, 0xffff_ffff),
        ],
    );
    assert_eq!(
        s.iova_to_phys(dom, Iova::new(iova))
            .map_or(0, PhysAddr::as_u64),
        0
    );
    r.bus.clear();
    s.flush_iotlb_all(dom);
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(ls_cb(0) + 0x610, 0), w(ls_cb(0) + 0x7f0, 0xffff_ffff)],
    );
    let geo = s.geometry(dom).unwrap();
    assert_eq!(
        (geo.aperture_start, geo.aperture_end),
        (Iova::ZERO, Iova::new((1 << 48) - 1))
    );
    assert_eq!(geo.pgsize_bitmap, 0x4020_1000);
    // Freeing the domain (arm_smmu_destroy_domain_context): SCTLR = 0 disables the bank, then
    // free_io_pgtable_ops flushes it (tlb_flush_all: TLBIASID = ASID 0, TLBSYNC, poll
    // TLBSTATUS until SACTIVE clears), then the tables go back.
    r.bus.clear();
    s.domain_free(dom);
    let op = |write: bool, offset: u64, value: u64| BusOp {
        write,
        width: 32,
        offset,
        value,
    };
    assert_eq!(
        r.bus.ops(),
        vec![
            op(true, ls_cb(0), 0),                   // CB0.SCTLR = 0
            op(true, ls_cb(0) + 0x610, 0),           // CB0.TLBIASID = 0
            op(true, ls_cb(0) + 0x7f0, 0xffff_ffff), // CB0.TLBSYNC
            op(false, ls_cb(0) + 0x7f4, 0),          // CB0.TLBSTATUS: done
        ]
    );
    assert_eq!(r.frames.outstanding_bytes(), 0);
}

#[test]
fn map_errors_are_typed() {
    let (r, dom, _) = ls1028a_attached(ShutdownPolicy::Linux61);
    let s = &r.smmu;
    s.map_pages(
        dom,
        Iova::new(0x2000),
        PhysAddr::new(RAM_BASE),
        PageSize::SZ_4K,
        PageCount::new(1),
        Prot::READ,
    )
    .unwrap();
    assert_eq!(
        s.map_pages(
            dom,
            Iova::new(0x2000),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ
        ),
        Err(DriverError::PgTable(PgTableError::Exists {
            iova: Iova::new(0x2000)
        }))
    );
    assert!(matches!(
        s.map_pages(
            dom,
            Iova::new(1 << 48),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ
        ),
        Err(DriverError::PgTable(PgTableError::IovaRange { .. }))
    ));
    let unattached = s.domain_alloc(DomainKind::Dma).unwrap();
    assert_eq!(
        s.map_pages(
            unattached,
            Iova::new(0),
            PhysAddr::new(RAM_BASE),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ
        ),
        Err(DriverError::NoDevice)
    );
    assert_eq!(
        s.unmap_pages(
            unattached,
            Iova::new(0),
            PageSize::SZ_4K,
            PageCount::new(1),
            &mut Gather::new()
        ),
        0
    );
}

#[test]
fn tcr_packing_matches_pgtable() {
    // Differential: the driver packs TCR/TCR2 itself (as Linux's arm_smmu_lpae_tcr does); the
    // pgtable crate computes the same registers independently.
    let (r, _dom, _) = ls1028a_attached(ShutdownPolicy::Linux61);
    drop(r);
    let cfg = pgtable::PgTableCfg::new(pgtable::PgTableRequest::new(
        pgtable::Stage::S1,
        0x6131_1000,
        48,
        48,
    ))
    .unwrap();
    assert_eq!(cfg.smmu_tcr(), 0x0080_3510);
    assert_eq!(cfg.smmu_tcr2(), 0x0003_8015);
    let s2 = pgtable::PgTableCfg::new(pgtable::PgTableRequest::new(
        pgtable::Stage::S2,
        0x4020_1000,
        44,
        44,
    ))
    .unwrap();
    assert_eq!(s2.vtcr(), 0x8004_3594);
}

#[test]
fn release_returns_entries_to_reset_type_and_shares_groups() {
    let (r, dom, _) = ls1028a_attached(ShutdownPolicy::Linux61);
    let s = &r.smmu;
    // A second master whose pattern is covered by entry 0 shares it (and its group).
    s.probe_device(&master(2, "fsl_enetc 0000:00:00.1", &[0x0400_0429]))
        .unwrap();
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, 0x0), w(0x800, 0xfc00_0029)],
    );
    let k1 = s.device_group(DeviceId(1)).unwrap().unwrap();
    assert_eq!(s.device_group(DeviceId(2)), Ok(Some(k1)));
    // Partial overlap refused, nothing written.
    r.bus.clear();
    assert_eq!(
        s.probe_device(&master(3, "x", &[0x0000_0429, 0x0001_0028])),
        Err(DriverError::StreamMatchOverlap {
            sid: 0x28,
            mask: 0x1,
            sme: 0
        })
    );
    assert!(r.bus.writes().is_empty());
    // Out-of-range stream ID: Linux's message with the master's prefix.
    assert_eq!(
        s.probe_device(&master(4, "dev 4", &[0x8000])),
        Err(DriverError::StreamIdRange {
            sid: 0x8000,
            limit: 0x7fff
        })
    );
    assert_eq!(
        r.log.lines().last().unwrap(),
        "dev 4: stream ID 0x8000 out of range for SMMU (0x7fff)"
    );
    r.bus.clear();
    s.release_device(DeviceId(2));
    assert!(r.bus.writes().is_empty(), "entry still referenced");
    s.release_device(DeviceId(1));
    assert_writes(
        &mmu500::Mmu500Config::mmu500_ls1028a(),
        &r.bus.writes(),
        &[w(0xc00, FAULT), w(0x800, 0x7c00_0029)],
    );
    let _ = dom;
}
