//! The model's VMSAv8-64 translation table walker (long descriptors, 4K/16K/64K granules),
//! written from the architecture and independent of `pgtable`, which tests compare it against.
//!
//! One walk resolves one stage. Every descriptor is one single-copy-atomic 64-bit load, so a
//! descriptor being rewritten by the driver is seen whole, old or new. A nested walk passes a
//! closure that translates each stage-1 table address through stage 2.

use physmem::{PhysAddr, PhysMem};

/// Descriptor bits the walk reads.
pub(crate) mod desc {
    pub const VALID: u64 = 1 << 0;
    pub const TABLE: u64 = 1 << 1;
    /// Stage 1: AP[1], unprivileged access allowed; stage 2: S2AP[0], read allowed.
    pub const AP1: u64 = 1 << 6;
    /// Stage 1: AP[2], read-only; stage 2: S2AP[1], write allowed.
    pub const AP2: u64 = 1 << 7;
    pub const AF: u64 = 1 << 10;
    /// APTable[0]: no unprivileged access below.
    pub const APTABLE0: u64 = 1 << 61;
    /// APTable[1]: no write access below.
    pub const APTABLE1: u64 = 1 << 62;
    /// Output address bits [47:12].
    pub const ADDR: u64 = 0x0000_ffff_ffff_f000;
}

/// Where and how one stage's walk starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Walk {
    /// log2 of the granule: 12, 14 or 16.
    pub granule_shift: u32,
    /// Input address bits (64 − T0SZ).
    pub input_bits: u32,
    /// Level of the first lookup.
    pub start_level: u32,
    /// Base of the first table (a PA, or an IPA in a nested stage-1 walk).
    pub ttb: u64,
    /// Output address bits; a table or output address at or above 2^oas is an address-size fault.
    pub oas: u32,
    /// Stage 2 (S2AP permissions) rather than stage 1.
    pub stage2: bool,
    /// Access-flag faults disabled (CD.AFFD / STE.S2AFFD).
    pub affd: bool,
}

/// The leaf a walk ends in, with the permissions it grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalkLeaf {
    /// Output address of the translated input address.
    pub out: u64,
    /// log2 of the block or page size.
    pub size_shift: u32,
    pub level: u32,
    pub read: bool,
    pub write: bool,
}

/// Why a walk stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkFault {
    Translation {
        level: u32,
    },
    AccessFlag {
        level: u32,
    },
    AddrSize {
        level: u32,
    },
    /// A descriptor read hit no memory.
    External {
        level: u32,
    },
    /// Nested: a stage-1 table address did not translate through stage 2.
    Stage2 {
        ipa: u64,
        fault: Stage2Fault,
    },
}

/// The stage-2 part of a nested fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage2Fault {
    Translation,
    AccessFlag,
    AddrSize,
    Permission,
    External,
}

#[inline]
fn low_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

impl Walk {
    fn stride(&self) -> u32 {
        self.granule_shift - 3
    }

    /// Input bits translated by one entry at `level`.
    pub fn level_shift(&self, level: u32) -> u32 {
        self.granule_shift + self.stride() * (3 - level)
    }

    /// Stage 1's start level: the fewest full levels that cover the input bits.
    pub fn s1_start_level(granule_shift: u32, input_bits: u32) -> u32 {
        let stride = granule_shift - 3;
        let levels = input_bits.saturating_sub(granule_shift).div_ceil(stride);
        4u32.saturating_sub(levels.clamp(1, 4))
    }

    /// Stage 2's start level from SL0, or `None` for a reserved encoding.
    pub fn s2_start_level(granule_shift: u32, sl0: u32) -> Option<u32> {
        match (granule_shift, sl0) {
            (12, 0) => Some(2),
            (12, 1) => Some(1),
            (12, 2) => Some(0),
            (14 | 16, 0) => Some(3),
            (14 | 16, 1) => Some(2),
            (14 | 16, 2) => Some(1),
            _ => None,
        }
    }

    /// Index bits of the start table: more than a stride when stage-2 tables are concatenated.
    pub fn start_index_bits(&self) -> u32 {
        self.input_bits
            .saturating_sub(self.level_shift(self.start_level))
    }

    fn block_allowed(&self, level: u32) -> bool {
        match self.granule_shift {
            12 => level == 1 || level == 2,
            _ => level == 2,
        }
    }

    /// Walk `ia`. `table_pa` maps a table address to where it lives (identity except for a
    /// nested stage 1, where it is the stage-2 translation).
    pub fn run(
        &self,
        mem: &PhysMem,
        ia: u64,
        table_pa: &mut dyn FnMut(u64) -> Result<u64, WalkFault>,
    ) -> Result<WalkLeaf, WalkFault> {
        if ia & !low_mask(self.input_bits) != 0 {
            return Err(WalkFault::Translation {
                level: self.start_level,
            });
        }
        let mut level = self.start_level;
        let mut index_bits = self.start_index_bits();
        // The first table is aligned to its own size; TTB bits below that are ignored.
        let mut table = self.ttb & 0x0000_ffff_ffff_ffff & !low_mask(index_bits + 3);
        let (mut no_write, mut no_unpriv) = (false, false);
        loop {
            if table & !low_mask(self.oas) != 0 {
                return Err(WalkFault::AddrSize { level });
            }
            let shift = self.level_shift(level);
            let index = (ia >> shift) & low_mask(index_bits);
            let pa = table_pa(table + index * 8)?;
            let d = mem
                .load_word(PhysAddr::new(pa))
                .ok_or(WalkFault::External { level })?;
            if d & desc::VALID == 0 {
                return Err(WalkFault::Translation { level });
            }
            let is_table = d & desc::TABLE != 0;
            if level < 3 && is_table {
                if !self.stage2 {
                    no_unpriv |= d & desc::APTABLE0 != 0;
                    no_write |= d & desc::APTABLE1 != 0;
                }
                table = d & desc::ADDR & !low_mask(self.granule_shift);
                index_bits = self.stride();
                level += 1;
                continue;
            }
            // A level-3 entry must be a page (bits [1:0] = 0b11); above it, a block where
            // the granule allows one.
            if (level == 3 && !is_table) || (level < 3 && !self.block_allowed(level)) {
                return Err(WalkFault::Translation { level });
            }
            let out_base = d & desc::ADDR & !low_mask(shift);
            if out_base & !low_mask(self.oas) != 0 {
                return Err(WalkFault::AddrSize { level });
            }
            if d & desc::AF == 0 && !self.affd {
                return Err(WalkFault::AccessFlag { level });
            }
            let (read, write) = if self.stage2 {
                (d & desc::AP1 != 0, d & desc::AP2 != 0)
            } else {
                // Device transactions arrive unprivileged (PCIe): AP[1] must allow EL0.
                let unpriv_ok = d & desc::AP1 != 0 && !no_unpriv;
                (unpriv_ok, unpriv_ok && d & desc::AP2 == 0 && !no_write)
            };
            return Ok(WalkLeaf {
                out: out_base | (ia & low_mask(shift)),
                size_shift: shift,
                level,
                read,
                write,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_levels() {
        assert_eq!(Walk::s1_start_level(12, 48), 0);
        assert_eq!(Walk::s1_start_level(12, 39), 1);
        assert_eq!(Walk::s1_start_level(12, 32), 1);
        assert_eq!(Walk::s1_start_level(16, 48), 1);
        assert_eq!(Walk::s1_start_level(16, 42), 2);
        assert_eq!(Walk::s1_start_level(14, 48), 0);
        assert_eq!(Walk::s1_start_level(14, 47), 1);
        assert_eq!(Walk::s2_start_level(12, 1), Some(1));
        assert_eq!(Walk::s2_start_level(16, 3), None);
    }
}
