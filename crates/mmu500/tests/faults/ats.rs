//! The ATS1PR address translation operation: PAR, ATSR, and no fault recorded.

use super::*;

/// The LS1028A's MMU-500 has no address translation operations (ID0.ATOSNS): the ATS tests
/// run on the same model with them implemented.
fn with_atos(ats_polls: u32) -> Mmu500Config {
    Mmu500Config {
        atos: true,
        ats_polls,
        ..Mmu500Config::mmu500_ls1028a()
    }
}

#[test]
fn ats1pr_writes_par_and_records_no_fault() {
    let (r, _pt) = booted_with(with_atos(0));
    let s = &r.smmu;
    let b = cbo(s, 0);
    s.write64(b + cb::ATS1PR, IOVA + 0x123);
    assert_eq!(s.read32(b + cb::ATSR), 0);
    let par = s.read64(b + cb::PAR);
    assert_eq!(par & 1, 0);
    assert_eq!(par & smmu_arch::regs::par::PA_MASK, DATA);
    // IOMMU_CACHE → AttrIndx 1 → MAIR byte 0xff; inner shareable.
    assert_eq!(par >> 56, 0xff);
    // The whole value, bit by bit: MAIR byte [63:56], the page, SH = 3 (inner) at [8:7], F = 0.
    assert_eq!(par, 0xff00_0000_0000_0000 | DATA | 0x180);
    // 32-bit halves (low then high) work too.
    s.write32(b + cb::ATS1PR, (IOVA + 0x1000) as u32);
    s.write32(b + cb::ATS1PR + 4, 0);
    assert_eq!(
        s.read64(b + cb::PAR) & smmu_arch::regs::par::PA_MASK,
        DATA + 0x1000
    );
    // A hole: F = 1, FST = translation fault level 3; FSR untouched.
    s.write64(b + cb::ATS1PR, IOVA + 0x7000);
    assert_eq!(s.read64(b + cb::PAR), 1 | (0x7 << 1));
    assert_eq!(s.read32(b + cb::FSR), 0);
    // ATS1PW on a read-only page: permission fault level 3.
    s.write64(b + cb::ATS1PW, IOVA + 0x1000);
    assert_eq!(s.read64(b + cb::PAR), 1 | (0xf << 1));
}

#[test]
fn atsr_reads_active_while_the_operation_runs_then_par_holds_the_result() {
    let (r, _pt) = booted_with(with_atos(3));
    let s = &r.smmu;
    let b = cbo(s, 0);
    s.write64(b + cb::PAR, 0);
    s.write64(b + cb::ATS1PR, IOVA);
    // Three reads see ACTIVE; PAR keeps its old value until the operation completes.
    for i in 0..3 {
        assert_eq!(s.read64(b + cb::PAR), 0, "read {i}: PAR before completion");
        assert_eq!(s.read32(b + cb::ATSR), 1, "read {i}: ATSR.ACTIVE");
    }
    assert_eq!(s.read32(b + cb::ATSR), 0);
    assert_eq!(s.read64(b + cb::PAR) & smmu_arch::regs::par::PA_MASK, DATA);
    // Without ATOS the whole interface is RAZ/WI.
    let (r, _pt) = booted();
    let s = &r.smmu;
    s.write64(b + cb::ATS1PR, IOVA);
    assert_eq!((s.read32(b + cb::ATSR), s.read64(b + cb::PAR)), (0, 0));
}
