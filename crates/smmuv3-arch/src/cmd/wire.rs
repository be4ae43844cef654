//! The bit layout of a command's two dwords (IHI 0070 §4): what a driver writes and what the
//! SMMU reads back on consumption.

use super::{op, CmdError, Command, SyncCs, TlbiRange};
use crate::{field, genmask, prep};

const SID_SHIFT: u32 = 32;
const SSID_SHIFT: u32 = 12;
const TLBI_NUM_SHIFT: u32 = 12;
const TLBI_SCALE_SHIFT: u32 = 20;
const TLBI_VMID_SHIFT: u32 = 32;
const TLBI_ASID_SHIFT: u32 = 48;
const TLBI_TTL_SHIFT: u32 = 8;
const TLBI_TG_SHIFT: u32 = 10;
/// TLBI dword 1: VA bits [63:12].
pub const TLBI_VA_MASK: u64 = genmask(63, 12);
/// TLBI dword 1: IPA bits [51:12].
pub const TLBI_IPA_MASK: u64 = genmask(51, 12);
const SYNC_CS_SHIFT: u32 = 12;
const SYNC_MSH_SHIFT: u32 = 22;
const SYNC_MSIATTR_SHIFT: u32 = 24;
const SYNC_MSIDATA_SHIFT: u32 = 32;
/// CMD_SYNC dword 1: MSI address bits [51:2].
pub const SYNC_MSIADDR_MASK: u64 = genmask(51, 2);
const PREFETCH_ADDR_MASK: u64 = genmask(63, 12);

fn range_bits(r: &TlbiRange) -> (u64, u64) {
    (
        prep(u64::from(r.num), TLBI_NUM_SHIFT, 5) | prep(u64::from(r.scale), TLBI_SCALE_SHIFT, 5),
        prep(u64::from(r.ttl), TLBI_TTL_SHIFT, 2) | prep(u64::from(r.tg), TLBI_TG_SHIFT, 2),
    )
}

fn range_of(d0: u64, d1: u64) -> TlbiRange {
    TlbiRange {
        num: field(d0, TLBI_NUM_SHIFT, 5) as u8,
        scale: field(d0, TLBI_SCALE_SHIFT, 5) as u8,
        ttl: field(d1, TLBI_TTL_SHIFT, 2) as u8,
        tg: field(d1, TLBI_TG_SHIFT, 2) as u8,
    }
}

impl Command {
    /// The two dwords of the command.
    pub fn encode(&self) -> [u64; 2] {
        let mut d0 = u64::from(self.opcode());
        let mut d1 = 0;
        let sid = |s: u32| u64::from(s) << SID_SHIFT;
        let vmid = |v: u16| u64::from(v) << TLBI_VMID_SHIFT;
        let asid = |a: u16| u64::from(a) << TLBI_ASID_SHIFT;
        match *self {
            Command::PrefetchConfig { sid: s } => d0 |= sid(s),
            Command::PrefetchAddr { sid: s, addr } => {
                d0 |= sid(s);
                d1 |= addr & PREFETCH_ADDR_MASK;
            }
            Command::CfgiSte { sid: s, leaf } => {
                d0 |= sid(s);
                d1 |= u64::from(leaf);
            }
            Command::CfgiSteRange { sid: s, range } => {
                d0 |= sid(s);
                d1 |= prep(u64::from(range), 0, 5);
            }
            Command::CfgiCd { sid: s, ssid, leaf } => {
                d0 |= sid(s) | prep(u64::from(ssid), SSID_SHIFT, 20);
                d1 |= u64::from(leaf);
            }
            Command::CfgiCdAll { sid: s } => d0 |= sid(s),
            Command::TlbiNhAll { vmid: v } | Command::TlbiS12Vmall { vmid: v } => d0 |= vmid(v),
            Command::TlbiNhAsid { vmid: v, asid: a } => d0 |= vmid(v) | asid(a),
            Command::TlbiNhVa {
                vmid: v,
                asid: a,
                addr,
                leaf,
                range,
            } => {
                let (r0, r1) = range_bits(&range);
                d0 |= vmid(v) | asid(a) | r0;
                d1 |= u64::from(leaf) | r1 | (addr & TLBI_VA_MASK);
            }
            Command::TlbiNhVaa {
                vmid: v,
                addr,
                leaf,
                range,
            } => {
                let (r0, r1) = range_bits(&range);
                d0 |= vmid(v) | r0;
                d1 |= u64::from(leaf) | r1 | (addr & TLBI_VA_MASK);
            }
            Command::TlbiS2Ipa {
                vmid: v,
                addr,
                leaf,
                range,
            } => {
                let (r0, r1) = range_bits(&range);
                d0 |= vmid(v) | r0;
                d1 |= u64::from(leaf) | r1 | (addr & TLBI_IPA_MASK);
            }
            Command::TlbiEl2All | Command::TlbiNsnhAll => {}
            Command::Sync {
                cs,
                msh,
                msiattr,
                msidata,
                msiaddr,
            } => {
                let cs = match cs {
                    SyncCs::None => 0,
                    SyncCs::Irq => 1,
                    SyncCs::Sev => 2,
                };
                d0 |= prep(cs, SYNC_CS_SHIFT, 2)
                    | prep(u64::from(msh), SYNC_MSH_SHIFT, 2)
                    | prep(u64::from(msiattr), SYNC_MSIATTR_SHIFT, 4)
                    | (u64::from(msidata) << SYNC_MSIDATA_SHIFT);
                d1 |= msiaddr & SYNC_MSIADDR_MASK;
            }
        }
        [d0, d1]
    }

    /// What the SMMU makes of two dwords. `range_inv` says whether IDR3.RIL is set: without
    /// it, a TLBI with a non-zero TG is illegal.
    pub fn decode(d: [u64; 2], range_inv: bool) -> Result<Command, CmdError> {
        let [d0, d1] = d;
        let opcode = d0 as u8;
        let ill = |why| Err(CmdError::Illegal { opcode, why });
        let sid = (d0 >> SID_SHIFT) as u32;
        let vmid = field(d0, TLBI_VMID_SHIFT, 16) as u16;
        let asid = field(d0, TLBI_ASID_SHIFT, 16) as u16;
        let leaf = d1 & 1 != 0;
        let range = range_of(d0, d1);
        if range.tg != 0
            && !range_inv
            && matches!(opcode, op::TLBI_NH_VA | op::TLBI_NH_VAA | op::TLBI_S2_IPA)
        {
            return ill("range invalidation without IDR3.RIL");
        }
        Ok(match opcode {
            op::PREFETCH_CONFIG => Command::PrefetchConfig { sid },
            op::PREFETCH_ADDR => Command::PrefetchAddr {
                sid,
                addr: d1 & PREFETCH_ADDR_MASK,
            },
            op::CFGI_STE => Command::CfgiSte { sid, leaf },
            op::CFGI_STE_RANGE => Command::CfgiSteRange {
                sid,
                range: field(d1, 0, 5) as u8,
            },
            op::CFGI_CD => Command::CfgiCd {
                sid,
                ssid: field(d0, SSID_SHIFT, 20) as u32,
                leaf,
            },
            op::CFGI_CD_ALL => Command::CfgiCdAll { sid },
            op::TLBI_NH_ALL => Command::TlbiNhAll { vmid },
            op::TLBI_NH_ASID => Command::TlbiNhAsid { vmid, asid },
            op::TLBI_NH_VA => Command::TlbiNhVa {
                vmid,
                asid,
                addr: d1 & TLBI_VA_MASK,
                leaf,
                range,
            },
            op::TLBI_NH_VAA => Command::TlbiNhVaa {
                vmid,
                addr: d1 & TLBI_VA_MASK,
                leaf,
                range,
            },
            op::TLBI_EL2_ALL => Command::TlbiEl2All,
            op::TLBI_S12_VMALL => Command::TlbiS12Vmall { vmid },
            op::TLBI_S2_IPA => Command::TlbiS2Ipa {
                vmid,
                addr: d1 & TLBI_IPA_MASK,
                leaf,
                range,
            },
            op::TLBI_NSNH_ALL => Command::TlbiNsnhAll,
            op::SYNC => {
                let cs = match field(d0, SYNC_CS_SHIFT, 2) {
                    0 => SyncCs::None,
                    1 => SyncCs::Irq,
                    2 => SyncCs::Sev,
                    _ => return ill("CMD_SYNC with reserved CS 3"),
                };
                Command::Sync {
                    cs,
                    msh: field(d0, SYNC_MSH_SHIFT, 2) as u8,
                    msiattr: field(d0, SYNC_MSIATTR_SHIFT, 4) as u8,
                    msidata: (d0 >> SYNC_MSIDATA_SHIFT) as u32,
                    msiaddr: d1 & SYNC_MSIADDR_MASK,
                }
            }
            _ => return ill("opcode not implemented"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::CFGI_ALL;
    use proptest::prelude::*;

    #[test]
    fn encodings_match_linux_build_cmd() {
        // CFGI_ALL: opcode 4, RANGE 31 in dword 1.
        assert_eq!(CFGI_ALL.encode(), [0x4, 0x1f]);
        assert_eq!(
            Command::CfgiSte { sid: 8, leaf: true }.encode(),
            [0x8_0000_0003, 1]
        );
        assert_eq!(
            Command::PrefetchConfig { sid: 8 }.encode(),
            [0x8_0000_0001, 0]
        );
        // CMD_SYNC with CS=SEV, MSH=ISH, MSIATTR=OIWB (Linux without MSI polling).
        let sev = Command::Sync {
            cs: SyncCs::Sev,
            msh: 3,
            msiattr: 0xf,
            msidata: 0,
            msiaddr: 0,
        };
        assert_eq!(sev.encode(), [0x0fc0_2046, 0]);
        let va = Command::TlbiNhVa {
            vmid: 0,
            asid: 1,
            addr: 0xffff_f000,
            leaf: true,
            range: TlbiRange {
                num: 0,
                scale: 0,
                tg: 1,
                ttl: 3,
            },
        };
        assert_eq!(
            va.encode(),
            [0x0001_0000_0000_0012, 0xffff_f000 | 0x400 | 0x300 | 1]
        );
        assert_eq!(
            va.to_string(),
            "CMD_TLBI_NH_VA vmid=0 asid=1 addr=0xfffff000 leaf=1 num=0 scale=0 tg=1 ttl=3"
        );
    }

    #[test]
    fn illegal_commands() {
        assert!(Command::decode([0x7f, 0], true).is_err());
        assert!(
            Command::decode([0x3046, 0], true).is_err(),
            "CS=3 is reserved"
        );
        assert!(
            Command::decode([0x12, 0x400], false).is_err(),
            "TG without RIL"
        );
        assert!(Command::decode([0x12, 0x400], true).is_ok());
    }

    fn any_command() -> impl Strategy<Value = Command> {
        let rng = (0u8..32, 0u8..32, 0u8..4, 0u8..4).prop_map(|(num, scale, tg, ttl)| TlbiRange {
            num,
            scale,
            tg,
            ttl,
        });
        prop_oneof![
            any::<u32>().prop_map(|sid| Command::PrefetchConfig { sid }),
            (any::<u32>(), any::<bool>()).prop_map(|(sid, leaf)| Command::CfgiSte { sid, leaf }),
            (any::<u32>(), 0u8..32).prop_map(|(sid, range)| Command::CfgiSteRange { sid, range }),
            (any::<u32>(), 0u32..(1 << 20), any::<bool>())
                .prop_map(|(sid, ssid, leaf)| Command::CfgiCd { sid, ssid, leaf }),
            (any::<u16>(), any::<u16>())
                .prop_map(|(vmid, asid)| Command::TlbiNhAsid { vmid, asid }),
            (
                any::<u16>(),
                any::<u16>(),
                any::<u64>(),
                any::<bool>(),
                rng.clone()
            )
                .prop_map(|(vmid, asid, a, leaf, range)| {
                    Command::TlbiNhVa {
                        vmid,
                        asid,
                        addr: a & TLBI_VA_MASK,
                        leaf,
                        range,
                    }
                }),
            (any::<u16>(), any::<u64>(), any::<bool>(), rng).prop_map(|(vmid, a, leaf, range)| {
                Command::TlbiS2Ipa {
                    vmid,
                    addr: a & TLBI_IPA_MASK,
                    leaf,
                    range,
                }
            }),
            any::<u16>().prop_map(|vmid| Command::TlbiS12Vmall { vmid }),
            Just(Command::TlbiNsnhAll),
            (0u8..4, any::<u32>(), any::<u64>()).prop_map(|(msh, msidata, a)| Command::Sync {
                cs: SyncCs::Irq,
                msh,
                msiattr: 0xf,
                msidata,
                msiaddr: a & SYNC_MSIADDR_MASK
            }),
        ]
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(c in any_command()) {
            prop_assert_eq!(Command::decode(c.encode(), true), Ok(c));
        }

        #[test]
        fn decode_never_panics(d0 in any::<u64>(), d1 in any::<u64>(), ril in any::<bool>()) {
            let _ = Command::decode([d0, d1], ril);
        }
    }
}
