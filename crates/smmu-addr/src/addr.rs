//! [`Iova`], [`PhysAddr`] and [`DmaAddr`]: one address type per address space, so they cannot
//! be swapped without the compiler noticing.

use crate::{AddrError, AddrKind, PageSize, Pfn};
use std::fmt;

/// Defines an address newtype over `u64`. Both address spaces have the same operations; only
/// their name, their [`AddrKind`] and their documentation differ.
macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[cfg_attr(
            feature = "serde",
            derive(serde::Serialize, serde::Deserialize),
            serde(transparent)
        )]
        pub struct $name(u64);

        impl $name {
            /// Address zero.
            pub const ZERO: $name = $name(0);

            /// The address `addr`.
            #[inline]
            pub const fn new(addr: u64) -> $name {
                $name(addr)
            }

            /// The address as a plain number.
            #[inline]
            pub const fn as_u64(self) -> u64 {
                self.0
            }

            /// `self + bytes`, or `None` past the end of the 64-bit space.
            #[inline]
            pub const fn checked_add(self, bytes: u64) -> Option<$name> {
                match self.0.checked_add(bytes) {
                    Some(a) => Some($name(a)),
                    None => None,
                }
            }

            /// `self - bytes`, or `None` below zero.
            #[inline]
            pub const fn checked_sub(self, bytes: u64) -> Option<$name> {
                match self.0.checked_sub(bytes) {
                    Some(a) => Some($name(a)),
                    None => None,
                }
            }

            /// `self + bytes`, with a typed error past the end of the 64-bit space.
            #[inline]
            pub const fn try_add(self, bytes: u64) -> Result<$name, AddrError> {
                match self.0.checked_add(bytes) {
                    Some(a) => Ok($name(a)),
                    None => Err(AddrError::Overflow { kind: $kind, base: self.0, len: bytes }),
                }
            }

            /// The last byte of the `len`-byte range starting here (`self + len - 1`), as
            /// Linux computes range ends so that a range may end at the top of the space.
            /// An empty range has no last byte: `len == 0` is reported as an overflow too.
            #[inline]
            pub const fn last_byte(self, len: u64) -> Result<$name, AddrError> {
                let err = AddrError::Overflow { kind: $kind, base: self.0, len };
                match len.checked_sub(1) {
                    Some(n) => match self.0.checked_add(n) {
                        Some(a) => Ok($name(a)),
                        None => Err(err),
                    },
                    None => Err(err),
                }
            }

            /// Bytes from `base` up to `self`, or `None` if `base` is above `self`.
            #[inline]
            pub const fn offset_from(self, base: $name) -> Option<u64> {
                self.0.checked_sub(base.0)
            }

            /// Whether the address is a multiple of `align`.
            #[inline]
            pub const fn is_aligned(self, align: PageSize) -> bool {
                self.0 & align.mask() == 0
            }

            /// `Ok(self)` if the address is a multiple of `align`, else a typed error.
            #[inline]
            pub const fn check_aligned(self, align: PageSize) -> Result<$name, AddrError> {
                if self.is_aligned(align) {
                    Ok(self)
                } else {
                    Err(AddrError::Misaligned { kind: $kind, addr: self.0, align })
                }
            }

            /// The address rounded down to a multiple of `align`.
            #[inline]
            pub const fn align_down(self, align: PageSize) -> $name {
                $name(self.0 & !align.mask())
            }

            /// The address rounded up to a multiple of `align`, or `None` past the end of the
            /// 64-bit space.
            #[inline]
            pub const fn align_up(self, align: PageSize) -> Option<$name> {
                match self.0.checked_add(align.mask()) {
                    Some(a) => Some($name(a & !align.mask())),
                    None => None,
                }
            }

            /// The offset of the address inside its `size` page.
            #[inline]
            pub const fn page_offset(self, size: PageSize) -> u64 {
                self.0 & size.mask()
            }

            /// The frame number of the 4 KiB frame holding this address.
            #[inline]
            pub const fn pfn(self) -> Pfn {
                Pfn::new(self.0 >> Pfn::SHIFT)
            }

            /// The address of the first byte of frame `pfn`.
            #[inline]
            pub const fn from_pfn(pfn: Pfn) -> Result<$name, AddrError> {
                match pfn.byte_offset() {
                    Some(a) => Ok($name(a)),
                    None => Err(AddrError::PfnRange { pfn: pfn.get() }),
                }
            }
        }

        impl From<$name> for u64 {
            #[inline]
            fn from(addr: $name) -> u64 {
                addr.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }

        impl fmt::UpperHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::UpperHex::fmt(&self.0, f)
            }
        }
    };
}

address_type!(
    /// An I/O virtual address: what a device puts on the bus, the input of SMMU translation.
    ///
    /// Built from a number only with [`Iova::new`], never by `From<u64>`, so an IOVA and a
    /// physical address cannot change places through an `.into()`. `Display`, `{:x}` and
    /// `{:#x}` print exactly what the `u64` would.
    Iova,
    AddrKind::Iova
);

address_type!(
    /// A physical address: the output of SMMU translation, and where simulated memory lives.
    ///
    /// Built from a number only with [`PhysAddr::new`], never by `From<u64>`, so a physical
    /// address and an IOVA cannot change places through an `.into()`. `Display`, `{:x}` and
    /// `{:#x}` print exactly what the `u64` would.
    PhysAddr,
    AddrKind::Phys
);

address_type!(
    /// A DMA address (Linux's `dma_addr_t`): the bus address the DMA API hands a device driver
    /// to program into its device.
    ///
    /// It is not always an IOVA. Behind a translating (DMA) domain it is one, plus the offset
    /// inside the granule ([`DmaAddr::from_iova`]); for a device in bypass or under an identity
    /// domain (dma-direct) it is the physical address itself ([`DmaAddr::from_phys`]). Either
    /// way the device puts it on the bus, where it reaches the SMMU as the transaction's input
    /// address ([`DmaAddr::bus_iova`]). Built from a number only with [`DmaAddr::new`].
    DmaAddr,
    AddrKind::Dma
);

impl DmaAddr {
    /// The DMA address of an IOVA the DMA API mapped (a translated mapping).
    #[inline]
    pub const fn from_iova(iova: Iova) -> DmaAddr {
        DmaAddr(iova.as_u64())
    }

    /// The DMA address dma-direct gives a physical address (bypass or identity domain: the
    /// bus address is the physical address, this model has no `dma-ranges` offset).
    #[inline]
    pub const fn from_phys(pa: PhysAddr) -> DmaAddr {
        DmaAddr(pa.as_u64())
    }

    /// The address as the device's transaction carries it to the SMMU: the input address of
    /// translation, which the SMMU translates or (in bypass) passes through unchanged.
    #[inline]
    pub const fn bus_iova(self) -> Iova {
        Iova::new(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_and_formatting() {
        let iova = Iova::new(0xffff_f000);
        assert_eq!(iova.as_u64(), 0xffff_f000);
        assert_eq!(u64::from(iova), 0xffff_f000);
        assert_eq!(iova.to_string(), "0xfffff000");
        assert_eq!(format!("{iova:#x}"), "0xfffff000");
        assert_eq!(format!("{iova:#018x}"), format!("{:#018x}", 0xffff_f000u64));
        assert_eq!(format!("{iova:X}"), "FFFFF000");
        assert_eq!(format!("{iova:?}"), "Iova(0xfffff000)");
        let pa = PhysAddr::new(0x8000_0000);
        assert_eq!(format!("{pa:?}"), "PhysAddr(0x80000000)");
        assert_eq!(PhysAddr::default(), PhysAddr::ZERO);
    }

    #[test]
    fn checked_arithmetic() {
        let top = PhysAddr::new(u64::MAX - 0xfff);
        assert_eq!(top.checked_add(0xfff), Some(PhysAddr::new(u64::MAX)));
        assert_eq!(top.checked_add(0x1000), None);
        assert_eq!(
            top.try_add(0x1000),
            Err(AddrError::Overflow {
                kind: AddrKind::Phys,
                base: top.as_u64(),
                len: 0x1000
            })
        );
        assert_eq!(Iova::new(0x10).checked_sub(0x11), None);
        assert_eq!(Iova::new(0x10).checked_sub(0x10), Some(Iova::ZERO));
        assert_eq!(top.last_byte(0x1000), Ok(PhysAddr::new(u64::MAX)));
        assert!(top.last_byte(0x1001).is_err());
        assert!(top.last_byte(0).is_err(), "an empty range has no last byte");
        assert_eq!(
            Iova::new(0x3000).offset_from(Iova::new(0x1000)),
            Some(0x2000)
        );
        assert_eq!(Iova::new(0x1000).offset_from(Iova::new(0x3000)), None);
    }

    #[test]
    fn alignment() {
        let a = Iova::new(0x20_1234);
        assert!(!a.is_aligned(PageSize::SZ_4K));
        assert_eq!(a.align_down(PageSize::SZ_4K), Iova::new(0x20_1000));
        assert_eq!(a.align_down(PageSize::SZ_2M), Iova::new(0x20_0000));
        assert_eq!(a.align_up(PageSize::SZ_4K), Some(Iova::new(0x20_2000)));
        assert_eq!(a.align_up(PageSize::SZ_2M), Some(Iova::new(0x40_0000)));
        assert_eq!(Iova::new(u64::MAX).align_up(PageSize::SZ_4K), None);
        assert_eq!(a.page_offset(PageSize::SZ_4K), 0x234);
        assert_eq!(
            a.check_aligned(PageSize::SZ_4K),
            Err(AddrError::Misaligned {
                kind: AddrKind::Iova,
                addr: 0x20_1234,
                align: PageSize::SZ_4K
            })
        );
        assert_eq!(
            a.check_aligned(PageSize::SZ_4K).unwrap_err().to_string(),
            "IOVA 0x201234 is not aligned to 0x1000"
        );
        let pa = PhysAddr::new(0x8000_0000);
        assert_eq!(pa.check_aligned(PageSize::SZ_1G), Ok(pa));
    }

    #[test]
    fn dma_addresses() {
        let iova = Iova::new(0xffff_e234);
        let da = DmaAddr::from_iova(iova);
        assert_eq!(da.bus_iova(), iova);
        assert_eq!(format!("{da:?}"), "DmaAddr(0xffffe234)");
        assert_eq!(format!("{da:#x}"), "0xffffe234");
        let pa = PhysAddr::new(0x8000_1000);
        assert_eq!(DmaAddr::from_phys(pa).bus_iova(), Iova::new(0x8000_1000));
        assert_eq!(
            DmaAddr::new(0x1234)
                .check_aligned(PageSize::SZ_4K)
                .unwrap_err()
                .to_string(),
            "DMA address 0x1234 is not aligned to 0x1000"
        );
    }

    #[test]
    fn frames() {
        let pa = PhysAddr::new(0x8000_1234);
        assert_eq!(pa.pfn(), Pfn::new(0x8_0001));
        assert_eq!(PhysAddr::from_pfn(pa.pfn()), Ok(PhysAddr::new(0x8000_1000)));
        assert_eq!(Iova::from_pfn(Pfn::new(1)), Ok(Iova::new(0x1000)));
        assert_eq!(
            PhysAddr::from_pfn(Pfn::new(1 << 52)),
            Err(AddrError::PfnRange { pfn: 1 << 52 })
        );
    }
}
