//! Simulated physical memory for smmu-lab.
//!
//! The page tables written by `pgtable`, walked by the `mmu500` model, and the DMA buffers the
//! simulated devices read and write all live here. Memory is made of [`Region`]s (a board's DRAM
//! banks); each region is backed by one contiguous, zero-initialised host allocation that the host
//! kernel commits page by page as it is touched, so a 2 GiB region costs nothing until used and
//! an access is a bounds check and one load.
//!
//! Every 8-byte word is an [`AtomicU64`]: a 64-bit aligned read or write is single-copy atomic, as
//! the architecture guarantees for translation-table descriptors, so a walker on one thread and a
//! driver on another never see a torn descriptor. Access costs a region compare, an index and
//! one atomic load: no hashing and no lock per entry.
//!
//! [`FrameAllocator`] hands out zeroed, naturally aligned power-of-two blocks of frames from a
//! range of this memory (a buddy allocator), and counts what is outstanding so tests can prove
//! that nothing leaks.
//!
//! # Example
//!
//! ```
//! use physmem::{FrameAllocator, PhysAddr, PhysMem, Region};
//! use smmu_addr::PageSize;
//! use std::sync::Arc;
//!
//! let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(0x8000_0000), 16 << 20)])?);
//! let pa = PhysAddr::new(0x8000_1000);
//! mem.write_u64(pa, 0x0000_0000_8000_2003)?;
//! assert_eq!(mem.read_u64(pa)?, 0x8000_2003);
//! assert!(mem.read_u64(PhysAddr::new(0x4000_0000)).is_err(), "outside every region");
//!
//! let frames = FrameAllocator::new(mem.clone(), PhysAddr::new(0x8080_0000), 8 << 20)?;
//! let table = frames.alloc(4096)?;
//! assert!(table.is_aligned(PageSize::SZ_4K));
//! assert_eq!(mem.read_u64(table)?, 0, "blocks come zeroed");
//! assert_eq!(frames.outstanding_bytes(), 4096);
//! frames.free(table, 4096)?;
//! assert_eq!(frames.outstanding_bytes(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod alloc;
mod snapshot;

pub use alloc::{AllocError, AllocSnapshot, FrameAllocator};
pub use snapshot::{MemSnapshot, SnapshotError};

use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

pub use smmu_addr::PhysAddr;

/// Size of one frame of simulated memory.
pub const FRAME_SIZE: u64 = 4096;
/// log2 of [`FRAME_SIZE`].
pub const FRAME_SHIFT: u32 = 12;
/// 64-bit words in one frame.
pub const WORDS_PER_FRAME: usize = (FRAME_SIZE / 8) as usize;

/// One frame: 512 single-copy-atomic 64-bit words.
pub type FrameWords = [AtomicU64; WORDS_PER_FRAME];

/// Errors from physical memory accesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PhysError {
    /// The access touches an address no region backs (a bus error on real hardware).
    #[error("physical address {pa:#x} (+{len:#x} bytes) is not backed by memory")]
    Unbacked { pa: PhysAddr, len: u64 },
    /// A word access at an address that is not 8-byte aligned.
    #[error("64-bit access at unaligned physical address {pa:#x}")]
    Unaligned { pa: PhysAddr },
    /// A region description that is empty, not frame aligned, overflows, or overlaps another.
    #[error("bad memory region base {base:#x} size {size:#x}: {why}")]
    BadRegion {
        base: PhysAddr,
        size: u64,
        why: &'static str,
    },
}

/// A contiguous range of simulated RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub base: PhysAddr,
    pub size: u64,
}

impl Region {
    pub fn new(base: PhysAddr, size: u64) -> Self {
        Region { base, size }
    }

    /// One past the last byte, as a number: a region may end at the top of the address space,
    /// where no `PhysAddr` can name that byte.
    pub fn end(&self) -> u64 {
        self.base.as_u64().saturating_add(self.size)
    }

    pub fn contains(&self, pa: PhysAddr, len: u64) -> bool {
        match pa.offset_from(self.base) {
            Some(off) => len <= self.size && off <= self.size - len,
            None => false,
        }
    }
}

/// Largest region simulated: backing is reserved up front (the host's kernel only commits pages
/// when touched), and the host refuses reservations much larger than its memory.
const MAX_REGION: u64 = 16 << 30;

struct Bank {
    region: Region,
    /// One word per 8 bytes of the region, contiguous: an access is one bounds check and one
    /// load, as the page-table benchmarks need. Zeroed by the allocator (calloc), so untouched
    /// memory costs the host nothing.
    words: Box<[AtomicU64]>,
    /// One bit per frame: set before the first store into the frame. A frame whose bit is
    /// clear is still all zeros, so [`PhysMem::zero`] skips it instead of touching (and making
    /// the host commit) memory nobody wrote: a fresh SMMUv3's 4 MiB queues cost nothing.
    written: Box<[AtomicU64]>,
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
static SPARE_BACKINGS: std::sync::Mutex<Vec<Backing>> = std::sync::Mutex::new(Vec::new());

/// Most spare backings kept (one per explorer worker is enough; more only holds host memory).
const MAX_SPARE_BACKINGS: usize = 8;

/// A bank whose frames were mostly written is cheaper to give back than to zero.
const MAX_WRITTEN_FRACTION_REUSED: u64 = 8;

/// A bank's host memory: the words and the written-frame bitmap, both all zeros.
struct Backing {
    words: Box<[AtomicU64]>,
    written: Box<[AtomicU64]>,
}

impl Backing {
    /// All-zero backing for a region of `size` bytes: a spare one when there is one.
    fn zeroed(size: u64) -> Backing {
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

impl Bank {
    #[inline]
    fn word(&self, pa: PhysAddr) -> &AtomicU64 {
        &self.words[((pa.as_u64() - self.region.base.as_u64()) >> 3) as usize]
    }

    /// The words of `[pa, pa + len)`, which the caller has checked lie in this bank, and how
    /// many there are.
    fn span(&self, pa: PhysAddr, len: u64) -> (&[AtomicU64], usize) {
        let first = ((pa.as_u64() - self.region.base.as_u64()) >> 3) as usize;
        let n = (len >> 3) as usize;
        (&self.words[first..first + n], n)
    }

    /// Note that the frames of `[pa, pa + len)` may be written (before writing them).
    #[inline]
    fn mark(&self, pa: PhysAddr, len: u64) {
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
    fn is_written(&self, f: u64) -> bool {
        self.written
            .get((f >> 6) as usize)
            .is_none_or(|w| w.load(Ordering::Relaxed) & (1u64 << (f & 63)) != 0)
    }

    #[inline]
    fn frame(&self, pa: PhysAddr) -> Option<&FrameWords> {
        // The caller may store through the frame's words.
        self.mark(PhysAddr::new(pa.as_u64() & !(FRAME_SIZE - 1)), FRAME_SIZE);
        let first =
            (((pa.as_u64() - self.region.base.as_u64()) >> FRAME_SHIFT) as usize) * WORDS_PER_FRAME;
        self.words
            .get(first..first + WORDS_PER_FRAME)
            .and_then(|s| s.try_into().ok())
    }
}

/// Sparse simulated physical memory. Share it with `Arc`; every method takes `&self`.
pub struct PhysMem {
    banks: Vec<Bank>,
}

impl std::fmt::Debug for PhysMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhysMem")
            .field("regions", &self.regions().collect::<Vec<_>>())
            .finish()
    }
}

impl PhysMem {
    /// Memory made of the given regions. Each must be non-empty, frame aligned, and not overlap
    /// another.
    pub fn new(regions: &[Region]) -> Result<Self, PhysError> {
        let mut sorted: Vec<Region> = regions.to_vec();
        sorted.sort_by_key(|r| r.base);
        for r in &sorted {
            let bad = |why| PhysError::BadRegion {
                base: r.base,
                size: r.size,
                why,
            };
            if r.size == 0 {
                return Err(bad("empty"));
            }
            if r.base.as_u64() % FRAME_SIZE != 0 || r.size % FRAME_SIZE != 0 {
                return Err(bad("not 4 KiB aligned"));
            }
            if r.base.checked_add(r.size).is_none() {
                return Err(bad("wraps the address space"));
            }
            if r.size > MAX_REGION {
                return Err(bad("larger than the 16 GiB smmu-lab simulates per region"));
            }
        }
        for w in sorted.windows(2) {
            if w[0].end() > w[1].base.as_u64() {
                return Err(PhysError::BadRegion {
                    base: w[1].base,
                    size: w[1].size,
                    why: "overlaps another region",
                });
            }
        }
        let banks = sorted
            .into_iter()
            .map(|region| {
                let Backing { words, written } = Backing::zeroed(region.size);
                Bank {
                    region,
                    words,
                    written,
                }
            })
            .collect();
        Ok(PhysMem { banks })
    }

    /// The regions, in address order.
    pub fn regions(&self) -> impl Iterator<Item = Region> + '_ {
        self.banks.iter().map(|b| b.region)
    }

    /// Whether `[pa, pa + len)` lies wholly inside one region.
    pub fn contains(&self, pa: PhysAddr, len: u64) -> bool {
        self.bank(pa, len).is_ok()
    }

    #[inline]
    fn bank(&self, pa: PhysAddr, len: u64) -> Result<&Bank, PhysError> {
        for b in &self.banks {
            if b.region.contains(pa, len) {
                return Ok(b);
            }
        }
        Err(PhysError::Unbacked { pa, len })
    }

    /// Single-copy-atomic acquire load of the aligned word at `pa`, or `None` when `pa` is
    /// unaligned or not backed: the cheapest checked read, for a hardware table walker that
    /// turns either case into its own fault (one subtraction and compare per region).
    #[inline]
    pub fn load_word(&self, pa: PhysAddr) -> Option<u64> {
        let pa = pa.as_u64();
        if pa & 7 != 0 {
            return None;
        }
        for b in &self.banks {
            let off = pa.wrapping_sub(b.region.base.as_u64());
            if off < b.region.size {
                return b
                    .words
                    .get((off >> 3) as usize)
                    .map(|w| w.load(Ordering::Acquire));
            }
        }
        None
    }

    /// The frame holding `pa`, materialising it. Lets hot loops (a table walk, a batched map)
    /// index words directly after one bounds check.
    #[inline]
    pub fn frame(&self, pa: PhysAddr) -> Result<&FrameWords, PhysError> {
        self.bank(pa, 1)?
            .frame(pa)
            .ok_or(PhysError::Unbacked { pa, len: 1 })
    }

    /// The word at `pa`, to store into.
    #[inline]
    fn word(&self, pa: PhysAddr) -> Result<&AtomicU64, PhysError> {
        if !pa.as_u64().is_multiple_of(8) {
            return Err(PhysError::Unaligned { pa });
        }
        let bank = self.bank(pa, 8)?;
        bank.mark(pa, 8);
        Ok(bank.word(pa))
    }

    /// Single-copy-atomic 64-bit read (acquire: a walker that sees a table descriptor also sees
    /// the zeroed table behind it).
    #[inline]
    pub fn read_u64(&self, pa: PhysAddr) -> Result<u64, PhysError> {
        if !pa.as_u64().is_multiple_of(8) {
            return Err(PhysError::Unaligned { pa });
        }
        Ok(self.bank(pa, 8)?.word(pa).load(Ordering::Acquire))
    }

    /// Single-copy-atomic 64-bit write (release).
    #[inline]
    pub fn write_u64(&self, pa: PhysAddr, value: u64) -> Result<(), PhysError> {
        self.word(pa)?.store(value, Ordering::Release);
        Ok(())
    }

    /// Atomic compare-and-exchange of one 64-bit word: `Ok(Ok(old))` when it was `current` and is
    /// now `new`, `Ok(Err(actual))` when another writer got there first.
    #[inline]
    pub fn compare_exchange_u64(
        &self,
        pa: PhysAddr,
        current: u64,
        new: u64,
    ) -> Result<Result<u64, u64>, PhysError> {
        Ok(self
            .word(pa)?
            .compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire))
    }

    /// 32-bit read (for AArch32 short-descriptor users and 32-bit DMA beats).
    pub fn read_u32(&self, pa: PhysAddr) -> Result<u32, PhysError> {
        let mut b = [0u8; 4];
        self.read_bytes(pa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// 32-bit write.
    pub fn write_u32(&self, pa: PhysAddr, value: u32) -> Result<(), PhysError> {
        self.write_bytes(pa, &value.to_le_bytes())
    }

    /// Copy `buf.len()` bytes out of memory (little-endian words). Unwritten memory reads as 0.
    pub fn read_bytes(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), PhysError> {
        let bank = self.bank(pa, buf.len() as u64)?;
        let mut done = 0usize;
        while done < buf.len() {
            let addr = pa.as_u64() + done as u64;
            let in_word = (addr & 7) as usize;
            let n = (8 - in_word).min(buf.len() - done);
            let word = bank.word(PhysAddr::new(addr & !7)).load(Ordering::Acquire);
            buf[done..done + n].copy_from_slice(&word.to_le_bytes()[in_word..in_word + n]);
            done += n;
        }
        Ok(())
    }

    /// Copy `data` into memory. Whole words are stored; partial words are merged atomically so
    /// concurrent writers to neighbouring bytes never lose each other's bytes.
    pub fn write_bytes(&self, pa: PhysAddr, data: &[u8]) -> Result<(), PhysError> {
        let bank = self.bank(pa, data.len() as u64)?;
        bank.mark(pa, data.len() as u64);
        let mut done = 0usize;
        while done < data.len() {
            let addr = pa.as_u64() + done as u64;
            let in_word = (addr & 7) as usize;
            let n = (8 - in_word).min(data.len() - done);
            let cell = bank.word(PhysAddr::new(addr & !7));
            if n == 8 {
                let mut w = [0u8; 8];
                w.copy_from_slice(&data[done..done + 8]);
                cell.store(u64::from_le_bytes(w), Ordering::Release);
            } else {
                let mut bytes = [0u8; 8];
                bytes[in_word..in_word + n].copy_from_slice(&data[done..done + n]);
                let value = u64::from_le_bytes(bytes);
                let mask = if n == 8 {
                    u64::MAX
                } else {
                    ((1u64 << (8 * n)) - 1) << (8 * in_word)
                };
                // fetch_update never fails with a closure that always returns Some.
                let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                    Some((old & !mask) | (value & mask))
                });
            }
            done += n;
        }
        Ok(())
    }

    /// Fill `[pa, pa + len)` with zeros.
    /// Frames never written are zeros already and are not touched.
    pub fn zero(&self, pa: PhysAddr, len: u64) -> Result<(), PhysError> {
        let bank = self.bank(pa, len)?;
        let (pa, base) = (pa.as_u64(), bank.region.base.as_u64());
        let end = pa + len;
        let mut at = pa;
        while at < end {
            let frame_end = ((at >> FRAME_SHIFT) + 1) << FRAME_SHIFT;
            let chunk_end = frame_end.min(end);
            if bank.is_written((at - base) >> FRAME_SHIFT) {
                if at.is_multiple_of(8) && chunk_end.is_multiple_of(8) {
                    let (words, _) = bank.span(PhysAddr::new(at), chunk_end - at);
                    for w in words {
                        w.store(0, Ordering::Release);
                    }
                } else {
                    self.write_bytes(PhysAddr::new(at), &vec![0u8; (chunk_end - at) as usize])?;
                }
            }
            at = chunk_end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mem() -> PhysMem {
        PhysMem::new(&[
            Region::new(PhysAddr::new(0x8000_0000), 0x10_0000),
            Region::new(PhysAddr::new(0x1_0000_0000), 0x4000),
        ])
        .unwrap()
    }

    proptest! {
        /// `load_word` is `read_u64` with the error folded into `None`, at every address
        /// (both regions, their edges, the gap, unaligned, wrapping).
        #[test]
        fn load_word_agrees_with_read_u64(
            pa in prop_oneof![
                0x7fff_fff0u64..0x8010_0010,
                0xffff_fff0u64..0x1_0000_4010,
                any::<u64>(),
            ],
            v in any::<u64>(),
        ) {
            let m = mem();
            let _ = m.write_u64(PhysAddr::new(pa & !7), v);
            prop_assert_eq!(m.load_word(PhysAddr::new(pa)), m.read_u64(PhysAddr::new(pa)).ok());
        }
    }

    #[test]
    fn unwritten_memory_reads_zero_and_stays_sparse() {
        let m = mem();
        assert_eq!(m.read_u64(PhysAddr::new(0x8000_0008)).unwrap(), 0);
        let mut b = [0xffu8; 16];
        m.read_bytes(PhysAddr::new(0x8000_1003), &mut b).unwrap();
        assert_eq!(b, [0; 16]);
    }

    fn spare_of_size(size: u64) -> bool {
        let words = (size >> 3) as usize;
        SPARE_BACKINGS
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.words.len() == words)
    }

    #[test]
    fn a_reused_backing_reads_zero_everywhere_the_last_user_wrote() {
        // A size no other test uses, so the spare seen is this test's.
        let size = 0x40_0000 + 0x5000;
        let base = PhysAddr::new(0x9000_0000);
        let m = PhysMem::new(&[Region::new(base, size)]).unwrap();
        let at = |off: u64| PhysAddr::new(base.as_u64() + off);
        m.write_u64(at(0x8), u64::MAX).unwrap();
        m.write_bytes(at(0x1ffd), &[0xab; 7]).unwrap();
        m.frame(at(0x3000)).unwrap()[511].store(5, Ordering::Relaxed);
        let _ = m.compare_exchange_u64(at(size - 8), 0, 3).unwrap();
        drop(m);
        assert!(
            spare_of_size(size),
            "a lightly written bank is kept for reuse"
        );
        let again = PhysMem::new(&[Region::new(base, size)]).unwrap();
        assert!(!spare_of_size(size), "the new bank took the spare");
        for off in (0..size).step_by(8) {
            assert_eq!(again.read_u64(at(off)).unwrap(), 0, "word at +{off:#x}");
        }
        for b in &again.banks {
            assert!(b.written.iter().all(|w| w.load(Ordering::Relaxed) == 0));
        }
    }

    #[test]
    fn a_mostly_written_backing_is_given_back() {
        let size = 0x6000;
        let base = PhysAddr::new(0x9000_0000);
        let m = PhysMem::new(&[Region::new(base, size)]).unwrap();
        m.write_u64(base, 1).unwrap();
        drop(m);
        assert!(!spare_of_size(size));
    }

    #[test]
    fn large_regions_are_cheap_and_edges_work() {
        // 8 GiB of DRAM (reserved, not touched) plus a small region.
        let m = PhysMem::new(&[
            Region::new(PhysAddr::new(0x8_0000_0000), 8 << 30),
            Region::new(PhysAddr::new(0x1000), 0x3000),
        ])
        .unwrap();
        m.write_u64(PhysAddr::new(0x8_0000_0000 + (8 << 30) - 8), 9)
            .unwrap();
        m.write_u64(PhysAddr::new(0x3ff8), 7).unwrap();
        assert_eq!(m.read_u64(PhysAddr::new(0x3ff8)).unwrap(), 7);
        assert_eq!(
            m.read_u64(PhysAddr::new(0x8_0000_0000 + (8 << 30) - 8))
                .unwrap(),
            9
        );
        assert!(m.write_u64(PhysAddr::new(0x4000), 1).is_err());
    }

    #[test]
    fn word_round_trip_and_cmpxchg() {
        let m = mem();
        m.write_u64(PhysAddr::new(0x8000_0010), 0xdead_beef_0000_0003)
            .unwrap();
        assert_eq!(
            m.read_u64(PhysAddr::new(0x8000_0010)).unwrap(),
            0xdead_beef_0000_0003
        );
        assert_eq!(
            m.compare_exchange_u64(PhysAddr::new(0x8000_0010), 1, 2)
                .unwrap(),
            Err(0xdead_beef_0000_0003)
        );
        assert_eq!(
            m.compare_exchange_u64(PhysAddr::new(0x8000_0010), 0xdead_beef_0000_0003, 2)
                .unwrap(),
            Ok(0xdead_beef_0000_0003)
        );
        assert_eq!(m.read_u64(PhysAddr::new(0x8000_0010)).unwrap(), 2);
    }

    #[test]
    fn errors_name_the_problem() {
        let m = mem();
        assert_eq!(
            m.read_u64(PhysAddr::new(0x8000_0004)),
            Err(PhysError::Unaligned {
                pa: PhysAddr::new(0x8000_0004)
            })
        );
        assert_eq!(
            m.write_u64(PhysAddr::new(0x10), 1),
            Err(PhysError::Unbacked {
                pa: PhysAddr::new(0x10),
                len: 8
            })
        );
        // Straddling the end of a region is unbacked, not silently truncated.
        assert_eq!(
            m.write_bytes(PhysAddr::new(0x1_0000_3ffc), &[1; 8]),
            Err(PhysError::Unbacked {
                pa: PhysAddr::new(0x1_0000_3ffc),
                len: 8
            })
        );
        assert!(matches!(
            PhysMem::new(&[
                Region::new(PhysAddr::new(0), 0x2000),
                Region::new(PhysAddr::new(0x1000), 0x1000)
            ]),
            Err(PhysError::BadRegion { .. })
        ));
        assert!(matches!(
            PhysMem::new(&[Region::new(PhysAddr::new(0x10), 0x1000)]),
            Err(PhysError::BadRegion { .. })
        ));
        assert!(matches!(
            PhysMem::new(&[Region::new(PhysAddr::new(0), 32 << 30)]),
            Err(PhysError::BadRegion { .. })
        ));
        assert_eq!(
            PhysMem::new(&[Region::new(PhysAddr::new(0x1000), 0)])
                .unwrap_err()
                .to_string(),
            "bad memory region base 0x1000 size 0x0: empty"
        );
    }

    #[test]
    fn bytes_and_words_agree_little_endian() {
        let m = mem();
        m.write_bytes(PhysAddr::new(0x8000_0001), &[0x11, 0x22, 0x33])
            .unwrap();
        assert_eq!(
            m.read_u64(PhysAddr::new(0x8000_0000)).unwrap(),
            0x0000_0000_3322_1100
        );
        m.write_u32(PhysAddr::new(0x8000_0004), 0xaabbccdd).unwrap();
        assert_eq!(
            m.read_u64(PhysAddr::new(0x8000_0000)).unwrap(),
            0xaabb_ccdd_3322_1100
        );
        assert_eq!(m.read_u32(PhysAddr::new(0x8000_0002)).unwrap(), 0xccdd_3322);
        m.zero(PhysAddr::new(0x8000_0000), 8).unwrap();
        assert_eq!(m.read_u64(PhysAddr::new(0x8000_0000)).unwrap(), 0);
    }

    proptest! {
        /// Random byte writes agree with a plain byte array.
        #[test]
        fn byte_writes_match_a_flat_model(
            ops in proptest::collection::vec((0u64..0x3000, proptest::collection::vec(any::<u8>(), 0..40)), 1..40)
        ) {
            let m = mem();
            let base = 0x8000_0000u64;
            let mut model = vec![0u8; 0x3100];
            for (off, data) in &ops {
                m.write_bytes(PhysAddr::new(base + off), data).unwrap();
                model[*off as usize..*off as usize + data.len()].copy_from_slice(data);
            }
            let mut got = vec![0u8; model.len()];
            m.read_bytes(PhysAddr::new(base), &mut got).unwrap();
            prop_assert_eq!(got, model);
        }
    }

    proptest! {
        /// `zero` skips frames nobody wrote: whatever mix of writes (bytes, words, through a
        /// frame) and zeroing happens, memory reads as a plain byte array would.
        #[test]
        fn zeroing_skips_only_frames_that_are_zero(
            ops in prop::collection::vec((0u8..4, 0u64..4 * FRAME_SIZE, 1u64..6000, any::<u8>()), 1..40)
        ) {
            let base = 0x8000_0000u64;
            let size = 4 * FRAME_SIZE;
            let m = PhysMem::new(&[Region::new(PhysAddr::new(base), size)]).unwrap();
            let mut model = vec![0u8; size as usize];
            for (kind, off, len, v) in ops {
                let len = len.min(size - off);
                match kind {
                    0 => {
                        m.write_bytes(PhysAddr::new(base + off), &vec![v | 1; len as usize]).unwrap();
                        model[off as usize..(off + len) as usize].fill(v | 1);
                    }
                    1 => {
                        m.zero(PhysAddr::new(base + off), len).unwrap();
                        model[off as usize..(off + len) as usize].fill(0);
                    }
                    2 => {
                        let at = off & !7;
                        m.write_u64(PhysAddr::new(base + at), u64::from(v) | 0x100).unwrap();
                        model[at as usize..at as usize + 8]
                            .copy_from_slice(&(u64::from(v) | 0x100).to_le_bytes());
                    }
                    _ => {
                        let f = m.frame(PhysAddr::new(base + off)).unwrap();
                        let w = ((off % FRAME_SIZE) / 8) as usize;
                        f[w].store(u64::from(v) + 1, Ordering::Release);
                        let at = (off & !(FRAME_SIZE - 1)) as usize + w * 8;
                        model[at..at + 8].copy_from_slice(&(u64::from(v) + 1).to_le_bytes());
                    }
                }
            }
            let mut got = vec![0u8; size as usize];
            m.read_bytes(PhysAddr::new(base), &mut got).unwrap();
            prop_assert_eq!(got, model);
        }
    }
}
