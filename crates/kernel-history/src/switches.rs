//! From a kernel (a set of fixes) to each layer's own behaviour switches. The layers never
//! know commit ids: `iommu` has [`CoreConfig`] flags and `arm-smmu` a [`ShutdownPolicy`];
//! this is the one place that says which fix flips which switch, one fix to one code path.

use crate::fix::Fix;
use crate::preset::Preset;
use crate::spec::KernelSpec;
use arm_smmu::{DriverBehaviour, LinuxVersion, ShutdownPolicy};
use iommu::iova::IovaDepot;
use iommu::{CoreConfig, ReleaseSteps};
use thiserror::Error;

/// What arm-smmu writes when it turns the SMMU off (shutdown or remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmmuOff {
    /// sCR0.CLIENTPD: every stream bypasses translation (Linux).
    Bypass,
    /// Every S2CR faults and the SMMU stays enabled (`quiesce`).
    BlockStreams,
}

/// Every switch the model's fixes control, one field per fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches {
    /// iommu: `iommu_device_unregister()` releases every device of the instance
    /// (`57365a04c921`).
    pub unregister_releases_devices: bool,
    /// arm-smmu: `.shutdown` runs `.remove`, which unregisters (absent `ce31e6ca68bd`).
    pub shutdown_runs_remove: bool,
    /// arm-smmu-v3: `.shutdown` runs `.remove`, which unregisters (absent `32ea2c57dc21`).
    pub v3_shutdown_runs_remove: bool,
    /// arm-smmu (and arm-smmu-v3): how the SMMU is turned off (`quiesce`).
    pub smmu_off: SmmuOff,
    /// iommu: the DMA API reads the group pointer unguarded and a NULL group is Linux's oops
    /// (absent `guarded_dma_domain`).
    pub unguarded_dma_domain: bool,
    /// arm-smmu: TLB maintenance "don't care" registers are written with the constant 0
    /// (absent `4e4abae311e4`).
    pub zero_tlbi_writes: bool,
    /// iommu: `dma_map_sg` checks the mapping's result signed (`a3884774d731`).
    pub map_sg_signed_result_check: bool,
    /// iommu: the IOVA allocator's retry from the anchor overflows to PFN 0 (absent
    /// `dcdb3ba7e2a8`).
    pub iova_anchor_retry_overflows: bool,
    /// pgtable: what unmapping part of a block does (split before `33729a5fc0ca`, refused
    /// after).
    pub partial_unmap: pgtable::PartialUnmap,
    /// pgtable: what the loser of two lockless unmappers splitting one block does (reports
    /// its last-level pages unmapped without clearing them before `85c7a0f1ef62`).
    pub split_race: pgtable::SplitRace,
    /// pgtable: how many entries a step may touch at a concatenated stage-2 PGD (a page's
    /// count minus the PGD index before `d71fa842d33c`, what is left in the page after).
    pub pgd_run_bound: pgtable::PgdRunBound,
    /// arm-smmu: `device_group` looks up and records the group under `stream_map_mutex`
    /// (`b1a1347912a7`).
    pub group_lookup_under_stream_map_mutex: bool,
    /// arm-smmu: `device_group`'s "two groups" error return releases `stream_map_mutex`
    /// (`53f613134984`).
    pub unlock_on_group_conflict: bool,
    /// iommu: the default domain is allocated under `group->mutex` (`211ff31b3d33`).
    pub default_domain_under_group_mutex: bool,
    /// iommu: `group->mutex` also covers the attach and the direct mappings (`556f99ac8866`).
    pub attach_under_group_mutex: bool,
    /// iommu: `iommu_probe_device_lock` serialises every probe and `of_iommu_configure`
    /// (`b54240ad4943`).
    pub probe_serialised: bool,
    /// iommu: freeing a flush queue waits for its running timer (`d7061627d701`).
    pub fq_teardown_waits_for_timer: bool,
    /// iommu: `iommu_dma_init_domain` under the DMA cookie's mutex (`ac9a5d522bb8`).
    pub iova_domain_init_under_cookie_mutex: bool,
    /// arm-smmu: a client probing before the SMMU's device is bound is deferred
    /// (`229e6ee43d2a`).
    pub defer_client_until_bound: bool,
    /// iommu: `iommu_device_claim_dma_owner`'s -EINVAL return puts its group reference
    /// (`a6a9a5da6808`).
    pub claim_owner_puts_group_on_error: bool,
    /// arm-smmu-v3: a kdump kernel sets GBPA.ABORT before it disables an SMMU it finds
    /// enabled (`b63b3439b856`).
    pub v3_kdump_aborts_before_disable: bool,
    /// arm-smmu-v3: a kdump kernel then resets and probes the SMMU, its event queue off,
    /// instead of failing with -EBUSY (`3f54c447df34`).
    pub v3_kdump_keeps_smmu: bool,
    /// iommu: the IOVA rcache's depot. A property of the release, not a fix the model
    /// toggles: 911aa1245da8 "iommu/iova: Make the rcache depot scale better" (v6.7) turned
    /// v6.1's 32-magazine array into an unbounded list, so v6.12 has the list.
    pub iova_depot: IovaDepot,
    /// iommu: a group's domains are freed by the release that empties its device list, not
    /// with the group at its last reference. A property of the release, like `iova_depot`:
    /// aa0958570f24 "iommu: Add iommu_init/deinit_device() paired functions" (v6.6) moved the
    /// free into `iommu_deinit_device`, so v6.12 has it.
    pub domains_freed_with_last_member: bool,
    /// iommu: the steps of a device's release, a property of the release like `iova_depot`:
    /// up to v6.3 driver then group (with its `Removing from iommu group N` line);
    /// dba9ca9d41f5 (v6.4) unlinks first and prints nothing; aa0958570f24 (v6.6) does it all
    /// in `iommu_deinit_device`, so v6.12 and later have `Deinit`.
    pub release_steps: ReleaseSteps,
    /// iommu: a device joining a group that has a domain is attached to it at the join, and a
    /// failure prints `Failed to add to iommu group N: ERR` (absent `0046a4337eae`, v6.5).
    pub join_attaches_to_group_domain: bool,
}

/// A combination of switches for which a layer has no code path yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum NoCodePath {
    /// arm-smmu's shutdown policies cover shutdown-runs-remove only with the CLIENTPD bypass.
    #[error("arm-smmu has no shutdown path that both runs .remove (no ce31e6ca68bd) and blocks every stream (quiesce)")]
    RemoveWithBlockedStreams,
    /// arm-smmu-v3: 3f54c447df34's kdump reset is a rewrite of b63b3439b856's abort.
    #[error("arm-smmu-v3 has no kdump reset that keeps the SMMU (3f54c447df34) without b63b3439b856's GBPA.ABORT, which it rewrote")]
    V3KdumpResetWithoutAbort,
    /// The same for arm-smmu-v3.
    #[error("arm-smmu-v3 has no shutdown path that both runs .remove (no 32ea2c57dc21) and blocks every stream (quiesce)")]
    V3RemoveWithBlockedStreams,
}

impl Switches {
    /// The switches of `kernel`.
    pub fn of(kernel: &KernelSpec) -> Switches {
        Switches {
            unregister_releases_devices: kernel.contains(Fix::MoveBusSetupToRegistration),
            shutdown_runs_remove: !kernel.contains(Fix::DontUnregisterOnShutdown),
            v3_shutdown_runs_remove: !kernel.contains(Fix::V3DontUnregisterOnShutdown),
            smmu_off: if kernel.contains(Fix::Quiesce) {
                SmmuOff::BlockStreams
            } else {
                SmmuOff::Bypass
            },
            unguarded_dma_domain: !kernel.contains(Fix::GuardedDmaDomain),
            map_sg_signed_result_check: kernel.contains(Fix::MapSgResultCheck),
            iova_anchor_retry_overflows: !kernel.contains(Fix::IovaAllocOverflow),
            zero_tlbi_writes: !kernel.contains(Fix::AvoidZeroTlbiWrites),
            partial_unmap: if kernel.contains(Fix::RemoveSplitOnUnmap) {
                pgtable::PartialUnmap::Refuse
            } else {
                pgtable::PartialUnmap::Split
            },
            split_race: if kernel.contains(Fix::SplitBlkUnmapRace) {
                pgtable::SplitRace::UnmapFromWinner
            } else {
                pgtable::SplitRace::ReportWithoutClearing
            },
            pgd_run_bound: if kernel.contains(Fix::ConcatPgdMaxEntries) {
                pgtable::PgdRunBound::WithinPage
            } else {
                pgtable::PgdRunBound::TableMinusIndex
            },
            group_lookup_under_stream_map_mutex: kernel.contains(Fix::GroupCreationRace),
            unlock_on_group_conflict: kernel.contains(Fix::UnlockOnGroupError),
            default_domain_under_group_mutex: kernel.contains(Fix::DefaultDomainAllocRace),
            attach_under_group_mutex: kernel.contains(Fix::ProbeMutexScope),
            probe_serialised: kernel.contains(Fix::ProbeUseAfterFree),
            claim_owner_puts_group_on_error: kernel.contains(Fix::ClaimDmaOwnerRefcount),
            defer_client_until_bound: kernel.contains(Fix::DeferClientsUntilSmmuBound),
            iova_domain_init_under_cookie_mutex: kernel.contains(Fix::IovaDomainInitRace),
            fq_teardown_waits_for_timer: kernel.contains(Fix::FqTimeoutTeardownRace),
            // 911aa1245da8 landed in v6.7: the presets from v6.12 on have the list.
            v3_kdump_aborts_before_disable: kernel.contains(Fix::V3KdumpAbortTransactions),
            v3_kdump_keeps_smmu: kernel.contains(Fix::V3KdumpKeepSmmu),
            iova_depot: if kernel.preset >= Preset::V6_12 {
                IovaDepot::List
            } else {
                IovaDepot::Array
            },
            domains_freed_with_last_member: kernel.preset >= Preset::V6_12,
            // No preset lies between v6.2 and v6.12, so UnlinkThenDriver (v6.4, v6.5) is
            // reached only through CoreConfig.
            release_steps: if kernel.preset >= Preset::V6_12 {
                ReleaseSteps::Deinit
            } else {
                ReleaseSteps::DriverThenGroup
            },
            // 0046a4337eae is v6.5: every preset before v6.12 attaches at the join.
            join_attaches_to_group_domain: kernel.preset < Preset::V6_12,
        }
    }

    /// The iommu core's configuration: `base` (command line, sizes) with this kernel's
    /// switches applied.
    pub fn core_config(&self, base: CoreConfig) -> CoreConfig {
        CoreConfig {
            unregister_releases_devices: self.unregister_releases_devices,
            linux_faithful: self.unguarded_dma_domain,
            iova_depot: self.iova_depot,
            domains_freed_with_last_member: self.domains_freed_with_last_member,
            release_steps: self.release_steps,
            join_attaches_to_group_domain: self.join_attaches_to_group_domain,
            map_sg_signed_result_check: self.map_sg_signed_result_check,
            iova_anchor_retry_overflows: self.iova_anchor_retry_overflows,
            default_domain_under_group_mutex: self.default_domain_under_group_mutex,
            attach_under_group_mutex: self.attach_under_group_mutex,
            probe_serialised: self.probe_serialised,
            claim_owner_puts_group_on_error: self.claim_owner_puts_group_on_error,
            iova_domain_init_under_cookie_mutex: self.iova_domain_init_under_cookie_mutex,
            fq_teardown_waits_for_timer: self.fq_teardown_waits_for_timer,
            ..base
        }
    }

    /// arm-smmu's page-table factory: `base` (Linux's or smmu-lab's input checks) with this
    /// kernel's partial-unmap behaviour, split-race behaviour and concatenated-PGD bound.
    pub fn lpae_tables(&self, base: arm_smmu::LpaeTables) -> arm_smmu::LpaeTables {
        base.with_partial_unmap(self.partial_unmap)
            .with_split_race(self.split_race)
            .with_pgd_run_bound(self.pgd_run_bound)
    }

    /// arm-smmu's behaviour for `kernel`: the release's switches (the RMR step at probe from
    /// v6.0, the context-fault report of its version) with this kernel's shutdown policy.
    pub fn driver_behaviour(&self, kernel: &KernelSpec) -> Result<DriverBehaviour, NoCodePath> {
        let version = match kernel.preset {
            p if p < Preset::V6_2 => LinuxVersion::V6_1,
            p if p < Preset::V6_12 => LinuxVersion::V6_2,
            _ => LinuxVersion::V6_12,
        };
        let base = version.behaviour();
        Ok(DriverBehaviour {
            // "Get associated RMR info and install bypass SMR" landed in v6.0.
            rmr_bypass_at_probe: kernel.preset >= Preset::V6_0,
            zero_tlbi_writes: self.zero_tlbi_writes,
            group_lookup_under_stream_map_mutex: self.group_lookup_under_stream_map_mutex,
            unlock_on_group_conflict: self.unlock_on_group_conflict,
            defer_client_until_bound: self.defer_client_until_bound,
            ..base.with_shutdown(self.shutdown_policy()?)
        })
    }

    /// arm-smmu's `.shutdown`/`.remove` behaviour.
    pub fn shutdown_policy(&self) -> Result<ShutdownPolicy, NoCodePath> {
        match (self.shutdown_runs_remove, self.smmu_off) {
            (true, SmmuOff::Bypass) => Ok(ShutdownPolicy::Linux61),
            (false, SmmuOff::Bypass) => Ok(ShutdownPolicy::Linux62),
            (false, SmmuOff::BlockStreams) => Ok(ShutdownPolicy::Quiesce),
            (true, SmmuOff::BlockStreams) => Err(NoCodePath::RemoveWithBlockedStreams),
        }
    }

    /// arm-smmu-v3's reset of an SMMU it finds enabled. 3f54c447df34 rewrote b63b3439b856's
    /// code, so it has no path without it.
    pub fn v3_enabled_at_probe(&self) -> Result<arm_smmu_v3::EnabledAtProbe, NoCodePath> {
        use arm_smmu_v3::EnabledAtProbe;
        match (
            self.v3_kdump_aborts_before_disable,
            self.v3_kdump_keeps_smmu,
        ) {
            (false, false) => Ok(EnabledAtProbe::ResetAsFound),
            (true, false) => Ok(EnabledAtProbe::KdumpAbortAndFail),
            (true, true) => Ok(EnabledAtProbe::AbortThenReset),
            (false, true) => Err(NoCodePath::V3KdumpResetWithoutAbort),
        }
    }

    /// arm-smmu-v3's `.shutdown`/`.remove` behaviour (`quiesce` is the same fix on both
    /// drivers: every STE aborts and GBPA.ABORT is set before SMMUEN is cleared).
    pub fn v3_shutdown_policy(&self) -> Result<arm_smmu_v3::ShutdownPolicy, NoCodePath> {
        // The path names the driver: `ShutdownPolicy` alone is arm-smmu's (each driver has its
        // own, as Linux's two drivers do).
        match (self.v3_shutdown_runs_remove, self.smmu_off) {
            (true, SmmuOff::Bypass) => Ok(arm_smmu_v3::ShutdownPolicy::Linux61),
            (false, SmmuOff::Bypass) => Ok(arm_smmu_v3::ShutdownPolicy::Linux62),
            (false, SmmuOff::BlockStreams) => Ok(arm_smmu_v3::ShutdownPolicy::Quiesce),
            (true, SmmuOff::BlockStreams) => Err(NoCodePath::V3RemoveWithBlockedStreams),
        }
    }
}
