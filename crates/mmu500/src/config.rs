//! The hardware configuration a model instance is built from, the ID registers it implies, and
//! the decode of those ID registers back into a configuration.
//!
//! A driver learns everything about the SMMU from ID0–ID2 and ID7 (reference §5.2), so the model
//! generates those registers from this one description and every other behaviour (register
//! window, SMR widths, supported granules) reads the same description. `Mmu500Config::from_id_regs`
//! is the inverse used by tests to prove the encoding loses nothing a driver relies on.

use smmu_arch::regs::{self, id0, id1, id2, id7};
use thiserror::Error;

/// Architecture version as ID0/ID7 and the register layout expose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchVersion {
    /// SMMUv1 (MMU-400/401): no CBA2R, no TCR2, IRPTNDX in CBAR, ID2 has no UBS/PTFS fields.
    V1,
    /// SMMUv2 (MMU-500 and generic implementations).
    V2,
}

/// A configuration that cannot describe real hardware.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Mmu500ConfigError {
    #[error("a configuration needs stage 1 or stage 2 translation")]
    NoTranslation,
    #[error("nested translation needs both stages")]
    NestedWithoutBothStages,
    #[error("{0} context banks: must be 1..=128 and fit the register window")]
    ContextBanks(u32),
    #[error("{s2} stage-2-only context banks exceed {cb} context banks")]
    S2ContextBanks { s2: u32, cb: u32 },
    #[error("{0} stream mapping groups: must be 1..=255 and fit GR0 (SMR/S2CR arrays)")]
    MappingGroups(u32),
    #[error("NUMSIDB {0} out of range 1..=16 (stream indexing: at most 8)")]
    StreamIdBits(u32),
    #[error("NUMPAGENDXB {0} out of range 0..=7")]
    PageIndexBits(u32),
    #[error("address size {0} bits has no ID2 encoding (32, 36, 40, 42, 44, 48)")]
    AddressSize(u32),
    #[error("no translation table format supported")]
    NoFormat,
    #[error("TLB capacity must be 1..=65536 entries, got {0}")]
    TlbCapacity(usize),
    #[error("{0} context interrupts: must be 1..=255")]
    ContextIrqs(u32),
}

/// Everything that distinguishes one SMMU implementation from another. Fields are public so a
/// test or board can start from a preset and adjust (builder style via struct update syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mmu500Config {
    /// Human-readable name (shown in events and errors only).
    pub name: &'static str,
    pub version: ArchVersion,
    /// Arm MMU-500 implementation specifics: sCR0.SMCFCFG, sACR and ACTLR layout.
    pub mmu500: bool,
    /// Stream matching (SMRs) rather than stream indexing.
    pub stream_match: bool,
    /// Number of stream mapping groups (SMR/S2CR pairs) when stream matching.
    pub num_smrg: u32,
    /// ID0.NUMSIDB: implemented stream ID bits (SMR ID and MASK fields are this wide).
    pub num_sid_bits: u32,
    pub num_cb: u32,
    /// Stage-2-only banks: the first `num_s2cb` banks.
    pub num_s2cb: u32,
    /// ID0.NUMIRPT: context interrupts.
    pub num_context_irqs: u32,
    pub stage1: bool,
    pub stage2: bool,
    pub nested: bool,
    /// Address translation operations (ATS1PR/ATSR/PAR) are implemented (ID0.ATOSNS = 0).
    pub atos: bool,
    /// IAS, OAS, UBS in bits (one of 32, 36, 40, 42, 44, 48).
    pub ias: u32,
    pub oas: u32,
    pub ubs: u32,
    pub granule_4k: bool,
    pub granule_16k: bool,
    pub granule_64k: bool,
    /// AArch32 long-descriptor (LPAE) format supported.
    pub aarch32_l: bool,
    /// AArch32 short-descriptor format advertised (walks in it are not modelled: they fault).
    pub aarch32_s: bool,
    /// ID0.CTTW: coherent translation table walk.
    pub coherent_walk: bool,
    pub vmid16: bool,
    /// ID0.BTM (broadcast TLB maintenance) and ID0.SES (security extensions) advertised.
    pub btm: bool,
    pub ses: bool,
    /// ID1.PAGESIZE: 64 KiB register pages.
    pub page_64k: bool,
    pub numpagendxb: u32,
    /// ID7 revision.
    pub major: u32,
    pub minor: u32,
    /// Reset value of sCR0.
    pub scr0_reset: u32,
    /// Reset value of every context bank's SCTLR.
    pub sctlr_reset: u32,
    /// Reset value of sACR and of each bank's ACTLR (MMU-500 only; otherwise RAZ/WI).
    pub sacr_reset: u32,
    pub actlr_reset: u32,
    /// Reset value of every S2CR.
    pub s2cr_reset: u32,
    /// TLB capacity in leaf entries and the seed of its replacement PRNG.
    pub tlb_entries: usize,
    pub tlb_seed: u64,
    /// How many status reads a TLB sync stays active (0: done at once).
    pub sync_polls: u32,
    /// How many ATSR reads an ATS1PR/ATS1PW operation stays ACTIVE before PAR holds its
    /// result (0: done before the write returns). `u32::MAX` models an operation that never
    /// completes within a driver's timeout.
    pub ats_polls: u32,
    /// Which global interrupt line global faults raise.
    pub global_irq: u8,
}

impl Mmu500Config {
    /// The architected name of the register at `offset` in a device of this configuration
    /// (the map [`Mmu500::reg_name`](crate::Mmu500::reg_name) uses), for tools and test
    /// messages that have no device at hand.
    pub fn reg_name(&self, offset: u64) -> Option<crate::RegName> {
        crate::mmio::reg_name(self, offset)
    }

    /// Arm MMU-500 as on the NXP LS1028A (`arm,mmu-500` at 0x5000000, `reg` size 8 MiB).
    ///
    /// Every ID field is set from evidence; the source is next to each value. The sources:
    ///
    /// * **[LS-ID0]** ID0 read on real LS1028A and LS1088A silicon: `GR0_ID0: 0x7c013e80`
    ///   (Vladimir Oltean, LKML, 8 Dec 2022, "Re: [PATCH] iommu/arm-smmu: Report
    ///   IOMMU_CAP_CACHE_COHERENCY even betterer", a debug print added to a v6.1-rc kernel).
    ///   Decoded: S1TS, S2TS, NTS, SMS, **ATOSNS = 1** (no address translation operations),
    ///   SES = 0, NUMIRPT = 1, CTTW = 0, BTM = 1, NUMSIDB = 15, EXIDS = 0, NUMSMRG = 128.
    /// * **[LS-LOG]** the same boot log and other LS1028A boot logs: `stream matching with 128
    ///   register groups`, `64 context banks (0 stage-2 only)`, `Supported page sizes:
    ///   0x61311000` (4K and 64K granules, **no 16K**), `Stage-1: 48-bit VA -> 48-bit IPA`,
    ///   `Stage-2: 48-bit IPA -> 48-bit PA`, and no `address translation ops` line.
    /// * **[REF-§1]** `shared/reference/arm-smmu-v2.md` §1: the 8 MiB `reg` window needs
    ///   ID1.PAGESIZE = 1 (64 KiB pages) and NUMPAGENDXB = 5.
    /// * **[REF-§2.5]** the reference's MMU-500 reset values (from the Xilinx MMU-500 model):
    ///   ID2 = 0x5555 (VMID16 = 0), ID7 = 0x21 (r2p1), sCR0 0x00200001, SCTLR 0x100. The LS1028A
    ///   values of ID2 bit 15 and ID7 were never captured; these are the MMU-500's.
    /// * **[TRM]** Arm MMU-500 TRM (DDI 0517), reset values: ID0.CTTW reads 0 on MMU-500 (quoted
    ///   in the same LKML thread).
    ///
    /// Global faults raise line 2 ("global non-secure fault", SPI 15).
    pub fn mmu500_ls1028a() -> Self {
        Mmu500Config {
            name: "MMU-500 (LS1028A)",
            version: ArchVersion::V2,
            mmu500: true,
            stream_match: true,   // [LS-ID0] SMS
            num_smrg: 128,        // [LS-ID0] NUMSMRG 0x80, [LS-LOG]
            num_sid_bits: 15,     // [LS-ID0] NUMSIDB 15
            num_cb: 64,           // [LS-LOG] 64 context banks
            num_s2cb: 0,          // [LS-LOG] 0 stage-2 only
            num_context_irqs: 1,  // [LS-ID0] NUMIRPT 1 (Linux counts the DT's 64 SPIs instead)
            stage1: true,         // [LS-ID0] S1TS
            stage2: true,         // [LS-ID0] S2TS
            nested: true,         // [LS-ID0] NTS
            atos: false,          // [LS-ID0] ATOSNS = 1
            ias: 48,              // [LS-LOG] 48-bit IPA (ID2.IAS 5)
            oas: 48,              // [LS-LOG] 48-bit PA (ID2.OAS 5)
            ubs: 48,              // [LS-LOG] 48-bit VA (ID2.UBS 5)
            granule_4k: true,     // [LS-LOG] page sizes 0x61311000
            granule_16k: false,   // [LS-LOG] page sizes 0x61311000 has no 16K/32M
            granule_64k: true,    // [LS-LOG] page sizes 0x61311000
            aarch32_l: true,      // [LS-ID0] PTFS_NO_AARCH32 = 0
            aarch32_s: true,      // [LS-ID0] PTFS_NO_AARCH32S = 0
            coherent_walk: false, // [LS-ID0] CTTW = 0, [TRM] (the DT's dma-coherent overrides it)
            vmid16: false,        // [REF-§2.5] ID2 0x5555
            btm: true,            // [LS-ID0] bit 13
            ses: false,           // [LS-ID0] bit 31 clear
            page_64k: true,       // [REF-§1]
            numpagendxb: 5,       // [REF-§1]
            major: 2,             // [REF-§2.5] ID7 0x21
            minor: 1,             // [REF-§2.5] ID7 0x21
            scr0_reset: 0x0020_0001,
            sctlr_reset: 0x0000_0100,
            // CACHE_LOCK set so that the MMU-500 reset hook's unlock is observable.
            sacr_reset: 1 << 26,
            // CPRE | CMTLB.
            actlr_reset: 0x3,
            s2cr_reset: regs::make(regs::s2cr::TYPE_FAULT, regs::s2cr::TYPE_SHIFT, 2),
            tlb_entries: 256,
            tlb_seed: 0x0500_0000,
            sync_polls: 0,
            ats_polls: 0,
            global_irq: 2,
        }
    }

    /// A generic SMMUv2 that exercises what the MMU-500 preset does not: stream indexing
    /// (128 stream IDs), stage-2-only banks, 16-bit VMIDs, non-coherent walk, 4 KiB pages,
    /// address translation operations that take two ATSR reads.
    ///
    /// Synthetic: every value is chosen to cover a feature, none is a product's.
    pub fn smmuv2_generic() -> Self {
        Mmu500Config {
            name: "SMMUv2 generic",
            version: ArchVersion::V2,
            mmu500: false,
            stream_match: false,
            num_smrg: 0,
            num_sid_bits: 7,
            num_cb: 16,
            num_s2cb: 4,
            num_context_irqs: 16,
            stage1: true,
            stage2: true,
            nested: true,
            atos: true,
            ias: 48,
            oas: 44,
            ubs: 48,
            granule_4k: true,
            granule_16k: true,
            granule_64k: true,
            aarch32_l: true,
            aarch32_s: false,
            coherent_walk: false,
            vmid16: true,
            btm: false,
            ses: false,
            page_64k: false,
            numpagendxb: 3,
            major: 0,
            minor: 0,
            scr0_reset: 0x0000_0001,
            sctlr_reset: 0,
            sacr_reset: 0,
            actlr_reset: 0,
            s2cr_reset: regs::make(regs::s2cr::TYPE_FAULT, regs::s2cr::TYPE_SHIFT, 2),
            tlb_entries: 128,
            tlb_seed: 2,
            sync_polls: 0,
            // Chosen: a translation operation takes two ATSR reads, so a driver's polling
            // loop is exercised (the architecture only says ACTIVE is set while it runs).
            ats_polls: 2,
            global_irq: 0,
        }
    }

    /// Arm MMU-401: SMMUv1, stage 1 only, 4 KiB register pages, with the AArch64 64 KiB granule
    /// format Linux enables for `arm,mmu-401` (its "V1_64K" version) besides AArch32 LPAE.
    /// On v1 there is no CBA2R: a bank walks AArch32 LPAE when TCR.EAE is set, AArch64 otherwise.
    ///
    /// Synthetic in its sizes: the MMU-401s of Arm's Juno boards probe (public Juno boot logs)
    /// as stage 2 only, 2 stream match groups, 1 context bank (stage-2 only), 40-bit IPA and PA,
    /// page sizes 0x60211000. This preset keeps stage 1 and more groups and banks so the
    /// driver's SMMUv1 stage-1 paths (IRPTNDX round-robin, AArch32 LPAE) are exercised.
    pub fn mmu401() -> Self {
        Mmu500Config {
            name: "MMU-401",
            version: ArchVersion::V1,
            mmu500: false,
            stream_match: true,
            num_smrg: 16,
            num_sid_bits: 15,
            num_cb: 8,
            num_s2cb: 0,
            num_context_irqs: 8,
            stage1: true,
            stage2: false,
            nested: false,
            atos: true,
            ias: 40,
            oas: 40,
            ubs: 40,
            granule_4k: true,
            granule_16k: false,
            granule_64k: true,
            aarch32_l: true,
            aarch32_s: false,
            coherent_walk: false,
            vmid16: false,
            btm: false,
            ses: false,
            page_64k: false,
            numpagendxb: 2,
            major: 0,
            minor: 0,
            scr0_reset: 0x0000_0001,
            sctlr_reset: 0,
            sacr_reset: 0,
            actlr_reset: 0,
            s2cr_reset: regs::make(regs::s2cr::TYPE_FAULT, regs::s2cr::TYPE_SHIFT, 2),
            tlb_entries: 64,
            tlb_seed: 401,
            sync_polls: 0,
            ats_polls: 0,
            global_irq: 0,
        }
    }

    /// Bytes of one register page.
    pub fn page_size(&self) -> u64 {
        regs::page_size(self.page_64k)
    }

    /// Pages of global space (= the page index of context bank 0).
    pub fn num_pages(&self) -> u64 {
        regs::num_pages(self.numpagendxb)
    }

    /// Size of the whole register window: `2 * numpage` pages.
    pub fn window_size(&self) -> u64 {
        2 * self.num_pages() * self.page_size()
    }

    /// Stream mapping groups: SMR/S2CR pairs when matching, one S2CR per stream ID when indexing.
    pub fn num_groups(&self) -> u32 {
        if self.stream_match {
            self.num_smrg
        } else {
            1 << self.num_sid_bits
        }
    }

    /// Mask of implemented stream ID bits.
    pub fn sid_mask(&self) -> u32 {
        ((1u64 << self.num_sid_bits) - 1) as u32
    }

    /// Check that the configuration describes buildable hardware.
    pub fn validate(&self) -> Result<(), Mmu500ConfigError> {
        if !self.stage1 && !self.stage2 {
            return Err(Mmu500ConfigError::NoTranslation);
        }
        if self.nested && !(self.stage1 && self.stage2) {
            return Err(Mmu500ConfigError::NestedWithoutBothStages);
        }
        if self.numpagendxb > 7 {
            return Err(Mmu500ConfigError::PageIndexBits(self.numpagendxb));
        }
        if self.num_cb == 0 || self.num_cb > 128 || u64::from(self.num_cb) > self.num_pages() {
            return Err(Mmu500ConfigError::ContextBanks(self.num_cb));
        }
        if self.num_s2cb > self.num_cb {
            return Err(Mmu500ConfigError::S2ContextBanks {
                s2: self.num_s2cb,
                cb: self.num_cb,
            });
        }
        if self.num_context_irqs == 0 || self.num_context_irqs > 255 {
            return Err(Mmu500ConfigError::ContextIrqs(self.num_context_irqs));
        }
        let max_sid_bits = if self.stream_match { 16 } else { 8 };
        if self.num_sid_bits == 0 || self.num_sid_bits > max_sid_bits {
            return Err(Mmu500ConfigError::StreamIdBits(self.num_sid_bits));
        }
        let groups = self.num_groups();
        // S2CRs occupy 0xc00.. of GR0 and must fit a 4 KiB page (the architected maximum is 128
        // groups for SMRs at 0x800..0xbff).
        if groups == 0 || groups > 256 || (self.stream_match && groups > 255) {
            return Err(Mmu500ConfigError::MappingGroups(groups));
        }
        if self.stream_match && groups > 256 {
            return Err(Mmu500ConfigError::MappingGroups(groups));
        }
        for bits in [self.ias, self.oas, self.ubs] {
            if regs::size_code_to_bits(regs::bits_to_size_code(bits)) != bits {
                return Err(Mmu500ConfigError::AddressSize(bits));
            }
        }
        if !(self.granule_4k || self.granule_16k || self.granule_64k || self.aarch32_l) {
            return Err(Mmu500ConfigError::NoFormat);
        }
        if self.tlb_entries == 0 || self.tlb_entries > 65536 {
            return Err(Mmu500ConfigError::TlbCapacity(self.tlb_entries));
        }
        Ok(())
    }

    /// ID0 as the hardware presents it.
    pub fn id0(&self) -> u32 {
        let mut v = regs::make(
            if self.stream_match { self.num_smrg } else { 0 },
            id0::NUMSMRG_SHIFT,
            id0::NUMSMRG_WIDTH,
        );
        v |= regs::make(self.num_sid_bits, id0::NUMSIDB_SHIFT, id0::NUMSIDB_WIDTH);
        v |= regs::make(
            self.num_context_irqs,
            id0::NUMIRPT_SHIFT,
            id0::NUMIRPT_WIDTH,
        );
        let flags = [
            (self.btm, id0::BTM),
            (self.coherent_walk, id0::CTTW),
            (!self.aarch32_s, id0::PTFS_NO_AARCH32S),
            (!self.aarch32_l && !self.aarch32_s, id0::PTFS_NO_AARCH32),
            (!self.atos, id0::ATOSNS),
            (self.stream_match, id0::SMS),
            (self.nested, id0::NTS),
            (self.stage2, id0::S2TS),
            (self.stage1, id0::S1TS),
            (self.ses, id0::SES),
        ];
        for (on, bit) in flags {
            if on {
                v |= bit;
            }
        }
        v
    }

    /// ID1 as the hardware presents it.
    pub fn id1(&self) -> u32 {
        let mut v = regs::make(self.num_cb, id1::NUMCB_SHIFT, id1::NUMCB_WIDTH);
        v |= regs::make(self.num_s2cb, id1::NUMS2CB_SHIFT, id1::NUMS2CB_WIDTH);
        v |= regs::make(
            self.numpagendxb,
            id1::NUMPAGENDXB_SHIFT,
            id1::NUMPAGENDXB_WIDTH,
        );
        if self.page_64k {
            v |= id1::PAGESIZE;
        }
        v
    }

    /// ID2 as the hardware presents it (v1 has only IAS and OAS).
    pub fn id2(&self) -> u32 {
        let mut v = regs::make(
            regs::bits_to_size_code(self.ias),
            id2::IAS_SHIFT,
            id2::SIZE_WIDTH,
        );
        v |= regs::make(
            regs::bits_to_size_code(self.oas),
            id2::OAS_SHIFT,
            id2::SIZE_WIDTH,
        );
        if self.version == ArchVersion::V2 {
            v |= regs::make(
                regs::bits_to_size_code(self.ubs),
                id2::UBS_SHIFT,
                id2::SIZE_WIDTH,
            );
            let flags = [
                (self.granule_4k, id2::PTFS_4K),
                (self.granule_16k, id2::PTFS_16K),
                (self.granule_64k, id2::PTFS_64K),
                (self.vmid16, id2::VMID16),
            ];
            for (on, bit) in flags {
                if on {
                    v |= bit;
                }
            }
        }
        v
    }

    /// ID7 (revision).
    pub fn id7(&self) -> u32 {
        regs::make(self.minor, id7::MINOR_SHIFT, id7::WIDTH)
            | regs::make(self.major, id7::MAJOR_SHIFT, id7::WIDTH)
    }

    /// What a driver can learn from the ID registers, decoded the way the architecture defines
    /// them. `version` and `v1_64k` come from firmware (the compatible string), as in Linux.
    pub fn decode_ids(version: ArchVersion, v1_64k: bool, ids: [u32; 4]) -> IdDecode {
        let [i0, i1, i2, i7] = ids;
        let f = regs::field;
        let stream_match = i0 & id0::SMS != 0;
        let num_sid_bits = f(i0, id0::NUMSIDB_SHIFT, id0::NUMSIDB_WIDTH);
        let v2 = version == ArchVersion::V2;
        let aarch32_l = !v2 || i0 & id0::PTFS_NO_AARCH32 == 0;
        IdDecode {
            version,
            stream_match,
            num_smrg: if stream_match {
                f(i0, id0::NUMSMRG_SHIFT, id0::NUMSMRG_WIDTH)
            } else {
                0
            },
            num_sid_bits,
            num_cb: f(i1, id1::NUMCB_SHIFT, id1::NUMCB_WIDTH),
            num_s2cb: f(i1, id1::NUMS2CB_SHIFT, id1::NUMS2CB_WIDTH),
            num_context_irqs: f(i0, id0::NUMIRPT_SHIFT, id0::NUMIRPT_WIDTH),
            stage1: i0 & id0::S1TS != 0,
            stage2: i0 & id0::S2TS != 0,
            nested: i0 & id0::NTS != 0,
            atos: i0 & id0::ATOSNS == 0,
            ias: regs::size_code_to_bits(f(i2, id2::IAS_SHIFT, id2::SIZE_WIDTH)),
            oas: regs::size_code_to_bits(f(i2, id2::OAS_SHIFT, id2::SIZE_WIDTH)),
            ubs: if v2 {
                regs::size_code_to_bits(f(i2, id2::UBS_SHIFT, id2::SIZE_WIDTH))
            } else {
                regs::size_code_to_bits(f(i2, id2::IAS_SHIFT, id2::SIZE_WIDTH))
            },
            granule_4k: if v2 { i2 & id2::PTFS_4K != 0 } else { true },
            granule_16k: v2 && i2 & id2::PTFS_16K != 0,
            granule_64k: if v2 { i2 & id2::PTFS_64K != 0 } else { v1_64k },
            aarch32_l,
            aarch32_s: aarch32_l && i0 & id0::PTFS_NO_AARCH32S == 0,
            coherent_walk: i0 & id0::CTTW != 0,
            vmid16: v2 && i2 & id2::VMID16 != 0,
            page_64k: i1 & id1::PAGESIZE != 0,
            numpagendxb: f(i1, id1::NUMPAGENDXB_SHIFT, id1::NUMPAGENDXB_WIDTH),
            major: f(i7, id7::MAJOR_SHIFT, id7::WIDTH),
            minor: f(i7, id7::MINOR_SHIFT, id7::WIDTH),
        }
    }

    /// The subset of this configuration that the ID registers carry (for round-trip checks).
    pub fn id_view(&self) -> IdDecode {
        IdDecode {
            version: self.version,
            stream_match: self.stream_match,
            num_smrg: if self.stream_match { self.num_smrg } else { 0 },
            num_sid_bits: self.num_sid_bits,
            num_cb: self.num_cb,
            num_s2cb: self.num_s2cb,
            num_context_irqs: self.num_context_irqs,
            stage1: self.stage1,
            stage2: self.stage2,
            nested: self.nested,
            atos: self.atos,
            ias: self.ias,
            oas: self.oas,
            ubs: if self.version == ArchVersion::V2 {
                self.ubs
            } else {
                self.ias
            },
            granule_4k: self.granule_4k || self.version == ArchVersion::V1,
            granule_16k: self.granule_16k && self.version == ArchVersion::V2,
            granule_64k: self.granule_64k,
            aarch32_l: self.aarch32_l || self.aarch32_s || self.version == ArchVersion::V1,
            aarch32_s: self.aarch32_s,
            coherent_walk: self.coherent_walk,
            vmid16: self.vmid16 && self.version == ArchVersion::V2,
            page_64k: self.page_64k,
            numpagendxb: self.numpagendxb,
            major: self.major,
            minor: self.minor,
        }
    }
}

/// The configuration as recovered from ID0, ID1, ID2 and ID7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdDecode {
    pub version: ArchVersion,
    pub stream_match: bool,
    pub num_smrg: u32,
    pub num_sid_bits: u32,
    pub num_cb: u32,
    pub num_s2cb: u32,
    pub num_context_irqs: u32,
    pub stage1: bool,
    pub stage2: bool,
    pub nested: bool,
    pub atos: bool,
    pub ias: u32,
    pub oas: u32,
    pub ubs: u32,
    pub granule_4k: bool,
    pub granule_16k: bool,
    pub granule_64k: bool,
    pub aarch32_l: bool,
    pub aarch32_s: bool,
    pub coherent_walk: bool,
    pub vmid16: bool,
    pub page_64k: bool,
    pub numpagendxb: u32,
    pub major: u32,
    pub minor: u32,
}
