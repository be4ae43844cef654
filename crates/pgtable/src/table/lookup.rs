//! Read-only walks: `iova_to_phys`, `leaf`, `walk`.
use super::{Leaf, PageTable, WalkStep};
use crate::config::MAX_LEVELS;
use crate::pte::{is_leaf, is_table, is_valid, leaf_type, pte_addr, Pte, TYPE_MASK, TYPE_TABLE};
use crate::TlbOps;
use smmu_addr::{Iova, PhysAddr};
use std::sync::atomic::Ordering;

/// `pte & TYPE_MASK` of no descriptor: the table type at the last level, where there is none.
const NO_TYPE: u64 = TYPE_MASK + 1;

/// How [`PageTable::iova_to_phys`] decodes a descriptor at each level, looked up by level
/// instead of computed from it: one compare for "table", one for "leaf of this level", and the
/// leaf's offset bits with one AND (86 → 76 instructions per random lookup, callgrind; BENCHMARKS.md).
pub(super) struct LevelDecode {
    /// The type bits of a table descriptor at each level ([`NO_TYPE`] at the last).
    table_type: [u64; MAX_LEVELS as usize],
    /// The type bits of a leaf at each level (a block above the last level, a page at it).
    leaf_type: [u64; MAX_LEVELS as usize],
    /// The IOVA bits below an entry of each level: what a leaf there passes through.
    pub(super) offset_mask: [u64; MAX_LEVELS as usize],
}

impl LevelDecode {
    /// The decode of a table whose level `l` index starts at IOVA bit `shift[l]`.
    pub(super) fn new(shift: &[u32; MAX_LEVELS as usize]) -> Self {
        LevelDecode {
            table_type: std::array::from_fn(|l| match l as u32 {
                l if l == MAX_LEVELS - 1 => NO_TYPE,
                _ => TYPE_TABLE,
            }),
            leaf_type: std::array::from_fn(|l| leaf_type(l as u32)),
            offset_mask: std::array::from_fn(|l| (1u64 << shift[l]) - 1),
        }
    }
}

impl<T: TlbOps> PageTable<T> {
    /// The PA `iova` translates to, `None` when unmapped (Linux returns 0 there). Beyond the
    /// IAS: `None` ([`Fidelity::Safe`](crate::Fidelity::Safe)), or the translation of `iova`
    /// with the bits above the IAS ignored ([`Fidelity::Linux`](crate::Fidelity::Linux): Linux
    /// indexes each level with a mask and never looks at them).
    ///
    /// Always inlined: in a loop of lookups the caller's registers then hold the table's fields
    /// across lookups, and a call costs a random lookup about an eighth of its instructions
    /// (94 inlined, 106 as a call, BENCHMARKS.md). With the reader's first-bank test LLVM's own
    /// heuristic stopped inlining it (104 in the bench's row).
    #[inline(always)]
    pub fn iova_to_phys(&self, iova: Iova) -> Option<PhysAddr> {
        let iova = iova.as_u64();
        if iova & self.refused_iova_bits != 0 {
            return None;
        }
        // Reading the walk cache is sound here: `&self` excludes the `&mut self` map/unmap
        // calls, the only ones that change tables, and each of them leaves the cache valid.
        let (mut table, lvl) = self.walk_start(iova, MAX_LEVELS - 1);
        let mut lvl = lvl as usize & 3;
        let mem = self.mem.reader();
        let d = &self.decode;
        loop {
            let idx = (iova >> self.shift[lvl]) & self.mask[lvl];
            // A read-only walk: the plain checked load, without the frame lookup a writer
            // needs (which also records the frame as written).
            let pte = mem.load_word(PhysAddr::new(table + (idx << 3)))?;
            // One look at the type bits decides (an invalid descriptor has neither type):
            // what `is_table` and `is_leaf` test, without testing the valid bit on its own.
            let ty = pte & TYPE_MASK;
            if ty != d.table_type[lvl] {
                return (ty == d.leaf_type[lvl])
                    .then(|| PhysAddr::new(pte_addr(pte) | (iova & d.offset_mask[lvl])));
            }
            table = pte_addr(pte);
            // Not past the last level: no descriptor has its table type there.
            lvl = (lvl + 1) & 3;
        }
    }

    /// The leaf descriptor translating `iova`, if any.
    #[inline]
    pub fn leaf(&self, iova: Iova) -> Option<Leaf> {
        let iova = iova.as_u64();
        let g = &self.cfg.geom;
        if iova >> self.cfg.ias != 0 {
            return None;
        }
        let mut table = self.pgd;
        let mut lvl = g.start_level;
        while lvl < MAX_LEVELS {
            let idx = g.index(iova, lvl);
            let slot = self.slot(table, idx).ok()?;
            let pte = slot.load(Ordering::Acquire);
            if !is_valid(pte) {
                return None;
            }
            if is_leaf(pte, lvl) {
                return Some(Leaf {
                    level: lvl,
                    pte_pa: PhysAddr::new(table + (idx << 3)),
                    pte: Pte::from_bits(pte),
                    size: g.level_page_size(lvl),
                });
            }
            if !is_table(pte, lvl) {
                return None;
            }
            table = pte_addr(pte);
            lvl += 1;
        }
        None
    }

    /// Every descriptor a walk of `iova` reads, from the PGD down to the leaf or the first
    /// invalid entry.
    pub fn walk(&self, iova: Iova) -> Vec<WalkStep> {
        let iova = iova.as_u64();
        let g = &self.cfg.geom;
        let mut steps = Vec::new();
        if iova >> self.cfg.ias != 0 {
            return steps;
        }
        let mut table = self.pgd;
        for lvl in g.start_level..MAX_LEVELS {
            let index = g.index(iova, lvl);
            let Ok(slot) = self.slot(table, index) else {
                break;
            };
            let pte = slot.load(Ordering::Acquire);
            steps.push(WalkStep {
                level: lvl,
                table: PhysAddr::new(table),
                index,
                pte: Pte::from_bits(pte),
            });
            if !is_valid(pte) || !is_table(pte, lvl) {
                break;
            }
            table = pte_addr(pte);
        }
        steps
    }

    /// Read the descriptor `table[idx]` (for the pretty-printer).
    pub(crate) fn read_entry(&self, table: u64, idx: u64) -> u64 {
        self.slot(table, idx)
            .map(|s| s.load(Ordering::Acquire))
            .unwrap_or(0)
    }
}
