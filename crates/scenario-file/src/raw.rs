//! The file as TOML gives it: every value carries its span so validation can point at it.
//! Unknown keys are refused here (`deny_unknown_fields`).

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub scenario: Option<RawMeta>,
    pub board: Spanned<RawBoard>,
    pub kernel: Spanned<RawKernel>,
    #[serde(default)]
    pub driver: Vec<Spanned<RawDriver>>,
    #[serde(default)]
    pub actor: Vec<Spanned<RawActor>>,
    pub check: Option<RawCheck>,
    pub bug: Option<Spanned<RawBug>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMeta {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBoard {
    pub builtin: Option<Spanned<String>>,
    pub dtb: Option<Spanned<String>>,
    #[serde(default)]
    pub quirks: Vec<Spanned<String>>,
    #[serde(rename = "smmu-ias")]
    pub smmu_ias: Option<Spanned<u32>>,
    /// Enumerated PCI functions on `iommu-map` hosts, `BUS:DEV.FN[=DRIVER]` (as `--pci`).
    #[serde(default)]
    pub pci: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKernel {
    pub version: Spanned<String>,
    pub cmdline: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDriver {
    pub device: Spanned<String>,
    pub name: Option<Spanned<String>>,
    pub shutdown: Option<bool>,
    pub dma: Option<Spanned<String>>,
    pub packets: Option<Spanned<u32>>,
    pub steps: Option<Spanned<u32>>,
    #[serde(rename = "stream-ids")]
    pub stream_ids: Option<Spanned<Vec<u32>>>,
    #[serde(rename = "direct-regions", default)]
    pub direct_regions: Vec<Spanned<RawRegion>>,
    #[serde(rename = "dma-mask-bits")]
    pub dma_mask_bits: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegion {
    pub base: u64,
    pub size: Spanned<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawActor {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub cpu: Option<Spanned<u32>>,
    pub device: Option<Spanned<String>>,
    pub script: Option<Spanned<Vec<Spanned<RawStep>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub op: Spanned<String>,
    pub device: Option<Spanned<String>>,
    pub domain: Option<Spanned<String>>,
    pub buffer: Option<Spanned<String>>,
    pub size: Option<Spanned<u64>>,
    pub nents: Option<Spanned<u32>>,
    pub iova: Option<Spanned<u64>>,
    pub dir: Option<Spanned<String>>,
    pub owner: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    pub properties: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBug {
    #[serde(rename = "fixed-by")]
    pub fixed_by: Spanned<String>,
    #[serde(rename = "introduced-by")]
    pub introduced_by: String,
    pub mechanism: String,
    pub property: Spanned<String>,
    pub before: Spanned<RawBudget>,
    pub after: Spanned<RawBudget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    pub strategy: Spanned<String>,
    pub runs: Spanned<u64>,
    pub depth: Option<Spanned<usize>>,
    #[serde(default)]
    pub seed: u64,
    pub token: Option<Spanned<String>>,
}
