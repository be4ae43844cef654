//! The micro-TLB: a small direct-mapped cache of final transaction results, in front of the
//! main TLB. One type serves both places an MMU-500 has one: the model's own (in front of the
//! TCU TLB, shared by every stream: [`SHARED`]) and each [`crate::Port`]'s (a TBU's, private to
//! one master: [`PRIVATE`]). A shared one hashes the stream ID into the slot and checks it on a
//! hit; a private one holds only its own stream's entries, so it does neither (on the port's hit
//! path, the hash and the check were a measurable part of a 2–3 ns transaction).
//!
//! An entry holds the outcome of a recent successful transaction for one stream and one 4 KiB
//! input page, and is valid only while its generation equals the register generation it is
//! checked against. Every register write bumps that generation, so a micro-TLB never outlives a
//! change the main TLB would see (invalidation reaches the TBU micro-TLBs on hardware too).

use crate::Translation;
use smmu_addr::{PageSize, PhysAddr};
use smmu_arch::Access;

/// One cached result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MicroEntry {
    /// The register generation the entry was filled at.
    pub gen: u64,
    pub sid: u32,
    /// 4 KiB input page number.
    pub vpn: u64,
    /// Output address of the page.
    pub pa_page: u64,
    pub cb: u16,
    /// The leaf size of the mapping.
    pub leaf_size: PageSize,
    /// Whether a read / a write passes the permission checks.
    pub read: bool,
    pub write: bool,
    /// The context epoch of the translation that filled the entry.
    pub epoch: u64,
}

impl Default for MicroEntry {
    /// An empty slot: it allows neither access, so no lookup returns it.
    fn default() -> Self {
        MicroEntry {
            gen: 0,
            sid: 0,
            vpn: 0,
            pa_page: 0,
            cb: 0,
            leaf_size: PageSize::SZ_4K,
            read: false,
            write: false,
            epoch: 0,
        }
    }
}

impl MicroEntry {
    /// The translation this entry gives for `iova` (in its page).
    #[inline]
    pub fn translation(&self, iova: u64) -> Translation {
        Translation::Translated {
            pa: PhysAddr::new(self.pa_page | (iova & 0xfff)),
            cb: self.cb,
            leaf_size: self.leaf_size,
            tlb_hit: true,
            epoch: self.epoch,
        }
    }
}

/// A stream as a micro-TLB indexes it: the ID and its hash, which a [`crate::Port`] computes
/// once for its stream (the multiply is on the critical path of a hit).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamKey {
    sid: u32,
    salt: u64,
}

impl StreamKey {
    #[inline]
    pub fn new(sid: u32) -> StreamKey {
        StreamKey {
            sid,
            salt: u64::from(sid).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        }
    }
}

/// `MicroTlb`'s `SHARED_BY_STREAMS` for the model's micro-TLB, which every stream uses.
pub(crate) const SHARED: bool = true;
/// `MicroTlb`'s `SHARED_BY_STREAMS` for a port's, which only its own stream fills.
pub(crate) const PRIVATE: bool = false;

/// A direct-mapped micro-TLB of `N` entries (a power of two). Shared by several streams
/// (`SHARED_BY_STREAMS`), it is indexed by a hash of the stream ID and the 4 KiB page and checks
/// the stream on a hit; private to one stream, by the page alone. Either way, `N` consecutive
/// pages of one stream take `N` distinct slots.
#[derive(Debug, Clone)]
pub(crate) struct MicroTlb<const N: usize, const SHARED_BY_STREAMS: bool> {
    entries: [MicroEntry; N],
}

impl<const N: usize, const SHARED_BY_STREAMS: bool> Default for MicroTlb<N, SHARED_BY_STREAMS> {
    fn default() -> Self {
        MicroTlb {
            entries: [MicroEntry::default(); N],
        }
    }
}

impl<const N: usize, const SHARED_BY_STREAMS: bool> MicroTlb<N, SHARED_BY_STREAMS> {
    const MASK: usize = {
        assert!(N.is_power_of_two());
        N - 1
    };

    #[inline]
    fn slot(key: StreamKey, vpn: u64) -> usize {
        let hash = if SHARED_BY_STREAMS {
            vpn ^ key.salt
        } else {
            vpn
        };
        (hash as usize) & Self::MASK
    }

    /// The entry answering `access` at `iova` for stream `key`, if one filled at generation
    /// `gen` holds it. A private micro-TLB takes its owner's key, which it need not check.
    #[inline]
    pub fn lookup(
        &self,
        key: StreamKey,
        iova: u64,
        access: Access,
        gen: u64,
    ) -> Option<&MicroEntry> {
        let vpn = iova >> 12;
        let sid = key.sid;
        let u = self.entries.get(Self::slot(key, vpn))?;
        let allowed = match access {
            Access::Read => u.read,
            Access::Write => u.write,
        };
        let own_stream = !SHARED_BY_STREAMS || u.sid == sid;
        (u.gen == gen && own_stream && u.vpn == vpn && allowed).then_some(u)
    }

    /// Cache `e` (replacing whatever held its slot).
    #[inline]
    pub fn fill(&mut self, e: MicroEntry) {
        if let Some(u) = self
            .entries
            .get_mut(Self::slot(StreamKey::new(e.sid), e.vpn))
        {
            *u = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sid: u32, vpn: u64, gen: u64) -> MicroEntry {
        MicroEntry {
            gen,
            sid,
            vpn,
            pa_page: 0x9000_0000 + (vpn << 12),
            cb: 3,
            leaf_size: PageSize::SZ_4K,
            read: true,
            write: false,
            epoch: 7,
        }
    }

    #[test]
    fn hits_only_its_stream_page_generation_and_permission() {
        let mut m = MicroTlb::<16, SHARED>::default();
        m.fill(entry(0x429, 5, 2));
        let hit = m
            .lookup(StreamKey::new(0x429), 0x5123, Access::Read, 2)
            .map(|u| u.translation(0x5123));
        assert_eq!(
            hit,
            Some(Translation::Translated {
                pa: PhysAddr::new(0x9000_5123),
                cb: 3,
                leaf_size: PageSize::SZ_4K,
                tlb_hit: true,
                epoch: 7
            })
        );
        assert!(m
            .lookup(StreamKey::new(0x429), 0x5123, Access::Write, 2)
            .is_none());
        assert!(m
            .lookup(StreamKey::new(0x429), 0x5123, Access::Read, 3)
            .is_none());
        assert!(m
            .lookup(StreamKey::new(0x42a), 0x5123, Access::Read, 2)
            .is_none());
        assert!(m
            .lookup(StreamKey::new(0x429), 0x6123, Access::Read, 2)
            .is_none());
    }

    #[test]
    fn consecutive_pages_of_one_stream_fill_distinct_slots() {
        fn check<const SHARED_BY_STREAMS: bool>() {
            let mut m = MicroTlb::<64, SHARED_BY_STREAMS>::default();
            for vpn in 0x100..0x140 {
                m.fill(entry(0x429, vpn, 1));
            }
            for vpn in 0x100..0x140 {
                assert!(
                    m.lookup(StreamKey::new(0x429), vpn << 12, Access::Read, 1)
                        .is_some(),
                    "{vpn:#x}"
                );
            }
        }
        check::<SHARED>();
        check::<PRIVATE>();
    }

    #[test]
    fn a_private_micro_tlb_hits_on_page_generation_and_permission_alone() {
        let mut m = MicroTlb::<16, PRIVATE>::default();
        m.fill(entry(0x429, 5, 2));
        let key = StreamKey::new(0x429);
        assert!(m.lookup(key, 0x5123, Access::Read, 2).is_some());
        assert!(m.lookup(key, 0x5123, Access::Write, 2).is_none());
        assert!(m.lookup(key, 0x5123, Access::Read, 3).is_none());
        assert!(m.lookup(key, 0x6123, Access::Read, 2).is_none());
        // Slot by page alone: page 5 + 16 replaces page 5.
        m.fill(entry(0x429, 5 + 16, 2));
        assert!(m.lookup(key, 0x5123, Access::Read, 2).is_none());
        assert!(m.lookup(key, 0x15123, Access::Read, 2).is_some());
    }
}
