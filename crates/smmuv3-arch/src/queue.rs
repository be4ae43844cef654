//! PROD/CONS arithmetic of the circular queues (IHI 0070 §3.5).
//!
//! A queue of 2^n entries is indexed by n+1 bits: the low n are the slot, bit n is the wrap flag.
//! It is empty when the two pointers are equal, full when the slots match and the wrap flags
//! differ. Bits above (OVFLG, CMDQ_CONS.ERR) are carried separately.

/// Index plus wrap bit of `ptr` for a queue of 2^`log2size` entries.
#[inline]
pub const fn wrap_idx(ptr: u32, log2size: u32) -> u32 {
    ptr & ((2u32 << log2size) - 1)
}

/// Slot of `ptr`.
#[inline]
pub const fn idx(ptr: u32, log2size: u32) -> u32 {
    ptr & ((1u32 << log2size) - 1)
}

/// Wrap flag of `ptr`.
#[inline]
pub const fn wrp(ptr: u32, log2size: u32) -> u32 {
    ptr & (1u32 << log2size)
}

/// Whether nothing is between `cons` and `prod`.
#[inline]
pub const fn is_empty(prod: u32, cons: u32, log2size: u32) -> bool {
    wrap_idx(prod, log2size) == wrap_idx(cons, log2size)
}

/// Whether every slot holds an unconsumed entry.
#[inline]
pub const fn is_full(prod: u32, cons: u32, log2size: u32) -> bool {
    idx(prod, log2size) == idx(cons, log2size) && wrp(prod, log2size) != wrp(cons, log2size)
}

/// Entries between `cons` and `prod`.
///
/// At most the queue's size for pointers a queue can have. Any other pair (`prod` behind
/// `cons`, or more than a queue ahead: a bad register value, a copy of one pointer restored
/// without the other) gives a count between the size and twice it, never a wrapped subtraction:
/// a caller that walks `used` entries stays bounded.
#[inline]
pub const fn used(prod: u32, cons: u32, log2size: u32) -> u32 {
    wrap_idx(prod.wrapping_sub(cons), log2size)
}

/// `ptr` advanced by `n` entries (index and wrap only; upper flags of `ptr` are kept).
#[inline]
pub const fn advance(ptr: u32, n: u32, log2size: u32) -> u32 {
    let keep = ptr & !((2u32 << log2size) - 1);
    keep | wrap_idx(wrap_idx(ptr, log2size).wrapping_add(n), log2size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_and_empty() {
        assert!(is_empty(0, 0, 3));
        assert!(is_full(8, 0, 3));
        assert!(!is_full(7, 0, 3));
        assert_eq!(used(8, 0, 3), 8);
        assert_eq!(used(1, 9, 3), 8);
        assert_eq!(advance(15, 1, 3), 0);
        assert_eq!(advance(0x8000_000f, 1, 3), 0x8000_0000, "OVF kept");
    }

    #[test]
    fn pointers_no_queue_can_have_count_less_than_two_queues() {
        // PROD one slot behind CONS in the same wrap: 2^4 - 1, not 2^32 - 1.
        assert_eq!(used(4, 5, 3), 15);
        assert_eq!(used(0, 15, 3), 1, "different wraps, one ahead");
        assert_eq!(
            used(3, 0x13, 3),
            0,
            "bits above the wrap flag are not counted"
        );
    }

    proptest! {
        #[test]
        fn used_is_below_twice_the_size(log2 in 0u32..20, prod in any::<u32>(), cons in any::<u32>()) {
            let n = used(prod, cons, log2);
            prop_assert!(n < 2 << log2);
            prop_assert_eq!(wrap_idx(advance(cons, n, log2), log2), wrap_idx(prod, log2));
        }

        #[test]
        fn used_counts_advances(log2 in 0u32..20, start in any::<u32>(), n in 0u32..(1 << 20)) {
            let size = 1u32 << log2;
            let n = n % (size + 1);
            let cons = wrap_idx(start, log2);
            let prod = advance(cons, n, log2);
            prop_assert_eq!(used(prod, cons, log2), n);
            prop_assert_eq!(is_empty(prod, cons, log2), n == 0);
            prop_assert_eq!(is_full(prod, cons, log2), n == size);
        }
    }
}
