//! `arm_smmu_device_hw_probe`: ID registers → features, sizes and the probe's log lines.

use crate::fw::{FirmwareDesc, KernelVersion, ModuleParams};
use crate::io::Io;
use smmu_addr::PageSize;
use smmuv3_arch::regs::{self, idr0, idr1, idr3, idr5, iidr};
use thiserror::Error;

/// Linux's ARM_SMMU_FEAT_* bits, as printed in `features 0x%08x`.
pub mod feat {
    pub const TWO_LVL_STRTAB: u32 = 1 << 0;
    pub const TWO_LVL_CDTAB: u32 = 1 << 1;
    pub const TT_LE: u32 = 1 << 2;
    pub const TT_BE: u32 = 1 << 3;
    pub const PRI: u32 = 1 << 4;
    pub const ATS: u32 = 1 << 5;
    pub const SEV: u32 = 1 << 6;
    pub const MSI: u32 = 1 << 7;
    pub const COHERENCY: u32 = 1 << 8;
    pub const TRANS_S1: u32 = 1 << 9;
    pub const TRANS_S2: u32 = 1 << 10;
    pub const STALLS: u32 = 1 << 11;
    pub const HYP: u32 = 1 << 12;
    pub const STALL_FORCE: u32 = 1 << 13;
    pub const VAX: u32 = 1 << 14;
    pub const RANGE_INV: u32 = 1 << 15;
    pub const BTM: u32 = 1 << 16;
    pub const SVA: u32 = 1 << 17;
    pub const E2H: u32 = 1 << 18;
    pub const NESTING: u32 = 1 << 19;
}

/// Linux's ARM_SMMU_OPT_MSIPOLL.
pub const OPT_MSIPOLL: u32 = 1 << 2;

/// Queue shift caps: (PAGE_SHIFT + MAX_ORDER − 1) − entry-size shift, 4 KiB pages.
pub const CMDQ_MAX_SZ_SHIFT: u32 = 22 - 4;
pub const EVTQ_MAX_SZ_SHIFT: u32 = 22 - 5;
/// Commands per batch (BITS_PER_LONG).
pub const CMDQ_BATCH_ENTRIES: u32 = 64;
/// StreamID bits resolved by a level-2 stream table.
pub const STRTAB_SPLIT: u32 = 8;

/// Why probe failed (each with the line Linux prints, if any, already logged).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProbeError {
    #[error("compatible '{0}' is not arm,smmu-v3")]
    UnknownCompatible(String),
    #[error("missing or invalid #iommu-cells")]
    IommuCells,
    #[error("MMIO region too small ({0:#x} bytes, need 0x20000)")]
    RegionTooSmall(u64),
    #[error("unknown/unsupported TT endianness")]
    Endianness,
    #[error("no translation support")]
    NoTranslation,
    #[error("AArch64 table format not supported")]
    NoAarch64,
    #[error("embedded implementation not supported")]
    Embedded,
    #[error("command queue size <= 64 entries not supported")]
    CmdqTooSmall,
    #[error("failed to allocate {what} ({bytes:#x} bytes)")]
    NoMemory { what: &'static str, bytes: u64 },
    #[error("{0} did not acknowledge")]
    AckTimeout(&'static str),
    /// b63b3439b856: a kdump kernel found the SMMU enabled, set GBPA.ABORT and turned it off
    /// instead of resetting it.
    #[error("SMMU enabled in a kdump kernel: left disabled, aborting all transactions (-EBUSY)")]
    KdumpBusy,
}

impl ProbeError {
    /// The errno `arm_smmu_device_probe` returns for this failure.
    pub fn errno(&self) -> i32 {
        match self {
            ProbeError::UnknownCompatible(_) => -19,
            ProbeError::IommuCells | ProbeError::RegionTooSmall(_) => -22,
            ProbeError::Endianness
            | ProbeError::NoTranslation
            | ProbeError::NoAarch64
            | ProbeError::Embedded
            | ProbeError::CmdqTooSmall => -6,
            ProbeError::NoMemory { .. } => -12,
            ProbeError::AckTimeout(_) => -110,
            ProbeError::KdumpBusy => -16,
        }
    }

    /// The driver core's line for this failure (`call_driver_probe`): none for -ENODEV and
    /// -ENXIO, which reject the match quietly.
    pub fn driver_core_line(&self, dev_name: &str) -> Option<String> {
        let e = self.errno();
        (e != -19 && e != -6)
            .then(|| format!("arm-smmu-v3: probe of {dev_name} failed with error {e}"))
    }
}

/// What probe learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HwInfo {
    pub features: u32,
    pub options: u32,
    pub ias: u32,
    pub oas: u32,
    pub asid_bits: u32,
    pub vmid_bits: u32,
    pub sid_bits: u32,
    pub ssid_bits: u32,
    pub cmdq_shift: u32,
    pub evtq_shift: u32,
    pub pgsize_bitmap: u64,
}

impl HwInfo {
    pub fn has(&self, f: u32) -> bool {
        self.features & f != 0
    }
}

/// Decode the ID registers (reads IDR0, IDR1, IDR3, IDR5, and IIDR on v6.12, in that order).
pub(crate) fn hw_probe(
    io: &Io,
    fw: &FirmwareDesc,
    params: &ModuleParams,
    version: KernelVersion,
    log: &dyn Fn(klog::Level, &str),
) -> Result<HwInfo, ProbeError> {
    use klog::Level;
    let mut features = if fw.dma_coherent { feat::COHERENCY } else { 0 };
    let mut options = 0;
    let coherent = fw.dma_coherent;
    let reg = io.read(regs::IDR0);
    if (reg >> idr0::ST_LVL_SHIFT) & 3 == idr0::ST_LVL_2LVL {
        features |= feat::TWO_LVL_STRTAB;
    }
    if reg & idr0::CD2L != 0 {
        features |= feat::TWO_LVL_CDTAB;
    }
    match (reg >> idr0::TTENDIAN_SHIFT) & 3 {
        idr0::TTENDIAN_MIXED => features |= feat::TT_LE | feat::TT_BE,
        idr0::TTENDIAN_LE => features |= feat::TT_LE,
        _ => {
            log(Level::Err, "unknown/unsupported TT endianness!");
            return Err(ProbeError::Endianness);
        }
    }
    if reg & idr0::PRI != 0 {
        features |= feat::PRI;
    }
    if reg & idr0::ATS != 0 {
        features |= feat::ATS;
    }
    if reg & idr0::SEV != 0 {
        features |= feat::SEV;
    }
    if reg & idr0::MSI != 0 {
        features |= feat::MSI;
        if coherent && !params.disable_msipolling {
            options |= OPT_MSIPOLL;
        }
    }
    if reg & idr0::HYP != 0 {
        // The simulated CPUs have no VHE, so no E2H.
        features |= feat::HYP;
    }
    if (reg & idr0::COHACC != 0) != coherent {
        log(
            Level::Warning,
            &format!("IDR0.COHACC overridden by FW configuration ({coherent})"),
        );
    }
    match (reg >> idr0::STALL_MODEL_SHIFT) & 3 {
        2 => features |= feat::STALL_FORCE | feat::STALLS,
        0 => features |= feat::STALLS,
        _ => {}
    }
    if reg & idr0::S1P != 0 {
        features |= feat::TRANS_S1;
    }
    if reg & idr0::S2P != 0 {
        features |= feat::TRANS_S2;
    }
    if reg & (idr0::S1P | idr0::S2P) == 0 {
        log(Level::Err, "no translation support!");
        return Err(ProbeError::NoTranslation);
    }
    let mut ias = match (reg >> idr0::TTF_SHIFT) & 3 {
        idr0::TTF_AARCH32_64 => 40,
        idr0::TTF_AARCH64 => 0,
        _ => {
            log(Level::Err, "AArch64 table format not supported!");
            return Err(ProbeError::NoAarch64);
        }
    };
    let asid_bits = if reg & idr0::ASID16 != 0 { 16 } else { 8 };
    let vmid_bits = if reg & idr0::VMID16 != 0 { 16 } else { 8 };

    let reg = io.read(regs::IDR1);
    if reg & (idr1::TABLES_PRESET | idr1::QUEUES_PRESET | idr1::REL) != 0 {
        log(Level::Err, "embedded implementation not supported");
        return Err(ProbeError::Embedded);
    }
    let cmdq_shift = CMDQ_MAX_SZ_SHIFT.min((reg >> idr1::CMDQS_SHIFT) & 0x1f);
    if cmdq_shift <= CMDQ_BATCH_ENTRIES.ilog2() {
        log(Level::Err, "command queue size <= 64 entries not supported");
        return Err(ProbeError::CmdqTooSmall);
    }
    let evtq_shift = EVTQ_MAX_SZ_SHIFT.min((reg >> idr1::EVTQS_SHIFT) & 0x1f);
    let ssid_bits = (reg >> idr1::SSIDSIZE_SHIFT) & 0x1f;
    let sid_bits = reg & 0x3f;
    if sid_bits <= STRTAB_SPLIT {
        features &= !feat::TWO_LVL_STRTAB;
    }

    let reg = io.read(regs::IDR3);
    if reg & idr3::RIL != 0 {
        features |= feat::RANGE_INV;
    }

    let reg = io.read(regs::IDR5);
    let mut pgsize_bitmap = 0u64;
    if reg & idr5::GRAN64K != 0 {
        pgsize_bitmap |= PageSize::bitmap_of(&[PageSize::SZ_64K, PageSize::SZ_512M]);
    }
    if reg & idr5::GRAN16K != 0 {
        pgsize_bitmap |= PageSize::bitmap_of(&[PageSize::SZ_16K, PageSize::SZ_32M]);
    }
    if reg & idr5::GRAN4K != 0 {
        pgsize_bitmap |= PageSize::bitmap_of(&[PageSize::SZ_4K, PageSize::SZ_2M, PageSize::SZ_1G]);
    }
    if (reg >> idr5::VAX_SHIFT) & 3 == 1 {
        features |= feat::VAX;
    }
    let oas = match idr5::oas_bits(reg & 7) {
        Some(52) => {
            pgsize_bitmap |= 1 << 42;
            52
        }
        Some(b) => b,
        None => {
            log(
                Level::Info,
                "unknown output address size. Truncating to 48-bit",
            );
            48
        }
    };
    ias = ias.max(oas);
    if features & feat::TRANS_S1 != 0 && features & feat::TRANS_S2 != 0 {
        features |= feat::NESTING;
    }
    if version >= KernelVersion::V6_12 {
        // arm_smmu_device_iidr_probe: MMU-600/700 errata.
        let reg = io.read(regs::IIDR);
        let implementer = reg & 0xfff;
        let product = (reg >> iidr::PRODUCTID_SHIFT) & 0xfff;
        let variant = (reg >> iidr::VARIANT_SHIFT) & 0xf;
        let revision = (reg >> iidr::REVISION_SHIFT) & 0xf;
        if implementer == iidr::IMPLEMENTER_ARM {
            if product == iidr::PRODUCTID_MMU_600 {
                if variant == 0 && revision <= 2 {
                    features &= !feat::SEV;
                }
                if variant < 2 {
                    features &= !feat::NESTING;
                }
            } else if product == iidr::PRODUCTID_MMU_700 {
                features &= !(feat::BTM | feat::NESTING);
            }
        }
    }
    log(
        Level::Info,
        &format!("ias {ias}-bit, oas {oas}-bit (features 0x{features:08x})"),
    );
    Ok(HwInfo {
        features,
        options,
        ias,
        oas,
        asid_bits,
        vmid_bits,
        sid_bits,
        ssid_bits,
        cmdq_shift,
        evtq_shift,
        pgsize_bitmap,
    })
}
