//! The model's caches: a finite TLB of leaf translations and a configuration cache of decoded
//! STE + CD. Both keep what they hold until invalidated by a command (or evicted, first in first
//! out, when full): a driver that rewrites an STE or a PTE without the matching CFGI or TLBI
//! keeps getting the old answer, as on silicon.

use crate::strtab::StreamCfg;
use smmuv3_arch::cmd::{Command, TlbiRange};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// One cached leaf translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TlbEntry {
    pub vmid: u16,
    /// `None` for a stage-2-only entry (tagged by VMID alone).
    pub asid: Option<u16>,
    /// Input address of the start of the block or page.
    pub va: u64,
    pub size_shift: u32,
    /// Output address of `va`.
    pub pa: u64,
    pub read: bool,
    pub write: bool,
}

impl TlbEntry {
    fn end(&self) -> u64 {
        self.va.saturating_add((1u64 << self.size_shift) - 1)
    }

    fn overlaps(&self, lo: u64, hi: u64) -> bool {
        self.va <= hi && lo <= self.end()
    }
}

/// The TLB: a fixed number of entries, replaced in insertion order.
#[derive(Debug, Clone)]
pub(crate) struct Tlb {
    entries: VecDeque<TlbEntry>,
    capacity: usize,
}

impl Tlb {
    pub fn new(capacity: usize) -> Self {
        Tlb {
            entries: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn lookup(&self, vmid: u16, asid: Option<u16>, ia: u64) -> Option<TlbEntry> {
        self.entries
            .iter()
            .find(|e| e.vmid == vmid && e.asid == asid && e.va <= ia && ia <= e.end())
            .copied()
    }

    pub fn insert(&mut self, e: TlbEntry) {
        if self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(e);
    }

    fn retain(&mut self, keep: impl Fn(&TlbEntry) -> bool) {
        self.entries.retain(|e| keep(e));
    }

    /// Apply a TLBI command; returns whether it was one.
    pub fn invalidate(&mut self, cmd: &Command) -> bool {
        let span = |addr: u64, range: &TlbiRange| {
            let hi = match range.bytes() {
                Some(b) => addr.saturating_add(b - 1),
                None => addr,
            };
            (addr, hi)
        };
        match *cmd {
            Command::TlbiNhAll { vmid } => self.retain(|e| !(e.vmid == vmid && e.asid.is_some())),
            Command::TlbiNhAsid { vmid, asid } => {
                self.retain(|e| !(e.vmid == vmid && e.asid == Some(asid)))
            }
            Command::TlbiNhVa {
                vmid,
                asid,
                addr,
                range,
                ..
            } => {
                let (lo, hi) = span(addr, &range);
                self.retain(|e| !(e.vmid == vmid && e.asid == Some(asid) && e.overlaps(lo, hi)))
            }
            Command::TlbiNhVaa {
                vmid, addr, range, ..
            } => {
                let (lo, hi) = span(addr, &range);
                self.retain(|e| !(e.vmid == vmid && e.asid.is_some() && e.overlaps(lo, hi)))
            }
            Command::TlbiS12Vmall { vmid } => self.retain(|e| e.vmid != vmid),
            Command::TlbiS2Ipa {
                vmid, addr, range, ..
            } => {
                // Only stage-2 entries: combined stage-1+2 entries need a VMALL or NH_ALL.
                let (lo, hi) = span(addr, &range);
                self.retain(|e| !(e.vmid == vmid && e.asid.is_none() && e.overlaps(lo, hi)))
            }
            Command::TlbiNsnhAll => self.entries.clear(),
            // No EL2 translation regime is modelled, so nothing is tagged EL2.
            Command::TlbiEl2All => {}
            _ => return false,
        }
        true
    }
}

/// The configuration cache: StreamID → decoded STE (and CD).
#[derive(Debug, Clone)]
pub(crate) struct ConfigCache {
    map: BTreeMap<u32, Arc<StreamCfg>>,
    order: VecDeque<u32>,
    capacity: usize,
}

impl ConfigCache {
    pub fn new(capacity: usize) -> Self {
        ConfigCache {
            map: BTreeMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn get(&self, sid: u32) -> Option<Arc<StreamCfg>> {
        self.map.get(&sid).cloned()
    }

    pub fn insert(&mut self, sid: u32, cfg: Arc<StreamCfg>) {
        if self.map.insert(sid, cfg).is_none() {
            self.order.push_back(sid);
            while self.map.len() > self.capacity {
                match self.order.pop_front() {
                    Some(old) => {
                        self.map.remove(&old);
                    }
                    None => break,
                }
            }
        }
    }

    fn remove_range(&mut self, lo: u32, hi: u32) {
        self.map.retain(|&s, _| s < lo || s > hi);
        let map = &self.map;
        self.order.retain(|s| map.contains_key(s));
    }

    /// Apply a CFGI command; returns whether it was one.
    pub fn invalidate(&mut self, cmd: &Command) -> bool {
        match *cmd {
            // The CD is cached with its STE, so invalidating either drops the stream.
            Command::CfgiSte { sid, .. }
            | Command::CfgiCd { sid, .. }
            | Command::CfgiCdAll { sid } => self.remove_range(sid, sid),
            Command::CfgiSteRange { sid, range } => {
                let mask = if range >= 31 {
                    u32::MAX
                } else {
                    (2u32 << range) - 1
                };
                self.remove_range(sid & !mask, sid | mask)
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(asid: Option<u16>, va: u64) -> TlbEntry {
        TlbEntry {
            vmid: 0,
            asid,
            va,
            size_shift: 12,
            pa: va,
            read: true,
            write: true,
        }
    }

    #[test]
    fn fifo_and_invalidation() {
        let mut t = Tlb::new(2);
        t.insert(e(Some(1), 0x1000));
        t.insert(e(Some(1), 0x2000));
        t.insert(e(Some(2), 0x3000));
        assert_eq!(t.len(), 2);
        assert!(t.lookup(0, Some(1), 0x1000).is_none(), "oldest evicted");
        let range = TlbiRange {
            num: 1,
            scale: 0,
            tg: 1,
            ttl: 3,
        };
        t.invalidate(&Command::TlbiNhVa {
            vmid: 0,
            asid: 1,
            addr: 0x1000,
            leaf: true,
            range,
        });
        assert!(t.lookup(0, Some(1), 0x2fff).is_none());
        assert!(t.lookup(0, Some(2), 0x3000).is_some());
        t.invalidate(&Command::TlbiNsnhAll);
        assert_eq!(t.len(), 0);
    }
}
