//! [`IovaPfn`]: a frame number of an IOVA domain, in units of the domain's granule.

use std::fmt;

use crate::Iova;

/// A frame number in an IOVA domain: an [`Iova`] shifted right by the domain's granule shift
/// (Linux `iova_pfn(iovad, addr)`, `iovad->granule`), not by the fixed 4 KiB of [`Pfn`](crate::Pfn).
///
/// A 64 KiB-granule domain's frame 1 is IOVA 0x10000, so the two frame numbers are different
/// types: the allocator's frames can only become addresses through the granule shift they
/// were counted in ([`IovaPfn::iova`], [`IovaPfn::of`]). `Display` prints `0x…` hex, as kernel
/// logs do.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IovaPfn(u64);

impl IovaPfn {
    /// Frame number `pfn`.
    #[inline(always)]
    pub const fn new(pfn: u64) -> IovaPfn {
        IovaPfn(pfn)
    }

    /// The frame number as a plain number.
    #[inline(always)]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The frame `iova` lies in, for a granule of `1 << shift` bytes.
    #[inline]
    pub const fn of(iova: Iova, shift: u32) -> IovaPfn {
        IovaPfn(iova.as_u64() >> shift)
    }

    /// The IOVA of the frame's first byte for a granule of `1 << shift` bytes, if it fits in
    /// 64 bits.
    #[inline]
    pub const fn iova(self, shift: u32) -> Option<Iova> {
        if shift >= u64::BITS || (shift > 0 && self.0 >> (u64::BITS - shift) != 0) {
            None
        } else {
            Some(Iova::new(self.0 << shift))
        }
    }

    /// `self + frames`, or `None` on overflow.
    #[inline]
    pub const fn checked_add(self, frames: u64) -> Option<IovaPfn> {
        match self.0.checked_add(frames) {
            Some(n) => Some(IovaPfn(n)),
            None => None,
        }
    }
}

impl From<IovaPfn> for u64 {
    #[inline]
    fn from(pfn: IovaPfn) -> u64 {
        pfn.0
    }
}

impl fmt::Display for IovaPfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Debug for IovaPfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IovaPfn({:#x})", self.0)
    }
}

impl fmt::LowerHex for IovaPfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_count_in_the_domains_granule() {
        let p = IovaPfn::new(1);
        assert_eq!(p.iova(12), Some(Iova::new(0x1000)));
        assert_eq!(p.iova(16), Some(Iova::new(0x1_0000)));
        assert_eq!(IovaPfn::of(Iova::new(0x1_2345), 16), IovaPfn::new(1));
        assert_eq!(IovaPfn::of(Iova::new(0x1_2345), 12), IovaPfn::new(0x12));
        assert_eq!(
            IovaPfn::new(u64::MAX >> 12).iova(12),
            Some(Iova::new(!0xfff))
        );
        assert_eq!(IovaPfn::new(1 << 52).iova(12), None);
        assert_eq!(IovaPfn::new(0).iova(64), None);
        assert_eq!(IovaPfn::new(7).iova(0), Some(Iova::new(7)));
        assert_eq!(p.to_string(), "0x1");
        assert_eq!(format!("{:?}", IovaPfn::new(0xfffff)), "IovaPfn(0xfffff)");
        assert_eq!(IovaPfn::new(u64::MAX).checked_add(1), None);
        assert_eq!(u64::from(IovaPfn::new(5)), 5);
    }
}
