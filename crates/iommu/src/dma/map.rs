//! `dma_map_page`/`dma_unmap_page` and `dma_map_sg`/`dma_unmap_sg` through a translating
//! (DMA) domain, and the unmap every DMA call shares.

use super::*;

impl IommuCore {
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
        let handle = DmaAddr::from_iova(Iova::new((pfn.get() << shift) + off));
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
    pub(super) fn unmap_inner(
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
        let mut cursor = pfn.get() << shift;
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
}
