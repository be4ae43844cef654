//! Random DMA API sequences with misuse: no panic, every misuse a typed error, live IOVA
//! ranges never overlap, and everything is returned at the end. Plus the release-while-mapping
//! race on real threads.

mod common;
use common::*;
use iommu::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

use DmaDirection::{Bidirectional, FromDevice, ToDevice};

#[derive(Debug, Clone)]
enum Op {
    Map { off: u64, size: u64, dir: u8 },
    Unmap { pick: prop::sample::Index },
    UnmapWrongSize { pick: prop::sample::Index },
    UnmapWrongDir { pick: prop::sample::Index },
    UnmapBogus { addr: DmaAddr },
    DoubleUnmap,
    MapSg { n: usize, size: u64 },
    Coherent { size: u64 },
    Drain,
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..0x10_0000, 1u64..0x9000, 0u8..3).prop_map(|(off, size, dir)| Op::Map { off, size, dir }),
        5 => any::<prop::sample::Index>().prop_map(|pick| Op::Unmap { pick }),
        1 => any::<prop::sample::Index>().prop_map(|pick| Op::UnmapWrongSize { pick }),
        1 => any::<prop::sample::Index>().prop_map(|pick| Op::UnmapWrongDir { pick }),
        1 => any::<u64>().prop_map(|addr| Op::UnmapBogus { addr: da(addr) }),
        1 => Just(Op::DoubleUnmap),
        1 => (1usize..5, 1u64..0x3000).prop_map(|(n, size)| Op::MapSg { n, size }),
        1 => (1u64..0x5000).prop_map(|size| Op::Coherent { size }),
        1 => Just(Op::Drain),
        1 => Just(Op::Tick),
    ]
}

fn dir_of(d: u8) -> DmaDirection {
    [ToDevice, FromDevice, Bidirectional][d as usize % 3]
}

#[derive(Debug, Clone)]
enum Live {
    Page { size: u64, dir: DmaDirection },
    Sg(Vec<(DmaAddr, u64)>),
    Coherent { size: u64, pa: PhysAddr },
}

/// IOVA pages [first, last] covered by a live mapping.
fn pages(addr: DmaAddr, l: &Live) -> Vec<(u64, u64)> {
    let addr = addr.as_u64();
    match l {
        Live::Page { size, .. } | Live::Coherent { size, .. } => {
            vec![(addr >> 12, (addr + size - 1) >> 12)]
        }
        Live::Sg(s) => s
            .iter()
            .map(|&(a, n)| (a.as_u64() >> 12, (a.as_u64() + n - 1) >> 12))
            .collect(),
    }
}

fn run(strict: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let r = rig(CoreConfig {
        strict,
        ..CoreConfig::default()
    });
    let d = r
        .core
        .probe_device(pci("fsl_enetc 0000:00:00.0", 0, 0x429), r.inst)
        .unwrap();
    let dom = r.core.default_domain(d).unwrap();
    let (_, free0, cached0) = dom.iova_stats().unwrap();
    let mut live: BTreeMap<DmaAddr, Live> = BTreeMap::new();
    let mut last_unmapped: Option<(DmaAddr, u64, DmaDirection)> = None;
    for op in ops {
        match op {
            Op::Map { off, size, dir } => {
                let a = r.core.dma_map_page(d, paddr(RAM + off), size, dir_of(dir));
                let a = a.map_err(|e| TestCaseError::fail(format!("map: {e}")))?;
                prop_assert_eq!(a.as_u64() & 0xfff, off & 0xfff);
                let fresh = live
                    .insert(
                        a,
                        Live::Page {
                            size,
                            dir: dir_of(dir),
                        },
                    )
                    .is_none();
                prop_assert!(fresh);
            }
            Op::Unmap { pick } | Op::UnmapWrongSize { pick } | Op::UnmapWrongDir { pick }
                if live.is_empty() =>
            {
                let _ = pick;
            }
            Op::Unmap { pick } => {
                let (&a, l) = live.iter().nth(pick.index(live.len())).unwrap();
                let l = l.clone();
                match &l {
                    Live::Page { size, dir } => {
                        prop_assert_eq!(r.core.dma_unmap_page(d, a, *size, *dir), Ok(()));
                        last_unmapped = Some((a, *size, *dir));
                    }
                    Live::Sg(s) => {
                        prop_assert_eq!(r.core.dma_unmap_sg(d, s, Bidirectional), Ok(()))
                    }
                    Live::Coherent { size, pa } => {
                        prop_assert_eq!(r.core.dma_free_coherent(d, *size, *pa, a), Ok(()))
                    }
                }
                live.remove(&a);
            }
            Op::UnmapWrongSize { pick } => {
                let (&a, l) = live.iter().nth(pick.index(live.len())).unwrap();
                let res = r.core.dma_unmap_page(d, a, 0x7fff_ffff, Bidirectional);
                match l {
                    Live::Page { size, .. } => prop_assert_eq!(
                        res,
                        Err(DmaError::WrongSize {
                            addr: a,
                            mapped: *size,
                            requested: 0x7fff_ffff
                        })
                    ),
                    _ => prop_assert_eq!(res, Err(DmaError::WrongKind { addr: a })),
                }
            }
            Op::UnmapWrongDir { pick } => {
                let (&a, l) = live.iter().nth(pick.index(live.len())).unwrap();
                if let Live::Page { size, dir } = l {
                    let wrong = if *dir == ToDevice {
                        FromDevice
                    } else {
                        ToDevice
                    };
                    prop_assert_eq!(
                        r.core.dma_unmap_page(d, a, *size, wrong),
                        Err(DmaError::WrongDirection { addr: a })
                    );
                }
            }
            Op::UnmapBogus { addr } => {
                if !live.contains_key(&addr) {
                    prop_assert_eq!(
                        r.core.dma_unmap_page(d, addr, 64, ToDevice),
                        Err(DmaError::NotMapped { addr })
                    );
                }
            }
            Op::DoubleUnmap => {
                if let Some((a, size, dir)) = last_unmapped {
                    if !live.contains_key(&a) {
                        prop_assert_eq!(
                            r.core.dma_unmap_page(d, a, size, dir),
                            Err(DmaError::NotMapped { addr: a })
                        );
                    }
                }
            }
            Op::MapSg { n, size } => {
                let segs: Vec<(PhysAddr, u64)> = (0..n as u64)
                    .map(|i| (paddr(RAM + 0x20_0000 + i * 0x5010), size))
                    .collect();
                let out = r.core.dma_map_sg(d, &segs, Bidirectional);
                let out = out.map_err(|e| TestCaseError::fail(format!("sg: {e}")))?;
                prop_assert!(live.insert(out[0].0, Live::Sg(out)).is_none());
            }
            Op::Coherent { size } => {
                let (pa, a) = r
                    .core
                    .dma_alloc_coherent(d, size)
                    .map_err(|e| TestCaseError::fail(format!("coherent: {e}")))?;
                let fresh = live.insert(a, Live::Coherent { size, pa }).is_none();
                prop_assert!(fresh);
            }
            Op::Drain => r.core.flush_queue_drain(),
            Op::Tick => {
                r.log.advance_ns(3_000_000);
                r.core.run_timers();
            }
        }
        // Live IOVA page ranges never overlap.
        let mut ranges: Vec<(u64, u64)> = live.iter().flat_map(|(&a, l)| pages(a, l)).collect();
        ranges.sort();
        for w in ranges.windows(2) {
            prop_assert!(w[0].1 < w[1].0, "overlap {:x?}", w);
        }
        prop_assert_eq!(dom.live_mappings(), live.len());
    }
    for (a, l) in std::mem::take(&mut live) {
        match l {
            Live::Page { size, dir } => {
                prop_assert_eq!(r.core.dma_unmap_page(d, a, size, dir), Ok(()))
            }
            Live::Sg(s) => prop_assert_eq!(r.core.dma_unmap_sg(d, &s, Bidirectional), Ok(())),
            Live::Coherent { size, pa } => {
                prop_assert_eq!(r.core.dma_free_coherent(d, size, pa, a), Ok(()))
            }
        }
    }
    r.core.flush_queue_drain();
    prop_assert_eq!(dom.live_mappings(), 0);
    prop_assert_eq!(dom.fq_len(), 0);
    prop_assert_eq!(r.fake.mapped_pages(dom.driver_domain()), 0);
    prop_assert_eq!(r.frames.outstanding_bytes(), 0);
    let (_, free, cached) = dom.iova_stats().unwrap();
    prop_assert_eq!(free.checked_add(cached), free0.checked_add(cached0));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn dma_api_sequences(strict in any::<bool>(), ops in prop::collection::vec(op(), 1..150)) {
        run(strict, ops)?;
    }
}

fn race(linux_faithful: bool, strict: bool) -> Vec<Result<(), DmaError>> {
    let r = rig(CoreConfig {
        linux_faithful,
        strict,
        ..CoreConfig::default()
    });
    let d = r
        .core
        .probe_device(pci("fsl_enetc 0000:00:00.0", 0, 0x429), r.inst)
        .unwrap();
    let _other = r
        .core
        .probe_device(platform("sdhci-esdhc 2140000.mmc", 0, 0x3a), r.inst)
        .unwrap();
    let core = r.core.clone();
    let nic = smmu_sync::thread::spawn(move || {
        let mut out = Vec::new();
        let mut errors = 0;
        // Until the release has been seen a few times (bounded).
        for i in 0..5_000_000u64 {
            if errors >= 5 {
                break;
            }
            let res = core.dma_map_page(d, paddr(RAM + (i % 64) * 4096), 1500, ToDevice);
            let res = match res {
                Ok(a) => core.dma_unmap_page(d, a, 1500, ToDevice),
                Err(e) => Err(e),
            };
            errors += usize::from(res.is_err());
            out.push(res);
        }
        out
    });
    for _ in 0..200 {
        smmu_sync::thread::yield_now();
    }
    r.core.unregister(r.inst).unwrap();
    nic.join().expect("the NIC thread must not panic")
}

#[test]
fn release_while_mapping_is_safe_in_safe_mode() {
    for strict in [true, false] {
        let results = race(false, strict);
        assert!(results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(DmaError::DeviceReleased))));
        // Once released, always released.
        let first_err = results
            .iter()
            .position(|r| r.is_err())
            .unwrap_or(results.len());
        assert!(results[first_err..].iter().all(|r| r.is_err()));
    }
}

#[test]
fn release_while_mapping_oopses_in_faithful_mode() {
    let results = race(true, true);
    assert!(results.iter().all(|r| matches!(
        r,
        Ok(()) | Err(DmaError::Oops(_)) | Err(DmaError::UseAfterFree { .. })
    )));
    assert!(matches!(results.last(), Some(Err(DmaError::Oops(_)))));
}
