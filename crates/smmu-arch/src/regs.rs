//! SMMUv2 register offsets and fields (see `shared/reference/arm-smmu-v2.md` §2).
//!
//! Layout: page 0 is GR0, page 1 is GR1, context bank *n* is page `numpage + n`, where a page is
//! 4 KiB or 64 KiB (ID1.PAGESIZE) and `numpage = 2^(ID1.NUMPAGENDXB + 1)`.

/// Extract `width` bits at `shift`.
#[inline]
pub const fn field(value: u32, shift: u32, width: u32) -> u32 {
    (value >> shift) & ((1u32 << width) - 1)
}

/// Place `value` into `width` bits at `shift`.
#[inline]
pub const fn make(value: u32, shift: u32, width: u32) -> u32 {
    (value & ((1u32 << width) - 1)) << shift
}

/// Global register space 0 (page 0).
pub mod gr0 {
    pub const SCR0: u64 = 0x000;
    pub const SACR: u64 = 0x010;
    pub const ID0: u64 = 0x020;
    pub const ID1: u64 = 0x024;
    pub const ID2: u64 = 0x028;
    pub const ID3: u64 = 0x02c;
    pub const ID4: u64 = 0x030;
    pub const ID5: u64 = 0x034;
    pub const ID6: u64 = 0x038;
    pub const ID7: u64 = 0x03c;
    /// sGFAR (64-bit): input address of the transaction that caused the recorded global fault.
    pub const SGFAR: u64 = 0x040;
    pub const SGFSR: u64 = 0x048;
    pub const SGFSRRESTORE: u64 = 0x04c;
    pub const SGFSYNR0: u64 = 0x050;
    pub const SGFSYNR1: u64 = 0x054;
    pub const SGFSYNR2: u64 = 0x058;
    pub const TLBIVMID: u64 = 0x064;
    pub const TLBIALLNSNH: u64 = 0x068;
    pub const TLBIALLH: u64 = 0x06c;
    pub const STLBGSYNC: u64 = 0x070;
    pub const STLBGSTATUS: u64 = 0x074;
    /// SMR(n) at `SMR + 4n`.
    pub const SMR: u64 = 0x800;
    /// S2CR(n) at `S2CR + 4n`.
    pub const S2CR: u64 = 0xc00;

    pub fn smr(n: u32) -> u64 {
        SMR + 4 * n as u64
    }
    pub fn s2cr(n: u32) -> u64 {
        S2CR + 4 * n as u64
    }
}

/// sCR0 bits.
pub mod scr0 {
    pub const CLIENTPD: u32 = 1 << 0;
    pub const GFRE: u32 = 1 << 1;
    pub const GFIE: u32 = 1 << 2;
    pub const EXIDENABLE: u32 = 1 << 3;
    pub const GCFGFRE: u32 = 1 << 4;
    pub const GCFGFIE: u32 = 1 << 5;
    pub const USFCFG: u32 = 1 << 10;
    pub const VMIDPNE: u32 = 1 << 11;
    pub const PTM: u32 = 1 << 12;
    pub const FB: u32 = 1 << 13;
    pub const BSU_SHIFT: u32 = 14;
    pub const BSU_MASK: u32 = 3 << BSU_SHIFT;
    /// MMU-500: stream match conflict fault configuration.
    pub const SMCFCFG: u32 = 1 << 21;
    pub const VMID16EN: u32 = 1 << 31;
}

/// ID0 fields.
pub mod id0 {
    pub const NUMSMRG_SHIFT: u32 = 0;
    pub const NUMSMRG_WIDTH: u32 = 8;
    pub const EXIDS: u32 = 1 << 8;
    pub const NUMSIDB_SHIFT: u32 = 9;
    pub const NUMSIDB_WIDTH: u32 = 4;
    pub const BTM: u32 = 1 << 13;
    pub const CTTW: u32 = 1 << 14;
    pub const NUMIRPT_SHIFT: u32 = 16;
    pub const NUMIRPT_WIDTH: u32 = 8;
    pub const PTFS_NO_AARCH32S: u32 = 1 << 24;
    pub const PTFS_NO_AARCH32: u32 = 1 << 25;
    pub const ATOSNS: u32 = 1 << 26;
    pub const SMS: u32 = 1 << 27;
    pub const NTS: u32 = 1 << 28;
    pub const S2TS: u32 = 1 << 29;
    pub const S1TS: u32 = 1 << 30;
    pub const SES: u32 = 1 << 31;
}

/// ID1 fields.
pub mod id1 {
    pub const NUMCB_SHIFT: u32 = 0;
    pub const NUMCB_WIDTH: u32 = 8;
    pub const NUMS2CB_SHIFT: u32 = 16;
    pub const NUMS2CB_WIDTH: u32 = 8;
    pub const NUMPAGENDXB_SHIFT: u32 = 28;
    pub const NUMPAGENDXB_WIDTH: u32 = 3;
    pub const PAGESIZE: u32 = 1 << 31;
}

/// ID2 fields. Size codes: 0→32, 1→36, 2→40, 3→42, 4→44, 5→48 bits.
pub mod id2 {
    pub const IAS_SHIFT: u32 = 0;
    pub const OAS_SHIFT: u32 = 4;
    pub const UBS_SHIFT: u32 = 8;
    pub const SIZE_WIDTH: u32 = 4;
    pub const PTFS_4K: u32 = 1 << 12;
    pub const PTFS_16K: u32 = 1 << 13;
    pub const PTFS_64K: u32 = 1 << 14;
    pub const VMID16: u32 = 1 << 15;
}

/// ID7 fields.
pub mod id7 {
    pub const MINOR_SHIFT: u32 = 0;
    pub const MAJOR_SHIFT: u32 = 4;
    pub const WIDTH: u32 = 4;
}

/// The address-size code of ID2 and TCR2.PASIZE / VTCR.PS, in bits.
pub const fn size_code_to_bits(code: u32) -> u32 {
    match code {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        _ => 48,
    }
}

/// Inverse of [`size_code_to_bits`]; sizes between codes round up, beyond 48 give 5.
pub const fn bits_to_size_code(bits: u32) -> u32 {
    match bits {
        0..=32 => 0,
        33..=36 => 1,
        37..=40 => 2,
        41..=42 => 3,
        43..=44 => 4,
        _ => 5,
    }
}

/// sGFSR bits (also the layout of a context bank's FSR for the shared bits).
pub mod gfsr {
    pub const ICF: u32 = 1 << 0;
    pub const USF: u32 = 1 << 1;
    pub const SMCF: u32 = 1 << 2;
    pub const UCBF: u32 = 1 << 3;
    pub const UCIF: u32 = 1 << 4;
    pub const CAF: u32 = 1 << 5;
    pub const EF: u32 = 1 << 6;
    pub const PF: u32 = 1 << 7;
    pub const UUT: u32 = 1 << 8;
    pub const MULTI: u32 = 1 << 31;
    /// Every architected bit.
    pub const ALL: u32 = ICF | USF | SMCF | UCBF | UCIF | CAF | EF | PF | UUT | MULTI;
}

/// sGFSYNR0 bits.
pub mod gfsynr0 {
    pub const NESTED: u32 = 1 << 0;
    pub const WNR: u32 = 1 << 1;
    pub const PNU: u32 = 1 << 2;
    pub const IND: u32 = 1 << 3;
    pub const NSSTATE: u32 = 1 << 4;
    pub const NSATTR: u32 = 1 << 5;
}

/// SMR fields.
pub mod smr {
    pub const ID_SHIFT: u32 = 0;
    pub const ID_WIDTH: u32 = 16;
    pub const MASK_SHIFT: u32 = 16;
    pub const MASK_WIDTH: u32 = 16;
    pub const VALID: u32 = 1 << 31;
}

/// sGFSYNR1 fields.
pub mod gfsynr1 {
    /// The stream ID of the transaction that faulted.
    pub const STREAMID_SHIFT: u32 = 0;
    pub const STREAMID_WIDTH: u32 = 16;
}

/// CBFRSYNRA fields.
pub mod cbfrsynra {
    /// The stream ID of the transaction that faulted in the bank.
    pub const SID_SHIFT: u32 = 0;
    pub const SID_WIDTH: u32 = 16;
}

/// S2CR fields.
pub mod s2cr {
    pub const CBNDX_SHIFT: u32 = 0;
    pub const CBNDX_WIDTH: u32 = 8;
    pub const EXIDVALID: u32 = 1 << 10;
    pub const TYPE_SHIFT: u32 = 16;
    pub const TYPE_WIDTH: u32 = 2;
    pub const PRIVCFG_SHIFT: u32 = 24;
    pub const PRIVCFG_WIDTH: u32 = 2;

    pub const TYPE_TRANS: u32 = 0;
    pub const TYPE_BYPASS: u32 = 1;
    pub const TYPE_FAULT: u32 = 2;

    pub const PRIVCFG_DEFAULT: u32 = 0;
    pub const PRIVCFG_DIPAN: u32 = 1;
    pub const PRIVCFG_UNPRIV: u32 = 2;
    pub const PRIVCFG_PRIV: u32 = 3;
}

/// Global register space 1 (page 1).
pub mod gr1 {
    /// CBAR(n) at `CBAR + 4n`.
    pub const CBAR: u64 = 0x000;
    /// CBFRSYNRA(n) at `CBFRSYNRA + 4n`.
    pub const CBFRSYNRA: u64 = 0x400;
    /// CBA2R(n) at `CBA2R + 4n`.
    pub const CBA2R: u64 = 0x800;

    pub fn cbar(n: u32) -> u64 {
        CBAR + 4 * n as u64
    }
    pub fn cbfrsynra(n: u32) -> u64 {
        CBFRSYNRA + 4 * n as u64
    }
    pub fn cba2r(n: u32) -> u64 {
        CBA2R + 4 * n as u64
    }
}

/// CBAR fields.
pub mod cbar {
    pub const VMID_SHIFT: u32 = 0;
    pub const VMID_WIDTH: u32 = 8;
    pub const S1_BPSHCFG_SHIFT: u32 = 8;
    pub const S1_BPSHCFG_WIDTH: u32 = 2;
    pub const S1_BPSHCFG_NSH: u32 = 3;
    pub const S1_MEMATTR_SHIFT: u32 = 12;
    pub const S1_MEMATTR_WIDTH: u32 = 4;
    pub const S1_MEMATTR_WB: u32 = 0xf;
    pub const TYPE_SHIFT: u32 = 16;
    pub const TYPE_WIDTH: u32 = 2;
    pub const IRPTNDX_SHIFT: u32 = 24;
    pub const IRPTNDX_WIDTH: u32 = 8;

    pub const TYPE_S2_TRANS: u32 = 0;
    pub const TYPE_S1_TRANS_S2_BYPASS: u32 = 1;
    pub const TYPE_S1_TRANS_S2_FAULT: u32 = 2;
    pub const TYPE_S1_TRANS_S2_TRANS: u32 = 3;
}

/// CBA2R fields.
pub mod cba2r {
    pub const VA64: u32 = 1 << 0;
    /// MONC (monitor context): an architected bit Linux never writes; the model keeps it
    /// writable as the register defines it.
    pub const MONC: u32 = 1 << 1;
    pub const VMID16_SHIFT: u32 = 16;
    pub const VMID16_WIDTH: u32 = 16;
}

/// Context-bank registers (offsets within the bank's page).
pub mod cb {
    pub const SCTLR: u64 = 0x000;
    pub const ACTLR: u64 = 0x004;
    pub const RESUME: u64 = 0x008;
    pub const TCR2: u64 = 0x010;
    pub const TTBR0: u64 = 0x020;
    pub const TTBR1: u64 = 0x028;
    /// TCR for stage 1, VTCR for stage 2.
    pub const TCR: u64 = 0x030;
    pub const CONTEXTIDR: u64 = 0x034;
    pub const S1_MAIR0: u64 = 0x038;
    pub const S1_MAIR1: u64 = 0x03c;
    pub const PAR: u64 = 0x050;
    pub const FSR: u64 = 0x058;
    pub const FSRRESTORE: u64 = 0x05c;
    pub const FAR: u64 = 0x060;
    pub const FSYNR0: u64 = 0x068;
    pub const FSYNR1: u64 = 0x06c;
    pub const S1_TLBIVA: u64 = 0x600;
    pub const S1_TLBIVAA: u64 = 0x608;
    pub const S1_TLBIASID: u64 = 0x610;
    pub const S1_TLBIALL: u64 = 0x618;
    pub const S1_TLBIVAL: u64 = 0x620;
    pub const S1_TLBIVAAL: u64 = 0x628;
    pub const S2_TLBIIPAS2: u64 = 0x630;
    pub const S2_TLBIIPAS2L: u64 = 0x638;
    pub const TLBSYNC: u64 = 0x7f0;
    pub const TLBSTATUS: u64 = 0x7f4;
    pub const ATS1PR: u64 = 0x800;
    pub const ATS1PW: u64 = 0x808;
    pub const ATSR: u64 = 0x8f0;

    // The high words of the 64-bit registers, for 32-bit accesses ([`super::HIGH_WORD`] above
    // the register's offset).
    pub const TTBR0_HI: u64 = TTBR0 + super::HIGH_WORD;
    pub const TTBR1_HI: u64 = TTBR1 + super::HIGH_WORD;
    pub const PAR_HI: u64 = PAR + super::HIGH_WORD;
    pub const FAR_HI: u64 = FAR + super::HIGH_WORD;
    pub const S1_TLBIVA_HI: u64 = S1_TLBIVA + super::HIGH_WORD;
    pub const S1_TLBIVAA_HI: u64 = S1_TLBIVAA + super::HIGH_WORD;
    pub const S1_TLBIVAL_HI: u64 = S1_TLBIVAL + super::HIGH_WORD;
    pub const S1_TLBIVAAL_HI: u64 = S1_TLBIVAAL + super::HIGH_WORD;
    pub const S2_TLBIIPAS2_HI: u64 = S2_TLBIIPAS2 + super::HIGH_WORD;
    pub const S2_TLBIIPAS2L_HI: u64 = S2_TLBIIPAS2L + super::HIGH_WORD;
    pub const ATS1PR_HI: u64 = ATS1PR + super::HIGH_WORD;
    pub const ATS1PW_HI: u64 = ATS1PW + super::HIGH_WORD;
}

/// A 64-bit register's high word is 4 bytes above it (the registers are little-endian and a
/// 32-bit access reaches one half).
pub const HIGH_WORD: u64 = 4;

/// Operands of the context bank's invalidate-by-address registers (TLBIVA, TLBIVAL, TLBIVAA,
/// TLBIVAAL, TLBIIPAS2, TLBIIPAS2L).
pub mod tlbi {
    /// 64-bit (AArch64) form: the address's page number, address >> 12, from bit 0.
    pub const ADDR_SHIFT: u32 = 12;
    /// 64-bit form of TLBIVA*: VA[55:12], 44 bits.
    pub const VA_MASK: u64 = (1 << 44) - 1;
    /// 64-bit form of TLBIIPAS2*: IPA[47:12], 36 bits.
    pub const IPA_MASK: u64 = (1 << 36) - 1;
    /// 64-bit form: the ASID in bits [63:48].
    pub const ASID_SHIFT: u32 = 48;
    /// 32-bit (AArch32) form: VA[31:12] in place, the ASID in bits [7:0].
    pub const AARCH32_VA_MASK: u64 = 0xffff_f000;
}

/// Without TCR2.AS an ASID is 8 bits: TTBR's ASID field, the TLBI operands and TLBIASID's value
/// are truncated to this.
pub const ASID8_MASK: u16 = 0xff;
/// Without sCR0.VMID16EN a VMID is 8 bits (CBAR.VMID's width): TLBIVMID's value is truncated
/// to this.
pub const VMID8_MASK: u16 = (1 << cbar::VMID_WIDTH) - 1;

/// Context-bank SCTLR bits.
pub mod sctlr {
    pub const M: u32 = 1 << 0;
    pub const TRE: u32 = 1 << 1;
    pub const AFE: u32 = 1 << 2;
    pub const AFFD: u32 = 1 << 3;
    pub const E: u32 = 1 << 4;
    pub const CFRE: u32 = 1 << 5;
    pub const CFIE: u32 = 1 << 6;
    pub const CFCFG: u32 = 1 << 7;
    pub const HUPCF: u32 = 1 << 8;
    pub const S1_ASIDPNE: u32 = 1 << 12;
}

/// RESUME bits.
pub mod resume {
    pub const TERMINATE: u32 = 1 << 0;
}

/// TCR2 fields.
pub mod tcr2 {
    pub const PASIZE_SHIFT: u32 = 0;
    pub const PASIZE_WIDTH: u32 = 4;
    pub const AS: u32 = 1 << 4;
    pub const SEP_SHIFT: u32 = 15;
    pub const SEP_WIDTH: u32 = 3;
    pub const SEP_UPSTREAM: u32 = 7;
}

/// Stage-1 TCR (AArch64 layout, low 32 bits as the SMMU holds them).
pub mod tcr {
    pub const T0SZ_SHIFT: u32 = 0;
    pub const T0SZ_WIDTH: u32 = 6;
    pub const EPD0: u32 = 1 << 7;
    pub const IRGN0_SHIFT: u32 = 8;
    pub const ORGN0_SHIFT: u32 = 10;
    pub const SH0_SHIFT: u32 = 12;
    pub const TG0_SHIFT: u32 = 14;
    pub const T1SZ_SHIFT: u32 = 16;
    pub const A1: u32 = 1 << 22;
    pub const EPD1: u32 = 1 << 23;
    pub const IRGN1_SHIFT: u32 = 24;
    pub const ORGN1_SHIFT: u32 = 26;
    pub const SH1_SHIFT: u32 = 28;
    pub const TG1_SHIFT: u32 = 30;
    pub const EAE: u32 = 1 << 31;

    /// TG0 codes.
    pub const TG0_4K: u32 = 0;
    pub const TG0_64K: u32 = 1;
    pub const TG0_16K: u32 = 2;
    /// TG1 codes (a different encoding from TG0).
    pub const TG1_16K: u32 = 1;
    pub const TG1_4K: u32 = 2;
    pub const TG1_64K: u32 = 3;
}

/// Stage-2 VTCR fields (same offset as TCR).
pub mod vtcr {
    pub const T0SZ_SHIFT: u32 = 0;
    pub const T0SZ_WIDTH: u32 = 6;
    pub const SL0_SHIFT: u32 = 6;
    pub const SL0_WIDTH: u32 = 2;
    pub const IRGN0_SHIFT: u32 = 8;
    pub const ORGN0_SHIFT: u32 = 10;
    pub const SH0_SHIFT: u32 = 12;
    pub const TG0_SHIFT: u32 = 14;
    pub const PS_SHIFT: u32 = 16;
    pub const PS_WIDTH: u32 = 3;
    pub const RES1: u32 = 1 << 31;
    /// AArch32 VTCR: T0SZ is a signed 4-bit field at bit 0.
    pub const AARCH32_T0SZ_WIDTH: u32 = 4;
}

/// TTBR fields (stage 1: ASID in the top 16 bits).
pub mod ttbr {
    pub const ASID_SHIFT: u32 = 48;
    /// AArch32 long-descriptor: the table base is a 40-bit address, bits [39:0].
    pub const AARCH32_BADDR_MASK: u64 = (1 << 40) - 1;
}

/// AArch32 long-descriptor stage-1 TTBCR (the TCR offset when CBA2R.VA64 is clear): 3-bit
/// T0SZ and T1SZ, EPD0/EPD1 where the AArch64 TCR has them.
pub mod ttbcr {
    pub const T0SZ_SHIFT: u32 = 0;
    pub const T1SZ_SHIFT: u32 = 16;
    pub const TSZ_WIDTH: u32 = 3;
}

/// Context-bank FSR bits (W1C).
pub mod fsr {
    pub const TF: u32 = 1 << 1;
    pub const AFF: u32 = 1 << 2;
    pub const PF: u32 = 1 << 3;
    pub const EF: u32 = 1 << 4;
    pub const TLBMCF: u32 = 1 << 5;
    pub const TLBLKF: u32 = 1 << 6;
    pub const ASF: u32 = 1 << 7;
    pub const UUT: u32 = 1 << 8;
    pub const FORMAT_SHIFT: u32 = 9;
    pub const FORMAT_WIDTH: u32 = 2;
    pub const SS: u32 = 1 << 30;
    pub const MULTI: u32 = 1 << 31;
    /// Faults Linux ignores for reporting purposes but still clears.
    pub const IGN: u32 = AFF | ASF | TLBMCF | TLBLKF;
    /// Every fault bit Linux clears: 0xC00001FE.
    pub const FAULT: u32 = MULTI | SS | UUT | EF | PF | TF | IGN;
}

/// Context-bank FSYNR0 fields.
pub mod fsynr0 {
    pub const PLVL_SHIFT: u32 = 0;
    pub const PLVL_WIDTH: u32 = 2;
    pub const WNR: u32 = 1 << 4;
    pub const PNU: u32 = 1 << 5;
    pub const IND: u32 = 1 << 6;
    pub const NSATTR: u32 = 1 << 8;
    pub const PTWF: u32 = 1 << 10;
    pub const AFR: u32 = 1 << 11;
    pub const S1CBNDX_SHIFT: u32 = 16;
    pub const S1CBNDX_WIDTH: u32 = 8;
}

/// PAR (64-bit) fields.
pub mod par {
    pub const F: u64 = 1 << 0;
    /// Output address bits for a successful translation.
    pub const PA_MASK: u64 = 0x0000_ffff_ffff_f000;
    /// PA[39:12]: the output address as the reference's register map gives it and as Linux's
    /// `iova_to_phys` reads it back (reference §2, §8).
    pub const LINUX_PA_MASK: u64 = 0x0000_00ff_ffff_f000;
    /// A successful translation: the shareability of the leaf (its SH field), bits [8:7].
    pub const SH_SHIFT: u32 = 7;
    pub const SH_WIDTH: u32 = 2;
    /// A successful translation: the memory attributes (the MAIR byte the leaf selects),
    /// bits [63:56].
    pub const ATTR_SHIFT: u32 = 56;
    pub const ATTR_WIDTH: u32 = 8;
    /// A fault (F set): the fault status code (VMSAv8-64 FST encoding, [`fst`]), bits [6:1].
    pub const FST_SHIFT: u32 = 1;
    pub const FST_WIDTH: u32 = 6;
    /// A fault: it happened on a stage-2 walk of a stage-1 table (PTW).
    pub const PTW: u64 = 1 << 8;
    /// A fault: the stage that faulted was stage 2 (S).
    pub const S: u64 = 1 << 9;

    /// The PAR of a successful translation: output address `pa` (its page, [`PA_MASK`]),
    /// the leaf's shareability `sh` and the MAIR attribute byte `attr`.
    pub const fn success(pa: u64, sh: u64, attr: u8) -> u64 {
        (pa & PA_MASK) | ((sh & ((1 << SH_WIDTH) - 1)) << SH_SHIFT) | ((attr as u64) << ATTR_SHIFT)
    }

    /// The PAR of a failed translation: F, the fault status code `fst`, and the PTW and S
    /// flags.
    pub const fn fault(fst: u64, ptw: bool, stage2: bool) -> u64 {
        let mut v = F | ((fst & ((1 << FST_WIDTH) - 1)) << FST_SHIFT);
        if ptw {
            v |= PTW;
        }
        if stage2 {
            v |= S;
        }
        v
    }

    /// Fault status codes (VMSAv8-64 FST/DFSC): each kind's code for level 0; the lookup
    /// level (0–3) is added in bits [1:0].
    pub mod fst {
        pub const ADDRESS_SIZE: u64 = 0x00;
        pub const TRANSLATION: u64 = 0x04;
        pub const ACCESS_FLAG: u64 = 0x08;
        pub const PERMISSION: u64 = 0x0c;
        /// Synchronous external abort on a translation table walk.
        pub const EXTERNAL_WALK: u64 = 0x14;
        /// Bits [1:0] of a code: the lookup level.
        pub const LEVEL_MASK: u64 = 0x3;
    }
}

/// The operand of a context bank's address translation operations ATS1PR / ATS1PW: the
/// address to translate, with the page-offset bits ignored.
pub mod ats1 {
    /// AArch64 context (a 64-bit write): VA[63:12] in place.
    pub const VA_MASK: u64 = !0xfff;
    /// AArch32 context (a 32-bit write): VA[31:12] in place.
    pub const AARCH32_VA_MASK: u64 = 0xffff_f000;

    /// The address an ATS1* operand `v` asks to translate, in an AArch64 context or not.
    pub const fn va(v: u64, aarch64: bool) -> u64 {
        if aarch64 {
            v & VA_MASK
        } else {
            v & AARCH32_VA_MASK
        }
    }
}

/// The stage-1 memory attribute indirection register, MAIR0 (attributes 0–3) and MAIR1
/// (attributes 4–7): one attribute byte per value of a leaf's AttrIndx.
pub mod mair {
    /// Bits per attribute.
    pub const ATTR_BITS: u32 = 8;

    /// The 64-bit MAIR from its two 32-bit registers.
    pub const fn value(mair0: u32, mair1: u32) -> u64 {
        (mair0 as u64) | ((mair1 as u64) << 32)
    }

    /// The attribute byte that AttrIndx `idx` selects (AttrIndx is 3 bits: taken modulo 8).
    pub const fn attr(mair: u64, idx: u64) -> u8 {
        (mair >> (ATTR_BITS as u64 * (idx & 7))) as u8
    }
}

/// ATSR bits.
pub mod atsr {
    pub const ACTIVE: u32 = 1 << 0;
}

/// TLBSTATUS / sTLBGSTATUS bits.
pub mod tlbstatus {
    pub const SACTIVE: u32 = 1 << 0;
}

/// The value Linux writes for "don't care" register writes.
pub const DUMMY_VAL: u32 = 0xffff_ffff;

/// Bytes of one register page for the given ID1.PAGESIZE bit.
pub const fn page_size(pagesize_64k: bool) -> u64 {
    if pagesize_64k {
        0x1_0000
    } else {
        0x1000
    }
}

/// Number of global pages (= offset in pages of context bank 0) for ID1.NUMPAGENDXB.
pub const fn num_pages(numpagendxb: u32) -> u64 {
    1 << (numpagendxb + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_masks_match_linux() {
        assert_eq!(fsr::FAULT, 0xC000_01FE);
        assert_eq!(gfsr::MULTI | gfsr::USF, 0x8000_0002);
    }

    #[test]
    fn reset_sequence_worked_value() {
        // reference §6: from reset sCR0 0x00200001 with disable_bypass=1 Linux writes 0x00201c36.
        let mut v = 0x0020_0001u32;
        v |= scr0::GFRE | scr0::GFIE | scr0::GCFGFRE | scr0::GCFGFIE;
        v |= scr0::VMIDPNE | scr0::PTM;
        v &= !scr0::CLIENTPD;
        v |= scr0::USFCFG;
        v &= !(scr0::FB | scr0::BSU_MASK);
        assert_eq!(v, 0x0020_1c36);
        assert_eq!(v & !scr0::USFCFG, 0x0020_1836);
    }

    #[test]
    fn field_helpers_and_size_codes() {
        assert_eq!(
            field(0xfc01_3e30, id0::NUMSMRG_SHIFT, id0::NUMSMRG_WIDTH),
            48
        );
        assert_eq!(
            field(0xfc01_3e30, id0::NUMSIDB_SHIFT, id0::NUMSIDB_WIDTH),
            15
        );
        assert_eq!(make(2, s2cr::TYPE_SHIFT, s2cr::TYPE_WIDTH), 0x2_0000);
        for code in 0..6 {
            assert_eq!(bits_to_size_code(size_code_to_bits(code)), code);
        }
        assert_eq!(size_code_to_bits(7), 48);
        // LS1028A layout: 64 KiB pages, NUMPAGENDXB 5 → 64 global pages, 8 MiB in all.
        assert_eq!(page_size(true) * num_pages(5) * 2, 0x80_0000);
    }

    #[test]
    fn offsets_match_reference() {
        // reference §9.2: an AArch64 TLBIVA is (iova >> 12) | (asid << 48).
        let v = (0x12_3000u64 >> tlbi::ADDR_SHIFT) | (5 << tlbi::ASID_SHIFT);
        assert_eq!(v, 0x0005_0000_0000_0123);
        assert_eq!(
            (tlbi::VA_MASK, tlbi::IPA_MASK),
            (0xfff_ffff_ffff, 0xf_ffff_ffff)
        );
        assert_eq!(gr0::smr(3), 0x80c);
        assert_eq!(gr0::s2cr(47), 0xcbc);
        assert_eq!(gr1::cba2r(1), 0x804);
        assert_eq!(gr1::cbfrsynra(2), 0x408);
        assert_eq!(cb::ATSR, 0x8f0);
        assert_eq!(cb::TLBSTATUS, 0x7f4);
        // High words of the 64-bit context-bank registers.
        assert_eq!(
            [cb::TTBR0_HI, cb::TTBR1_HI, cb::PAR_HI, cb::FAR_HI],
            [0x024, 0x02c, 0x054, 0x064]
        );
        assert_eq!(
            [
                cb::S1_TLBIVA_HI,
                cb::S1_TLBIVAA_HI,
                cb::S1_TLBIVAL_HI,
                cb::S1_TLBIVAAL_HI,
                cb::S2_TLBIIPAS2_HI,
                cb::S2_TLBIIPAS2L_HI,
                cb::ATS1PR_HI,
                cb::ATS1PW_HI
            ],
            [0x604, 0x60c, 0x624, 0x62c, 0x634, 0x63c, 0x804, 0x80c]
        );
        // reference §2: CBA2R VMID16 is 31:16, CBAR VMID 7:0; PAR's PA is 39:12.
        assert_eq!(
            make(u32::MAX, cba2r::VMID16_SHIFT, cba2r::VMID16_WIDTH),
            0xffff_0000
        );
        assert_eq!(VMID8_MASK, 0xff);
        assert_eq!(par::LINUX_PA_MASK, ((1u64 << 40) - 1) & !0xfff);
    }

    #[test]
    fn par_ats1_and_mair_fields_pinned() {
        // io-pgtable's MAIR (0xf404ff44 in MAIR0, MAIR1 zero): attribute bytes by AttrIndx.
        let m = mair::value(0xf404_ff44, 0);
        assert_eq!(m, 0xf404_ff44);
        let bytes: Vec<u8> = (0..8).map(|i| mair::attr(m, i)).collect();
        assert_eq!(bytes, [0x44, 0xff, 0x04, 0xf4, 0, 0, 0, 0]);
        assert_eq!(mair::attr(0x1122_3344_5566_7788, 7), 0x11);
        assert_eq!(
            mair::attr(0x1122_3344_5566_7788, 9),
            0x77,
            "AttrIndx is 3 bits"
        );
        assert_eq!(mair::value(0, 0xaabb_ccdd), 0xaabb_ccdd_0000_0000);
        // A successful ATS1PR: page address, inner shareable (SH 3) at [8:7], WBRWA at [63:56].
        assert_eq!(par::success(0x8080_1234, 3, 0xff), 0xff00_0000_8080_1180);
        assert_eq!(par::success(u64::MAX, 7, 0), 0x0000_ffff_ffff_f180);
        // Faults: translation at level 3 is FST 0x7; permission at level 3 on stage 2 with PTW.
        assert_eq!(par::fault(par::fst::TRANSLATION | 3, false, false), 0xf);
        assert_eq!(par::fault(par::fst::PERMISSION | 3, true, true), 0x31f);
        assert_eq!(par::fault(par::fst::EXTERNAL_WALK | 1, false, false), 0x2b);
        assert_eq!(par::fault(0xff, false, false), 0x7f, "FST is 6 bits");
        // ATS1 operands: the page-offset bits are ignored; AArch32 keeps VA[31:12].
        assert_eq!(ats1::va(0xffff_8000_1234_5fff, true), 0xffff_8000_1234_5000);
        assert_eq!(ats1::va(0xffff_8000_1234_5fff, false), 0x1234_5000);
    }
}
