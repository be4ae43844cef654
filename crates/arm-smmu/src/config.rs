//! ID-register decode (Linux `arm_smmu_device_cfg_probe`): what this SMMU can do, with the probe
//! notices Linux prints, in Linux's order.

use crate::fw::{Model, Version};
use crate::params::ModuleParams;
use smmu_addr::PageSize;
use smmu_arch::regs::{field, gr0, id0, id1, id2, size_code_to_bits};
use smmu_arch::Mmio;
use thiserror::Error;

/// Driver feature bits (Linux's ARM_SMMU_FEAT_*, same bit numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features(pub u32);

impl Features {
    /// Table walks snoop CPU caches (firmware's `dma-coherent` wins over ID0.CTTW).
    pub const COHERENT_WALK: u32 = 1 << 0;
    /// Stream matching with SMRs (else stream indexing).
    pub const STREAM_MATCH: u32 = 1 << 1;
    /// Stage-1 translation.
    pub const TRANS_S1: u32 = 1 << 2;
    /// Stage-2 translation.
    pub const TRANS_S2: u32 = 1 << 3;
    /// Nested (S1+S2) translation.
    pub const TRANS_NESTED: u32 = 1 << 4;
    /// ATS1PR address translation operations usable for `iova_to_phys`.
    pub const TRANS_OPS: u32 = 1 << 5;
    /// 16-bit VMIDs (in CBA2R).
    pub const VMID16: u32 = 1 << 6;
    /// AArch64 format, 4K granule.
    pub const FMT_AARCH64_4K: u32 = 1 << 7;
    /// AArch64 format, 16K granule.
    pub const FMT_AARCH64_16K: u32 = 1 << 8;
    /// AArch64 format, 64K granule.
    pub const FMT_AARCH64_64K: u32 = 1 << 9;
    /// AArch32 long-descriptor format.
    pub const FMT_AARCH32_L: u32 = 1 << 10;
    /// AArch32 short-descriptor format.
    pub const FMT_AARCH32_S: u32 = 1 << 11;
    /// Extended (16-bit) stream IDs.
    pub const EXIDS: u32 = 1 << 12;

    /// Whether every bit of `mask` is set.
    pub fn has(self, mask: u32) -> bool {
        self.0 & mask == mask
    }
    /// Whether any bit of `mask` is set.
    pub fn any(self, mask: u32) -> bool {
        self.0 & mask != 0
    }
}

/// Everything probe learned; fixed after probe (except the stream-ID masks refined by the SMR
/// width test, which the stream map holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmmuConfig {
    /// Architecture version, from the compatible string.
    pub version: Version,
    /// Implementation, selecting quirk hooks.
    pub model: Model,
    /// What ID0–ID2 and firmware say the SMMU can do.
    pub features: Features,
    /// Number of stream-map entries (SMR/S2CR pairs, or S2CRs indexed by stream ID).
    pub num_mapping_groups: u32,
    /// Stream-ID mask before the SMR width test.
    pub streamid_mask: u32,
    /// ID1.NUMCB.
    pub num_context_banks: u32,
    /// ID1.NUMS2CB: the first banks, usable for stage 2 only.
    pub num_s2_context_banks: u32,
    /// log2 of the register page size (12 or 16).
    pub pgshift: u32,
    /// Number of global pages (= page index of context bank 0).
    pub numpage: u64,
    /// ID2.IAS in bits.
    pub ipa_size: u32,
    /// ID2.OAS in bits.
    pub pa_size: u32,
    /// ID2.UBS in bits (SMMUv2), else IAS.
    pub va_size: u32,
    /// Page sizes of all supported formats.
    pub pgsize_bitmap: u64,
    /// `#global-interrupts`.
    pub num_global_irqs: u32,
    /// Context interrupts (trimmed to NUMCB on SMMUv2).
    pub num_context_irqs: u32,
}

impl SmmuConfig {
    /// Stream matching (SMRs exist) rather than indexing.
    pub fn has_smrs(&self) -> bool {
        self.features.has(Features::STREAM_MATCH)
    }
}

/// Why probe refused the device (Linux returns -ENODEV/-EINVAL for these).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProbeError {
    #[error("unknown compatible {0:?}")]
    /// The compatible string is not in Linux's match table.
    UnknownCompatible(String),
    #[error("missing #global-interrupts property")]
    /// No `#global-interrupts` property.
    MissingGlobalIrqs,
    #[error("found {found} interrupts but expected at least {expected}")]
    /// No interrupt left for context banks.
    TooFewIrqs {
        /// Interrupts firmware lists (all global here).
        found: u32,
        /// Global interrupts + 1.
        expected: u32,
    },
    #[error("found only {found} context irq(s) but {required} required")]
    /// SMMUv2 with fewer context interrupts than context banks.
    TooFewContextIrqs {
        /// Context interrupts firmware lists.
        found: u32,
        /// ID1.NUMCB.
        required: u32,
    },
    #[error("no translation support")]
    /// Neither stage supported (after `force_stage`).
    NoTranslation,
    #[error("stream-matching supported, but no SMRs present")]
    /// Stream matching advertised with zero SMRs.
    NoSmrs,
    #[error("impossible number of S2 context banks")]
    /// More stage-2-only banks than banks.
    BadS2Cbs,
}

/// A line probe wants printed: (is_warning_or_error, text without the device prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeMsg {
    /// Printed at notice level.
    Notice(String),
    /// Printed at warning level.
    Warn(String),
    /// Printed at error level.
    Err(String),
}

/// Decode the ID registers. `messages` receives every line in order (the caller prints them).
pub fn cfg_probe(
    mmio: &dyn Mmio,
    version: Version,
    model: Model,
    coherent_fw: bool,
    reg_size: u64,
    params: &ModuleParams,
    messages: &mut Vec<ProbeMsg>,
) -> Result<SmmuConfig, ProbeError> {
    let note = |m: &mut Vec<ProbeMsg>, s: String| m.push(ProbeMsg::Notice(s));
    let mut features = Features::default();
    if coherent_fw {
        features.0 |= Features::COHERENT_WALK;
    }
    note(messages, "probing hardware configuration...".into());
    note(
        messages,
        format!("SMMUv{} with:", if version == Version::V2 { 2 } else { 1 }),
    );

    // ID0
    let mut id = mmio.read32(gr0::ID0);
    match params.force_stage {
        1 => id &= !(id0::S2TS | id0::NTS),
        2 => id &= !(id0::S1TS | id0::NTS),
        _ => {}
    }
    if id & id0::S1TS != 0 {
        features.0 |= Features::TRANS_S1;
        note(messages, "\tstage 1 translation".into());
    }
    if id & id0::S2TS != 0 {
        features.0 |= Features::TRANS_S2;
        note(messages, "\tstage 2 translation".into());
    }
    if id & id0::NTS != 0 {
        features.0 |= Features::TRANS_NESTED;
        note(messages, "\tnested translation".into());
    }
    if !features.any(Features::TRANS_S1 | Features::TRANS_S2) {
        messages.push(ProbeMsg::Err("\tno translation support!".into()));
        return Err(ProbeError::NoTranslation);
    }
    if id & id0::S1TS != 0 && (version < Version::V2 || id & id0::ATOSNS == 0) {
        features.0 |= Features::TRANS_OPS;
        note(messages, "\taddress translation ops".into());
    }
    // Firmware wins over ID0.CTTW; Linux prints the line only if either claims coherence.
    let cttw_reg = id & id0::CTTW != 0;
    if coherent_fw || cttw_reg {
        note(
            messages,
            format!(
                "\t{}coherent table walk",
                if coherent_fw { "" } else { "non-" }
            ),
        );
    }
    if coherent_fw != cttw_reg {
        note(
            messages,
            "\t(IDR0.CTTW overridden by FW configuration)".into(),
        );
    }
    let mut size: u32 = if version == Version::V2 && id & id0::EXIDS != 0 {
        features.0 |= Features::EXIDS;
        1 << 16
    } else {
        1 << field(id, id0::NUMSIDB_SHIFT, id0::NUMSIDB_WIDTH)
    };
    let streamid_mask = size - 1;
    if id & id0::SMS != 0 {
        features.0 |= Features::STREAM_MATCH;
        size = field(id, id0::NUMSMRG_SHIFT, id0::NUMSMRG_WIDTH);
        if size == 0 {
            messages.push(ProbeMsg::Err(
                "stream-matching supported, but no SMRs present!".into(),
            ));
            return Err(ProbeError::NoSmrs);
        }
        note(
            messages,
            format!("\tstream matching with {size} register groups"),
        );
    }
    let num_mapping_groups = size;
    if version < Version::V2 || id & id0::PTFS_NO_AARCH32 == 0 {
        features.0 |= Features::FMT_AARCH32_L;
        if id & id0::PTFS_NO_AARCH32S == 0 {
            features.0 |= Features::FMT_AARCH32_S;
        }
    }

    // ID1
    let id = mmio.read32(gr0::ID1);
    let pgshift = if id & id1::PAGESIZE != 0 { 16 } else { 12 };
    let numpage = 1u64 << (field(id, id1::NUMPAGENDXB_SHIFT, id1::NUMPAGENDXB_WIDTH) + 1);
    let span = (2 * numpage) << pgshift;
    if span != reg_size {
        messages.push(ProbeMsg::Warn(format!(
            "SMMU address space size (0x{span:x}) differs from mapped region size (0x{reg_size:x})!"
        )));
    }
    let num_s2_context_banks = field(id, id1::NUMS2CB_SHIFT, id1::NUMS2CB_WIDTH);
    let num_context_banks = field(id, id1::NUMCB_SHIFT, id1::NUMCB_WIDTH);
    if num_s2_context_banks > num_context_banks {
        messages.push(ProbeMsg::Err(
            "impossible number of S2 context banks!".into(),
        ));
        return Err(ProbeError::BadS2Cbs);
    }
    note(
        messages,
        format!("\t{num_context_banks} context banks ({num_s2_context_banks} stage-2 only)"),
    );

    // ID2
    let id = mmio.read32(gr0::ID2);
    let ipa_size = size_code_to_bits(field(id, id2::IAS_SHIFT, id2::SIZE_WIDTH));
    let pa_size = size_code_to_bits(field(id, id2::OAS_SHIFT, id2::SIZE_WIDTH));
    if id & id2::VMID16 != 0 {
        features.0 |= Features::VMID16;
    }
    let va_size = if version < Version::V2 {
        if version == Version::V1_64K {
            features.0 |= Features::FMT_AARCH64_64K;
        }
        ipa_size
    } else {
        if id & id2::PTFS_4K != 0 {
            features.0 |= Features::FMT_AARCH64_4K;
        }
        if id & id2::PTFS_16K != 0 {
            features.0 |= Features::FMT_AARCH64_16K;
        }
        if id & id2::PTFS_64K != 0 {
            features.0 |= Features::FMT_AARCH64_64K;
        }
        size_code_to_bits(field(id, id2::UBS_SHIFT, id2::SIZE_WIDTH))
    };

    // The page sizes each table format maps, as arm_smmu_device_cfg_probe lists them.
    let mut pgsize_bitmap = 0u64;
    if features.has(Features::FMT_AARCH32_S) {
        pgsize_bitmap |= PageSize::bitmap_of(&[
            PageSize::SZ_4K,
            PageSize::SZ_64K,
            PageSize::SZ_1M,
            PageSize::SZ_16M,
        ]);
    }
    if features.any(Features::FMT_AARCH32_L | Features::FMT_AARCH64_4K) {
        pgsize_bitmap |= PageSize::bitmap_of(&[PageSize::SZ_4K, PageSize::SZ_2M, PageSize::SZ_1G]);
    }
    if features.has(Features::FMT_AARCH64_16K) {
        pgsize_bitmap |= PageSize::bitmap_of(&[PageSize::SZ_16K, PageSize::SZ_32M]);
    }
    if features.has(Features::FMT_AARCH64_64K) {
        pgsize_bitmap |= PageSize::bitmap_of(&[PageSize::SZ_64K, PageSize::SZ_512M]);
    }
    note(
        messages,
        format!("\tSupported page sizes: 0x{pgsize_bitmap:08x}"),
    );
    if features.has(Features::TRANS_S1) {
        note(
            messages,
            format!("\tStage-1: {va_size}-bit VA -> {ipa_size}-bit IPA"),
        );
    }
    if features.has(Features::TRANS_S2) {
        note(
            messages,
            format!("\tStage-2: {ipa_size}-bit IPA -> {pa_size}-bit PA"),
        );
    }

    Ok(SmmuConfig {
        version,
        model,
        features,
        num_mapping_groups,
        streamid_mask,
        num_context_banks,
        num_s2_context_banks,
        pgshift,
        numpage,
        ipa_size,
        pa_size,
        va_size,
        pgsize_bitmap,
        num_global_irqs: 0,
        num_context_irqs: 0,
    })
}
