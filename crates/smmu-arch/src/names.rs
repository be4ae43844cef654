//! Register names by offset, for bus logs (`smmu-lab run --mmio-log`).
//!
//! The SMMUv2 window is paged: GR0 is page 0, GR1 page 1, and context bank *n* is page
//! `numpage + n` (see [`crate::regs`]). Names are the architecture's (`sCR0`, `SMR3`,
//! `CB2.SCTLR`); an offset the map does not name is `GR0+0x...`, `CB1+0x...` or `?`.

use crate::regs::{cb, gr0, gr1, id1};

/// Where the pages of one SMMUv2 register window are, as its ID1 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowGeometry {
    /// Bytes per register page (4 KiB or 64 KiB, ID1.PAGESIZE).
    pub page_size: u64,
    /// Pages of global space before the first context bank (`2^(NUMPAGENDXB + 1)`).
    pub num_pages: u64,
    /// Context banks implemented (ID1.NUMCB).
    pub num_cb: u64,
}

impl WindowGeometry {
    /// The geometry an ID1 value describes.
    pub fn from_id1(id1_value: u32) -> WindowGeometry {
        let page_size = if id1_value & id1::PAGESIZE != 0 {
            64 << 10
        } else {
            4 << 10
        };
        let ndx = crate::regs::field(id1_value, id1::NUMPAGENDXB_SHIFT, id1::NUMPAGENDXB_WIDTH);
        WindowGeometry {
            page_size,
            num_pages: 1 << (ndx + 1),
            num_cb: u64::from(crate::regs::field(
                id1_value,
                id1::NUMCB_SHIFT,
                id1::NUMCB_WIDTH,
            )),
        }
    }
}

const GR0: &[(u64, &str)] = &[
    (gr0::SCR0, "sCR0"),
    (gr0::SACR, "sACR"),
    (gr0::ID0, "sIDR0"),
    (gr0::ID1, "sIDR1"),
    (gr0::ID2, "sIDR2"),
    (gr0::ID3, "sIDR3"),
    (gr0::ID4, "sIDR4"),
    (gr0::ID5, "sIDR5"),
    (gr0::ID6, "sIDR6"),
    (gr0::ID7, "sIDR7"),
    (gr0::SGFAR, "sGFAR"),
    (gr0::SGFSR, "sGFSR"),
    (gr0::SGFSRRESTORE, "sGFSRRESTORE"),
    (gr0::SGFSYNR0, "sGFSYNR0"),
    (gr0::SGFSYNR1, "sGFSYNR1"),
    (gr0::SGFSYNR2, "sGFSYNR2"),
    (gr0::TLBIVMID, "TLBIVMID"),
    (gr0::TLBIALLNSNH, "TLBIALLNSNH"),
    (gr0::TLBIALLH, "TLBIALLH"),
    (gr0::STLBGSYNC, "sTLBGSYNC"),
    (gr0::STLBGSTATUS, "sTLBGSTATUS"),
];

const CB: &[(u64, &str)] = &[
    (cb::SCTLR, "SCTLR"),
    (cb::ACTLR, "ACTLR"),
    (cb::RESUME, "RESUME"),
    (cb::TCR2, "TCR2"),
    (cb::TTBR0, "TTBR0"),
    (cb::TTBR1, "TTBR1"),
    (cb::TCR, "TCR"),
    (cb::CONTEXTIDR, "CONTEXTIDR"),
    (cb::S1_MAIR0, "MAIR0"),
    (cb::S1_MAIR1, "MAIR1"),
    (cb::PAR, "PAR"),
    (cb::FSR, "FSR"),
    (cb::FSRRESTORE, "FSRRESTORE"),
    (cb::FAR, "FAR"),
    (cb::FSYNR0, "FSYNR0"),
    (cb::FSYNR1, "FSYNR1"),
    (cb::S1_TLBIVA, "TLBIVA"),
    (cb::S1_TLBIVAA, "TLBIVAA"),
    (cb::S1_TLBIASID, "TLBIASID"),
    (cb::S1_TLBIALL, "TLBIALL"),
    (cb::S1_TLBIVAL, "TLBIVAL"),
    (cb::S1_TLBIVAAL, "TLBIVAAL"),
    (cb::S2_TLBIIPAS2, "TLBIIPAS2"),
    (cb::S2_TLBIIPAS2L, "TLBIIPAS2L"),
    (cb::TLBSYNC, "TLBSYNC"),
    (cb::TLBSTATUS, "TLBSTATUS"),
    (cb::ATS1PR, "ATS1PR"),
    (cb::ATS1PW, "ATS1PW"),
    (cb::ATSR, "ATSR"),
];

fn lookup(table: &[(u64, &'static str)], off: u64) -> Option<&'static str> {
    table.iter().find(|(o, _)| *o == off).map(|(_, n)| *n)
}

/// The architecture's name of the register at `offset` in a window laid out as `g`.
pub fn register_name(offset: u64, g: WindowGeometry) -> String {
    let page = offset / g.page_size;
    let within = offset % g.page_size;
    let indexed = |base: u64, stride: u64, count: u64, name: &str| {
        (within >= base && within < base + stride * count && (within - base).is_multiple_of(stride))
            .then(|| format!("{name}{}", (within - base) / stride))
    };
    match page {
        0 => lookup(GR0, within)
            .map(String::from)
            .or_else(|| indexed(gr0::SMR, 4, 128, "SMR"))
            .or_else(|| indexed(gr0::S2CR, 4, 128, "S2CR"))
            .unwrap_or_else(|| format!("GR0+0x{within:x}")),
        1 => indexed(gr1::CBAR, 4, g.num_cb, "CBAR")
            .or_else(|| indexed(gr1::CBFRSYNRA, 4, g.num_cb, "CBFRSYNRA"))
            .or_else(|| indexed(gr1::CBA2R, 4, g.num_cb, "CBA2R"))
            .unwrap_or_else(|| format!("GR1+0x{within:x}")),
        p if p >= g.num_pages && p - g.num_pages < g.num_cb => {
            let n = p - g.num_pages;
            match lookup(CB, within) {
                Some(name) => format!("CB{n}.{name}"),
                None => format!("CB{n}+0x{within:x}"),
            }
        }
        _ => "?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The LS1028A's MMU-500: 64 KiB pages, NUMPAGENDXB = 3 (16 pages of global space),
    /// 64 context banks.
    #[test]
    fn names_follow_the_paged_layout() {
        let g = WindowGeometry::from_id1(id1::PAGESIZE | (3 << id1::NUMPAGENDXB_SHIFT) | 64);
        assert_eq!(
            g,
            WindowGeometry {
                page_size: 0x1_0000,
                num_pages: 16,
                num_cb: 64
            }
        );
        for (off, name) in [
            (0x0, "sCR0"),
            (0x24, "sIDR1"),
            (0x48, "sGFSR"),
            (0x800 + 4 * 5, "SMR5"),
            (0xc00 + 4 * 127, "S2CR127"),
            (0x1_0000 + 4 * 2, "CBAR2"),
            (0x1_0800 + 4 * 63, "CBA2R63"),
            (0x10_0000, "CB0.SCTLR"),
            (0x10_0000 + 3 * 0x1_0000 + 0x20, "CB3.TTBR0"),
            (0x10_0000 + 0x7f0, "CB0.TLBSYNC"),
            (0x10_0000 + 0x44, "CB0+0x44"),
            (0x2_0000, "?"),
            (0x10_0000 + 64 * 0x1_0000, "?"),
            (0xe00, "GR0+0xe00"),
        ] {
            assert_eq!(register_name(off, g), name, "{off:#x}");
        }
    }
}
