//! Event queue records (32 bytes, four dwords).
//!
//! Dword 0 always carries the event id in [7:0], SSV in bit 11, the SubstreamID in [31:12] and
//! the StreamID in [63:32]. Translation-class faults (F_TRANSLATION, F_ADDR_SIZE, F_ACCESS,
//! F_PERMISSION) add the syndrome in dword 1, the input address in dword 2 and the IPA of a
//! stage-2 fault in dword 3.

use crate::{field, genmask};

/// Bytes per event record.
pub const ENTRY_BYTES: u64 = 32;

/// Event ids.
pub mod id {
    pub const F_UUT: u8 = 0x01;
    pub const C_BAD_STREAMID: u8 = 0x02;
    pub const F_STE_FETCH: u8 = 0x03;
    pub const C_BAD_STE: u8 = 0x04;
    pub const F_BAD_ATS_TREQ: u8 = 0x05;
    pub const F_STREAM_DISABLED: u8 = 0x06;
    pub const F_TRANSL_FORBIDDEN: u8 = 0x07;
    pub const C_BAD_SUBSTREAMID: u8 = 0x08;
    pub const F_CD_FETCH: u8 = 0x09;
    pub const C_BAD_CD: u8 = 0x0a;
    pub const F_WALK_EABT: u8 = 0x0b;
    pub const F_TRANSLATION: u8 = 0x10;
    pub const F_ADDR_SIZE: u8 = 0x11;
    pub const F_ACCESS: u8 = 0x12;
    pub const F_PERMISSION: u8 = 0x13;
    pub const F_TLB_CONFLICT: u8 = 0x20;
    pub const F_CFG_CONFLICT: u8 = 0x21;
    pub const E_PAGE_REQUEST: u8 = 0x24;
    pub const F_VMS_FETCH: u8 = 0x25;

    /// The architecture's name of an event id.
    pub fn name(id: u8) -> &'static str {
        match id {
            F_UUT => "F_UUT",
            C_BAD_STREAMID => "C_BAD_STREAMID",
            F_STE_FETCH => "F_STE_FETCH",
            C_BAD_STE => "C_BAD_STE",
            F_BAD_ATS_TREQ => "F_BAD_ATS_TREQ",
            F_STREAM_DISABLED => "F_STREAM_DISABLED",
            F_TRANSL_FORBIDDEN => "F_TRANSL_FORBIDDEN",
            C_BAD_SUBSTREAMID => "C_BAD_SUBSTREAMID",
            F_CD_FETCH => "F_CD_FETCH",
            C_BAD_CD => "C_BAD_CD",
            F_WALK_EABT => "F_WALK_EABT",
            F_TRANSLATION => "F_TRANSLATION",
            F_ADDR_SIZE => "F_ADDR_SIZE",
            F_ACCESS => "F_ACCESS",
            F_PERMISSION => "F_PERMISSION",
            F_TLB_CONFLICT => "F_TLB_CONFLICT",
            F_CFG_CONFLICT => "F_CFG_CONFLICT",
            E_PAGE_REQUEST => "E_PAGE_REQUEST",
            F_VMS_FETCH => "F_VMS_FETCH",
            _ => "UNKNOWN",
        }
    }
}

pub const SSV: u64 = 1 << 11;
pub const SSID_SHIFT: u32 = 12;
pub const SID_SHIFT: u32 = 32;
/// Dword 1 syndrome bits of a translation-class fault.
pub const STAG_MASK: u64 = 0xffff;
pub const STALL: u64 = 1 << 31;
pub const PNU: u64 = 1 << 32;
pub const IND: u64 = 1 << 33;
pub const RNW: u64 = 1 << 35;
pub const S2: u64 = 1 << 39;
/// Bits [41:40]: what the access was for: 0 CD fetch, 1 table walk, 2 input address.
pub const CLASS_SHIFT: u32 = 40;
pub const CLASS_CD: u64 = 0;
pub const CLASS_TT: u64 = 1;
pub const CLASS_IN: u64 = 2;
/// Dword 3: IPA bits [51:3] of a stage-2 fault.
pub const IPA_MASK: u64 = genmask(51, 3);

/// One event record, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    pub id: u8,
    pub sid: u32,
    pub ssid: Option<u32>,
    /// Dword 1 (syndrome); 0 for configuration errors.
    pub syndrome: u64,
    /// Dword 2: input address (or the fetch address of F_STE_FETCH / F_CD_FETCH).
    pub addr: u64,
    /// Dword 3: IPA of a stage-2 fault.
    pub ipa: u64,
}

impl Event {
    /// A record with only id and StreamID (configuration errors such as C_BAD_STREAMID).
    pub const fn config(id: u8, sid: u32) -> Self {
        Event {
            id,
            sid,
            ssid: None,
            syndrome: 0,
            addr: 0,
            ipa: 0,
        }
    }

    /// The four dwords of the record.
    pub fn encode(&self) -> [u64; 4] {
        let mut d0 = u64::from(self.id) | (u64::from(self.sid) << SID_SHIFT);
        if let Some(ssid) = self.ssid {
            d0 |= SSV | (u64::from(ssid & 0xf_ffff) << SSID_SHIFT);
        }
        [d0, self.syndrome, self.addr, self.ipa & IPA_MASK]
    }

    /// Read a record back (never fails: every bit pattern is some record).
    pub fn decode(d: [u64; 4]) -> Self {
        let ssid = (d[0] & SSV != 0).then(|| field(d[0], SSID_SHIFT, 20) as u32);
        Event {
            id: d[0] as u8,
            sid: (d[0] >> SID_SHIFT) as u32,
            ssid,
            syndrome: d[1],
            addr: d[2],
            ipa: d[3] & IPA_MASK,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn c_bad_streamid_layout() {
        assert_eq!(
            Event::config(id::C_BAD_STREAMID, 0x10000).encode(),
            [0x0001_0000_0000_0002, 0, 0, 0]
        );
        assert_eq!(id::name(id::F_TRANSLATION), "F_TRANSLATION");
    }

    proptest! {
        #[test]
        fn round_trip(eid in any::<u8>(), sid in any::<u32>(), ssid in proptest::option::of(0u32..(1 << 20)),
                      syn in any::<u64>(), addr in any::<u64>(), ipa in any::<u64>()) {
            let e = Event { id: eid, sid, ssid, syndrome: syn, addr, ipa: ipa & IPA_MASK };
            prop_assert_eq!(Event::decode(e.encode()), e);
        }
    }
}
