//! The ENETC's MSI-X messages go through the SMMU: a write of the function's stream ID to the
//! doorbell's IOVA (`iommu_dma_compose_msi_msg`), checked against Bus Master Enable like every
//! transaction. Against the SMMU model alone: blocked (USF, sGFSYNR0.WNR), bypassed (stray
//! DMA at the IOVA used as a physical address), or not issued.

use iommu::fake::FakeDriver;
use iommu::{Bus, CoreConfig, DeviceDesc, IommuCore};
use mmu500::{Mmu500, Mmu500Config};
use physmem::{FrameAllocator, PhysMem, Region};
use sim::enetc::{Enetc, EnetcConfig, MsiRoute};
use sim::RetiredContexts;
use smmu_addr::{DmaAddr, PhysAddr};
use smmu_arch::regs::{gr0, scr0};
use smmu_arch::Mmio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const DRAM: u64 = 0x8000_0000;
/// The LS1028A ITS's GITS_TRANSLATER.
const DOORBELL: u64 = 0x0603_0040;

struct Rig {
    smmu: Arc<Mmu500>,
    mem: Arc<PhysMem>,
    nic: Arc<Enetc>,
    bme: Arc<AtomicBool>,
}

/// One ENETC PF0 (stream 0x429) with one ring pair of 8 descriptors, behind an MMU-500 whose
/// sCR0 is `scr0`, with no stream mapped (the state after v6.1's shutdown released PF0).
fn rig(scr0_bits: u32) -> Rig {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(DRAM), 0x8000_0000)]).unwrap());
    let kmem = Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(DRAM), 64 << 20).unwrap());
    let core = IommuCore::new(
        CoreConfig::default(),
        mem.clone(),
        kmem.clone(),
        Arc::new(klog::MemLog::new()),
    );
    let inst = core.register(Arc::new(FakeDriver::new("arm-smmu 5000000.iommu")));
    let dev = core
        .probe_device(
            DeviceDesc::new("fsl_enetc 0000:00:00.0", Bus::Pci, 0, &[0x29]),
            inst,
        )
        .unwrap();
    let smmu = Mmu500::new(Mmu500Config::mmu500_ls1028a(), mem.clone()).unwrap();
    smmu.write32(gr0::SCR0, scr0_bits);
    let bme = Arc::new(AtomicBool::new(true));
    let cfg = EnetcConfig {
        rings: 1,
        tx_ring_size: 8,
        rx_ring_size: 8,
        ..EnetcConfig::default()
    };
    let b = bme.clone();
    let nic = Enetc::probe(
        cfg,
        dev,
        core,
        smmu.clone(),
        mem.clone(),
        kmem,
        Arc::new(RetiredContexts::default()),
        PhysAddr::new(DOORBELL),
        Box::new(move || b.load(Ordering::SeqCst)),
    )
    .unwrap();
    Rig {
        smmu,
        mem,
        nic,
        bme,
    }
}

/// Linux's sCR0 with disable_bypass = 1: unmatched streams fault.
const SCR0_FAULTING: u32 = scr0::GFRE | scr0::GFIE | scr0::USFCFG;

#[test]
fn the_message_address_is_the_doorbell_iova() {
    let r = rig(SCR0_FAULTING);
    assert_eq!(
        r.nic.msi_route(),
        MsiRoute {
            doorbell: PhysAddr::new(DOORBELL),
            address: DmaAddr::new(0xffff_e040),
        }
    );
}

/// v6.1's probe order in one PF0 with 8-descriptor rings: the control BD ring (64 × 32
/// bytes) takes the first page below 4 GiB; the RSS table's temporary buffer the next, which
/// it gives back; the doorbell's mapping takes that page again from the rcache; then
/// `enetc_open`'s transmit ring, receive ring and the first receive buffer, a page each.
#[test]
fn the_control_ring_comes_first_and_the_doorbell_reuses_the_rss_table_s_page() {
    let r = rig(SCR0_FAULTING);
    assert_eq!(r.nic.control_ring(), DmaAddr::new(0xffff_f000));
    assert_eq!(r.nic.msi_route().address, DmaAddr::new(0xffff_e040));
    assert_eq!(r.nic.rx_buffer(0, 0), Some(DmaAddr::new(0xffff_b000)));
    assert_eq!(r.nic.rx_buffer(0, 7), Some(DmaAddr::new(0xffff_4000)));
    assert_eq!(r.nic.rx_buffer(0, 8), None);
}

#[test]
fn an_msi_without_a_stream_match_is_a_blocked_write_and_raises_nothing() {
    let r = rig(SCR0_FAULTING);
    assert!(!r.nic.send_msi(0, false));
    // A USF global fault with the write's syndrome: what arm-smmu prints as
    // `Blocked unknown Stream ID 0x429` / `GFSR 0x00000002, GFSYNR0 0x00000002, GFSYNR1
    // 0x00000429`; the fault address is the doorbell's IOVA.
    assert_eq!(r.smmu.read32(gr0::SGFSR), 0x2);
    assert_eq!(r.smmu.read32(gr0::SGFSYNR0), 0x2, "WNR: a write");
    assert_eq!(r.smmu.read32(gr0::SGFSYNR1), 0x429);
    assert_eq!(r.smmu.read64(gr0::SGFAR), 0xffff_e040);
    let s = r.nic.stats();
    assert_eq!((s.msis, s.msis_lost, s.bus.blocked), (1, 1, 1));
    assert_eq!(s.bus.stray_writes, 0);
    // A received frame: its data write is blocked, then its MSI; no interrupt is raised, so
    // nothing schedules the vector's NAPI.
    r.nic.start_flood(0);
    let step = r.nic.device_step(0);
    assert!(step.busy);
    assert_eq!(step.msi, None);
    assert_eq!(r.nic.stats().msis_lost, 2);
}

#[test]
fn under_clientpd_the_msi_is_stray_dma_at_its_iova_as_a_physical_address() {
    // v6.2's shutdown: sCR0.CLIENTPD, every transaction bypasses translation.
    let r = rig(scr0::CLIENTPD | SCR0_FAULTING);
    assert!(!r.nic.send_msi(0, false));
    let s = r.nic.stats();
    assert_eq!((s.msis, s.msis_lost, s.bus.blocked), (1, 1, 0));
    assert_eq!(s.bus.stray_writes, 1);
    assert_eq!(s.bus.stray_write_addrs, vec![PhysAddr::new(0xffff_e040)]);
    // The message's data, ring vector 0's event ID (MSI-X entry 1), landed in DRAM there.
    assert_eq!(r.mem.read_u32(PhysAddr::new(0xffff_e040)).unwrap(), 1);
    assert_eq!(r.smmu.read32(gr0::SGFSR), 0);
}

#[test]
fn with_bus_master_enable_clear_no_msi_is_issued() {
    let r = rig(SCR0_FAULTING);
    r.bme.store(false, Ordering::SeqCst);
    let before = r.smmu.counters().transactions;
    assert!(!r.nic.send_msi(0, false));
    assert_eq!(r.smmu.counters().transactions, before);
    let s = r.nic.stats();
    assert_eq!((s.msis, s.msis_lost, s.bme_suppressed), (0, 0, 1));
    assert_eq!(r.smmu.read32(gr0::SGFSR), 0);
}
