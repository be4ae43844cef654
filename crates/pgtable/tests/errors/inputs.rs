//! Bad arguments and bad configurations: each is its typed error before anything is written.

use super::*;

#[test]
fn bad_page_size() {
    let mut pt = table(48, 48);
    // A size that is not a power of two cannot be asked for at all any more.
    for bytes in [0, 0x3000, u64::MAX] {
        assert!(PageSize::new(bytes).is_err(), "{bytes:#x}");
    }
    for bytes in [0x800, 0x2000, 0x1_0000, 1 << 39] {
        let pgsize = PageSize::new(bytes).unwrap();
        assert_eq!(
            pt.map_pages(Iova::new(0), PhysAddr::new(0), pgsize, PageCount::ONE, RW),
            Err(PgTableError::BadPageSize {
                pgsize,
                bitmap: PGSIZES_4K
            })
        );
        assert_eq!(
            pt.unmap_pages(Iova::new(0), pgsize, PageCount::ONE, &mut Gather::new()),
            0
        );
    }
    assert_eq!(
        PgTableError::BadPageSize {
            pgsize: PageSize::new(0x2000).unwrap(),
            bitmap: PGSIZES_4K
        }
        .to_string(),
        "page size 0x2000 is not in the page-size bitmap 0x40201000 (-EINVAL)"
    );
}

#[test]
fn iova_beyond_ias() {
    let mut pt = table(32, 48);
    assert_eq!(
        pt.map_pages(
            Iova::new(1 << 32),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::IovaRange {
            iova: Iova::new(1 << 32),
            size: SZ_4K,
            ias: 32
        })
    );
    // The last page fits; one more page does not, nor does an overflowing count.
    assert_eq!(
        pt.map_pages(
            Iova::new((1 << 32) - SZ_4K),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Ok(SZ_4K)
    );
    assert!(matches!(
        pt.map_pages(
            Iova::new((1 << 32) - 2 * SZ_4K),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::new(3),
            RW
        ),
        Err(PgTableError::IovaRange { .. })
    ));
    assert!(matches!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::new(u64::MAX),
            RW
        ),
        Err(PgTableError::IovaRange { .. })
    ));
    assert_eq!(
        pt.unmap_pages(
            Iova::new(1 << 32),
            PageSize::SZ_4K,
            PageCount::ONE,
            &mut Gather::new()
        ),
        0
    );
    assert_eq!(
        pt.iova_to_phys(Iova::new(1 << 32))
            .map_or(0, PhysAddr::as_u64),
        0,
        "no aliasing of out-of-range IOVAs"
    );
    assert_eq!(
        pt.iova_to_phys(Iova::new(u64::MAX))
            .map_or(0, PhysAddr::as_u64),
        0
    );
    // Unmap is clipped at the end of the IAS.
    assert_eq!(
        pt.unmap_pages(
            Iova::new((1 << 32) - SZ_4K),
            PageSize::SZ_4K,
            PageCount::new(10),
            &mut Gather::new()
        ),
        SZ_4K
    );
}

#[test]
fn pa_beyond_oas() {
    let mut pt = table(48, 40);
    assert_eq!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(1 << 40),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::PaddrRange {
            paddr: PhysAddr::new(1 << 40),
            size: SZ_4K,
            oas: 40
        })
    );
    assert!(matches!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new((1 << 40) - SZ_4K),
            PageSize::SZ_4K,
            PageCount::new(2),
            RW
        ),
        Err(PgTableError::PaddrRange { .. })
    ));
    assert_eq!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new((1 << 40) - SZ_4K),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Ok(SZ_4K)
    );
}

#[test]
fn misaligned_and_no_access() {
    let mut pt = table(48, 48);
    assert_eq!(
        pt.map_pages(
            Iova::new(0x1000),
            PhysAddr::new(0),
            PageSize::SZ_2M,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::Misaligned {
            iova: Iova::new(0x1000),
            paddr: PhysAddr::new(0),
            pgsize: PageSize::SZ_2M
        })
    );
    assert!(matches!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(0x10),
            PageSize::SZ_4K,
            PageCount::ONE,
            RW
        ),
        Err(PgTableError::Misaligned { .. })
    ));
    assert_eq!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::ONE,
            Prot::CACHE | Prot::NOEXEC
        ),
        Err(PgTableError::NoAccess)
    );
    assert_eq!(
        pt.unmap_pages(
            Iova::new(0x800),
            PageSize::SZ_4K,
            PageCount::ONE,
            &mut Gather::new()
        ),
        0
    );
    assert_eq!(
        pt.map_pages(
            Iova::new(0),
            PhysAddr::new(0),
            PageSize::SZ_4K,
            PageCount::new(0),
            RW
        ),
        Ok(0)
    );
    assert_eq!(
        pt.unmap_pages(
            Iova::new(0),
            PageSize::SZ_4K,
            PageCount::new(0),
            &mut Gather::new()
        ),
        0
    );
}

#[test]
fn bad_configurations_are_errors() {
    let a = allocator();
    let err = |c: PgTableRequest| match PageTable::new(c, a.clone(), NoTlb) {
        Err(PgTableError::BadConfig(e)) => {
            // The user sees the typed reason behind one fixed prefix.
            let shown = PgTableError::BadConfig(e).to_string();
            assert_eq!(shown, format!("unsupported page-table configuration: {e}"));
            Some((e, e.to_string()))
        }
        _ => None,
    };
    assert_eq!(
        err(PgTableRequest::new(Stage::S1, SZ_2M, 48, 48)),
        Some((
            PgTableRequestError::NoGranule { bitmap: SZ_2M },
            "page-size bitmap 0x200000 has no usable granule".into()
        ))
    );
    assert_eq!(
        err(PgTableRequest::new(Stage::S1, 0, 48, 48)),
        Some((
            PgTableRequestError::NoGranule { bitmap: 0 },
            "page-size bitmap 0x0 has no usable granule".into()
        ))
    );
    assert_eq!(
        err(PgTableRequest::new(Stage::S1, PGSIZES_4K, 31, 48)),
        Some((
            PgTableRequestError::IasTooSmall { ias: 31 },
            "ias 31 below 32 bits".into()
        ))
    );
    assert_eq!(
        err(PgTableRequest::new(Stage::S1, PGSIZES_4K, 48, 39)),
        Some((
            PgTableRequestError::UnsupportedOas { oas: 39 },
            "oas 39 is not 32, 36, 40, 42, 44 or 48 bits".into()
        ))
    );
    let mut s2 = PgTableRequest::new(Stage::S2, PGSIZES_64K, 48, 48);
    s2.quirks.arm_ns = true;
    assert_eq!(
        err(s2),
        Some((
            PgTableRequestError::Stage2Quirks { quirks: s2.quirks },
            "quirks are stage-1 only".into()
        ))
    );
    assert_eq!(a.outstanding_bytes(), 0);
}
