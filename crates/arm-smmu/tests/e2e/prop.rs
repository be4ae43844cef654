//! Random map, unmap and DMA sequences on the model agree with a plain model of the mappings.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Map { page: u64, frame: u64 },
    Unmap { page: u64 },
    Dma { page: u64, byte: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..32, 0u64..64).prop_map(|(page, frame)| Op::Map { page, frame }),
        (0u64..32).prop_map(|page| Op::Unmap { page }),
        (0u64..32, any::<u8>()).prop_map(|(page, byte)| Op::Dma { page, byte }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Any sequence of strict map/unmap/DMA through the driver on the model behaves like a
    /// plain page map: DMA lands exactly where the current mapping says, faults when there
    /// is none, never through a stale TLB entry.
    #[test]
    fn dma_follows_the_current_mapping(ops in proptest::collection::vec(op(), 1..80)) {
        let b = ls1028a(ModuleParams::default(), ShutdownPolicy::Linux62);
        let dom = attach_enetc(&b);
        let iova0 = 0x2000_0000u64;
        let pa0 = RAM_BASE + 0x80_0000;
        let mut map: BTreeMap<u64, u64> = BTreeMap::new();
        for o in ops {
            match o {
                Op::Map { page, frame } => {
                    let r = b.smmu.map_pages(dom, Iova::new(iova0 + page * 0x1000), PhysAddr::new(pa0 + frame * 0x1000), PageSize::SZ_4K, PageCount::new(1), Prot::READ | Prot::WRITE);
                    match map.entry(page) {
                        std::collections::btree_map::Entry::Occupied(_) => {
                            prop_assert!(r.is_err());
                        }
                        std::collections::btree_map::Entry::Vacant(v) => {
                            prop_assert_eq!(r, Ok(0x1000));
                            v.insert(frame);
                        }
                    }
                }
                Op::Unmap { page } => {
                    let mut g = Gather::new();
                    let n = b.smmu.unmap_pages(dom, Iova::new(iova0 + page * 0x1000), PageSize::SZ_4K, PageCount::new(1), &mut g);
                    b.smmu.iotlb_sync(dom, &mut g);
                    prop_assert_eq!(n, if map.remove(&page).is_some() { 0x1000 } else { 0 });
                }
                Op::Dma { page, byte } => {
                    let r = b.model.dma_write(ENETC_SID, Iova::new(iova0 + page * 0x1000 + 8), &[byte]);
                    match map.get(&page) {
                        Some(&f) => {
                            prop_assert!(r.is_ok(), "{:?}", r);
                            prop_assert_eq!(read(&b, pa0 + f * 0x1000 + 8, 1), vec![byte]);
                            prop_assert_eq!(b.smmu.iova_to_phys(dom, Iova::new(iova0 + page * 0x1000 + 8)).map_or(0, PhysAddr::as_u64),
                                pa0 + f * 0x1000 + 8);
                        }
                        None => prop_assert!(r.is_err(), "{:?}", r),
                    }
                }
            }
        }
    }
}
