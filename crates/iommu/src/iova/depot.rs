//! The rcache's depot: the full magazines of one size bin that no CPU holds, and how it
//! behaves per kernel version ([`IovaDepot`]), the one rcache difference between them.

// Magazines are boxed so that moving them moves a pointer, not 1 KiB.
#![allow(clippy::vec_box)]

use super::rcache::Magazine;

/// Full magazines the depot holds per bin (the fixed array up to v6.6, `MAX_GLOBAL_MAGS`).
pub const MAX_DEPOT_MAGS: usize = 32;

/// How the rcache's depot of full magazines behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IovaDepot {
    /// Up to v6.6: an array of at most [`MAX_DEPOT_MAGS`] magazines per bin; a full
    /// magazine that finds it full is freed to the range set at once; flushed in index order.
    #[default]
    Array,
    /// From v6.7 (911aa1245da8 "iommu/iova: Make the rcache depot scale better"): an
    /// unbounded list, pushed and popped at its head, flushed head first. Its delayed trim
    /// (233045378dbb, one magazine per 100 ms while the depot holds more magazines than
    /// there are CPUs) is not modelled: the simulated kernel has no workqueue timer for it.
    List,
}

/// One bin's depot. The last element is the array's top and the list's head.
#[derive(Clone, Default)]
pub(super) struct Depot {
    mags: Vec<Box<Magazine>>,
}

impl Depot {
    pub(super) fn new() -> Depot {
        Depot {
            mags: Vec::with_capacity(MAX_DEPOT_MAGS),
        }
    }

    /// Take in a full magazine; returns it when the array is full (its ranges then go back to
    /// the range set, Linux `iova_magazine_free_pfns`).
    pub(super) fn push(&mut self, kind: IovaDepot, mag: Box<Magazine>) -> Option<Box<Magazine>> {
        if kind == IovaDepot::List || self.mags.len() < MAX_DEPOT_MAGS {
            self.mags.push(mag);
            None
        } else {
            Some(mag)
        }
    }

    /// The array's top or the list's head.
    pub(super) fn pop(&mut self) -> Option<Box<Magazine>> {
        self.mags.pop()
    }

    /// Ranges held.
    pub(super) fn entries(&self) -> usize {
        self.mags.iter().map(|m| m.entries().len()).sum()
    }

    /// Each magazine's ranges, bottom (or tail) first.
    #[cfg(test)]
    pub(super) fn magazines(&self) -> Vec<&[u64]> {
        self.mags.iter().map(|m| m.entries()).collect()
    }

    /// Whether a magazine holds `pfn`.
    pub(super) fn holds(&self, pfn: u64) -> bool {
        self.mags.iter().any(|m| m.entries().contains(&pfn))
    }

    /// Every magazine, in the order Linux's flush (`free_global_cached_iovas`) frees them:
    /// index order for the array, head first for the list.
    pub(super) fn take_in_flush_order(&mut self, kind: IovaDepot) -> Vec<Box<Magazine>> {
        let mut mags = std::mem::take(&mut self.mags);
        if kind == IovaDepot::List {
            mags.reverse();
        }
        mags
    }
}
