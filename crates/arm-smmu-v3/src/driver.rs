//! The driver instance: probe (hardware probe, queues, stream table, device reset, IRQs), masters
//! and their STEs, domains with their CDs and page tables, TLB maintenance, and the
//! `IommuDriver` contract for the core.
//!
//! This file holds the driver's state, probe, queues, stream table, reset and IRQ set-up; the
//! rest is in `domain` (masters' STEs/CDs and domains), `tlb` (a domain's TLB maintenance) and
//! `iommu_ops` (the `IommuDriver` implementation).

use crate::fw::{
    BootContext, EnabledAtProbe, FirmwareDesc, KernelVersion, ModuleParams, ShutdownPolicy,
};
use crate::hw::{at, Hw, QueueShadow, RateLimits};
use crate::io::Io;
use crate::probe::{feat, hw_probe, ProbeError, STRTAB_SPLIT};
use crate::ste::{self as stemod, Entry};
use iommu::{DeviceId, DomainKind};
use klog::{dev_line, Level, Printk};
use pgtable::Stage;
use physmem::{FrameAllocator, PhysAddr};
use smmu_sync::atomic::{AtomicBool, AtomicU32};
use smmu_sync::{Arc, Mutex, RwLock};
use smmuv3_arch::cmd::{Command, CFGI_ALL};
use smmuv3_arch::regs::{self, cr0, cr1, cr2, gbpa, irq_ctrl, strtab_base, strtab_base_cfg};
use smmuv3_arch::Mmio;
use std::collections::BTreeMap;

mod domain;
mod iommu_ops;
mod snapshot;
mod tlb;

pub use snapshot::{ArmSmmuV3Snapshot, ArmSmmuV3SnapshotError};

/// What the driver needs besides firmware data.
pub struct SmmuEnv {
    pub mmio: Arc<dyn Mmio>,
    pub log: Arc<dyn Printk>,
    /// Where queues, stream tables, CDs and page tables are allocated.
    pub frames: Arc<FrameAllocator>,
    pub limits: Arc<RateLimits>,
}

/// The stream table (`arm_smmu_strtab_cfg`).
#[derive(Debug, Clone)]
struct Strtab {
    base: PhysAddr,
    base_cfg: u32,
    two_level: bool,
    num_l1_ents: u32,
    /// Level-2 tables by L1 index (2-level only).
    l2: BTreeMap<u32, PhysAddr>,
}

#[derive(Debug, Clone)]
struct SmmuMaster {
    sids: Vec<u32>,
    domain: Option<u32>,
    /// v6.12: the master's own CD table.
    cdtab: Option<PhysAddr>,
}

/// A finalised paging domain.
pub(crate) struct DomainCtx {
    stage: Stage,
    asid: u16,
    vmid: u16,
    table: Mutex<pgtable::PageTable<Arc<DomainTlb>>>,
    tlb: Arc<DomainTlb>,
    /// v6.1: the domain's CD table (one CD).
    cdtab: Option<PhysAddr>,
    cd: Entry,
    ias: u32,
    pgsizes: u64,
}

/// Invalidation for one domain (Linux's `arm_smmu_flush_ops`).
pub(crate) struct DomainTlb {
    hw: Arc<Hw>,
    stage: Stage,
    asid: u16,
    vmid: u16,
    /// Smallest page size of the domain (the TG of range invalidations).
    pgshift: u32,
}

#[derive(Clone)]
enum DomainState {
    Unfinalised,
    Bypass,
    Blocked,
    Paging(Arc<DomainCtx>),
}

struct SmmuDomain {
    kind: DomainKind,
    state: Mutex<DomainState>,
    masters: Mutex<Vec<DeviceId>>,
}

/// One probed SMMUv3.
pub struct ArmSmmuV3 {
    pub(crate) hw: Arc<Hw>,
    policy: ShutdownPolicy,
    boot: BootContext,
    strtab: Mutex<Strtab>,
    masters: Mutex<BTreeMap<DeviceId, SmmuMaster>>,
    domains: RwLock<BTreeMap<u32, Arc<SmmuDomain>>>,
    next_domain: AtomicU32,
    asids: Mutex<Vec<bool>>,
    vmids: Mutex<Vec<bool>>,
    pub(crate) quiesced: AtomicBool,
}

impl ArmSmmuV3 {
    /// `arm_smmu_device_probe` up to (not including) `iommu_device_register`: firmware checks,
    /// hardware probe, queue and stream-table allocation, device reset with IRQ setup. A
    /// normal boot of a kernel with every kdump change ([`BootContext::default`]).
    pub fn probe(
        fw: &FirmwareDesc,
        params: ModuleParams,
        version: KernelVersion,
        policy: ShutdownPolicy,
        env: SmmuEnv,
    ) -> Result<Arc<ArmSmmuV3>, ProbeError> {
        Self::probe_booting(fw, params, version, policy, env, BootContext::default())
    }

    /// [`ArmSmmuV3::probe`] in the kernel `boot` describes (a kdump kernel, and what its
    /// reset does with an SMMU it finds enabled).
    pub fn probe_booting(
        fw: &FirmwareDesc,
        params: ModuleParams,
        version: KernelVersion,
        policy: ShutdownPolicy,
        env: SmmuEnv,
        boot: BootContext,
    ) -> Result<Arc<ArmSmmuV3>, ProbeError> {
        let prefix = fw.log_prefix();
        let log = env.log.clone();
        let say = |l: Level, m: &str| log.printk(l, &dev_line(&prefix, m));
        if fw.compatible != "arm,smmu-v3" {
            return Err(ProbeError::UnknownCompatible(fw.compatible.clone()));
        }
        match fw.iommu_cells {
            None => {
                say(Level::Err, "missing #iommu-cells property");
                return Err(ProbeError::IommuCells);
            }
            Some(c) if c != 1 => {
                say(Level::Err, &format!("invalid #iommu-cells value ({c})"));
                return Err(ProbeError::IommuCells);
            }
            _ => {}
        }
        if fw.reg_size < regs::WINDOW_SIZE {
            let end = fw
                .reg_base
                .as_u64()
                .wrapping_add(fw.reg_size)
                .wrapping_sub(1);
            say(
                Level::Err,
                &format!(
                    "MMIO region too small ([mem {:#010x}-{end:#010x}])",
                    fw.reg_base
                ),
            );
            return Err(ProbeError::RegionTooSmall(fw.reg_size));
        }
        let io = Io::new(env.mmio.clone());
        let info = hw_probe(&io, fw, &params, version, &say)?;
        let mut hw = Hw {
            io,
            mem: env.frames.mem().clone(),
            frames: env.frames.clone(),
            log: env.log.clone(),
            prefix: prefix.clone(),
            info,
            params,
            version,
            limits: env.limits,
            cmdq: Mutex::new(QueueShadow {
                base: PhysAddr::ZERO,
                shift: 0,
                prod: 0,
                cons: 0,
            }),
            cmdq_geom: (PhysAddr::ZERO, 0),
            evtq: Mutex::new(QueueShadow {
                base: PhysAddr::ZERO,
                shift: 0,
                prod: 0,
                cons: 0,
            }),
        };
        // arm_smmu_init_queues: halve a queue until its allocation succeeds.
        let cmdq = Self::init_queue(&hw, hw.info.cmdq_shift, 16, "cmdq")?;
        let evtq = Self::init_queue(&hw, hw.info.evtq_shift, 32, "evtq")?;
        hw.cmdq_geom = (cmdq.base, cmdq.shift);
        hw.cmdq = Mutex::new(cmdq);
        hw.evtq = Mutex::new(evtq);
        let strtab = Self::init_strtab(&hw)?;
        let smmu = Arc::new(ArmSmmuV3 {
            hw: Arc::new(hw),
            policy,
            boot,
            strtab: Mutex::new(strtab),
            masters: Mutex::new(BTreeMap::new()),
            domains: RwLock::new(BTreeMap::new()),
            next_domain: AtomicU32::new(1),
            asids: Mutex::new(vec![false; 1 << 16]),
            vmids: Mutex::new(vec![false; 1 << 16]),
            quiesced: AtomicBool::new(false),
        });
        {
            // VMID 0 is reserved for stage-2 bypass STEs; ASID 0 is never handed out.
            smmu.vmids.lock()[0] = true;
            smmu.asids.lock()[0] = true;
        }
        let bypass = false;
        smmu.device_reset(fw, bypass)?;
        Ok(smmu)
    }

    fn init_queue(
        hw: &Hw,
        mut shift: u32,
        ent_bytes: u64,
        name: &'static str,
    ) -> Result<QueueShadow, ProbeError> {
        loop {
            let qsz = ent_bytes << shift;
            if let Some(base) = hw.alloc(qsz) {
                hw.print(
                    Level::Info,
                    &format!("allocated {} entries for {name}", 1u32 << shift),
                );
                return Ok(QueueShadow {
                    base,
                    shift,
                    prod: 0,
                    cons: 0,
                });
            }
            if qsz < 4096 || shift == 0 {
                hw.print(
                    Level::Err,
                    &format!("failed to allocate queue (0x{qsz:x} bytes) for {name}"),
                );
                return Err(ProbeError::NoMemory {
                    what: name,
                    bytes: qsz,
                });
            }
            shift -= 1;
        }
    }

    fn init_strtab(hw: &Hw) -> Result<Strtab, ProbeError> {
        let sid_bits = hw.info.sid_bits;
        if hw.has(feat::TWO_LVL_STRTAB) {
            // STRTAB_L1_SZ_SHIFT 20: at most 2^17 L1 descriptors, capped to the SIDSIZE.
            let size = (20 - 3).min(sid_bits - STRTAB_SPLIT);
            let num_l1 = 1u32 << size;
            let covered = size + STRTAB_SPLIT;
            if covered < sid_bits {
                hw.print(
                    Level::Warning,
                    &format!("2-level strtab only covers {covered}/{sid_bits} bits of SID"),
                );
            }
            let l1size = u64::from(num_l1) * 8;
            let Some(base) = hw.alloc(l1size) else {
                hw.print(
                    Level::Err,
                    &format!("failed to allocate l1 stream table ({l1size} bytes)"),
                );
                return Err(ProbeError::NoMemory {
                    what: "l1 stream table",
                    bytes: l1size,
                });
            };
            let base_cfg = (strtab_base_cfg::FMT_2LVL << strtab_base_cfg::FMT_SHIFT)
                | (covered << strtab_base_cfg::LOG2SIZE_SHIFT)
                | (STRTAB_SPLIT << strtab_base_cfg::SPLIT_SHIFT);
            // L1 descriptors start invalid (zeroed memory).
            Ok(Strtab {
                base,
                base_cfg,
                two_level: true,
                num_l1_ents: num_l1,
                l2: BTreeMap::new(),
            })
        } else {
            // A SIDSIZE the architecture does not allow (over 32 bits) makes a table no
            // allocator can give: the allocation fails, as dmam_alloc_coherent would, instead
            // of a shifted size wrapping to a small one and the loop below running for ever.
            let size = 1u64
                .checked_shl(sid_bits)
                .and_then(|n| n.checked_mul(64))
                .unwrap_or(u64::MAX);
            let Some(base) = hw.alloc(size) else {
                hw.print(
                    Level::Err,
                    &format!("failed to allocate linear stream table ({size} bytes)"),
                );
                return Err(ProbeError::NoMemory {
                    what: "linear stream table",
                    bytes: size,
                });
            };
            let init = stemod::initial(hw);
            for sid in 0..(1u64 << sid_bits) {
                hw.write_words(at(base, sid * 64), &init[..3]);
            }
            Ok(Strtab {
                base,
                base_cfg: sid_bits << strtab_base_cfg::LOG2SIZE_SHIFT,
                two_level: false,
                num_l1_ents: 1 << sid_bits,
                l2: BTreeMap::new(),
            })
        }
    }

    /// `arm_smmu_update_gbpa`: wait for UPDATE clear, write the new value with UPDATE, wait.
    pub(crate) fn update_gbpa(&self, set: u32, clr: u32) -> bool {
        let io = &self.hw.io;
        let Ok(reg) = io.poll(regs::GBPA, |r| r & gbpa::UPDATE == 0) else {
            return false;
        };
        io.write(regs::GBPA, ((reg & !clr) | set) | gbpa::UPDATE);
        let ok = io.poll(regs::GBPA, |r| r & gbpa::UPDATE == 0).is_ok();
        if !ok {
            self.hw.print(Level::Err, "GBPA not responding to update");
        }
        ok
    }

    /// `arm_smmu_device_disable`: CR0 := 0 and wait for CR0ACK.
    pub fn device_disable(&self) -> bool {
        let ok = self.hw.io.write_sync(regs::CR0, regs::CR0ACK, 0);
        if !ok {
            self.hw.print(Level::Err, "failed to clear cr0");
        }
        ok
    }

    /// `arm_smmu_device_reset` (with `arm_smmu_setup_irqs` inside, where Linux calls it). The
    /// order matters: queues are enabled before the invalidations that use them, the event
    /// queue before interrupts, and SMMUEN last, once every cached configuration is gone.
    fn device_reset(&self, fw: &FirmwareDesc, bypass: bool) -> Result<(), ProbeError> {
        let hw = &self.hw;
        let io = &hw.io;
        let kdump = self.boot.kdump;
        let quiet_events = kdump && self.boot.enabled_at_probe == EnabledAtProbe::AbortThenReset;
        if io.read(regs::CR0) & cr0::SMMUEN != 0 {
            match self.boot.enabled_at_probe {
                // b63b3439b856: keep the crashed kernel's DMA from going anywhere, and give up.
                EnabledAtProbe::KdumpAbortAndFail if kdump => {
                    self.update_gbpa(gbpa::ABORT, 0);
                    self.device_disable();
                    return Err(ProbeError::KdumpBusy);
                }
                EnabledAtProbe::ResetAsFound | EnabledAtProbe::KdumpAbortAndFail => {
                    hw.print(Level::Warning, "SMMU currently enabled! Resetting...");
                }
                // 3f54c447df34. Its WARN_ON for a kdump kernel booted with disable_bypass=0 is
                // not modelled (a backtrace with no effect on the SMMU).
                EnabledAtProbe::AbortThenReset => {
                    hw.print(Level::Warning, "SMMU currently enabled! Resetting...");
                    self.update_gbpa(gbpa::ABORT, 0);
                }
            }
        }
        if !self.device_disable() {
            return Err(ProbeError::AckTimeout("CR0"));
        }
        // With the SMMU disabled: CR1 first, because it sets the cacheability and shareability
        // of the SMMU's own reads of the stream table and the queues programmed next; CR2 too
        // must be in place before SMMUEN.
        let c1 = (cr1::SH_ISH << cr1::TABLE_SH_SHIFT)
            | (cr1::CACHE_WB << cr1::TABLE_OC_SHIFT)
            | (cr1::CACHE_WB << cr1::TABLE_IC_SHIFT)
            | (cr1::SH_ISH << cr1::QUEUE_SH_SHIFT)
            | (cr1::CACHE_WB << cr1::QUEUE_OC_SHIFT)
            | (cr1::CACHE_WB << cr1::QUEUE_IC_SHIFT);
        io.write(regs::CR1, c1);
        io.write(regs::CR2, cr2::PTM | cr2::RECINVSID);
        // The stream table base may only change while SMMUEN is clear, so before any enable.
        {
            let st = self.strtab.lock();
            io.writeq(
                regs::STRTAB_BASE,
                (st.base.as_u64() & strtab_base::ADDR_MASK) | strtab_base::RA,
            );
            io.write(regs::STRTAB_BASE_CFG, st.base_cfg);
        }
        // A queue's base may only change while the queue is disabled (the model ignores it
        // otherwise), so the base and indices are programmed before CMDQEN.
        {
            let q = *hw.cmdq.lock();
            io.writeq(regs::CMDQ_BASE, q.q_base());
            io.write(regs::CMDQ_PROD, q.prod);
            io.write(regs::CMDQ_CONS, q.cons);
        }
        let mut enables = cr0::CMDQEN;
        if !io.write_sync(regs::CR0, regs::CR0ACK, enables) {
            hw.print(Level::Err, "failed to enable command queue");
            return Err(ProbeError::AckTimeout("CR0.CMDQEN"));
        }
        // Invalidate any cached configuration and stale TLB entries, which needs the command
        // queue just enabled, and must finish before SMMUEN lets transactions use them.
        let _ = hw.issue_sync(CFGI_ALL);
        if hw.has(feat::HYP) {
            let _ = hw.issue_sync(Command::TlbiEl2All);
        }
        let _ = hw.issue_sync(Command::TlbiNsnhAll);
        // The event queue the same way, and before its interrupt is enabled (setup_irqs), so
        // an event interrupt never points at an unprogrammed queue.
        {
            let q = *hw.evtq.lock();
            io.writeq(regs::EVTQ_BASE, q.q_base());
            io.write(regs::EVTQ_PROD, q.prod);
            io.write(regs::EVTQ_CONS, q.cons);
        }
        enables |= cr0::EVTQEN;
        if !io.write_sync(regs::CR0, regs::CR0ACK, enables) {
            hw.print(Level::Err, "failed to enable event queue");
            return Err(ProbeError::AckTimeout("CR0.EVTQEN"));
        }
        self.setup_irqs(fw);
        // 3f54c447df34: a kdump kernel may have no driver for masters still doing DMA, so it
        // turns the event queue off again rather than report (and rate-limit) their faults.
        if quiet_events {
            enables &= !(cr0::EVTQEN | cr0::PRIQEN);
        }
        if !bypass || hw.params.disable_bypass {
            enables |= cr0::SMMUEN;
        } else {
            self.update_gbpa(0, gbpa::ABORT);
        }
        if !io.write_sync(regs::CR0, regs::CR0ACK, enables) {
            hw.print(Level::Err, "failed to enable SMMU interface");
            return Err(ProbeError::AckTimeout("CR0.SMMUEN"));
        }
        Ok(())
    }

    /// `arm_smmu_setup_irqs` with `arm_smmu_setup_unique_irqs` / `arm_smmu_setup_msis`.
    fn setup_irqs(&self, fw: &FirmwareDesc) {
        let hw = &self.hw;
        let io = &hw.io;
        if !io.write_sync(regs::IRQ_CTRL, regs::IRQ_CTRLACK, 0) {
            hw.print(Level::Err, "failed to disable irqs");
            return;
        }
        if !fw.has_irq("combined") {
            io.writeq(regs::GERROR_IRQ_CFG0, 0);
            io.writeq(regs::EVTQ_IRQ_CFG0, 0);
            if hw.has(feat::PRI) {
                io.writeq(regs::PRIQ_IRQ_CFG0, 0);
            }
            if hw.has(feat::MSI) && !fw.msi_parent {
                hw.print(
                    Level::Info,
                    "msi_domain absent - falling back to wired irqs",
                );
            }
            // Platform MSIs for the SMMU's own interrupts are not modelled: with an msi-parent
            // the lines stay wired.
            if !fw.has_irq("eventq") {
                hw.print(Level::Warning, "no evtq irq - events will not be reported!");
            }
            if !fw.has_irq("gerror") {
                hw.print(Level::Warning, "no gerr irq - errors will not be reported!");
            }
        }
        let flags = irq_ctrl::EVTQ_IRQEN | irq_ctrl::GERROR_IRQEN;
        if !io.write_sync(regs::IRQ_CTRL, regs::IRQ_CTRLACK, flags) {
            hw.print(Level::Warning, "failed to enable irqs");
        }
    }

    pub fn policy(&self) -> ShutdownPolicy {
        self.policy
    }

    pub fn version(&self) -> KernelVersion {
        self.hw.version
    }

    /// What probe learned.
    pub fn info(&self) -> &crate::probe::HwInfo {
        &self.hw.info
    }

    /// The command queue's software pointers (for tests and reports).
    pub fn cmdq(&self) -> QueueShadow {
        *self.hw.cmdq.lock()
    }

    /// Physical address of the STE of `sid`, if its table exists.
    pub fn ste_address(&self, sid: u32) -> Option<PhysAddr> {
        let st = self.strtab.lock();
        if st.two_level {
            let l2 = *st.l2.get(&(sid >> STRTAB_SPLIT))?;
            Some(at(l2, u64::from(sid & ((1 << STRTAB_SPLIT) - 1)) * 64))
        } else {
            (sid < st.num_l1_ents).then(|| at(st.base, u64::from(sid) * 64))
        }
    }

    pub(crate) fn print(&self, level: Level, msg: &str) {
        self.hw.print(level, msg)
    }

    /// Every StreamID with a stream table entry the driver initialised, in order.
    pub(crate) fn initialised_sids(&self) -> Vec<u32> {
        let st = self.strtab.lock();
        if st.two_level {
            st.l2
                .keys()
                .flat_map(|&l1| (0..(1u32 << STRTAB_SPLIT)).map(move |i| (l1 << STRTAB_SPLIT) | i))
                .collect()
        } else {
            (0..st.num_l1_ents).collect()
        }
    }

    /// Write an STE's words directly (quiesce), without per-STE invalidation.
    pub(crate) fn write_ste_raw(&self, sid: u32, e: &Entry) {
        if let Some(pa) = self.ste_address(sid) {
            self.hw.write_words(pa, &e[..3]);
        }
    }
}
