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

use crate::core::{Bus, Device, IommuCore};
use crate::domain::{Domain, MapKind, Mapping};
use crate::error::DmaError;
use crate::oops::{Oops, OopsPath};
use crate::ops::*;
use smmu_addr::{DmaAddr, Iova, PhysAddr};
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
    /// Held only to be dropped at the end of the call.
    Safe(#[allow(dead_code)] smmu_sync::RwLockReadGuard<'a, Option<Arc<crate::core::Group>>>),
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
            return Ok((CallPath::Safe(guard), Target::Direct));
        }
        // Entering the DMA API: the other CPUs may run first (no lock is held here).
        sched_point(Point::Kernel);
        if self.cfg.linux_faithful {
            let g = dev.group.read().clone();
            sched_point(Point::Kernel);
            match g {
                Some(g) => match g.default_domain() {
                    Some(d) => Ok((CallPath::Faithful, Target::Domain(d))),
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
            Ok((CallPath::Safe(guard), Target::Domain(dom)))
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
    fn iova_alloc(&self, dev: &Device, dom: &Domain, pages: u64) -> Result<u64, DmaError> {
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
        let limit = limit.min((p.end_pfn << p.shift) | ((1u64 << p.shift) - 1));
        let limit_pfn = limit >> p.shift;
        let mut got = None;
        if limit > PAGE_4G - 1 && !self.cfg.forcedac && dev.desc.bus == Bus::Pci {
            got = iova.alloc_fast(pages, (PAGE_4G - 1) >> p.shift, false);
        }
        if got.is_none() {
            got = iova.alloc_fast(pages, limit_pfn, true);
        }
        got.ok_or(DmaError::NoIovaSpace {
            size: pages << p.shift,
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
    ) -> Result<(u64, u64), DmaError> {
        let total = chunks
            .iter()
            .try_fold(0u64, |a, c| a.checked_add(c.1))
            .ok_or(DmaError::Invalid("scatterlist too large"))?;
        let pages = total >> shift;
        let pfn = self.iova_alloc(dev, dom, pages)?;
        let base = Iova::new(pfn << shift);
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
        let bytes = m.pages << shift;
        dom.unmap_range(Iova::new(m.pfn << shift), bytes, !lazy);
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

    /// `dma_map_page_attrs`: map `size` bytes at physical `paddr` for the device; returns the
    /// DMA address (IOVA plus the offset within the granule; the physical address itself for
    /// an identity default domain).
    pub fn dma_map_page(
        &self,
        dev: DeviceId,
        paddr: PhysAddr,
        size: u64,
        dir: DmaDirection,
    ) -> Result<DmaAddr, DmaError> {
        let r = self.map_page_inner(dev, paddr, size, dir);
        match r {
            Ok(a) => {
                self.counters.maps.fetch_add(1, Ordering::Relaxed);
                Ok(a)
            }
            Err(e) => self.dma_err(e),
        }
    }

    fn map_page_inner(
        &self,
        id: DeviceId,
        paddr: PhysAddr,
        size: u64,
        dir: DmaDirection,
    ) -> Result<DmaAddr, DmaError> {
        let dev = self.device(id).ok_or(DmaError::NoDevice)?;
        let (access, target) = self.resolve(&dev, Some(OopsPath::MapPage))?;
        let prot = dir
            .prot(dev.desc.coherent)
            .ok_or(DmaError::Invalid("DMA_NONE direction"))?;
        if size == 0 || paddr.checked_add(size).is_none() {
            return Err(DmaError::Invalid("zero or overflowing size"));
        }
        let dom = match target {
            Target::Direct => return self.direct_map(&dev, paddr, size, dir),
            Target::Domain(d) => d,
        };
        if dom.kind() == DomainKind::Identity {
            return self.direct_map_in(&dev, &dom, paddr, size, dir);
        }
        self.poll_fq(&dom);
        let shift = Self::granule_shift(&dom)?;
        let g = 1u64 << shift;
        let off = paddr.as_u64() & (g - 1);
        let len = (size + off)
            .checked_add(g - 1)
            .ok_or(DmaError::Invalid("overflowing size"))?
            & !(g - 1);
        let (pfn, pages) = self.map_fresh(
            &dev,
            &dom,
            shift,
            &[(PhysAddr::new(paddr.as_u64() - off), len)],
            prot,
            ResultCheck::Signed,
        )?;
        let handle = DmaAddr::from_iova(Iova::new((pfn << shift) + off));
        dom.lock().maps.insert(
            handle,
            Mapping {
                pfn,
                pages,
                size,
                dir,
                kind: MapKind::Page,
            },
        );
        drop(access);
        Ok(handle)
    }

    /// `dma_unmap_page_attrs`: undo a [`Self::dma_map_page`] with the same size and direction.
    pub fn dma_unmap_page(
        &self,
        dev: DeviceId,
        addr: DmaAddr,
        size: u64,
        dir: DmaDirection,
    ) -> Result<(), DmaError> {
        match self.unmap_inner(dev, addr, size, dir, Some(OopsPath::UnmapPage), &Undo::Page) {
            Ok(_) => {
                self.counters.unmaps.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => self.dma_err(e),
        }
    }

    /// Validate and remove the record at `addr`, then unmap. Returns the removed record.
    fn unmap_inner(
        &self,
        id: DeviceId,
        addr: DmaAddr,
        size: u64,
        dir: DmaDirection,
        path: Option<OopsPath>,
        undo: &Undo,
    ) -> Result<Option<Mapping>, DmaError> {
        let direct_kind = &undo.direct_kind();
        let dev = self.device(id).ok_or(DmaError::NoDevice)?;
        let (access, target) = self.resolve(&dev, path)?;
        let dom = match target {
            Target::Direct => {
                return self
                    .direct_unmap(&dev, &[(addr, size)], dir, direct_kind)
                    .map(|_| None);
            }
            Target::Domain(d) => d,
        };
        if dom.kind() == DomainKind::Identity {
            return self
                .direct_unmap(&dev, &[(addr, size)], dir, direct_kind)
                .map(|_| None);
        }
        let shift = Self::granule_shift(&dom)?;
        let m = {
            let mut st = dom.lock();
            if self.cfg.linux_faithful && dom.is_dying() {
                return Err(self.dying_err("iommu_dma_unmap_page"));
            }
            let m = st.maps.get(&addr).ok_or(DmaError::NotMapped { addr })?;
            if !undo.made(&m.kind) {
                return Err(DmaError::WrongKind { addr });
            }
            if m.size != size {
                return Err(DmaError::WrongSize {
                    addr,
                    mapped: m.size,
                    requested: size,
                });
            }
            if m.dir != dir {
                return Err(DmaError::WrongDirection { addr });
            }
            st.maps.remove(&addr)
        };
        let Some(m) = m else {
            return Err(DmaError::NotMapped { addr });
        };
        self.unmap_fresh(&dom, &m, shift);
        self.poll_fq(&dom);
        drop(access);
        Ok(Some(m))
    }

    /// `dma_map_sg`: one IOVA range for the whole list (each segment padded to the granule),
    /// returned per segment as (DMA address, length). Segments are not merged.
    pub fn dma_map_sg(
        &self,
        dev: DeviceId,
        segs: &[(PhysAddr, u64)],
        dir: DmaDirection,
    ) -> Result<Vec<(DmaAddr, u64)>, DmaError> {
        match self.map_sg_inner(dev, segs, dir) {
            Ok(v) => {
                self.counters.maps.fetch_add(1, Ordering::Relaxed);
                Ok(v)
            }
            Err(e) => self.dma_err(e),
        }
    }

    fn map_sg_inner(
        &self,
        id: DeviceId,
        segs: &[(PhysAddr, u64)],
        dir: DmaDirection,
    ) -> Result<Vec<(DmaAddr, u64)>, DmaError> {
        let dev = self.device(id).ok_or(DmaError::NoDevice)?;
        let (access, target) = self.resolve(&dev, None)?;
        let prot = dir
            .prot(dev.desc.coherent)
            .ok_or(DmaError::Invalid("DMA_NONE direction"))?;
        if segs.is_empty()
            || segs
                .iter()
                .any(|&(pa, len)| len == 0 || pa.checked_add(len).is_none())
        {
            return Err(DmaError::Invalid("empty scatterlist or bad segment"));
        }
        let dom = match target {
            Target::Direct => {
                // Each segment at its physical address, recorded as part of this list.
                for &(pa, len) in segs {
                    self.direct_check(&dev, pa, len, dir)?;
                }
                let list: Vec<(DmaAddr, u64)> = segs
                    .iter()
                    .map(|&(pa, len)| (DmaAddr::from_phys(pa), len))
                    .collect();
                let kind = DirectKind::Sg(list.clone());
                for &(addr, len) in &list {
                    self.direct_record(&dev, addr, len, dir, kind.clone());
                }
                return Ok(list);
            }
            Target::Domain(d) => d,
        };
        if dom.kind() == DomainKind::Identity {
            return Err(DmaError::Invalid("sg on an identity default domain"));
        }
        self.poll_fq(&dom);
        let shift = Self::granule_shift(&dom)?;
        let g = 1u64 << shift;
        let mut chunks = Vec::with_capacity(segs.len());
        for &(pa, len) in segs {
            let off = pa.as_u64() & (g - 1);
            let l = (len + off)
                .checked_add(g - 1)
                .ok_or(DmaError::Invalid("overflowing segment"))?
                & !(g - 1);
            chunks.push((PhysAddr::new(pa.as_u64() - off), l));
        }
        let check = if self.cfg.map_sg_signed_result_check {
            ResultCheck::Signed
        } else {
            ResultCheck::Unsigned
        };
        let (pfn, pages) = self.map_fresh(&dev, &dom, shift, &chunks, prot, check)?;
        let mut out = Vec::with_capacity(segs.len());
        let mut cursor = pfn << shift;
        for (&(pa, len), &(_, l)) in segs.iter().zip(&chunks) {
            out.push((
                DmaAddr::from_iova(Iova::new(cursor + (pa.as_u64() & (g - 1)))),
                len,
            ));
            cursor += l;
        }
        let size = segs.iter().fold(0u64, |a, s| a.saturating_add(s.1));
        dom.lock().maps.insert(
            out[0].0,
            Mapping {
                pfn,
                pages,
                size,
                dir,
                kind: MapKind::Sg(out.clone()),
            },
        );
        drop(access);
        Ok(out)
    }

    /// `dma_unmap_sg`: undo a [`Self::dma_map_sg`]; `segs` is the list it returned.
    pub fn dma_unmap_sg(
        &self,
        dev: DeviceId,
        segs: &[(DmaAddr, u64)],
        dir: DmaDirection,
    ) -> Result<(), DmaError> {
        let Some(&(first, _)) = segs.first() else {
            return self.dma_err(DmaError::Invalid("empty scatterlist"));
        };
        let size = segs.iter().fold(0u64, |a, s| a.saturating_add(s.1));
        let is_direct = self.device(dev).is_some_and(|d| d.direct);
        let r = if is_direct {
            // Direct mappings are per segment; the safe core takes all of the list or none.
            self.device(dev)
                .ok_or(DmaError::NoDevice)
                .and_then(|d| {
                    let (access, _) = self.resolve(&d, None)?;
                    let r = self.direct_unmap(&d, segs, dir, &DirectKind::Sg(segs.to_vec()));
                    drop(access);
                    r
                })
                .map(|_| None)
        } else {
            let want = segs.to_vec();
            self.unmap_inner(dev, first, size, dir, None, &Undo::Sg(want))
        };
        match r {
            Ok(_) => {
                self.counters.unmaps.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => self.dma_err(e),
        }
    }

    /// `dma_alloc_coherent`: zeroed memory from the core's frame allocator, mapped
    /// bidirectionally. Returns (physical address for the CPU, DMA address for the device).
    pub fn dma_alloc_coherent(
        &self,
        dev: DeviceId,
        size: u64,
    ) -> Result<(PhysAddr, DmaAddr), DmaError> {
        match self.alloc_coherent_inner(dev, size) {
            Ok(v) => {
                self.counters.maps.fetch_add(1, Ordering::Relaxed);
                Ok(v)
            }
            Err(e) => self.dma_err(e),
        }
    }

    fn alloc_coherent_inner(
        &self,
        id: DeviceId,
        size: u64,
    ) -> Result<(PhysAddr, DmaAddr), DmaError> {
        let dev = self.device(id).ok_or(DmaError::NoDevice)?;
        let (access, target) = self.resolve(&dev, None)?;
        if size == 0 || size > physmem::FRAME_SIZE << 10 {
            return Err(DmaError::Invalid("coherent size must be 1 byte to 4 MiB"));
        }
        let alloc = size.next_power_of_two().max(physmem::FRAME_SIZE);
        let dir = DmaDirection::Bidirectional;
        let dom = match target {
            Target::Direct => None,
            Target::Domain(d) if d.kind() == DomainKind::Identity => None,
            Target::Domain(d) => Some(d),
        };
        let pa = self.coherent.alloc(alloc)?;
        let Some(dom) = dom else {
            // dma-direct: the device uses the physical address.
            if pa.as_u64() + alloc - 1 > dev.desc.dma_mask {
                let _ = self.coherent.free(pa, alloc);
                return Err(DmaError::BeyondMask { paddr: pa });
            }
            let addr = DmaAddr::from_phys(pa);
            self.direct_record(&dev, addr, size, dir, DirectKind::Coherent);
            drop(access);
            return Ok((pa, addr));
        };
        let prot = dir.prot(dev.desc.coherent).unwrap_or(Prot::READ);
        let res = Self::granule_shift(&dom).and_then(|shift| {
            let g = 1u64 << shift;
            let len = alloc.div_ceil(g) * g;
            self.map_fresh(&dev, &dom, shift, &[(pa, len)], prot, ResultCheck::Signed)
                .map(|r| (r, shift))
        });
        let ((pfn, pages), shift) = match res {
            Ok(r) => r,
            Err(e) => {
                let _ = self.coherent.free(pa, alloc);
                return Err(e);
            }
        };
        let handle = DmaAddr::from_iova(Iova::new(pfn << shift));
        dom.lock().maps.insert(
            handle,
            Mapping {
                pfn,
                pages,
                size,
                dir,
                kind: MapKind::Coherent { pa, alloc },
            },
        );
        drop(access);
        Ok((pa, handle))
    }

    /// `dma_free_coherent`: undo a [`Self::dma_alloc_coherent`] (same size and addresses).
    pub fn dma_free_coherent(
        &self,
        dev: DeviceId,
        size: u64,
        cpu_pa: PhysAddr,
        dma: DmaAddr,
    ) -> Result<(), DmaError> {
        let is_direct = self.device(dev).is_some_and(|d| d.direct);
        let r = if is_direct {
            self.unmap_inner(
                dev,
                dma,
                size,
                DmaDirection::Bidirectional,
                None,
                &Undo::Coherent { cpu_pa },
            )
            .and_then(|_| {
                if DmaAddr::from_phys(cpu_pa) != dma {
                    return Err(DmaError::WrongKind { addr: dma });
                }
                let alloc = size.next_power_of_two().max(physmem::FRAME_SIZE);
                self.coherent.free(cpu_pa, alloc).map_err(DmaError::from)
            })
        } else {
            self.unmap_inner(
                dev,
                dma,
                size,
                DmaDirection::Bidirectional,
                None,
                &Undo::Coherent { cpu_pa },
            )
            .and_then(|m| match m {
                Some(Mapping {
                    kind: MapKind::Coherent { pa, alloc },
                    ..
                }) => self.coherent.free(pa, alloc).map_err(DmaError::from),
                _ => {
                    let alloc = size.next_power_of_two().max(physmem::FRAME_SIZE);
                    self.coherent.free(cpu_pa, alloc).map_err(DmaError::from)
                }
            })
        };
        match r {
            Ok(()) => {
                self.counters.unmaps.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => self.dma_err(e),
        }
    }

    // --- dma-direct (identity default domain) ---

    /// Whether dma-direct may map this range: a direction, the device's mask, and (safe core
    /// only: Linux does not check) system memory behind it.
    fn direct_check(
        &self,
        dev: &Device,
        paddr: PhysAddr,
        size: u64,
        dir: DmaDirection,
    ) -> Result<(), DmaError> {
        if dir == DmaDirection::None {
            return Err(DmaError::Invalid("DMA_NONE direction"));
        }
        if !self.cfg.linux_faithful && !self.mem.contains(paddr, size) {
            return Err(DmaError::NotSystemMemory { paddr, size });
        }
        if paddr.as_u64().saturating_add(size - 1) > dev.desc.dma_mask {
            return Err(DmaError::BeyondMask { paddr });
        }
        Ok(())
    }

    fn direct_map(
        &self,
        dev: &Device,
        paddr: PhysAddr,
        size: u64,
        dir: DmaDirection,
    ) -> Result<DmaAddr, DmaError> {
        self.direct_check(dev, paddr, size, dir)?;
        let addr = DmaAddr::from_phys(paddr);
        self.direct_record(dev, addr, size, dir, DirectKind::Page);
        Ok(addr)
    }

    fn direct_map_in(
        &self,
        dev: &Device,
        _dom: &Domain,
        paddr: PhysAddr,
        size: u64,
        dir: DmaDirection,
    ) -> Result<DmaAddr, DmaError> {
        self.direct_map(dev, paddr, size, dir)
    }

    /// Direct mappings are recorded per device, with the call that made them.
    fn direct_record(
        &self,
        dev: &Device,
        addr: DmaAddr,
        size: u64,
        dir: DmaDirection,
        kind: DirectKind,
    ) {
        let mut t = dev.direct_maps.lock();
        t.entry((addr, size, dir)).or_default().push(kind);
    }

    /// Remove the direct mappings of `segs` (one for a page or coherent buffer, the list for
    /// sg), all or none. The Linux-faithful core, like dma-direct, does not care which call made
    /// a mapping; the safe core wants `kind`.
    fn direct_unmap(
        &self,
        dev: &Device,
        segs: &[(DmaAddr, u64)],
        dir: DmaDirection,
        kind: &DirectKind,
    ) -> Result<(), DmaError> {
        let check_kind = !self.cfg.linux_faithful;
        let fits = |k: &DirectKind| !check_kind || k == kind;
        let mut t = dev.direct_maps.lock();
        for &(addr, size) in segs {
            let at_addr: Vec<DirectEntry> = t
                .range((addr, 0, DmaDirection::Bidirectional)..)
                .take_while(|(k, _)| k.0 == addr)
                .collect();
            if at_addr.is_empty() {
                return Err(DmaError::NotMapped { addr });
            }
            let same_kind: Vec<_> = at_addr
                .iter()
                .filter(|(_, kinds)| kinds.iter().any(fits))
                .collect();
            if same_kind.is_empty() {
                return Err(DmaError::WrongKind { addr });
            }
            if !same_kind.iter().any(|(k, _)| k.1 == size) {
                return Err(DmaError::WrongSize {
                    addr,
                    mapped: same_kind[0].0 .1,
                    requested: size,
                });
            }
            if !same_kind.iter().any(|(k, _)| k.1 == size && k.2 == dir) {
                return Err(DmaError::WrongDirection { addr });
            }
        }
        for &(addr, size) in segs {
            let key = (addr, size, dir);
            if let Some(kinds) = t.get_mut(&key) {
                if let Some(i) = kinds.iter().rposition(fits) {
                    kinds.remove(i);
                }
                if kinds.is_empty() {
                    t.remove(&key);
                }
            }
        }
        Ok(())
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
