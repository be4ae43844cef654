//! A `Port` (a master's TBU) answers repeats from its own micro-TLB without the model's lock,
//! and must never be observably different from `Mmu500::translate` except where the
//! architecture lets a TLB keep an entry: same stale results until the right TLBI, same faults
//! and fault records, same events, exact counters.

mod common;

use common::*;
use mmu500::{Mmu500Config, TraceEvent, Translation, PORT_UTLB_ENTRIES};
use pgtable::Prot;
use proptest::prelude::*;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{cb, gr0, scr0};
use smmu_arch::{Access, Mmio};
use std::sync::{Arc, Mutex};

const SID: u32 = 0x429;
const IOVA: u64 = 0x1000_0000;
const OLD: u64 = 0x9000_0000;
const NEW: u64 = 0x9100_0000;
const PAGES: u64 = 16;

/// LS1028A preset, bank 0 stage 1 (ASID 3) over 16 read/write pages and one read-only page,
/// stream 0x429 matched as Linux matches the ENETC (SMR 0x29, mask 0x7c00).
fn s1_rig() -> (Rig, pgtable::PageTable<pgtable::NoTlb>) {
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let mut pt = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
    pt.map_pages(
        Iova::new(IOVA),
        PhysAddr::new(OLD),
        PageSize::SZ_4K,
        PageCount::new(PAGES),
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(IOVA + PAGES * SZ_4K),
        PhysAddr::new(OLD + PAGES * SZ_4K),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    program_from(&r.smmu, 0, &pt, 3);
    map_stream(&r.smmu, 0, 0x29, 0x7c00, 0);
    enable(&r.smmu);
    (r, pt)
}

fn pa_hit(t: Translation) -> (u64, bool) {
    match t {
        Translation::Translated { pa, tlb_hit, .. } => (pa.as_u64(), tlb_hit),
        t => panic!("not translated: {t:?}"),
    }
}

#[test]
fn hits_are_counted_as_transactions_and_tlb_hits() {
    let (r, _pt) = s1_rig();
    let mut port = r.smmu.port(SID);
    assert_eq!(port.stream_id(), SID);
    let before = r.smmu.counters();
    for i in 0..100u64 {
        let t = port
            .translate(Iova::new(IOVA + 0x10 + (i & 7)), Access::Read)
            .unwrap();
        assert_eq!(pa_hit(t), (OLD + 0x10 + (i & 7), i != 0));
    }
    let c = r.smmu.counters();
    assert_eq!(c.transactions - before.transactions, 100);
    assert_eq!(c.translated - before.translated, 100);
    assert_eq!(c.tlb_hits - before.tlb_hits, 99);
    assert_eq!(c.walks - before.walks, 1);
    assert_eq!(c.descriptor_reads - before.descriptor_reads, 4);
    // Dropping the port keeps its hits in the totals.
    drop(port);
    assert_eq!(r.smmu.counters(), c);
}

#[test]
fn a_port_entry_is_as_stale_as_the_tlb_until_the_tlbi() {
    let (r, pt) = s1_rig();
    let b = cbo(&r.smmu, 0);
    let mut port = r.smmu.port(SID);
    assert_eq!(
        pa_hit(port.translate(Iova::new(IOVA + 8), Access::Read).unwrap()),
        (OLD + 8, false)
    );
    retarget(&r, &pt, IOVA, NEW);
    assert_eq!(
        pa_hit(port.translate(Iova::new(IOVA + 8), Access::Read).unwrap()),
        (OLD + 8, true),
        "stale until invalidated, as the main TLB"
    );
    // The wrong ASID is a register write too: the port asks the TCU again, whose TLB still
    // holds the stale entry.
    r.smmu.write64(b + cb::S1_TLBIVA, tlbiva(IOVA, 4));
    assert_eq!(
        pa_hit(port.translate(Iova::new(IOVA + 8), Access::Read).unwrap()),
        (OLD + 8, true)
    );
    r.smmu.write64(b + cb::S1_TLBIVA, tlbiva(IOVA, 3));
    r.smmu.write32(b + cb::TLBSYNC, 0);
    assert_eq!(
        pa_hit(port.translate(Iova::new(IOVA + 8), Access::Read).unwrap()),
        (NEW + 8, false)
    );
}

#[test]
fn register_writes_and_reset_reach_the_next_transaction() {
    let (r, _pt) = s1_rig();
    let b = cbo(&r.smmu, 0);
    let mut port = r.smmu.port(SID);
    port.translate(Iova::new(IOVA), Access::Write).unwrap();
    port.translate(Iova::new(IOVA), Access::Write).unwrap();
    // SCTLR.M off: the bank bypasses from the next transaction on.
    r.smmu.write32(b + cb::SCTLR, 0x1066);
    assert_eq!(
        port.translate(Iova::new(IOVA), Access::Write).unwrap(),
        Translation::Bypass {
            pa: PhysAddr::new(IOVA),
            reason: mmu500::BypassReason::CbDisabled
        }
    );
    r.smmu.write32(b + cb::SCTLR, 0x1067);
    assert_eq!(
        pa_hit(port.translate(Iova::new(IOVA), Access::Write).unwrap()).0,
        OLD
    );
    // A board reset: CLIENTPD again, and every counter back to zero, the port's included.
    r.smmu.reset();
    assert_eq!(r.smmu.counters(), mmu500::Mmu500Counters::default());
    assert_eq!(
        port.translate(Iova::new(IOVA), Access::Write).unwrap(),
        Translation::Bypass {
            pa: PhysAddr::new(IOVA),
            reason: mmu500::BypassReason::ClientPd
        }
    );
    assert_eq!(r.smmu.counters().bypass_clientpd, 1);
    assert_eq!(r.smmu.read32(gr0::SCR0) & scr0::CLIENTPD, scr0::CLIENTPD);
}

#[test]
fn a_write_to_a_read_only_page_faults_after_read_hits() {
    let (r, _pt) = s1_rig();
    let b = cbo(&r.smmu, 0);
    let mut port = r.smmu.port(SID);
    let ro = IOVA + PAGES * SZ_4K;
    for _ in 0..3 {
        port.translate(Iova::new(ro + 0x40), Access::Read).unwrap();
    }
    let e = port
        .translate(Iova::new(ro + 0x40), Access::Write)
        .unwrap_err();
    assert!(
        matches!(
            e,
            mmu500::DmaFault::Context {
                kind: mmu500::ContextFaultKind::Permission,
                cb: 0,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(r.smmu.read32(b + cb::FSR) & 0x8, 0x8, "FSR.PF");
    assert_eq!(r.smmu.read64(b + cb::FAR), ro + 0x40);
    assert_eq!(r.smmu.counters().fault_permission, 1);
}

#[test]
fn with_a_trace_sink_every_transaction_is_an_event() {
    let (r, _pt) = s1_rig();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    r.smmu.set_event_sink(Arc::new(move |e| {
        if let TraceEvent::Translated { iova, tlb_hit, .. } = e {
            s2.lock().unwrap().push((*iova, *tlb_hit));
        }
    }));
    let mut port = r.smmu.port(SID);
    for _ in 0..3 {
        port.translate(Iova::new(IOVA + 4), Access::Read).unwrap();
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (Iova::new(IOVA + 4), false),
            (Iova::new(IOVA + 4), true),
            (Iova::new(IOVA + 4), true)
        ]
    );
}

#[test]
fn dma_through_a_port_lands_where_translate_says() {
    let (r, _pt) = s1_rig();
    let mut port = r.smmu.port(SID);
    let data: Vec<u8> = (0..6000u32).map(|i| (i * 7) as u8).collect();
    let chunks = port.dma_write(Iova::new(IOVA + 0x100), &data).unwrap();
    assert_eq!(
        chunks.len(),
        2,
        "6000 bytes from 0x100 span two 4 KiB pages"
    );
    let mut back = vec![0u8; data.len()];
    r.mem
        .read_bytes(PhysAddr::new(OLD + 0x100), &mut back)
        .unwrap();
    assert_eq!(back, data);
    let mut again = vec![0u8; data.len()];
    port.dma_read(Iova::new(IOVA + 0x100), &mut again).unwrap();
    assert_eq!(again, data);
    // Off the end of the mapping (the read-only page, then nothing): a translation fault
    // after the 8 bytes before it.
    let e = port
        .dma_read(Iova::new(IOVA + (PAGES + 1) * SZ_4K - 8), &mut [0u8; 16])
        .unwrap_err();
    assert!(
        matches!(
            e,
            mmu500::BusError::Fault {
                done: 8,
                fault: mmu500::DmaFault::Context {
                    kind: mmu500::ContextFaultKind::Translation,
                    ..
                }
            }
        ),
        "{e:?}"
    );
}

#[test]
fn ports_of_two_streams_do_not_share_entries() {
    let (r, _pt) = s1_rig();
    let mut a = r.smmu.port(SID);
    let mut b = r.smmu.port(0x42a);
    a.translate(Iova::new(IOVA), Access::Read).unwrap();
    // Stream 0x42a matches no SMR: it faults (USFCFG) no matter what port 0x429 cached.
    assert!(b.translate(Iova::new(IOVA), Access::Read).is_err());
    assert_eq!(r.smmu.read32(gr0::SGFSR), 0x2);
}

/// One step of a driver that follows the rules (every table change is followed by its TLBI).
#[derive(Debug, Clone)]
enum Step {
    Xlate {
        page: u64,
        write: bool,
    },
    /// Point `page` somewhere else, then TLBIVA it.
    Remap {
        page: u64,
        to: u64,
    },
    /// Unmap `page` (the next access faults), then TLBIVAL it.
    Unmap {
        page: u64,
    },
    /// Toggle SCTLR.M.
    Toggle,
    /// TLBIASID for ASID 3.
    FlushAsid,
    /// Clear the fault status (as the driver's handler does).
    ClearFsr,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let page = 0..(PAGES + 2);
    prop::collection::vec(
        prop_oneof![
            6 => (page.clone(), any::<bool>()).prop_map(|(page, write)| Step::Xlate { page, write }),
            1 => (0..PAGES, 0u64..64).prop_map(|(page, to)| Step::Remap { page, to }),
            1 => (0..PAGES).prop_map(|page| Step::Unmap { page }),
            1 => Just(Step::Toggle),
            1 => Just(Step::FlushAsid),
            1 => Just(Step::ClearFsr),
        ],
        1..200,
    )
}

/// Run `steps` on a fresh rig, translating through a port or through `translate`; returns
/// every translation result and the fault-visible state at the end.
fn run(steps: &[Step], via_port: bool) -> (Vec<String>, Vec<u64>) {
    let (r, pt) = s1_rig();
    let b = cbo(&r.smmu, 0);
    let mut port = r.smmu.port(SID);
    let mut out = Vec::new();
    let mut on = true;
    for s in steps {
        match *s {
            Step::Xlate { page, write } => {
                let a = if write { Access::Write } else { Access::Read };
                let iova = IOVA + page * SZ_4K + 0x18;
                let t = if via_port {
                    port.translate(Iova::new(iova), a)
                } else {
                    r.smmu.translate(SID, Iova::new(iova), a)
                };
                // Whether it hit a TLB depends on which TLB; everything else must agree.
                out.push(format!("{:?}", t.map(|t| (t.pa(), t.is_translated()))));
            }
            Step::Remap { page, to } => {
                let iova = IOVA + page * SZ_4K;
                if pt.leaf(Iova::new(iova)).is_some() {
                    retarget(&r, &pt, iova, NEW + to * SZ_4K);
                    r.smmu.write64(b + cb::S1_TLBIVA, tlbiva(iova, 3));
                }
            }
            Step::Unmap { page } => {
                let iova = IOVA + page * SZ_4K;
                if let Some(l) = pt.leaf(Iova::new(iova)) {
                    r.mem.write_u64(l.pte_pa, 0).unwrap();
                    r.smmu.write64(b + cb::S1_TLBIVAL, tlbiva(iova, 3));
                }
            }
            Step::Toggle => {
                on = !on;
                r.smmu
                    .write32(b + cb::SCTLR, if on { 0x1067 } else { 0x1066 });
            }
            Step::FlushAsid => r.smmu.write32(b + cb::S1_TLBIASID, 3),
            Step::ClearFsr => {
                let v = r.smmu.read32(b + cb::FSR);
                r.smmu.write32(b + cb::FSR, v);
            }
        }
    }
    let c = r.smmu.counters();
    let regs = vec![
        u64::from(r.smmu.read32(b + cb::FSR)),
        r.smmu.read64(b + cb::FAR),
        u64::from(r.smmu.read32(b + cb::FSYNR0)),
        c.transactions,
        c.translated,
        c.bypass_cb_disabled,
        c.fault_translation,
        c.fault_permission,
        c.tlb_hits + c.tlb_misses + c.bypass_cb_disabled + c.fault_translation,
    ];
    (out, regs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// With a driver that invalidates after every change, a port and `translate` give the same
    /// result for every transaction and leave the same fault registers and counters.
    #[test]
    fn a_port_is_indistinguishable_from_translate(steps in steps()) {
        let direct = run(&steps, false);
        let ported = run(&steps, true);
        prop_assert_eq!(direct, ported);
    }
}

#[test]
fn the_micro_tlb_is_direct_mapped_by_page() {
    // Two pages PORT_UTLB_ENTRIES apart share a slot: alternating between them never hits the
    // port, but the TCU's TLB still answers without walking.
    let r = rig(Mmu500Config::mmu500_ls1028a());
    let mut pt = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
    let far = IOVA + PORT_UTLB_ENTRIES as u64 * SZ_4K;
    pt.map_pages(
        Iova::new(IOVA),
        PhysAddr::new(OLD),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    pt.map_pages(
        Iova::new(far),
        PhysAddr::new(NEW),
        PageSize::SZ_4K,
        PageCount::ONE,
        Prot::READ,
    )
    .unwrap();
    program_from(&r.smmu, 0, &pt, 3);
    map_stream(&r.smmu, 0, 0x29, 0x7c00, 0);
    enable(&r.smmu);
    let mut port = r.smmu.port(SID);
    for _ in 0..4 {
        assert_eq!(
            pa_hit(port.translate(Iova::new(IOVA), Access::Read).unwrap()).0,
            OLD
        );
        assert_eq!(
            pa_hit(port.translate(Iova::new(far), Access::Read).unwrap()).0,
            NEW
        );
    }
    let c = r.smmu.counters();
    assert_eq!(c.walks, 2);
    assert_eq!(c.tlb_hits, 6);
}
