//! Implementation presets: the ID register values an SMMUv3 reports, plus the sizes of the
//! caches the architecture leaves to the implementation.

use smmuv3_arch::field;
use smmuv3_arch::regs::{idr0, idr1, idr3, idr5};
use thiserror::Error;

/// A rejected preset.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SmmuV3ConfigError {
    #[error("IDR0 advertises neither stage 1 nor stage 2")]
    NoStage,
    #[error("IDR0.TTF {0} does not include the AArch64 table format")]
    NoAarch64(u32),
    #[error("IDR1.SIDSIZE {0} is above the architecture's 32")]
    SidSize(u32),
    #[error("IDR1.{name} {value} is above the architecture's 19")]
    QueueSize { name: &'static str, value: u32 },
    #[error("IDR5.OAS code {0} is reserved")]
    Oas(u32),
    #[error("IDR5 advertises no translation granule")]
    NoGranule,
    #[error("a {what} of 0 entries")]
    EmptyCache { what: &'static str },
}

/// One SMMUv3 implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmmuV3Config {
    /// Short name for reports.
    pub name: &'static str,
    /// IDR0..IDR5.
    pub idr: [u32; 6],
    pub iidr: u32,
    pub aidr: u32,
    /// GBPA at reset (IMPLEMENTATION DEFINED whether ABORT resets to 1).
    pub gbpa_reset: u32,
    /// Translation entries the TLB holds (replaced first-in first-out once full).
    pub tlb_entries: usize,
    /// Stream configurations (STE + CD) the configuration cache holds.
    pub cfg_entries: usize,
    /// Invalidation latency: `None` applies CFGI/TLBI commands as they are consumed; `Some(n)`
    /// leaves them pending until a CMD_SYNC is consumed or `n` more transactions have been
    /// translated, so a driver that omits the CMD_SYNC can observe stale entries.
    pub inval_latency: Option<u32>,
}

impl SmmuV3Config {
    /// QEMU's `virt` machine SMMUv3 (`hw/arm/smmuv3.c`, 7.2 as on the shared board): stage 1
    /// only, AArch64 tables, coherent, 16-bit ASID/VMID, little-endian tables, terminate-only
    /// stall model, 2-level stream table, 16-bit StreamIDs, 2^19-entry queues, range
    /// invalidation and HAD, 44-bit OAS, 4K/16K/64K granules, AIDR 1 (SMMUv3.1). No MSI, no SEV:
    /// CMD_SYNC completion is found by polling CMDQ_CONS. QEMU's IOTLB holds 256 entries; its
    /// GBPA resets to bypass with SHCFG "incoming".
    pub fn qemu_virt() -> Self {
        SmmuV3Config {
            name: "qemu-virt",
            idr: [
                idr0::S1P
                    | (idr0::TTF_AARCH64 << idr0::TTF_SHIFT)
                    | idr0::COHACC
                    | idr0::ASID16
                    | idr0::VMID16
                    | (idr0::TTENDIAN_LE << idr0::TTENDIAN_SHIFT)
                    | (1 << idr0::STALL_MODEL_SHIFT)
                    | idr0::TERM_MODEL
                    | (idr0::ST_LVL_2LVL << idr0::ST_LVL_SHIFT),
                (16 << idr1::SIDSIZE_SHIFT) | (19 << idr1::EVTQS_SHIFT) | (19 << idr1::CMDQS_SHIFT),
                0,
                idr3::HAD | idr3::RIL,
                0,
                4 | idr5::GRAN4K | idr5::GRAN16K | idr5::GRAN64K,
            ],
            iidr: 0,
            aidr: 1,
            gbpa_reset: 1 << smmuv3_arch::regs::gbpa::SHCFG_SHIFT,
            tlb_entries: 256,
            cfg_entries: 64,
            inval_latency: None,
        }
    }

    /// A generic SMMUv3.1 with both stages (so nested STEs), MSIs and SEV, 2-level CD tables,
    /// 8-bit SubstreamIDs, 48-bit OAS, 4K and 64K granules, and small queues (256 commands, 128
    /// events) so wrap and overflow are reached quickly. Its GBPA resets to abort.
    pub fn s1s2_msi() -> Self {
        SmmuV3Config {
            name: "s1s2-msi",
            idr: [
                idr0::S1P
                    | idr0::S2P
                    | (idr0::TTF_AARCH64 << idr0::TTF_SHIFT)
                    | idr0::COHACC
                    | idr0::ASID16
                    | idr0::VMID16
                    | idr0::MSI
                    | idr0::SEV
                    | idr0::CD2L
                    | (idr0::TTENDIAN_LE << idr0::TTENDIAN_SHIFT)
                    | (1 << idr0::STALL_MODEL_SHIFT)
                    | idr0::TERM_MODEL
                    | (idr0::ST_LVL_2LVL << idr0::ST_LVL_SHIFT),
                (16 << idr1::SIDSIZE_SHIFT)
                    | (8 << idr1::SSIDSIZE_SHIFT)
                    | (7 << idr1::EVTQS_SHIFT)
                    | (8 << idr1::CMDQS_SHIFT),
                0,
                idr3::RIL,
                0,
                5 | idr5::GRAN4K | idr5::GRAN64K,
            ],
            iidr: 0,
            aidr: 1,
            gbpa_reset: smmuv3_arch::regs::gbpa::ABORT,
            tlb_entries: 128,
            cfg_entries: 32,
            inval_latency: None,
        }
    }

    /// Check the preset is one an SMMUv3 could report.
    pub fn validate(&self) -> Result<(), SmmuV3ConfigError> {
        let [i0, i1, _, _, _, i5] = self.idr;
        if i0 & (idr0::S1P | idr0::S2P) == 0 {
            return Err(SmmuV3ConfigError::NoStage);
        }
        let ttf = (i0 >> idr0::TTF_SHIFT) & 3;
        if ttf & 2 == 0 {
            return Err(SmmuV3ConfigError::NoAarch64(ttf));
        }
        if self.sid_bits() > 32 {
            return Err(SmmuV3ConfigError::SidSize(self.sid_bits()));
        }
        for (name, value) in [
            ("CMDQS", self.cmdqs()),
            ("EVTQS", self.evtqs()),
            ("PRIQS", (i1 >> idr1::PRIQS_SHIFT) & 0x1f),
        ] {
            if value > 19 {
                return Err(SmmuV3ConfigError::QueueSize { name, value });
            }
        }
        if idr5::oas_bits(i5 & 7).is_none() {
            return Err(SmmuV3ConfigError::Oas(i5 & 7));
        }
        if i5 & (idr5::GRAN4K | idr5::GRAN16K | idr5::GRAN64K) == 0 {
            return Err(SmmuV3ConfigError::NoGranule);
        }
        if self.tlb_entries == 0 {
            return Err(SmmuV3ConfigError::EmptyCache { what: "TLB" });
        }
        if self.cfg_entries == 0 {
            return Err(SmmuV3ConfigError::EmptyCache {
                what: "configuration cache",
            });
        }
        Ok(())
    }

    pub fn s1p(&self) -> bool {
        self.idr[0] & idr0::S1P != 0
    }
    pub fn s2p(&self) -> bool {
        self.idr[0] & idr0::S2P != 0
    }
    pub fn msi(&self) -> bool {
        self.idr[0] & idr0::MSI != 0
    }
    pub fn sev(&self) -> bool {
        self.idr[0] & idr0::SEV != 0
    }
    pub fn two_level_strtab(&self) -> bool {
        field(u64::from(self.idr[0]), idr0::ST_LVL_SHIFT, 2) == u64::from(idr0::ST_LVL_2LVL)
    }
    pub fn range_inv(&self) -> bool {
        self.idr[3] & idr3::RIL != 0
    }
    pub fn sid_bits(&self) -> u32 {
        self.idr[1] & 0x3f
    }
    pub fn ssid_bits(&self) -> u32 {
        (self.idr[1] >> idr1::SSIDSIZE_SHIFT) & 0x1f
    }
    /// log2 of the largest command queue.
    pub fn cmdqs(&self) -> u32 {
        (self.idr[1] >> idr1::CMDQS_SHIFT) & 0x1f
    }
    /// log2 of the largest event queue.
    pub fn evtqs(&self) -> u32 {
        (self.idr[1] >> idr1::EVTQS_SHIFT) & 0x1f
    }
    /// Output address bits (48 for a reserved code, as software would assume).
    pub fn oas(&self) -> u32 {
        idr5::oas_bits(self.idr[5] & 7).unwrap_or(48)
    }
    /// Whether a granule of 2^`shift` bytes is supported.
    pub fn granule(&self, shift: u32) -> bool {
        let bit = match shift {
            12 => idr5::GRAN4K,
            14 => idr5::GRAN16K,
            16 => idr5::GRAN64K,
            _ => return false,
        };
        self.idr[5] & bit != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_decode() {
        let q = SmmuV3Config::qemu_virt();
        q.validate().unwrap();
        assert_eq!(
            (q.sid_bits(), q.oas(), q.cmdqs(), q.evtqs()),
            (16, 44, 19, 19)
        );
        assert!(
            q.two_level_strtab() && q.s1p() && !q.s2p() && !q.msi() && !q.sev() && q.range_inv()
        );
        // Field by field: S1P|TTF=2|COHACC|ASID16|VMID16|TTENDIAN=2|STALL_MODEL=1|TERM_MODEL|ST_LVL=1.
        assert_eq!(q.idr[0], 0x0d44_101a);
        assert_eq!(q.idr[1], 0x0273_0010);
        assert_eq!(q.idr[5], 0x74);
        let g = SmmuV3Config::s1s2_msi();
        g.validate().unwrap();
        assert!(g.s2p() && g.msi() && g.sev());
        let mut bad = g.clone();
        bad.idr[5] = 7;
        assert_eq!(bad.validate(), Err(SmmuV3ConfigError::Oas(7)));
    }
}
