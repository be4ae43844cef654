//! Command queue entries: 16 bytes (two little-endian dwords), opcode in bits [7:0].
//!
//! [`Command::encode`] builds the two dwords a driver writes; [`Command::decode`] is what the
//! SMMU does on consumption, returning [`CmdError::Illegal`] (CERROR_ILL) for an opcode it does
//! not implement or a reserved field value it must not accept.
//!
//! * this module: the opcodes, the decoded [`Command`] and its fields;
//! * `wire`: the bit layout of the two dwords, [`Command::encode`] and [`Command::decode`];
//! * `log`: the one-line form the MMIO/command log prints ([`Command`]'s `Display`).

use thiserror::Error;

mod log;
mod wire;

pub use wire::{SYNC_MSIADDR_MASK, TLBI_IPA_MASK, TLBI_VA_MASK};

/// Bytes per command.
pub const ENTRY_BYTES: u64 = 16;

/// Opcodes (IHI 0070 §4).
pub mod op {
    pub const PREFETCH_CONFIG: u8 = 0x01;
    pub const PREFETCH_ADDR: u8 = 0x02;
    pub const CFGI_STE: u8 = 0x03;
    /// Also CMD_CFGI_ALL, with RANGE 31.
    pub const CFGI_STE_RANGE: u8 = 0x04;
    pub const CFGI_CD: u8 = 0x05;
    pub const CFGI_CD_ALL: u8 = 0x06;
    pub const TLBI_NH_ALL: u8 = 0x10;
    pub const TLBI_NH_ASID: u8 = 0x11;
    pub const TLBI_NH_VA: u8 = 0x12;
    pub const TLBI_NH_VAA: u8 = 0x13;
    pub const TLBI_EL3_ALL: u8 = 0x18;
    pub const TLBI_EL3_VA: u8 = 0x1a;
    pub const TLBI_EL2_ALL: u8 = 0x20;
    pub const TLBI_EL2_ASID: u8 = 0x21;
    pub const TLBI_EL2_VA: u8 = 0x22;
    pub const TLBI_EL2_VAA: u8 = 0x23;
    pub const TLBI_S12_VMALL: u8 = 0x28;
    pub const TLBI_S2_IPA: u8 = 0x2a;
    pub const TLBI_NSNH_ALL: u8 = 0x30;
    pub const ATC_INV: u8 = 0x40;
    pub const PRI_RESP: u8 = 0x41;
    pub const RESUME: u8 = 0x44;
    pub const STALL_TERM: u8 = 0x45;
    pub const SYNC: u8 = 0x46;
}

/// CMDQ_CONS.ERR codes (CERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cerror {
    None = 0,
    /// The command is illegal (unknown opcode, reserved field value).
    Illegal = 1,
    /// An abort on fetching the command from memory.
    Abort = 2,
    /// An ATC invalidation timed out.
    AtcInvSync = 3,
}

/// Why the SMMU refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CmdError {
    #[error("illegal command (opcode {opcode:#04x}): {why}")]
    Illegal { opcode: u8, why: &'static str },
}

/// CMD_SYNC completion signal (CS field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncCs {
    /// No signal: software polls CMDQ_CONS.
    None,
    /// An MSI write of MSIDATA to MSIADDR (or the `cmdq-sync` wired interrupt when MSIADDR is 0).
    Irq,
    /// A send-event (wakes WFE).
    Sev,
}

/// TLBI address-range fields (SMMUv3.1 range invalidation; all zero for a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TlbiRange {
    /// NUM: the range is (NUM + 1) << SCALE pages of the TG granule.
    pub num: u8,
    pub scale: u8,
    /// Translation granule: 0 = not a range, 1 = 4K, 2 = 16K, 3 = 64K.
    pub tg: u8,
    /// Level hint of the leaf (0 = unknown).
    pub ttl: u8,
}

impl TlbiRange {
    /// Bytes covered from the address, or `None` for a single-address invalidation (TG = 0).
    pub fn bytes(&self) -> Option<u64> {
        let shift = match self.tg {
            1 => 12,
            2 => 14,
            3 => 16,
            _ => return None,
        };
        let pages = (u64::from(self.num) + 1) << self.scale;
        Some(pages << shift)
    }
}

/// A decoded command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    PrefetchConfig {
        sid: u32,
    },
    PrefetchAddr {
        sid: u32,
        addr: u64,
    },
    CfgiSte {
        sid: u32,
        leaf: bool,
    },
    /// 2^(range+1) StreamIDs aligned on that size; range 31 is CMD_CFGI_ALL.
    CfgiSteRange {
        sid: u32,
        range: u8,
    },
    CfgiCd {
        sid: u32,
        ssid: u32,
        leaf: bool,
    },
    CfgiCdAll {
        sid: u32,
    },
    TlbiNhAll {
        vmid: u16,
    },
    TlbiNhAsid {
        vmid: u16,
        asid: u16,
    },
    TlbiNhVa {
        vmid: u16,
        asid: u16,
        addr: u64,
        leaf: bool,
        range: TlbiRange,
    },
    TlbiNhVaa {
        vmid: u16,
        addr: u64,
        leaf: bool,
        range: TlbiRange,
    },
    TlbiEl2All,
    TlbiS12Vmall {
        vmid: u16,
    },
    TlbiS2Ipa {
        vmid: u16,
        addr: u64,
        leaf: bool,
        range: TlbiRange,
    },
    TlbiNsnhAll,
    Sync {
        cs: SyncCs,
        msh: u8,
        msiattr: u8,
        msidata: u32,
        msiaddr: u64,
    },
}

/// CMD_CFGI_ALL: CFGI_STE_RANGE over every StreamID.
pub const CFGI_ALL: Command = Command::CfgiSteRange { sid: 0, range: 31 };

impl Command {
    /// The opcode this command encodes to.
    pub fn opcode(&self) -> u8 {
        match self {
            Command::PrefetchConfig { .. } => op::PREFETCH_CONFIG,
            Command::PrefetchAddr { .. } => op::PREFETCH_ADDR,
            Command::CfgiSte { .. } => op::CFGI_STE,
            Command::CfgiSteRange { .. } => op::CFGI_STE_RANGE,
            Command::CfgiCd { .. } => op::CFGI_CD,
            Command::CfgiCdAll { .. } => op::CFGI_CD_ALL,
            Command::TlbiNhAll { .. } => op::TLBI_NH_ALL,
            Command::TlbiNhAsid { .. } => op::TLBI_NH_ASID,
            Command::TlbiNhVa { .. } => op::TLBI_NH_VA,
            Command::TlbiNhVaa { .. } => op::TLBI_NH_VAA,
            Command::TlbiEl2All => op::TLBI_EL2_ALL,
            Command::TlbiS12Vmall { .. } => op::TLBI_S12_VMALL,
            Command::TlbiS2Ipa { .. } => op::TLBI_S2_IPA,
            Command::TlbiNsnhAll => op::TLBI_NSNH_ALL,
            Command::Sync { .. } => op::SYNC,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_bytes() {
        let r = TlbiRange {
            num: 3,
            scale: 2,
            tg: 1,
            ttl: 0,
        };
        assert_eq!(r.bytes(), Some(16 << 12));
        assert_eq!(TlbiRange::default().bytes(), None);
    }
}
