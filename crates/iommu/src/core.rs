//! IOMMU instances, devices and groups (Linux iommu.c, v6.1 behaviour).

use crate::domain::{Domain, DomainId};
use crate::error::CoreError;
use crate::ops::*;
use klog::Printk;
use physmem::{FrameAllocator, PhysMem};
use smmu_addr::{DmaAddr, PhysAddr};
use smmu_sync::atomic::{AtomicBool, AtomicU64, Ordering};
use smmu_sync::{Arc, Mutex, RwLock};
use std::collections::BTreeMap;

mod attach;
mod devices;
mod fq;
mod map;
mod snapshot;

pub use snapshot::CoreSnapshot;

/// Core-assigned id of a registered IOMMU instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub u32);

/// The bus a device sits on. `unregister` walks buses in this order (platform, then PCI), as
/// v6.1's `iommu_device_unregister` walks its bus list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bus {
    /// The platform bus (device-tree devices, then driver-created ones).
    Platform,
    /// The PCI bus (enumeration order).
    Pci,
}

impl Bus {
    /// The bus's name as `dev_printk` prints it for a device without a driver (Linux's
    /// `bus_type.name`).
    pub fn name(self) -> &'static str {
        match self {
            Bus::Platform => "platform",
            Bus::Pci => "pci",
        }
    }
}

/// A device as the simulated kernel presents it to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDesc {
    /// dev_printk prefix, e.g. `fsl_enetc 0000:00:00.0`.
    pub log_name: String,
    /// The bus the device was added to.
    pub bus: Bus,
    /// Position in its bus's device list (the order the device was added to the bus). Devices
    /// with equal positions keep probe order.
    pub bus_pos: u64,
    /// Firmware stream IDs (`iommus` / `iommu-map`).
    pub fwspec: FwSpec,
    /// The device's DMA mask (e.g. `u32::MAX as u64` for 32-bit DMA).
    pub dma_mask: u64,
    /// The bus's DMA limit; 0 means none.
    pub bus_dma_limit: u64,
    /// Cache-coherent DMA (mappings get `Prot::CACHE`).
    pub coherent: bool,
    /// Reserved regions the firmware asks to be identity-mapped for the device
    /// (`IOMMU_RESV_DIRECT`): (base, size). The probe maps them in its default domain, each
    /// page at the IOVA equal to its physical address.
    pub direct_regions: Vec<(PhysAddr, u64)>,
}

impl DeviceDesc {
    /// A device with a 64-bit mask, no bus limit, non-coherent.
    pub fn new(log_name: &str, bus: Bus, bus_pos: u64, ids: &[u32]) -> DeviceDesc {
        DeviceDesc {
            log_name: log_name.to_string(),
            bus,
            bus_pos,
            fwspec: FwSpec { ids: ids.to_vec() },
            dma_mask: u64::MAX,
            bus_dma_limit: 0,
            coherent: false,
            direct_regions: Vec::new(),
        }
    }
}

/// Kernel configuration the core follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    /// `iommu.strict=1`: unmaps invalidate before returning (DMA domains); `false`: lazy
    /// (DMA_FQ domains with a flush queue).
    pub strict: bool,
    /// `iommu.passthrough=1`: identity default domains.
    pub passthrough: bool,
    /// Reproduce v6.1's NULL group dereference as [`crate::DmaError::Oops`] instead of a typed
    /// error, and read the group pointer without excluding a concurrent release.
    pub linux_faithful: bool,
    /// Since 57365a04c921: `unregister` releases every device of the instance.
    pub unregister_releases_devices: bool,
    /// Use the IOVA range caches (rcache).
    pub iova_rcache: bool,
    /// The rcache depot of the kernel version (v6.7 turned the array into a list).
    pub iova_depot: crate::iova::IovaDepot,
    /// `iommu.forcedac=1`: no 32-bit-first attempt for PCI devices.
    pub forcedac: bool,
    /// Flush-queue entries (256 per CPU in Linux).
    pub fq_size: usize,
    /// Flush-queue timeout in simulated nanoseconds (10 ms).
    pub fq_timeout_ns: u64,
    /// IOVA ranges reserved in every DMA domain, (base, length): arm-smmu's software MSI window.
    pub reserved_regions: Vec<(u64, u64)>,
    /// Offset of `default_domain` in `struct iommu_group` in the simulated build: where the
    /// Linux-faithful NULL group dereference faults (0x98 in the seed's `#1930`).
    pub group_default_domain_offset: u64,
    /// `dma_map_sg` compares the mapping's signed result with the IOVA length as signed
    /// (since a3884774d731). `false`: the unsigned comparison of before, under which a failed
    /// mapping (a negative error) passes as a full one: the IOVA is kept, not freed, and the
    /// caller gets DMA addresses that nothing maps.
    pub map_sg_signed_result_check: bool,
    /// The IOVA allocator's retry from above the anchor overflows to PFN 0 (before
    /// dcdb3ba7e2a8), so an allocation larger than the space above `start_pfn` succeeds below
    /// it ([`crate::iova::IovaDomain::with_anchor_retry_overflow`]).
    pub iova_anchor_retry_overflows: bool,
    /// One lock (`iommu_probe_device_lock`) serialises every device's probe (since
    /// b54240ad4943). `false`: probes of different devices run at once.
    pub probe_serialised: bool,
    /// The default domain is looked up and allocated under `group->mutex` (since
    /// 211ff31b3d33). `false`: two members probing at once can both find none and each
    /// allocate one.
    pub default_domain_under_group_mutex: bool,
    /// `group->mutex` stays held over the default domain's attach and the direct mappings of
    /// reserved regions (since 556f99ac8866). `false`: it is dropped after the allocation.
    pub attach_under_group_mutex: bool,
    /// The "no owner" (-EINVAL) return of `iommu_device_claim_dma_owner` puts the group
    /// reference it took (since a6a9a5da6808). `false`: the reference leaks.
    pub claim_owner_puts_group_on_error: bool,
    /// `iommu_dma_init_domain` checks and initialises a domain's IOVA allocator under the DMA
    /// cookie's mutex (since ac9a5d522bb8). `false`: two devices sharing the domain can both
    /// initialise it.
    pub iova_domain_init_under_cookie_mutex: bool,
    /// Freeing a flush queue waits for its running timeout handler (`del_timer_sync`, since
    /// d7061627d701). `false`: `del_timer` only, which does not wait.
    pub fq_teardown_waits_for_timer: bool,
    /// A group's domains are freed by the release that empties its device list, under
    /// `group->mutex`, and a device joining the emptied group allocates a new default domain
    /// (`iommu_deinit_device`, since aa0958570f24, v6.6). `false`: they are freed with the
    /// group itself, when its last reference is put (`iommu_group_release`, v6.5 and before).
    /// Either way the group lives while any device holds it ([`crate::IommuCore::probe_device`]).
    pub domains_freed_with_last_member: bool,
    /// What a device's release (`iommu_release_device`) does, and in which order, per era.
    pub release_steps: ReleaseSteps,
    /// A device that joins a group which already has a domain is attached to that domain at
    /// the join, under `group->mutex` (`iommu_group_add_device` up to v6.4); a failed attach
    /// takes it off the list and prints `Failed to add to iommu group N: ERR` instead of the
    /// `Adding` line, and the probe fails. `false`: 0046a4337eae ("iommu: Remove
    /// iommu_group_do_dma_first_attach() from iommu_group_add_device()", v6.5), the probe's
    /// own attach is the only one.
    pub join_attaches_to_group_domain: bool,
}

impl Default for CoreConfig {
    /// v6.1 arm64 defaults: strict, translated, since-57365a04c921 unregister, safe mode.
    fn default() -> Self {
        CoreConfig {
            strict: true,
            passthrough: false,
            linux_faithful: false,
            unregister_releases_devices: true,
            iova_rcache: true,
            iova_depot: crate::iova::IovaDepot::Array,
            forcedac: false,
            fq_size: 256,
            fq_timeout_ns: 10_000_000,
            reserved_regions: vec![(0x0800_0000, 0x10_0000)],
            group_default_domain_offset: crate::oops::SEED_DEFAULT_DOMAIN_OFFSET,
            map_sg_signed_result_check: true,
            iova_anchor_retry_overflows: false,
            probe_serialised: true,
            default_domain_under_group_mutex: true,
            attach_under_group_mutex: true,
            claim_owner_puts_group_on_error: true,
            iova_domain_init_under_cookie_mutex: true,
            fq_teardown_waits_for_timer: true,
            domains_freed_with_last_member: false,
            release_steps: ReleaseSteps::DriverThenGroup,
            join_attaches_to_group_domain: true,
        }
    }
}

/// The steps of a device's release from its IOMMU, per era of Linux's `iommu_release_device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReleaseSteps {
    /// Up to v6.3: the driver's `release_device`, then the exported `iommu_group_remove_device`,
    /// which prints `Removing from iommu group N` and unlinks the device from its group. A probe
    /// that failed after joining (v6.1's `err_release`) takes the same path.
    DriverThenGroup,
    /// v6.4, dba9ca9d41f5 ("iommu: Same critical region for device release and removal"):
    /// under `group->mutex` the device is unlinked first (`__iommu_group_remove_device`, split
    /// out by 293f2564f3dd, which prints nothing), then the driver's `release_device` runs;
    /// the group pointer is cleared after the mutex is dropped.
    UnlinkThenDriver,
    /// v6.6+, aa0958570f24 (`iommu_deinit_device`): all under `group->mutex`, the device is
    /// unlinked, the driver's `release_device` runs, the domains of an emptied group are
    /// freed (with [`CoreConfig::domains_freed_with_last_member`]) and the group pointer is
    /// cleared; no line is printed.
    Deinit,
}

impl ReleaseSteps {
    /// Whether the release prints `Removing from iommu group N`.
    pub fn prints_removal(self) -> bool {
        self == ReleaseSteps::DriverThenGroup
    }
}

/// A probed device.
pub(crate) struct Device {
    pub id: DeviceId,
    pub desc: DeviceDesc,
    pub instance: InstanceId,
    pub driver: Arc<dyn IommuDriver>,
    /// Linux's `dev->iommu_group`. `None` once removed from the group.
    pub group: RwLock<Option<Arc<Group>>>,
    /// The device's IOMMU data was freed (`iommu_release_device` ran).
    pub released: AtomicBool,
    /// The default domain is identity: the device uses direct DMA ops, which never look at
    /// the group.
    pub direct: bool,
    /// Outstanding direct (untranslated) mappings: (address, size, direction) -> the call that
    /// made each one (the safe core checks it on unmap; Linux's dma-direct keeps no record).
    #[allow(clippy::type_complexity)]
    pub direct_maps:
        Mutex<BTreeMap<(DmaAddr, u64, crate::DmaDirection), Vec<crate::dma::DirectKind>>>,
    /// The domain the driver attached the device to (its S2CRs point at that domain's bank).
    pub attached: Mutex<Option<DomainId>>,
}

/// An IOMMU group.
pub(crate) struct Group {
    pub id: u32,
    pub instance: InstanceId,
    pub key: Option<u64>,
    pub members: Mutex<Vec<DeviceId>>,
    /// `group->mutex`.
    pub mutex: smmu_sync::KernelMutex,
    /// `group->default_domain`: set by the first member's probe.
    pub default_domain: RwLock<Option<Arc<Domain>>>,
    /// The attached domain (the default one unless a driver attached another).
    pub domain: Mutex<Option<Arc<Domain>>>,
    /// References taken with `iommu_group_get` and not yet put (membership not counted).
    pub refs: Mutex<i64>,
    /// References held by devices: the one `device_group` hands a probing device, kept (as
    /// `dev->iommu_group`) until the device leaves the group. With [`Self::refs`] this is
    /// Linux's kobject count of the group: the group is freed when both are zero, so a device
    /// that is joining keeps it alive while another device's release empties it.
    pub device_refs: Mutex<u64>,
    /// `iommu_group_release` ran.
    pub freed: AtomicBool,
    /// The DMA owner and how many claims it holds (`owner`, `owner_cnt`).
    pub owner: Mutex<(Option<String>, u32)>,
}

impl Group {
    /// Group `id` with no member, no domain and one device reference (the probing device's).
    pub fn new(id: u32, instance: InstanceId, key: Option<u64>) -> Group {
        Group {
            id,
            instance,
            key,
            members: Mutex::new(Vec::new()),
            mutex: smmu_sync::KernelMutex::new(&format!("group {id}->mutex")),
            default_domain: RwLock::new(None),
            domain: Mutex::new(None),
            refs: Mutex::new(0),
            device_refs: Mutex::new(1),
            freed: AtomicBool::new(false),
            owner: Mutex::new((None, 0)),
        }
    }

    /// `group->default_domain`.
    pub fn default_domain(&self) -> Option<Arc<Domain>> {
        self.default_domain.read().clone()
    }
}

#[derive(Default)]
pub(crate) struct CoreState {
    pub instances: BTreeMap<InstanceId, Arc<dyn IommuDriver>>,
    next_instance: u32,
    pub devices: BTreeMap<DeviceId, Arc<Device>>,
    pub next_device: u32,
    pub groups: BTreeMap<u32, Arc<Group>>,
    pub next_domain: u32,
    /// `dev->iommu` of each device by name: the live allocation's number.
    pub dev_iommu: BTreeMap<String, u32>,
    /// `dev->iommu` allocations freed (`dev_iommu_free`).
    pub dev_iommu_freed: std::collections::BTreeSet<u32>,
    pub next_dev_iommu: u32,
    /// Domains of freed groups that still had live mappings: kept so that their page tables
    /// stay valid for whatever still holds those IOVAs.
    orphans: Vec<Arc<Domain>>,
    /// Every domain allocated, weakly (dead ones are pruned now and then): what a snapshot
    /// saves of domains that only a caller holds (an unmanaged domain not attached).
    domains: Vec<std::sync::Weak<Domain>>,
}

impl CoreState {
    /// A new domain with the next id, registered.
    pub(crate) fn new_domain(
        &mut self,
        kind: DomainKind,
        inst: InstanceId,
        driver: Arc<dyn IommuDriver>,
        handle: DriverDomain,
    ) -> Arc<Domain> {
        let id = DomainId(self.next_domain);
        self.next_domain += 1;
        let d = Arc::new(Domain::new(id, kind, inst.0, driver, handle));
        // Amortised pruning: at each power of two, drop the dead.
        if self.domains.len() >= 16 && self.domains.len().is_power_of_two() {
            self.domains.retain(|w| w.strong_count() > 0);
        }
        self.domains.push(Arc::downgrade(&d));
        d
    }

    /// Keep each freed domain that still has live mappings (once).
    fn orphan_mapped(&mut self, domains: &[&Option<Arc<Domain>>]) {
        for d in domains.iter().copied().flatten() {
            if d.live_mappings() > 0 && !self.orphans.iter().any(|o| Arc::ptr_eq(o, d)) {
                self.orphans.push(d.clone());
            }
        }
    }
}

/// Counters of the core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Successful map calls (page, sg, coherent).
    pub maps: u64,
    /// Successful unmap/free calls.
    pub unmaps: u64,
    /// DMA API calls that returned an error other than an oops.
    pub dma_errors: u64,
    /// Simulated oopses returned.
    pub oopses: u64,
    /// Flush-alls done by flush queues (full queue, timer or drain).
    pub fq_flushes: u64,
    /// Groups allocated.
    pub groups_created: u64,
    /// Groups freed (their last device released).
    pub groups_freed: u64,
    /// Devices released (`iommu_release_device`).
    pub devices_released: u64,
    /// Kernel warnings (`WARN_ON`) the core's calls met.
    pub warnings: u64,
}

#[derive(Default)]
pub(crate) struct CoreCounters {
    pub maps: AtomicU64,
    pub unmaps: AtomicU64,
    pub dma_errors: AtomicU64,
    pub oopses: AtomicU64,
    pub fq_flushes: AtomicU64,
    pub groups_created: AtomicU64,
    pub groups_freed: AtomicU64,
    pub devices_released: AtomicU64,
    pub warnings: AtomicU64,
}

/// The IOMMU core, shared by every simulated CPU as `Arc<IommuCore>`.
pub struct IommuCore {
    /// Tells cores apart (a snapshot is restored only into its own core).
    pub(crate) id: u64,
    pub(crate) cfg: CoreConfig,
    pub(crate) mem: Arc<PhysMem>,
    pub(crate) coherent: Arc<FrameAllocator>,
    pub(crate) log: Arc<dyn Printk>,
    pub(crate) state: Mutex<CoreState>,
    /// Serialises release and unregister (device_lock + the bus walk in Linux), and every
    /// probe with `probe_serialised` (`iommu_probe_device_lock`). DMA API calls never take it.
    pub(crate) probe_lock: Mutex<()>,
    /// dma-iommu's `msi_prepare_lock`: one doorbell lookup-or-map at a time, so two devices of
    /// one domain never map the same doorbell page twice.
    pub(crate) msi_prepare_lock: Mutex<()>,
    pub(crate) counters: CoreCounters,
}

impl std::fmt::Debug for IommuCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IommuCore")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats())
            .finish()
    }
}

impl IommuCore {
    /// A core with no instances. `coherent_alloc` backs `dma_alloc_coherent`.
    pub fn new(
        cfg: CoreConfig,
        mem: Arc<PhysMem>,
        coherent_alloc: Arc<FrameAllocator>,
        log: Arc<dyn Printk>,
    ) -> Arc<IommuCore> {
        static NEXT_CORE: AtomicU64 = AtomicU64::new(1);
        Arc::new(IommuCore {
            id: NEXT_CORE.fetch_add(1, Ordering::Relaxed),
            cfg,
            mem,
            coherent: coherent_alloc,
            log,
            state: Mutex::new(CoreState::default()),
            probe_lock: Mutex::new(()),
            msi_prepare_lock: Mutex::new(()),
            counters: CoreCounters::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CoreStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CoreStats {
            maps: l(&c.maps),
            unmaps: l(&c.unmaps),
            dma_errors: l(&c.dma_errors),
            oopses: l(&c.oopses),
            fq_flushes: l(&c.fq_flushes),
            groups_created: l(&c.groups_created),
            groups_freed: l(&c.groups_freed),
            devices_released: l(&c.devices_released),
            warnings: l(&c.warnings),
        }
    }

    /// Register an IOMMU instance (`iommu_device_register`). Devices are then probed onto it
    /// with [`Self::probe_device`], in the order the simulated kernel finds them.
    pub fn register(&self, driver: Arc<dyn IommuDriver>) -> InstanceId {
        let mut st = self.state.lock();
        let id = InstanceId(st.next_instance);
        st.next_instance += 1;
        st.instances.insert(id, driver);
        id
    }

    /// Unregister an instance (`iommu_device_unregister`). With
    /// `unregister_releases_devices` (v6.1 since 57365a04c921) every device of the instance is
    /// released first: platform-bus devices in bus order, then PCI devices in bus order.
    pub fn unregister(&self, inst: InstanceId) -> Result<(), CoreError> {
        let _p = self.probe_lock.lock();
        if !self.state.lock().instances.contains_key(&inst) {
            return Err(CoreError::NoInstance(inst.0));
        }
        if self.cfg.unregister_releases_devices {
            for dev in self.release_order(inst) {
                self.release_locked(dev);
            }
        }
        self.state.lock().instances.remove(&inst);
        Ok(())
    }
}
