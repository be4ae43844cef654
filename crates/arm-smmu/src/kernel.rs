//! Which Linux the driver behaves like: the kernel versions the driver models, and the named
//! behaviour switches each version implies.
//!
//! Every place where the modelled versions differ reads one named switch of
//! [`DriverBehaviour`], never the version itself, so a kernel can be assembled from individual
//! fixes (a distribution kernel with a backport, say) by setting the switches one by one.
//!
//! | Switch | 6.1 | 6.2 | 6.12 | Where it changed |
//! |---|---|---|---|---|
//! | [`shutdown`](DriverBehaviour::shutdown) | `Linux61` | `Linux62` | `Linux62` | ce31e6ca68bd, v6.2-rc4 (the seed's fix; in 6.1.y as a1b9c7b1978a) |
//! | [`rmr_bypass_at_probe`](DriverBehaviour::rmr_bypass_at_probe) | yes | yes | yes | "iommu/arm-smmu: Get associated RMR info and install bypass SMR" (Jon Nettleton, IORT RMR series v13, June 2022), merged for v6.0 |
//! | [`context_fault_report`](DriverBehaviour::context_fault_report) | `OneLine` | `OneLine` | `Decoded` | d525b0af0c3b "iommu/arm-smmu: Pretty-print context fault related regs" (v6.11); its first line was a `dev_dbg` until 98db56e49008 "Un-demote unhandled-fault msg" (v6.12, backported to 6.11.y) |
//! | [`zero_tlbi_writes`](DriverBehaviour::zero_tlbi_writes) | no | no | no | 4e4abae311e4 "iommu/arm-smmu: Avoid constant zero in TLBI writes" (v5.2) |
//! | [`group_lookup_under_stream_map_mutex`](DriverBehaviour::group_lookup_under_stream_map_mutex) | yes | yes | yes | b1a1347912a7 "iommu/arm-smmu: Fix race condition during iommu_group creation" (v5.15) |
//! | [`defer_client_until_bound`](DriverBehaviour::defer_client_until_bound) | no | no | no | 229e6ee43d2a "iommu/arm-smmu: Defer probe of clients after smmu device bound" (v6.13) |
//! | [`unlock_on_group_conflict`](DriverBehaviour::unlock_on_group_conflict) | yes | yes | yes | 53f613134984 "iommu/arm-smmu: Fix missing unlock on error in arm_smmu_device_group()" (v5.15) |
//!
//! Evidence for the RMR row on 6.1: an LS1028A boot log of a v6.1-rc kernel ends its probe
//! lines with `preserved 0 boot mappings` (Vladimir Oltean, LKML, 8 Dec 2022).

use crate::shutdown::ShutdownPolicy;
use std::fmt;

/// A Linux version whose arm-smmu driver this driver reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinuxVersion {
    /// v6.1 (before the seed's fix).
    V6_1,
    /// v6.2 (the seed's fix).
    V6_2,
    /// v6.12.
    V6_12,
}

impl LinuxVersion {
    /// Every modelled version, oldest first.
    pub const ALL: [LinuxVersion; 3] =
        [LinuxVersion::V6_1, LinuxVersion::V6_2, LinuxVersion::V6_12];

    /// `6.1`, `6.2`, `6.12`.
    pub fn name(self) -> &'static str {
        match self {
            LinuxVersion::V6_1 => "6.1",
            LinuxVersion::V6_2 => "6.2",
            LinuxVersion::V6_12 => "6.12",
        }
    }

    /// The driver behaviour of this version (see the module table).
    pub fn behaviour(self) -> DriverBehaviour {
        DriverBehaviour {
            shutdown: match self {
                LinuxVersion::V6_1 => ShutdownPolicy::Linux61,
                LinuxVersion::V6_2 | LinuxVersion::V6_12 => ShutdownPolicy::Linux62,
            },
            // v6.0 and later: every modelled version.
            rmr_bypass_at_probe: true,
            context_fault_report: match self {
                LinuxVersion::V6_1 | LinuxVersion::V6_2 => ContextFaultReport::OneLine,
                LinuxVersion::V6_12 => ContextFaultReport::Decoded,
            },
            // 4e4abae311e4 (v5.2): every modelled version writes the dummy value.
            zero_tlbi_writes: false,
            // b1a1347912a7 and 53f613134984 (v5.15): in every modelled version.
            group_lookup_under_stream_map_mutex: true,
            unlock_on_group_conflict: true,
            // 229e6ee43d2a landed in v6.13, after every modelled version.
            defer_client_until_bound: false,
        }
    }
}

impl fmt::Display for LinuxVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the context fault handler reads the fault registers and reports an unhandled fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextFaultReport {
    /// Up to v6.10: read FSR and return "not handled" unless a fault bit is set; then FSYNR0,
    /// FAR and CBFRSYNRA; print one rate-limited `Unhandled context fault: …` line.
    OneLine,
    /// v6.12 (`arm_smmu_read_context_fault_info` / `arm_smmu_print_context_fault_info`): read
    /// FAR, FSR, FSYNR0 and CBFRSYNRA, in that order, before looking at FSR; print the
    /// `Unhandled context fault` line, the decoded `FSR    = …` line and the decoded
    /// `FSYNR0 = …` line under one rate-limit check.
    Decoded,
}

/// The driver's version-dependent behaviour, one named switch per difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DriverBehaviour {
    /// `.shutdown` / `.remove`.
    pub shutdown: ShutdownPolicy,
    /// Probe runs the RMR boot-mapping step before the reset: read sCR0, write it back with
    /// CLIENTPD set (translation off, every client bypasses until the reset's final sCR0 write),
    /// install bypass SMRs for the firmware's RMRs and print `\tpreserved %d boot mapping%s`.
    pub rmr_bypass_at_probe: bool,
    /// The context fault handler's register reads and report.
    pub context_fault_report: ContextFaultReport,
    /// The global TLB invalidations of the reset (TLBIALLH, TLBIALLNSNH) and the sync registers
    /// (sTLBGSYNC, TLBSYNC) are written with the constant 0, as before 4e4abae311e4 "Avoid
    /// constant zero in TLBI writes"; `false` writes the all-ones dummy value instead.
    pub zero_tlbi_writes: bool,
    /// `device_group` looks up the group recorded in the master's S2CRs and records a new one
    /// under `stream_map_mutex` (since b1a1347912a7). `false`: the lookup and the record are
    /// two steps with nothing held between them, so two masters sharing a stream ID that probe
    /// at once can each find no group and each record its own.
    pub group_lookup_under_stream_map_mutex: bool,
    /// The "stream IDs already in two groups" error return of `device_group` releases
    /// `stream_map_mutex` (since 53f613134984). `false`: it returns holding it, and every later
    /// taker of the mutex on this SMMU waits forever. Only matters when
    /// `group_lookup_under_stream_map_mutex` takes the mutex.
    pub unlock_on_group_conflict: bool,
    /// A client probing while the SMMU is registered but its device not yet bound gets
    /// -EPROBE_DEFER (since 229e6ee43d2a). `false`: `arm_smmu_probe_device` dereferences the
    /// NULL `smmu` that `arm_smmu_get_by_fwnode` returned.
    pub defer_client_until_bound: bool,
}

impl DriverBehaviour {
    /// The value written to the "don't care" TLB maintenance registers.
    pub(crate) fn tlbi_value(&self) -> u32 {
        if self.zero_tlbi_writes {
            0
        } else {
            smmu_arch::regs::DUMMY_VAL
        }
    }
}

impl DriverBehaviour {
    /// The same behaviour with another shutdown policy (for example smmu-lab's `Quiesce` on an
    /// otherwise current kernel).
    pub fn with_shutdown(self, shutdown: ShutdownPolicy) -> Self {
        DriverBehaviour { shutdown, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_to_their_switches() {
        let b = LinuxVersion::V6_1.behaviour();
        assert_eq!(b.shutdown, ShutdownPolicy::Linux61);
        assert!(b.rmr_bypass_at_probe);
        assert_eq!(b.context_fault_report, ContextFaultReport::OneLine);
        let b = LinuxVersion::V6_2.behaviour();
        assert_eq!(b.shutdown, ShutdownPolicy::Linux62);
        assert_eq!(b.context_fault_report, ContextFaultReport::OneLine);
        let b = LinuxVersion::V6_12.behaviour();
        assert_eq!(b.shutdown, ShutdownPolicy::Linux62);
        assert!(b.rmr_bypass_at_probe);
        assert_eq!(b.context_fault_report, ContextFaultReport::Decoded);
        let q = b.with_shutdown(ShutdownPolicy::Quiesce);
        assert_eq!(
            (q.shutdown, q.context_fault_report),
            (ShutdownPolicy::Quiesce, ContextFaultReport::Decoded)
        );
        assert_eq!(
            LinuxVersion::ALL.map(LinuxVersion::name),
            ["6.1", "6.2", "6.12"]
        );
    }
}
