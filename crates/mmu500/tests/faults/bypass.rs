//! Transactions that are not translated, each with the reason the model gives.

use super::*;

#[test]
fn bypass_paths_say_why() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s = &r.smmu;
    // Reset: CLIENTPD = 1, everything passes untranslated.
    assert_eq!(
        s.translate(ENETC_SID, Iova::new(0x1234), Access::Write),
        Ok(Translation::Bypass {
            pa: PhysAddr::new(0x1234),
            reason: BypassReason::ClientPd
        })
    );
    let (r, _pt) = booted();
    let s = &r.smmu;
    // Unmatched with USFCFG = 0.
    s.write32(gr0::SCR0, SCR0_LINUX & !smmu_arch::regs::scr0::USFCFG);
    assert_eq!(
        s.translate(0x7, Iova::new(0x5000), Access::Read),
        Ok(Translation::Bypass {
            pa: PhysAddr::new(0x5000),
            reason: BypassReason::UnmatchedBypass
        })
    );
    // S2CR BYPASS.
    s.write32(gr0::s2cr(3), 0x1_0000);
    s.write32(gr0::smr(3), 0x8000_0007);
    assert_eq!(
        s.translate(0x7, Iova::new(0x5000), Access::Read),
        Ok(Translation::Bypass {
            pa: PhysAddr::new(0x5000),
            reason: BypassReason::S2crBypass
        })
    );
    // Bank with SCTLR.M = 0.
    s.write32(cbo(s, 0) + cb::SCTLR, 0);
    assert_eq!(
        s.translate(ENETC_SID, Iova::new(IOVA), Access::Read),
        Ok(Translation::Bypass {
            pa: PhysAddr::new(IOVA),
            reason: BypassReason::CbDisabled
        })
    );
    s.write32(cbo(s, 0) + cb::SCTLR, 0x1067);
    assert_eq!(
        s.translate(ENETC_SID, Iova::new(IOVA), Access::Read)
            .unwrap()
            .pa()
            .as_u64(),
        DATA
    );
    // v6.1 shutdown: sCR0 = 0x1 (CLIENTPD) with SMRs and banks intact: DMA goes untranslated.
    s.write32(gr0::SCR0, 0x1);
    assert_eq!(
        s.translate(ENETC_SID, Iova::new(IOVA), Access::Write),
        Ok(Translation::Bypass {
            pa: PhysAddr::new(IOVA),
            reason: BypassReason::ClientPd
        })
    );
    let c = s.counters();
    assert_eq!(
        (
            c.bypass_clientpd,
            c.bypass_unmatched,
            c.bypass_s2cr,
            c.bypass_cb_disabled
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(s.read32(gr0::SGFSR), 0);
}
