//! Typed addresses and sizes for every smmu-lab crate.
//!
//! A device's DMA goes through two address spaces: the I/O virtual address ([`Iova`]) the
//! device uses, and the physical address ([`PhysAddr`]) the SMMU translates it to. Page tables,
//! the IOVA allocator, the drivers and the hardware models all pass both around, often side by
//! side with a page size and a page count, as in `map_pages(iova, paddr, pgsize, pgcount, prot)`.
//! As four `u64`s those can be swapped without a compile error; as [`Iova`], [`PhysAddr`],
//! [`PageSize`] and [`PageCount`] they cannot.
//!
//! The types are plain `u64` newtypes (`Copy`, no cost at run time). Every operation that can
//! overflow is checked, and reports an [`AddrError`] or `None` instead of wrapping or panicking.
//! Conversions to `u64` are `From` (lossless); conversions from `u64` are explicit
//! ([`Iova::new`], [`PhysAddr::new`]) or validated ([`PageSize::new`], `TryFrom`), so an
//! `.into()` never silently changes which address space a number belongs to.
//!
//! The DMA API hands drivers a third kind, [`DmaAddr`] (Linux's `dma_addr_t`): an IOVA behind a
//! translating domain, the physical address itself under dma-direct. It converts to and from the
//! other two only through named functions that say which case applies.
//!
//! A stage-2 input address (an IPA) has no type of its own: it is an [`Iova`]. For the contexts
//! the drivers build (stage 1 only or stage 2 only) the stage-2 input is the address the device
//! put on the bus, and Linux's io-pgtable and arm-smmu call it `iova` for both stages. Only a
//! nested (stage 1 + stage 2) context has an IPA that is neither the device's address nor the
//! output, and that one never leaves the hardware model's walker, where it stays a `u64`. So the
//! models' TLBIIPAS2 operand (`mmu500::TlbiOp::Ipa`) is an [`Iova`] too.
//!
//! All address-like values print as `0x…` hex with `Display`, and `{:x}`/`{:#x}` print exactly
//! what the underlying `u64` would, so log lines keep their bytes when a crate adopts the types.
//!
//! ```
//! use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};
//!
//! let iova = Iova::new(0xffff_e000);
//! let size = PageSize::new(0x1000)?;
//! assert!(iova.is_aligned(size));
//! let len = PageCount::new(2).bytes(size)?;
//! assert_eq!(iova.last_byte(len)?, Iova::new(0xffff_ffff));
//! assert_eq!(PhysAddr::new(0x8000_1234).align_down(size).to_string(), "0x80001000");
//! assert!(PageSize::new(0x3000).is_err());
//! # Ok::<(), smmu_addr::AddrError>(())
//! ```

mod addr;
mod error;
mod iova_pfn;
mod pfn;
mod size;

pub use addr::{DmaAddr, Iova, PhysAddr};
pub use error::{AddrError, AddrKind};
pub use iova_pfn::IovaPfn;
pub use pfn::Pfn;
pub use size::{PageCount, PageSize};
