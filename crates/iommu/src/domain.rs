//! Domains: a driver's translation context plus, for DMA domains, the IOVA allocator, the
//! table of live DMA mappings and the flush queue.
//!
//! A [`Domain`] is reference counted: its group holds it, and so does every DMA API call in
//! flight, so a group freed during a call never frees the domain under the caller. The driver's
//! domain is freed when the last reference goes.

use crate::iova::{IovaDomain, IovaParams};
use crate::ops::*;
use smmu_addr::{Iova, IovaPfn, PageCount, PageSize, PhysAddr};
use smmu_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use smmu_sync::{Arc, Mutex, MutexGuard};
use std::collections::VecDeque;

mod maps;
mod snapshot;
use maps::MapTable;
pub(crate) use snapshot::{DomainSnapshot, Restore};

/// Core-assigned id of a domain (for statistics and debugging).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainId(pub u32);

/// What made a DMA mapping (unmaps must match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MapKind {
    Page,
    /// Segment handles and lengths, as returned to the caller.
    Sg(Vec<(smmu_addr::DmaAddr, u64)>),
    /// Coherent buffer at this physical address (allocation of `alloc` bytes).
    Coherent {
        pa: PhysAddr,
        alloc: u64,
    },
}

/// One live DMA mapping, keyed by its handle in [`DmaState::maps`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapping {
    /// First IOVA page frame and page count (as allocated).
    pub pfn: IovaPfn,
    pub pages: PageCount,
    /// Bytes the caller asked for.
    pub size: u64,
    pub dir: crate::DmaDirection,
    pub kind: MapKind,
}

/// One flush-queue entry: an IOVA range waiting for a flush-all.
#[derive(Debug, Clone, Copy)]
struct FqEntry {
    pfn: IovaPfn,
    pages: PageCount,
    counter: u64,
}

/// Lazy-invalidation queue of one domain (dma-iommu's per-CPU ring; one ring here).
#[derive(Debug, Clone)]
pub(crate) struct FlushQueue {
    ring: VecDeque<FqEntry>,
    cap: usize,
    timeout_ns: u64,
    /// Simulated time at which the timer fires.
    deadline: Option<u64>,
}

/// An MSI doorbell page mapped into a DMA domain (dma-iommu's `struct iommu_dma_msi_page`):
/// the doorbell's page and the IOVA granule mapped onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiPage {
    /// The doorbell's page (granule aligned).
    pub phys: PhysAddr,
    /// The IOVA mapped onto it.
    pub iova: Iova,
    /// The domain's IOVA granule (`cookie_msi_granule`).
    pub granule: PageSize,
}

/// Mutable DMA state of a domain, under the domain lock.
#[derive(Debug, Clone)]
pub(crate) struct DmaState {
    pub iova: Option<IovaDomain>,
    pub maps: MapTable,
    pub fq: Option<FlushQueue>,
    /// The flush queue's timeout handler (`fq_flush_timeout`) is running.
    pub fq_timer_running: bool,
    /// The flush queue was freed with its domain's group.
    pub fq_freed: bool,
    /// MSI doorbell pages mapped by `iommu_dma_prepare_msi` (the cookie's `msi_page_list`).
    pub msi_pages: Vec<MsiPage>,
}

/// A domain as the core holds it.
pub struct Domain {
    id: DomainId,
    kind: DomainKind,
    instance: u32,
    driver: Arc<dyn IommuDriver>,
    handle: DriverDomain,
    dying: AtomicBool,
    /// `iommu_domain_free` ran: the driver's context is gone, whoever still holds the pointer.
    freed: AtomicBool,
    /// The DMA cookie's mutex (since ac9a5d522bb8, `iommu_dma_init_domain` runs under it).
    cookie_mutex: smmu_sync::KernelMutex,
    state: Mutex<DmaState>,
    fq_start: AtomicU64,
    fq_finish: AtomicU64,
    /// The driver's page sizes once the domain is finalised (0 before): fixed from then on,
    /// so map and unmap need not ask the driver each time.
    pgsizes: AtomicU64,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Domain")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("handle", &self.handle)
            .finish()
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        // A domain its owner freed with `iommu_domain_free` was given back to the driver then.
        if !self.freed.load(Ordering::Acquire) {
            self.driver.domain_free(self.handle);
        }
    }
}

/// Choose the largest page size of `bitmap` usable at `iova`/`paddr` for `size` bytes, and how
/// many such pages to map before a larger size could take over.
pub(crate) fn pgsize_for(
    bitmap: u64,
    iova: u64,
    paddr: u64,
    size: u64,
) -> Option<(PageSize, PageCount)> {
    if size == 0 {
        return None;
    }
    let addr_merge = iova | paddr;
    // Page sizes no larger than what remains and aligned for both addresses.
    let floor = 63 - size.leading_zeros();
    let mut sizes = bitmap & (u64::MAX >> (63 - floor));
    if addr_merge != 0 {
        let low = addr_merge & addr_merge.wrapping_neg();
        sizes &= low | (low - 1);
    }
    if sizes == 0 {
        return None;
    }
    let pgsize = 1u64 << (63 - sizes.leading_zeros());
    let mut count = size / pgsize;
    // Stop where the next larger page size becomes aligned for both addresses.
    let larger = bitmap & !((pgsize << 1).wrapping_sub(1));
    if larger != 0 {
        let next = 1u64 << larger.trailing_zeros();
        let offset = iova & (next - 1);
        if (iova ^ paddr) & (next - 1) == 0 && offset != 0 {
            count = count.min((next - offset) / pgsize);
        }
    }
    Some((PageSize::new(pgsize).ok()?, PageCount::new(count.max(1))))
}

impl Domain {
    pub(crate) fn new(
        id: DomainId,
        kind: DomainKind,
        instance: u32,
        driver: Arc<dyn IommuDriver>,
        handle: DriverDomain,
    ) -> Domain {
        Domain {
            id,
            kind,
            instance,
            driver,
            handle,
            dying: AtomicBool::new(false),
            freed: AtomicBool::new(false),
            cookie_mutex: smmu_sync::KernelMutex::new(&format!(
                "domain {}->iova_cookie->mutex",
                id.0
            )),
            state: Mutex::new(DmaState {
                iova: None,
                maps: MapTable::default(),
                fq: None,
                fq_timer_running: false,
                fq_freed: false,
                msi_pages: Vec::new(),
            }),
            fq_start: AtomicU64::new(0),
            fq_finish: AtomicU64::new(0),
            pgsizes: AtomicU64::new(0),
        }
    }

    /// The core's id of this domain.
    pub fn id(&self) -> DomainId {
        self.id
    }

    /// Kind (DMA, DMA_FQ, identity, unmanaged...).
    pub fn kind(&self) -> DomainKind {
        self.kind
    }

    /// The driver's handle.
    pub fn driver_domain(&self) -> DriverDomain {
        self.handle
    }

    /// The driver's geometry of the domain (aperture and page sizes), once it has one.
    pub fn geometry(&self) -> Option<crate::Geometry> {
        self.driver.geometry(self.handle)
    }

    /// The IOMMU instance the domain belongs to.
    pub fn instance(&self) -> u32 {
        self.instance
    }

    /// Whether the domain's group was freed (no new DMA mappings).
    pub fn is_dying(&self) -> bool {
        self.dying.load(Ordering::Acquire)
    }

    pub(crate) fn set_dying(&self) {
        self.dying.store(true, Ordering::Release);
    }

    /// Whether `iommu_domain_free` freed the domain (every later use is a use-after-free).
    pub fn is_freed(&self) -> bool {
        self.freed.load(Ordering::Acquire)
    }

    /// Mark the domain freed; `false` if it already was (a double free).
    pub(crate) fn set_freed(&self) -> bool {
        !self.freed.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn driver(&self) -> &Arc<dyn IommuDriver> {
        &self.driver
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, DmaState> {
        self.state.lock()
    }

    /// Live DMA mappings (streaming, sg and coherent).
    pub fn live_mappings(&self) -> usize {
        self.state.lock().maps.len()
    }

    /// IOVA entries waiting in the flush queue.
    pub fn fq_len(&self) -> usize {
        self.state.lock().fq.as_ref().map_or(0, |q| q.ring.len())
    }

    /// A copy of the IOVA allocator's counters and free-page count, if the domain has one.
    pub fn iova_stats(&self) -> Option<(crate::iova::IovaStats, PageCount, PageCount)> {
        let st = self.state.lock();
        st.iova
            .as_ref()
            .map(|i| (i.stats(), i.free_pages(), i.cached_pages()))
    }

    /// The IOVA allocator's parameters (granule shift, `start_pfn`, `end_pfn`), if the domain
    /// has one.
    pub fn iova_params(&self) -> Option<crate::iova::IovaParams> {
        self.state.lock().iova.as_ref().map(|i| i.params())
    }

    /// Set up the IOVA allocator once the driver has finalised the domain
    /// (`iommu_dma_init_domain`): the first device of a domain finds it uninitialised and
    /// initialises it; later ones find it initialised. The check and the initialisation are
    /// two steps, under the DMA cookie's mutex with `iova_domain_init_under_cookie_mutex`
    /// (ac9a5d522bb8); without it two devices can both find it uninitialised, and the second
    /// initialisation replaces the allocator under what the first has handed out.
    pub(crate) fn init_dma(
        &self,
        cfg: &crate::CoreConfig,
        geometry: Geometry,
    ) -> Result<(), crate::CoreError> {
        use crate::CoreError;
        if !matches!(self.kind, DomainKind::Dma | DomainKind::DmaFq) {
            return Ok(());
        }
        let _cookie = if cfg.iova_domain_init_under_cookie_mutex {
            Some(self.cookie_mutex.lock().map_err(DriverError::from)?)
        } else {
            None
        };
        if self.state.lock().iova.is_some() {
            return Ok(());
        }
        smmu_sync::sched_point(smmu_sync::Point::Kernel);
        if geometry.pgsize_bitmap == 0 || geometry.aperture_end < geometry.aperture_start {
            return Err(CoreError::Geometry("empty aperture or no page sizes"));
        }
        let shift = geometry.pgsize_bitmap.trailing_zeros();
        let start_pfn = IovaPfn::new((geometry.aperture_start.as_u64() >> shift).max(1));
        let end_pfn = IovaPfn::of(geometry.aperture_end, shift);
        let mut iova = IovaDomain::new(IovaParams {
            shift,
            start_pfn,
            end_pfn,
            rcache: cfg.iova_rcache,
            depot: cfg.iova_depot,
        })
        .map_err(|_| CoreError::Geometry("aperture too large for the IOVA allocator"))?
        .with_anchor_retry_overflow(cfg.iova_anchor_retry_overflows);
        for &(base, len) in &cfg.reserved_regions {
            if len > 0 {
                iova.reserve(
                    IovaPfn::new(base >> shift),
                    IovaPfn::new(base.saturating_add(len - 1) >> shift),
                );
            }
        }
        let mut st = self.state.lock();
        st.iova = Some(iova);
        if self.kind == DomainKind::DmaFq {
            st.fq = Some(FlushQueue {
                ring: VecDeque::with_capacity(cfg.fq_size),
                cap: cfg.fq_size.max(1),
                timeout_ns: cfg.fq_timeout_ns,
                deadline: None,
            });
        }
        Ok(())
    }

    /// The domain's page-size bitmap, asked of the driver once it is finalised.
    fn pgsize_bitmap(&self) -> Option<u64> {
        let b = self.pgsizes.load(Ordering::Relaxed);
        if b != 0 {
            return Some(b);
        }
        let b = self.driver.geometry(self.handle)?.pgsize_bitmap;
        if b != 0 {
            self.pgsizes.store(b, Ordering::Relaxed);
        }
        Some(b).filter(|&b| b != 0)
    }

    /// Map `[iova, iova + size)` to `paddr` in page-size chunks; undo on failure.
    ///
    /// Linux's `__iommu_map` loop: each `map_pages` call's byte count is taken off what is left
    /// and moves the IOVA and PA on, in wrapping (`size_t`) arithmetic, so a count that went
    /// "negative" (io-pgtable-arm before d71fa842d33c) grows what is left and moves both
    /// addresses back. On an error the first `size − left` bytes are unmapped again with that
    /// same arithmetic. A call that succeeds having mapped nothing would make Linux's loop
    /// spin forever; here it ends the map with [`DriverError::MappedNothing`].
    pub(crate) fn map_range(
        &self,
        iova: Iova,
        paddr: PhysAddr,
        size: u64,
        prot: Prot,
    ) -> Result<(), DriverError> {
        // Linux's loop runs in wrapping `size_t`/`phys_addr_t` arithmetic (see above), which
        // the typed addresses do not offer: it runs on the numbers.
        let (iova, paddr) = (iova.as_u64(), paddr.as_u64());
        let bitmap = self.pgsize_bitmap().ok_or(DriverError::NotFinalised)?;
        let min_page = PageSize::smallest_in(bitmap).ok_or(DriverError::NotFinalised)?;
        let min = min_page.bytes();
        if (iova | paddr | size) & (min - 1) != 0 || size == 0 {
            return Err(DriverError::Unaligned {
                iova: Iova::new(iova),
                paddr: PhysAddr::new(paddr),
                size,
                min_page,
            });
        }
        let (mut at, mut pa, mut left) = (iova, paddr, size);
        let failed = loop {
            if left == 0 {
                return Ok(());
            }
            let Some((pgsize, count)) = pgsize_for(bitmap, at, pa, left) else {
                break DriverError::Unaligned {
                    iova: Iova::new(at),
                    paddr: PhysAddr::new(pa),
                    size: left,
                    min_page,
                };
            };
            match self.driver.map_pages(
                self.handle,
                Iova::new(at),
                PhysAddr::new(pa),
                pgsize,
                count,
                prot,
            ) {
                Ok(0) => {
                    break DriverError::MappedNothing {
                        iova: Iova::new(at),
                    }
                }
                Ok(mapped) => {
                    left = left.wrapping_sub(mapped);
                    at = at.wrapping_add(mapped);
                    pa = pa.wrapping_add(mapped);
                }
                Err(e) => break e,
            }
        };
        let done = size.wrapping_sub(left);
        if done != 0 {
            self.unmap_range(Iova::new(iova), done, true);
        }
        Err(failed)
    }

    /// Unmap `[iova, iova + size)`; `sync` completes the invalidation now (strict), otherwise
    /// the gather is marked queued and a later flush-all covers it. Returns bytes unmapped.
    pub(crate) fn unmap_range(&self, iova: Iova, size: u64, sync: bool) -> u64 {
        let iova = iova.as_u64();
        let Some(bitmap) = self.pgsize_bitmap() else {
            return 0;
        };
        let mut gather = Gather::new();
        gather.queued = !sync;
        let mut done = 0u64;
        while done < size {
            let at = iova.wrapping_add(done);
            let Some((pgsize, count)) = pgsize_for(bitmap, at, at, size - done) else {
                break;
            };
            let n = self
                .driver
                .unmap_pages(self.handle, Iova::new(at), pgsize, count, &mut gather);
            if n == 0 {
                break;
            }
            done = done.saturating_add(n);
        }
        if sync {
            self.driver.iotlb_sync(self.handle, &mut gather);
        }
        done
    }

    /// Queue a freed IOVA range behind the next flush-all (lazy mode); free what earlier
    /// flushes have covered. Returns the number of flush-alls performed.
    pub(crate) fn fq_queue(&self, pfn: IovaPfn, pages: PageCount, now_ns: u64) -> u64 {
        let mut flushes = 0;
        loop {
            let full = {
                let mut st = self.state.lock();
                let finish = self.fq_finish.load(Ordering::Acquire);
                free_covered(&mut st, finish);
                let DmaState { fq, iova, .. } = &mut *st;
                let Some(q) = fq.as_mut() else {
                    // No queue: free at once.
                    if let Some(i) = iova.as_mut() {
                        i.free_fast(pfn, pages);
                    }
                    return flushes;
                };
                if q.ring.len() < q.cap {
                    q.ring.push_back(FqEntry {
                        pfn,
                        pages,
                        counter: self.fq_start.load(Ordering::Acquire),
                    });
                    if q.deadline.is_none() {
                        q.deadline = Some(now_ns.saturating_add(q.timeout_ns));
                    }
                    false
                } else {
                    true
                }
            };
            if !full {
                return flushes;
            }
            self.flush_all_now();
            flushes += 1;
        }
    }

    /// start++, flush the IOTLB, finish++ (no domain lock held across the driver call).
    fn flush_all_now(&self) {
        self.fq_start.fetch_add(1, Ordering::AcqRel);
        self.driver.flush_iotlb_all(self.handle);
        self.fq_finish.fetch_add(1, Ordering::AcqRel);
    }

    /// The flush-queue timer: if it has expired at `now_ns` (or `force`), flush everything and
    /// return the covered IOVAs to the allocator. Returns whether a flush-all ran.
    pub(crate) fn fq_poll(&self, now_ns: u64, force: bool) -> bool {
        {
            let mut st = self.state.lock();
            let Some(q) = st.fq.as_mut() else {
                return false;
            };
            let due = q.deadline.is_some_and(|d| now_ns >= d) || (force && !q.ring.is_empty());
            if !due {
                return false;
            }
            q.deadline = None;
        }
        self.flush_all_now();
        let mut st = self.state.lock();
        let finish = self.fq_finish.load(Ordering::Acquire);
        free_covered(&mut st, finish);
        true
    }
}

impl Domain {
    /// The flush-queue timer fires (`fq_flush_timeout` starts): `false` when no timer is armed
    /// (nothing queued, or the queue's teardown deleted it).
    pub(crate) fn fq_timer_begin(&self) -> bool {
        let mut st = self.state.lock();
        match st.fq.as_mut() {
            Some(q) if q.deadline.is_some() => {
                q.deadline = None;
                st.fq_timer_running = true;
                true
            }
            _ => false,
        }
    }

    /// The running timeout handler flushes and frees the queued IOVAs. `Err` when the queue it
    /// works on was freed under it (a use-after-free).
    pub(crate) fn fq_timer_finish(&self) -> Result<(), ()> {
        if self.state.lock().fq_freed {
            self.state.lock().fq_timer_running = false;
            return Err(());
        }
        self.flush_all_now();
        let mut st = self.state.lock();
        let finish = self.fq_finish.load(Ordering::Acquire);
        free_covered(&mut st, finish);
        st.fq_timer_running = false;
        Ok(())
    }

    /// `free_iova_flush_queue` when the domain's group is freed: delete the timer, then free
    /// the queue. `wait_for_timer` is `del_timer_sync` (since d7061627d701): a handler that is
    /// already running is waited for; otherwise (`del_timer`) the queue is freed under it.
    pub(crate) fn free_flush_queue(&self, wait_for_timer: bool) {
        loop {
            {
                let mut st = self.state.lock();
                if st.fq.is_none() {
                    return;
                }
                if let Some(q) = st.fq.as_mut() {
                    q.deadline = None;
                }
                if !(wait_for_timer && st.fq_timer_running) {
                    st.fq = None;
                    st.fq_freed = true;
                    return;
                }
            }
            smmu_sync::thread::yield_now();
        }
    }
}

/// Free every queued entry a completed flush covers.
fn free_covered(st: &mut DmaState, finish: u64) {
    let DmaState { fq, iova, .. } = st;
    let (Some(q), Some(iova)) = (fq.as_mut(), iova.as_mut()) else {
        return;
    };
    while let Some(e) = q.ring.front() {
        if e.counter >= finish {
            break;
        }
        iova.free_fast(e.pfn, e.pages);
        q.ring.pop_front();
    }
}

#[cfg(test)]
mod tests;
