//! What defines a run: the kernel behaviour, the trigger, the board and the command line.

use crate::builds::{self, KernelBuild, Release};
use crate::enetc::EnetcConfig;
use crate::Board;
use arm_smmu::{DriverBehaviour, LinuxVersion, ModuleParams, ShutdownPolicy};
use std::fmt;
use thiserror::Error;

/// Which kernel's shutdown behaviour the simulated machine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelBehaviour {
    /// v6.1 before the seed's fix: shutdown unregisters the IOMMU (Linux-faithful core).
    Linux61,
    /// v6.2, the seed's fix: shutdown only sets CLIENTPD (Linux-faithful core).
    Linux62,
    /// Ours: the safe core and a shutdown that blocks every stream instead of bypassing.
    Quiesce,
}

impl KernelBehaviour {
    /// Every behaviour, in the order reports show them.
    pub const ALL: [KernelBehaviour; 3] = [
        KernelBehaviour::Linux61,
        KernelBehaviour::Linux62,
        KernelBehaviour::Quiesce,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KernelBehaviour::Linux61 => "linux-6.1",
            KernelBehaviour::Linux62 => "linux-6.2",
            KernelBehaviour::Quiesce => "quiesce",
        }
    }

    /// Parse a command-line name.
    pub fn from_name(s: &str) -> Option<KernelBehaviour> {
        KernelBehaviour::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The arm-smmu shutdown policy this kernel uses.
    pub fn policy(self) -> ShutdownPolicy {
        self.driver_behaviour().shutdown
    }

    /// The Linux version whose arm-smmu driver this kernel runs (`quiesce`: the newest modelled
    /// one, with smmu-lab's shutdown).
    pub fn linux_version(self) -> LinuxVersion {
        match self {
            KernelBehaviour::Linux61 => LinuxVersion::V6_1,
            KernelBehaviour::Linux62 => LinuxVersion::V6_2,
            KernelBehaviour::Quiesce => LinuxVersion::V6_12,
        }
    }

    /// The build a run of this policy uses unless asked otherwise: the seed's `#1930` for
    /// linux-6.1, the 6.2 build for linux-6.2 and quiesce.
    pub fn default_build(self) -> KernelBuild {
        match self {
            KernelBehaviour::Linux61 => builds::SEED_1930,
            KernelBehaviour::Linux62 | KernelBehaviour::Quiesce => builds::V6_2,
        }
    }

    /// The Linux release whose builds can run this policy.
    pub fn release(self) -> Release {
        match self {
            KernelBehaviour::Linux61 => Release::V6_1,
            KernelBehaviour::Linux62 | KernelBehaviour::Quiesce => Release::V6_2,
        }
    }

    /// The arm-smmu driver's behaviour switches under this kernel.
    pub fn driver_behaviour(self) -> DriverBehaviour {
        let b = self.linux_version().behaviour();
        match self {
            KernelBehaviour::Quiesce => b.with_shutdown(ShutdownPolicy::Quiesce),
            _ => b,
        }
    }
}

impl fmt::Display for KernelBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which DMA core (IOMMU core + DMA API) the machine runs, independently of the shutdown policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DmaCore {
    /// Linux's: the group pointer is read with nothing excluding a concurrent release; a NULL
    /// group is the seed's Oops, a freed domain a use-after-free.
    Linux,
    /// smmu-lab's safe core: DMA-API calls exclude a release and get typed errors after it.
    Safe,
}

impl DmaCore {
    /// Both cores.
    pub const ALL: [DmaCore; 2] = [DmaCore::Linux, DmaCore::Safe];

    /// The name on the command line (`--dma-core`).
    pub fn name(self) -> &'static str {
        match self {
            DmaCore::Linux => "linux",
            DmaCore::Safe => "safe",
        }
    }

    /// Parse a command-line name.
    pub fn from_name(s: &str) -> Option<DmaCore> {
        DmaCore::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// A configuration whose parts do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The build is of another release than the policy's.
    #[error(
        "kernel build '{build}' is a {build_release} build; the {policy} shutdown policy runs on {policy_release} builds ({choices})"
    )]
    BuildPolicy {
        /// The build's name.
        build: &'static str,
        /// Its release.
        build_release: &'static str,
        /// The policy.
        policy: &'static str,
        /// The release the policy needs.
        policy_release: &'static str,
        /// Builds that would do.
        choices: String,
    },
    /// A NIC parameter is impossible.
    #[error("{0}")]
    Nic(#[from] crate::enetc::NicConfigError),
}

fn release_name(r: Release) -> &'static str {
    match r {
        Release::V6_1 => "v6.1",
        Release::V6_2 => "v6.2",
    }
}

/// What CPU 1 does while the network runs on CPU 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `reboot -f`: `kernel_restart()`.
    Reboot,
    /// `kexec -e`: `kernel_kexec()` (PCI bus mastering is cleared).
    Kexec,
    /// `echo 5000000.iommu > /sys/bus/platform/drivers/arm-smmu/unbind`: the SMMU's `.remove`.
    UnbindSmmu,
    /// `echo c > /proc/sysrq-trigger` with a crash kernel loaded: `panic()` → `__crash_kexec()`.
    /// No reboot notifiers, no `.shutdown` callbacks, no PCI bus-master clearing: the SMMU
    /// and every master stay live with the crashed kernel's state while the capture kernel
    /// boots and probes.
    CrashKexec,
}

/// Everything that defines one run (together with the schedule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebootConfig {
    /// Whose shutdown behaviour.
    pub kernel: KernelBehaviour,
    /// The kernel build: banner and `struct iommu_group` layout.
    pub build: KernelBuild,
    /// The DMA core, a separate axis from the shutdown policy.
    pub dma_core: DmaCore,
    /// What CPU 1 does.
    pub trigger: Trigger,
    /// The board (built in or from a device tree).
    pub board: Board,
    /// Kernel command line (`arm-smmu.disable_bypass=`, `iommu.strict=`, `iommu.passthrough=`).
    pub cmdline: KernelParams,
    /// dmesg timestamps.
    pub timestamps: bool,
    /// The flooded NIC.
    pub nic: EnetcConfig,
    /// Upper bound of loop iterations of each actor: every CPU, the NIC engine, each DMA engine,
    /// and the trigger's wait for traffic.
    pub max_actor_steps: u32,
    /// Serial console speed (the KBox's `console=ttyS0,115200`): every printk line after
    /// `reboot -f` costs its time on the wire.
    pub console_baud: u64,
    /// Masters (device names, `3200000.sata`) whose generic DMA engine runs traffic during the
    /// run, one actor each; empty: they stay idle.
    pub traffic: Vec<String>,
    /// Keep an MMIO log of the run ([`crate::mmio_log`]); it does not change the run.
    pub mmio_log: bool,
    /// SMMUv3 only: the implementation's GBPA resets with ABORT set (QEMU's does not: what
    /// arrives while SMMUEN = 0 bypasses).
    pub gbpa_abort: bool,
    /// SMMUv3 only: what the kernel's arm-smmu-v3 reset does with an SMMU it finds enabled
    /// (b63b3439b856 and 3f54c447df34 changed it for kdump kernels). Every built-in kernel
    /// has both; scenario files set it from their kernel's fixes.
    pub v3_enabled_at_probe: arm_smmu_v3::EnabledAtProbe,
}

impl RebootConfig {
    /// The seed's run on `board`.
    pub fn new(kernel: KernelBehaviour, board: Board) -> Self {
        RebootConfig {
            kernel,
            build: kernel.default_build(),
            dma_core: DmaCore::Linux,
            trigger: Trigger::Reboot,
            board,
            cmdline: KernelParams::default(),
            timestamps: true,
            nic: EnetcConfig::default(),
            max_actor_steps: 100_000,
            console_baud: 115_200,
            traffic: Vec::new(),
            mmio_log: false,
            gbpa_abort: false,
            v3_enabled_at_probe: arm_smmu_v3::EnabledAtProbe::default(),
        }
    }
}

impl RebootConfig {
    /// Check that the parts fit: the build runs the policy, the NIC's rings and flood rate are
    /// possible.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.build.linux != self.kernel.release() {
            let choices: Vec<&str> = builds::PRESETS
                .iter()
                .filter(|b| b.linux == self.kernel.release())
                .map(|b| b.name)
                .collect();
            return Err(ConfigError::BuildPolicy {
                build: self.build.name,
                build_release: release_name(self.build.linux),
                policy: self.kernel.name(),
                policy_release: release_name(self.kernel.release()),
                choices: choices.join(", "),
            });
        }
        self.nic.check()?;
        Ok(())
    }
}

/// Kernel parameters the simulated machine understands, parsed as Linux does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelParams {
    /// The command line as given.
    pub text: String,
    /// `arm-smmu.*` module parameters.
    pub smmu: ModuleParams,
    /// `iommu.strict` (default 1 on arm64).
    pub strict: bool,
    /// `iommu.passthrough` (default 0).
    pub passthrough: bool,
}

impl Default for KernelParams {
    fn default() -> Self {
        KernelParams {
            text: String::new(),
            smmu: ModuleParams::default(),
            strict: true,
            passthrough: false,
        }
    }
}

/// A kernel command line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamsError {
    #[error("{0}")]
    /// An `arm-smmu.*` parameter with a bad value.
    Smmu(#[from] arm_smmu::ParamError),
    #[error("kernel parameter '{param}': {why}")]
    /// Any other unusable parameter.
    Bad {
        /// The parameter's name.
        param: String,
        /// What is wrong with it.
        why: String,
    },
}

impl KernelParams {
    /// Parse `text` as Linux parses its command line (`next_arg` splitting and quoting, the one
    /// splitter in [`arm_smmu::params::kernel_args`]): `arm-smmu.*` module parameters, and the
    /// early parameters `iommu.strict` and `iommu.passthrough` (`kstrtobool`, so a bare name is
    /// `-EINVAL`). Parameters of other subsystems, which smmu-lab does not model, are an error,
    /// so a typo never silently does nothing.
    pub fn parse(text: &str) -> Result<KernelParams, ParamsError> {
        let smmu = ModuleParams::from_cmdline(text)?;
        let mut p = KernelParams {
            text: text.to_string(),
            smmu,
            ..KernelParams::default()
        };
        for (name, value) in arm_smmu::params::kernel_args(text)? {
            let is = |known: &str| arm_smmu::params::names_equal(&name, known);
            if is("iommu.strict") {
                p.strict = linux_bool("iommu.strict", value.as_deref())?;
            } else if is("iommu.passthrough") {
                p.passthrough = linux_bool("iommu.passthrough", value.as_deref())?;
            } else if name
                .split_once('.')
                .is_some_and(|(m, _)| arm_smmu::params::names_equal(m, "arm-smmu"))
            {
                // Checked by ModuleParams::from_cmdline above.
            } else {
                return Err(ParamsError::Bad {
                    param: name,
                    why: "not a parameter smmu-lab models (known: arm-smmu.disable_bypass, \
                          arm-smmu.force_stage, iommu.strict, iommu.passthrough)"
                        .into(),
                });
            }
        }
        Ok(p)
    }
}

/// `kstrtobool`, as the iommu.strict / iommu.passthrough early parameters call it: with no
/// `=value` the handler gets NULL, which kstrtobool rejects.
fn linux_bool(param: &'static str, value: Option<&str>) -> Result<bool, ParamsError> {
    arm_smmu::params::kstrtobool(value).ok_or_else(|| ParamsError::Bad {
        param: param.to_string(),
        why: match value {
            None => "missing value (expected =y/n/1/0/on/off; kstrtobool(NULL) is -EINVAL)".into(),
            Some(v) => format!("invalid value \"{v}\" (expected y/n/1/0/on/off)"),
        },
    })
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 4] = [
        Trigger::Reboot,
        Trigger::Kexec,
        Trigger::UnbindSmmu,
        Trigger::CrashKexec,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Reboot => "reboot",
            Trigger::Kexec => "kexec",
            Trigger::UnbindSmmu => "unbind",
            Trigger::CrashKexec => "crash-kexec",
        }
    }

    /// Parse a command-line name.
    pub fn from_name(s: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.name() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parser, Linux's rules, for every parameter (they were parsed three ways: a typo in an
    /// arm-smmu.* name was ignored, quotes worked for arm-smmu.* only, a bare iommu.strict was
    /// taken as true).
    #[test]
    fn the_command_line_is_parsed_one_way() {
        let p = KernelParams::parse(r#"iommu.strict="0" arm-smmu.disable_bypass="0""#).unwrap();
        assert!(!p.strict && !p.smmu.disable_bypass);
        let p = KernelParams::parse("iommu.passthrough=on iommu.strict=1 -- foo=1").unwrap();
        assert!(p.passthrough && p.strict);
        for (line, msg) in [
            (
                "arm-smmu.disable_bypas=0",
                "arm-smmu.disable_bypas: unknown parameter (known: arm-smmu.disable_bypass, arm-smmu.force_stage)",
            ),
            (
                "arm-smmu.bogus_param=1x",
                "arm-smmu.bogus_param: unknown parameter (known: arm-smmu.disable_bypass, arm-smmu.force_stage)",
            ),
            (
                "iommu.strict",
                "kernel parameter 'iommu.strict': missing value (expected =y/n/1/0/on/off; kstrtobool(NULL) is -EINVAL)",
            ),
            (
                "iommu.passthrough=maybe",
                "kernel parameter 'iommu.passthrough': invalid value \"maybe\" (expected y/n/1/0/on/off)",
            ),
            ("foo=1", "kernel parameter 'foo': not a parameter smmu-lab models"),
            // parameq treats '-' and '_' alike, never '.' and '-'.
            ("iommu-passthrough=1", "kernel parameter 'iommu-passthrough': not a parameter"),
        ] {
            let e = KernelParams::parse(line).unwrap_err().to_string();
            assert!(e.starts_with(msg), "{line}: {e}");
        }
    }
}
