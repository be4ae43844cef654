//! Which Linux driver binds a device, as the seed kernel (6.1.0-rc5 on the KBox) had them.
//!
//! The driver name is what `dev_printk` prints before the device name. Whether a driver has a
//! `.shutdown` method decides what `device_shutdown()` does to the device: only `fsl_enetc`
//! (no `.shutdown`) and `arm-smmu` (has one) are facts from the reference; the other entries
//! are marked [`Fact::Unverified`].
//!
//! Checked in public sources ([`Fact::Source`]): `sdhci-esdhc`, `dwc3`, `ahci-qoriq`,
//! `etnaviv-gpu` and `fsl_enetc_mdio` have no `.shutdown`; `mscc_felix` (DSA shutdown, 5.15) and
//! `pcieport` have one. `caam_jr` gained one only by a later patch (taken as absent in 6.1).
//!
//! `probe_rank` is the order in which the seed kernel's drivers first probed devices (and so
//! created IOMMU groups); it is read off the seed's group numbers (reference §5) and is a
//! property of the kernel build (initcall/link order, deferrals), not of a board.

use serde::{Deserialize, Serialize};

/// Where a table value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fact {
    /// Stated in the reference files (`../shared/reference/`, beside the repo).
    Reference,
    /// Checked in public Linux sources (mainline copies, which may postdate 6.1).
    Source,
    /// From memory of the Linux sources; not checked against them.
    Unverified,
}

/// A driver the simulated kernel knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverInfo {
    /// Linux driver name (`dev_printk` prefix).
    pub name: &'static str,
    /// Whether the driver has a `.shutdown` method.
    pub has_shutdown: bool,
    /// Source of `has_shutdown`.
    pub shutdown_fact: Fact,
    /// Whether probing succeeds on the seed machine (`mali-dp` tried and stayed unbound).
    pub binds: bool,
    /// Whether the driver probes at all (false: not built into the seed kernel).
    pub probes: bool,
    /// Order of first probe on the seed kernel (lower first).
    pub probe_rank: u32,
}

const fn drv(name: &'static str, has_shutdown: bool, fact: Fact, rank: u32) -> DriverInfo {
    DriverInfo {
        name,
        has_shutdown,
        shutdown_fact: fact,
        binds: true,
        probes: true,
        probe_rank: rank,
    }
}

use Fact::{Reference as R, Source as S, Unverified as U};

/// The arm-smmu platform driver.
pub const ARM_SMMU: DriverInfo = drv("arm-smmu", true, R, 0);
/// PCIe port services driver, bound to root ports.
pub const PCIEPORT: DriverInfo = drv("pcieport", true, S, 10);
/// The virtual DRM device the etnaviv driver registers itself.
pub const ETNAVIV_VIRTUAL: DriverInfo = drv("etnaviv", false, U, 1);
/// Rank given to drivers that are not in the table.
pub const UNKNOWN_RANK: u32 = 100;

/// Compatible string → driver. First match in a node's compatible list wins.
const TABLE: &[(&str, DriverInfo)] = &[
    (
        "arm,mali-dp500",
        DriverInfo {
            binds: false,
            ..drv("mali-dp", true, U, 0)
        },
    ),
    (
        "arm,mali-dp550",
        DriverInfo {
            binds: false,
            ..drv("mali-dp", true, U, 0)
        },
    ),
    (
        "arm,mali-dp650",
        DriverInfo {
            binds: false,
            ..drv("mali-dp", true, U, 0)
        },
    ),
    ("vivante,gc", drv("etnaviv-gpu", false, S, 1)),
    ("fsl,ls1028a-ahci", drv("ahci-qoriq", false, S, 2)),
    ("fsl,ls1021a-ahci", drv("ahci-qoriq", false, S, 2)),
    ("pci1957,eef0", drv("mscc_felix", true, S, 3)),
    ("pci1957,e100", drv("fsl_enetc", false, R, 4)),
    ("fsl,enetc", drv("fsl_enetc", false, R, 4)),
    ("pci1957,ee01", drv("fsl_enetc_mdio", false, S, 5)),
    ("fsl,enetc-mdio", drv("fsl_enetc_mdio", false, S, 5)),
    (
        "pci1957,ee02",
        DriverInfo {
            probes: false,
            binds: false,
            ..drv("fsl_enetc_ptp", false, U, UNKNOWN_RANK)
        },
    ),
    (
        "fsl,enetc-ptp",
        DriverInfo {
            probes: false,
            binds: false,
            ..drv("fsl_enetc_ptp", false, U, UNKNOWN_RANK)
        },
    ),
    ("snps,dwc3", drv("dwc3", false, S, 6)),
    ("fsl,ls1028a-dwc3", drv("dwc3", false, S, 6)),
    ("fsl,esdhc", drv("sdhci-esdhc", false, S, 7)),
    ("fsl,ls1028a-esdhc", drv("sdhci-esdhc", false, S, 7)),
    ("fsl,sec-v4.0-job-ring", drv("caam_jr", false, U, 8)),
    ("fsl,vf610-edma", drv("fsl-edma", false, U, 9)),
    ("fsl,ls1028a-edma", drv("fsl-edma", false, U, 9)),
    ("fsl,ls1021a-qdma", drv("fsl-qdma", false, U, 11)),
    // Juno's masters, so every one of them can carry generic traffic (`--traffic`).
    ("arm,pl330", drv("dma-pl330", false, U, 12)),
    ("arm,hdlcd", drv("hdlcd", false, U, 13)),
    ("generic-ohci", drv("ohci-platform", true, U, 14)),
    ("generic-ehci", drv("ehci-platform", true, U, 14)),
    ("arm,coresight-tmc", drv("coresight-tmc", true, U, 15)),
];

/// PCI functions whose DT node has no compatible (the Felix switch is matched by PCI ID
/// 1957:eef0): node base name → driver.
const PCI_NODE_NAMES: &[(&str, &str)] = &[("ethernet-switch", "pci1957,eef0")];

/// The driver for a node's compatible list; `None` when no known driver matches.
pub fn for_compatible(compatible: &[String]) -> Option<DriverInfo> {
    compatible
        .iter()
        .find_map(|c| TABLE.iter().find(|(k, _)| k == c).map(|(_, d)| *d))
}

/// Driver for a PCI function node without a usable compatible, by node base name.
pub fn for_pci_node_name(base_name: &str) -> Option<DriverInfo> {
    PCI_NODE_NAMES
        .iter()
        .find(|(n, _)| *n == base_name)
        .and_then(|(_, c)| for_compatible(&[c.to_string()]))
}

/// Whether a driver of this compatible creates an extra virtual platform device that shares
/// the node's DMA configuration (etnaviv's `etnaviv` device), and its name.
pub fn virtual_companion(compatible: &[String]) -> Option<&'static str> {
    compatible
        .iter()
        .any(|c| c == "vivante,gc")
        .then_some("etnaviv")
}
