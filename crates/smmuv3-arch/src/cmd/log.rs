//! The one-line text of a command, as the MMIO/command log prints it.

use super::{Command, SyncCs, TlbiRange};
use std::fmt;

/// One line per command, as the MMIO/command log prints it: `CMD_<NAME> field=value ...`.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rng =
            |r: &TlbiRange| format!("num={} scale={} tg={} ttl={}", r.num, r.scale, r.tg, r.ttl);
        match self {
            Command::PrefetchConfig { sid } => write!(f, "CMD_PREFETCH_CONFIG sid={sid:#x}"),
            Command::PrefetchAddr { sid, addr } => {
                write!(f, "CMD_PREFETCH_ADDR sid={sid:#x} addr={addr:#x}")
            }
            Command::CfgiSte { sid, leaf } => {
                write!(f, "CMD_CFGI_STE sid={sid:#x} leaf={}", u8::from(*leaf))
            }
            Command::CfgiSteRange { range: 31, .. } => write!(f, "CMD_CFGI_ALL"),
            Command::CfgiSteRange { sid, range } => {
                write!(f, "CMD_CFGI_STE_RANGE sid={sid:#x} range={range}")
            }
            Command::CfgiCd { sid, ssid, leaf } => {
                write!(
                    f,
                    "CMD_CFGI_CD sid={sid:#x} ssid={ssid:#x} leaf={}",
                    u8::from(*leaf)
                )
            }
            Command::CfgiCdAll { sid } => write!(f, "CMD_CFGI_CD_ALL sid={sid:#x}"),
            Command::TlbiNhAll { vmid } => write!(f, "CMD_TLBI_NH_ALL vmid={vmid}"),
            Command::TlbiNhAsid { vmid, asid } => {
                write!(f, "CMD_TLBI_NH_ASID vmid={vmid} asid={asid}")
            }
            Command::TlbiNhVa {
                vmid,
                asid,
                addr,
                leaf,
                range,
            } => write!(
                f,
                "CMD_TLBI_NH_VA vmid={vmid} asid={asid} addr={addr:#x} leaf={} {}",
                u8::from(*leaf),
                rng(range)
            ),
            Command::TlbiNhVaa {
                vmid,
                addr,
                leaf,
                range,
            } => {
                write!(
                    f,
                    "CMD_TLBI_NH_VAA vmid={vmid} addr={addr:#x} leaf={} {}",
                    u8::from(*leaf),
                    rng(range)
                )
            }
            Command::TlbiEl2All => write!(f, "CMD_TLBI_EL2_ALL"),
            Command::TlbiS12Vmall { vmid } => write!(f, "CMD_TLBI_S12_VMALL vmid={vmid}"),
            Command::TlbiS2Ipa {
                vmid,
                addr,
                leaf,
                range,
            } => {
                write!(
                    f,
                    "CMD_TLBI_S2_IPA vmid={vmid} addr={addr:#x} leaf={} {}",
                    u8::from(*leaf),
                    rng(range)
                )
            }
            Command::TlbiNsnhAll => write!(f, "CMD_TLBI_NSNH_ALL"),
            Command::Sync {
                cs,
                msidata,
                msiaddr,
                ..
            } => {
                let cs = match cs {
                    SyncCs::None => "none",
                    SyncCs::Irq => "irq",
                    SyncCs::Sev => "sev",
                };
                write!(
                    f,
                    "CMD_SYNC cs={cs} msiaddr={msiaddr:#x} msidata={msidata:#x}"
                )
            }
        }
    }
}
