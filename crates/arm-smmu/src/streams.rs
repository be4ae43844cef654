//! Stream mapping (SMR/S2CR) shadow state and Linux's allocation rules (`find_sme`,
//! `master_alloc_smes`, `free_sme`). Pure bookkeeping: the caller writes the entries this module
//! says changed, S2CR first then SMR.

use iommu::{DriverError, Resource};
use smmu_arch::regs::{field, make, s2cr, smr};
use thiserror::Error;

/// S2CR.TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S2crType {
    /// Translate through context bank `cbndx`.
    Trans,
    /// Pass untranslated.
    Bypass,
    /// Abort the transaction.
    Fault,
}

impl S2crType {
    fn code(self) -> u32 {
        match self {
            S2crType::Trans => s2cr::TYPE_TRANS,
            S2crType::Bypass => s2cr::TYPE_BYPASS,
            S2crType::Fault => s2cr::TYPE_FAULT,
        }
    }
}

/// Shadow of one S2CR plus Linux's bookkeeping (group, refcount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S2cr {
    /// Group key shared by the masters using this entry.
    pub group: Option<u64>,
    /// Masters referencing the entry.
    pub count: u32,
    /// S2CR.TYPE.
    pub ty: S2crType,
    /// S2CR.PRIVCFG.
    pub privcfg: u32,
    /// S2CR.CBNDX.
    pub cbndx: u8,
}

/// Shadow of one SMR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Smr {
    /// SMR.ID.
    pub id: u16,
    /// SMR.MASK.
    pub mask: u16,
    /// SMR.VALID (S2CR.EXIDVALID with EXIDS).
    pub valid: bool,
}

/// Why no entry could be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SmeError {
    /// The (id, mask) partly overlaps a live entry (-EINVAL).
    #[error("stream ID 0x{id:x} mask 0x{mask:x} partly overlaps SMR {idx}")]
    Overlap {
        /// Requested stream ID.
        id: u16,
        /// Requested mask.
        mask: u16,
        /// The live entry it overlaps.
        idx: usize,
    },
    /// Every entry is in use (-ENOSPC).
    #[error("no free stream map entry")]
    NoSpace,
    /// Stream indexing with an ID beyond the S2CR array.
    #[error("stream ID 0x{id:x} beyond the stream-index table of {entries} entries")]
    OutOfRange {
        /// Requested stream ID.
        id: u16,
        /// S2CRs the stream-index table has.
        entries: usize,
    },
    /// The master already holds stream-map entries (-EEXIST).
    #[error("master already has stream map entries")]
    AlreadyAllocated,
}

/// What the IOMMU core sees of a stream-map refusal: the same facts, with Linux's errno.
impl From<SmeError> for DriverError {
    fn from(e: SmeError) -> DriverError {
        match e {
            SmeError::Overlap { id, mask, idx } => DriverError::StreamMatchOverlap {
                sid: id,
                mask,
                sme: idx,
            },
            SmeError::NoSpace => DriverError::Exhausted(Resource::StreamMapEntries),
            SmeError::OutOfRange { id, entries } => DriverError::StreamBeyondTable {
                sid: u32::from(id),
                entries: entries as u64,
            },
            SmeError::AlreadyAllocated => DriverError::AlreadyProbed,
        }
    }
}

/// All stream-map entries.
#[derive(Debug, Clone)]
pub struct StreamMap {
    /// `None` under stream indexing.
    pub smrs: Option<Vec<Smr>>,
    /// One shadow S2CR per stream-map entry.
    pub s2crs: Vec<S2cr>,
    /// Reset/free value of an S2CR.
    pub init: S2cr,
    /// EXIDS in use: SMR.VALID is replaced by S2CR.EXIDVALID.
    pub exids: bool,
    /// Implemented stream-ID bits (refined by the SMR width test).
    pub streamid_mask: u32,
    /// Implemented SMR mask bits.
    pub smr_mask_mask: u32,
}

impl StreamMap {
    /// `n` entries, all at the init value (FAULT if `disable_bypass`, else BYPASS).
    pub fn new(n: usize, stream_match: bool, exids: bool, disable_bypass: bool) -> Self {
        let init = S2cr {
            group: None,
            count: 0,
            ty: if disable_bypass {
                S2crType::Fault
            } else {
                S2crType::Bypass
            },
            privcfg: 0,
            cbndx: 0,
        };
        StreamMap {
            smrs: stream_match.then(|| vec![Smr::default(); n]),
            s2crs: vec![init; n],
            init,
            exids,
            streamid_mask: 0,
            smr_mask_mask: 0,
        }
    }

    /// Number of stream-map entries.
    pub fn len(&self) -> usize {
        self.s2crs.len()
    }

    /// Whether there are no entries (never after a successful probe).
    pub fn is_empty(&self) -> bool {
        self.s2crs.is_empty()
    }

    /// Linux `find_sme`: indexing → the ID itself; matching → a covering valid entry, else the
    /// first invalid one; a partial overlap with a valid entry is refused.
    pub fn find_sme(&self, id: u16, mask: u16) -> Result<usize, SmeError> {
        let Some(smrs) = &self.smrs else {
            let idx = usize::from(id);
            return if idx < self.s2crs.len() {
                Ok(idx)
            } else {
                Err(SmeError::OutOfRange {
                    id,
                    entries: self.s2crs.len(),
                })
            };
        };
        let mut free = None;
        for (i, s) in smrs.iter().enumerate() {
            if !s.valid {
                if free.is_none() {
                    free = Some(i);
                }
                continue;
            }
            if mask & s.mask == mask && (id ^ s.id) & !s.mask == 0 {
                return Ok(i);
            }
            if (id ^ s.id) & !(s.mask | mask) == 0 {
                return Err(SmeError::Overlap { id, mask, idx: i });
            }
        }
        free.ok_or(SmeError::NoSpace)
    }

    /// Linux `master_alloc_smes` bookkeeping for fwspec `ids` (SID in 15:0, mask in 31:16).
    /// All or nothing: on error every entry taken so far is given back. Returns the entry index
    /// for each ID; the caller then writes each one.
    pub fn alloc(&mut self, ids: &[u32]) -> Result<Vec<usize>, SmeError> {
        let mut taken: Vec<usize> = Vec::with_capacity(ids.len());
        for &fwid in ids {
            // A firmware ID packs the stream ID and mask as an SMR does.
            let sid = field(fwid, smr::ID_SHIFT, smr::ID_WIDTH) as u16;
            let mask = field(fwid, smr::MASK_SHIFT, smr::MASK_WIDTH) as u16;
            let idx = match self.find_sme(sid, mask) {
                Ok(i) => i,
                Err(e) => {
                    for &i in taken.iter().rev() {
                        self.free(i);
                    }
                    return Err(e);
                }
            };
            if let Some(smrs) = &mut self.smrs {
                if self.s2crs[idx].count == 0 {
                    smrs[idx] = Smr {
                        id: sid,
                        mask,
                        valid: true,
                    };
                }
            }
            self.s2crs[idx].count += 1;
            taken.push(idx);
        }
        Ok(taken)
    }

    /// Linux `free_sme`: drop one reference; at zero the entry returns to the init value and its
    /// SMR becomes invalid. Returns whether the entry was freed (and must be written).
    pub fn free(&mut self, idx: usize) -> bool {
        let Some(e) = self.s2crs.get_mut(idx) else {
            return false;
        };
        e.count = e.count.saturating_sub(1);
        if e.count > 0 {
            return false;
        }
        *e = self.init;
        if let Some(smrs) = &mut self.smrs {
            if let Some(s) = smrs.get_mut(idx) {
                s.valid = false;
            }
        }
        true
    }

    /// The SMR register value of entry `idx`.
    pub fn smr_word(&self, idx: usize) -> u32 {
        let s = self
            .smrs
            .as_ref()
            .and_then(|v| v.get(idx))
            .copied()
            .unwrap_or_default();
        let mut reg = make(u32::from(s.id), smr::ID_SHIFT, smr::ID_WIDTH)
            | make(u32::from(s.mask), smr::MASK_SHIFT, smr::MASK_WIDTH);
        if !self.exids && s.valid {
            reg |= smr::VALID;
        }
        reg
    }

    /// The S2CR register value of entry `idx`.
    pub fn s2cr_word(&self, idx: usize) -> u32 {
        let e = self.s2crs.get(idx).copied().unwrap_or(self.init);
        let mut reg = make(e.ty.code(), s2cr::TYPE_SHIFT, s2cr::TYPE_WIDTH)
            | make(u32::from(e.cbndx), s2cr::CBNDX_SHIFT, s2cr::CBNDX_WIDTH)
            | make(e.privcfg, s2cr::PRIVCFG_SHIFT, s2cr::PRIVCFG_WIDTH);
        let valid = self
            .smrs
            .as_ref()
            .and_then(|v| v.get(idx))
            .is_some_and(|s| s.valid);
        if self.exids && valid {
            reg |= s2cr::EXIDVALID;
        }
        reg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(n: usize) -> StreamMap {
        StreamMap::new(n, true, false, true)
    }

    #[test]
    fn covering_entry_is_reused_and_refcounted() {
        let mut m = map(4);
        assert_eq!(m.alloc(&[0x7c00_0029]).unwrap(), vec![0]);
        // Exactly the same pattern, and a narrower one inside it, reuse entry 0.
        assert_eq!(m.alloc(&[0x7c00_0029]).unwrap(), vec![0]);
        assert_eq!(m.alloc(&[0x0400_0429]).unwrap(), vec![0]);
        assert_eq!(m.s2crs[0].count, 3);
        assert_eq!(m.smr_word(0), 0xfc00_0029);
        assert!(!m.free(0));
        assert!(!m.free(0));
        assert!(m.free(0));
        assert_eq!(m.smr_word(0), 0x7c00_0029, "invalid but ID/MASK kept");
        assert_eq!(m.s2cr_word(0), 0x0002_0000, "back to FAULT");
    }

    #[test]
    fn partial_overlap_refused_and_rolled_back() {
        let mut m = map(4);
        m.alloc(&[0x0003_0010]).unwrap(); // matches 0x10..=0x13
                                          // 0x12 with mask 0x4 matches 0x12 and 0x16: overlaps but is not covered.
        let before = m.clone().s2crs;
        assert_eq!(
            m.alloc(&[0x0000_0020, 0x0004_0012]),
            Err(SmeError::Overlap {
                id: 0x12,
                mask: 4,
                idx: 0
            })
        );
        assert_eq!(m.s2crs, before, "entry taken for 0x20 was given back");
        assert!(!m.smrs.as_ref().unwrap()[1].valid);
        // Disjoint pattern fine.
        assert_eq!(m.alloc(&[0x0000_0014]).unwrap(), vec![1]);
    }

    #[test]
    fn covering_entry_after_free_slot_wins() {
        let mut m = map(3);
        m.alloc(&[0x5]).unwrap();
        m.alloc(&[0x6]).unwrap();
        m.free(0);
        assert_eq!(m.find_sme(0x6, 0), Ok(1));
        assert_eq!(m.find_sme(0x7, 0), Ok(0));
    }

    #[test]
    fn no_space_and_repeated_ids() {
        let mut m = map(2);
        m.alloc(&[1, 2]).unwrap();
        assert_eq!(m.alloc(&[3]), Err(SmeError::NoSpace));
        // Linux does not deduplicate fwspec IDs: the covering entry is simply taken twice.
        assert_eq!(m.alloc(&[1, 1]).unwrap(), vec![0, 0]);
        assert_eq!(m.s2crs[0].count, 3);
    }

    #[test]
    fn stream_indexing_uses_the_id() {
        let mut m = StreamMap::new(64, false, false, false);
        assert_eq!(m.alloc(&[0x2a]).unwrap(), vec![0x2a]);
        assert_eq!(
            m.find_sme(64, 0),
            Err(SmeError::OutOfRange {
                id: 64,
                entries: 64
            })
        );
        assert_eq!(m.s2cr_word(0x2a), 0x0001_0000, "BYPASS init value");
    }

    #[test]
    fn exids_moves_valid_to_s2cr() {
        let mut m = StreamMap::new(2, true, true, true);
        m.alloc(&[0xffff_1234]).unwrap();
        assert_eq!(m.smr_word(0), 0xffff_1234);
        assert_eq!(m.s2cr_word(0), 0x0002_0400);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// After any sequence of allocations, no two valid SMRs can match the same stream ID, and
        /// every allocated ID is matched by the entry it was given.
        #[test]
        fn valid_smrs_never_conflict(reqs in proptest::collection::vec((0u16..64, 0u16..16), 1..20)) {
            let mut m = map(8);
            for (id, mask) in reqs {
                let fwid = u32::from(id) | (u32::from(mask) << 16);
                if let Ok(idx) = m.alloc(&[fwid]) {
                    let s = m.smrs.as_ref().unwrap()[idx[0]];
                    prop_assert!(s.valid);
                    prop_assert_eq!((id ^ s.id) & !s.mask, 0);
                }
            }
            let smrs = m.smrs.clone().unwrap();
            for sid in 0u16..64 {
                let hits = smrs.iter().filter(|s| s.valid && (sid ^ s.id) & !s.mask == 0).count();
                prop_assert!(hits <= 1, "sid {sid:#x} matched {hits} SMRs");
            }
        }
    }
}
