//! The arm-smmu driver on the MMU-500 model of the LS1028A, used the way the kernel uses it:
//! probe and reset the SMMU, register it with the IOMMU core, add the ENETC (stream ID 0x429)
//! to an IOMMU group with a DMA domain, `dma_map_page` a receive buffer, and let the "NIC"
//! write through the SMMU. Prints the driver's log, the translation, and every register write
//! the driver made while attaching and mapping.
//!
//! `cargo run -p arm-smmu --example driver_on_model`

use arm_smmu::{
    ArmSmmu, FirmwareDesc, LinuxVersion, LpaeTables, ModuleParams, RateLimits, SmmuEnv,
};
use iommu::{Bus, CoreConfig, DeviceDesc, DmaDirection, IommuCore};
use klog::MemLog;
use mmu500::{Mmu500, Mmu500Config, TraceEvent, Translation};
use physmem::PhysAddr;
use physmem::{FrameAllocator, PhysMem, Region};
use std::sync::{Arc, Mutex};

const RAM: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 64 << 20;
/// The ENETC port 0's stream ID as it reaches the SMMU (ICID 0x29 plus TBU bits).
const ENETC_SID: u32 = 0x429;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM), RAM_SIZE)])?);
    // Page tables from one pool, coherent DMA buffers from another.
    let tables = Arc::new(FrameAllocator::new(
        mem.clone(),
        PhysAddr::new(RAM + (32 << 20)),
        16 << 20,
    )?);
    let coherent = Arc::new(FrameAllocator::new(
        mem.clone(),
        PhysAddr::new(RAM + (48 << 20)),
        16 << 20,
    )?);
    let model = Mmu500::new(Mmu500Config::mmu500_ls1028a(), mem.clone())?;
    let writes = Arc::new(Mutex::new(Vec::new()));
    let w = writes.clone();
    model.set_event_sink(Arc::new(move |e: &TraceEvent| {
        if let TraceEvent::MmioWrite {
            offset,
            value,
            name,
            ..
        } = e
        {
            if let Ok(mut w) = w.lock() {
                w.push((*offset, *value, name.map(|n| n.to_string())));
            }
        }
    }));
    let log = Arc::new(MemLog::new());

    // Probe as Linux 6.1 does on the LS1028A (default parameters: disable_bypass=1).
    let smmu = ArmSmmu::probe_and_reset(
        &FirmwareDesc::ls1028a(),
        ModuleParams::default(),
        LinuxVersion::V6_1.behaviour(),
        SmmuEnv {
            mmio: model.clone(),
            log: log.clone(),
            frames: tables,
            tables: Arc::new(LpaeTables::SAFE),
            limits: Arc::new(RateLimits::default()),
        },
    )?;
    let probe_writes = writes.lock().map(|w| w.len()).unwrap_or(0);

    // The IOMMU core: register the SMMU, then the ENETC as a PCI master behind it.
    let core = IommuCore::new(CoreConfig::default(), mem.clone(), coherent, log.clone());
    let inst = core.register(smmu.clone());
    let mut desc = DeviceDesc::new("fsl_enetc 0000:00:00.0", Bus::Pci, 0, &[0x7c00_0029]);
    desc.coherent = true;
    let enetc = core.probe_device(desc, inst)?;

    // A 1500-byte receive buffer somewhere in DRAM, mapped for the device to write.
    let buf = PhysAddr::new(RAM + (8 << 20) + 0x40);
    let dma_addr = core.dma_map_page(enetc, buf, 1500, DmaDirection::FromDevice)?;

    println!("driver log:");
    for line in log.lines() {
        println!("  {line}");
    }
    println!("\ndma_map_page(pa {buf:#x}, 1500 bytes) = DMA address {dma_addr:#x}");

    // The NIC writes a frame at the DMA address; the SMMU translates it.
    let frame = b"ICMP echo request, 64 bytes";
    let translations = model.dma_write(ENETC_SID, dma_addr.bus_iova(), frame)?;
    for t in &translations {
        match t {
            Translation::Translated {
                pa,
                cb,
                leaf_size,
                tlb_hit,
                ..
            } => println!(
                "NIC write via stream {ENETC_SID:#x}: IOVA {dma_addr:#x} -> PA {pa:#x} by context \
                 bank {cb} ({leaf_size:#x} page, TLB {})",
                if *tlb_hit { "hit" } else { "miss, table walk" }
            ),
            Translation::Bypass { pa, reason } => {
                println!("NIC write via stream {ENETC_SID:#x}: BYPASSED to {pa:#x} ({reason:?})")
            }
        }
    }
    let mut landed = vec![0u8; frame.len()];
    mem.read_bytes(buf, &mut landed)?;
    println!(
        "memory at {buf:#x}: {:?} ({})",
        String::from_utf8_lossy(&landed),
        if landed == frame {
            "the frame, translated"
        } else {
            "NOT the frame"
        }
    );

    println!(
        "\nregister writes: {probe_writes} during probe and reset; while attaching and mapping:"
    );
    if let Ok(w) = writes.lock() {
        for (offset, value, name) in w.iter().skip(probe_writes) {
            println!(
                "  {:<16} (+{offset:#08x}) <- {value:#x}",
                name.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(())
}
