//! Register map of an SMMUv3's Non-secure programming interface (IHI 0070, chapter 6).
//!
//! Offsets are bytes from the SMMU base. Page 0 holds the ID, control and base registers; page 1
//! (base + 64 KiB) holds the event and PRI queue PROD/CONS, so a driver can map them apart. Linux
//! requires a 128 KiB window ([`WINDOW_SIZE`]).

/// Size of one register page.
pub const PAGE_SIZE: u64 = 0x1_0000;
/// The register window a driver maps (pages 0 and 1).
pub const WINDOW_SIZE: u64 = 2 * PAGE_SIZE;

pub const IDR0: u64 = 0x00;
pub const IDR1: u64 = 0x04;
pub const IDR2: u64 = 0x08;
pub const IDR3: u64 = 0x0c;
pub const IDR4: u64 = 0x10;
pub const IDR5: u64 = 0x14;
pub const IIDR: u64 = 0x18;
pub const AIDR: u64 = 0x1c;
pub const CR0: u64 = 0x20;
pub const CR0ACK: u64 = 0x24;
pub const CR1: u64 = 0x28;
pub const CR2: u64 = 0x2c;
pub const STATUSR: u64 = 0x40;
pub const GBPA: u64 = 0x44;
pub const AGBPA: u64 = 0x48;
pub const IRQ_CTRL: u64 = 0x50;
pub const IRQ_CTRLACK: u64 = 0x54;
pub const GERROR: u64 = 0x60;
pub const GERRORN: u64 = 0x64;
/// 64-bit: MSI address for GERROR.
pub const GERROR_IRQ_CFG0: u64 = 0x68;
pub const GERROR_IRQ_CFG1: u64 = 0x70;
pub const GERROR_IRQ_CFG2: u64 = 0x74;
/// 64-bit.
pub const STRTAB_BASE: u64 = 0x80;
pub const STRTAB_BASE_CFG: u64 = 0x88;
/// 64-bit.
pub const CMDQ_BASE: u64 = 0x90;
pub const CMDQ_PROD: u64 = 0x98;
pub const CMDQ_CONS: u64 = 0x9c;
/// 64-bit.
pub const EVTQ_BASE: u64 = 0xa0;
/// 64-bit.
pub const EVTQ_IRQ_CFG0: u64 = 0xb0;
pub const EVTQ_IRQ_CFG1: u64 = 0xb8;
pub const EVTQ_IRQ_CFG2: u64 = 0xbc;
/// 64-bit.
pub const PRIQ_BASE: u64 = 0xc0;
/// 64-bit.
pub const PRIQ_IRQ_CFG0: u64 = 0xd0;
pub const PRIQ_IRQ_CFG1: u64 = 0xd8;
pub const PRIQ_IRQ_CFG2: u64 = 0xdc;
/// Page 1: event queue producer index (written by the SMMU).
pub const EVTQ_PROD: u64 = PAGE_SIZE + 0xa8;
/// Page 1: event queue consumer index (written by software).
pub const EVTQ_CONS: u64 = PAGE_SIZE + 0xac;
/// Page 1: PRI queue producer index.
pub const PRIQ_PROD: u64 = PAGE_SIZE + 0xc8;
/// Page 1: PRI queue consumer index.
pub const PRIQ_CONS: u64 = PAGE_SIZE + 0xcc;

/// IDR0 fields.
pub mod idr0 {
    pub const S2P: u32 = 1 << 0;
    pub const S1P: u32 = 1 << 1;
    /// Translation table formats, bits [3:2]: 1 = AArch32 only, 2 = AArch64, 3 = both.
    pub const TTF_SHIFT: u32 = 2;
    pub const TTF_AARCH64: u32 = 2;
    pub const TTF_AARCH32_64: u32 = 3;
    pub const COHACC: u32 = 1 << 4;
    pub const BTM: u32 = 1 << 5;
    pub const HTTU_SHIFT: u32 = 6;
    pub const DORMHINT: u32 = 1 << 8;
    pub const HYP: u32 = 1 << 9;
    pub const ATS: u32 = 1 << 10;
    pub const NS1ATS: u32 = 1 << 11;
    pub const ASID16: u32 = 1 << 12;
    pub const MSI: u32 = 1 << 13;
    pub const SEV: u32 = 1 << 14;
    pub const ATOS: u32 = 1 << 15;
    pub const PRI: u32 = 1 << 16;
    pub const VMW: u32 = 1 << 17;
    pub const VMID16: u32 = 1 << 18;
    pub const CD2L: u32 = 1 << 19;
    pub const VATOS: u32 = 1 << 20;
    /// Translation table endianness, bits [22:21]: 0 mixed, 2 little, 3 big.
    pub const TTENDIAN_SHIFT: u32 = 21;
    pub const TTENDIAN_MIXED: u32 = 0;
    pub const TTENDIAN_LE: u32 = 2;
    pub const TTENDIAN_BE: u32 = 3;
    /// Stall model, bits [25:24]: 0 stall and terminate, 1 terminate only, 2 stall forced.
    pub const STALL_MODEL_SHIFT: u32 = 24;
    pub const TERM_MODEL: u32 = 1 << 26;
    /// Stream table levels, bits [28:27]: 0 linear only, 1 linear and 2-level.
    pub const ST_LVL_SHIFT: u32 = 27;
    pub const ST_LVL_2LVL: u32 = 1;
}

/// IDR1 fields.
pub mod idr1 {
    /// Bits [5:0]: StreamID bits.
    pub const SIDSIZE_SHIFT: u32 = 0;
    /// Bits [10:6]: SubstreamID bits.
    pub const SSIDSIZE_SHIFT: u32 = 6;
    /// Bits [15:11]: log2 of the maximum PRI queue entries.
    pub const PRIQS_SHIFT: u32 = 11;
    /// Bits [20:16]: log2 of the maximum event queue entries.
    pub const EVTQS_SHIFT: u32 = 16;
    /// Bits [25:21]: log2 of the maximum command queue entries.
    pub const CMDQS_SHIFT: u32 = 21;
    pub const REL: u32 = 1 << 28;
    pub const QUEUES_PRESET: u32 = 1 << 29;
    pub const TABLES_PRESET: u32 = 1 << 30;
}

/// IDR3 fields.
pub mod idr3 {
    pub const HAD: u32 = 1 << 2;
    /// Range invalidation (TLBI NUM/SCALE) supported.
    pub const RIL: u32 = 1 << 10;
}

/// IDR5 fields.
pub mod idr5 {
    /// Bits [2:0]: output address size code (see [`oas_bits`]).
    pub const OAS_SHIFT: u32 = 0;
    pub const GRAN4K: u32 = 1 << 4;
    pub const GRAN16K: u32 = 1 << 5;
    pub const GRAN64K: u32 = 1 << 6;
    /// Bits [11:10]: virtual address extend (1 = 52-bit VA).
    pub const VAX_SHIFT: u32 = 10;
    /// Bits [31:16]: maximum outstanding stalled transactions.
    pub const STALL_MAX_SHIFT: u32 = 16;

    /// Output address bits for an OAS code; `None` for reserved codes.
    pub const fn oas_bits(code: u32) -> Option<u32> {
        match code {
            0 => Some(32),
            1 => Some(36),
            2 => Some(40),
            3 => Some(42),
            4 => Some(44),
            5 => Some(48),
            6 => Some(52),
            _ => None,
        }
    }
}

/// IIDR fields (implementer, revision, variant, product id).
pub mod iidr {
    pub const IMPLEMENTER_SHIFT: u32 = 0;
    pub const REVISION_SHIFT: u32 = 12;
    pub const VARIANT_SHIFT: u32 = 16;
    pub const PRODUCTID_SHIFT: u32 = 20;
    /// JEP106 code of Arm.
    pub const IMPLEMENTER_ARM: u32 = 0x43b;
    pub const PRODUCTID_MMU_600: u32 = 0x483;
    pub const PRODUCTID_MMU_700: u32 = 0x487;
}

/// CR0 fields (CR0ACK mirrors them once the SMMU has acted).
pub mod cr0 {
    pub const SMMUEN: u32 = 1 << 0;
    pub const PRIQEN: u32 = 1 << 1;
    pub const EVTQEN: u32 = 1 << 2;
    pub const CMDQEN: u32 = 1 << 3;
    pub const ATSCHK: u32 = 1 << 4;
    /// Bits [7:6]: VMW.
    pub const VMW_SHIFT: u32 = 6;
    /// Every implemented CR0 bit.
    pub const MASK: u32 = SMMUEN | PRIQEN | EVTQEN | CMDQEN | ATSCHK | (3 << VMW_SHIFT);
}

/// CR1 fields: cacheability and shareability of table walks and queue accesses.
pub mod cr1 {
    pub const QUEUE_IC_SHIFT: u32 = 0;
    pub const QUEUE_OC_SHIFT: u32 = 2;
    pub const QUEUE_SH_SHIFT: u32 = 4;
    pub const TABLE_IC_SHIFT: u32 = 6;
    pub const TABLE_OC_SHIFT: u32 = 8;
    pub const TABLE_SH_SHIFT: u32 = 10;
    /// Write-back cacheable.
    pub const CACHE_WB: u32 = 1;
    /// Inner shareable.
    pub const SH_ISH: u32 = 3;
}

/// CR2 fields.
pub mod cr2 {
    pub const E2H: u32 = 1 << 0;
    pub const RECINVSID: u32 = 1 << 1;
    pub const PTM: u32 = 1 << 2;
}

/// GBPA fields: what transactions do while SMMUEN is 0.
pub mod gbpa {
    /// Bits [13:12]: shareability override; 1 = use the incoming value.
    pub const SHCFG_SHIFT: u32 = 12;
    /// Abort every transaction (rather than bypass) while SMMUEN is 0.
    pub const ABORT: u32 = 1 << 20;
    /// Software sets it with the new value; the SMMU clears it once the value is in force.
    pub const UPDATE: u32 = 1 << 31;
    /// Every field a write may change.
    pub const MASK: u32 = 0x001f_3f1f;
}

/// IRQ_CTRL fields (IRQ_CTRLACK mirrors them).
pub mod irq_ctrl {
    pub const GERROR_IRQEN: u32 = 1 << 0;
    pub const PRIQ_IRQEN: u32 = 1 << 1;
    pub const EVTQ_IRQEN: u32 = 1 << 2;
    pub const MASK: u32 = 0x7;
}

/// GERROR / GERRORN bits: an error is active while the two registers' bits differ.
pub mod gerror {
    pub const CMDQ_ERR: u32 = 1 << 0;
    pub const EVTQ_ABT_ERR: u32 = 1 << 2;
    pub const PRIQ_ABT_ERR: u32 = 1 << 3;
    pub const MSI_CMDQ_ABT_ERR: u32 = 1 << 4;
    pub const MSI_EVTQ_ABT_ERR: u32 = 1 << 5;
    pub const MSI_PRIQ_ABT_ERR: u32 = 1 << 6;
    pub const MSI_GERROR_ABT_ERR: u32 = 1 << 7;
    pub const SFM_ERR: u32 = 1 << 8;
    /// Every error bit (Linux's GERROR_ERR_MASK).
    pub const ERR_MASK: u32 = 0x1fd;
}

/// STRTAB_BASE fields.
pub mod strtab_base {
    /// Read-allocate hint.
    pub const RA: u64 = 1 << 62;
    /// Bits [51:6]: table address.
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_ffc0;
}

/// STRTAB_BASE_CFG fields.
pub mod strtab_base_cfg {
    /// Bits [5:0]: log2 of the number of StreamIDs the table covers.
    pub const LOG2SIZE_SHIFT: u32 = 0;
    /// Bits [10:6]: StreamID bits resolved by level 2 (6, 8 or 10).
    pub const SPLIT_SHIFT: u32 = 6;
    /// Bits [17:16]: 0 linear, 1 two-level.
    pub const FMT_SHIFT: u32 = 16;
    pub const FMT_LINEAR: u32 = 0;
    pub const FMT_2LVL: u32 = 1;
}

/// Queue base register fields (CMDQ_BASE, EVTQ_BASE, PRIQ_BASE).
pub mod q_base {
    /// Bits [4:0]: log2 of the number of entries.
    pub const LOG2SIZE_MASK: u64 = 0x1f;
    /// Bits [51:5]: queue address.
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_ffe0;
    /// Read/write-allocate hint.
    pub const RWA: u64 = 1 << 62;
}

/// Queue index register fields beyond the index and wrap bits.
pub mod q_idx {
    /// EVTQ_PROD.OVFLG / EVTQ_CONS.OVACKFLG.
    pub const OVF: u32 = 1 << 31;
    /// CMDQ_CONS.ERR, bits [30:24]: the CERROR code of the command CONS points at.
    pub const ERR_SHIFT: u32 = 24;
    pub const ERR_MASK: u32 = 0x7f << ERR_SHIFT;
}

/// IRQ_CFG registers (MSI configuration).
pub mod irq_cfg {
    /// CFG0 bits [51:2]: MSI address; 0 means use the wired interrupt.
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_fffc;
    /// CFG2 MemAttr for Device-nGnRE.
    pub const MEMATTR_DEVICE_NGNRE: u32 = 0x1;
    /// Outer and inner write-back (CMD_SYNC MSIATTR).
    pub const MEMATTR_OIWB: u32 = 0xf;
}

/// Whether `offset` names a 64-bit register (which also accepts two 32-bit halves).
pub fn is_64bit(offset: u64) -> bool {
    matches!(
        offset,
        GERROR_IRQ_CFG0
            | STRTAB_BASE
            | CMDQ_BASE
            | EVTQ_BASE
            | EVTQ_IRQ_CFG0
            | PRIQ_BASE
            | PRIQ_IRQ_CFG0
    )
}

/// The architecture's name of a register, for logs (`SMMU_` prefix dropped).
pub fn name(offset: u64) -> Option<&'static str> {
    Some(match offset {
        IDR0 => "IDR0",
        IDR1 => "IDR1",
        IDR2 => "IDR2",
        IDR3 => "IDR3",
        IDR4 => "IDR4",
        IDR5 => "IDR5",
        IIDR => "IIDR",
        AIDR => "AIDR",
        CR0 => "CR0",
        CR0ACK => "CR0ACK",
        CR1 => "CR1",
        CR2 => "CR2",
        STATUSR => "STATUSR",
        GBPA => "GBPA",
        AGBPA => "AGBPA",
        IRQ_CTRL => "IRQ_CTRL",
        IRQ_CTRLACK => "IRQ_CTRLACK",
        GERROR => "GERROR",
        GERRORN => "GERRORN",
        GERROR_IRQ_CFG0 => "GERROR_IRQ_CFG0",
        GERROR_IRQ_CFG1 => "GERROR_IRQ_CFG1",
        GERROR_IRQ_CFG2 => "GERROR_IRQ_CFG2",
        STRTAB_BASE => "STRTAB_BASE",
        STRTAB_BASE_CFG => "STRTAB_BASE_CFG",
        CMDQ_BASE => "CMDQ_BASE",
        CMDQ_PROD => "CMDQ_PROD",
        CMDQ_CONS => "CMDQ_CONS",
        EVTQ_BASE => "EVENTQ_BASE",
        EVTQ_IRQ_CFG0 => "EVENTQ_IRQ_CFG0",
        EVTQ_IRQ_CFG1 => "EVENTQ_IRQ_CFG1",
        EVTQ_IRQ_CFG2 => "EVENTQ_IRQ_CFG2",
        PRIQ_BASE => "PRIQ_BASE",
        PRIQ_IRQ_CFG0 => "PRIQ_IRQ_CFG0",
        PRIQ_IRQ_CFG1 => "PRIQ_IRQ_CFG1",
        PRIQ_IRQ_CFG2 => "PRIQ_IRQ_CFG2",
        EVTQ_PROD => "EVENTQ_PROD",
        EVTQ_CONS => "EVENTQ_CONS",
        PRIQ_PROD => "PRIQ_PROD",
        PRIQ_CONS => "PRIQ_CONS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_architecture() {
        // IHI 0070 chapter 6 / Linux arm-smmu-v3.h.
        assert_eq!(
            (CR0, CR0ACK, GBPA, IRQ_CTRL, GERROR),
            (0x20, 0x24, 0x44, 0x50, 0x60)
        );
        assert_eq!((STRTAB_BASE, STRTAB_BASE_CFG), (0x80, 0x88));
        assert_eq!((CMDQ_BASE, CMDQ_PROD, CMDQ_CONS), (0x90, 0x98, 0x9c));
        assert_eq!((EVTQ_BASE, EVTQ_PROD, EVTQ_CONS), (0xa0, 0x100a8, 0x100ac));
        assert_eq!(
            (EVTQ_IRQ_CFG0, GERROR_IRQ_CFG0, PRIQ_IRQ_CFG0),
            (0xb0, 0x68, 0xd0)
        );
        assert_eq!(gerror::ERR_MASK, 0x1fd);
        assert_eq!(gbpa::ABORT, 0x10_0000);
        assert_eq!(idr5::oas_bits(4), Some(44));
        assert_eq!(idr5::oas_bits(7), None);
        assert!(is_64bit(CMDQ_BASE) && !is_64bit(CMDQ_PROD));
        assert_eq!(name(EVTQ_PROD), Some("EVENTQ_PROD"));
    }
}
