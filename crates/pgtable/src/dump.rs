//! A human-readable listing of the tables, for demos and debugging.

use crate::config::{Granule, MAX_LEVELS};
use crate::pte::{describe, is_leaf, is_table, is_valid, pte_addr, Pte, ADDR_MASK};
use crate::{PageTable, TlbOps};
use std::fmt::Write;

impl<T: TlbOps> PageTable<T> {
    /// Every live descriptor, depth first with one indent per level: each table's PA, then its
    /// valid entries as `[index] descriptor iova-range: meaning`. Runs of consecutive leaves
    /// with the same attributes and contiguous output addresses are folded into one line.
    pub fn dump(&self) -> String {
        let cfg = self.cfg();
        let g = cfg.geom;
        let gran = match g.granule {
            Granule::G4K => "4K",
            Granule::G16K => "16K",
            Granule::G64K => "64K",
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:?} {gran} granule, ias {} oas {}: {} levels from level {}, pgd {:#x} ({} entries)",
            cfg.stage,
            cfg.ias,
            cfg.oas,
            g.levels(),
            g.start_level,
            self.ttbr(),
            g.pgd_entries()
        );
        self.dump_table(&mut out, self.ttbr().as_u64(), g.start_level, 0);
        out
    }

    fn dump_table(&self, out: &mut String, table: u64, lvl: u32, base: u64) {
        let g = self.cfg().geom;
        let stage = self.cfg().stage;
        let indent = "  ".repeat((lvl - g.start_level) as usize);
        let n = g.entries(lvl);
        let size = g.block_size(lvl);
        let _ = writeln!(out, "{indent}L{lvl} table @ {table:#x}");
        let mut i = 0;
        while i < n {
            let pte = self.read_entry(table, i);
            if !is_valid(pte) {
                i += 1;
                continue;
            }
            let va = base + i * size;
            if is_leaf(pte, lvl) {
                // Fold a run of leaves that continue this one.
                let mut j = i + 1;
                while j < n {
                    let next = self.read_entry(table, j);
                    if !is_valid(next)
                        || next & !ADDR_MASK != pte & !ADDR_MASK
                        || pte_addr(next) != pte_addr(pte) + (j - i) * size
                    {
                        break;
                    }
                    j += 1;
                }
                let idx = if j - i > 1 {
                    format!("{i}..={}", j - 1)
                } else {
                    format!("{i}")
                };
                let times = if j - i > 1 {
                    format!(" (x{})", j - i)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "{indent}  [{idx}] {pte:#018x}{times} iova {va:#x}..{:#x}: {}",
                    va + (j - i) * size,
                    describe(stage, Pte::from_bits(pte), lvl)
                );
                i = j;
                continue;
            }
            let _ = writeln!(
                out,
                "{indent}  [{i}] {pte:#018x} iova {va:#x}..{:#x}: {}",
                va + size,
                describe(stage, Pte::from_bits(pte), lvl)
            );
            if is_table(pte, lvl) && lvl + 1 < MAX_LEVELS {
                self.dump_table(out, pte_addr(pte), lvl + 1, va);
            }
            i += 1;
        }
    }
}
