//! The one error type of this crate.

use crate::PageSize;
use std::fmt;
use thiserror::Error;

/// Which address space an [`AddrError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrKind {
    /// An I/O virtual address: the input of the SMMU ([`Iova`](crate::Iova)).
    Iova,
    /// A physical address: the output of the SMMU ([`PhysAddr`](crate::PhysAddr)).
    Phys,
    /// A DMA (bus) address handed to a device ([`DmaAddr`](crate::DmaAddr)).
    Dma,
}

impl fmt::Display for AddrKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrKind::Iova => "IOVA",
            AddrKind::Phys => "physical address",
            AddrKind::Dma => "DMA address",
        })
    }
}

/// Why an address or size could not be built or computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AddrError {
    /// A page size that is zero or not a power of two.
    #[error("page size {size:#x} is not a power of two")]
    NotPowerOfTwo { size: u64 },
    /// A page-size shift of 64 or more.
    #[error("page-size shift {shift} does not fit a 64-bit size")]
    ShiftTooLarge { shift: u32 },
    /// An address that is not a multiple of the required alignment.
    #[error("{kind} {addr:#x} is not aligned to {align:#x}")]
    Misaligned {
        kind: AddrKind,
        addr: u64,
        align: PageSize,
    },
    /// `base + len` (or the last byte of a range) does not fit in 64 bits.
    #[error("{kind} {base:#x} + {len:#x} overflows the 64-bit address space")]
    Overflow { kind: AddrKind, base: u64, len: u64 },
    /// `count` pages of `size` bytes are more than 2^64 - 1 bytes.
    #[error("{count} pages of {size:#x} bytes overflow 64 bits")]
    CountOverflow { count: u64, size: PageSize },
    /// A byte length that is not a whole number of pages.
    #[error("length {len:#x} is not a whole number of {size:#x}-byte pages")]
    NotWholePages { len: u64, size: PageSize },
    /// A page frame number whose address does not fit in 64 bits.
    #[error("page frame number {pfn:#x} is beyond the 64-bit address space")]
    PfnRange { pfn: u64 },
}
