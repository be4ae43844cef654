//! The micro-TLBs must be invisible: the same driver actions, with every transaction issued
//! through `Mmu500::translate` (the model's shared micro-TLB) or through each stream's `Port`
//! (its TBU micro-TLB, hit without the lock), give the same results, the same fault records,
//! the same counters and the same TLB contents — including stale entries a driver forgot to
//! invalidate, permission, access-flag and translation faults, setup faults, privilege changes
//! and a stage-2 bank beside the stage-1 one. (This replaces the check of the stage-1-only fast
//! path, which is gone: every transaction now takes the one general path.)

mod common;

use common::*;
use mmu500::{Mmu500, Mmu500Config, ModelSnapshotError, Port};
use pgtable::Prot;
use proptest::prelude::*;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{cb, gr0, s2cr, sctlr, tcr};
use smmu_arch::{Access, Mmio};

const IOVA: u64 = 0x1000_0000;
const PA: u64 = 0x9000_0000;
/// Pages 0..8 read/write, 8..12 read-only, 12..14 unmapped (then remapped by steps).
const PAGES: u64 = 14;
const S1_SID: u32 = 0x429;
const S2_SID: u32 = 0x42a;

#[derive(Debug, Clone)]
enum Step {
    Xlate {
        s2: bool,
        page: u64,
        write: bool,
    },
    Retarget {
        page: u64,
        to: u64,
    },
    ClearAf {
        page: u64,
    },
    Unmap {
        page: u64,
    },
    TlbiVa {
        page: u64,
    },
    TlbiVal {
        page: u64,
    },
    TlbiAsid,
    TlbiAll,
    /// SCTLR with M and AFFD from these bits.
    Sctlr {
        m: bool,
        affd: bool,
    },
    /// EPD0 on or off (TTBR0 walks disabled: a setup fault).
    Epd0(bool),
    /// S2CR.PRIVCFG of the stage-1 stream (unprivileged or privileged transactions).
    Privcfg(u32),
    ClearFsr,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let page = 0..PAGES;
    prop::collection::vec(
        prop_oneof![
            12 => (any::<bool>(), page.clone(), any::<bool>())
                .prop_map(|(s2, page, write)| Step::Xlate { s2, page, write }),
            2 => (page.clone(), 0u64..32).prop_map(|(page, to)| Step::Retarget { page, to }),
            1 => page.clone().prop_map(|page| Step::ClearAf { page }),
            1 => page.clone().prop_map(|page| Step::Unmap { page }),
            1 => page.clone().prop_map(|page| Step::TlbiVa { page }),
            1 => page.clone().prop_map(|page| Step::TlbiVal { page }),
            1 => Just(Step::TlbiAsid),
            1 => Just(Step::TlbiAll),
            1 => (any::<bool>(), any::<bool>()).prop_map(|(m, affd)| Step::Sctlr { m, affd }),
            1 => any::<bool>().prop_map(Step::Epd0),
            1 => prop_oneof![Just(s2cr::PRIVCFG_DEFAULT), Just(s2cr::PRIVCFG_UNPRIV), Just(s2cr::PRIVCFG_PRIV)]
                .prop_map(Step::Privcfg),
            1 => Just(Step::ClearFsr),
        ],
        1..160,
    )
}

/// The scenario's machine: the model, its two ports and the stage-1 table.
struct Bench {
    r: Rig,
    s1_port: Port,
    s2_port: Port,
    pt: pgtable::PageTable<pgtable::NoTlb>,
    tcr0: u32,
}

/// Everything a driver or a simulator could observe after `steps`.
fn run(steps: &[Step], via_ports: bool) -> (Vec<String>, String, Vec<u32>, usize) {
    let mut m = setup();
    let out = apply(&mut m, steps, via_ports);
    observe(&m, out)
}

/// Both banks programmed and the streams mapped.
fn setup() -> Bench {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let s: &Mmu500 = &r.smmu;
    let s1_port = r.smmu.port(S1_SID);
    let s2_port = r.smmu.port(S2_SID);
    // Bank 0: stage 1 (ASID 3), user-accessible pages as Linux maps DMA buffers.
    let mut pt = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
    pt.map_pages(
        Iova::new(IOVA),
        PhysAddr::new(PA),
        PageSize::SZ_4K,
        PageCount::new(8),
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(IOVA + 8 * SZ_4K),
        PhysAddr::new(PA + 8 * SZ_4K),
        PageSize::SZ_4K,
        PageCount::new(4),
        Prot::READ,
    )
    .unwrap();
    program_from(s, 0, &pt, 3);
    map_stream(s, 0, 0x29, 0x7c00, 0);
    // Bank 1: stage 2 only (VMID 2) over the same IPAs.
    let mut s2 = s2_table(&r, pgtable::PGSIZES_4K, 40, 40);
    s2.map_pages(
        Iova::new(IOVA),
        PhysAddr::new(PA),
        PageSize::SZ_4K,
        PageCount::new(12),
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    program_from(s, 1, &s2, 0);
    map_stream(s, 1, 0x2a, 0x7c00, 1);
    enable(s);
    let tcr0 = s.read32(cbo(s, 0) + cb::TCR);
    Bench {
        r,
        s1_port,
        s2_port,
        pt,
        tcr0,
    }
}

/// Run `steps`, returning each translation's result.
fn apply(m: &mut Bench, steps: &[Step], via_ports: bool) -> Vec<String> {
    let Bench {
        r,
        s1_port,
        s2_port,
        pt,
        tcr0,
    } = m;
    let (r, pt, tcr0) = (&*r, &mut *pt, *tcr0);
    let s: &Mmu500 = &r.smmu;
    let b = cbo(s, 0);
    let mut out = Vec::new();
    for st in steps {
        let iova_of = |page: u64| IOVA + page * SZ_4K;
        match *st {
            Step::Xlate { s2, page, write } => {
                let a = if write { Access::Write } else { Access::Read };
                let sid = if s2 { S2_SID } else { S1_SID };
                let iova = iova_of(page) + 0x28;
                let t = match (via_ports, s2) {
                    (false, _) => s.translate(sid, Iova::new(iova), a),
                    (true, false) => s1_port.translate(Iova::new(iova), a),
                    (true, true) => s2_port.translate(Iova::new(iova), a),
                };
                out.push(format!("{t:?}"));
            }
            Step::Retarget { page, to } => {
                if pt.leaf(Iova::new(iova_of(page))).is_some() {
                    retarget(r, pt, iova_of(page), PA + to * SZ_4K);
                } else {
                    pt.map_pages(
                        Iova::new(iova_of(page)),
                        PhysAddr::new(PA + to * SZ_4K),
                        PageSize::SZ_4K,
                        PageCount::ONE,
                        Prot::READ,
                    )
                    .unwrap();
                }
            }
            Step::ClearAf { page } => {
                if let Some(l) = pt.leaf(Iova::new(iova_of(page))) {
                    r.mem
                        .write_u64(l.pte_pa, l.pte.bits() & !(1 << 10))
                        .unwrap();
                }
            }
            Step::Unmap { page } => {
                if let Some(l) = pt.leaf(Iova::new(iova_of(page))) {
                    r.mem.write_u64(l.pte_pa, 0).unwrap();
                }
            }
            Step::TlbiVa { page } => s.write64(b + cb::S1_TLBIVA, tlbiva(iova_of(page), 3)),
            Step::TlbiVal { page } => s.write64(b + cb::S1_TLBIVAL, tlbiva(iova_of(page), 3)),
            Step::TlbiAsid => s.write32(b + cb::S1_TLBIASID, 3),
            Step::TlbiAll => s.write32(gr0::TLBIALLNSNH, 0),
            Step::Sctlr { m, affd } => {
                let mut v = 0x1067 & !(sctlr::M | sctlr::AFFD);
                if m {
                    v |= sctlr::M;
                }
                if affd {
                    v |= sctlr::AFFD;
                }
                s.write32(b + cb::SCTLR, v);
            }
            Step::Epd0(on) => s.write32(
                b + cb::TCR,
                if on {
                    tcr0 | tcr::EPD0
                } else {
                    tcr0 & !tcr::EPD0
                },
            ),
            Step::Privcfg(p) => s.write32(gr0::s2cr(0), p << s2cr::PRIVCFG_SHIFT),
            Step::ClearFsr => {
                let v = s.read32(b + cb::FSR);
                s.write32(b + cb::FSR, v);
            }
        }
    }
    out
}

/// The results with the fault registers, counters and TLB occupancy after them.
fn observe(m: &Bench, out: Vec<String>) -> (Vec<String>, String, Vec<u32>, usize) {
    let s: &Mmu500 = &m.r.smmu;
    let b = cbo(s, 0);
    let b1 = cbo(s, 1);
    let regs = vec![
        s.read32(b + cb::FSR),
        s.read32(b + cb::FAR),
        s.read32(b + cb::FAR + 4),
        s.read32(b + cb::FSYNR0),
        s.read32(b1 + cb::FSR),
        s.read32(gr0::SGFSR),
    ];
    (out, format!("{:?}", s.counters()), regs, s.tlb_entries())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn the_micro_tlbs_are_invisible(steps in steps()) {
        prop_assert_eq!(run(&steps, true), run(&steps, false));
    }

    /// A model (with its ports and memory) restored to a snapshot continues exactly as one
    /// that never ran the steps after it: same translations, fault records, counters (port
    /// hits included) and TLB contents, although the abandoned steps wrote registers, filled
    /// and invalidated the TLBs and moved the register generation on.
    #[test]
    fn a_restored_model_continues_as_one_that_never_left(
        before in steps(),
        // Without page-table maps: the software table object is not the model's to restore.
        after in steps().prop_map(|v| v.into_iter().filter(|s| !matches!(s, Step::Retarget { .. })).collect::<Vec<_>>()),
        next in steps(),
        via_ports in any::<bool>(),
    ) {
        let mut fresh = setup();
        let mut m = setup();
        apply(&mut fresh, &before, via_ports);
        apply(&mut m, &before, via_ports);
        let model = m.r.smmu.snapshot();
        let mem = m.r.mem.snapshot();
        let (p1, p2) = (m.s1_port.snapshot(), m.s2_port.snapshot());
        apply(&mut m, &after, via_ports);
        m.r.mem.restore(&mem).unwrap();
        m.r.smmu.restore(&model).unwrap();
        m.s1_port.restore(&p1).unwrap();
        m.s2_port.restore(&p2).unwrap();
        let (a, b) = (apply(&mut m, &next, via_ports), apply(&mut fresh, &next, via_ports));
        prop_assert_eq!(observe(&m, a), observe(&fresh, b));
    }
}

#[test]
fn a_snapshot_of_another_model_or_port_set_is_refused() {
    let m = setup();
    let other = rig(Mmu500Config::mmu401());
    assert_eq!(
        m.r.smmu.restore(&other.smmu.snapshot()).unwrap_err().to_string(),
        "snapshot of a MMU-401 model restored into a MMU-500 (LS1028A) model of another configuration"
    );
    let no_ports = rig(Mmu500Config::mmu500_ls1028a());
    assert_eq!(
        m.r.smmu.restore(&no_ports.smmu.snapshot()),
        Err(ModelSnapshotError::PortsDiffer {
            snapshot: 0,
            live: 2
        })
    );
    let mut s1 = m.r.smmu.port(S1_SID);
    assert_eq!(
        s1.restore(&m.s2_port.snapshot()),
        Err(ModelSnapshotError::StreamDiffers {
            snapshot: S2_SID,
            port: S1_SID
        })
    );
}

#[test]
fn the_scenario_reaches_every_fault_kind() {
    // Not a speed test: checks that the scenario above does reach faults of every kind, so the
    // property compares more than successful translations.
    let steps = vec![
        Step::Xlate {
            s2: false,
            page: 0,
            write: true,
        },
        Step::Xlate {
            s2: false,
            page: 9,
            write: true,
        },
        Step::ClearAf { page: 1 },
        Step::Xlate {
            s2: false,
            page: 1,
            write: false,
        },
        Step::Xlate {
            s2: false,
            page: 13,
            write: false,
        },
        Step::Epd0(true),
        Step::Xlate {
            s2: false,
            page: 2,
            write: false,
        },
        Step::Xlate {
            s2: true,
            page: 2,
            write: true,
        },
    ];
    let (fast, counters, ..) = run(&steps, true);
    assert!(fast[0].starts_with("Ok(Translated"), "{}", fast[0]);
    assert!(fast[1].contains("Permission"), "{}", fast[1]);
    assert!(fast[2].contains("AccessFlag"), "{}", fast[2]);
    assert!(fast[3].contains("Translation"), "{}", fast[3]);
    assert!(fast[4].contains("Translation"), "{}", fast[4]);
    assert!(fast[5].starts_with("Ok(Translated"), "{}", fast[5]);
    assert!(counters.contains("fault_permission: 1"), "{counters}");
    assert_eq!(run(&steps, false).0, fast);
}
