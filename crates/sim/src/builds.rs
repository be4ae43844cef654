//! Kernel builds as data: what a build prints in its `CPU:` line (`uname -r`, build number) and
//! the layout fact that shows in an Oops (the offset of `default_domain` in `struct
//! iommu_group`, hence the fault address and the `Code:` line's last word).
//!
//! The seed shows two builds. Its first report names `6.1.0-rc5-00088-gf3600ff8e322 #1930` and
//! faults at 0x98 (`ldr x0, [x0, #0x98]`); its second report was trimmed of its `CPU:` line and
//! faults at 0xa8 (`ldr x0, [x0, #0xa8]`), so it came from a build with another `struct
//! iommu_group` layout (the reporter's kernel carried other patches). The banner of that build
//! is not in the seed; smmu-lab's preset names it as the same release with an unknown build
//! number and says so. The 6.2 preset is the release that carries the seed's fix.

use std::fmt;

/// Which Linux release a build is: it decides which shutdown policies can run on it (a 6.1
/// build has the unregistering shutdown, a 6.2 build the fixed one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Release {
    /// v6.1-rc5 (before the seed's fix).
    V6_1,
    /// v6.2 (with the seed's fix).
    V6_2,
}

/// One kernel build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelBuild {
    /// The preset's name on the command line (`--build`).
    pub name: &'static str,
    /// `uname -r`.
    pub release: &'static str,
    /// The build number as the `CPU:` line prints it (`#1930`).
    pub version: &'static str,
    /// Which Linux release the build is.
    pub linux: Release,
    /// Offset of `default_domain` in `struct iommu_group` in this build.
    pub group_default_domain_offset: u64,
    /// cfg80211's `regulatory.db` request waits in the firmware loader's sysfs fallback
    /// (`CONFIG_FW_LOADER_USER_HELPER_FALLBACK`, no `regulatory.db` on the root filesystem),
    /// so the reboot notifier aborts it and cfg80211 prints `failed to load regulatory.db`
    /// during shutdown. Inferred from the seed: its second block prints that line after kvm's
    /// reboot notifier (see [`crate::firmware`]). Every preset is the same system's kernel.
    pub regdb_fallback_pending: bool,
    /// Where the facts come from.
    pub source: &'static str,
}

/// The seed's first report's build (the map-path Oops at 0x98).
pub const SEED_1930: KernelBuild = KernelBuild {
    name: "6.1-rc5-1930",
    release: "6.1.0-rc5-00088-gf3600ff8e322",
    version: "#1930",
    linux: Release::V6_1,
    group_default_domain_offset: 0x98,
    regdb_fallback_pending: true,
    source: "seed: first report's CPU line and Code: word f9404c00 (ldr x0, [x0, #0x98])",
};

/// The seed's second report's build (the unmap-path Oops at 0xa8). The seed trimmed its `CPU:`
/// line: the release is the first report's, the build number is not known (`#?` is smmu-lab's).
pub const SEED_A8: KernelBuild = KernelBuild {
    name: "6.1-rc5-a8",
    release: "6.1.0-rc5-00088-gf3600ff8e322",
    version: "#?",
    linux: Release::V6_1,
    group_default_domain_offset: 0xa8,
    regdb_fallback_pending: true,
    source: "seed: second report's Code: word f9405400 (ldr x0, [x0, #0xa8]); banner trimmed in \
             the seed, build number unknown",
};

/// A v6.2 build (the seed's fix is in it). `struct iommu_group` kept `default_domain` where the
/// 6.1 release had it; the offset only shows if something dereferences a NULL group, which the
/// 6.2 shutdown does not make happen.
pub const V6_2: KernelBuild = KernelBuild {
    name: "6.2",
    release: "6.2.0",
    version: "#1",
    linux: Release::V6_2,
    group_default_domain_offset: 0x98,
    regdb_fallback_pending: true,
    source: "smmu-lab: v6.2 release banner, build number #1",
};

/// Every preset.
pub const PRESETS: [KernelBuild; 3] = [SEED_1930, SEED_A8, V6_2];

impl KernelBuild {
    /// The preset called `name`.
    pub fn preset(name: &str) -> Result<KernelBuild, UnknownBuild> {
        PRESETS
            .iter()
            .copied()
            .find(|b| b.name == name)
            .ok_or_else(|| UnknownBuild(name.to_string()))
    }

    /// The `A64` word of the faulting load (`ldr x0, [x0, #offset]`).
    pub fn fault_insn(&self) -> u32 {
        iommu::ldr_x0_x0(self.group_default_domain_offset)
    }
}

impl fmt::Display for KernelBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.release, self.version)
    }
}

/// A build name no preset has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kernel build '{0}': choose 6.1-rc5-1930, 6.1-rc5-a8 or 6.2")]
pub struct UnknownBuild(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_carry_the_seeds_code_words() {
        assert_eq!(SEED_1930.fault_insn(), 0xf940_4c00);
        assert_eq!(SEED_A8.fault_insn(), 0xf940_5400);
        assert_eq!(SEED_1930.to_string(), "6.1.0-rc5-00088-gf3600ff8e322 #1930");
        assert_eq!(
            KernelBuild::preset("6.2").map(|b| b.linux),
            Ok(Release::V6_2)
        );
        assert_eq!(
            KernelBuild::preset("6.3").unwrap_err().to_string(),
            "unknown kernel build '6.3': choose 6.1-rc5-1930, 6.1-rc5-a8 or 6.2"
        );
    }
}
