//! dma-direct: a device in bypass or under an identity default domain maps nothing; the
//! DMA address is the physical address, and the core only keeps a record per device.

use super::*;

impl IommuCore {
    /// Whether dma-direct may map this range: a direction, the device's mask, and (safe core
    /// only: Linux does not check) system memory behind it.
    pub(super) fn direct_check(
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

    pub(super) fn direct_map(
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

    pub(super) fn direct_map_in(
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
    pub(super) fn direct_record(
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
    pub(super) fn direct_unmap(
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
}
