//! The driver instance: probe, hardware reset, masters and stream mapping, domains and context
//! banks, map/unmap with TLB maintenance, and the `IommuDriver` contract for the core.
//!
//! This file holds the driver's state, probe, reset and stream-map programming; the rest is in
//! `domain` (domains and context banks), `tlb` (a domain's TLB maintenance), `irq` (fault
//! interrupts), `iommu_ops` (the `IommuDriver` implementation) and `snapshot` (saving the
//! state and restoring it in place).

use crate::config::{cfg_probe, Features, ProbeError, ProbeMsg, SmmuConfig};
use crate::context::{write_context_bank, CbCfg, CbShadow, DomainStage};
use crate::fw::{match_compatible, FirmwareDesc, Model, Version};
use crate::hw::{Hw, RateLimits};
use crate::io::{Page, SmmuIo};
use crate::kernel::DriverBehaviour;
use crate::params::ModuleParams;
use crate::shutdown::ShutdownPolicy;
use crate::streams::{S2crType, StreamMap};
use crate::table::{IoPgtableFactory, IoPgtableOps};
use iommu::{DeviceId, DomainKind};
use klog::{dev_line, Level, Printk};
use physmem::FrameAllocator;
use smmu_arch::regs::{cb, field, fsr, gr0, id7, make, scr0, smr};
use smmu_arch::{Access, Mmio};
use smmu_sync::atomic::{AtomicBool, AtomicU32, Ordering};
use smmu_sync::{Arc, KernelMutex, Mutex, RwLock, SpinLockIrq};
use std::collections::BTreeMap;

/// MMU-500 sACR / ACTLR bits (reference §11).
const MMU500_ACR_SMTNMB_TLBEN: u32 = 1 << 8;
const MMU500_ACR_S2CRB_TLBEN: u32 = 1 << 10;
const MMU500_ACR_CACHE_LOCK: u32 = 1 << 26;
const MMU500_ACTLR_CPRE: u32 = 1 << 1;

mod domain;
mod iommu_ops;
mod irq;
mod snapshot;
mod tlb;

pub use snapshot::{ArmSmmuSnapshot, ArmSmmuSnapshotError};

/// A fault handler installed on a domain (Linux's `iommu_set_fault_handler`): gets the faulting
/// address and direction. With a handler installed the driver prints nothing, as in Linux.
pub type FaultHandler = Box<dyn Fn(u64, Access) + Send + Sync>;

/// Told the index of a context bank each time a domain's bank has been torn down (after its
/// SCTLR = 0 and the TLB flush, before the bank can be reused). Not a Linux interface: a
/// tracepoint for checkers, such as the simulator's "no DMA through a freed domain" property.
pub type ContextReleaseHook = Box<dyn Fn(u32) + Send + Sync>;

/// What the driver needs from its surroundings besides firmware data.
pub struct SmmuEnv {
    /// The register window.
    pub mmio: Arc<dyn Mmio>,
    /// Kernel log sink (and simulated clock for rate limiting).
    pub log: Arc<dyn Printk>,
    /// Where page tables live.
    pub frames: Arc<FrameAllocator>,
    /// Page-table implementation.
    pub tables: Arc<dyn IoPgtableFactory>,
    /// Shared rate limiters (one per machine, as Linux's statics).
    pub limits: Arc<RateLimits>,
}

/// A master the driver took (`arm_smmu_master_cfg`).
#[derive(Debug, Clone)]
struct MasterCfg {
    smendx: Vec<usize>,
}

#[derive(Clone)]
struct Streams {
    map: StreamMap,
    masters: BTreeMap<DeviceId, MasterCfg>,
}

#[derive(Clone)]
struct Cbs {
    shadow: Vec<Option<CbShadow>>,
}

/// A finalised paging domain: its bank, page table and TLB maintenance.
pub(crate) struct DomainCtx {
    pub cfg: CbCfg,
    stage: DomainStage,
    table: Box<dyn IoPgtableOps>,
    tlb: Arc<DomainTlb>,
    fault_handler: Mutex<Option<Arc<FaultHandler>>>,
}

/// A domain's TLB maintenance (Linux's `iommu_flush_ops` for the domain's stage/version).
pub(crate) struct DomainTlb {
    hw: Arc<Hw>,
    cfg: CbCfg,
    stage: DomainStage,
    /// Linux's `cb_lock`, taken with `spin_lock_irqsave` (context TLB sync, ATS1PR lookups):
    /// its holder's CPU takes no interrupt until it is released.
    cb_lock: SpinLockIrq<()>,
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
    /// Linux's `init_mutex` plus what it protects.
    state: Mutex<DomainState>,
    pending_handler: Mutex<Option<Arc<FaultHandler>>>,
}

/// One probed SMMU.
pub struct ArmSmmu {
    pub(crate) hw: Arc<Hw>,
    behaviour: DriverBehaviour,
    release_hook: RwLock<Option<ContextReleaseHook>>,
    frames: Arc<FrameAllocator>,
    tables: Arc<dyn IoPgtableFactory>,
    /// Linux's `stream_map_mutex`: taken to allocate and free a master's stream-map entries
    /// and (since b1a1347912a7) around `device_group`'s lookup and record. `streams` is the
    /// data it guards, locked only for each short update.
    stream_map_mutex: KernelMutex,
    streams: Mutex<Streams>,
    cbs: Mutex<Cbs>,
    /// Owner of each bank, for the context fault handler. Never held across an MMIO access, so
    /// an interrupt raised synchronously by a register write cannot deadlock on it.
    owners: RwLock<Vec<Option<Arc<DomainCtx>>>>,
    /// Context bank bitmap (Linux's `context_map`).
    context_map: Mutex<Vec<bool>>,
    irptndx: AtomicU32,
    domains: RwLock<BTreeMap<u32, Arc<SmmuDomain>>>,
    next_domain: AtomicU32,
    pub(crate) quiesced: AtomicBool,
    cpre_warned: AtomicBool,
    /// The driver core has bound the SMMU's device (its `.probe` returned), so
    /// `arm_smmu_get_by_fwnode` finds it. See [`ArmSmmu::set_bound`].
    bound: AtomicBool,
}

impl ArmSmmu {
    /// Linux probe up to (not including) registration with the core: firmware checks, IRQ
    /// accounting, ID decode with its notices. The hardware is not reset yet: call
    /// [`ArmSmmu::device_reset`] and [`ArmSmmu::test_smr_masks`] where the modelled kernel does
    /// (v6.1: after registering with the core; current: before).
    pub fn probe(
        fw: &FirmwareDesc,
        params: ModuleParams,
        behaviour: DriverBehaviour,
        env: SmmuEnv,
    ) -> Result<Arc<ArmSmmu>, ProbeError> {
        let prefix = fw.log_prefix();
        let err = |msg: &str| env.log.printk(Level::Err, &dev_line(&prefix, msg));
        let Some((version, model)) = match_compatible(&fw.compatible) else {
            return Err(ProbeError::UnknownCompatible(fw.compatible.clone()));
        };
        let Some(num_global_irqs) = fw.num_global_irqs else {
            err("missing #global-interrupts property");
            return Err(ProbeError::MissingGlobalIrqs);
        };
        let mut num_context_irqs = fw.num_context_irqs;
        if num_context_irqs == 0 {
            let e = ProbeError::TooFewIrqs {
                found: num_global_irqs,
                expected: num_global_irqs + 1,
            };
            err(&e.to_string());
            return Err(e);
        }
        let mut msgs = Vec::new();
        let res = cfg_probe(
            env.mmio.as_ref(),
            version,
            model,
            fw.dma_coherent,
            fw.reg_size,
            &params,
            &mut msgs,
        );
        for m in &msgs {
            let (lvl, s) = match m {
                ProbeMsg::Notice(s) => (Level::Notice, s),
                ProbeMsg::Warn(s) => (Level::Warning, s),
                ProbeMsg::Err(s) => (Level::Err, s),
            };
            env.log.printk(lvl, &dev_line(&prefix, s));
        }
        let mut cfg: SmmuConfig = res?;
        if version == Version::V2 {
            if cfg.num_context_banks > num_context_irqs {
                let e = ProbeError::TooFewContextIrqs {
                    found: num_context_irqs,
                    required: cfg.num_context_banks,
                };
                err(&e.to_string());
                return Err(e);
            }
            num_context_irqs = cfg.num_context_banks;
        }
        cfg.num_global_irqs = num_global_irqs;
        cfg.num_context_irqs = num_context_irqs;

        let mut map = StreamMap::new(
            cfg.num_mapping_groups as usize,
            cfg.has_smrs(),
            cfg.features.has(Features::EXIDS),
            params.disable_bypass,
        );
        map.streamid_mask = cfg.streamid_mask;
        let ncb = cfg.num_context_banks as usize;
        let io = SmmuIo::new(env.mmio.clone(), cfg.pgshift, cfg.numpage);
        let hw = Arc::new(Hw {
            io,
            cfg,
            params,
            log: env.log,
            prefix,
            limits: env.limits,
            global_sync: SpinLockIrq::new(()),
            tlbi_value: behaviour.tlbi_value(),
        });
        Ok(Arc::new(ArmSmmu {
            hw,
            behaviour,
            release_hook: RwLock::new(None),
            frames: env.frames,
            tables: env.tables,
            stream_map_mutex: KernelMutex::new("stream_map_mutex"),
            streams: Mutex::new(Streams {
                map,
                masters: BTreeMap::new(),
            }),
            cbs: Mutex::new(Cbs {
                shadow: vec![None; ncb],
            }),
            owners: RwLock::new(vec![None; ncb]),
            context_map: Mutex::new(vec![false; ncb]),
            irptndx: AtomicU32::new(0),
            domains: RwLock::new(BTreeMap::new()),
            next_domain: AtomicU32::new(1),
            quiesced: AtomicBool::new(false),
            cpre_warned: AtomicBool::new(false),
            bound: AtomicBool::new(true),
        }))
    }

    /// Current Linux's order in one call: probe, then [`ArmSmmu::reset_at_probe`].
    pub fn probe_and_reset(
        fw: &FirmwareDesc,
        params: ModuleParams,
        behaviour: DriverBehaviour,
        env: SmmuEnv,
    ) -> Result<Arc<ArmSmmu>, ProbeError> {
        let s = Self::probe(fw, params, behaviour, env)?;
        s.reset_at_probe();
        Ok(s)
    }

    /// The hardware part of Linux's probe, in its order: the RMR boot-mapping step (where the
    /// version has it), the reset, the SMR width test.
    pub fn reset_at_probe(&self) {
        self.rmr_install_bypass_smr();
        self.device_reset();
        self.test_smr_masks();
    }

    /// Linux `arm_smmu_rmr_install_bypass_smr` (v6.0+; see [`DriverBehaviour`]): turn
    /// translation off by setting sCR0.CLIENTPD on top of whatever sCR0 holds (so a previous
    /// kernel's configuration stops applying and every client bypasses until the reset's final
    /// sCR0 write), then install a bypass SMR/S2CR for each firmware reserved-memory region
    /// and report how many. Linux reads the RMRs from the ACPI IORT; a device-tree boot (every
    /// board smmu-lab models) has none, so nothing is installed and it prints
    /// `\tpreserved 0 boot mappings`.
    pub fn rmr_install_bypass_smr(&self) {
        if !self.behaviour.rmr_bypass_at_probe {
            return;
        }
        let io = &self.hw.io;
        let reg = io.read(Page::Gr0, gr0::SCR0) | scr0::CLIENTPD;
        io.write(Page::Gr0, gr0::SCR0, reg);
        // IORT RMR stream IDs: none under device-tree firmware.
        let preserved: usize = 0;
        self.hw.print(
            Level::Notice,
            &format!(
                "\tpreserved {preserved} boot mapping{}",
                if preserved == 1 { "" } else { "s" }
            ),
        );
    }

    /// Whether the driver core has bound the SMMU's platform device: `arm_smmu_get_by_fwnode`
    /// (`driver_find_device_by_fwnode`) finds only a bound device, so a client's
    /// `probe_device` on an unbound SMMU finds no `smmu`. An `ArmSmmu` counts as bound once
    /// made (callers that run the whole probe before any client); a caller that models the
    /// window between `iommu_device_register()` and the end of `.probe` clears it before
    /// registering and sets it when `.probe` returns.
    pub fn set_bound(&self, bound: bool) {
        self.bound.store(bound, Ordering::SeqCst);
    }

    /// The version-dependent behaviour the driver was probed with.
    pub fn behaviour(&self) -> DriverBehaviour {
        self.behaviour
    }

    /// Install the [`ContextReleaseHook`] (replacing any previous one).
    pub fn set_context_release_hook(&self, hook: ContextReleaseHook) {
        *self.release_hook.write() = Some(hook);
    }

    /// What probe learned.
    pub fn config(&self) -> &SmmuConfig {
        &self.hw.cfg
    }

    /// The module parameters the driver was probed with.
    pub fn params(&self) -> ModuleParams {
        self.hw.params
    }

    /// The selected shutdown/remove behaviour.
    pub fn policy(&self) -> ShutdownPolicy {
        self.behaviour.shutdown
    }

    /// Stream-ID and SMR-mask widths (after the SMR test).
    pub fn stream_masks(&self) -> (u32, u32) {
        let s = self.streams.lock();
        (s.map.streamid_mask, s.map.smr_mask_mask)
    }

    /// A copy of the stream map shadow (for inspection).
    pub fn stream_map(&self) -> StreamMap {
        self.streams.lock().map.clone()
    }

    /// Linux `arm_smmu_write_sme`: S2CR, then SMR if stream matching.
    ///
    /// The order keeps a half-written entry harmless. The SMR's VALID bit is what makes the
    /// entry match traffic, and the S2CR says what matching traffic gets (a context bank,
    /// bypass or fault). Writing the S2CR first means that when a newly valid SMR starts
    /// matching, its S2CR is already the intended one; and when an entry is being freed, its
    /// S2CR is already FAULT while the old SMR may still match, so in-flight traffic faults
    /// rather than reaching a bank that is about to be reused.
    fn write_sme(&self, map: &StreamMap, idx: usize) {
        let io = &self.hw.io;
        io.write(Page::Gr0, gr0::s2cr(idx as u32), map.s2cr_word(idx));
        if map.smrs.is_some() {
            io.write(Page::Gr0, gr0::smr(idx as u32), map.smr_word(idx));
        }
    }

    /// Linux `arm_smmu_device_reset` (reference §6): reprogram everything from the shadow state
    /// and enable the SMMU.
    pub fn device_reset(&self) {
        let io = &self.hw.io;
        let cfg = &self.hw.cfg;
        let gfsr = io.read(Page::Gr0, gr0::SGFSR);
        io.write(Page::Gr0, gr0::SGFSR, gfsr);
        {
            let s = self.streams.lock();
            for i in 0..s.map.len() {
                self.write_sme(&s.map, i);
            }
        }
        {
            let c = self.cbs.lock();
            for i in 0..cfg.num_context_banks {
                write_context_bank(
                    io,
                    cfg,
                    i,
                    c.shadow.get(i as usize).and_then(|x| x.as_ref()),
                );
                io.write(Page::Cb(i), cb::FSR, fsr::FAULT);
            }
        }
        io.write(Page::Gr0, gr0::TLBIALLH, self.hw.tlbi_value);
        io.write(Page::Gr0, gr0::TLBIALLNSNH, self.hw.tlbi_value);
        let mut reg = io.read(Page::Gr0, gr0::SCR0);
        reg |= scr0::GFRE | scr0::GFIE | scr0::GCFGFRE | scr0::GCFGFIE;
        reg |= scr0::VMIDPNE | scr0::PTM;
        reg &= !scr0::CLIENTPD;
        if self.hw.params.disable_bypass {
            reg |= scr0::USFCFG;
        } else {
            reg &= !scr0::USFCFG;
        }
        reg &= !scr0::FB;
        reg &= !scr0::BSU_MASK;
        if cfg.features.has(Features::VMID16) {
            reg |= scr0::VMID16EN;
        }
        if cfg.features.has(Features::EXIDS) {
            reg |= scr0::EXIDENABLE;
        }
        if cfg.model == Model::ArmMmu500 {
            self.mmu500_reset();
        }
        self.hw.tlb_sync_global();
        io.write(Page::Gr0, gr0::SCR0, reg);
    }

    /// The MMU-500 implementation's reset hook (reference §11).
    fn mmu500_reset(&self) {
        let io = &self.hw.io;
        let major = field(io.read(Page::Gr0, gr0::ID7), id7::MAJOR_SHIFT, id7::WIDTH);
        let mut reg = io.read(Page::Gr0, gr0::SACR);
        if major >= 2 {
            reg &= !MMU500_ACR_CACHE_LOCK;
        }
        reg |= MMU500_ACR_SMTNMB_TLBEN | MMU500_ACR_S2CRB_TLBEN;
        io.write(Page::Gr0, gr0::SACR, reg);
        for i in 0..self.hw.cfg.num_context_banks {
            let r = io.read(Page::Cb(i), cb::ACTLR) & !MMU500_ACTLR_CPRE;
            io.write(Page::Cb(i), cb::ACTLR, r);
            if io.read(Page::Cb(i), cb::ACTLR) & MMU500_ACTLR_CPRE != 0
                && !self.cpre_warned.swap(true, Ordering::Relaxed)
            {
                self.hw.print(
                    Level::Warning,
                    "Failed to disable prefetcher for errata workarounds, check SACR.CACHE_LOCK",
                );
            }
        }
    }

    /// Linux `arm_smmu_test_smr_masks`: find how many SMR ID and MASK bits are implemented,
    /// using the first unused SMR (left holding the mask pattern, invalid).
    pub fn test_smr_masks(&self) {
        let io = &self.hw.io;
        let mut s = self.streams.lock();
        let Some(free) = s
            .map
            .smrs
            .as_ref()
            .and_then(|v| v.iter().position(|e| !e.valid))
        else {
            return;
        };
        let i = free as u32;
        io.write(
            Page::Gr0,
            gr0::smr(i),
            make(s.map.streamid_mask, smr::ID_SHIFT, smr::ID_WIDTH),
        );
        let v = io.read(Page::Gr0, gr0::smr(i));
        s.map.streamid_mask = field(v, smr::ID_SHIFT, smr::ID_WIDTH);
        io.write(
            Page::Gr0,
            gr0::smr(i),
            make(s.map.streamid_mask, smr::MASK_SHIFT, smr::MASK_WIDTH),
        );
        let v = io.read(Page::Gr0, gr0::smr(i));
        s.map.smr_mask_mask = field(v, smr::MASK_SHIFT, smr::MASK_WIDTH);
    }

    /// Block every stream (the `Quiesce` policy): every S2CR becomes FAULT, freed entries stay
    /// FAULT, and sCR0 keeps the SMMU enabled with unmatched streams aborted.
    pub(crate) fn block_all_streams(&self) {
        self.quiesced.store(true, Ordering::SeqCst);
        let io = &self.hw.io;
        {
            let mut s = self.streams.lock();
            s.map.init.ty = S2crType::Fault;
            for i in 0..s.map.len() {
                if let Some(e) = s.map.s2crs.get_mut(i) {
                    e.ty = S2crType::Fault;
                    e.cbndx = 0;
                    e.privcfg = 0;
                }
                let w = s.map.s2cr_word(i);
                io.write(Page::Gr0, gr0::s2cr(i as u32), w);
            }
        }
        let reg = (io.read(Page::Gr0, gr0::SCR0) & !scr0::CLIENTPD) | scr0::USFCFG;
        io.write(Page::Gr0, gr0::SCR0, reg);
    }

    /// sCR0 := CLIENTPD, the plain store Linux's shutdown does.
    pub(crate) fn write_clientpd(&self) {
        self.hw.io.write(Page::Gr0, gr0::SCR0, scr0::CLIENTPD);
    }

    pub(crate) fn print(&self, level: Level, msg: &str) {
        self.hw.print(level, msg)
    }
}
