//! [`Pfn`]: a page frame number.

use std::fmt;

/// A page frame number: an address shifted right by [`Pfn::SHIFT`] (the 4 KiB base page, as
/// Linux's `PAGE_SHIFT` on a 4K kernel and physical memory's frame size).
///
/// It names a frame in either address space; [`PhysAddr::pfn`](crate::PhysAddr::pfn) and
/// [`Iova::pfn`](crate::Iova::pfn) make one, and the `from_pfn` constructors turn it back.
/// `Display` prints it as `0x…` hex, as kernel logs do.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pfn(u64);

impl Pfn {
    /// log2 of the frame size.
    pub const SHIFT: u32 = 12;

    /// Frame number `pfn`.
    #[inline]
    pub const fn new(pfn: u64) -> Pfn {
        Pfn(pfn)
    }

    /// The frame number as a plain number.
    #[inline]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + frames`, or `None` on overflow.
    #[inline]
    pub const fn checked_add(self, frames: u64) -> Option<Pfn> {
        match self.0.checked_add(frames) {
            Some(n) => Some(Pfn(n)),
            None => None,
        }
    }

    /// `self - frames`, or `None` below zero.
    #[inline]
    pub const fn checked_sub(self, frames: u64) -> Option<Pfn> {
        match self.0.checked_sub(frames) {
            Some(n) => Some(Pfn(n)),
            None => None,
        }
    }

    /// The byte address of the frame's first byte, if it fits in 64 bits.
    #[inline]
    pub(crate) const fn byte_offset(self) -> Option<u64> {
        if self.0 >> (u64::BITS - Self::SHIFT) == 0 {
            Some(self.0 << Self::SHIFT)
        } else {
            None
        }
    }
}

impl From<Pfn> for u64 {
    #[inline]
    fn from(pfn: Pfn) -> u64 {
        pfn.0
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Debug for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pfn({:#x})", self.0)
    }
}

impl fmt::LowerHex for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfn_basics() {
        let p = Pfn::new(0x8_0001);
        assert_eq!(p.get(), 0x8_0001);
        assert_eq!(u64::from(p), 0x8_0001);
        assert_eq!(p.to_string(), "0x80001");
        assert_eq!(format!("{p:?}"), "Pfn(0x80001)");
        assert_eq!(p.checked_add(1), Some(Pfn::new(0x8_0002)));
        assert_eq!(Pfn::new(u64::MAX).checked_add(1), None);
        assert_eq!(Pfn::new(0).checked_sub(1), None);
        assert_eq!(
            Pfn::new((1 << 52) - 1).byte_offset(),
            Some(u64::MAX - 0xfff)
        );
        assert_eq!(Pfn::new(1 << 52).byte_offset(), None);
    }
}
