//! A region's host memory: the bank of atomic words with its written-frame bitmap, and the pool
//! of spare zeroed backings the next bank of the same size reuses.

use crate::{FrameWords, PhysAddr, Region, FRAME_SHIFT, FRAME_SIZE, WORDS_PER_FRAME};
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest region simulated: backing is reserved up front (the host's kernel only commits pages
/// when touched), and the host refuses reservations much larger than its memory.
pub(crate) const MAX_REGION: u64 = 16 << 30;

pub(crate) struct Bank {
    pub(crate) region: Region,
    /// One word per 8 bytes of the region, contiguous: an access is one bounds check and one
    /// load, as the page-table benchmarks need. Zeroed by the allocator (calloc), so untouched
    /// memory costs the host nothing.
    pub(crate) words: Box<[AtomicU64]>,
    /// One bit per frame: set before the first store into the frame. A frame whose bit is
    /// clear is still all zeros, so [`PhysMem::zero`] skips it instead of touching (and making
    /// the host commit) memory nobody wrote: a fresh SMMUv3's 4 MiB queues cost nothing.
    pub(crate) written: Box<[AtomicU64]>,
}

fn zeroed_words(n: usize) -> Box<[AtomicU64]> {
    let b = Box::<[AtomicU64]>::new_zeroed_slice(n);
    // SAFETY: an all-zero bit pattern is a valid AtomicU64 (a plain integer inside).
    unsafe { b.assume_init() }
}

/// Backings of dropped banks, all zeros again, for the next bank of the same size.
///
/// The schedule explorer builds a fresh machine for every run (thousands per second): without
/// reuse each run reserves a 2 GiB DRAM bank from the host, takes a page fault for every frame
/// it touches and returns it all with `munmap`, about 15% of a run's CPU time. A dropped bank
/// zeroes only the frames its `written` bitmap names, so a reused backing is indistinguishable
/// from a fresh one (every word zero) and no run can see another's memory.
pub(crate) static SPARE_BACKINGS: std::sync::Mutex<Vec<Backing>> =
    std::sync::Mutex::new(Vec::new());

/// Most spare backings kept (one per explorer worker is enough; more only holds host memory).
const MAX_SPARE_BACKINGS: usize = 8;

/// A bank whose frames were mostly written is cheaper to give back than to zero.
const MAX_WRITTEN_FRACTION_REUSED: u64 = 8;

/// A bank's host memory: the words and the written-frame bitmap, both all zeros.
pub(crate) struct Backing {
    pub(crate) words: Box<[AtomicU64]>,
    pub(crate) written: Box<[AtomicU64]>,
}

impl Backing {
    /// All-zero backing for a region of `size` bytes: a spare one when there is one.
    pub(crate) fn zeroed(size: u64) -> Backing {
        let words = (size >> 3) as usize;
        let mut spare = SPARE_BACKINGS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = spare.iter().position(|b| b.words.len() == words) {
            return spare.swap_remove(i);
        }
        drop(spare);
        Backing {
            words: zeroed_words(words),
            written: zeroed_words((size >> FRAME_SHIFT).div_ceil(64) as usize),
        }
    }
}

impl Drop for Bank {
    fn drop(&mut self) {
        let frames = self.region.size >> FRAME_SHIFT;
        let written: u64 = self
            .written
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum();
        if written > frames / MAX_WRITTEN_FRACTION_REUSED {
            return;
        }
        for (i, w) in self.written.iter().enumerate() {
            let mut bits = w.swap(0, Ordering::Relaxed);
            while bits != 0 {
                let f = i * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let first = f * WORDS_PER_FRAME;
                if let Some(frame) = self.words.get_mut(first..first + WORDS_PER_FRAME) {
                    // Exclusive access (the bank is being dropped): plain stores, one memset.
                    frame.iter_mut().for_each(|w| *w.get_mut() = 0);
                }
            }
        }
        let mut spare = SPARE_BACKINGS.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < MAX_SPARE_BACKINGS {
            spare.push(Backing {
                words: std::mem::take(&mut self.words),
                written: std::mem::take(&mut self.written),
            });
        }
    }
}

/// The word at `pa` of the words `words` of a bank based at `base`, when `pa` is 8-byte
/// aligned and inside them. Rotating the byte offset right by 3 moves its low three bits to the
/// top, so the one bounds check of the words also rejects an unaligned address and one below
/// the base (the offset wraps).
#[inline(always)]
pub(crate) fn word_at(words: &[AtomicU64], base: u64, pa: PhysAddr) -> Option<&AtomicU64> {
    let index = pa.as_u64().wrapping_sub(base).rotate_right(3);
    // A region holds at most 2^31 words: an index no usize holds is past the end.
    words.get(usize::try_from(index).ok()?)
}

impl Bank {
    /// The word at `pa` when `pa` is 8-byte aligned and inside this bank.
    #[inline(always)]
    pub(crate) fn word_at(&self, pa: PhysAddr) -> Option<&AtomicU64> {
        word_at(&self.words, self.region.base.as_u64(), pa)
    }

    #[inline]
    pub(crate) fn word(&self, pa: PhysAddr) -> &AtomicU64 {
        &self.words[((pa.as_u64() - self.region.base.as_u64()) >> 3) as usize]
    }

    /// The words of `[pa, pa + len)`, which the caller has checked lie in this bank, and how
    /// many there are.
    pub(crate) fn span(&self, pa: PhysAddr, len: u64) -> (&[AtomicU64], usize) {
        let first = ((pa.as_u64() - self.region.base.as_u64()) >> 3) as usize;
        let n = (len >> 3) as usize;
        (&self.words[first..first + n], n)
    }

    /// Note that the frames of `[pa, pa + len)` may be written (before writing them).
    #[inline]
    pub(crate) fn mark(&self, pa: PhysAddr, len: u64) {
        let off = pa.as_u64() - self.region.base.as_u64();
        let first = off >> FRAME_SHIFT;
        let last = (off + len.max(1) - 1) >> FRAME_SHIFT;
        for f in first..=last {
            if let Some(w) = self.written.get((f >> 6) as usize) {
                let bit = 1u64 << (f & 63);
                if w.load(Ordering::Relaxed) & bit == 0 {
                    w.fetch_or(bit, Ordering::Relaxed);
                }
            }
        }
    }

    /// Whether frame number `f` (from the bank's base) may hold something other than zeros.
    #[inline]
    pub(crate) fn is_written(&self, f: u64) -> bool {
        self.written
            .get((f >> 6) as usize)
            .is_none_or(|w| w.load(Ordering::Relaxed) & (1u64 << (f & 63)) != 0)
    }

    #[inline]
    pub(crate) fn frame(&self, pa: PhysAddr) -> Option<&FrameWords> {
        // The caller may store through the frame's words.
        self.mark(PhysAddr::new(pa.as_u64() & !(FRAME_SIZE - 1)), FRAME_SIZE);
        let first =
            (((pa.as_u64() - self.region.base.as_u64()) >> FRAME_SHIFT) as usize) * WORDS_PER_FRAME;
        self.words
            .get(first..first + WORDS_PER_FRAME)
            .and_then(|s| s.try_into().ok())
    }
}
