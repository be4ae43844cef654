//! The fixed vocabulary of a scenario file: actor kinds, kernel operations and the parameters
//! each takes, DMA directions and drivers' DMA patterns.

/// Who runs a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A task on a CPU (a shell running `reboot -f`, a sysfs write).
    CpuTask,
    /// A kernel thread.
    Kthread,
    /// A work item on a workqueue (a kworker runs it).
    Workqueue,
    /// A timer callback (softirq context).
    Timer,
    /// A device's DMA engine: it reads and writes the buffers its driver mapped.
    DmaEngine,
}

impl ActorKind {
    /// Every kind.
    pub const ALL: [ActorKind; 5] = [
        ActorKind::CpuTask,
        ActorKind::Kthread,
        ActorKind::Workqueue,
        ActorKind::Timer,
        ActorKind::DmaEngine,
    ];

    /// The name in a file.
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::CpuTask => "cpu-task",
            ActorKind::Kthread => "kthread",
            ActorKind::Workqueue => "workqueue",
            ActorKind::Timer => "timer",
            ActorKind::DmaEngine => "dma-engine",
        }
    }

    /// Parse a file's name.
    pub fn from_name(s: &str) -> Option<ActorKind> {
        ActorKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// A parameter of a script step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Param {
    /// A device: a master on the board, or (for lifecycle operations) an SMMU.
    Device,
    /// A domain handle (named by `iommu-domain-alloc`).
    Domain,
    /// A buffer handle (named by a map or alloc operation).
    Buffer,
    /// Bytes (per entry, for sg lists).
    Size,
    /// Scatterlist entries.
    Nents,
    /// An IOVA (`iommu-map`/`iommu-unmap`).
    Iova,
    /// DMA direction.
    Dir,
    /// A DMA owner cookie (`""` is a NULL owner).
    Owner,
}

impl Param {
    /// The key in a file.
    pub fn key(self) -> &'static str {
        match self {
            Param::Device => "device",
            Param::Domain => "domain",
            Param::Buffer => "buffer",
            Param::Size => "size",
            Param::Nents => "nents",
            Param::Iova => "iova",
            Param::Dir => "dir",
            Param::Owner => "owner",
        }
    }
}

/// What a buffer handle holds; an unmap or free must match the operation that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferKind {
    /// `dma_map_page`.
    Page,
    /// `dma_map_sg`.
    Sg,
    /// `dma_alloc_coherent`.
    Coherent,
    /// `iommu_map` on an unmanaged domain (with a `buffer`).
    Iommu,
}

impl BufferKind {
    /// What it is, in a message.
    pub fn name(self) -> &'static str {
        match self {
            BufferKind::Page => "page mapping",
            BufferKind::Sg => "scatterlist mapping",
            BufferKind::Coherent => "coherent allocation",
            BufferKind::Iommu => "unmanaged-domain mapping",
        }
    }
}

/// One operation of the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Probe a device (its driver's `.probe`, after the IOMMU's `probe_device`).
    Probe,
    /// `echo DEV > /sys/bus/*/drivers/*/bind`.
    Bind,
    /// `echo DEV > /sys/bus/*/drivers/*/unbind`.
    Unbind,
    /// Remove the device (its driver's `.remove`, then the IOMMU's `release_device`).
    Remove,
    /// The driver core retries a probe that returned `-EPROBE_DEFER`.
    DeferredProbe,
    /// PCI hot-unplug of a PCI function (`pci_stop_and_remove_bus_device`).
    PciHotUnplug,
    /// `dma_map_page`.
    DmaMapPage,
    /// `dma_unmap_page`.
    DmaUnmapPage,
    /// `dma_map_sg`.
    DmaMapSg,
    /// `dma_unmap_sg`.
    DmaUnmapSg,
    /// `dma_alloc_coherent`.
    DmaAllocCoherent,
    /// `dma_free_coherent`.
    DmaFreeCoherent,
    /// `iommu_domain_alloc` for the device's IOMMU.
    IommuDomainAlloc,
    /// `iommu_domain_free`.
    IommuDomainFree,
    /// `iommu_attach_device`.
    IommuAttachDevice,
    /// `iommu_detach_device`.
    IommuDetachDevice,
    /// `iommu_map` on a domain.
    IommuMap,
    /// `iommu_unmap` on a domain.
    IommuUnmap,
    /// `reboot -f`: `kernel_restart()`.
    RebootForce,
    /// `kexec -e`: `kernel_kexec()`.
    KexecExecute,
    /// A panic that boots the crash kernel (kdump): `__crash_kexec()`.
    CrashKexec,
    /// The flush-queue timer of the device's DMA domain expires (`fq_flush_timeout`).
    FqTimerExpiry,
    /// The DMA engine reads a buffer through its IOVA.
    DeviceRead,
    /// The DMA engine writes a buffer through its IOVA.
    DeviceWrite,
    /// `iommu_device_claim_dma_owner(dev, owner)` (VFIO, iommufd).
    ClaimDmaOwner,
    /// `iommu_device_release_dma_owner(dev)`.
    ReleaseDmaOwner,
    /// Fault injection: the next page-table allocation for the device's domain fails
    /// (as `fail_page_alloc` would make it).
    FailPgtableAlloc,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 27] = [
        Op::Probe,
        Op::Bind,
        Op::Unbind,
        Op::Remove,
        Op::DeferredProbe,
        Op::PciHotUnplug,
        Op::DmaMapPage,
        Op::DmaUnmapPage,
        Op::DmaMapSg,
        Op::DmaUnmapSg,
        Op::DmaAllocCoherent,
        Op::DmaFreeCoherent,
        Op::IommuDomainAlloc,
        Op::IommuDomainFree,
        Op::IommuAttachDevice,
        Op::IommuDetachDevice,
        Op::IommuMap,
        Op::IommuUnmap,
        Op::RebootForce,
        Op::KexecExecute,
        Op::CrashKexec,
        Op::FqTimerExpiry,
        Op::DeviceRead,
        Op::DeviceWrite,
        Op::ClaimDmaOwner,
        Op::ReleaseDmaOwner,
        Op::FailPgtableAlloc,
    ];

    /// The name in a file.
    pub fn name(self) -> &'static str {
        match self {
            Op::Probe => "probe",
            Op::Bind => "bind",
            Op::Unbind => "unbind",
            Op::Remove => "remove",
            Op::DeferredProbe => "deferred-probe",
            Op::PciHotUnplug => "pci-hot-unplug",
            Op::DmaMapPage => "dma-map-page",
            Op::DmaUnmapPage => "dma-unmap-page",
            Op::DmaMapSg => "dma-map-sg",
            Op::DmaUnmapSg => "dma-unmap-sg",
            Op::DmaAllocCoherent => "dma-alloc-coherent",
            Op::DmaFreeCoherent => "dma-free-coherent",
            Op::IommuDomainAlloc => "iommu-domain-alloc",
            Op::IommuDomainFree => "iommu-domain-free",
            Op::IommuAttachDevice => "iommu-attach-device",
            Op::IommuDetachDevice => "iommu-detach-device",
            Op::IommuMap => "iommu-map",
            Op::IommuUnmap => "iommu-unmap",
            Op::RebootForce => "reboot-force",
            Op::KexecExecute => "kexec-execute",
            Op::CrashKexec => "crash-kexec",
            Op::FqTimerExpiry => "fq-timer-expiry",
            Op::DeviceRead => "device-read",
            Op::DeviceWrite => "device-write",
            Op::ClaimDmaOwner => "claim-dma-owner",
            Op::ReleaseDmaOwner => "release-dma-owner",
            Op::FailPgtableAlloc => "fail-pgtable-alloc",
        }
    }

    /// Parse a file's name.
    pub fn from_name(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == s)
    }

    /// The parameters the operation requires; it takes no others.
    pub fn params(self) -> &'static [Param] {
        use Param::*;
        match self {
            Op::Probe
            | Op::Bind
            | Op::Unbind
            | Op::Remove
            | Op::DeferredProbe
            | Op::PciHotUnplug
            | Op::FqTimerExpiry
            | Op::ReleaseDmaOwner
            | Op::FailPgtableAlloc => &[Device],
            Op::ClaimDmaOwner => &[Device, Owner],
            Op::DmaMapPage => &[Device, Size, Dir, Buffer],
            Op::DmaMapSg => &[Device, Nents, Size, Dir, Buffer],
            Op::DmaAllocCoherent => &[Device, Size, Buffer],
            Op::DmaUnmapPage | Op::DmaUnmapSg | Op::DmaFreeCoherent => &[Device, Buffer],
            Op::IommuDomainAlloc | Op::IommuAttachDevice | Op::IommuDetachDevice => {
                &[Domain, Device]
            }
            Op::IommuDomainFree => &[Domain],
            Op::IommuMap | Op::IommuUnmap => &[Domain, Iova, Size],
            Op::RebootForce | Op::KexecExecute | Op::CrashKexec => &[],
            Op::DeviceRead | Op::DeviceWrite => &[Buffer],
        }
    }

    /// The parameters the operation may take or leave out (besides [`Op::params`]).
    pub fn optional_params(self) -> &'static [Param] {
        match self {
            // The mapping, named, for the device's DMA engine to read or write.
            Op::IommuMap => &[Param::Buffer],
            _ => &[],
        }
    }

    /// Whether the device may be an SMMU as well as a master (lifecycle operations).
    pub fn device_may_be_smmu(self) -> bool {
        matches!(
            self,
            Op::Probe | Op::Bind | Op::Unbind | Op::Remove | Op::DeferredProbe
        )
    }

    /// Whether only a DMA engine runs it (and a DMA engine runs nothing else).
    pub fn is_device_side(self) -> bool {
        matches!(self, Op::DeviceRead | Op::DeviceWrite)
    }

    /// The buffer this operation creates, if any.
    pub fn makes_buffer(self) -> Option<BufferKind> {
        match self {
            Op::DmaMapPage => Some(BufferKind::Page),
            Op::DmaMapSg => Some(BufferKind::Sg),
            Op::DmaAllocCoherent => Some(BufferKind::Coherent),
            Op::IommuMap => Some(BufferKind::Iommu),
            _ => None,
        }
    }

    /// The kind of buffer this operation consumes, if it must match one.
    pub fn takes_buffer(self) -> Option<BufferKind> {
        match self {
            Op::DmaUnmapPage => Some(BufferKind::Page),
            Op::DmaUnmapSg => Some(BufferKind::Sg),
            Op::DmaFreeCoherent => Some(BufferKind::Coherent),
            _ => None,
        }
    }
}

/// `enum dma_data_direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// `DMA_TO_DEVICE`.
    ToDevice,
    /// `DMA_FROM_DEVICE`.
    FromDevice,
    /// `DMA_BIDIRECTIONAL`.
    Bidirectional,
}

impl Dir {
    /// Every direction.
    pub const ALL: [Dir; 3] = [Dir::ToDevice, Dir::FromDevice, Dir::Bidirectional];

    /// The name in a file.
    pub fn name(self) -> &'static str {
        match self {
            Dir::ToDevice => "to-device",
            Dir::FromDevice => "from-device",
            Dir::Bidirectional => "bidirectional",
        }
    }

    /// Parse a file's name.
    pub fn from_name(s: &str) -> Option<Dir> {
        Dir::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// The DMA a driver runs by itself once probed (its own actors), besides any scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaPattern {
    /// No DMA of its own.
    None,
    /// The seed's ENETC under a ping flood: a transmit path (kworker) and the NIC's engine
    /// (receive ring refills, echo replies). Takes `packets` and `steps`.
    EnetcPingFlood,
    /// The generic DMA engine (today's `--traffic DEVICE`). Takes `steps`.
    EngineTraffic,
}

impl DmaPattern {
    /// Every pattern.
    pub const ALL: [DmaPattern; 3] = [
        DmaPattern::None,
        DmaPattern::EnetcPingFlood,
        DmaPattern::EngineTraffic,
    ];

    /// The name in a file.
    pub fn name(self) -> &'static str {
        match self {
            DmaPattern::None => "none",
            DmaPattern::EnetcPingFlood => "enetc-ping-flood",
            DmaPattern::EngineTraffic => "engine-traffic",
        }
    }

    /// Parse a file's name.
    pub fn from_name(s: &str) -> Option<DmaPattern> {
        DmaPattern::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// Names joined for a message: `a, b, c`.
pub(crate) fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> String {
    all.iter().map(|t| name(*t)).collect::<Vec<_>>().join(", ")
}

/// A hardware (or firmware) quirk of the board (`[board] quirks`); the real stack puts it
/// between the driver and the SMMU model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// A hypervisor traps the SMMU's global register space and its emulation goes wrong on
    /// stores of the zero register (`XZR`/`WZR`, what a compiler emits for a constant 0),
    /// seen on Qualcomm SoCs (the message of `4e4abae311e4`): `mmu500::hyp`.
    HypervisorLosesZeroStores,
}

impl Quirk {
    /// Every quirk.
    pub const ALL: [Quirk; 1] = [Quirk::HypervisorLosesZeroStores];

    /// The name in a scenario file.
    pub fn name(self) -> &'static str {
        match self {
            Quirk::HypervisorLosesZeroStores => "hypervisor-loses-zero-stores",
        }
    }

    /// Parse a file's name.
    pub fn from_name(s: &str) -> Option<Quirk> {
        Quirk::ALL.into_iter().find(|q| q.name() == s)
    }
}
