//! Finding and decoding a stream's configuration: the stream table (linear or 2-level), the STE
//! with the architecture's legality checks (C_BAD_STE), and the stage-1 context descriptor
//! (C_BAD_CD). The result is what the configuration cache holds.

use crate::config::SmmuV3Config;
use crate::walk::Walk;
use physmem::{PhysAddr, PhysMem};
use smmuv3_arch::event::id;
use smmuv3_arch::regs::strtab_base_cfg as bcfg;
use smmuv3_arch::{cd, field, ste};

/// A stream's decoded configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamCfg {
    /// STE.Config = abort: terminate silently.
    Abort,
    /// STE.Config = bypass.
    Bypass,
    Translate(TransCfg),
}

/// The translation stages of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TransCfg {
    pub vmid: u16,
    pub s1: Option<S1Cfg>,
    pub s2: Option<StageCfg>,
}

/// Stage 1 (from the CD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct S1Cfg {
    pub asid: u16,
    pub walk: StageCfg,
}

/// One stage's walk and whether its faults are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StageCfg {
    pub walk: Walk,
    /// CD.R / STE.S2R.
    pub record: bool,
    /// CD.EPD0: walks of TTB0 disabled (every address faults).
    pub disabled: bool,
}

/// A configuration error: the event to record and the StreamID's fetch address if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CfgError {
    pub event: u8,
    pub addr: u64,
}

fn err<T>(event: u8, addr: u64) -> Result<T, CfgError> {
    Err(CfgError { event, addr })
}

/// Registers that say where the stream table is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StrtabRegs {
    pub base: u64,
    pub cfg: u32,
}

fn read_words<const N: usize>(mem: &PhysMem, pa: PhysAddr) -> Option<[u64; N]> {
    let mut out = [0u64; N];
    for (i, w) in out.iter_mut().enumerate() {
        *w = mem.load_word(pa.checked_add(8 * i as u64)?)?;
    }
    Some(out)
}

fn granule_of_tg0(tg0: u64) -> Option<u32> {
    match tg0 {
        cd::TG0_4K => Some(12),
        cd::TG0_16K => Some(14),
        cd::TG0_64K => Some(16),
        _ => None,
    }
}

/// Where the STE of `sid` lives.
pub(crate) fn ste_address(
    c: &SmmuV3Config,
    mem: &PhysMem,
    r: StrtabRegs,
    sid: u32,
) -> Result<PhysAddr, CfgError> {
    let log2size = field(u64::from(r.cfg), bcfg::LOG2SIZE_SHIFT, 6) as u32;
    let limit = log2size.min(c.sid_bits());
    if limit < 32 && u64::from(sid) >> limit != 0 {
        return err(id::C_BAD_STREAMID, 0);
    }
    // STRTAB_BASE stays a register word; its address field is where the table is.
    let base = PhysAddr::new(r.base & smmuv3_arch::regs::strtab_base::ADDR_MASK);
    let fmt = field(u64::from(r.cfg), bcfg::FMT_SHIFT, 2) as u32;
    if fmt == bcfg::FMT_2LVL && c.two_level_strtab() {
        let split = (field(u64::from(r.cfg), bcfg::SPLIT_SHIFT, 5) as u32).min(limit);
        let l1 = entry(base, u64::from(sid >> split.min(31)), ste::L1_DESC_BYTES);
        let Some(d) = mem.load_word(l1) else {
            return err(id::F_STE_FETCH, l1.as_u64());
        };
        let span = (d & ste::L1_SPAN_MASK) as u32;
        let l2_index = u64::from(sid) & ((1u64 << split) - 1);
        if span == 0 || span > split + 1 || l2_index >> (span - 1) != 0 {
            return err(id::C_BAD_STREAMID, 0);
        }
        let l2 = PhysAddr::new(d & ste::L1_L2PTR_MASK);
        Ok(entry(l2, l2_index, ste::STE_BYTES))
    } else {
        Ok(entry(base, u64::from(sid), ste::STE_BYTES))
    }
}

/// Entry `index` of a table of `bytes`-byte entries at `table`. Both table pointers are
/// address fields below 2^52 and an index is below 2^32, so the sum does not wrap; were it to,
/// it wraps as the hardware's adder would rather than panic.
fn entry(table: PhysAddr, index: u64, bytes: u64) -> PhysAddr {
    PhysAddr::new(table.as_u64().wrapping_add(index.wrapping_mul(bytes)))
}

/// Fetch and decode the configuration of `sid`.
pub(crate) fn fetch(
    c: &SmmuV3Config,
    mem: &PhysMem,
    r: StrtabRegs,
    sid: u32,
) -> Result<StreamCfg, CfgError> {
    let addr = ste_address(c, mem, r, sid)?;
    let Some(s) = read_words::<8>(mem, addr) else {
        return err(id::F_STE_FETCH, addr.as_u64());
    };
    decode_ste(c, mem, &s)
}

fn decode_ste(c: &SmmuV3Config, mem: &PhysMem, s: &[u64; 8]) -> Result<StreamCfg, CfgError> {
    let bad = || err(id::C_BAD_STE, 0);
    if s[0] & ste::V == 0 {
        return bad();
    }
    let oas = c.oas();
    let cfg = ste::config(s[0]);
    let (s1, s2) = match cfg {
        ste::CFG_ABORT => return Ok(StreamCfg::Abort),
        ste::CFG_BYPASS => return Ok(StreamCfg::Bypass),
        ste::CFG_S1_TRANS => (true, false),
        ste::CFG_S2_TRANS => (false, true),
        ste::CFG_NESTED => (true, true),
        _ => return bad(),
    };
    if (s1 && !c.s1p()) || (s2 && !c.s2p()) {
        return bad();
    }
    let vmid = (s[2] & ste::S2VMID_MASK) as u16;
    let s2cfg = if s2 {
        if s[2] & ste::S2AA64 == 0 {
            return bad();
        }
        let vtcr = field(s[2], ste::VTCR_SHIFT, 19);
        let tsz = field(vtcr, ste::vtcr::T0SZ_SHIFT, 6) as u32;
        let Some(g) = granule_of_tg0(field(vtcr, ste::vtcr::TG_SHIFT, 2)).filter(|&g| c.granule(g))
        else {
            return bad();
        };
        let ps = smmuv3_arch::regs::idr5::oas_bits(field(vtcr, ste::vtcr::PS_SHIFT, 3) as u32)
            .unwrap_or(oas)
            .min(oas);
        let input_bits = 64u32.saturating_sub(tsz);
        let Some(start) = Walk::s2_start_level(g, field(vtcr, ste::vtcr::SL0_SHIFT, 2) as u32)
        else {
            return bad();
        };
        if !(24..=ps.max(oas).min(48)).contains(&input_bits) {
            return bad();
        }
        let walk = Walk {
            granule_shift: g,
            input_bits,
            start_level: start,
            ttb: s[3] & ste::S2TTB_MASK,
            oas: ps,
            stage2: true,
            affd: s[2] & ste::S2AFFD != 0,
        };
        // The start table may concatenate at most 16 tables, and must resolve at least one bit.
        let bits = walk.start_index_bits();
        if walk.level_shift(start) >= input_bits || bits > g - 3 + 4 {
            return bad();
        }
        if walk.ttb >> oas != 0 {
            return bad();
        }
        Some(StageCfg {
            walk,
            record: s[2] & ste::S2R != 0,
            disabled: false,
        })
    } else {
        None
    };
    let s1cfg = if s1 {
        let ctx = s[0] & ste::S1CTXPTR_MASK;
        let cdmax = (s[0] >> ste::S1CDMAX_SHIFT) as u32;
        let fmt = field(s[0], ste::S1FMT_SHIFT, 2);
        if ctx >> oas != 0 || cdmax > c.ssid_bits() || fmt == 3 {
            return bad();
        }
        // Transactions carry no SubstreamID here: they use CD 0 (S1DSS = SSID0 semantics).
        let mut cd_addr = ctx;
        if cdmax > 0 && fmt != ste::S1FMT_LINEAR {
            let Some(l1) = mem.load_word(PhysAddr::new(ctx)) else {
                return err(id::F_CD_FETCH, ctx);
            };
            if l1 & 1 == 0 {
                return err(id::C_BAD_SUBSTREAMID, 0);
            }
            cd_addr = l1 & smmuv3_arch::genmask(51, 12);
        }
        // A nested stage 1 finds its CD by IPA, through stage 2.
        if let Some(s2) = &s2cfg {
            cd_addr = match s2.walk.run(mem, cd_addr, &mut |a| Ok(a)) {
                Ok(l) if l.read => l.out,
                _ => return err(id::F_CD_FETCH, cd_addr),
            };
        }
        // Past any stage 2, the CD address is a physical one.
        let Some(d) = read_words::<4>(mem, PhysAddr::new(cd_addr)) else {
            return err(id::F_CD_FETCH, cd_addr);
        };
        Some(decode_cd(c, &d)?)
    } else {
        None
    };
    Ok(StreamCfg::Translate(TransCfg {
        vmid,
        s1: s1cfg,
        s2: s2cfg,
    }))
}

fn decode_cd(c: &SmmuV3Config, d: &[u64; 4]) -> Result<S1Cfg, CfgError> {
    let bad = || err(id::C_BAD_CD, 0);
    let d0 = d[0];
    if d0 & cd::V == 0 || d0 & cd::AA64 == 0 {
        return bad();
    }
    let tsz = field(d0, cd::T0SZ_SHIFT, 6) as u32;
    let Some(g) = granule_of_tg0(field(d0, cd::TG0_SHIFT, 2)).filter(|&g| c.granule(g)) else {
        return bad();
    };
    // 48-bit VA without VAX; T0SZ above 39 is out of the architecture's range.
    if !(16..=39).contains(&tsz) {
        return bad();
    }
    let oas = c.oas();
    let ips = smmuv3_arch::regs::idr5::oas_bits(field(d0, cd::IPS_SHIFT, 3) as u32)
        .unwrap_or(oas)
        .min(oas);
    let input_bits = 64 - tsz;
    let walk = Walk {
        granule_shift: g,
        input_bits,
        start_level: Walk::s1_start_level(g, input_bits),
        ttb: d[1] & cd::TTB0_MASK,
        oas: ips,
        stage2: false,
        affd: d0 & cd::AFFD != 0,
    };
    if walk.ttb >> ips != 0 {
        return bad();
    }
    Ok(S1Cfg {
        asid: (d0 >> cd::ASID_SHIFT) as u16,
        walk: StageCfg {
            walk,
            record: d0 & cd::R != 0,
            disabled: d0 & cd::EPD0 != 0,
        },
    })
}
