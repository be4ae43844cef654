//! A buddy allocator of zeroed frames over a range of [`PhysMem`].

use crate::{PhysAddr, PhysError, PhysMem, SnapshotError, FRAME_SHIFT, FRAME_SIZE};
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

/// The free blocks of one order: a bitmap over the order's naturally aligned block slots that
/// meet the range, so the lowest free address is chosen (deterministic) without a tree node per
/// block. Every word before `first_word` is zero; `count` bits are set (an empty order is not
/// scanned).
#[derive(Default, Clone)]
struct FreeBlocks {
    order: u32,
    /// The slot (frame number >> order) of bit 0.
    first_slot: u64,
    words: Vec<u64>,
    first_word: usize,
    count: usize,
}

impl FreeBlocks {
    /// Slots for the blocks of `order` within frames `[first_frame, end_frame)` (non-empty).
    fn new(order: u32, first_frame: u64, end_frame: u64) -> Self {
        let first_slot = first_frame >> order;
        let slots = ((end_frame - 1) >> order) - first_slot + 1;
        FreeBlocks {
            order,
            first_slot,
            words: vec![0; slots.div_ceil(64) as usize],
            first_word: 0,
            count: 0,
        }
    }

    /// The word index and bit of the block at `pa`.
    fn slot(&self, pa: PhysAddr) -> Option<(usize, u32)> {
        let s = ((pa.as_u64() >> FRAME_SHIFT) >> self.order).checked_sub(self.first_slot)?;
        let w = usize::try_from(s / 64).ok()?;
        (w < self.words.len()).then_some((w, (s % 64) as u32))
    }

    fn insert(&mut self, pa: PhysAddr) {
        if let Some((w, b)) = self.slot(pa) {
            if let Some(word) = self.words.get_mut(w) {
                if *word & (1 << b) == 0 {
                    self.count += 1;
                }
                *word |= 1 << b;
                self.first_word = self.first_word.min(w);
            }
        }
    }

    /// Remove the block at `pa`; whether it was free.
    fn remove(&mut self, pa: PhysAddr) -> bool {
        let Some((w, b)) = self.slot(pa) else {
            return false;
        };
        match self.words.get_mut(w) {
            Some(word) if *word & (1 << b) != 0 => {
                *word &= !(1 << b);
                self.count -= 1;
                true
            }
            _ => false,
        }
    }

    /// Take the free block with the lowest address.
    fn pop_first(&mut self) -> Option<PhysAddr> {
        if self.count == 0 {
            return None;
        }
        while let Some(word) = self.words.get_mut(self.first_word) {
            if *word != 0 {
                let b = word.trailing_zeros();
                *word &= !(1 << b);
                self.count -= 1;
                let slot = self.first_slot + self.first_word as u64 * 64 + u64::from(b);
                return Some(PhysAddr::new((slot << self.order) << FRAME_SHIFT));
            }
            self.first_word += 1;
        }
        None
    }
}

#[derive(Default, Clone)]
struct State {
    /// Free blocks per order.
    free: Vec<FreeBlocks>,
    /// The order of the outstanding block starting at each frame of the range ([`NOT_LIVE`] where
    /// none starts): one byte per frame instead of a map node per block, because a booted
    /// machine holds thousands of single-frame buffers and an explored run builds and drops one
    /// machine per schedule.
    live: Vec<u8>,
    /// Number of outstanding blocks.
    live_blocks: usize,
    outstanding: u64,
}

/// [`State::live`] of a frame where no outstanding block starts.
const NOT_LIVE: u8 = u8::MAX;

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
        let frames = usize::try_from(size >> FRAME_SHIFT).map_err(|_| {
            AllocError::Phys(PhysError::BadRegion {
                base,
                size,
                why: "allocator range larger than the host's address space",
            })
        })?;
        let mut state = State {
            free: (0..=MAX_ORDER)
                .map(|o| {
                    let first = base.as_u64() >> FRAME_SHIFT;
                    FreeBlocks::new(o, first, first + (size >> FRAME_SHIFT))
                })
                .collect(),
            live: vec![NOT_LIVE; frames],
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

    /// The index in [`State::live`] of the frame at `pa`, if `pa` is a frame of the range.
    fn frame_index(&self, pa: PhysAddr) -> Option<usize> {
        let off = pa.as_u64().checked_sub(self.base.as_u64())?;
        if off >= self.size || !off.is_multiple_of(FRAME_SIZE) {
            return None;
        }
        usize::try_from(off >> FRAME_SHIFT).ok()
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
            if let Some(slot) = self.frame_index(pa).and_then(|i| st.live.get_mut(i)) {
                // MAX_ORDER < NOT_LIVE, so an order always fits and never reads as free.
                *slot = order as u8;
            }
            st.live_blocks += 1;
            st.outstanding += size;
            pa
        };
        Ok(pa)
    }

    /// Return a block obtained from [`alloc`](Self::alloc) with the same size.
    pub fn free(&self, pa: PhysAddr, size: u64) -> Result<(), AllocError> {
        let order = order_of(size)?;
        let mut st = self.lock();
        let slot = self.frame_index(pa).and_then(|i| st.live.get_mut(i));
        match slot {
            Some(o) if u32::from(*o) == order => *o = NOT_LIVE,
            _ => return Err(AllocError::NotAllocated { pa, size }),
        }
        st.live_blocks -= 1;
        st.outstanding -= size;
        let (base, end) = (self.base.as_u64(), self.base.as_u64() + self.size);
        let (mut pa, mut o) = (pa.as_u64(), order);
        while o < MAX_ORDER {
            let buddy = pa ^ (FRAME_SIZE << o);
            if buddy < base
                || buddy + (FRAME_SIZE << o) > end
                || !st.free[o as usize].remove(PhysAddr::new(buddy))
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
        self.lock().live_blocks
    }

    /// Which blocks are outstanding and free now. The blocks' contents are memory's:
    /// [`PhysMem::snapshot`] saves them.
    pub fn snapshot(&self) -> AllocSnapshot {
        AllocSnapshot {
            base: self.base,
            size: self.size,
            state: self.lock().clone(),
        }
    }

    /// Put back the outstanding and free blocks of `s`, which must be a snapshot of an
    /// allocator of the same range (refused otherwise, changing nothing): the allocator then
    /// hands out and accepts exactly what it did when `s` was taken.
    pub fn restore(&self, s: &AllocSnapshot) -> Result<(), SnapshotError> {
        if (s.base, s.size) != (self.base, self.size) {
            return Err(SnapshotError::RangeDiffers {
                snapshot_base: s.base,
                snapshot_size: s.size,
                base: self.base,
                size: self.size,
            });
        }
        self.lock().clone_from(&s.state);
        Ok(())
    }
}

/// A [`FrameAllocator`]'s blocks at one moment ([`FrameAllocator::snapshot`]).
#[derive(Clone)]
pub struct AllocSnapshot {
    base: PhysAddr,
    size: u64,
    state: State,
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

    /// The buddy algorithm with ordered sets, the obvious way: the oracle the bitmaps must match.
    struct TreeBuddy {
        free: Vec<std::collections::BTreeSet<u64>>,
        live: std::collections::BTreeMap<u64, u32>,
        base: u64,
        end: u64,
    }

    impl TreeBuddy {
        fn new(base: u64, size: u64) -> Self {
            let mut free = vec![std::collections::BTreeSet::new(); MAX_ORDER as usize + 1];
            let (mut pa, end) = (base, base + size);
            while pa < end {
                let mut o = MAX_ORDER;
                while !pa.is_multiple_of(FRAME_SIZE << o) || pa + (FRAME_SIZE << o) > end {
                    o -= 1;
                }
                free[o as usize].insert(pa);
                pa += FRAME_SIZE << o;
            }
            TreeBuddy {
                free,
                live: Default::default(),
                base,
                end,
            }
        }

        fn alloc(&mut self, order: u32) -> Option<u64> {
            let (pa, mut o) = (order..=MAX_ORDER)
                .find_map(|o| self.free[o as usize].pop_first().map(|pa| (pa, o)))?;
            while o > order {
                o -= 1;
                self.free[o as usize].insert(pa + (FRAME_SIZE << o));
            }
            self.live.insert(pa, order);
            Some(pa)
        }

        fn free(&mut self, pa: u64, order: u32) -> bool {
            if self.live.get(&pa) != Some(&order) {
                return false;
            }
            self.live.remove(&pa);
            let (mut pa, mut o) = (pa, order);
            while o < MAX_ORDER {
                let buddy = pa ^ (FRAME_SIZE << o);
                if buddy < self.base
                    || buddy + (FRAME_SIZE << o) > self.end
                    || !self.free[o as usize].remove(&buddy)
                {
                    break;
                }
                pa = pa.min(buddy);
                o += 1;
            }
            self.free[o as usize].insert(pa);
            true
        }
    }

    proptest! {
        /// The allocator hands out exactly the blocks the ordered-set buddy algorithm does, and
        /// accepts and refuses exactly the same frees, on ranges whose base is not aligned to
        /// the largest block (so the bitmaps' first slots are offset).
        #[test]
        fn same_blocks_as_the_ordered_set_algorithm(
            base_frames in 0u64..700,
            frames in 1u64..1500,
            ops in proptest::collection::vec((0u32..=MAX_ORDER, 0u8..3, any::<u16>()), 1..400),
        ) {
            let mem = Arc::new(
                PhysMem::new(&[Region::new(PhysAddr::new(0x4000_0000), 0x100_0000)]).unwrap(),
            );
            let base = 0x4000_0000 + base_frames * FRAME_SIZE;
            let size = frames * FRAME_SIZE;
            let a = FrameAllocator::new(mem, PhysAddr::new(base), size).unwrap();
            let mut oracle = TreeBuddy::new(base, size);
            let mut live: Vec<(u64, u32)> = Vec::new();
            for (order, what, pick) in ops {
                match what {
                    0 | 1 if what == 1 && !live.is_empty() => {
                        let (pa, o) = live.swap_remove(pick as usize % live.len());
                        prop_assert!(oracle.free(pa, o));
                        prop_assert!(a.free(PhysAddr::new(pa), FRAME_SIZE << o).is_ok());
                    }
                    2 => {
                        // A free of something that is not an outstanding block of that size
                        // (or is one: both must agree either way).
                        let pa = base + u64::from(pick) * 0x800;
                        let ok = oracle.free(pa, order);
                        prop_assert_eq!(a.free(PhysAddr::new(pa), FRAME_SIZE << order).is_ok(), ok);
                        if ok {
                            live.retain(|&(p, _)| p != pa);
                        }
                    }
                    _ => {
                        let want = oracle.alloc(order);
                        let got = a.alloc_uninit(FRAME_SIZE << order).ok().map(PhysAddr::as_u64);
                        prop_assert_eq!(got, want);
                        if let Some(pa) = got {
                            live.push((pa, order));
                        }
                    }
                }
                prop_assert_eq!(a.outstanding_blocks(), oracle.live.len());
            }
        }

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
