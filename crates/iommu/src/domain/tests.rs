//! The page-size choice of one map step.

use super::*;

#[test]
fn page_size_choice() {
    let bm = 0x1000 | 0x20_0000 | 0x4000_0000;
    assert_eq!(
        pgsize_for(bm, 0x1000, 0x5000, 0x3000),
        Some((PageSize::SZ_4K, PageCount::new(3)))
    );
    assert_eq!(
        pgsize_for(bm, 0x20_0000, 0x40_0000, 0x40_0000),
        Some((PageSize::SZ_2M, PageCount::new(2)))
    );
    // 4 KiB pages until the 2 MiB boundary, then a block.
    assert_eq!(
        pgsize_for(bm, 0x1f_f000, 0x3f_f000, 0x20_1000),
        Some((PageSize::SZ_4K, PageCount::ONE))
    );
    assert_eq!(pgsize_for(bm, 0x800, 0, 0x1000), None);
}
