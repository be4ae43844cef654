//! Property tests: no input panics the model, and translation isolates streams.

mod common;

use common::*;
use mmu500::{Mmu500Config, Translation};
use pgtable::Prot;
use proptest::prelude::*;
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
use smmu_arch::regs::{cb, gr0};
use smmu_arch::{Access, Mmio};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    R32(u64),
    R64(u64),
    W32(u64, u32),
    W64(u64, u64),
    Dma {
        sid: u32,
        iova: u64,
        len: usize,
        write: bool,
    },
}

/// Offsets biased towards real registers (GR0, GR1, the first banks) with raw noise mixed in.
fn offset(window: u64, page: u64, numpage: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u64..0x1000).prop_map(|o| o & !3),
        (0u64..0x1000).prop_map(move |o| page + (o & !3)),
        (0u64..4, 0u64..0x900).prop_map(move |(n, o)| (numpage + n) * page + (o & !3)),
        0u64..window,
        any::<u64>(),
    ]
}

fn ops(window: u64, page: u64, numpage: u64) -> impl Strategy<Value = Vec<Op>> {
    let off = || offset(window, page, numpage);
    let op = prop_oneof![
        off().prop_map(Op::R32),
        off().prop_map(Op::R64),
        (off(), any::<u32>()).prop_map(|(o, v)| Op::W32(o, v)),
        (off(), any::<u64>()).prop_map(|(o, v)| Op::W64(o, v)),
        (any::<u32>(), any::<u64>(), 0usize..0x2100, any::<bool>()).prop_map(
            |(sid, iova, len, write)| Op::Dma {
                sid: sid & 0x7ff,
                iova,
                len,
                write
            }
        ),
        (0u64..0x4000_0000, 0usize..64, any::<bool>()).prop_map(|(iova, len, write)| Op::Dma {
            sid: 0x29,
            iova: DRAM + iova,
            len,
            write
        }),
    ];
    proptest::collection::vec(op, 1..120)
}

fn run_ops(cfg: Mmu500Config, ops: &[Op]) {
    let r = rig(cfg);
    let s = r.smmu.clone();
    let weak = Arc::downgrade(&s);
    s.set_irq_handler(Arc::new(move |_| {
        if let Some(s) = weak.upgrade() {
            let v = s.read32(gr0::SGFSR);
            s.write32(gr0::SGFSR, v);
        }
    }));
    s.set_event_sink(Arc::new(|e| {
        let _ = format!("{e:?}");
    }));
    // A plausible starting point so DMA reaches the walker too.
    let mut pt = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
    pt.map_pages(
        Iova::new(DRAM + 0x1000_0000),
        PhysAddr::new(DRAM + 0x1000_0000),
        PageSize::SZ_4K,
        PageCount::new(16),
        Prot::READ | Prot::WRITE,
    )
    .unwrap();
    program_from(&s, 0, &pt, 1);
    map_stream(&s, 0, 0x29, 0x7c00, 0);
    enable(&s);
    let mut buf = vec![0u8; 0x2100];
    for op in ops {
        match *op {
            Op::R32(o) => {
                s.read32(o);
            }
            Op::R64(o) => {
                s.read64(o);
            }
            Op::W32(o, v) => s.write32(o, v),
            Op::W64(o, v) => s.write64(o, v),
            Op::Dma {
                sid,
                iova,
                len,
                write,
            } => {
                let _ = if write {
                    s.dma_write(sid, Iova::new(iova), &buf[..len])
                } else {
                    s.dma_read(sid, Iova::new(iova), &mut buf[..len])
                };
            }
        }
    }
    s.counters();
    s.tlb_entries();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Any sequence of register accesses (any offset, width, value) interleaved with DMA
    /// neither panics nor deadlocks (the IRQ handler re-enters through MMIO).
    #[test]
    fn arbitrary_mmio_and_dma_never_panic(ops in ops(0x80_0000, 0x1_0000, 64)) {
        run_ops(Mmu500Config::mmu500_ls1028a(), &ops);
    }

    #[test]
    fn arbitrary_mmio_and_dma_never_panic_generic(ops in ops(0x2_0000, 0x1000, 16)) {
        run_ops(Mmu500Config::smmuv2_generic(), &ops);
    }

    #[test]
    fn arbitrary_mmio_and_dma_never_panic_mmu401(ops in ops(0x1_0000, 0x1000, 8)) {
        run_ops(Mmu500Config::mmu401(), &ops);
    }
}

#[derive(Debug, Clone)]
enum Txn {
    Dma {
        stream: usize,
        page: u64,
        off: u64,
        write: bool,
    },
    /// Unmap a page of a stream's context, then invalidate it as a correct driver does.
    Unmap {
        stream: usize,
        page: u64,
    },
    Stranger {
        sid: u32,
        iova: u64,
    },
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// With translation enabled, a transaction only ever reaches a physical page that its own
    /// stream's context maps at that moment; unknown streams never get through.
    #[test]
    fn translation_isolates_streams(
        maps in proptest::collection::vec(proptest::collection::btree_set(0u64..64, 1..24), 3),
        txns in proptest::collection::vec(prop_oneof![
            (0usize..3, 0u64..80, 0u64..4096, any::<bool>())
                .prop_map(|(stream, page, off, write)| Txn::Dma { stream, page, off, write }),
            (0usize..3, 0u64..64).prop_map(|(stream, page)| Txn::Unmap { stream, page }),
            (0u32..0x8000, any::<u64>()).prop_map(|(sid, iova)| Txn::Stranger { sid, iova }),
        ], 1..200),
    ) {
        let r = rig(Mmu500Config { tlb_entries: 16, ..Mmu500Config::mmu500_ls1028a() });
        let s = &r.smmu;
        let sids = [0x29u32, 0x2a, 0x47];
        const IOVA: u64 = 0x10_0000;
        // Each stream's page p maps to its own PA region: stream i, page p → DATA + i MiB + p pages.
        let pa_of = |i: usize, p: u64| 0x9000_0000 + (i as u64) * 0x100_0000 + p * 0x1000;
        let mut pts = Vec::new();
        let mut live: Vec<BTreeMap<u64, u64>> = Vec::new();
        for (i, pages) in maps.iter().enumerate() {
            let mut pt = s1_table(&r, pgtable::PGSIZES_4K, 48, 48);
            let mut m = BTreeMap::new();
            for &p in pages {
                pt.map_pages(Iova::new(IOVA + p * 0x1000), PhysAddr::new(pa_of(i, p)), PageSize::SZ_4K, PageCount::ONE, Prot::READ | Prot::WRITE).unwrap();
                m.insert(p, pa_of(i, p));
            }
            program_from(s, i as u32, &pt, i as u16);
            map_stream(s, i as u32, sids[i], 0x7c00, i as u32);
            pts.push(pt);
            live.push(m);
        }
        enable(s);
        for t in &txns {
            match *t {
                Txn::Dma { stream, page, off, write } => {
                    let iova = IOVA + page * 0x1000 + off;
                    let access = if write { Access::Write } else { Access::Read };
                    // TBU bit 10 set, as the LS1028A delivers it.
                    match s.translate(sids[stream] | 0x400, Iova::new(iova), access) {
                        Ok(Translation::Translated { pa, cb, .. }) => {
                            prop_assert_eq!(cb as usize, stream);
                            prop_assert_eq!(live[stream].get(&page).copied(), Some(pa.as_u64() & !0xfff));
                        }
                        Ok(other) => prop_assert!(false, "untranslated: {:?}", other),
                        Err(_) => prop_assert!(!live[stream].contains_key(&page)),
                    }
                    s.write32(cbo(s, stream as u32) + cb::FSR, 0xc000_01fe);
                }
                Txn::Unmap { stream, page } => {
                    let mut g = pgtable::Gather::default();
                    let iova = IOVA + page * 0x1000;
                    if pts[stream].unmap_pages(Iova::new(iova), PageSize::SZ_4K, PageCount::ONE, &mut g) == SZ_4K {
                        s.write64(cbo(s, stream as u32) + cb::S1_TLBIVA, tlbiva(iova, stream as u16));
                        s.write32(cbo(s, stream as u32) + cb::TLBSYNC, 0xffff_ffff);
                        live[stream].remove(&page);
                    }
                }
                Txn::Stranger { sid, iova } => {
                    let matched = sids.iter().any(|&m| (sid ^ m) & !0x7c00 & 0x7fff == 0);
                    let res = s.translate(sid, Iova::new(iova), Access::Write);
                    if !matched {
                        prop_assert!(res.is_err(), "unknown stream {:#x} got through: {:?}", sid, res);
                    }
                    s.write32(gr0::SGFSR, 0xffff_ffff);
                }
            }
        }
    }
}
