//! Shared test fixtures: simulated memory, an allocator, and TLB ops that check and record.
#![allow(dead_code)]

use pgtable::{Gather, TlbOps};
use physmem::{FrameAllocator, PhysMem, Region};
use smmu_addr::{Iova, PageSize, PhysAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Base of the simulated RAM the tables live in.
pub const RAM_BASE: u64 = 0x8000_0000;
/// Size of that RAM (and of the allocator's range).
pub const RAM_SIZE: u64 = 0x400_0000;

/// Page sizes in bytes, for address arithmetic in the tests: `smmu_addr::PageSize`'s constants
/// (the one home of the page sizes), as `u64`.
pub const SZ_4K: u64 = PageSize::SZ_4K.bytes();
/// See [`SZ_4K`].
pub const SZ_16K: u64 = PageSize::SZ_16K.bytes();
/// See [`SZ_4K`].
pub const SZ_2M: u64 = PageSize::SZ_2M.bytes();
/// See [`SZ_4K`].
pub const SZ_1G: u64 = PageSize::SZ_1G.bytes();

/// A fresh allocator over 64 MiB of simulated RAM.
pub fn allocator() -> Arc<FrameAllocator> {
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(RAM_BASE), RAM_SIZE)]).unwrap());
    Arc::new(FrameAllocator::new(mem, PhysAddr::new(RAM_BASE), RAM_SIZE).unwrap())
}

/// One TLB callback as it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlbEvent {
    FlushAll,
    FlushWalk { iova: u64, size: u64, granule: u64 },
    AddPage { iova: u64, granule: u64 },
}

/// Linux's selftest dummy ops: the cookie must be the configuration under test, and every
/// size must share a bit with the page-size bitmap. Failed checks are counted (Linux WARNs).
/// Every event is also recorded.
#[derive(Clone)]
pub struct CheckingTlb {
    pub cookie: u64,
    pub under_test: Arc<AtomicU64>,
    pub pgsize_bitmap: u64,
    pub failures: Arc<Mutex<Vec<String>>>,
    pub events: Arc<Mutex<Vec<TlbEvent>>>,
}

impl CheckingTlb {
    pub fn new(cookie: u64, pgsize_bitmap: u64) -> Self {
        CheckingTlb {
            cookie,
            under_test: Arc::new(AtomicU64::new(cookie)),
            pgsize_bitmap,
            failures: Arc::new(Mutex::new(Vec::new())),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }
    fn check_cookie(&self, what: &str) {
        if self.under_test.load(Ordering::Relaxed) != self.cookie {
            self.failures
                .lock()
                .unwrap()
                .push(format!("{what}: cookie mismatch"));
        }
    }
    fn check_size(&self, what: &str, size: u64) {
        if size & self.pgsize_bitmap == 0 {
            self.failures.lock().unwrap().push(format!(
                "{what}: size {size:#x} shares no bit with bitmap {:#x}",
                self.pgsize_bitmap
            ));
        }
    }
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }
    pub fn take_events(&self) -> Vec<TlbEvent> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

impl TlbOps for CheckingTlb {
    fn tlb_flush_all(&self) {
        self.check_cookie("tlb_flush_all");
        self.events.lock().unwrap().push(TlbEvent::FlushAll);
    }
    fn tlb_flush_walk(&self, iova: Iova, size: u64, granule: PageSize) {
        let (iova, granule) = (iova.as_u64(), granule.bytes());
        self.check_cookie("tlb_flush_walk");
        self.check_size("tlb_flush_walk", size);
        self.events.lock().unwrap().push(TlbEvent::FlushWalk {
            iova,
            size,
            granule,
        });
    }
    fn tlb_add_page(&self, _gather: &mut Gather, iova: Iova, granule: PageSize) {
        let (iova, granule) = (iova.as_u64(), granule.bytes());
        self.check_cookie("tlb_add_page");
        self.check_size("tlb_add_page", granule);
        self.events
            .lock()
            .unwrap()
            .push(TlbEvent::AddPage { iova, granule });
    }
}
