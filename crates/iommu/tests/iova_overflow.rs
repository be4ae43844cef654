//! dcdb3ba7e2a8 "iommu/iova: Fix alloc iova overflows issue": the example of the fix's
//! message (CVE-2023-52910), a 10 MiB domain starting at 0x1_f000_0000 asked for 11 MiB as its
//! first allocation, with the allocator's retry before and after the fix.

mod iova_raw;

use iommu::iova::{IovaDepot, IovaDomain, IovaParams};
use iova_raw::RawIova;
use smmu_addr::IovaPfn;

const START_PFN: u64 = 0x1_f000_0000 >> 12;
const END_PFN: u64 = START_PFN + (10 << 20 >> 12) - 1;

fn domain(overflows: bool) -> RawIova {
    RawIova(
        IovaDomain::new(IovaParams {
            shift: 12,
            start_pfn: IovaPfn::new(START_PFN),
            end_pfn: IovaPfn::new(END_PFN),
            rcache: true,
            depot: IovaDepot::Array,
        })
        .unwrap()
        .with_anchor_retry_overflow(overflows),
    )
}

#[test]
fn an_allocation_larger_than_the_domain_succeeds_below_start_pfn_before_the_fix() {
    let pages = 11 << 20 >> 12;
    // Before: the first search fails above start_pfn, the retry from the anchor's
    // pfn_hi + 1 = 0 takes the highest aligned candidate under the limit.
    let mut before = domain(true);
    let pfn = before
        .alloc(pages, END_PFN, true)
        .expect("the overflowed retry");
    assert_eq!(pfn, 0x1ef000);
    assert!(pfn < START_PFN);
    assert_eq!(
        before.ranges().next(),
        Some((0x1ef000, 0x1ef000 + pages - 1))
    );
    // It lies wholly below the domain: none of the domain's pages were taken, and freeing it
    // leaves the space below start_pfn out of the free map.
    assert_eq!(before.free_pages(), END_PFN + 1 - START_PFN);
    assert_eq!(before.free_containing(pfn), Some((pfn, pfn + pages - 1)));
    assert_eq!(before.free_pages(), END_PFN + 1 - START_PFN);
    assert_eq!(before.alloc(pages, END_PFN, true), Some(0x1ef000));

    // After: no retry from the anchor, the allocation fails.
    let mut after = domain(false);
    assert_eq!(after.alloc(pages, END_PFN, true), None);
    // What fits still fits, in the same place either way.
    assert_eq!(
        after.alloc(0x100, END_PFN, true),
        domain(true).alloc(0x100, END_PFN, true)
    );
}
