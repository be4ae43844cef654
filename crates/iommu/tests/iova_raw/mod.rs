//! The IOVA allocator on plain frame numbers and page counts, for tests that compare it with
//! numbers Linux prints and with a reference model of `iova.c` that counts in `unsigned long`.
//! The allocator's API is typed ([`IovaPfn`], [`PageCount`]); this adapter converts at the
//! edge so each test reads as the Linux sequence it pins.

// Included by several test targets (`#[path]` from the crate's unit tests too); each uses part.
#![allow(dead_code)]

use iommu::iova::{IovaDomain, IovaError};
use smmu_addr::{IovaPfn, PageCount};

/// An [`IovaDomain`] driven with `u64` frame numbers and page counts.
#[derive(Clone, Debug)]
pub struct RawIova(pub IovaDomain);

impl std::ops::Deref for RawIova {
    type Target = IovaDomain;
    fn deref(&self) -> &IovaDomain {
        &self.0
    }
}

impl std::ops::DerefMut for RawIova {
    fn deref_mut(&mut self) -> &mut IovaDomain {
        &mut self.0
    }
}

fn pair((lo, hi): (IovaPfn, IovaPfn)) -> (u64, u64) {
    (lo.get(), hi.get())
}

impl RawIova {
    pub fn alloc_fast(&mut self, pages: u64, limit_pfn: u64, flush: bool) -> Option<u64> {
        self.0
            .alloc_fast(PageCount::new(pages), IovaPfn::new(limit_pfn), flush)
            .map(IovaPfn::get)
    }
    pub fn free_fast(&mut self, pfn: u64, pages: u64) {
        self.0.free_fast(IovaPfn::new(pfn), PageCount::new(pages))
    }
    pub fn free_checked_fast(&mut self, pfn: u64, pages: u64) -> Result<(), IovaError> {
        self.0
            .free_checked_fast(IovaPfn::new(pfn), PageCount::new(pages))
    }
    pub fn alloc(&mut self, pages: u64, limit_pfn: u64, aligned: bool) -> Option<u64> {
        self.0
            .alloc(PageCount::new(pages), IovaPfn::new(limit_pfn), aligned)
            .map(IovaPfn::get)
    }
    pub fn free(&mut self, pfn: u64, pages: u64) -> Result<(), IovaError> {
        self.0.free(IovaPfn::new(pfn), PageCount::new(pages))
    }
    pub fn free_containing(&mut self, pfn: u64) -> Option<(u64, u64)> {
        self.0.free_containing(IovaPfn::new(pfn)).map(pair)
    }
    pub fn reserve(&mut self, lo_pfn: u64, hi_pfn: u64) {
        self.0.reserve(IovaPfn::new(lo_pfn), IovaPfn::new(hi_pfn))
    }
    pub fn cached_pages(&self) -> u64 {
        self.0.cached_pages().get()
    }
    pub fn free_pages(&self) -> u64 {
        self.0.free_pages().get()
    }
    pub fn is_free(&self, lo: u64, hi: u64) -> bool {
        self.0.is_free(IovaPfn::new(lo), IovaPfn::new(hi))
    }
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.ranges().map(pair)
    }
}
