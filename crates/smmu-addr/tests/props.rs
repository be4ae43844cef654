//! Properties of the address and size types, checked against plain `u64` arithmetic.

use proptest::prelude::*;
use smmu_addr::{AddrError, Iova, PageCount, PageSize, Pfn, PhysAddr};

fn page_size() -> impl Strategy<Value = PageSize> {
    (0u32..64).prop_map(|s| PageSize::from_shift(s).unwrap())
}

proptest! {
    #[test]
    fn page_size_new_accepts_exactly_powers_of_two(bytes in any::<u64>()) {
        match PageSize::new(bytes) {
            Ok(s) => {
                prop_assert!(bytes.is_power_of_two());
                prop_assert_eq!(s.bytes(), bytes);
                prop_assert_eq!(1u64 << s.shift(), bytes);
                prop_assert_eq!(s.mask(), bytes - 1);
            }
            Err(e) => {
                prop_assert!(!bytes.is_power_of_two());
                prop_assert_eq!(e, AddrError::NotPowerOfTwo { size: bytes });
            }
        }
    }

    #[test]
    fn alignment_matches_integer_arithmetic(addr in any::<u64>(), size in page_size()) {
        let a = Iova::new(addr);
        let down = a.align_down(size);
        prop_assert!(down.is_aligned(size));
        prop_assert!(down <= a);
        prop_assert_eq!(down.as_u64(), addr - addr % size.bytes());
        prop_assert_eq!(a.page_offset(size), addr % size.bytes());
        prop_assert_eq!(a.is_aligned(size), addr % size.bytes() == 0);
        prop_assert_eq!(a.check_aligned(size).is_ok(), a.is_aligned(size));
        let up = a.align_up(size);
        let want = (addr as u128).div_ceil(size.bytes() as u128) * size.bytes() as u128;
        match up {
            Some(up) => {
                prop_assert!(up.is_aligned(size));
                prop_assert_eq!(up.as_u64() as u128, want);
            }
            None => prop_assert!(want > u64::MAX as u128),
        }
    }

    #[test]
    fn checked_add_never_wraps(addr in any::<u64>(), len in any::<u64>()) {
        let pa = PhysAddr::new(addr);
        prop_assert_eq!(pa.checked_add(len).map(PhysAddr::as_u64), addr.checked_add(len));
        prop_assert_eq!(pa.try_add(len).ok(), pa.checked_add(len));
        prop_assert_eq!(pa.checked_sub(len).map(PhysAddr::as_u64), addr.checked_sub(len));
        let last = pa.last_byte(len);
        let want = if len == 0 { None } else { addr.checked_add(len - 1) };
        prop_assert_eq!(last.ok().map(PhysAddr::as_u64), want);
        if let Some(sum) = pa.checked_add(len) {
            prop_assert_eq!(sum.offset_from(pa), Some(len));
        }
    }

    #[test]
    fn pfn_round_trips_for_frame_aligned_addresses(addr in any::<u64>()) {
        let pa = PhysAddr::new(addr);
        let pfn = pa.pfn();
        prop_assert_eq!(pfn.get(), addr >> 12);
        prop_assert_eq!(PhysAddr::from_pfn(pfn), Ok(pa.align_down(PageSize::SZ_4K)));
        prop_assert_eq!(Iova::from_pfn(pfn).map(Iova::as_u64), Ok(addr & !0xfff));
    }

    #[test]
    fn from_pfn_fails_exactly_when_the_address_does_not_fit(pfn in any::<u64>()) {
        let r = PhysAddr::from_pfn(Pfn::new(pfn));
        if pfn < 1 << 52 {
            prop_assert_eq!(r, Ok(PhysAddr::new(pfn << 12)));
        } else {
            prop_assert_eq!(r, Err(AddrError::PfnRange { pfn }));
        }
    }

    #[test]
    fn page_count_bytes_is_exact_or_an_error(count in any::<u64>(), size in page_size()) {
        let c = PageCount::new(count);
        match c.bytes(size) {
            Ok(bytes) => {
                prop_assert_eq!(bytes as u128, count as u128 * size.bytes() as u128);
                prop_assert_eq!(PageCount::of_bytes(bytes, size), Ok(c));
            }
            Err(e) => {
                prop_assert!(count as u128 * size.bytes() as u128 > u64::MAX as u128);
                prop_assert_eq!(e, AddrError::CountOverflow { count, size });
            }
        }
    }

    #[test]
    fn hex_formatting_matches_u64(addr in any::<u64>(), size in page_size()) {
        prop_assert_eq!(Iova::new(addr).to_string(), format!("{addr:#x}"));
        prop_assert_eq!(format!("{:#x}", PhysAddr::new(addr)), format!("{addr:#x}"));
        prop_assert_eq!(format!("{:016x}", PhysAddr::new(addr)), format!("{addr:016x}"));
        prop_assert_eq!(size.to_string(), format!("{:#x}", size.bytes()));
        prop_assert_eq!(Pfn::new(addr).to_string(), format!("{addr:#x}"));
    }

    #[test]
    fn bitmap_extremes(bitmap in any::<u64>()) {
        let small = PageSize::smallest_in(bitmap);
        let large = PageSize::largest_in(bitmap);
        prop_assert_eq!(small.is_none(), bitmap == 0);
        if let (Some(s), Some(l)) = (small, large) {
            prop_assert!(s.in_bitmap(bitmap) && l.in_bitmap(bitmap));
            prop_assert!(s <= l);
            prop_assert_eq!(bitmap & s.mask(), 0);
            prop_assert_eq!(bitmap & !(l.bytes() | l.mask()), 0);
        }
    }
}
