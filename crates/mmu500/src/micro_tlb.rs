//! The micro-TLB: a small direct-mapped cache of final transaction results, in front of the
//! main TLB. One type serves both places an MMU-500 has one: the model's own (in front of the
//! TCU TLB, shared by every stream) and each [`crate::Port`]'s (a TBU's, private to one master).
//!
//! An entry holds the outcome of a recent successful transaction for one stream and one 4 KiB
//! input page, and is valid only while its generation equals the register generation it is
//! checked against. Every register write bumps that generation, so a micro-TLB never outlives a
//! change the main TLB would see (invalidation reaches the TBU micro-TLBs on hardware too).

use crate::Translation;
use smmu_arch::Access;

/// One cached result.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MicroEntry {
    /// The register generation the entry was filled at.
    pub gen: u64,
    pub sid: u32,
    /// 4 KiB input page number.
    pub vpn: u64,
    /// Output address of the page.
    pub pa_page: u64,
    pub cb: u16,
    /// log2 of the leaf size of the mapping.
    pub shift: u8,
    /// Whether a read / a write passes the permission checks.
    pub read: bool,
    pub write: bool,
    /// The context epoch of the translation that filled the entry.
    pub epoch: u64,
}

impl MicroEntry {
    /// The translation this entry gives for `iova` (in its page).
    #[inline]
    pub fn translation(&self, iova: u64) -> Translation {
        Translation::Translated {
            pa: self.pa_page | (iova & 0xfff),
            cb: self.cb,
            leaf_size: 1u64 << self.shift,
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

/// A direct-mapped micro-TLB of `N` entries (a power of two), indexed by a hash of the stream
/// ID and the 4 KiB page (for one stream, `N` consecutive pages take `N` distinct slots).
#[derive(Debug, Clone)]
pub(crate) struct MicroTlb<const N: usize> {
    entries: [MicroEntry; N],
}

impl<const N: usize> Default for MicroTlb<N> {
    fn default() -> Self {
        MicroTlb {
            entries: [MicroEntry::default(); N],
        }
    }
}

impl<const N: usize> MicroTlb<N> {
    const MASK: usize = {
        assert!(N.is_power_of_two());
        N - 1
    };

    #[inline]
    fn slot(key: StreamKey, vpn: u64) -> usize {
        ((vpn ^ key.salt) as usize) & Self::MASK
    }

    /// The entry answering `access` at `iova` for stream `key`, if one filled at generation
    /// `gen` holds it.
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
        (u.gen == gen && u.sid == sid && u.vpn == vpn && allowed).then_some(u)
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
            shift: 12,
            read: true,
            write: false,
            epoch: 7,
        }
    }

    #[test]
    fn hits_only_its_stream_page_generation_and_permission() {
        let mut m = MicroTlb::<16>::default();
        m.fill(entry(0x429, 5, 2));
        let hit = m
            .lookup(StreamKey::new(0x429), 0x5123, Access::Read, 2)
            .map(|u| u.translation(0x5123));
        assert_eq!(
            hit,
            Some(Translation::Translated {
                pa: 0x9000_5123,
                cb: 3,
                leaf_size: 0x1000,
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
        let mut m = MicroTlb::<64>::default();
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
}
