//! Step 1, stream match: the incoming stream ID against the SMRs (or, without stream matching,
//! the ID as the S2CR index), with the resolved IDs cached until an SMR, S2CR or sCR0 write.

use crate::config::Mmu500Config;
use crate::state::Registers;
use crate::tlb::FxBuild;
use smmu_arch::regs::{self, smr};
use std::collections::HashMap;

/// How a stream ID resolved against the SMRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamMatch {
    Group(u32),
    Unmatched,
    /// More than one SMR matched; the lowest index is kept for SMCFCFG = 0.
    Conflict(u32),
}

/// Resolved stream IDs. Never iterated, so the hasher's order is never observable.
#[derive(Default, Clone)]
pub(crate) struct StreamCache {
    map: HashMap<u32, StreamMatch, FxBuild>,
    /// The last stream resolved (a one-entry memo in front of `map`: a device streams many
    /// transactions in a row).
    last: Option<(u32, StreamMatch)>,
}

/// Resolved IDs kept before the cache starts over.
const STREAM_CACHE_LIMIT: usize = 4096;

impl StreamCache {
    /// Forget every resolved stream (SMR, S2CR or sCR0 changed).
    pub fn clear(&mut self) {
        self.map.clear();
        self.last = None;
    }

    #[inline]
    fn get(&mut self, sid: u32) -> Option<StreamMatch> {
        if let Some((last, m)) = self.last {
            if last == sid {
                return Some(m);
            }
        }
        let m = *self.map.get(&sid)?;
        self.last = Some((sid, m));
        Some(m)
    }

    fn insert(&mut self, sid: u32, m: StreamMatch) {
        if self.map.len() >= STREAM_CACHE_LIMIT {
            self.clear();
        }
        self.map.insert(sid, m);
        self.last = Some((sid, m));
    }
}

impl StreamCache {
    /// Resolve `sid` (the raw incoming ID) to a stream-to-context register index.
    ///
    /// Inline: a device's transactions come in runs from one stream, which the one-entry memo
    /// answers in a compare; everything else is out of line in `resolve_uncached` (as one
    /// function the two cost every transaction a call with saved registers).
    #[inline]
    pub(crate) fn resolve(
        &mut self,
        regs: &Registers,
        cfg: &Mmu500Config,
        sid: u32,
    ) -> StreamMatch {
        if cfg.stream_match {
            if let Some((last, m)) = self.last {
                if last == sid & cfg.sid_mask() {
                    return m;
                }
            }
        }
        self.resolve_uncached(regs, cfg, sid)
    }

    #[inline(never)]
    fn resolve_uncached(&mut self, regs: &Registers, cfg: &Mmu500Config, sid: u32) -> StreamMatch {
        let sid = sid & cfg.sid_mask();
        if !cfg.stream_match {
            return if (sid as usize) < regs.s2cr.len() {
                StreamMatch::Group(sid)
            } else {
                StreamMatch::Unmatched
            };
        }
        if let Some(m) = self.get(sid) {
            return m;
        }
        let m = match_smrs(regs, cfg, sid);
        self.insert(sid, m);
        m
    }
}

/// Compare `sid` with every valid SMR.
fn match_smrs(regs: &Registers, cfg: &Mmu500Config, sid: u32) -> StreamMatch {
    let id_mask = cfg.sid_mask();
    let mut found: Option<u32> = None;
    for (i, &s) in regs.smr.iter().enumerate() {
        if s & smr::VALID == 0 {
            continue;
        }
        let id = regs::field(s, smr::ID_SHIFT, smr::ID_WIDTH);
        // Without EXIDS the mask field's top bit is SMR.VALID, not a mask bit.
        let mask =
            regs::field(s, smr::MASK_SHIFT, smr::MASK_WIDTH) & !(smr::VALID >> smr::MASK_SHIFT);
        if (sid ^ id) & !mask & id_mask == 0 {
            if let Some(first) = found {
                return StreamMatch::Conflict(first);
            }
            found = Some(i as u32);
        }
    }
    found.map_or(StreamMatch::Unmatched, StreamMatch::Group)
}
