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

/// A named fix the model can switch on or off. Declaration order is history order (the
/// release it landed in, then merge order within it): kernel specs print their fixes in this
/// order and `bisect` applies them in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fix {
    /// `b63b3439b856` "iommu/arm-smmu-v3: Abort all transactions if SMMU is enabled in kdump
    /// kernel" (Will Deacon): a kdump kernel that finds the SMMU enabled sets GBPA.ABORT,
    /// disables it and fails the probe (-EBUSY) instead of resetting it, during which the
    /// crashed kernel's in-flight DMA met GBPA (bypass: stray DMA into the capture kernel).
    V3KdumpAbortTransactions,
    /// `85c7a0f1ef62` "iommu/io-pgtable-arm: Fix race handling in split_blk_unmap()" (v4.20,
    /// Robin Murphy): of two lockless unmappers splitting one block, the loser (whose table
    /// install lost the compare-and-exchange) unmaps its part from the winner's table even at
    /// the last level, where before it only reported its pages unmapped.
    SplitBlkUnmapRace,
    /// `4e4abae311e4` "iommu/arm-smmu: Avoid constant zero in TLBI writes" (v5.2, Robin
    /// Murphy): TLB maintenance registers are written with a non-zero dummy value, because a
    /// hypervisor that traps the global register space on some Qualcomm SoCs mis-emulates
    /// stores of the zero register.
    AvoidZeroTlbiWrites,
    /// `3f54c447df34` "iommu/arm-smmu-v3: Don't disable SMMU in kdump kernel" (v5.2, Will
    /// Deacon, Fixes: b63b3439b856): a kdump kernel resets the SMMU behind GBPA.ABORT and
    /// probes it (so the capture kernel's devices behind it can transfer the dump) instead of
    /// leaving it off, and keeps the event queue disabled so the faults of masters it has no
    /// driver for neither spam the console nor swamp the IRQ thread.
    V3KdumpKeepSmmu,
    /// `b1a1347912a7` "iommu/arm-smmu: Fix race condition during iommu_group creation"
    /// (v5.15): `arm_smmu_device_group()` looks the group up and records it under
    /// `stream_map_mutex`, so two masters sharing a stream ID cannot create two groups.
    GroupCreationRace,
    /// `211ff31b3d33` "iommu: Fix race condition during default domain allocation" (v5.15):
    /// the default domain is allocated under `group->mutex`.
    DefaultDomainAllocRace,
    /// `53f613134984` "iommu/arm-smmu: Fix missing unlock on error in
    /// arm_smmu_device_group()" (v5.15): the "stream IDs in two groups" error return releases
    /// `stream_map_mutex` that `b1a1347912a7` made it take.
    UnlockOnGroupError,
    /// `556f99ac8866` "iommu: Extend mutex lock scope in iommu_probe_device()" (v5.17):
    /// `group->mutex` also covers the default-domain attach and the direct mappings.
    ProbeMutexScope,
    /// `d7061627d701` "iommu/iova: Fix race between FQ timeout and teardown" (v5.17): the
    /// flush queue's teardown waits for a running timeout handler (`del_timer_sync`).
    FqTimeoutTeardownRace,
    /// `b54240ad4943` "iommu: Fix potential use-after-free during probe" (v5.17): freeing
    /// `dev->iommu` after a failed probe is serialised against `of_iommu_configure()`.
    ProbeUseAfterFree,
    /// `a3884774d731` "iommu/dma: Fix iova map result check bug" (v5.19): `iommu_map_sg`'s
    /// result is checked as a signed value, so a failure frees the IOVA and fails the call.
    MapSgResultCheck,
    /// `ac9a5d522bb8` "iommu/dma: Fix race condition during iova_domain initialization"
    /// (v6.0): devices sharing a domain initialise its IOVA allocator under the DMA cookie's
    /// mutex, so a second initialisation cannot empty it under the first device's mappings.
    IovaDomainInitRace,
    /// `57365a04c921` "iommu: Move bus setup to IOMMU device registration" (v6.1-rc1, Robin
    /// Murphy): `iommu_device_unregister()` now releases every device of the instance,
    /// removing it from its group. Not a fix of the seed's bug but the commit that exposed it.
    MoveBusSetupToRegistration,
    /// `ce31e6ca68bd` "iommu/arm-smmu: Don't unregister on shutdown" (v6.2-rc4, Vladimir
    /// Oltean): the platform driver's `.shutdown` only disables translation instead of running
    /// `.remove`, so reboot and kexec no longer release masters whose drivers still map DMA.
    DontUnregisterOnShutdown,
    /// `32ea2c57dc21` "iommu/arm-smmu-v3: Don't unregister on shutdown" (v6.2-rc4, Vladimir
    /// Oltean, patch 2/2 of the seed's series, same Fixes: 57365a04c921): arm-smmu-v3's
    /// `.shutdown` only disables the SMMU (CR0 := 0, GBPA untouched) instead of running
    /// `.remove`.
    V3DontUnregisterOnShutdown,
    /// `a6a9a5da6808` "iommu: Fix refcount leak in iommu_device_claim_dma_owner" (v6.2): the
    /// "no owner" error return drops the group reference it took.
    ClaimDmaOwnerRefcount,
    /// `dcdb3ba7e2a8` "iommu/iova: Fix alloc iova overflows issue" (v6.2, Yunfei Wang,
    /// CVE-2023-52910): the IOVA allocator's retry bound is the cached range's `pfn_hi`, not
    /// `pfn_hi + 1`, which overflowed to 0 for the anchor and let an allocation larger than
    /// the space above `start_pfn` succeed below it.
    IovaAllocOverflow,
    /// `229e6ee43d2a` "iommu/arm-smmu: Defer probe of clients after smmu device bound" (v6.13):
    /// a client probing while its SMMU is registered but not yet bound gets `-EPROBE_DEFER`.
    DeferClientsUntilSmmuBound,
    /// `33729a5fc0ca` "iommu/io-pgtable-arm: Remove split on unmap behavior" (v6.13, Jason
    /// Gunthorpe): unmapping part of a block entry no longer replaces the block with a table
    /// of smaller entries and unmaps the part; io-pgtable-arm warns and unmaps nothing
    /// (returns 0). Not a fix of a crash but a behaviour change: the split is not hitless under
    /// the SMMU's break-before-make rules and no other IOMMU driver splits.
    RemoveSplitOnUnmap,
    /// `d71fa842d33c` "iommu/io-pgtable-arm: Fix stage-2 map/unmap for concatenated tables"
    /// (v6.13, Mostafa Saleh; stable 5.15.174, 6.1.120, 6.6.64): the number of entries a map
    /// or unmap may touch at a concatenated stage-2 PGD is what is left in the index's own
    /// table page, not a page's entry count minus the whole-PGD index, which is zero or
    /// negative past the first page. Before it, a start-level block map there wrote nothing
    /// and returned a negative count, and an unmap there returned 0 and leaked the subtree.
    /// Broken since 4a77b12deb25 "iommu/io-pgtable-arm: Implement arm_lpae_map_pages()" and
    /// 1fe27be5ffec "... Implement arm_lpae_unmap_pages()" (v5.15).
    ConcatPgdMaxEntries,
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
    pub const ALL: [Fix; 22] = [
        Fix::V3KdumpAbortTransactions,
        Fix::SplitBlkUnmapRace,
        Fix::AvoidZeroTlbiWrites,
        Fix::V3KdumpKeepSmmu,
        Fix::GroupCreationRace,
        Fix::DefaultDomainAllocRace,
        Fix::UnlockOnGroupError,
        Fix::ProbeMutexScope,
        Fix::FqTimeoutTeardownRace,
        Fix::ProbeUseAfterFree,
        Fix::MapSgResultCheck,
        Fix::IovaDomainInitRace,
        Fix::MoveBusSetupToRegistration,
        Fix::DontUnregisterOnShutdown,
        Fix::V3DontUnregisterOnShutdown,
        Fix::ClaimDmaOwnerRefcount,
        Fix::IovaAllocOverflow,
        Fix::DeferClientsUntilSmmuBound,
        Fix::RemoveSplitOnUnmap,
        Fix::ConcatPgdMaxEntries,
        Fix::Quiesce,
        Fix::GuardedDmaDomain,
    ];

    /// The name a kernel spec uses: the 12-hex commit id for a Linux commit, a word for ours.
    pub fn id(self) -> &'static str {
        match self {
            Fix::SplitBlkUnmapRace => "85c7a0f1ef62",
            Fix::V3KdumpAbortTransactions => "b63b3439b856",
            Fix::AvoidZeroTlbiWrites => "4e4abae311e4",
            Fix::V3KdumpKeepSmmu => "3f54c447df34",
            Fix::GroupCreationRace => "b1a1347912a7",
            Fix::DefaultDomainAllocRace => "211ff31b3d33",
            Fix::UnlockOnGroupError => "53f613134984",
            Fix::ProbeMutexScope => "556f99ac8866",
            Fix::FqTimeoutTeardownRace => "d7061627d701",
            Fix::ProbeUseAfterFree => "b54240ad4943",
            Fix::MapSgResultCheck => "a3884774d731",
            Fix::IovaDomainInitRace => "ac9a5d522bb8",
            Fix::MoveBusSetupToRegistration => "57365a04c921",
            Fix::DontUnregisterOnShutdown => "ce31e6ca68bd",
            Fix::V3DontUnregisterOnShutdown => "32ea2c57dc21",
            Fix::ClaimDmaOwnerRefcount => "a6a9a5da6808",
            Fix::IovaAllocOverflow => "dcdb3ba7e2a8",
            Fix::DeferClientsUntilSmmuBound => "229e6ee43d2a",
            Fix::RemoveSplitOnUnmap => "33729a5fc0ca",
            Fix::ConcatPgdMaxEntries => "d71fa842d33c",
            Fix::Quiesce => "quiesce",
            Fix::GuardedDmaDomain => "guarded_dma_domain",
        }
    }

    /// The commit's subject line exactly as merged (ours: a subject in the same style).
    pub fn subject(self) -> &'static str {
        match self {
            Fix::SplitBlkUnmapRace => {
                "iommu/io-pgtable-arm: Fix race handling in split_blk_unmap()"
            }
            Fix::V3KdumpAbortTransactions => {
                "iommu/arm-smmu-v3: Abort all transactions if SMMU is enabled in kdump kernel"
            }
            Fix::AvoidZeroTlbiWrites => "iommu/arm-smmu: Avoid constant zero in TLBI writes",
            Fix::V3KdumpKeepSmmu => "iommu/arm-smmu-v3: Don't disable SMMU in kdump kernel",
            Fix::GroupCreationRace => {
                "iommu/arm-smmu: Fix race condition during iommu_group creation"
            }
            Fix::DefaultDomainAllocRace => {
                "iommu: Fix race condition during default domain allocation"
            }
            Fix::UnlockOnGroupError => {
                "iommu/arm-smmu: Fix missing unlock on error in arm_smmu_device_group()"
            }
            Fix::ProbeMutexScope => "iommu: Extend mutex lock scope in iommu_probe_device()",
            Fix::FqTimeoutTeardownRace => "iommu/iova: Fix race between FQ timeout and teardown",
            Fix::ProbeUseAfterFree => "iommu: Fix potential use-after-free during probe",
            Fix::MapSgResultCheck => "iommu/dma: Fix iova map result check bug",
            Fix::IovaDomainInitRace => {
                "iommu/dma: Fix race condition during iova_domain initialization"
            }
            Fix::MoveBusSetupToRegistration => "iommu: Move bus setup to IOMMU device registration",
            Fix::DontUnregisterOnShutdown => "iommu/arm-smmu: Don't unregister on shutdown",
            Fix::V3DontUnregisterOnShutdown => "iommu/arm-smmu-v3: Don't unregister on shutdown",
            Fix::ClaimDmaOwnerRefcount => {
                "iommu: Fix refcount leak in iommu_device_claim_dma_owner"
            }
            Fix::IovaAllocOverflow => "iommu/iova: Fix alloc iova overflows issue",
            Fix::DeferClientsUntilSmmuBound => {
                "iommu/arm-smmu: Defer probe of clients after smmu device bound"
            }
            Fix::RemoveSplitOnUnmap => "iommu/io-pgtable-arm: Remove split on unmap behavior",
            Fix::ConcatPgdMaxEntries => {
                "iommu/io-pgtable-arm: Fix stage-2 map/unmap for concatenated tables"
            }
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
        // Full ids and releases: docs/linux-iommu-bugs.md says where each was read ("inferred":
        // deduced from the pull or merge window it travelled in).
        let linux = |full_id: &'static str, landed_in: &'static str| Origin::Linux {
            full_id: Some(full_id),
            landed_in,
        };
        match self {
            // docs/linux-iommu-bugs.md: the release is inferred (committed 2018-10-01 for the
            // 4.20 merge window; AUTOSEL later offered it to 4.19).
            Fix::SplitBlkUnmapRace => linux("85c7a0f1ef624ef58173ef52ea77780257bdfe04", "v4.20"),
            // Inferred release: its code is in v4.19 (3f54c447df34's 4.19 stable backport
            // removes it); the full id was not found in a reachable source.
            Fix::V3KdumpAbortTransactions => Origin::Linux {
                full_id: None,
                landed_in: "v4.16",
            },
            Fix::AvoidZeroTlbiWrites => linux("4e4abae311e4b44aaf61f18a826fd7136037f199", "v5.2"),
            // The full id from its 4.19 stable backport ("Upstream commit"); the release is
            // inferred (backported in June 2019, during v5.2-rc).
            Fix::V3KdumpKeepSmmu => linux("3f54c447df34ff9efac7809a4a80fd3208efc619", "v5.2"),
            Fix::GroupCreationRace => linux("b1a1347912a742a4e1fcdc9df6302dd9dd2c3405", "v5.15"),
            Fix::DefaultDomainAllocRace => {
                linux("211ff31b3d33b56aa12937e898c9280d07daf0d9", "v5.15")
            }
            Fix::UnlockOnGroupError => linux("53f613134984c293af158920ebadcac045fa0545", "v5.15"),
            Fix::ProbeMutexScope => linux("556f99ac886635e8da15528995f06d1d7028cfca", "v5.17"),
            Fix::FqTimeoutTeardownRace => {
                linux("d7061627d701c90e1cac1e1e60c45292f64f3470", "v5.17")
            }
            Fix::ProbeUseAfterFree => linux("b54240ad494300ff0994c4539a531727874381f4", "v5.17"),
            Fix::MapSgResultCheck => linux("a3884774d731f03d3a3dd4fb70ec2d9341ceb39d", "v5.19"),
            Fix::IovaDomainInitRace => linux("ac9a5d522bb80be50ea84965699e1c8257d745ce", "v6.0"),
            Fix::ClaimDmaOwnerRefcount => linux("a6a9a5da68084d5eac6ef85ad09df7fc9c971de4", "v6.2"),
            // The same iommu-fixes-v6.2-rc3 pull as the seed's fix (docs/linux-iommu-bugs.md).
            Fix::IovaAllocOverflow => linux("dcdb3ba7e2a8caae7bfefd603bc22fd0ce9a389c", "v6.2"),
            Fix::DeferClientsUntilSmmuBound => {
                linux("229e6ee43d2a160a1592b83aad620d6027084aad", "v6.13")
            }
            // docs/linux-iommu-bugs.md: the release is inferred (applied for the 6.13 merge
            // window, Nov 2024).
            Fix::RemoveSplitOnUnmap => linux("33729a5fc0caf7a97d20507acbeee6b012e7e519", "v6.13"),
            // Will Deacon's for-joerg/arm-smmu/updates with 229e6ee43d2a (29 Oct 2024), pulled
            // for the 6.13 merge window; the stable backports quote the full id.
            Fix::ConcatPgdMaxEntries => linux("d71fa842d33c48ac2809ae11d2379b5a788792cb", "v6.13"),
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
            // ../shared/reference/iommu-core-and-shutdown.md §9: the same pull, the same tag.
            Fix::V3DontUnregisterOnShutdown => Origin::Linux {
                full_id: Some("32ea2c57dc216b6ad8125fa680d31daa5d421c95"),
                landed_in: "v6.2",
            },
            Fix::Quiesce | Fix::GuardedDmaDomain => Origin::Ours,
        }
    }

    /// The layer whose code path the fix switches, and which switch (see
    /// [`crate::Switches`]).
    pub fn switches(self) -> &'static str {
        match self {
            Fix::SplitBlkUnmapRace => {
                "pgtable: PgTableRequest::split_race = SplitRace::UnmapFromWinner"
            }
            Fix::V3KdumpAbortTransactions => {
                "arm-smmu-v3: GBPA.ABORT before disabling in a kdump kernel (v3_kdump_aborts_before_disable)"
            }
            Fix::AvoidZeroTlbiWrites => "arm-smmu: DriverBehaviour::zero_tlbi_writes off",
            Fix::V3KdumpKeepSmmu => {
                "arm-smmu-v3: a kdump kernel resets and keeps the SMMU (v3_kdump_keeps_smmu)"
            }
            Fix::GroupCreationRace => {
                "arm-smmu: DriverBehaviour::group_lookup_under_stream_map_mutex"
            }
            Fix::DefaultDomainAllocRace => "iommu: CoreConfig::default_domain_under_group_mutex",
            Fix::UnlockOnGroupError => "arm-smmu: DriverBehaviour::unlock_on_group_conflict",
            Fix::ProbeMutexScope => "iommu: CoreConfig::attach_under_group_mutex",
            Fix::FqTimeoutTeardownRace => "iommu: CoreConfig::fq_teardown_waits_for_timer",
            Fix::ProbeUseAfterFree => "iommu: CoreConfig::probe_serialised",
            Fix::MapSgResultCheck => "iommu: CoreConfig::map_sg_signed_result_check",
            Fix::IovaAllocOverflow => "iommu: CoreConfig::iova_anchor_retry_overflows off",
            Fix::RemoveSplitOnUnmap => {
                "pgtable: PgTableRequest::partial_unmap = PartialUnmap::Refuse"
            }
            Fix::IovaDomainInitRace => "iommu: CoreConfig::iova_domain_init_under_cookie_mutex",
            Fix::ClaimDmaOwnerRefcount => "iommu: CoreConfig::claim_owner_puts_group_on_error",
            Fix::DeferClientsUntilSmmuBound => {
                "arm-smmu: DriverBehaviour::defer_client_until_bound"
            }
            Fix::ConcatPgdMaxEntries => {
                "pgtable: PgTableRequest::pgd_run_bound = PgdRunBound::WithinPage"
            }
            Fix::MoveBusSetupToRegistration => "iommu: CoreConfig::unregister_releases_devices",
            Fix::DontUnregisterOnShutdown => "arm-smmu: .shutdown does not run .remove",
            Fix::V3DontUnregisterOnShutdown => "arm-smmu-v3: .shutdown does not run .remove",
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
