//! Domains and their context banks: lookup, Linux's `arm_smmu_init_domain_context` /
//! `arm_smmu_destroy_domain_context`, S2CR installation and the hardware `iova_to_phys` path.

use super::{ArmSmmu, DomainCtx, DomainState, DomainTlb, FaultHandler, SmmuDomain};
use crate::config::Features;
use crate::context::{write_context_bank, CbCfg, CbShadow, CtxFmt, DomainStage};
use crate::fw::Version;
use crate::io::Page;
use crate::streams::S2crType;
use crate::table::TableRequest;
use iommu::{DeviceId, DriverDomain, DriverError, Resource};
use klog::Level;
use pgtable::TlbOps;
use smmu_addr::{Iova, PageSize, PhysAddr};
use smmu_arch::regs::{atsr, cb, cbar, gr0, par};
use smmu_arch::Stage;
use smmu_sync::atomic::Ordering;
use smmu_sync::{Arc, Mutex, SpinLockIrq};

impl ArmSmmu {
    /// Whether any context bank is allocated (shutdown's "disabling translation" condition).
    pub fn any_context_bank_in_use(&self) -> bool {
        self.context_map.lock().iter().any(|&b| b)
    }

    pub(super) fn domain(&self, dom: DriverDomain) -> Option<Arc<SmmuDomain>> {
        self.domains.read().get(&dom.0).cloned()
    }

    pub(super) fn ctx(&self, dom: DriverDomain) -> Option<Arc<DomainCtx>> {
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
    pub(super) fn init_domain_context(
        &self,
        d: &SmmuDomain,
    ) -> Result<Arc<DomainCtx>, DriverError> {
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
            cb_lock: SpinLockIrq::new(()),
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
    pub(super) fn destroy_domain_context(&self, ctx: &DomainCtx) {
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
        // free_io_pgtable_ops: the flush, then the tables. They go now rather than with the
        // last reference to the context, which a driver snapshot may hold.
        ctx.tlb.tlb_flush_all();
        ctx.table.free();
        if let Some(hook) = self.release_hook.read().as_ref() {
            hook(idx);
        }
        if let Some(b) = self.context_map.lock().get_mut(idx as usize) {
            *b = false;
        }
    }

    /// Write S2CRs of `dev` to (type, cbndx), skipping entries already holding them.
    pub(super) fn install_s2crs(
        &self,
        dev: DeviceId,
        ty: S2crType,
        cbndx: u8,
    ) -> Result<(), DriverError> {
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
    pub(super) fn iova_to_phys_hard(&self, ctx: &DomainCtx, iova: Iova) -> Option<PhysAddr> {
        let io = &self.hw.io;
        let page = Page::Cb(ctx.cfg.cbndx);
        let g = ctx.tlb.cb_lock.lock();
        let va = iova.align_down(PageSize::SZ_4K).as_u64();
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
                    "iova to phys timed out on 0x{:016x}. Falling back to software table walk.",
                    iova.as_u64()
                ),
            );
            return ctx.table.iova_to_phys(iova);
        }
        let phys = io.readq(page, cb::PAR);
        drop(g);
        if phys & par::F != 0 {
            self.hw.print(Level::Err, "translation fault!");
            self.hw.print(Level::Err, &format!("PAR = 0x{phys:x}"));
            return None;
        }
        Some(PhysAddr::new(
            (phys & par::LINUX_PA_MASK) | iova.page_offset(PageSize::SZ_4K),
        ))
    }
}
