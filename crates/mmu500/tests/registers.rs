//! Register file: reset values, read-back masks, W1C, RAZ/WI, access widths, ID round trips.

mod common;

use common::*;
use mmu500::{ArchVersion, Mmu500Config, TraceEvent};
use physmem::PhysAddr;
use smmu_arch::regs::{cb, gr0, gr1};
use smmu_arch::Mmio;
use std::sync::{Arc, Mutex};

fn ids(s: &impl Mmio) -> [u32; 4] {
    [
        s.read32(gr0::ID0),
        s.read32(gr0::ID1),
        s.read32(gr0::ID2),
        s.read32(gr0::ID7),
    ]
}

#[test]
fn ls1028a_reset_values_and_window() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s = &r.smmu;
    assert_eq!(s.window_size(), 0x80_0000);
    assert_eq!(s.read32(gr0::SCR0), 0x0020_0001);
    // ID0 is the value read on LS1028A silicon (LKML, 8 Dec 2022): S1TS S2TS NTS SMS ATOSNS |
    // NUMIRPT 1 | BTM | NUMSIDB 15 | NUMSMRG 128. ID1: PAGESIZE, NUMPAGENDXB 5, 64 banks.
    // ID2: IAS = OAS = UBS = 48, 4K and 64K granules (page sizes 0x61311000 in LS1028A logs).
    assert_eq!(
        ids(&**s),
        [0x7c01_3e80, 0xd000_0040, 0x0000_5555, 0x0000_0021]
    );
    assert_eq!(s.read32(gr0::SGFSR), 0);
    assert_eq!(s.read32(gr0::STLBGSTATUS), 0);
    for n in [0u32, 1, 63] {
        let b = cbo(s, n);
        assert_eq!(b, 0x40_0000 + u64::from(n) * 0x1_0000);
        assert_eq!(s.read32(b + cb::SCTLR), 0x0000_0100, "CB{n} SCTLR");
        assert_eq!(s.read32(b + cb::FSR), 0);
        assert_eq!(s.read64(b + cb::TTBR0), 0);
        assert_eq!(s.read32(b + cb::ACTLR), 0x3);
    }
    assert_eq!(s.read32(gr0::smr(0)), 0);
    assert_eq!(s.read32(gr0::s2cr(127)), 0x0002_0000);
    assert_eq!(s.read32(gr0::SACR), 1 << 26);
}

#[test]
fn xilinx_reference_ids_are_reproduced_by_its_configuration() {
    // reference §2.5: ID0 0xfc013e30, ID2 0x5555, ID7 0x21 (NUMSSDNDXB in ID1 is not modelled).
    let cfg = Mmu500Config {
        ses: true,
        num_smrg: 48,
        num_cb: 16,
        num_context_irqs: 1,
        atos: false,
        coherent_walk: false,
        granule_16k: false,
        page_64k: false,
        numpagendxb: 3,
        ..Mmu500Config::mmu500_ls1028a()
    };
    assert_eq!(cfg.id0(), 0xfc01_3e30);
    assert_eq!(cfg.id1(), 0x3000_0010);
    assert_eq!(cfg.id2(), 0x0000_5555);
    assert_eq!(cfg.id7(), 0x0000_0021);
}

#[test]
fn id_registers_decode_back_into_each_preset() {
    for (cfg, v1_64k) in [
        (Mmu500Config::mmu500_ls1028a(), false),
        (Mmu500Config::smmuv2_generic(), false),
        (Mmu500Config::mmu401(), true),
    ] {
        let r = rig(cfg.clone());
        let got = Mmu500Config::decode_ids(cfg.version, v1_64k, ids(&*r.smmu));
        assert_eq!(got, cfg.id_view(), "{}", cfg.name);
        // The window size follows from ID1 as the driver computes it (reference §1).
        let pgshift = if got.page_64k { 16 } else { 12 };
        let numpage = 1u64 << (got.numpagendxb + 1);
        assert_eq!((2 * numpage) << pgshift, r.smmu.window_size());
    }
    assert_eq!(Mmu500Config::mmu401().version, ArchVersion::V1);
    let gen = Mmu500Config::smmuv2_generic();
    assert!(!gen.stream_match && gen.num_groups() == 128 && gen.num_s2cb == 4);
}

#[test]
fn invalid_configurations_are_rejected() {
    let bad = [
        Mmu500Config {
            stage1: false,
            stage2: false,
            nested: false,
            ..Mmu500Config::smmuv2_generic()
        },
        Mmu500Config {
            num_cb: 0,
            ..Mmu500Config::smmuv2_generic()
        },
        Mmu500Config {
            num_cb: 17,
            ..Mmu500Config::smmuv2_generic()
        },
        Mmu500Config {
            num_s2cb: 20,
            ..Mmu500Config::smmuv2_generic()
        },
        Mmu500Config {
            ias: 47,
            ..Mmu500Config::smmuv2_generic()
        },
        Mmu500Config {
            num_sid_bits: 9,
            ..Mmu500Config::smmuv2_generic()
        },
        Mmu500Config {
            tlb_entries: 0,
            ..Mmu500Config::smmuv2_generic()
        },
    ];
    let mem =
        Arc::new(physmem::PhysMem::new(&[physmem::Region::new(PhysAddr::new(0), 0x1000)]).unwrap());
    for c in bad {
        assert!(mmu500::Mmu500::new(c, mem.clone()).is_err());
    }
}

#[test]
fn linux_reset_value_and_smr_width_probe_read_back() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s = &r.smmu;
    enable(s);
    assert_eq!(s.read32(gr0::SCR0), SCR0_LINUX);
    // Unimplemented sCR0 bits (EXIDENABLE without EXIDS, bit 30, VMID16EN without VMID16).
    s.write32(gr0::SCR0, 0xffff_ffff);
    assert_eq!(s.read32(gr0::SCR0), 0x3fff_fff7);
    // Linux's SMR mask test (reference §6): ID then MASK, all-ones, read back NUMSIDB bits.
    s.write32(gr0::smr(5), 0x0000_ffff);
    assert_eq!(s.read32(gr0::smr(5)) & 0xffff, 0x7fff);
    s.write32(gr0::smr(5), 0xffff << 16);
    assert_eq!(s.read32(gr0::smr(5)) >> 16, 0xffff); // VALID + 15 mask bits
    s.write32(gr0::smr(5), 0x7fff << 16);
    assert_eq!(s.read32(gr0::smr(5)), 0x7fff_0000);
    // The ENETC SMR: VALID | MASK 0x7c00 | ID 0x29.
    s.write32(gr0::smr(0), 0xfc00_0029);
    assert_eq!(s.read32(gr0::smr(0)), 0xfc00_0029);
    // S2CR: bits 31:30 and EXIDVALID read as zero.
    s.write32(gr0::s2cr(3), 0xffff_ffff);
    assert_eq!(s.read32(gr0::s2cr(3)), 0x3fff_fbff);
    // GR1.
    s.write32(gr1o(s, gr1::cbar(2)), 0xffff_ffff);
    assert_eq!(s.read32(gr1o(s, gr1::cbar(2))), 0x00ff_ffff);
    s.write32(gr1o(s, gr1::cba2r(2)), 0xffff_ffff);
    assert_eq!(s.read32(gr1o(s, gr1::cba2r(2))), 0x3);
    s.write32(gr1o(s, gr1::cbfrsynra(2)), 0x1234);
    assert_eq!(s.read32(gr1o(s, gr1::cbfrsynra(2))), 0);
    // ID registers are read-only.
    s.write32(gr0::ID0, 0);
    assert_eq!(s.read32(gr0::ID0), 0x7c01_3e80);
}

#[test]
fn context_bank_registers_read_back_and_64bit_halves() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s = &r.smmu;
    let b = cbo(s, 7);
    s.write64(b + cb::TTBR0, 0x0007_0000_8123_4000);
    assert_eq!(s.read32(b + cb::TTBR0), 0x8123_4000);
    assert_eq!(s.read32(b + cb::TTBR0 + 4), 0x0007_0000);
    s.write32(b + cb::TTBR1, 0xdead_b000);
    s.write32(b + cb::TTBR1 + 4, 0x0003_0000);
    assert_eq!(s.read64(b + cb::TTBR1), 0x0003_0000_dead_b000);
    s.write64(b + cb::FAR, 0x1234_5678_9abc_def0);
    assert_eq!(s.read64(b + cb::FAR), 0x1234_5678_9abc_def0);
    // No address translation operations on this MMU-500 (ID0.ATOSNS): PAR is RAZ/WI.
    s.write32(b + cb::PAR + 4, 0xffff);
    assert_eq!(s.read64(b + cb::PAR), 0);
    for (off, v) in [
        (cb::TCR, 0x0080_3510),
        (cb::TCR2, 0x0003_8015),
        (cb::S1_MAIR0, 0xf404_ff44),
        (cb::S1_MAIR1, 0x1),
        (cb::CONTEXTIDR, 0x55),
        (cb::FSYNR0, 0x13),
    ] {
        s.write32(b + off, v);
        assert_eq!(s.read32(b + off), v, "offset {off:#x}");
    }
    s.write32(b + cb::SCTLR, 0xffff_ffff);
    assert_eq!(s.read32(b + cb::SCTLR), 0x3fdf_d7ff);
    // Write-only operation registers read as zero.
    s.write64(b + cb::S1_TLBIVA, 0x1_0000);
    assert_eq!(s.read64(b + cb::S1_TLBIVA), 0);
    assert_eq!(s.read32(b + cb::ATSR), 0);
    // ACTLR is locked by sACR.CACHE_LOCK until the MMU-500 reset hook clears it.
    s.write32(b + cb::ACTLR, 0x1);
    assert_eq!(s.read32(b + cb::ACTLR), 0x3);
    s.write32(gr0::SACR, 0x500);
    s.write32(b + cb::ACTLR, 0x1);
    assert_eq!(s.read32(b + cb::ACTLR), 0x1);
}

#[test]
fn fault_status_is_write_one_to_clear() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s = &r.smmu;
    s.write32(gr0::SGFSRRESTORE, 0x8000_0006);
    assert_eq!(s.read32(gr0::SGFSR), 0x8000_0006);
    s.write32(gr0::SGFSR, 0x2);
    assert_eq!(s.read32(gr0::SGFSR), 0x8000_0004);
    s.write32(gr0::SGFSR, 0);
    assert_eq!(s.read32(gr0::SGFSR), 0x8000_0004);
    s.write32(gr0::SGFSR, 0xffff_ffff);
    assert_eq!(s.read32(gr0::SGFSR), 0);
    let b = cbo(s, 1);
    s.write32(b + cb::FSRRESTORE, 0xc000_05fe);
    assert_eq!(s.read32(b + cb::FSR), 0xc000_05fe);
    s.write32(b + cb::FSR, 0x2);
    assert_eq!(s.read32(b + cb::FSR), 0xc000_05fc);
    // Linux's reset writes FSR_FAULT: everything clears, FORMAT with it.
    s.write32(b + cb::FSR, 0xc000_01fe);
    assert_eq!(s.read32(b + cb::FSR), 0);
}

#[test]
fn unimplemented_space_is_raz_wi() {
    let cfg = Mmu500Config {
        num_cb: 4,
        ..Mmu500Config::smmuv2_generic()
    };
    let r = rig(cfg);
    let s = &r.smmu;
    let ps = s.config().page_size();
    // Global pages 2..numpage, context pages beyond NUMCB, beyond the window, unaligned offsets.
    let holes = [
        2 * ps,
        2 * ps + 0x10,
        cbo(s, 4),
        cbo(s, 4) + cb::SCTLR,
        s.window_size(),
        s.window_size() + 0x1000_0000,
        u64::MAX - 3,
        gr0::SCR0 + 1,
        gr0::ID3,
        gr0::SACR, // not an MMU-500
        0x7fc,
    ];
    for off in holes {
        s.write32(off, 0xffff_ffff);
        if off.is_multiple_of(8) {
            s.write64(off, u64::MAX);
        }
        assert_eq!(s.read32(off), 0, "offset {off:#x}");
    }
    // Nothing leaked into implemented registers.
    assert_eq!(s.read32(gr0::SCR0), 0x1);
    assert_eq!(s.read32(cbo(s, 3) + cb::SCTLR), 0);
    // SMRs do not exist on a stream-indexing SMMU; 128 S2CRs do.
    s.write32(gr0::smr(0), 0xffff_ffff);
    assert_eq!(s.read32(gr0::smr(0)), 0);
    s.write32(gr0::s2cr(127), 0x1_0000);
    assert_eq!(s.read32(gr0::s2cr(127)), 0x1_0000);
    // MMU-401 (v1): no CBA2R, no TCR2.
    let r = rig(Mmu500Config::mmu401());
    let s = &r.smmu;
    s.write32(gr1o(s, gr1::cba2r(0)), 1);
    assert_eq!(s.read32(gr1o(s, gr1::cba2r(0))), 0);
    s.write32(cbo(s, 0) + cb::TCR2, 0x15);
    assert_eq!(s.read32(cbo(s, 0) + cb::TCR2), 0);
    // CBAR on v1 keeps IRPTNDX; a stage-1-only SMMU forces the S1 type.
    s.write32(gr1o(s, gr1::cbar(0)), 0x0300_0000);
    assert_eq!(s.read32(gr1o(s, gr1::cbar(0))), 0x0301_0000);
}

#[test]
fn stage2_only_banks_force_the_s2_type() {
    let r = rig(Mmu500Config::smmuv2_generic());
    let s = &r.smmu;
    s.write32(gr1o(s, gr1::cbar(0)), 0x0001_f300);
    assert_eq!(s.read32(gr1o(s, gr1::cbar(0))), 0x0000_f300);
    s.write32(gr1o(s, gr1::cbar(4)), 0x0001_f300);
    assert_eq!(s.read32(gr1o(s, gr1::cbar(4))), 0x0001_f300);
    // VMID16 in CBA2R on an SMMU with VMID16.
    s.write32(gr1o(s, gr1::cba2r(4)), 0xabcd_0001);
    assert_eq!(s.read32(gr1o(s, gr1::cba2r(4))), 0xabcd_0001);
}

#[test]
fn tlb_sync_takes_the_configured_number_of_polls() {
    let cfg = Mmu500Config {
        sync_polls: 2,
        ..Mmu500Config::mmu500_ls1028a()
    };
    let r = rig(cfg);
    let s = &r.smmu;
    s.write32(gr0::STLBGSYNC, 0xffff_ffff);
    let polls: Vec<u32> = (0..4).map(|_| s.read32(gr0::STLBGSTATUS)).collect();
    assert_eq!(polls, [1, 1, 0, 0]);
    let b = cbo(s, 3);
    s.write32(b + cb::TLBSYNC, 0xffff_ffff);
    let polls: Vec<u32> = (0..3).map(|_| s.read32(b + cb::TLBSTATUS)).collect();
    assert_eq!(polls, [1, 1, 0]);
    // Default: done at once.
    let r = rig(Mmu500Config::mmu500_ls1028a());
    r.smmu.write32(gr0::STLBGSYNC, 0xffff_ffff);
    assert_eq!(r.smmu.read32(gr0::STLBGSTATUS), 0);
}

#[test]
fn mmio_writes_are_traced_with_register_names() {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s = &r.smmu;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    s.set_event_sink(Arc::new(move |e: &TraceEvent| {
        sink.lock().unwrap().push(e.clone())
    }));
    s.write32(cbo(s, 3) + cb::SCTLR, 0x1067);
    s.write32(gr0::smr(12), 0);
    s.write64(cbo(s, 0) + cb::TTBR0, 5);
    s.write32(gr1o(s, gr1::cbar(9)), 0);
    s.write32(0x7fc, 1);
    let names: Vec<(u64, Option<String>)> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::MmioWrite { offset, name, .. } => {
                Some((*offset, name.map(|n| n.to_string())))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [
            (0x43_0000, Some("CB3.SCTLR".to_string())),
            (0x830, Some("SMR(12)".to_string())),
            (0x40_0020, Some("CB0.TTBR0".to_string())),
            (0x1_0024, Some("CBAR(9)".to_string())),
            (0x7fc, None),
        ]
    );
}

/// The named values `common::program_s1`/`program_s2` write are the numbers arm-smmu writes.
#[test]
fn helper_register_values_are_the_drivers() {
    assert_eq!(common::S1_CBAR, 0x0001_f300);
    assert_eq!(common::S1_SCTLR, 0x1067);
    assert_eq!(common::S2_SCTLR, 0x67);
}
