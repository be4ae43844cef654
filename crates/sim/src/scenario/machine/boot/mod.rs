//! Building the machine and booting it (single-threaded, before the actors start), and the MMU-500
//! model configuration for an SMMU node.

use super::{
    Machine, MachineSetupError, NextKernel, SavedParts, DEFAULT_DRAM, MAX_DRAM_PER_REGION,
};
use crate::dmesg::Dmesg;
use crate::exec::Exec;
use crate::firmware::FirmwareLoader;
use crate::kernel::{BootedBoard, Kernel};
use crate::mmio_log::MmioLog;
use crate::scenario::timeline::{Timeline, TracedLog};
use crate::scenario::RebootConfig;
use arm_smmu::table::LpaeTables;
use arm_smmu::RateLimits;
use iommu::{CoreConfig, IommuCore};
use klog::Printk;
use physmem::{AllocError, FrameAllocator, PhysAddr, PhysMem, Region};
use smmu_arch::FaultIrq;
use smmu_sync::atomic::AtomicBool;
use smmu_sync::{Arc, Mutex};

mod masters;
mod smmus;

use smmus::{iommu_id_of, Smmus};

/// The board's DRAM banks as the simulated memory's regions (each capped at
/// `MAX_DRAM_PER_REGION`). A device tree that leaves DRAM to the bootloader (the KBox's does)
/// gets `default_bank`, the one the board's firmware usually adds.
pub(crate) fn dram_regions(board: &crate::Board, default_bank: Region) -> Vec<Region> {
    let mut regions: Vec<Region> = board
        .memory
        .iter()
        .map(|m| Region::new(m.base, m.size.min(MAX_DRAM_PER_REGION)))
        .collect();
    if regions.is_empty() {
        regions.push(default_bank);
    }
    regions
}

/// Build the machine and boot it (single-threaded: before the actors start), one phase after
/// the other in the order Linux takes them.
pub(in crate::scenario) fn boot(cfg: &RebootConfig) -> Result<Machine, MachineSetupError> {
    let board = &cfg.board;
    let mmio_log = cfg.mmio_log.then(|| Arc::new(MmioLog::new()));
    if let Some(l) = &mmio_log {
        l.phase("boot");
    }
    let log = Arc::new(Dmesg::new());
    log.set_timestamps(cfg.timestamps);
    let Memory {
        mem,
        tables,
        coherent,
        kmem,
    } = memory(board)?;
    let pools = vec![tables.clone(), coherent.clone(), kmem.clone()];
    let (kernel, timeline, printk) = start_kernel(&log);
    // Every simulated kernel is a Linux kernel, so its page tables check input as io-pgtable-arm
    // does. quiesce is a shutdown policy on top of such a kernel and does not change the
    // page-table layer (one axis, one option); the strict checks (`LpaeTables::SAFE`) are a
    // library mode for users of pgtable, not a simulated kernel.
    let lpae = arm_smmu::table::LpaeTables::LINUX;
    let core = iommu_core(cfg, &mem, coherent, &printk);

    let booted = crate::kernel::register_board(&kernel, board);
    let limits = Arc::new(RateLimits::default());
    let pending_irqs: Arc<Mutex<Vec<(usize, FaultIrq)>>> = Arc::new(Mutex::new(Vec::new()));
    let exec = Arc::new(Exec::new(board.cpus));
    // printk learns where it runs (the console owner) from the execution model.
    let ctx_exec = exec.clone();
    log.set_context_source(Arc::new(move || ctx_exec.current_context()));
    let firmware = firmware_loader(cfg, &kernel, &log, &exec);
    let b = Booting {
        cfg,
        mmio_log,
        log,
        mem,
        tables,
        kmem,
        kernel,
        printk,
        lpae,
        core,
        booted,
        exec,
        pending_irqs,
    };
    let smmus = b.probe_smmus(&limits)?;
    let dma_cfg = b.dma_configure(&smmus);
    let iommu_id = iommu_id_of(dma_cfg.clone());

    // The flooded NIC, if the board has one: the first fsl_enetc function behind an SMMU.
    let nic_idx = board
        .masters
        .iter()
        .position(|m| m.driver.as_deref() == Some("fsl_enetc") && m.attached)
        .filter(|&i| {
            board
                .masters
                .get(i)
                .and_then(|m| smmus.model_of(m))
                .is_some()
        });
    let enetc_drv = b.nic_driver(&smmus, nic_idx, &iommu_id)?;
    let (engine_drvs, engine_order) = b.engine_drivers(&smmus, nic_idx, &iommu_id)?;
    b.probe_masters(nic_idx, &enetc_drv, &engine_drvs);
    let (nic, engines) = b.probed(&enetc_drv, &engine_drvs, engine_order)?;

    let Booting {
        mmio_log,
        log,
        mem,
        core,
        tables,
        kernel,
        printk,
        lpae,
        booted,
        exec,
        pending_irqs,
        ..
    } = b;
    let Smmus {
        drivers,
        next_smmus,
        retired,
        ..
    } = smmus;
    let next_kernel = NextKernel {
        smmus: next_smmus,
        params: cfg.cmdline.smmu,
        behaviour: cfg.kernel.driver_behaviour(),
        printk,
        log: log.clone(),
        tables,
        lpae,
        mmio_log: mmio_log.clone(),
    };
    let nic_name = nic_idx
        .and_then(|i| booted.masters.get(i))
        .map(|&d| kernel.device_name(d));
    Ok(Machine {
        nic_name,
        kernel,
        log,
        nic,
        hardware_name: board.hardware_name(),
        trigger_done: AtomicBool::new(false),
        engines,
        crash: Mutex::new(None),
        exec,
        build: cfg.build,
        kasan_reported: smmu_sync::atomic::AtomicU64::new(0),
        mld_interval_ns: cfg.nic.mld_interval_ns,
        mld_armed: AtomicBool::new(false),
        pending_irqs,
        drivers: Mutex::new(drivers),
        timeline,
        next_kernel,
        new_kernel: AtomicBool::new(false),
        mmio_log,
        firmware,
        saved: SavedParts {
            mem,
            pools,
            retired,
            core,
            dma_cfg,
        },
    })
}

/// The simulated memory and the kernel's pools in it.
struct Memory {
    mem: Arc<PhysMem>,
    /// Page tables.
    tables: Arc<FrameAllocator>,
    /// Coherent DMA.
    coherent: Arc<FrameAllocator>,
    /// Packet buffers.
    kmem: Arc<FrameAllocator>,
}

/// Linux: `arm64_memblock_init` takes the DRAM banks from the device tree and the allocators
/// take over; here the banks become the simulated memory and its pools are carved out.
fn memory(board: &crate::Board) -> Result<Memory, MachineSetupError> {
    let regions = dram_regions(board, DEFAULT_DRAM);
    let dram = regions.first().copied().unwrap_or(DEFAULT_DRAM);
    let mem = Arc::new(PhysMem::new(&regions).map_err(AllocError::from)?);
    // Kernel memory pools at the bottom of DRAM: page tables, coherent DMA, packet buffers.
    let pool = |off: u64, size: u64| {
        FrameAllocator::new(mem.clone(), PhysAddr::new(dram.base.as_u64() + off), size)
            .map(Arc::new)
            .map_err(MachineSetupError::Memory)
    };
    let tables = pool(0x10_0000, 0x40_0000)?;
    let coherent = pool(0x50_0000, 0x40_0000)?;
    // Packet buffers: room for two full rings of the largest size.
    let kmem = pool(0x90_0000, 0x400_0000)?;
    Ok(Memory {
        mem,
        tables,
        coherent,
        kmem,
    })
}

/// Linux: `start_kernel` brings up the core kernel and printk; kvm's reboot notifier is
/// registered by its initcall. Here: the kernel model, the timeline and the printk that
/// records into both.
fn start_kernel(log: &Arc<Dmesg>) -> (Arc<Kernel>, Arc<Timeline>, Arc<dyn Printk>) {
    let kernel = Arc::new(Kernel::new(log.clone()));
    kernel.register_reboot_notifier(crate::kernel::kvm_reboot_notifier());
    let timeline = Arc::new(Timeline {
        clock: log.clone(),
        recording: AtomicBool::new(false),
        events: Mutex::new(Vec::new()),
    });
    let printk: Arc<dyn Printk> = Arc::new(TracedLog {
        dmesg: log.clone(),
        timeline: timeline.clone(),
    });
    (kernel, timeline, printk)
}

/// Linux: `iommu_subsys_init` sets the default domain type and the strict mode from the
/// command line before any IOMMU driver registers.
fn iommu_core(
    cfg: &RebootConfig,
    mem: &Arc<PhysMem>,
    coherent: Arc<FrameAllocator>,
    printk: &Arc<dyn Printk>,
) -> Arc<IommuCore> {
    IommuCore::new(
        CoreConfig {
            strict: cfg.cmdline.strict,
            passthrough: cfg.cmdline.passthrough,
            linux_faithful: cfg.dma_core == crate::scenario::DmaCore::Linux,
            group_default_domain_offset: cfg.build.group_default_domain_offset,
            ..CoreConfig::default()
        },
        mem.clone(),
        coherent,
        printk.clone(),
    )
}

/// Linux: the firmware loader's initcall registers its reboot notifier (after kvm's), and
/// cfg80211 asks for `regulatory.db` from the boot CPU.
fn firmware_loader(
    cfg: &RebootConfig,
    kernel: &Arc<Kernel>,
    log: &Arc<Dmesg>,
    exec: &Arc<Exec>,
) -> Arc<FirmwareLoader> {
    // cfg80211's regulatory.db request, made from the boot CPU, waits in the firmware
    // loader's sysfs fallback; the loader's reboot notifier (registered after kvm's: kvm's
    // initcall links first) aborts it and wakes its work.
    let firmware = Arc::new(crate::firmware::FirmwareLoader::default());
    if cfg.build.regdb_fallback_pending {
        firmware.request_with_fallback(crate::scenario::cpu::REGDB, 0, log.now_ns());
    }
    {
        let (fw, gic) = (firmware.clone(), exec.clone());
        kernel.register_reboot_notifier(Box::new(move |k: &Kernel, _| {
            for cpu in fw.kill_pending(k.log().now_ns()) {
                gic.wake_work(cpu, crate::scenario::cpu::WORK_FW_FALLBACK);
            }
        }));
    }
    firmware
}

/// What the boot phases after the kernel core share.
struct Booting<'a> {
    cfg: &'a RebootConfig,
    mmio_log: Option<Arc<MmioLog>>,
    log: Arc<Dmesg>,
    mem: Arc<PhysMem>,
    tables: Arc<FrameAllocator>,
    kmem: Arc<FrameAllocator>,
    kernel: Arc<Kernel>,
    printk: Arc<dyn Printk>,
    lpae: LpaeTables,
    core: Arc<IommuCore>,
    booted: BootedBoard,
    exec: Arc<Exec>,
    pending_irqs: Arc<Mutex<Vec<(usize, FaultIrq)>>>,
}

/// The model configuration for an SMMU node.
pub fn model_config(desc: &crate::SmmuDesc) -> mmu500::Mmu500Config {
    let mut c = match desc.matched.as_str() {
        "arm,mmu-401" | "arm,mmu-400" | "arm,smmu-v1" => mmu500::Mmu500Config::mmu401(),
        "arm,mmu-500" => mmu500::Mmu500Config::mmu500_ls1028a(),
        _ => mmu500::Mmu500Config::smmuv2_generic(),
    };
    // The implementation has as many context banks as the node wires context interrupts (an
    // MMU-500 with fewer banks than the preset's, like i.MX8QM's 32): arm-smmu refuses a
    // model with more banks than interrupts.
    if desc.context_irqs > 0 && desc.context_irqs < c.num_cb {
        c.num_cb = desc.context_irqs;
        c.num_s2cb = c.num_s2cb.min(c.num_cb);
        c.num_context_irqs = c.num_context_irqs.min(c.num_cb);
    }
    c
}
