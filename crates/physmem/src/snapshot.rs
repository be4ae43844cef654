//! Saving a [`PhysMem`]'s contents and putting them back in place.
//!
//! The schedule explorer runs thousands of schedules of one scenario, and every schedule starts
//! from the same booted machine. Restoring memory into the machine a run already has (rather
//! than building a new one) keeps its host allocation and its wiring, and costs only the frames
//! either side wrote: a snapshot holds the frames written up to it (the written-frame bitmap
//! names them), and a restore copies those back and zeroes every other frame written since.
//!
//! Both are for a quiescent machine: nothing may access the memory while a snapshot is taken
//! or restored (the explorer's workers each own their machine).

use crate::{Bank, PhysAddr, PhysMem, Region, WORDS_PER_FRAME};
use std::sync::atomic::Ordering;
use thiserror::Error;

/// A snapshot cannot be put back into this memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// The memory's regions are not those the snapshot was taken of.
    #[error(
        "memory snapshot of {snapshot} region(s) from {first:#x} does not fit this memory's regions"
    )]
    RegionsDiffer {
        /// Regions in the snapshot.
        snapshot: usize,
        /// Base of the snapshot's first region (0 when it has none).
        first: PhysAddr,
    },
    /// A frame allocator snapshot was taken of another range.
    #[error(
        "frame allocator snapshot of [{snapshot_base:#x}, +{snapshot_size:#x}) restored into the allocator of [{base:#x}, +{size:#x})"
    )]
    RangeDiffers {
        snapshot_base: PhysAddr,
        snapshot_size: u64,
        base: PhysAddr,
        size: u64,
    },
}

/// The contents of every frame of one bank written up to the snapshot.
#[derive(Clone)]
struct BankSnapshot {
    region: Region,
    /// The bank's written-frame bitmap at the snapshot.
    written: Box<[u64]>,
    /// The words of the written frames, frame after frame in address order.
    words: Box<[u64]>,
}

/// The contents of a [`PhysMem`] at one moment ([`PhysMem::snapshot`]).
#[derive(Clone)]
pub struct MemSnapshot {
    banks: Vec<BankSnapshot>,
}

impl MemSnapshot {
    /// Frames the snapshot holds (those written before it was taken).
    pub fn frames(&self) -> usize {
        self.banks
            .iter()
            .map(|b| b.words.len() / WORDS_PER_FRAME)
            .sum()
    }
}

/// The frame numbers (from the bank's base) whose bits are set in `bitmap`, ascending.
fn set_frames(bitmap: impl Iterator<Item = u64>) -> impl Iterator<Item = usize> {
    bitmap.enumerate().flat_map(|(i, mut bits)| {
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let f = i * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                f
            })
        })
    })
}

impl Bank {
    fn frame_words(&self, f: usize) -> &[std::sync::atomic::AtomicU64] {
        let first = f * WORDS_PER_FRAME;
        self.words
            .get(first..first + WORDS_PER_FRAME)
            .unwrap_or_default()
    }

    fn snapshot(&self) -> BankSnapshot {
        let written: Box<[u64]> = self
            .written
            .iter()
            .map(|w| w.load(Ordering::Acquire))
            .collect();
        let words = set_frames(written.iter().copied())
            .flat_map(|f| {
                self.frame_words(f)
                    .iter()
                    .map(|w| w.load(Ordering::Acquire))
            })
            .collect();
        BankSnapshot {
            region: self.region,
            written,
            words,
        }
    }

    fn restore(&self, s: &BankSnapshot) {
        // Frames written now: a superset of the snapshot's (bits are only ever set while the
        // bank lives). Each gets the snapshot's words, or zeros if the snapshot never wrote it.
        let mut saved = set_frames(s.written.iter().copied())
            .zip(s.words.chunks_exact(WORDS_PER_FRAME))
            .peekable();
        let now = self.written.iter().map(|w| w.load(Ordering::Acquire));
        for f in set_frames(now) {
            while saved.peek().is_some_and(|(g, _)| *g < f) {
                saved.next();
            }
            let frame = self.frame_words(f);
            match saved.peek() {
                Some((g, words)) if *g == f => {
                    for (w, v) in frame.iter().zip(words.iter()) {
                        w.store(*v, Ordering::Release);
                    }
                }
                _ => frame.iter().for_each(|w| w.store(0, Ordering::Release)),
            }
        }
        for (w, v) in self.written.iter().zip(s.written.iter()) {
            w.store(*v, Ordering::Release);
        }
    }
}

impl PhysMem {
    /// The contents of memory now: the frames written so far, copied. Take it while nothing
    /// else accesses the memory.
    pub fn snapshot(&self) -> MemSnapshot {
        MemSnapshot {
            banks: self.banks.iter().map(Bank::snapshot).collect(),
        }
    }

    /// Put the contents of `s` back: afterwards every word reads as it did when `s` was taken,
    /// and frames written only since read as zeros again (and are skipped by later zeroing and
    /// restores, as untouched frames are). Refused, changing nothing, when `s` was taken of
    /// memory with other regions. Restore while nothing else accesses the memory.
    pub fn restore(&self, s: &MemSnapshot) -> Result<(), SnapshotError> {
        let same = s.banks.len() == self.banks.len()
            && s.banks
                .iter()
                .zip(&self.banks)
                .all(|(a, b)| a.region == b.region && a.written.len() == b.written.len());
        if !same {
            return Err(SnapshotError::RegionsDiffer {
                snapshot: s.banks.len(),
                first: s.banks.first().map_or(PhysAddr::new(0), |b| b.region.base),
            });
        }
        for (b, saved) in self.banks.iter().zip(&s.banks) {
            b.restore(saved);
        }
        Ok(())
    }

    /// Frames written (and not given back by a restore) so far: what the next snapshot copies.
    pub fn written_frames(&self) -> usize {
        self.banks
            .iter()
            .flat_map(|b| b.written.iter())
            .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FrameAllocator, FRAME_SIZE};
    use proptest::prelude::*;
    use std::sync::Arc;

    const BASE: u64 = 0x8000_0000;
    const SMALL: u64 = 0x1_0000_0000;
    const BIG: u64 = 0x10_0000;

    fn mem() -> PhysMem {
        PhysMem::new(&[
            Region::new(PhysAddr::new(BASE), BIG),
            Region::new(PhysAddr::new(SMALL), 0x4000),
        ])
        .unwrap()
    }

    /// Every word of both regions.
    fn all_words(m: &PhysMem) -> Vec<u64> {
        let mut v = Vec::new();
        for r in m.regions().collect::<Vec<_>>() {
            for off in (0..r.size).step_by(8) {
                v.push(m.read_u64(PhysAddr::new(r.base.as_u64() + off)).unwrap());
            }
        }
        v
    }

    /// A write anywhere in either region: (region, word index, value, as bytes).
    fn write() -> impl Strategy<Value = (bool, u64, u64, bool)> {
        (any::<bool>(), 0u64..BIG / 8, any::<u64>(), any::<bool>())
    }

    fn apply(m: &PhysMem, (small, word, value, bytes): (bool, u64, u64, bool)) {
        let (base, size) = if small { (SMALL, 0x4000) } else { (BASE, BIG) };
        let off = (word * 8) % (size - 16);
        if bytes {
            // Unaligned, possibly across a frame boundary.
            m.write_bytes(PhysAddr::new(base + off + 3), &value.to_le_bytes())
                .unwrap();
        } else {
            m.write_u64(PhysAddr::new(base + off), value).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// After any writes, a snapshot, and any further writes and zeroing, a restore gives
        /// back exactly the words of the moment of the snapshot, and written-frame accounting
        /// of a memory that never saw the later writes.
        #[test]
        fn restore_gives_back_every_word_of_the_snapshot(
            before in prop::collection::vec(write(), 0..40),
            after in prop::collection::vec(write(), 0..40),
            zero in prop::option::of((0u64..0xf0, 1u64..0x3000)),
        ) {
            let m = mem();
            let fresh = mem();
            for w in &before {
                apply(&m, *w);
                apply(&fresh, *w);
            }
            let expected = all_words(&m);
            let s = m.snapshot();
            prop_assert_eq!(s.frames(), m.written_frames());
            for w in &after {
                apply(&m, *w);
            }
            if let Some((frame, len)) = zero {
                m.zero(PhysAddr::new(BASE + frame * FRAME_SIZE + 5), len).unwrap();
            }
            m.restore(&s).unwrap();
            prop_assert_eq!(all_words(&m), expected);
            prop_assert_eq!(m.written_frames(), fresh.written_frames());
            // A second restore from the same snapshot is the same again.
            for w in &after {
                apply(&m, *w);
            }
            m.restore(&s).unwrap();
            prop_assert_eq!(all_words(&m), all_words(&fresh));
        }
    }

    #[test]
    fn a_snapshot_of_other_regions_is_refused_and_changes_nothing() {
        let m = mem();
        m.write_u64(PhysAddr::new(BASE), 7).unwrap();
        let other = PhysMem::new(&[Region::new(PhysAddr::new(BASE), BIG)]).unwrap();
        let s = other.snapshot();
        assert_eq!(
            m.restore(&s),
            Err(SnapshotError::RegionsDiffer {
                snapshot: 1,
                first: PhysAddr::new(BASE)
            })
        );
        assert_eq!(m.read_u64(PhysAddr::new(BASE)).unwrap(), 7);
        assert_eq!(
            m.restore(&s).unwrap_err().to_string(),
            "memory snapshot of 1 region(s) from 0x80000000 does not fit this memory's regions"
        );
    }

    proptest! {
        /// A restored allocator continues exactly as one that only ever saw the operations
        /// before its snapshot: same blocks, same refusals, same counts.
        #[test]
        fn a_restored_allocator_continues_as_the_fresh_one(
            before in prop::collection::vec((0u32..3, any::<bool>(), any::<prop::sample::Index>()), 0..40),
            after in prop::collection::vec((0u32..3, any::<bool>(), any::<prop::sample::Index>()), 0..40),
            next in prop::collection::vec((0u32..3, any::<bool>(), any::<prop::sample::Index>()), 1..40),
        ) {
            let m = Arc::new(mem());
            let fresh_mem = Arc::new(mem());
            let a = FrameAllocator::new(m.clone(), PhysAddr::new(BASE + 0x1000), 0x8_0000).unwrap();
            let fresh = FrameAllocator::new(fresh_mem, PhysAddr::new(BASE + 0x1000), 0x8_0000).unwrap();
            // Each op allocates 4 KiB << order, or frees one of the outstanding blocks.
            let run = |al: &FrameAllocator, live: &mut Vec<(PhysAddr, u64)>, ops: &[(u32, bool, prop::sample::Index)]| {
                let mut seen = Vec::new();
                for (order, alloc, pick) in ops {
                    if *alloc || live.is_empty() {
                        let size = FRAME_SIZE << order;
                        let r = al.alloc(size);
                        if let Ok(pa) = r {
                            live.push((pa, size));
                        }
                        seen.push(format!("{r:?}"));
                    } else {
                        let (pa, size) = live.remove(pick.index(live.len()));
                        seen.push(format!("{:?}", al.free(pa, size)));
                    }
                }
                seen.push(format!("{} {}", al.outstanding_bytes(), al.outstanding_blocks()));
                seen
            };
            let (mut live, mut fresh_live) = (Vec::new(), Vec::new());
            run(&a, &mut live, &before);
            run(&fresh, &mut fresh_live, &before);
            let s = a.snapshot();
            let mut later = live.clone();
            run(&a, &mut later, &after);
            a.restore(&s).unwrap();
            prop_assert_eq!(run(&a, &mut live, &next), run(&fresh, &mut fresh_live, &next));
        }
    }

    #[test]
    fn an_allocator_snapshot_of_another_range_is_refused() {
        let m = Arc::new(mem());
        let a = FrameAllocator::new(m.clone(), PhysAddr::new(BASE), 0x4_0000).unwrap();
        let b = FrameAllocator::new(m, PhysAddr::new(BASE + 0x4_0000), 0x4_0000).unwrap();
        let p = a.alloc(FRAME_SIZE).unwrap();
        assert_eq!(
            a.restore(&b.snapshot()),
            Err(SnapshotError::RangeDiffers {
                snapshot_base: PhysAddr::new(BASE + 0x4_0000),
                snapshot_size: 0x4_0000,
                base: PhysAddr::new(BASE),
                size: 0x4_0000,
            })
        );
        assert_eq!(a.outstanding_bytes(), FRAME_SIZE, "nothing changed");
        a.free(p, FRAME_SIZE).unwrap();
    }
}
