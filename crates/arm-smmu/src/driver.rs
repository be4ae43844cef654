//! The driver instance: probe, hardware reset, masters and stream mapping, domains and context
//! banks, map/unmap with TLB maintenance, and the `IommuDriver` contract for the core.

use crate::config::{cfg_probe, Features, ProbeError, ProbeMsg, SmmuConfig};
use crate::context::{write_context_bank, CbCfg, CbShadow, CtxFmt, DomainStage};
use crate::fw::{match_compatible, FirmwareDesc, Model, Version};
use crate::hw::{Hw, RateLimits};
use crate::io::{Page, SmmuIo};
use crate::kernel::DriverBehaviour;
use crate::params::ModuleParams;
use crate::shutdown::ShutdownPolicy;
use crate::streams::{S2crType, SmeError, StreamMap};
use crate::table::{IoPgtableFactory, IoPgtableOps, TableRequest};
use iommu::{
    DeviceId, DomainKind, DriverDomain, DriverError, Gather, Geometry, IommuDriver, MasterInfo,
    Prot, Resource,
};
use klog::{dev_line, Level, Printk};
use pgtable::TlbOps;
use physmem::FrameAllocator;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{atsr, cb, cbar, field, fsr, gr0, id7, par, scr0, smr};
use smmu_arch::{Access, Mmio, Stage};
use smmu_sync::atomic::{AtomicBool, AtomicU32, Ordering};
use smmu_sync::{sched_point, Arc, KernelMutex, Mutex, Point, RwLock};
use std::collections::BTreeMap;

/// MMU-500 sACR / ACTLR bits (reference §11).
const MMU500_ACR_SMTNMB_TLBEN: u32 = 1 << 8;
const MMU500_ACR_S2CRB_TLBEN: u32 = 1 << 10;
const MMU500_ACR_CACHE_LOCK: u32 = 1 << 26;
const MMU500_ACTLR_CPRE: u32 = 1 << 1;

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

struct Streams {
    map: StreamMap,
    masters: BTreeMap<DeviceId, MasterCfg>,
}

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
    /// Linux's `cb_lock`.
    cb_lock: Mutex<()>,
}

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
            global_sync: Mutex::new(()),
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
        io.write(Page::Gr0, gr0::smr(i), s.map.streamid_mask & 0xffff);
        let v = io.read(Page::Gr0, gr0::smr(i));
        s.map.streamid_mask = field(v, smr::ID_SHIFT, smr::ID_WIDTH);
        io.write(
            Page::Gr0,
            gr0::smr(i),
            (s.map.streamid_mask & 0xffff) << smr::MASK_SHIFT,
        );
        let v = io.read(Page::Gr0, gr0::smr(i));
        s.map.smr_mask_mask = field(v, smr::MASK_SHIFT, smr::MASK_WIDTH);
    }

    /// Whether any context bank is allocated (shutdown's "disabling translation" condition).
    pub fn any_context_bank_in_use(&self) -> bool {
        self.context_map.lock().iter().any(|&b| b)
    }

    fn domain(&self, dom: DriverDomain) -> Option<Arc<SmmuDomain>> {
        self.domains.read().get(&dom.0).cloned()
    }

    fn ctx(&self, dom: DriverDomain) -> Option<Arc<DomainCtx>> {
        let d = self.domain(dom)?;
        let st = d.state.lock();
        match &*st {
            DomainState::Paging(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// The context bank a domain was given (None before its first attach or if not paging).
    pub fn domain_context_bank(&self, dom: DriverDomain) -> Option<u32> {
        self.ctx(dom).map(|c| c.cfg.cbndx)
    }

    /// Install a fault handler on a domain (`iommu_set_fault_handler`).
    pub fn set_fault_handler(&self, dom: DriverDomain, handler: FaultHandler) {
        if let Some(d) = self.domain(dom) {
            let h = Arc::new(handler);
            *d.pending_handler.lock() = Some(h.clone());
            if let DomainState::Paging(c) = &*d.state.lock() {
                *c.fault_handler.lock() = Some(h);
            }
        }
    }

    /// Linux `arm_smmu_init_domain_context` for a paging domain.
    fn init_domain_context(&self, d: &SmmuDomain) -> Result<Arc<DomainCtx>, DriverError> {
        let cfg = &self.hw.cfg;
        let f = cfg.features;
        let mut stage = DomainStage::S1;
        if !f.has(Features::TRANS_S1) {
            stage = DomainStage::S2;
        }
        if !f.has(Features::TRANS_S2) {
            stage = DomainStage::S1;
        }
        let mut fmt = None;
        if f.has(Features::FMT_AARCH32_L) {
            fmt = Some(CtxFmt::AArch32L);
        }
        if f.any(Features::FMT_AARCH64_4K | Features::FMT_AARCH64_16K | Features::FMT_AARCH64_64K) {
            fmt = Some(CtxFmt::AArch64);
        }
        let Some(fmt) = fmt else {
            return Err(DriverError::NoContextFormat);
        };
        let (cbar_type, start, mut ias, mut oas) = match stage {
            DomainStage::S1 => (
                cbar::TYPE_S1_TRANS_S2_BYPASS,
                cfg.num_s2_context_banks,
                cfg.va_size,
                cfg.ipa_size,
            ),
            _ => (cbar::TYPE_S2_TRANS, 0, cfg.ipa_size, cfg.pa_size),
        };
        if fmt == CtxFmt::AArch32L {
            if stage == DomainStage::S1 {
                ias = ias.min(32);
                oas = oas.min(40);
            } else {
                ias = ias.min(40);
                oas = oas.min(40);
            }
        }
        let cbndx = {
            let mut map = self.context_map.lock();
            let Some(i) = (start as usize..map.len()).find(|&i| !map[i]) else {
                return Err(DriverError::Exhausted(Resource::ContextBanks));
            };
            map[i] = true;
            i as u32
        };
        let irptndx = if cfg.version < Version::V2 {
            let n = self.irptndx.fetch_add(1, Ordering::Relaxed) + 1;
            n % cfg.num_context_irqs.max(1)
        } else {
            cbndx
        };
        let asid_vmid = if stage == DomainStage::S2 {
            (cbndx + 1) as u16
        } else {
            cbndx as u16
        };
        let cbcfg = CbCfg {
            cbndx,
            irptndx,
            asid_vmid,
            cbar: cbar_type,
            fmt,
        };
        let tlb = Arc::new(DomainTlb {
            hw: self.hw.clone(),
            cfg: cbcfg,
            stage,
            cb_lock: Mutex::new(()),
        });
        let req = TableRequest {
            stage: if stage == DomainStage::S2 {
                Stage::S2
            } else {
                Stage::S1
            },
            fmt,
            pgsize_bitmap: cfg.pgsize_bitmap,
            ias,
            oas,
            coherent_walk: f.has(Features::COHERENT_WALK),
        };
        let table = match self.tables.alloc(&req, &self.frames, tlb.clone()) {
            Ok(t) => t,
            Err(e) => {
                self.context_map.lock()[cbndx as usize] = false;
                return Err(e);
            }
        };
        let shadow = CbShadow::new(cbcfg, &table.hw());
        let ctx = Arc::new(DomainCtx {
            cfg: cbcfg,
            stage,
            table,
            tlb,
            fault_handler: Mutex::new(d.pending_handler.lock().clone()),
        });
        {
            let mut c = self.cbs.lock();
            if let Some(slot) = c.shadow.get_mut(cbndx as usize) {
                *slot = Some(shadow);
            }
            write_context_bank(&self.hw.io, cfg, cbndx, Some(&shadow));
        }
        // Like Linux's IRQ request: last, so the handler never sees a half-built domain.
        if let Some(o) = self.owners.write().get_mut(cbndx as usize) {
            *o = Some(ctx.clone());
        }
        Ok(ctx)
    }

    /// Linux `arm_smmu_destroy_domain_context`: the bank is disabled (SCTLR = 0), the IRQ
    /// freed, then the page-table ops freed, which flushes the TLB first
    /// (`free_io_pgtable_ops` → `tlb_flush_all`: S1 `TLBIASID` + context sync, S2 `TLBIVMID` +
    /// global sync), and only then is the bank returned to the bitmap. Without that flush a new
    /// domain given the same bank (and so the same ASID) hits the freed domain's TLB entries:
    /// DMA into freed memory.
    fn destroy_domain_context(&self, ctx: &DomainCtx) {
        let idx = ctx.cfg.cbndx;
        {
            let mut c = self.cbs.lock();
            if let Some(s) = c.shadow.get_mut(idx as usize) {
                *s = None;
            }
            write_context_bank(&self.hw.io, &self.hw.cfg, idx, None);
        }
        if let Some(o) = self.owners.write().get_mut(idx as usize) {
            *o = None;
        }
        // free_io_pgtable_ops: the flush; the tables themselves go when the last reference to
        // the context drops.
        ctx.tlb.tlb_flush_all();
        if let Some(hook) = self.release_hook.read().as_ref() {
            hook(idx);
        }
        if let Some(b) = self.context_map.lock().get_mut(idx as usize) {
            *b = false;
        }
    }

    /// Write S2CRs of `dev` to (type, cbndx), skipping entries already holding them.
    fn install_s2crs(&self, dev: DeviceId, ty: S2crType, cbndx: u8) -> Result<(), DriverError> {
        let mut s = self.streams.lock();
        let Some(m) = s.masters.get(&dev) else {
            return Err(DriverError::NoDevice);
        };
        let idxs = m.smendx.clone();
        for idx in idxs {
            let Some(e) = s.map.s2crs.get_mut(idx) else {
                continue;
            };
            if e.ty == ty && e.cbndx == cbndx {
                continue;
            }
            e.ty = ty;
            e.privcfg = 0;
            e.cbndx = cbndx;
            let w = s.map.s2cr_word(idx);
            self.hw.io.write(Page::Gr0, gr0::s2cr(idx as u32), w);
        }
        Ok(())
    }

    /// The hardware translation path of `iova_to_phys` (ATS1PR/ATSR/PAR).
    fn iova_to_phys_hard(&self, ctx: &DomainCtx, iova: Iova) -> Option<PhysAddr> {
        let io = &self.hw.io;
        let iova = iova.as_u64();
        let page = Page::Cb(ctx.cfg.cbndx);
        let g = ctx.tlb.cb_lock.lock();
        let va = iova & !0xfff;
        if ctx.cfg.fmt == CtxFmt::AArch64 {
            io.writeq(page, cb::ATS1PR, va);
        } else {
            io.write(page, cb::ATS1PR, va as u32);
        }
        // readl_poll_timeout_atomic(.., 5 µs, 50 µs): ten polls, then one last look.
        let done = (0..=10).any(|_| io.read(page, cb::ATSR) & atsr::ACTIVE == 0);
        if !done {
            drop(g);
            self.hw.print(
                Level::Err,
                &format!(
                    "iova to phys timed out on 0x{iova:016x}. Falling back to software table walk."
                ),
            );
            return ctx.table.iova_to_phys(Iova::new(iova));
        }
        let phys = io.readq(page, cb::PAR);
        drop(g);
        if phys & par::F != 0 {
            self.hw.print(Level::Err, "translation fault!");
            self.hw.print(Level::Err, &format!("PAR = 0x{phys:x}"));
            return None;
        }
        Some(PhysAddr::new(
            (phys & 0x0000_00ff_ffff_f000) | (iova & 0xfff),
        ))
    }

    /// Handle a global fault interrupt (Linux `arm_smmu_global_fault`).
    pub fn handle_global_fault(&self) -> smmu_arch::IrqReturn {
        crate::fault::global_fault(&self.hw)
    }

    /// Handle context interrupt `irq` (Linux `arm_smmu_context_fault`). The argument is the
    /// context interrupt index: the bank index on SMMUv2, CBAR.IRPTNDX (round-robin) on SMMUv1.
    /// As with Linux's shared IRQ, every domain whose bank uses that line gets its handler run.
    pub fn handle_context_fault(&self, irq: u16) -> smmu_arch::IrqReturn {
        let owners: Vec<Arc<DomainCtx>> = self
            .owners
            .read()
            .iter()
            .flatten()
            .filter(|c| c.cfg.irptndx == u32::from(irq))
            .cloned()
            .collect();
        let mut ret = smmu_arch::IrqReturn::None;
        for ctx in owners {
            let handler = ctx.fault_handler.lock().clone();
            let r = crate::fault::context_fault(
                &self.hw,
                self.behaviour.context_fault_report,
                ctx.cfg.cbndx,
                handler.as_deref(),
            );
            if r == smmu_arch::IrqReturn::Handled {
                ret = r;
            }
        }
        ret
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

impl DomainTlb {
    fn page(&self) -> Page {
        Page::Cb(self.cfg.cbndx)
    }

    fn asid(&self) -> u64 {
        u64::from(self.cfg.asid_vmid)
    }

    /// S1 range invalidation by VA (TLBIVA / TLBIVAL), one write per granule.
    fn inv_range_s1(&self, iova: u64, size: u64, granule: u64, reg: u64) {
        let io = &self.hw.io;
        if granule == 0 {
            return;
        }
        let steps = size.div_ceil(granule).max(1);
        if self.cfg.fmt != CtxFmt::AArch64 {
            let mut v = ((iova >> 12) << 12) | self.asid();
            for _ in 0..steps {
                io.write(self.page(), reg, v as u32);
                v = v.wrapping_add(granule);
            }
        } else {
            let mut v = (iova >> 12) | (self.asid() << 48);
            for _ in 0..steps {
                io.writeq(self.page(), reg, v);
                v = v.wrapping_add(granule >> 12);
            }
        }
    }

    /// S2 range invalidation by IPA (TLBIIPAS2 / TLBIIPAS2L).
    fn inv_range_s2(&self, iova: u64, size: u64, granule: u64, reg: u64) {
        let io = &self.hw.io;
        if granule == 0 {
            return;
        }
        let steps = size.div_ceil(granule).max(1);
        let mut v = iova >> 12;
        for _ in 0..steps {
            if self.cfg.fmt == CtxFmt::AArch64 {
                io.writeq(self.page(), reg, v);
            } else {
                io.write(self.page(), reg, v as u32);
            }
            v = v.wrapping_add(granule >> 12);
        }
    }

    fn sync_context(&self) {
        let _g = self.cb_lock.lock();
        self.hw.tlb_sync_context(self.cfg.cbndx);
    }

    fn v2(&self) -> bool {
        self.hw.cfg.version == Version::V2
    }

    /// Linux `arm_smmu_iotlb_sync`.
    fn iotlb_sync(&self) {
        if self.v2() || self.stage == DomainStage::S1 {
            self.sync_context();
        } else {
            self.hw.tlb_sync_global();
        }
    }
}

impl TlbOps for DomainTlb {
    fn tlb_flush_all(&self) {
        if self.stage == DomainStage::S1 {
            self.hw
                .io
                .write(self.page(), cb::S1_TLBIASID, u32::from(self.cfg.asid_vmid));
            self.sync_context();
        } else {
            self.hw
                .io
                .write(Page::Gr0, gr0::TLBIVMID, u32::from(self.cfg.asid_vmid));
            self.hw.tlb_sync_global();
        }
    }

    fn tlb_flush_walk(&self, iova: Iova, size: u64, granule: PageSize) {
        let (iova, granule) = (iova.as_u64(), granule.bytes());
        match (self.stage, self.v2()) {
            (DomainStage::S1, _) => {
                self.inv_range_s1(iova, size, granule, cb::S1_TLBIVA);
                self.sync_context();
            }
            (_, true) => {
                self.inv_range_s2(iova, size, granule, cb::S2_TLBIIPAS2);
                self.sync_context();
            }
            (_, false) => {
                self.hw
                    .io
                    .write(Page::Gr0, gr0::TLBIVMID, u32::from(self.cfg.asid_vmid));
                self.hw.tlb_sync_global();
            }
        }
    }

    fn tlb_add_page(&self, _gather: &mut Gather, iova: Iova, granule: PageSize) {
        let (iova, granule) = (iova.as_u64(), granule.bytes());
        match (self.stage, self.v2()) {
            (DomainStage::S1, _) => self.inv_range_s1(iova, granule, granule, cb::S1_TLBIVAL),
            (_, true) => self.inv_range_s2(iova, granule, granule, cb::S2_TLBIIPAS2L),
            (_, false) => self
                .hw
                .io
                .write(Page::Gr0, gr0::TLBIVMID, u32::from(self.cfg.asid_vmid)),
        }
    }
}

impl IommuDriver for ArmSmmu {
    fn log_name(&self) -> &str {
        &self.hw.prefix
    }

    fn probe_device(&self, master: &MasterInfo) -> Result<(), DriverError> {
        if self.quiesced.load(Ordering::SeqCst) {
            return Err(DriverError::Busy);
        }
        // arm_smmu_get_by_fwnode(): the SMMU's device must be bound to this driver.
        if !self.bound.load(Ordering::SeqCst) {
            return Err(if self.behaviour.defer_client_until_bound {
                // Since 229e6ee43d2a: "smmu dev has not bound yet", -EPROBE_DEFER.
                DriverError::ProbeDefer
            } else {
                DriverError::NullDereference {
                    function: "arm_smmu_probe_device",
                }
            });
        }
        // arm_smmu_master_alloc_smes() runs under stream_map_mutex.
        let _map = self.stream_map_mutex.lock()?;
        let mut s = self.streams.lock();
        for &fwid in &master.fwspec.ids {
            let sid = fwid & 0xffff;
            let mask = fwid >> 16;
            if sid & !s.map.streamid_mask != 0 {
                self.hw.log.printk(
                    Level::Err,
                    &dev_line(
                        &master.log_name,
                        &format!(
                            "stream ID 0x{sid:x} out of range for SMMU (0x{:x})",
                            s.map.streamid_mask
                        ),
                    ),
                );
                return Err(DriverError::StreamIdRange {
                    sid,
                    limit: s.map.streamid_mask,
                });
            }
            if mask & !s.map.smr_mask_mask != 0 {
                self.hw.log.printk(
                    Level::Err,
                    &dev_line(
                        &master.log_name,
                        &format!(
                            "SMR mask 0x{mask:x} out of range for SMMU (0x{:x})",
                            s.map.smr_mask_mask
                        ),
                    ),
                );
                return Err(DriverError::SmrMaskRange {
                    mask,
                    limit: s.map.smr_mask_mask,
                });
            }
        }
        if s.masters.contains_key(&master.id) {
            return Err(SmeError::AlreadyAllocated.into());
        }
        let smendx = s.map.alloc(&master.fwspec.ids)?;
        for &idx in &smendx {
            self.write_sme(&s.map, idx);
        }
        s.masters.insert(master.id, MasterCfg { smendx });
        Ok(())
    }

    fn release_device(&self, dev: DeviceId) {
        // arm_smmu_master_free_smes() runs under stream_map_mutex; a wait that can never end
        // leaves the entries taken (the kernel would hang here).
        let Ok(_map) = self.stream_map_mutex.lock() else {
            return;
        };
        let mut s = self.streams.lock();
        let Some(m) = s.masters.remove(&dev) else {
            return;
        };
        for idx in m.smendx {
            if s.map.free(idx) {
                self.write_sme(&s.map, idx);
            }
        }
    }

    fn device_group(&self, dev: DeviceId) -> Result<Option<u64>, DriverError> {
        // Since b1a1347912a7 the lookup and the record are one critical section of
        // stream_map_mutex; before it nothing is held between them.
        let held = if self.behaviour.group_lookup_under_stream_map_mutex {
            Some(self.stream_map_mutex.lock()?)
        } else {
            None
        };
        let looked_up = {
            let s = self.streams.lock();
            let Some(m) = s.masters.get(&dev) else {
                return Err(DriverError::NoDevice);
            };
            let mut group = None;
            let mut conflict = false;
            for &idx in &m.smendx {
                let g = s.map.s2crs.get(idx).and_then(|e| e.group);
                if let (Some(a), Some(b)) = (group, g) {
                    conflict |= a != b;
                }
                if g.is_some() {
                    group = g;
                }
            }
            if conflict {
                Err(m.smendx.clone())
            } else {
                Ok((group, m.smendx.clone()))
            }
        };
        let (found, smendx) = match looked_up {
            Ok(x) => x,
            Err(_) => {
                // The master's entries already belong to two different groups: -EINVAL.
                // Before 53f613134984 this return kept stream_map_mutex.
                if let Some(g) = held {
                    if self.behaviour.unlock_on_group_conflict {
                        drop(g);
                    } else {
                        g.leak();
                    }
                }
                return Err(DriverError::StreamsInTwoGroups);
            }
        };
        if found.is_some() {
            return Ok(found);
        }
        // No group recorded: generic_device_group()/pci_device_group() allocate one, a point
        // where another prober can run, then it is remembered in every entry of the master.
        sched_point(Point::Kernel);
        let key = u64::from(dev.0) + 1;
        let mut s = self.streams.lock();
        for &idx in &smendx {
            if let Some(e) = s.map.s2crs.get_mut(idx) {
                e.group = Some(key);
            }
        }
        drop(s);
        drop(held);
        Ok(Some(key))
    }

    fn domain_alloc(&self, kind: DomainKind) -> Result<DriverDomain, DriverError> {
        let id = self.next_domain.fetch_add(1, Ordering::Relaxed);
        let d = Arc::new(SmmuDomain {
            kind,
            state: Mutex::new(DomainState::Unfinalised),
            pending_handler: Mutex::new(None),
        });
        self.domains.write().insert(id, d);
        Ok(DriverDomain(id))
    }

    fn domain_free(&self, dom: DriverDomain) {
        let Some(d) = self.domains.write().remove(&dom.0) else {
            return;
        };
        let st = std::mem::replace(&mut *d.state.lock(), DomainState::Unfinalised);
        if let DomainState::Paging(ctx) = st {
            self.destroy_domain_context(&ctx);
        }
    }

    fn attach_dev(&self, dom: DriverDomain, dev: DeviceId) -> Result<(), DriverError> {
        if self.quiesced.load(Ordering::SeqCst) {
            return Err(DriverError::Busy);
        }
        if !self.streams.lock().masters.contains_key(&dev) {
            return Err(DriverError::NoDevice);
        }
        let Some(d) = self.domain(dom) else {
            return Err(DriverError::NoDomain { id: dom.0 });
        };
        let (ty, cbndx) = {
            let mut st = d.state.lock();
            if let DomainState::Unfinalised = &*st {
                *st = match d.kind {
                    DomainKind::Identity => DomainState::Bypass,
                    DomainKind::Blocked => DomainState::Blocked,
                    _ => DomainState::Paging(self.init_domain_context(&d)?),
                };
            }
            match &*st {
                DomainState::Bypass => (S2crType::Bypass, 0),
                DomainState::Blocked => (S2crType::Fault, 0),
                DomainState::Paging(c) => (S2crType::Trans, c.cfg.cbndx as u8),
                DomainState::Unfinalised => return Err(DriverError::NoDevice),
            }
        };
        self.install_s2crs(dev, ty, cbndx)
    }

    fn geometry(&self, dom: DriverDomain) -> Option<Geometry> {
        let c = self.ctx(dom)?;
        let hw = c.table.hw();
        Some(Geometry {
            aperture_start: 0,
            aperture_end: if hw.ias >= 64 {
                u64::MAX
            } else {
                (1u64 << hw.ias) - 1
            },
            pgsize_bitmap: c.table.pgsize_bitmap(),
        })
    }

    fn map_pages(
        &self,
        dom: DriverDomain,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: PageSize,
        pgcount: PageCount,
        prot: Prot,
    ) -> Result<u64, DriverError> {
        let Some(c) = self.ctx(dom) else {
            return Err(DriverError::NoDevice);
        };
        c.table.map_pages(iova, paddr, pgsize, pgcount, prot)
    }

    fn unmap_pages(
        &self,
        dom: DriverDomain,
        iova: Iova,
        pgsize: PageSize,
        pgcount: PageCount,
        gather: &mut Gather,
    ) -> u64 {
        let Some(c) = self.ctx(dom) else {
            return 0;
        };
        c.table.unmap_pages(iova, pgsize, pgcount, gather)
    }

    fn iotlb_sync(&self, dom: DriverDomain, _gather: &mut Gather) {
        if let Some(c) = self.ctx(dom) {
            c.tlb.iotlb_sync();
        }
    }

    fn flush_iotlb_all(&self, dom: DriverDomain) {
        if let Some(c) = self.ctx(dom) {
            c.tlb.tlb_flush_all();
        }
    }

    fn iova_to_phys(&self, dom: DriverDomain, iova: Iova) -> Option<PhysAddr> {
        let d = self.domain(dom)?;
        if d.kind == DomainKind::Identity {
            return Some(PhysAddr::new(iova.as_u64()));
        }
        let c = self.ctx(dom)?;
        if self.hw.cfg.features.has(Features::TRANS_OPS) && c.stage == DomainStage::S1 {
            self.iova_to_phys_hard(&c, iova)
        } else {
            c.table.iova_to_phys(iova)
        }
    }
}
