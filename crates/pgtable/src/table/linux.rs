//! `map_pages` under [`Fidelity::Linux`](crate::Fidelity::Linux): Linux's checks and Linux's
//! order of effects, where they differ from smmu-lab's stricter ones.
//!
//! The shape is the IOMMU core's map loop around io-pgtable-arm's map op: each op call fills
//! at most one table; it checks only its own first IOVA against the IAS and its first PA
//! against the OAS; at the target level it writes up to a full table's worth of entries
//! counted from the index (at the start level this may run past a small PGD, into the rest of
//! the page the PGD was allocated in); and it walks that run in order, freeing each table it
//! meets until it meets a leaf. On any error the core unmaps what the earlier calls mapped
//! (their new tables stay, as Linux keeps empty tables).

use super::PageTable;
use crate::error::PgTableError;
use crate::pte::{is_leaf, is_table, is_valid, leaf_type, pte_addr, ADDR_MASK};
use crate::{Gather, Prot, TlbOps};
use std::sync::atomic::Ordering;

impl<T: TlbOps> PageTable<T> {
    /// [`PageTable::map_pages`] with Linux's checks (see the module documentation).
    pub(super) fn map_linux(
        &mut self,
        iova: u64,
        paddr: u64,
        pgsize: u64,
        pgcount: u64,
        prot: Prot,
    ) -> Result<u64, PgTableError> {
        let cfg = &self.cfg;
        if !pgsize.is_power_of_two() || cfg.pgsize_bitmap & pgsize != pgsize {
            return Err(PgTableError::BadPageSize {
                pgsize,
                bitmap: cfg.pgsize_bitmap,
            });
        }
        // The core's alignment check comes before any range check.
        if (iova | paddr) & (pgsize - 1) != 0 {
            return Err(PgTableError::Misaligned {
                iova,
                paddr,
                pgsize,
            });
        }
        let Some(size) = pgsize
            .checked_mul(pgcount)
            .filter(|&s| iova.checked_add(s).is_some() && paddr.checked_add(s).is_some())
        else {
            return Err(PgTableError::IovaRange {
                iova,
                size: u64::MAX,
                ias: cfg.ias,
            });
        };
        if prot.0 & (Prot::READ.0 | Prot::WRITE.0) == 0 {
            return Err(PgTableError::NoAccess);
        }
        let attrs = self.prot_pte[prot.0 as usize & 63];
        let (ias, oas) = (cfg.ias, cfg.oas);
        let mut done = 0u64;
        while done < pgcount {
            let off = done * pgsize;
            let (chunk_iova, chunk_pa) = (iova + off, paddr + off);
            let step = if chunk_iova >> ias != 0 {
                Err(PgTableError::IovaRange {
                    iova: chunk_iova,
                    size: size - off,
                    ias,
                })
            } else if chunk_pa >> oas != 0 {
                Err(PgTableError::PaddrRange {
                    paddr: chunk_pa,
                    size: size - off,
                    oas,
                })
            } else {
                self.map_table_linux(chunk_iova, chunk_pa, pgsize, pgcount - done, attrs)
            };
            match step {
                Ok(n) => done += n,
                Err(e) => {
                    if done > 0 {
                        let mut lazy = Gather {
                            queued: true,
                            ..Gather::new()
                        };
                        self.unmap_pages(iova, pgsize, done, &mut lazy);
                        self.tlb.tlb_flush_all();
                    }
                    return Err(e);
                }
            }
        }
        Ok(size)
    }

    /// One io-pgtable map call: walk (creating tables) to `pgsize`'s level, then write up to a
    /// full table's entries from `iova`'s index. Returns the pages mapped.
    fn map_table_linux(
        &self,
        iova: u64,
        paddr: u64,
        pgsize: u64,
        count: u64,
        attrs: u64,
    ) -> Result<u64, PgTableError> {
        let g = self.cfg.geom;
        let target = match self.level_of(pgsize) {
            Some(l) if l >= g.start_level => l,
            _ => {
                return Err(PgTableError::BadPageSize {
                    pgsize,
                    bitmap: self.cfg.pgsize_bitmap,
                })
            }
        };
        let (mut table, mut lvl) = self.walk_start(iova, target);
        while lvl < target {
            let slot = self.slot(table, self.idx(iova, lvl))?;
            let mut pte = slot.load(Ordering::Acquire);
            if !is_valid(pte) {
                pte = self.install_table(slot, pte)?;
            }
            if !is_table(pte, lvl) {
                return Err(PgTableError::Exists { iova });
            }
            table = pte_addr(pte);
            lvl += 1;
            self.remember_walk(iova, lvl, table);
        }
        let idx = self.idx(iova, target);
        // Linux bounds the run by a full table's entries whatever the level. Past a
        // concatenated PGD's first table that bound is negative in Linux (d71fa842d33c's bug);
        // there the PGD's own bound is used.
        let n = count.min(self.run_room(target, idx));
        let size = g.block_size(target);
        for i in 0..n {
            let slot = self.slot(table, idx + i)?;
            let pte = slot.load(Ordering::Acquire);
            if !is_valid(pte) {
                continue;
            }
            if is_leaf(pte, target) {
                return Err(PgTableError::Exists {
                    iova: iova + i * size,
                });
            }
            // A table in the way: unlinked, its walks flushed and its pages freed now, before
            // the entries after it are looked at.
            self.forget_walks();
            slot.store(0, Ordering::Release);
            self.tlb
                .tlb_flush_walk(iova + i * size, size, self.cfg.granule());
            self.free_subtree(pte_addr(pte), target + 1)?;
        }
        let desc = attrs | leaf_type(target);
        for i in 0..n {
            self.slot(table, idx + i)?
                .store(desc | ((paddr + i * size) & ADDR_MASK), Ordering::Release);
        }
        Ok(n)
    }
}
