//! The TLB flush when a domain is freed: its writes, and on the model the stale-entry DMA it
//! prevents when a new domain reuses the bank.

use super::*;

#[test]
fn freeing_a_stage2_domain_flushes_by_vmid_with_a_global_sync() {
    let p = ModuleParams::from_cmdline("arm-smmu.force_stage=2").unwrap();
    let r = fake_with(LinuxVersion::V6_2.behaviour(), p);
    r.smmu.reset_at_probe();
    r.smmu.probe_device(&enetc()).unwrap();
    let dom = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(dom, DeviceId(4)).unwrap();
    assert_eq!(r.smmu.domain_context_bank(dom), Some(0));
    r.bus.clear();
    r.smmu.domain_free(dom);
    // S2 on bank 0 has VMID 1 (cbndx + 1): arm_smmu_tlb_inv_context_s2.
    assert_eq!(
        r.bus.ops(),
        vec![
            wr(ls_cb(0), 0),       // CB0.SCTLR = 0
            wr(0x64, 1),           // GR0 TLBIVMID = 1
            wr(0x70, 0xffff_ffff), // sTLBGSYNC
            rd(0x74, 0),           // sTLBGSTATUS: done
        ]
    );
    assert_eq!(r.frames.outstanding_bytes(), 0);
}

#[test]
fn a_new_domain_on_a_freed_bank_never_hits_the_freed_domains_tlb_entries() {
    // The sequence of issue 17: a cached translation, the domain freed, a new domain given the
    // same context bank (and so the same ASID), DMA to the old IOVA.
    let r = on_model(
        Mmu500Config::mmu500_ls1028a(),
        &FirmwareDesc::ls1028a(),
        LinuxVersion::V6_12.behaviour(),
    );
    let (old_iova, old_buf) = (0x1000_0000, RAM_BASE + 0xa0_0000);
    r.smmu.probe_device(&enetc()).unwrap();
    let first = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(first, DeviceId(4)).unwrap();
    r.smmu
        .map_pages(
            first,
            Iova::new(old_iova),
            PhysAddr::new(old_buf),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    r.model
        .dma_write(ENETC_SID, Iova::new(old_iova + 0x40), b"ping")
        .unwrap();
    let t = r
        .model
        .dma_write(ENETC_SID, Iova::new(old_iova + 0x40), b"ping")
        .unwrap();
    let Translation::Translated {
        tlb_hit: true,
        epoch: first_epoch,
        cb: 0,
        ..
    } = t[0]
    else {
        panic!("not a cached translation: {t:?}");
    };
    // Freed without unmapping (the domain's tables go with it), as a default domain is when its
    // group goes away.
    r.smmu.domain_free(first);
    let freed_epoch = r.model.context_epoch(0).unwrap();
    assert!(freed_epoch > first_epoch);
    let second = r.smmu.domain_alloc(DomainKind::Dma).unwrap();
    r.smmu.attach_dev(second, DeviceId(4)).unwrap();
    assert_eq!(
        r.smmu.domain_context_bank(second),
        Some(0),
        "same bank, same ASID"
    );
    let new_buf = RAM_BASE + 0xb0_0000;
    r.smmu
        .map_pages(
            second,
            Iova::new(0x2000_0000),
            PhysAddr::new(new_buf),
            PageSize::SZ_4K,
            PageCount::new(1),
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    r.log.clear();
    r.mem
        .write_bytes(PhysAddr::new(old_buf + 0x40), b"....")
        .unwrap();
    let e = r
        .model
        .dma_write(ENETC_SID, Iova::new(old_iova + 0x40), b"late")
        .unwrap_err();
    assert!(
        matches!(
            e,
            BusError::Fault {
                fault: DmaFault::Context { cb: 0, .. },
                done: 0
            }
        ),
        "{e:?}"
    );
    let mut back = [0u8; 4];
    r.mem
        .read_bytes(PhysAddr::new(old_buf + 0x40), &mut back)
        .unwrap();
    assert_eq!(&back, b"....", "nothing reached the freed buffer");
    // The new domain's tables have no level-2 entry there: a translation fault at level 2.
    assert_eq!(
        r.log.lines()[0],
        format!("{LS}: Unhandled context fault: fsr=0x402, iova=0x10000040, fsynr=0x12, cbfrsynra=0x429, cb=0")
    );
    // The new domain's own DMA is translated by tables newer than the free.
    let t = r
        .model
        .dma_write(ENETC_SID, Iova::new(0x2000_0000), b"pong")
        .unwrap();
    let Translation::Translated { epoch, pa, .. } = t[0] else {
        panic!("{t:?}");
    };
    assert!(epoch > freed_epoch);
    assert_eq!(pa, PhysAddr::new(new_buf));
}
