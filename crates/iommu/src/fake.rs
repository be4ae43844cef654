//! An in-memory [`IommuDriver`] for tests and benchmarks of the core: page tables are a
//! `BTreeMap` per domain, invalidations are counted, and groups follow the first stream ID.
//! It models no hardware; the real driver is the `arm-smmu` crate.

use crate::ops::*;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use smmu_sync::Mutex;
use std::collections::BTreeMap;

/// One fake domain.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct FakeDomain {
    kind: Option<DomainKind>,
    finalised: bool,
    /// IOVA page -> (physical page, prot).
    pt: BTreeMap<u64, (u64, Prot)>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct FakeState {
    next: u32,
    domains: BTreeMap<u32, FakeDomain>,
    masters: BTreeMap<DeviceId, FwSpec>,
    released: Vec<DeviceId>,
}

/// Counters of what the core asked of the fake driver.
#[derive(Debug, Default)]
pub struct FakeCounters {
    /// `iotlb_sync` calls (strict unmaps).
    pub iotlb_syncs: AtomicU64,
    /// `flush_iotlb_all` calls (flush queues).
    pub flush_alls: AtomicU64,
    /// `map_pages` calls that mapped.
    pub maps: AtomicU64,
    /// `unmap_pages` calls.
    pub unmaps: AtomicU64,
    /// Domains freed.
    pub domains_freed: AtomicU64,
}

/// A BTreeMap-backed IOMMU driver: 4 KiB / 2 MiB / 1 GiB pages, a 48-bit aperture.
#[derive(Debug)]
pub struct FakeDriver {
    name: String,
    state: Mutex<FakeState>,
    /// Counters, readable by tests.
    pub counters: FakeCounters,
    /// When set, `map_pages` fails with `NoSpace` (to test error paths).
    pub fail_maps: AtomicBool,
    /// When set, `attach_dev` fails with `NoDevice` (a probe that fails after joining its
    /// group).
    pub fail_attach: AtomicBool,
    /// Whether the driver refuses `DmaFq` domains (then the core falls back to strict).
    pub no_fq: bool,
    /// Called at the start of every `release_device`, so a test can observe what the core
    /// has done to the device's group by then (the order of a release's steps).
    pub on_release: Mutex<Option<ReleaseHook>>,
    aperture_bits: u32,
}

/// A test's observer of [`FakeDriver`]'s `release_device`.
pub struct ReleaseHook(pub Box<dyn Fn(DeviceId) + Send + Sync>);

impl std::fmt::Debug for ReleaseHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReleaseHook")
    }
}

/// Granule of the fake driver.
const FAKE_GRANULE: PageSize = PageSize::SZ_4K;
/// [`FAKE_GRANULE`] in bytes, for the fake table's arithmetic.
const FAKE_PAGE: u64 = FAKE_GRANULE.bytes();

impl FakeDriver {
    /// A fake named like a Linux dev_printk prefix, e.g. `arm-smmu 5000000.iommu`.
    pub fn new(name: &str) -> FakeDriver {
        FakeDriver::with_aperture(name, 48)
    }

    /// A fake whose domains cover `[0, 2^bits)`.
    pub fn with_aperture(name: &str, bits: u32) -> FakeDriver {
        FakeDriver {
            name: name.to_string(),
            state: Mutex::new(FakeState::default()),
            counters: FakeCounters::default(),
            fail_maps: AtomicBool::new(false),
            fail_attach: AtomicBool::new(false),
            no_fq: false,
            on_release: Mutex::new(None),
            aperture_bits: bits.clamp(13, 52),
        }
    }

    /// Pages mapped in a domain.
    pub fn mapped_pages(&self, dom: DriverDomain) -> usize {
        self.state
            .lock()
            .domains
            .get(&dom.0)
            .map_or(0, |d| d.pt.len())
    }

    /// Domains currently allocated.
    pub fn live_domains(&self) -> usize {
        self.state.lock().domains.len()
    }

    /// Devices released so far, in order.
    pub fn released(&self) -> Vec<DeviceId> {
        self.state.lock().released.clone()
    }

    /// The fake's state and counters now (its domains' tables included), for tests that
    /// restore a core's snapshot: the driver is restored with the core, after it.
    pub fn snapshot(&self) -> FakeSnapshot {
        let c = &self.counters;
        FakeSnapshot {
            state: self.state.lock().clone(),
            counters: [
                &c.iotlb_syncs,
                &c.flush_alls,
                &c.maps,
                &c.unmaps,
                &c.domains_freed,
            ]
            .map(|a| a.load(Ordering::Relaxed)),
            fail_maps: self.fail_maps.load(Ordering::Relaxed),
        }
    }

    /// Put the state of `s` back.
    pub fn restore(&self, s: &FakeSnapshot) {
        self.state.lock().clone_from(&s.state);
        let c = &self.counters;
        for (a, v) in [
            &c.iotlb_syncs,
            &c.flush_alls,
            &c.maps,
            &c.unmaps,
            &c.domains_freed,
        ]
        .into_iter()
        .zip(s.counters)
        {
            a.store(v, Ordering::Relaxed);
        }
        self.fail_maps.store(s.fail_maps, Ordering::Relaxed);
    }
}

/// A [`FakeDriver`]'s state at one moment; equal snapshots are equal drivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSnapshot {
    state: FakeState,
    counters: [u64; 5],
    fail_maps: bool,
}

impl IommuDriver for FakeDriver {
    fn log_name(&self) -> &str {
        &self.name
    }

    fn probe_device(&self, master: &MasterInfo) -> Result<(), DriverError> {
        if master.fwspec.ids.is_empty() {
            return Err(DriverError::NoDevice);
        }
        self.state
            .lock()
            .masters
            .insert(master.id, master.fwspec.clone());
        Ok(())
    }

    fn release_device(&self, dev: DeviceId) {
        if let Some(hook) = self.on_release.lock().as_ref() {
            (hook.0)(dev);
        }
        let mut st = self.state.lock();
        st.masters.remove(&dev);
        st.released.push(dev);
    }

    fn device_group(&self, dev: DeviceId) -> Result<Option<u64>, DriverError> {
        let st = self.state.lock();
        Ok(st
            .masters
            .get(&dev)
            .and_then(|f| f.ids.first())
            .map(|&id| u64::from(id & 0xffff)))
    }

    fn domain_alloc(&self, kind: DomainKind) -> Result<DriverDomain, DriverError> {
        if kind == DomainKind::DmaFq && self.no_fq {
            return Err(DriverError::NotSupported);
        }
        let mut st = self.state.lock();
        st.next += 1;
        let id = st.next;
        st.domains.insert(
            id,
            FakeDomain {
                kind: Some(kind),
                ..FakeDomain::default()
            },
        );
        Ok(DriverDomain(id))
    }

    fn domain_free(&self, dom: DriverDomain) {
        if self.state.lock().domains.remove(&dom.0).is_some() {
            self.counters.domains_freed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn attach_dev(&self, dom: DriverDomain, dev: DeviceId) -> Result<(), DriverError> {
        let mut st = self.state.lock();
        if !st.masters.contains_key(&dev) || self.fail_attach.load(Ordering::Relaxed) {
            return Err(DriverError::NoDevice);
        }
        let d = st
            .domains
            .get_mut(&dom.0)
            .ok_or(DriverError::NoDomain { id: dom.0 })?;
        d.finalised = true;
        Ok(())
    }

    fn geometry(&self, dom: DriverDomain) -> Option<Geometry> {
        let st = self.state.lock();
        let d = st.domains.get(&dom.0)?;
        (d.finalised && d.kind != Some(DomainKind::Identity)).then(|| Geometry {
            aperture_start: Iova::ZERO,
            aperture_end: Iova::new((1u64 << self.aperture_bits) - 1),
            pgsize_bitmap: PageSize::bitmap_of(&[FAKE_GRANULE, PageSize::SZ_2M, PageSize::SZ_1G]),
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
        let (iova, paddr) = (iova.as_u64(), paddr.as_u64());
        let (pgsize, pgcount) = (pgsize.bytes(), pgcount.get());
        if self.fail_maps.load(Ordering::Relaxed) {
            return Err(DriverError::Exhausted(Resource::InjectedFailure));
        }
        let mut st = self.state.lock();
        let d = st
            .domains
            .get_mut(&dom.0)
            .ok_or(DriverError::NoDomain { id: dom.0 })?;
        let pages = pgsize / FAKE_PAGE * pgcount;
        let first = iova / FAKE_PAGE;
        if d.pt.range(first..first + pages).next().is_some() {
            return Err(DriverError::Exists {
                iova: Iova::new(iova),
            });
        }
        for i in 0..pages {
            d.pt.insert(first + i, (paddr / FAKE_PAGE + i, prot));
        }
        self.counters.maps.fetch_add(1, Ordering::Relaxed);
        Ok(pgsize * pgcount)
    }

    fn unmap_pages(
        &self,
        dom: DriverDomain,
        iova: Iova,
        pgsize: PageSize,
        pgcount: PageCount,
        gather: &mut Gather,
    ) -> u64 {
        let (iova, pgsize, pgcount) = (iova.as_u64(), pgsize.bytes(), pgcount.get());
        let mut st = self.state.lock();
        let Some(d) = st.domains.get_mut(&dom.0) else {
            return 0;
        };
        let pages = pgsize / FAKE_PAGE * pgcount;
        let first = iova / FAKE_PAGE;
        let mut done = 0;
        for i in 0..pages {
            if d.pt.remove(&(first + i)).is_none() {
                break;
            }
            done += 1;
        }
        if done > 0 {
            gather.add_range(Iova::new(iova), done * FAKE_PAGE);
            gather.pgsize = Some(FAKE_GRANULE);
        }
        self.counters.unmaps.fetch_add(1, Ordering::Relaxed);
        done * FAKE_PAGE
    }

    fn iotlb_sync(&self, _dom: DriverDomain, gather: &mut Gather) {
        self.counters.iotlb_syncs.fetch_add(1, Ordering::Relaxed);
        *gather = Gather::new();
    }

    fn flush_iotlb_all(&self, _dom: DriverDomain) {
        self.counters.flush_alls.fetch_add(1, Ordering::Relaxed);
    }

    fn iova_to_phys(&self, dom: DriverDomain, iova: Iova) -> Option<PhysAddr> {
        let st = self.state.lock();
        let iova = iova.as_u64();
        st.domains
            .get(&dom.0)
            .and_then(|d| d.pt.get(&(iova / FAKE_PAGE)))
            .map(|&(pfn, _)| PhysAddr::new(pfn * FAKE_PAGE + iova % FAKE_PAGE))
    }
}
