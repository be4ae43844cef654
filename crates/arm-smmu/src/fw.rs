//! What firmware (the device tree) tells the driver about one SMMU, before any register is read.

use smmu_addr::PhysAddr;

/// SMMU architecture version as Linux distinguishes it (order matters: Linux compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// SMMUv1 (MMU-400).
    V1,
    /// MMU-401: SMMUv1 that also supports the AArch64 64K-granule format.
    V1_64K,
    /// SMMUv2 (MMU-500 and generic).
    V2,
}

/// Implementation, selecting Linux's quirk hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// No implementation quirks.
    Generic,
    /// Arm MMU-500: sACR/ACTLR reset hook.
    ArmMmu500,
    /// Cavium ThunderX (quirks not modelled).
    CaviumSmmuV2,
    /// Qualcomm (quirks not modelled).
    QcomSmmuV2,
}

/// Linux's DT match table (reference §5.1): compatible → (version, model).
pub fn match_compatible(compatible: &str) -> Option<(Version, Model)> {
    Some(match compatible {
        "arm,smmu-v1" | "arm,mmu-400" => (Version::V1, Model::Generic),
        "arm,smmu-v2" => (Version::V2, Model::Generic),
        "arm,mmu-401" => (Version::V1_64K, Model::Generic),
        "arm,mmu-500" | "nvidia,smmu-500" => (Version::V2, Model::ArmMmu500),
        "cavium,smmu-v2" => (Version::V2, Model::CaviumSmmuV2),
        "qcom,smmu-v2" => (Version::V2, Model::QcomSmmuV2),
        _ => return None,
    })
}

/// The SMMU node as the simulator's device-tree loader hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareDesc {
    /// The first `compatible` string the driver knows (e.g. `arm,mmu-500`).
    pub compatible: String,
    /// `reg` base and size.
    pub reg_base: PhysAddr,
    /// Size of the `reg` window, checked against ID1's layout.
    pub reg_size: u64,
    /// Device name, e.g. `5000000.iommu`; the log prefix is `arm-smmu <dev_name>`.
    pub dev_name: String,
    /// `#global-interrupts`; `None` when the property is missing.
    pub num_global_irqs: Option<u32>,
    /// Interrupts after the global ones (PMU lines excluded).
    pub num_context_irqs: u32,
    /// `dma-coherent` present: the table walk is coherent whatever ID0.CTTW says.
    pub dma_coherent: bool,
}

impl FirmwareDesc {
    /// The LS1028A node (`/soc/iommu@5000000`): MMU-500, 8 MiB, 8 global + 64 context IRQs.
    pub fn ls1028a() -> Self {
        FirmwareDesc {
            compatible: "arm,mmu-500".into(),
            reg_base: PhysAddr::new(0x500_0000),
            reg_size: 0x80_0000,
            dev_name: "5000000.iommu".into(),
            num_global_irqs: Some(8),
            num_context_irqs: 64,
            dma_coherent: true,
        }
    }

    /// `dev_printk` prefix of this device.
    pub fn log_prefix(&self) -> String {
        format!("arm-smmu {}", self.dev_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatible_table() {
        assert_eq!(
            match_compatible("arm,mmu-500"),
            Some((Version::V2, Model::ArmMmu500))
        );
        assert_eq!(
            match_compatible("arm,mmu-401"),
            Some((Version::V1_64K, Model::Generic))
        );
        assert_eq!(
            match_compatible("arm,mmu-400"),
            Some((Version::V1, Model::Generic))
        );
        assert_eq!(
            match_compatible("nvidia,smmu-500"),
            Some((Version::V2, Model::ArmMmu500))
        );
        assert_eq!(
            match_compatible("qcom,smmu-v2"),
            Some((Version::V2, Model::QcomSmmuV2))
        );
        assert_eq!(match_compatible("arm,smmu-v3"), None);
        assert!(Version::V1 < Version::V1_64K && Version::V1_64K < Version::V2);
        assert_eq!(
            FirmwareDesc::ls1028a().log_prefix(),
            "arm-smmu 5000000.iommu"
        );
    }
}
