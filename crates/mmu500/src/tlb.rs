//! The model's TLB: a finite set of cached leaf translations with seeded random replacement.
//!
//! Entries are tagged with the context bank, VMID and ASID they were walked for and keep the
//! leaf's block size, so one entry covers a whole 2 MiB block. The store is set-associative:
//! a lookup probes one 4-way set per leaf size the context's granule allows (at most three), so
//! it is O(1). Invalidations scan every set in order (deterministic); they are rare next to
//! lookups.
//!
//! A stale entry lives until an invalidation that covers it: a driver that changes a PTE and
//! forgets the TLBI keeps seeing the old output address, as on hardware.

use std::hash::{BuildHasherDefault, Hasher};

/// A small multiplicative hasher (FxHash-style): fast and deterministic. Maps keyed with it are
/// never iterated, so their order is never observable.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.hash = (self.hash.rotate_left(5) ^ i).wrapping_mul(SEED);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// What a TLB entry is tagged with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Tag {
    pub cb: u16,
    pub vmid: u16,
    pub asid: u16,
}

/// One cached translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub tag: Tag,
    /// Input address of the block start.
    pub va_base: u64,
    /// Output address of the block start.
    pub pa_base: u64,
    /// log2 of the block size.
    pub shift: u32,
    /// Stage-1 permissions after hierarchical controls (all true without stage 1).
    pub readable: bool,
    pub writable: bool,
    /// Accessible to unprivileged transactions.
    pub unpriv: bool,
    /// Stage-2 permissions (all true without stage 2).
    pub s2_readable: bool,
    pub s2_writable: bool,
    /// Levels of the stage-1 and stage-2 leaf descriptors (FSYNR0.PLVL on a permission fault).
    pub level: u8,
    pub s2_level: u8,
    /// Stage-1 IPA of the block start, for stage-2 invalidation by IPA (equals `va_base` for
    /// stage-2-only contexts; `u64::MAX` when unknown, e.g. nested).
    pub ipa_base: u64,
    /// The bank's context epoch when the entry was walked (see `Bank::epoch`): not part of the
    /// tag, so a stale entry still hits after the bank is reprogrammed, and reports where it
    /// came from.
    pub epoch: u64,
}

/// What an invalidation matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    All,
    Vmid(u16),
    Asid {
        vmid: u16,
        asid: u16,
    },
    Va {
        vmid: u16,
        asid: u16,
        va: u64,
    },
    /// Any ASID.
    VaAllAsid {
        vmid: u16,
        va: u64,
    },
    Ipa {
        vmid: u16,
        ipa: u64,
    },
}

impl Match {
    fn hits(&self, e: &Entry) -> bool {
        let covers = |a: u64| (a >> e.shift) == (e.va_base >> e.shift);
        match *self {
            Match::All => true,
            Match::Vmid(v) => e.tag.vmid == v,
            Match::Asid { vmid, asid } => e.tag.vmid == vmid && e.tag.asid == asid,
            Match::Va { vmid, asid, va } => e.tag.vmid == vmid && e.tag.asid == asid && covers(va),
            Match::VaAllAsid { vmid, va } => e.tag.vmid == vmid && covers(va),
            Match::Ipa { vmid, ipa } => {
                e.tag.vmid == vmid
                    && (e.ipa_base == u64::MAX || (ipa >> e.shift) == (e.ipa_base >> e.shift))
            }
        }
    }
}

/// Ways per set.
const WAYS: usize = 4;

/// Marks a live way in [`SetKeys::tag`] (no packed tag has it).
const LIVE: u64 = 1 << 63;

/// The packed form of a tag, as a set stores it.
#[inline]
fn tag_key(t: Tag) -> u64 {
    LIVE | u64::from(t.cb) | (u64::from(t.vmid) << 16) | (u64::from(t.asid) << 32)
}

/// The packed (block number, block size) an entry answers for.
#[inline]
fn va_key(shift: u32, vpn: u64) -> u64 {
    (vpn << 6) | u64::from(shift & 63)
}

/// The compare keys of one set, in one cache line: a probe reads only this line and the
/// entry it hits.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct SetKeys {
    /// `tag_key` of each way, 0 when the way is empty.
    tag: [u64; WAYS],
    /// `va_key` of each way.
    va: [u64; WAYS],
}

/// The TLB proper: set-associative (4 ways, a power-of-two number of sets: the configured
/// capacity rounds up to that shape), indexed by a hash of (tag, leaf size, page), with seeded
/// random replacement within a set.
#[derive(Clone)]
pub(crate) struct Tlb {
    keys: Vec<SetKeys>,
    entries: Vec<[Entry; WAYS]>,
    /// Usable ways per set (fewer than [`WAYS`] only for capacities below it).
    ways: usize,
    rng: u64,
    live: usize,
    /// How many live entries of each leaf shift exist, so lookups skip sizes never cached.
    by_shift: [u32; 64],
}

#[inline]
fn key_hash(tag: Tag, shift: u32, vpn: u64) -> u64 {
    let mut h = FxHasher::default();
    h.write_u64(
        u64::from(tag.cb)
            | (u64::from(tag.vmid) << 16)
            | (u64::from(tag.asid) << 32)
            | (u64::from(shift) << 48),
    );
    h.write_u64(vpn);
    h.finish()
}

/// The contents of an empty way (never read: its key says empty).
const EMPTY: Entry = Entry {
    tag: Tag {
        cb: 0,
        vmid: 0,
        asid: 0,
    },
    va_base: 0,
    pa_base: 0,
    shift: 0,
    readable: false,
    writable: false,
    unpriv: false,
    s2_readable: false,
    s2_writable: false,
    level: 0,
    s2_level: 0,
    ipa_base: 0,
    epoch: 0,
};

impl Tlb {
    pub fn new(capacity: usize, seed: u64) -> Self {
        let capacity = capacity.max(1);
        let ways = capacity.min(WAYS);
        // A power-of-two number of sets, so the set index is a mask (capacity rounds up).
        let nsets = capacity.div_ceil(ways).next_power_of_two();
        Tlb {
            keys: vec![SetKeys::default(); nsets],
            entries: vec![[EMPTY; WAYS]; nsets],
            ways,
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
            live: 0,
            by_shift: [0; 64],
        }
    }

    fn next_random(&mut self) -> u64 {
        // SplitMix64: deterministic, seeded from the configuration.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[inline]
    fn set_of(&self, tag: Tag, shift: u32, vpn: u64) -> usize {
        // `keys.len()` is a power of two.
        (key_hash(tag, shift, vpn) as usize) & (self.keys.len() - 1)
    }

    /// The entry covering `va` for `tag`, trying each leaf size in `shifts`.
    #[inline]
    pub fn lookup(&self, tag: Tag, va: u64, shifts: &[u32]) -> Option<Entry> {
        let tk = tag_key(tag);
        for &s in shifts {
            if self.by_shift.get(s as usize).copied().unwrap_or(0) == 0 {
                continue;
            }
            let vpn = va >> s;
            let si = self.set_of(tag, s, vpn);
            let keys = self.keys.get(si)?;
            let vk = va_key(s, vpn);
            for w in 0..self.ways.min(WAYS) {
                if keys.tag[w] == tk && keys.va[w] == vk {
                    return self.entries.get(si).map(|e| e[w]);
                }
            }
        }
        None
    }

    /// Cache `e`, evicting a pseudo-randomly chosen way of its set when the set is full. One
    /// pass over the set finds the same entry or a free way; the generator only runs when
    /// neither exists.
    #[inline]
    pub fn insert(&mut self, e: Entry) {
        let vpn = e.va_base >> e.shift;
        let si = self.set_of(e.tag, e.shift, vpn);
        let ways = self.ways.min(WAYS);
        let Some(keys) = self.keys.get(si) else {
            return;
        };
        let (tk, vk) = (tag_key(e.tag), va_key(e.shift, vpn));
        let mut free = None;
        let mut same = None;
        for w in 0..ways {
            if keys.tag[w] == 0 {
                if free.is_none() {
                    free = Some(w);
                }
            } else if keys.tag[w] == tk && keys.va[w] == vk {
                same = Some(w);
                break;
            }
        }
        let way = match same.or(free) {
            Some(w) => w,
            // Multiply-shift range reduction: no division on the fill path (`ways` <= 4).
            None => ((self.next_random() >> 32).wrapping_mul(ways as u64) >> 32) as usize,
        };
        let (Some(keys), Some(slot)) = (
            self.keys.get_mut(si),
            self.entries.get_mut(si).and_then(|s| s.get_mut(way)),
        ) else {
            return;
        };
        if keys.tag[way] != 0 {
            self.live -= 1;
            if let Some(c) = self.by_shift.get_mut(slot.shift as usize) {
                *c = c.saturating_sub(1);
            }
        }
        keys.tag[way] = tk;
        keys.va[way] = vk;
        *slot = e;
        self.live += 1;
        if let Some(c) = self.by_shift.get_mut(e.shift as usize) {
            *c += 1;
        }
    }

    /// Remove every entry `m` matches; returns how many.
    pub fn invalidate(&mut self, m: Match) -> usize {
        let mut n = 0;
        for (keys, entries) in self.keys.iter_mut().zip(self.entries.iter_mut()) {
            for (w, e) in entries.iter().enumerate() {
                if keys.tag[w] != 0 && m.hits(e) {
                    if let Some(c) = self.by_shift.get_mut(e.shift as usize) {
                        *c = c.saturating_sub(1);
                    }
                    keys.tag[w] = 0;
                    n += 1;
                }
            }
        }
        self.live -= n;
        n
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cb: u16, asid: u16, va: u64, shift: u32) -> Entry {
        Entry {
            tag: Tag { cb, vmid: 0, asid },
            va_base: va,
            pa_base: va + 0x1000_0000,
            shift,
            readable: true,
            writable: true,
            unpriv: true,
            s2_readable: true,
            s2_writable: true,
            level: 3,
            s2_level: 3,
            ipa_base: va,
            epoch: 0,
        }
    }

    #[test]
    fn lookup_blocks_and_pages_and_invalidate() {
        let mut t = Tlb::new(4, 1);
        t.insert(entry(0, 1, 0x20_0000, 21));
        t.insert(entry(0, 1, 0x1000, 12));
        let tag = Tag {
            cb: 0,
            vmid: 0,
            asid: 1,
        };
        assert_eq!(
            t.lookup(tag, 0x2f_fff8, &[12, 21, 30]).map(|e| e.pa_base),
            Some(0x1020_0000)
        );
        assert!(t.lookup(tag, 0x2000, &[12, 21, 30]).is_none());
        assert!(t
            .lookup(Tag { asid: 2, ..tag }, 0x1000, &[12, 21, 30])
            .is_none());
        assert_eq!(
            t.invalidate(Match::Va {
                vmid: 0,
                asid: 1,
                va: 0x21_0000
            }),
            1
        );
        assert!(t.lookup(tag, 0x20_0000, &[12, 21, 30]).is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn capacity_is_bounded_and_replacement_is_deterministic() {
        let run = || {
            let mut t = Tlb::new(8, 42);
            for i in 0..100u64 {
                t.insert(entry(0, 0, i << 12, 12));
            }
            let tag = Tag {
                cb: 0,
                vmid: 0,
                asid: 0,
            };
            (0..100u64)
                .filter(|i| t.lookup(tag, i << 12, &[12]).is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a.len(), 8);
        assert_eq!(a, run());
    }
}
