//! The registry of named fixes the model knows: each is one Linux commit (12-hex id and exact
//! subject) or one change of our own, and each switches exactly one code path of one layer
//! (see [`crate::switches`]).

use std::fmt;

/// Where a fix comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A mainline Linux commit.
    Linux {
        /// The full 40-hex commit id, where it was verified from a public source.
        full_id: Option<&'static str>,
        /// The first release that contains it (`v6.1` means it was merged for v6.1-rc1 or a
        /// later v6.1 release candidate).
        landed_in: &'static str,
    },
    /// A change of smmu-lab's own, not in any Linux release and so in no preset.
    Ours,
}

/// A named fix the model can switch on or off. Declaration order is history order: kernel
/// specs print their fixes in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fix {
    /// `57365a04c921` "iommu: Move bus setup to IOMMU device registration" (v6.1-rc1, Robin
    /// Murphy): `iommu_device_unregister()` now releases every device of the instance,
    /// removing it from its group. Not a fix of the seed's bug but the commit that exposed it.
    MoveBusSetupToRegistration,
    /// `ce31e6ca68bd` "iommu/arm-smmu: Don't unregister on shutdown" (v6.2-rc4, Vladimir
    /// Oltean): the platform driver's `.shutdown` only disables translation instead of running
    /// `.remove`, so reboot and kexec no longer release masters whose drivers still map DMA.
    DontUnregisterOnShutdown,
    /// Ours, `quiesce`: when arm-smmu disables the SMMU (shutdown or remove) it blocks every
    /// stream (every S2CR faults) instead of setting sCR0.CLIENTPD, so DMA still in flight
    /// faults instead of bypassing translation.
    Quiesce,
    /// Ours, `guarded_dma_domain`: the DMA API reads a device's group excluding a concurrent
    /// release and returns a typed error instead of Linux's NULL dereference in
    /// `iommu_get_dma_domain()`.
    GuardedDmaDomain,
}

impl Fix {
    /// Every fix, in history order.
    pub const ALL: [Fix; 4] = [
        Fix::MoveBusSetupToRegistration,
        Fix::DontUnregisterOnShutdown,
        Fix::Quiesce,
        Fix::GuardedDmaDomain,
    ];

    /// The name a kernel spec uses: the 12-hex commit id for a Linux commit, a word for ours.
    pub fn id(self) -> &'static str {
        match self {
            Fix::MoveBusSetupToRegistration => "57365a04c921",
            Fix::DontUnregisterOnShutdown => "ce31e6ca68bd",
            Fix::Quiesce => "quiesce",
            Fix::GuardedDmaDomain => "guarded_dma_domain",
        }
    }

    /// The commit's subject line exactly as merged (ours: a subject in the same style).
    pub fn subject(self) -> &'static str {
        match self {
            Fix::MoveBusSetupToRegistration => "iommu: Move bus setup to IOMMU device registration",
            Fix::DontUnregisterOnShutdown => "iommu/arm-smmu: Don't unregister on shutdown",
            Fix::Quiesce => {
                "smmu-lab: arm-smmu: block every stream instead of bypassing on disable"
            }
            Fix::GuardedDmaDomain => {
                "smmu-lab: iommu/dma: read the device's group excluding release; fail, do not oops"
            }
        }
    }

    /// Where the fix comes from.
    pub fn origin(self) -> Origin {
        match self {
            // ../shared/reference/iommu-core-and-shutdown.md §1.4 and §9; the commit message
            // is on lkml (2022-10, "Move the bus setup to iommu_device_register()").
            Fix::MoveBusSetupToRegistration => Origin::Linux {
                full_id: None,
                landed_in: "v6.1",
            },
            // ../shared/reference/iommu-core-and-shutdown.md §9: the full id, in Joerg
            // Roedel's "IOMMU Fixes for Linux v6.2-rc3" pull, first tagged in v6.2-rc4.
            Fix::DontUnregisterOnShutdown => Origin::Linux {
                full_id: Some("ce31e6ca68bd7639bd3e5ef97be215031842bbab"),
                landed_in: "v6.2",
            },
            Fix::Quiesce | Fix::GuardedDmaDomain => Origin::Ours,
        }
    }

    /// The layer whose code path the fix switches, and which switch (see
    /// [`crate::Switches`]).
    pub fn switches(self) -> &'static str {
        match self {
            Fix::MoveBusSetupToRegistration => "iommu: CoreConfig::unregister_releases_devices",
            Fix::DontUnregisterOnShutdown => "arm-smmu: .shutdown does not run .remove",
            Fix::Quiesce => "arm-smmu: disabling blocks every stream (no CLIENTPD bypass)",
            Fix::GuardedDmaDomain => "iommu: CoreConfig::linux_faithful off",
        }
    }

    /// Look a fix up by its spec name: a Linux commit id of 12 to 40 hex digits (any case)
    /// that the short or full id starts with, or our own change's word.
    pub fn lookup(name: &str) -> Option<Fix> {
        let lower = name.to_ascii_lowercase();
        let is_hex = lower.len() >= 12 && lower.bytes().all(|b| b.is_ascii_hexdigit());
        Fix::ALL.into_iter().find(|f| match f.origin() {
            Origin::Linux { full_id, .. } if is_hex => {
                lower == f.id() || full_id.is_some_and(|full| full.starts_with(&lower))
            }
            Origin::Linux { .. } => false,
            Origin::Ours => name == f.id(),
        })
    }
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}
