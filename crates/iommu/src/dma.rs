//! The DMA API a device driver calls (dma-mapping + dma-iommu, v6.1 behaviour).
//!
//! Each call finds the device's group and uses the group's *default* domain, as
//! `iommu_get_dma_domain` does. How the group pointer is read is the point of the seed bug:
//!
//! * safe mode: the call holds the read side of the device's group pointer for its whole
//!   duration, so `release_device` waits for it, and a released device gets
//!   [`DmaError::DeviceReleased`];
//! * Linux-faithful mode: the pointer is loaded once, with scheduling points before and after
//!   the load and nothing excluding a concurrent release; a NULL pointer is the seed's oops,
//!   returned as [`DmaError::Oops`]. A domain whose group was freed after the load is
//!   [`DmaError::UseAfterFree`]: Linux would use freed memory (KASAN reports it); the library
//!   stays safe and names the use. The safe core reports such a domain as
//!   [`DmaError::DomainDying`].
//!
//! Under an identity (passthrough) default domain the device uses dma-direct. Linux's
//! dma-direct never looks at the group and keeps no record of mappings, so the Linux-faithful
//! core lets a released device map, accepts any unmap of a live (address, size, direction), and
//! leaves kinds unchecked. The safe core gives the same typed errors as under a DMA domain: a
//! released device gets [`DmaError::DeviceReleased`], a range that is not system memory
//! [`DmaError::NotSystemMemory`], and an unmap by another call than the one that mapped
//! (page vs sg vs coherent, or part of a scatterlist) [`DmaError::WrongKind`].

mod coherent;
mod direct;
mod map;
mod msi;

pub use msi::MsiCookie;

use crate::core::{Bus, Device, IommuCore};
use crate::domain::{Domain, MapKind, Mapping};
use crate::error::DmaError;
use crate::oops::{Oops, OopsPath};
use crate::ops::*;
use smmu_addr::{DmaAddr, Iova, IovaPfn, PageCount, PhysAddr};
use smmu_sync::atomic::Ordering;
use smmu_sync::{sched_point, Arc, Point};

/// DMA direction (Linux `enum dma_data_direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DmaDirection {
    /// Both ways.
    Bidirectional,
    /// Device reads memory.
    ToDevice,
    /// Device writes memory.
    FromDevice,
    /// Invalid for mapping calls.
    None,
}

impl DmaDirection {
    /// `dma_info_to_prot`.
    pub fn prot(self, coherent: bool) -> Option<Prot> {
        let p = match self {
            DmaDirection::Bidirectional => Prot::READ | Prot::WRITE,
            DmaDirection::ToDevice => Prot::READ,
            DmaDirection::FromDevice => Prot::WRITE,
            DmaDirection::None => return None,
        };
        Some(if coherent { p | Prot::CACHE } else { p })
    }
}

/// The call that made a direct (untranslated) mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectKind {
    /// `dma_map_page`.
    Page,
    /// One segment of `dma_map_sg`; the whole list it returned.
    Sg(Vec<(DmaAddr, u64)>),
    /// `dma_alloc_coherent`.
    Coherent,
}

/// The call that is undoing a mapping: each may only undo what the matching call made.
enum Undo {
    /// `dma_unmap_page`.
    Page,
    /// `dma_unmap_sg` with the list `dma_map_sg` returned.
    Sg(Vec<(DmaAddr, u64)>),
    /// `dma_free_coherent` of the buffer at `cpu_pa`.
    Coherent { cpu_pa: PhysAddr },
}

impl Undo {
    /// Whether a translated mapping of this kind is this call's to undo.
    fn made(&self, kind: &MapKind) -> bool {
        match (self, kind) {
            (Undo::Page, MapKind::Page) => true,
            (Undo::Sg(want), MapKind::Sg(got)) => want == got,
            (Undo::Coherent { cpu_pa }, MapKind::Coherent { pa, .. }) => pa == cpu_pa,
            _ => false,
        }
    }

    /// The kind of direct mapping this call undoes.
    fn direct_kind(&self) -> DirectKind {
        match self {
            Undo::Page => DirectKind::Page,
            Undo::Sg(list) => DirectKind::Sg(list.clone()),
            Undo::Coherent { .. } => DirectKind::Coherent,
        }
    }
}

/// A direct mapping's key (address, size, direction) and the calls that made it.
type DirectEntry<'a> = (&'a (DmaAddr, u64, DmaDirection), &'a Vec<DirectKind>);

/// How a call reached the domain; keeps the group pointer's read side held in safe mode.
enum CallPath<'a> {
    /// The guard is held only to be dropped at the end of the call (never read, hence `_held`).
    Safe {
        _held: smmu_sync::RwLockReadGuard<'a, Option<Arc<crate::core::Group>>>,
    },
    Faithful,
}

/// Result of resolving a device for a DMA call.
enum Target {
    Direct,
    Domain(Arc<Domain>),
}

const PAGE_4G: u64 = 1 << 32;

/// How a map call reads the mapping's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResultCheck {
    /// An error is a failure: the IOVA is freed and the error returned.
    Signed,
    /// `dma_map_sg` before a3884774d731: the error, compared unsigned with the length, passes
    /// as success.
    Unsigned,
}

impl IommuCore {
    fn dma_err<T>(&self, e: DmaError) -> Result<T, DmaError> {
        let c = if matches!(e, DmaError::Oops(_)) {
            &self.counters.oopses
        } else {
            &self.counters.dma_errors
        };
        c.fetch_add(1, Ordering::Relaxed);
        Err(e)
    }

    /// `iommu_get_dma_domain`, per mode. `path` selects the oops of a NULL group (None: a call
    /// whose Linux oops values the seed does not show; it gets the typed error instead).
    fn resolve<'a>(
        &self,
        dev: &'a Device,
        path: Option<OopsPath>,
    ) -> Result<(CallPath<'a>, Target), DmaError> {
        if dev.direct {
            // dma-direct ops never look at the group; the safe core still refuses a released
            // device, and holds the pointer's read side like any other call.
            if self.cfg.linux_faithful {
                return Ok((CallPath::Faithful, Target::Direct));
            }
            let guard = dev.group.read();
            if guard.is_none() {
                return Err(self.released_err(dev));
            }
            return Ok((CallPath::Safe { _held: guard }, Target::Direct));
        }
        // Entering the DMA API: the other CPUs may run first (no lock is held here).
        sched_point(Point::Kernel);
        if self.cfg.linux_faithful {
            let g = dev.group.read().clone();
            sched_point(Point::Kernel);
            match g {
                Some(g) => match g.default_domain() {
                    Some(d) => Ok((CallPath::Faithful, Target::Domain(d))),
                    // The group was freed after the load (from v6.6 its last member's release
                    // cleared `default_domain` first): reading it read freed memory.
                    None if g.freed.load(Ordering::Acquire) => Err(DmaError::UseAfterFree {
                        object: "struct iommu_group",
                        function: "iommu_get_dma_domain",
                    }),
                    None => Err(DmaError::NoGroup),
                },
                None => Err(match path {
                    Some(p) => {
                        DmaError::Oops(Oops::null_group(p, self.cfg.group_default_domain_offset))
                    }
                    None => self.released_err(dev),
                }),
            }
        } else {
            let guard = dev.group.read();
            let dom = match guard.as_ref().map(|g| g.default_domain()) {
                Some(Some(d)) => d,
                Some(None) => return Err(DmaError::NoGroup),
                None => return Err(self.released_err(dev)),
            };
            Ok((CallPath::Safe { _held: guard }, Target::Domain(dom)))
        }
    }

    /// A call met a domain whose group was freed while it ran: a use-after-free in the
    /// Linux-faithful core, a typed refusal in the safe one.
    fn dying_err(&self, function: &'static str) -> DmaError {
        if self.cfg.linux_faithful {
            DmaError::UseAfterFree {
                object: "struct iommu_domain",
                function,
            }
        } else {
            DmaError::DomainDying
        }
    }

    fn released_err(&self, dev: &Device) -> DmaError {
        if dev.released.load(Ordering::Acquire) {
            DmaError::DeviceReleased
        } else {
            DmaError::NoGroup
        }
    }

    fn granule_shift(dom: &Domain) -> Result<u32, DmaError> {
        dom.lock()
            .iova
            .as_ref()
            .map(|i| i.params().shift)
            .ok_or(DmaError::Invalid("domain has no DMA IOVA space"))
    }

    /// The inclusive IOVA PFN limit for a device (`iommu_dma_alloc_iova`).
    fn iova_alloc(
        &self,
        dev: &Device,
        dom: &Domain,
        pages: PageCount,
    ) -> Result<IovaPfn, DmaError> {
        let mut st = dom.lock();
        if dom.is_dying() {
            return Err(self.dying_err("iommu_dma_map_page"));
        }
        let iova = st
            .iova
            .as_mut()
            .ok_or(DmaError::Invalid("domain has no DMA IOVA space"))?;
        let p = iova.params();
        let mut limit = dev.desc.dma_mask;
        if dev.desc.bus_dma_limit != 0 {
            limit = limit.min(dev.desc.bus_dma_limit);
        }
        let limit = limit.min((p.end_pfn.get() << p.shift) | ((1u64 << p.shift) - 1));
        let limit_pfn = IovaPfn::new(limit >> p.shift);
        let mut got = None;
        if limit > PAGE_4G - 1 && !self.cfg.forcedac && dev.desc.bus == Bus::Pci {
            got = iova.alloc_fast(pages, IovaPfn::new((PAGE_4G - 1) >> p.shift), false);
        }
        if got.is_none() {
            got = iova.alloc_fast(pages, limit_pfn, true);
        }
        got.ok_or(DmaError::NoIovaSpace {
            size: pages.get() << p.shift,
        })
    }

    /// Map `len` bytes (granule aligned) at a fresh IOVA; returns the IOVA PFN.
    fn map_fresh(
        &self,
        dev: &Device,
        dom: &Domain,
        shift: u32,
        chunks: &[(PhysAddr, u64)],
        prot: Prot,
        check: ResultCheck,
    ) -> Result<(IovaPfn, PageCount), DmaError> {
        let total = chunks
            .iter()
            .try_fold(0u64, |a, c| a.checked_add(c.1))
            .ok_or(DmaError::Invalid("scatterlist too large"))?;
        let pages = PageCount::new(total >> shift);
        let pfn = self.iova_alloc(dev, dom, pages)?;
        let base = Iova::new(pfn.get() << shift);
        let mut off = 0;
        for &(pa, len) in chunks {
            let at = base
                .checked_add(off)
                .ok_or(DmaError::Invalid("scatterlist too large"))?;
            if let Err(e) = dom.map_range(at, pa, len, prot) {
                self.warn_if_already_mapped(&dev.desc.log_name, &e);
                if off > 0 {
                    dom.unmap_range(base, off, true);
                }
                if check == ResultCheck::Unsigned {
                    // The negative error read as an unsigned count is not below the IOVA
                    // length: the call "succeeded", keeping the IOVA with nothing mapped.
                    return Ok((pfn, pages));
                }
                if let Some(i) = dom.lock().iova.as_mut() {
                    i.free_fast(pfn, pages);
                }
                return Err(e.into());
            }
            off += len;
        }
        Ok((pfn, pages))
    }

    /// Tear down a mapping whose record was already removed: unmap, then free or queue the IOVA.
    fn unmap_fresh(&self, dom: &Domain, m: &Mapping, shift: u32) {
        let lazy = dom.kind() == DomainKind::DmaFq;
        let bytes = m.pages.get() << shift;
        dom.unmap_range(Iova::new(m.pfn.get() << shift), bytes, !lazy);
        if lazy {
            let flushes = dom.fq_queue(m.pfn, m.pages, self.log.now_ns());
            self.counters
                .fq_flushes
                .fetch_add(flushes, Ordering::Relaxed);
        } else if let Some(i) = dom.lock().iova.as_mut() {
            i.free_fast(m.pfn, m.pages);
        }
    }

    fn poll_fq(&self, dom: &Domain) {
        if dom.kind() == DomainKind::DmaFq && dom.fq_poll(self.log.now_ns(), false) {
            self.counters.fq_flushes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Live DMA mappings of a device (translated ones in its default domain, plus direct ones).
    pub fn live_mappings(&self, dev: DeviceId) -> usize {
        let Some(d) = self.device(dev) else {
            return 0;
        };
        let direct: usize = d.direct_maps.lock().values().map(Vec::len).sum();
        let g = d.group.read().clone();
        direct
            + g.and_then(|g| g.default_domain())
                .map_or(0, |d| d.live_mappings())
    }
}
