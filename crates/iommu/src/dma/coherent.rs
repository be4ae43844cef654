//! `dma_alloc_coherent`/`dma_free_coherent`: zeroed frames from the core's allocator, mapped
//! bidirectionally.

use super::*;

impl IommuCore {
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
        let handle = DmaAddr::from_iova(Iova::new(pfn.get() << shift));
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
}
