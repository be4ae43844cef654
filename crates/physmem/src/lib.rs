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
mod bank;
mod snapshot;

pub use alloc::{AllocError, AllocSnapshot, FrameAllocator};
pub use snapshot::{MemSnapshot, SnapshotError};

use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

use bank::{Backing, Bank, MAX_REGION};

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
    pub const fn new(base: PhysAddr, size: u64) -> Self {
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
    /// turns either case into its own fault (one subtraction, rotation and compare per region).
    #[inline]
    pub fn load_word(&self, pa: PhysAddr) -> Option<u64> {
        self.reader().load_word(pa)
    }

    /// A reader for a run of [`load_word`](Self::load_word)s, such as one table walk: the same
    /// loads, with the banks' place taken once for the whole run.
    #[inline]
    pub fn reader(&self) -> WordReader<'_> {
        WordReader::new(&self.banks)
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

/// [`PhysMem::load_word`] for a run of reads (see [`PhysMem::reader`]).
///
/// Why it exists: a walk's descriptor reads are acquire loads, after which the compiler must
/// reload anything it read from memory before, the place of the banks included. Held in a local,
/// the reader keeps it in registers: `pgtable`'s random `iova_to_phys` row ran 122 → 106
/// instructions per lookup with it (callgrind; see the root BENCHMARKS.md). It holds the
/// first bank (lowest base: on the boards, the DRAM the page tables live in) apart from the
/// others, so that a read there is one subtraction, rotation, compare and load with nothing
/// fetched from the bank list (88 → 83 instructions per lookup); a read anywhere else goes
/// on to the remaining banks in order, which is [`PhysMem::load_word`]'s bank search.
#[derive(Clone, Copy)]
pub struct WordReader<'a> {
    /// Base of the first bank, as a number (0 when there is no bank).
    first_base: u64,
    /// The first bank's words (none when there is no bank).
    first: &'a [AtomicU64],
    /// The banks after the first.
    rest: &'a [Bank],
}

impl<'a> WordReader<'a> {
    #[inline]
    fn new(banks: &'a [Bank]) -> Self {
        match banks.split_first() {
            Some((first, rest)) => WordReader {
                first_base: first.region.base.as_u64(),
                first: &first.words,
                rest,
            },
            None => WordReader {
                first_base: 0,
                first: &[],
                rest: &[],
            },
        }
    }

    /// What [`PhysMem::load_word`] returns.
    #[inline]
    pub fn load_word(self, pa: PhysAddr) -> Option<u64> {
        if let Some(w) = bank::word_at(self.first, self.first_base, pa) {
            return Some(w.load(Ordering::Acquire));
        }
        for b in self.rest {
            if let Some(w) = b.word_at(pa) {
                return Some(w.load(Ordering::Acquire));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
