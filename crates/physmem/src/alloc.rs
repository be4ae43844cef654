//! A buddy allocator of zeroed frames over a range of [`PhysMem`].

use crate::{PhysAddr, PhysError, PhysMem, FRAME_SHIFT, FRAME_SIZE};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Largest block: 2^MAX_ORDER frames (4 MiB), far above any page-table or DMA-coherent need.
const MAX_ORDER: u32 = 10;

/// Errors from [`FrameAllocator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AllocError {
    #[error("out of simulated memory for a {size:#x}-byte block")]
    OutOfMemory { size: u64 },
    #[error("bad allocation size {size:#x}: must be a power of two from 4 KiB to 4 MiB")]
    BadSize { size: u64 },
    #[error("free of {pa:#x} size {size:#x}, which is not an outstanding allocation of that size")]
    NotAllocated { pa: PhysAddr, size: u64 },
    #[error(transparent)]
    Phys(#[from] PhysError),
}

#[derive(Default)]
struct State {
    /// Free blocks per order, kept sorted so the lowest address is chosen: deterministic.
    free: Vec<BTreeSet<PhysAddr>>,
    /// Outstanding blocks and their order.
    live: BTreeMap<PhysAddr, u32>,
    outstanding: u64,
}

/// Hands out zeroed, naturally aligned blocks of 2^k frames from one range of memory.
///
/// The lock is a plain `std` mutex on purpose: it is never held across a scheduling point, so it
/// needs no place in the sync facade.
pub struct FrameAllocator {
    mem: Arc<PhysMem>,
    base: PhysAddr,
    size: u64,
    state: Mutex<State>,
}

impl std::fmt::Debug for FrameAllocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameAllocator")
            .field("base", &format_args!("{:#x}", self.base))
            .field("size", &format_args!("{:#x}", self.size))
            .field("outstanding", &self.outstanding_bytes())
            .finish()
    }
}

fn order_of(size: u64) -> Result<u32, AllocError> {
    if size < FRAME_SIZE || !size.is_power_of_two() || size > (FRAME_SIZE << MAX_ORDER) {
        return Err(AllocError::BadSize { size });
    }
    Ok(size.trailing_zeros() - FRAME_SHIFT)
}

impl FrameAllocator {
    /// An allocator owning `[base, base + size)`, which must lie inside one region of `mem`.
    pub fn new(mem: Arc<PhysMem>, base: PhysAddr, size: u64) -> Result<Self, AllocError> {
        if !base.as_u64().is_multiple_of(FRAME_SIZE)
            || !size.is_multiple_of(FRAME_SIZE)
            || size == 0
        {
            return Err(AllocError::Phys(PhysError::BadRegion {
                base,
                size,
                why: "allocator range not 4 KiB aligned",
            }));
        }
        if !mem.contains(base, size) {
            return Err(AllocError::Phys(PhysError::Unbacked {
                pa: base,
                len: size,
            }));
        }
        let mut state = State {
            free: vec![BTreeSet::new(); MAX_ORDER as usize + 1],
            ..State::default()
        };
        // Carve the range into the largest naturally aligned blocks that fit.
        // `mem.contains` checked that the range fits in a region, so these sums cannot wrap.
        let mut pa = base.as_u64();
        let end = pa + size;
        while pa < end {
            let mut order = MAX_ORDER;
            loop {
                let bytes = FRAME_SIZE << order;
                if pa.is_multiple_of(bytes) && pa + bytes <= end {
                    break;
                }
                order -= 1;
            }
            state.free[order as usize].insert(PhysAddr::new(pa));
            pa += FRAME_SIZE << order;
        }
        Ok(FrameAllocator {
            mem,
            base,
            size,
            state: Mutex::new(state),
        })
    }

    /// The memory this allocator hands out.
    pub fn mem(&self) -> &Arc<PhysMem> {
        &self.mem
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent state (every mutation is a single
        // set/map operation), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A zeroed block of `size` bytes (a power of two, 4 KiB to 4 MiB), aligned to `size`.
    pub fn alloc(&self, size: u64) -> Result<PhysAddr, AllocError> {
        let pa = self.alloc_uninit(size)?;
        self.mem.zero(pa, size)?;
        Ok(pa)
    }

    /// Like [`alloc`](Self::alloc) without zeroing the block (Linux's `alloc_page` without
    /// `__GFP_ZERO`): the block holds whatever its last user left, and host pages that were never
    /// touched stay uncommitted. For buffers a device or the caller fills before anyone reads them.
    pub fn alloc_uninit(&self, size: u64) -> Result<PhysAddr, AllocError> {
        let order = order_of(size)?;
        let pa = {
            let mut st = self.lock();
            let mut found = None;
            for o in order..=MAX_ORDER {
                if let Some(pa) = st.free[o as usize].pop_first() {
                    found = Some((pa, o));
                    break;
                }
            }
            let (pa, mut o) = found.ok_or(AllocError::OutOfMemory { size })?;
            while o > order {
                o -= 1;
                st.free[o as usize].insert(PhysAddr::new(pa.as_u64() + (FRAME_SIZE << o)));
            }
            st.live.insert(pa, order);
            st.outstanding += size;
            pa
        };
        Ok(pa)
    }

    /// Return a block obtained from [`alloc`](Self::alloc) with the same size.
    pub fn free(&self, pa: PhysAddr, size: u64) -> Result<(), AllocError> {
        let order = order_of(size)?;
        let mut st = self.lock();
        if st.live.get(&pa) != Some(&order) {
            return Err(AllocError::NotAllocated { pa, size });
        }
        st.live.remove(&pa);
        st.outstanding -= size;
        let (base, end) = (self.base.as_u64(), self.base.as_u64() + self.size);
        let (mut pa, mut o) = (pa.as_u64(), order);
        while o < MAX_ORDER {
            let buddy = pa ^ (FRAME_SIZE << o);
            if buddy < base
                || buddy + (FRAME_SIZE << o) > end
                || !st.free[o as usize].remove(&PhysAddr::new(buddy))
            {
                break;
            }
            pa = pa.min(buddy);
            o += 1;
        }
        st.free[o as usize].insert(PhysAddr::new(pa));
        Ok(())
    }

    /// Bytes currently allocated and not freed.
    pub fn outstanding_bytes(&self) -> u64 {
        self.lock().outstanding
    }

    /// Number of outstanding blocks.
    pub fn outstanding_blocks(&self) -> usize {
        self.lock().live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Region;
    use proptest::prelude::*;

    fn setup(size: u64) -> FrameAllocator {
        let mem =
            Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(0x4000_0000), 0x100_0000)]).unwrap());
        FrameAllocator::new(mem, PhysAddr::new(0x4000_0000), size).unwrap()
    }

    #[test]
    fn blocks_are_aligned_zeroed_and_lowest_first() {
        let a = setup(0x10_0000);
        let p = a.alloc(0x1000).unwrap();
        assert_eq!(p, PhysAddr::new(0x4000_0000));
        a.mem().write_u64(p, 7).unwrap();
        let q = a.alloc(0x4000).unwrap();
        assert!(q.is_aligned(smmu_addr::PageSize::SZ_16K));
        a.free(p, 0x1000).unwrap();
        let p2 = a.alloc(0x1000).unwrap();
        assert_eq!(p2, p);
        assert_eq!(
            a.mem().read_u64(p2).unwrap(),
            0,
            "reallocated frame is zeroed"
        );
    }

    #[test]
    fn misuse_is_a_typed_error() {
        let a = setup(0x2000);
        assert_eq!(a.alloc(0x1800), Err(AllocError::BadSize { size: 0x1800 }));
        let p = a.alloc(0x1000).unwrap();
        assert_eq!(
            a.free(p, 0x2000),
            Err(AllocError::NotAllocated {
                pa: p,
                size: 0x2000
            })
        );
        a.free(p, 0x1000).unwrap();
        assert_eq!(
            a.free(p, 0x1000),
            Err(AllocError::NotAllocated {
                pa: p,
                size: 0x1000
            })
        );
        a.alloc(0x2000).unwrap();
        assert_eq!(
            a.alloc(0x1000),
            Err(AllocError::OutOfMemory { size: 0x1000 })
        );
    }

    proptest! {
        /// Any sequence of allocations and frees: blocks never overlap, and freeing everything
        /// coalesces back to the initial state.
        #[test]
        fn no_overlap_and_full_coalesce(ops in proptest::collection::vec((0u32..5, any::<bool>(), any::<u16>()), 1..200)) {
            let a = setup(0x10_0000);
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (order, do_free, pick) in ops {
                if do_free && !live.is_empty() {
                    let (pa, size) = live.swap_remove(pick as usize % live.len());
                    a.free(PhysAddr::new(pa), size).unwrap();
                } else if let Ok(pa) = a.alloc(0x1000 << order).map(PhysAddr::as_u64) {
                    let size = 0x1000u64 << order;
                    prop_assert_eq!(pa % size, 0);
                    for &(q, s) in &live {
                        prop_assert!(pa + size <= q || q + s <= pa, "overlap");
                    }
                    live.push((pa, size));
                }
            }
            for (pa, size) in live.drain(..) {
                a.free(PhysAddr::new(pa), size).unwrap();
            }
            prop_assert_eq!(a.outstanding_bytes(), 0);
            // Fully coalesced: the whole 1 MiB is one block again.
            prop_assert!(a.alloc(0x10_0000).is_ok());
        }
    }
}
