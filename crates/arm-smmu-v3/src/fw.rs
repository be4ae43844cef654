//! What firmware says about one SMMUv3, which kernel the driver behaves like, and its module
//! parameters.

use smmu_addr::PhysAddr;
use thiserror::Error;

/// The Linux release whose arm-smmu-v3 driver is reproduced. The two differ in how an STE or CD
/// is rewritten (v6.1 writes dwords 1.. then dword 0 with a CFGI+SYNC around it; v6.12 computes
/// the bits in use and makes a hitless or breaking update, syncing after every changed step),
/// where the CD table lives (per domain vs per master), and whether IIDR is read at probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelVersion {
    V6_1,
    V6_12,
}

/// The driver's `.shutdown` (and `.remove`).
///
/// | Policy | shutdown | effect on DMA still in flight |
/// |---|---|---|
/// | `Linux61` | = remove: `iommu_device_unregister` (the core releases every master: STEs to abort), then CR0 := 0 | masters released under their drivers' feet (the NULL group oops); then GBPA decides: bypass = stray DMA |
/// | `Linux62` | 32ea2c57dc21: CR0 := 0 only | no oops; GBPA decides: bypass (QEMU's reset value) = stray DMA, abort = aborted DMA |
/// | `Quiesce` | ours: every STE abort, CFGI_ALL, GBPA.ABORT, then CR0 := 0 | no oops, nothing stray: every transaction aborts |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShutdownPolicy {
    Linux61,
    Linux62,
    Quiesce,
}

/// What `arm_smmu_device_reset` does when it finds the SMMU already enabled (CR0.SMMUEN = 1:
/// the previous kernel did not turn it off, as after a crash kexec, or its shutdown left it on).
/// Three releases of the same code path, each a Linux commit (facts from the commits' messages
/// and diffs on the stable list; see docs/linux-iommu-bugs.md):
///
/// | Variant | found enabled, any kernel | found enabled, kdump kernel |
/// |---|---|---|
/// | `ResetAsFound` (v4.2 .. b63b3439b856) | warn, CR0 := 0, full reset; GBPA untouched | the same: DMA still in flight meets GBPA (bypass on QEMU) during the reset |
/// | `KdumpAbortAndFail` (b63b3439b856, v4.16) | as `ResetAsFound` | GBPA.ABORT, CR0 := 0, probe fails with -EBUSY: the SMMU stays off and aborts everything |
/// | `AbortThenReset` (3f54c447df34, v5.2, and every later release) | warn, GBPA.ABORT, CR0 := 0, full reset | the same, and the event (and PRI) queue is left disabled by the final CR0 write, so faults of masters the capture kernel has no driver for are not reported |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EnabledAtProbe {
    ResetAsFound,
    KdumpAbortAndFail,
    #[default]
    AbortThenReset,
}

/// The booting kernel as the driver's probe sees it, beyond its module parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BootContext {
    /// `is_kdump_kernel()`: this kernel was started by crash kexec (`elfcorehdr=` on its command
    /// line) while the crashed kernel's masters may still be doing DMA.
    pub kdump: bool,
    /// What the probe does with an SMMU it finds enabled.
    pub enabled_at_probe: EnabledAtProbe,
}

/// `arm_smmu_v3` module parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleParams {
    /// `disable_bypass` (default true): unattached streams abort rather than bypass.
    pub disable_bypass: bool,
    /// `disable_msipolling` (default false): complete CMD_SYNC by polling CONS even with MSIs.
    pub disable_msipolling: bool,
}

impl Default for ModuleParams {
    fn default() -> Self {
        ModuleParams {
            disable_bypass: true,
            disable_msipolling: false,
        }
    }
}

/// A bad `arm_smmu_v3.*` kernel parameter.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamError {
    #[error("unknown parameter '{0}' for arm_smmu_v3")]
    Unknown(String),
    #[error("invalid value '{value}' for arm_smmu_v3.{name}: expected a boolean")]
    Bool { name: String, value: String },
}

impl ModuleParams {
    /// Parse the `arm_smmu_v3.*` words of a kernel command line (other words are ignored).
    pub fn from_cmdline(cmdline: &str) -> Result<Self, ParamError> {
        let mut p = ModuleParams::default();
        for word in cmdline.split_whitespace() {
            let Some(rest) = word.strip_prefix("arm_smmu_v3.") else {
                continue;
            };
            let (name, value) = rest.split_once('=').unwrap_or((rest, "1"));
            let b = match value {
                "1" | "y" | "Y" | "true" | "on" => true,
                "0" | "n" | "N" | "false" | "off" => false,
                _ => {
                    return Err(ParamError::Bool {
                        name: name.into(),
                        value: value.into(),
                    })
                }
            };
            match name {
                "disable_bypass" => p.disable_bypass = b,
                "disable_msipolling" => p.disable_msipolling = b,
                _ => return Err(ParamError::Unknown(name.into())),
            }
        }
        Ok(p)
    }
}

/// The SMMU node as the device-tree loader hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareDesc {
    /// Must be `arm,smmu-v3`.
    pub compatible: String,
    pub reg_base: PhysAddr,
    pub reg_size: u64,
    /// Device name, e.g. `9050000.smmuv3`; the log prefix is `arm-smmu-v3 <dev_name>`.
    pub dev_name: String,
    /// `#iommu-cells` (must be 1).
    pub iommu_cells: Option<u32>,
    /// `interrupt-names` present: `combined`, or any of `eventq`, `priq`, `gerror`.
    pub irq_names: Vec<String>,
    /// `dma-coherent`.
    pub dma_coherent: bool,
    /// `msi-parent` present (an MSI domain the SMMU's own interrupts can use).
    pub msi_parent: bool,
}

impl FirmwareDesc {
    /// QEMU virt's node (`/smmuv3@9050000`): 128 KiB, wired eventq/priq/cmdq-sync/gerror, coherent,
    /// no msi-parent.
    pub fn qemu_virt() -> Self {
        FirmwareDesc {
            compatible: "arm,smmu-v3".into(),
            reg_base: PhysAddr::new(0x905_0000),
            reg_size: 0x2_0000,
            dev_name: "9050000.smmuv3".into(),
            iommu_cells: Some(1),
            irq_names: ["eventq", "priq", "cmdq-sync", "gerror"]
                .map(String::from)
                .to_vec(),
            dma_coherent: true,
            msi_parent: false,
        }
    }

    /// `dev_printk` prefix.
    pub fn log_prefix(&self) -> String {
        format!("arm-smmu-v3 {}", self.dev_name)
    }

    pub(crate) fn has_irq(&self, name: &str) -> bool {
        self.irq_names.iter().any(|n| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline() {
        assert_eq!(
            ModuleParams::from_cmdline("quiet").unwrap(),
            ModuleParams::default()
        );
        let p = ModuleParams::from_cmdline(
            "arm_smmu_v3.disable_bypass=0 arm_smmu_v3.disable_msipolling",
        )
        .unwrap();
        assert!(!p.disable_bypass && p.disable_msipolling);
        assert!(matches!(
            ModuleParams::from_cmdline("arm_smmu_v3.x=1"),
            Err(ParamError::Unknown(_))
        ));
        assert!(matches!(
            ModuleParams::from_cmdline("arm_smmu_v3.disable_bypass=maybe"),
            Err(ParamError::Bool { .. })
        ));
        assert_eq!(
            FirmwareDesc::qemu_virt().log_prefix(),
            "arm-smmu-v3 9050000.smmuv3"
        );
    }
}
