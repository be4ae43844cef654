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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    pub properties: Vec<Spanned<String>>,
}
