//! What a lifecycle run is made of: devices, actors and their steps, the behaviour switches,
//! the properties, and what a run produces.

use std::fmt;

/// One behaviour switch per Linux fix this model still runs; `true` is the behaviour after
/// the fix. (Group creation, the default domain's locking, the `stream_map_mutex` error path,
/// the deferral of clients of an unbound SMMU, the IOVA domain's initialisation, the
/// flush queue's teardown and the DMA-owner reference run on the real
/// stack: `arm_smmu::DriverBehaviour` and `iommu::CoreConfig`; here they always take the
/// fixed path.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches {
    /// core: probing and freeing `dev->iommu` are serialised with `of_iommu_configure()` by
    /// one lock (`b54240ad4943`).
    pub probe_serialised_with_iommu_configure: bool,
}

impl Switches {
    /// Every fix in.
    pub fn all_fixed() -> Switches {
        Switches {
            probe_serialised_with_iommu_configure: true,
        }
    }
}

/// A reserved region the firmware asks to be identity-mapped for a device
/// (`IOMMU_RESV_DIRECT`, a reserved-memory node with `iommu-addresses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectRegion {
    /// First byte (IOVA = physical address).
    pub base: u64,
    /// Bytes.
    pub size: u64,
}

/// A DMA master as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Linux device name.
    pub name: String,
    /// Its stream IDs (the firmware's `iommus`/`iommu-map`).
    pub stream_ids: Vec<u32>,
    /// A PCI function (its group comes from `pci_device_group`).
    pub pci: bool,
    /// Reserved regions to identity-map.
    pub direct: Vec<DirectRegion>,
}

impl Device {
    /// A platform device.
    pub fn platform(name: &str, stream_ids: &[u32]) -> Device {
        Device {
            name: name.to_string(),
            stream_ids: stream_ids.to_vec(),
            pci: false,
            direct: Vec::new(),
        }
    }
}

/// An operation the model runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Probe a master (`iommu_probe_device` then its driver) or the SMMU (register, bind,
    /// reset).
    Probe,
    /// The driver core retries the device's probe from the deferred-probe work
    /// (`of_iommu_configure`, then `iommu_probe_device` if it has no group yet).
    DeferredProbe,
    /// Remove the device (`iommu_release_device`); PCI hot-unplug is the same path.
    Remove,
    /// `dma_map_page` of `size` bytes into buffer handle `buffer`.
    DmaMapPage {
        /// Bytes.
        size: u64,
        /// Handle.
        buffer: String,
    },
    /// `dma_map_sg` of `nents` entries of `size` bytes each.
    DmaMapSg {
        /// Entries.
        nents: u32,
        /// Bytes per entry.
        size: u64,
        /// Handle.
        buffer: String,
    },
    /// `dma_unmap_page`/`dma_unmap_sg` of a handle.
    DmaUnmap {
        /// Handle.
        buffer: String,
    },
    /// The flush-queue timer of the device's default domain fires (`fq_flush_timeout`).
    FqTimerExpiry,
    /// `iommu_device_claim_dma_owner(dev, owner)`; `None` is a NULL owner.
    ClaimDmaOwner {
        /// The owner cookie.
        owner: Option<String>,
    },
    /// `iommu_device_release_dma_owner(dev)`.
    ReleaseDmaOwner,
    /// The device's DMA engine writes the buffer.
    DeviceWrite {
        /// Handle.
        buffer: String,
    },
    /// The device's DMA engine reads the buffer.
    DeviceRead {
        /// Handle.
        buffer: String,
    },
}

/// One step of an actor's script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What.
    pub op: Op,
    /// On which device (a master, or the SMMU for `Probe`).
    pub device: String,
}

impl Step {
    /// A step.
    pub fn new(op: Op, device: &str) -> Step {
        Step {
            op,
            device: device.to_string(),
        }
    }
}

/// A thread of the model (a CPU task, kthread, work item, timer or a device's DMA engine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Its name, in verdicts.
    pub name: String,
    /// Its script.
    pub script: Vec<Step>,
}

impl Actor {
    /// An actor.
    pub fn new(name: &str, script: Vec<Step>) -> Actor {
        Actor {
            name: name.to_string(),
            script,
        }
    }
}

/// A property a run is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    /// No NULL dereference or other oops.
    NoOops,
    /// No actor waits forever for a lock.
    NoDeadlock,
    /// Masters that share a stream ID are in one IOMMU group.
    OneGroupPerStream,
    /// Every member of a group is attached to the group's one domain.
    OneDomainPerGroup,
    /// Nothing is read or written after it was freed.
    NoUseAfterFree,
    /// Every group reference taken is dropped.
    NoRefcountLeak,
    /// No DMA faults (every address a DMA call returned is mapped).
    NoFault,
    /// No kernel warning (`WARN_ON`).
    NoKernelWarning,
    /// No IOVA is handed out while a live mapping holds it.
    UniqueIova,
}

impl Property {
    /// Every property.
    pub const ALL: [Property; 9] = [
        Property::NoOops,
        Property::NoDeadlock,
        Property::OneGroupPerStream,
        Property::OneDomainPerGroup,
        Property::NoUseAfterFree,
        Property::NoRefcountLeak,
        Property::NoFault,
        Property::NoKernelWarning,
        Property::UniqueIova,
    ];

    /// The name in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Property::NoOops => "no-oops",
            Property::NoDeadlock => "no-deadlock",
            Property::OneGroupPerStream => "one-group-per-stream",
            Property::OneDomainPerGroup => "one-domain-per-group",
            Property::NoUseAfterFree => "no-use-after-free",
            Property::NoRefcountLeak => "no-refcount-leak",
            Property::NoFault => "no-fault",
            Property::NoKernelWarning => "no-kernel-warning",
            Property::UniqueIova => "unique-iova",
        }
    }

    /// Parse a name.
    pub fn from_name(s: &str) -> Option<Property> {
        Property::ALL.into_iter().find(|p| p.name() == s)
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A property violated, with what happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    /// Which property.
    pub property: Property,
    /// What happened, naming the actors, devices and locks involved.
    pub message: String,
}

/// What one run produced.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Outcome {
    /// The kernel log of the run, one line per event.
    pub log: Vec<String>,
    /// Every property violated, in the order it happened.
    pub findings: Vec<Finding>,
}

/// A lifecycle scenario: the devices, the actors, the kernel's switches and what to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The SMMU's device name (for `Probe` of the SMMU and log lines).
    pub smmu: String,
    /// The masters.
    pub devices: Vec<Device>,
    /// The actors, all started at once.
    pub actors: Vec<Actor>,
    /// The kernel's behaviour.
    pub switches: Switches,
    /// `iommu.strict=0`: unmaps go through the flush queue.
    pub lazy: bool,
    /// The properties checked.
    pub properties: Vec<Property>,
    /// Devices probed at boot although no script names them (a scenario's `[[driver]]`s).
    pub boot_probed: Vec<String>,
}

impl Config {
    /// Devices and actors, every fix in, strict mode, every property.
    pub fn new(devices: Vec<Device>, actors: Vec<Actor>) -> Config {
        Config {
            smmu: "5000000.iommu".into(),
            devices,
            actors,
            switches: Switches::all_fixed(),
            lazy: false,
            properties: Property::ALL.to_vec(),
            boot_probed: Vec::new(),
        }
    }
}
