//! [`PageSize`] and [`PageCount`].

use crate::AddrError;
use std::fmt;

/// The size of one page or block: a power of two, checked when built.
///
/// The VMSAv8-64 translation granules are [`SZ_4K`](Self::SZ_4K), [`SZ_16K`](Self::SZ_16K) and
/// [`SZ_64K`](Self::SZ_64K); the block sizes each granule can map one level up are 2 MiB and
/// 1 GiB (4K granule), 32 MiB (16K) and 512 MiB (64K). Larger blocks (512 GiB, 64 GiB, 4 TiB)
/// need 52-bit addressing, which smmu-lab does not model, so they are not listed.
///
/// `Display`, `{:x}` and `{:#x}` print the size in bytes exactly as the same `u64` would, so a
/// log line does not change when a `u64` becomes a `PageSize`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageSize(u64);

impl PageSize {
    /// 4 KiB: the smallest granule, and the base page of physical memory.
    pub const SZ_4K: PageSize = PageSize(1 << 12);
    /// 16 KiB granule.
    pub const SZ_16K: PageSize = PageSize(1 << 14);
    /// 64 KiB granule.
    pub const SZ_64K: PageSize = PageSize(1 << 16);
    /// 1 MiB: an AArch32 short-descriptor section (the arm-smmu driver's 32-bit formats).
    pub const SZ_1M: PageSize = PageSize(1 << 20);
    /// 2 MiB: a level-2 block of the 4K granule.
    pub const SZ_2M: PageSize = PageSize(1 << 21);
    /// 16 MiB: an AArch32 short-descriptor supersection.
    pub const SZ_16M: PageSize = PageSize(1 << 24);
    /// 32 MiB: a level-2 block of the 16K granule.
    pub const SZ_32M: PageSize = PageSize(1 << 25);
    /// 512 MiB: a level-2 block of the 64K granule.
    pub const SZ_512M: PageSize = PageSize(1 << 29);
    /// 1 GiB: a level-1 block of the 4K granule.
    pub const SZ_1G: PageSize = PageSize(1 << 30);

    /// The three translation granules, smallest first.
    pub const GRANULES: [PageSize; 3] = [Self::SZ_4K, Self::SZ_16K, Self::SZ_64K];

    /// A page size of `bytes`, which must be a power of two.
    pub const fn new(bytes: u64) -> Result<PageSize, AddrError> {
        if bytes.is_power_of_two() {
            Ok(PageSize(bytes))
        } else {
            Err(AddrError::NotPowerOfTwo { size: bytes })
        }
    }

    /// A page size of `1 << shift` bytes.
    pub const fn from_shift(shift: u32) -> Result<PageSize, AddrError> {
        if shift < u64::BITS {
            Ok(PageSize(1 << shift))
        } else {
            Err(AddrError::ShiftTooLarge { shift })
        }
    }

    /// The size in bytes.
    #[inline]
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// log2 of the size.
    #[inline]
    pub const fn shift(self) -> u32 {
        self.0.trailing_zeros()
    }

    /// `bytes() - 1`: the offset bits inside one page.
    #[inline]
    pub const fn mask(self) -> u64 {
        self.0 - 1
    }

    /// Whether this is one of the three translation granules.
    pub const fn is_granule(self) -> bool {
        matches!(self.0, 0x1000 | 0x4000 | 0x1_0000)
    }

    /// For a granule, every size a table of that granule maps as one leaf (the page, then its
    /// blocks), smallest first; `None` for a size that is not a granule.
    pub const fn leaf_sizes(self) -> Option<&'static [PageSize]> {
        match self.0 {
            0x1000 => Some(&[Self::SZ_4K, Self::SZ_2M, Self::SZ_1G]),
            0x4000 => Some(&[Self::SZ_16K, Self::SZ_32M]),
            0x1_0000 => Some(&[Self::SZ_64K, Self::SZ_512M]),
            _ => None,
        }
    }

    /// For a granule, its leaf sizes as a bitmap with bit `n` set for a size of `1 << n`
    /// (Linux's `pgsize_bitmap`); `None` for a size that is not a granule.
    pub const fn leaf_bitmap(self) -> Option<u64> {
        match self.leaf_sizes() {
            Some(sizes) => Some(Self::bitmap_of(sizes)),
            None => None,
        }
    }

    /// `sizes` as a bitmap with bit `n` set for a size of `1 << n` (Linux's `pgsize_bitmap`,
    /// written there as `SZ_4K | SZ_2M | SZ_1G`).
    pub const fn bitmap_of(sizes: &[PageSize]) -> u64 {
        let mut bitmap = 0;
        let mut i = 0;
        while i < sizes.len() {
            bitmap |= sizes[i].0;
            i += 1;
        }
        bitmap
    }

    /// Whether `bitmap` (bit `n` set for a size of `1 << n`) contains this size.
    #[inline]
    pub const fn in_bitmap(self, bitmap: u64) -> bool {
        bitmap & self.0 != 0
    }

    /// The smallest size in `bitmap`, or `None` if it is empty.
    pub const fn smallest_in(bitmap: u64) -> Option<PageSize> {
        if bitmap == 0 {
            None
        } else {
            Some(PageSize(1 << bitmap.trailing_zeros()))
        }
    }

    /// The largest size in `bitmap`, or `None` if it is empty.
    pub const fn largest_in(bitmap: u64) -> Option<PageSize> {
        if bitmap == 0 {
            None
        } else {
            Some(PageSize(1 << (63 - bitmap.leading_zeros())))
        }
    }
}

impl From<PageSize> for u64 {
    fn from(size: PageSize) -> u64 {
        size.0
    }
}

impl TryFrom<u64> for PageSize {
    type Error = AddrError;
    fn try_from(bytes: u64) -> Result<PageSize, AddrError> {
        PageSize::new(bytes)
    }
}

impl fmt::Display for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Debug for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageSize({:#x})", self.0)
    }
}

impl fmt::LowerHex for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl fmt::UpperHex for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::UpperHex::fmt(&self.0, f)
    }
}

/// A number of pages (of a [`PageSize`] given where the count is used), as in `pgcount`.
///
/// It is a count, not an address, so `Display` prints it in decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PageCount(u64);

impl PageCount {
    /// No pages.
    pub const ZERO: PageCount = PageCount(0);
    /// One page.
    pub const ONE: PageCount = PageCount(1);

    /// `count` pages.
    #[inline]
    pub const fn new(count: u64) -> PageCount {
        PageCount(count)
    }

    /// The count as a plain number.
    #[inline]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Whether the count is zero.
    #[inline]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The number of `size` pages in `len` bytes, which must be a whole number of pages.
    pub const fn of_bytes(len: u64, size: PageSize) -> Result<PageCount, AddrError> {
        if len & size.mask() != 0 {
            Err(AddrError::NotWholePages { len, size })
        } else {
            Ok(PageCount(len >> size.shift()))
        }
    }

    /// The bytes `self` pages of `size` cover.
    pub const fn bytes(self, size: PageSize) -> Result<u64, AddrError> {
        match self.0.checked_mul(size.0) {
            Some(bytes) => Ok(bytes),
            None => Err(AddrError::CountOverflow {
                count: self.0,
                size,
            }),
        }
    }

    /// `self + other`, or `None` on overflow.
    #[inline]
    pub const fn checked_add(self, other: PageCount) -> Option<PageCount> {
        match self.0.checked_add(other.0) {
            Some(n) => Some(PageCount(n)),
            None => None,
        }
    }

    /// `self - other`, or `None` if `other` is larger.
    #[inline]
    pub const fn checked_sub(self, other: PageCount) -> Option<PageCount> {
        match self.0.checked_sub(other.0) {
            Some(n) => Some(PageCount(n)),
            None => None,
        }
    }
}

impl From<PageCount> for u64 {
    fn from(count: PageCount) -> u64 {
        count.0
    }
}

impl fmt::Display for PageCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_accepts_only_powers_of_two() {
        assert_eq!(PageSize::new(0x1000), Ok(PageSize::SZ_4K));
        assert_eq!(PageSize::new(1), PageSize::from_shift(0));
        assert_eq!(PageSize::new(0), Err(AddrError::NotPowerOfTwo { size: 0 }));
        assert_eq!(
            PageSize::new(0x3000),
            Err(AddrError::NotPowerOfTwo { size: 0x3000 })
        );
        assert_eq!(PageSize::from_shift(63).map(PageSize::bytes), Ok(1 << 63));
        assert_eq!(
            PageSize::from_shift(64),
            Err(AddrError::ShiftTooLarge { shift: 64 })
        );
        assert_eq!(PageSize::try_from(0x20_0000), Ok(PageSize::SZ_2M));
    }

    #[test]
    fn page_size_parts() {
        let s = PageSize::SZ_64K;
        assert_eq!((s.bytes(), s.shift(), s.mask()), (0x1_0000, 16, 0xffff));
        assert_eq!(u64::from(PageSize::SZ_1G), 0x4000_0000);
        assert_eq!(PageSize::SZ_32M.shift(), 25);
        assert_eq!(PageSize::SZ_512M.shift(), 29);
    }

    #[test]
    fn granules_and_their_leaf_sizes() {
        assert!(PageSize::GRANULES.iter().all(|g| g.is_granule()));
        assert!(!PageSize::SZ_2M.is_granule());
        assert_eq!(PageSize::SZ_4K.leaf_bitmap(), Some(0x4020_1000));
        assert_eq!(PageSize::SZ_16K.leaf_bitmap(), Some(0x0200_4000));
        assert_eq!(PageSize::SZ_64K.leaf_bitmap(), Some(0x2001_0000));
        assert_eq!(PageSize::SZ_2M.leaf_sizes(), None);
        assert_eq!(PageSize::SZ_2M.leaf_bitmap(), None);
        assert_eq!(
            PageSize::bitmap_of(&[
                PageSize::SZ_4K,
                PageSize::SZ_64K,
                PageSize::SZ_1M,
                PageSize::SZ_16M
            ]),
            0x0111_1000
        );
        assert_eq!(PageSize::bitmap_of(&[]), 0);
    }

    #[test]
    fn bitmap_queries() {
        let bitmap = PageSize::SZ_4K.leaf_bitmap().unwrap();
        assert!(PageSize::SZ_2M.in_bitmap(bitmap));
        assert!(!PageSize::SZ_64K.in_bitmap(bitmap));
        assert_eq!(PageSize::smallest_in(bitmap), Some(PageSize::SZ_4K));
        assert_eq!(PageSize::largest_in(bitmap), Some(PageSize::SZ_1G));
        assert_eq!(PageSize::smallest_in(0), None);
        assert_eq!(PageSize::largest_in(0), None);
        assert_eq!(
            PageSize::largest_in(u64::MAX).map(PageSize::shift),
            Some(63)
        );
    }

    #[test]
    fn page_size_formats_like_the_u64_it_replaces() {
        let s = PageSize::SZ_2M;
        assert_eq!(s.to_string(), "0x200000");
        assert_eq!(format!("{s:#x}"), format!("{:#x}", 0x20_0000u64));
        assert_eq!(format!("{s:x}"), "200000");
        assert_eq!(format!("{s:X}"), "200000");
        assert_eq!(format!("{s:?}"), "PageSize(0x200000)");
    }

    #[test]
    fn page_count_conversions() {
        let s = PageSize::SZ_4K;
        assert_eq!(PageCount::of_bytes(0x5000, s), Ok(PageCount::new(5)));
        assert_eq!(
            PageCount::of_bytes(0x5800, s),
            Err(AddrError::NotWholePages {
                len: 0x5800,
                size: s
            })
        );
        assert_eq!(PageCount::new(5).bytes(s), Ok(0x5000));
        assert_eq!(
            PageCount::new(1 << 52).bytes(s),
            Err(AddrError::CountOverflow {
                count: 1 << 52,
                size: s
            })
        );
        assert_eq!(PageCount::new(7).to_string(), "7");
        assert_eq!(u64::from(PageCount::new(7)), 7);
        assert!(PageCount::ZERO.is_zero() && !PageCount::ONE.is_zero());
        assert_eq!(PageCount::new(u64::MAX).checked_add(PageCount::ONE), None);
        assert_eq!(PageCount::ONE.checked_sub(PageCount::new(2)), None);
        assert_eq!(
            PageCount::new(3).checked_sub(PageCount::ONE),
            Some(PageCount::new(2))
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let e = PageCount::new(1 << 60).bytes(PageSize::SZ_64K).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1152921504606846976 pages of 0x10000 bytes overflow 64 bits"
        );
        assert_eq!(
            PageSize::new(6).unwrap_err().to_string(),
            "page size 0x6 is not a power of two"
        );
    }
}
