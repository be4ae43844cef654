//! A VMSAv8-64 translation table walker (long-descriptor format), written from the architecture.
//!
//! One routine, [`walk`], serves stage 1 (AArch64 and AArch32 LPAE), stage 2 and nested stage 1:
//! the stage only changes how the start level and table base are derived (`Geometry`, prepared
//! once into [`Steps`]), how each table address is mapped before it is read (the identity, or
//! the stage-2 translation of an IPA), and how leaf permissions are read (done by the caller
//! from the returned descriptor). Each descriptor is read with one
//! single-copy-atomic 64-bit load, so a concurrent PTE update is seen either whole or not at all.

use physmem::PhysMem;
use smmu_addr::PhysAddr;

/// The descriptor layout comes from the architecture contract, not from `pgtable` (rule 2).
pub(crate) use smmu_arch::desc;

/// Where and how a walk starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// log2 of the granule: 12, 14 or 16.
    pub granule_shift: u32,
    /// Input address bits resolved by the tables.
    pub input_bits: u32,
    /// Level of the first lookup (0..=3).
    pub start_level: u32,
    /// Physical (or, nested, intermediate physical) address of the first table.
    pub table_base: u64,
    /// Output address size in bits: any table or output address at or above it is an address
    /// size fault.
    pub oas: u32,
}

impl Geometry {
    /// Bits resolved per level below the start.
    #[inline]
    pub fn stride(&self) -> u32 {
        self.granule_shift - 3
    }

    /// Address bits translated by one entry at `level`.
    #[inline]
    pub fn level_shift(&self, level: u32) -> u32 {
        self.granule_shift + self.stride() * (3 - level)
    }

    /// Index bits of the start table (more than `stride` when stage-2 tables are concatenated).
    pub fn start_index_bits(&self) -> u32 {
        self.input_bits
            .saturating_sub(self.level_shift(self.start_level))
    }

    /// The start level that resolves `input_bits` with full tables below it (stage 1's rule).
    pub fn stage1_start_level(granule_shift: u32, input_bits: u32) -> u32 {
        // Smallest number of levels whose strides cover the input bits (no division: this runs
        // on every transaction).
        let stride = granule_shift - 3;
        let mut covered = granule_shift + stride;
        let mut levels = 1;
        while covered < input_bits && levels < 4 {
            covered += stride;
            levels += 1;
        }
        4 - levels
    }

    /// Whether a block (rather than only a page) descriptor may appear at `level` for this
    /// granule without 52-bit addressing: 4K at levels 1 and 2, 16K and 64K at level 2.
    pub fn block_allowed(&self, level: u32) -> bool {
        match self.granule_shift {
            12 => level == 1 || level == 2,
            _ => level == 2,
        }
    }
}

/// The leaf a walk ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalkLeaf {
    /// Output address of the start of the block or page.
    pub out_base: u64,
    /// log2 of the block or page size.
    pub shift: u32,
    pub level: u32,
    /// The leaf descriptor as read.
    pub desc: u64,
    /// APTable bits accumulated from the table descriptors above (stage 1 only meaningful).
    pub aptable: u64,
}

/// Why a walk stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalkError {
    /// Invalid or reserved descriptor, or input address out of range.
    Translation { level: u32 },
    /// A table or output address beyond the output address size.
    AddressSize { level: u32 },
    /// A descriptor read hit memory that does not exist.
    External { level: u32, pa: u64 },
    /// Nested: translating a stage-1 table address through stage 2 failed.
    Stage2 { level: u32, ipa: u64 },
}

#[inline]
fn low_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// A [`Geometry`] prepared for repeated single-stage walks: the per-level shifts and index masks
/// and the setup checks are worked out once (when the registers are decoded), so a walk is one
/// shift, mask and load per level.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Steps {
    pub geo: Geometry,
    /// Address bits translated by one entry at each level.
    shift: [u32; 4],
    /// Index mask at each level (the start level's may be wider: concatenated tables).
    index_mask: [u64; 4],
    /// Bits of an input address the tables do not resolve.
    beyond_input: u64,
    /// Bits of a table or output address at or above the output size.
    beyond_output: u64,
    /// Low bits below the granule, cleared from a next-level table address.
    granule_mask: u64,
    /// A fault every walk gives before looking at the input (bad granule or start level).
    bad_setup: Option<WalkError>,
    /// A fault every in-range walk gives before its first read (table base beyond the OAS).
    bad_base: Option<WalkError>,
}

impl Steps {
    pub fn new(geo: Geometry) -> Self {
        let g = geo.granule_shift;
        let bad_setup =
            (!(g == 12 || g == 14 || g == 16) || geo.start_level > 3 || geo.input_bits > 64)
                .then_some(WalkError::Translation {
                    level: geo.start_level.min(3),
                });
        let mut shift = [0u32; 4];
        let mut index_mask = [0u64; 4];
        if bad_setup.is_none() {
            for level in geo.start_level..4 {
                let idx_bits = if level == geo.start_level {
                    geo.start_index_bits()
                } else {
                    geo.stride()
                };
                shift[level as usize] = geo.level_shift(level);
                index_mask[level as usize] = low_mask(idx_bits);
            }
        }
        let beyond_output = !low_mask(geo.oas);
        Steps {
            geo,
            shift,
            index_mask,
            beyond_input: !low_mask(geo.input_bits),
            beyond_output,
            granule_mask: low_mask(g.min(63)),
            bad_setup,
            bad_base: (geo.table_base & beyond_output != 0).then_some(WalkError::AddressSize {
                level: geo.start_level,
            }),
        }
    }
}

/// A single stage's tables: table addresses are read as they are.
#[inline(always)]
pub(crate) fn single_stage(table: u64) -> Result<u64, u64> {
    Ok(table)
}

/// Walk the tables for `input` (already reduced to the region's input bits) with prepared
/// [`Steps`]. `table_xlate` maps each table address before it is read: [`single_stage`] for a
/// single stage, the stage-2 translation of an IPA for nested stage 1 (its `Err` is the IPA
/// that failed). `reads` counts descriptor fetches.
#[inline]
pub(crate) fn walk(
    mem: &PhysMem,
    s: &Steps,
    input: u64,
    mut table_xlate: impl FnMut(u64) -> Result<u64, u64>,
    reads: &mut u64,
) -> Result<WalkLeaf, WalkError> {
    if let Some(e) = s.bad_setup {
        return Err(e);
    }
    if input & s.beyond_input != 0 {
        return Err(WalkError::Translation { level: 0 });
    }
    if let Some(e) = s.bad_base {
        return Err(e);
    }
    let mut level = s.geo.start_level;
    let mut table = s.geo.table_base;
    let mut aptable = 0u64;
    // Counted in a register and added once: `reads` lives in the caller's memory.
    let start = level;
    let r = loop {
        let l = (level & 3) as usize;
        let shift = s.shift[l];
        let table_pa = match table_xlate(table) {
            Ok(pa) => pa,
            Err(ipa) => break Err(WalkError::Stage2 { level, ipa }),
        };
        let pte_pa = table_pa.wrapping_add(((input >> shift) & s.index_mask[l]) << 3);
        // One single-copy-atomic acquire load; unaligned or unbacked is an external abort.
        let Some(pte) = mem.load_word(PhysAddr::new(pte_pa)) else {
            break Err(WalkError::External { level, pa: pte_pa });
        };
        if pte & desc::VALID == 0 {
            break Err(WalkError::Translation { level });
        }
        let out = pte & desc::OUTPUT_ADDR;
        if pte & desc::TABLE != 0 && level < 3 {
            if out & s.beyond_output != 0 {
                break Err(WalkError::AddressSize { level });
            }
            aptable |= pte & (desc::table::APTABLE_NO_UNPRIV | desc::table::APTABLE_RDONLY);
            table = out & !s.granule_mask;
            level += 1;
            continue;
        }
        if (level < 3 && !s.geo.block_allowed(level)) || (level == 3 && pte & desc::TABLE == 0) {
            break Err(WalkError::Translation { level });
        }
        if out & s.beyond_output != 0 {
            break Err(WalkError::AddressSize { level });
        }
        break Ok(WalkLeaf {
            out_base: out & !low_mask(shift),
            shift,
            level,
            desc: pte,
            aptable,
        });
    };
    // Every level from the start to where the walk stopped read one descriptor, except a level
    // whose table address stage 2 refused.
    let done = match r {
        Ok(ref l) => l.level + 1,
        Err(WalkError::Translation { level })
        | Err(WalkError::AddressSize { level })
        | Err(WalkError::External { level, .. }) => level + 1,
        Err(WalkError::Stage2 { level, .. }) => level,
    };
    *reads += u64::from(done - start);
    r
}

/// A straightforward walk, everything derived from the [`Geometry`] at each level: the
/// reference the prepared [`walk`] is checked against.
#[cfg(test)]
pub(crate) fn reference_walk(
    mem: &PhysMem,
    geo: &Geometry,
    input: u64,
    mut table_xlate: Option<&mut dyn FnMut(u64) -> Result<u64, u64>>,
    reads: &mut u64,
) -> Result<WalkLeaf, WalkError> {
    let g = geo.granule_shift;
    if !(g == 12 || g == 14 || g == 16) || geo.start_level > 3 || geo.input_bits > 64 {
        return Err(WalkError::Translation {
            level: geo.start_level.min(3),
        });
    }
    if input & !low_mask(geo.input_bits) != 0 {
        // Input beyond the translated range: a level-0 translation fault.
        return Err(WalkError::Translation { level: 0 });
    }
    let stride = geo.stride();
    let oas_mask = !low_mask(geo.oas);
    let mut level = geo.start_level;
    let mut table = geo.table_base;
    let mut aptable = 0u64;
    if table & oas_mask != 0 {
        return Err(WalkError::AddressSize { level });
    }
    loop {
        let shift = geo.level_shift(level);
        let idx_bits = if level == geo.start_level {
            geo.start_index_bits()
        } else {
            stride
        };
        let idx = (input >> shift) & low_mask(idx_bits);
        let table_pa = match table_xlate.as_mut() {
            Some(f) => f(table).map_err(|ipa| WalkError::Stage2 { level, ipa })?,
            None => table,
        };
        let pte_pa = table_pa.wrapping_add(idx * 8);
        *reads += 1;
        // One bounds check for the frame, then a direct single-copy-atomic load (acquire, as
        // `PhysMem::read_u64`); `pte_pa` is 8-byte aligned (table bases are granule aligned).
        let pte = (pte_pa & 7 == 0)
            .then(|| mem.frame(PhysAddr::new(pte_pa)).ok())
            .flatten()
            .and_then(|f| f.get(((pte_pa & 0xfff) >> 3) as usize))
            .map(|w| w.load(smmu_sync::atomic::Ordering::Acquire))
            .ok_or(WalkError::External { level, pa: pte_pa })?;
        if pte & desc::VALID == 0 {
            return Err(WalkError::Translation { level });
        }
        if pte & desc::TABLE != 0 && level < 3 {
            let next = pte & desc::OUTPUT_ADDR & !low_mask(g);
            if pte & desc::OUTPUT_ADDR & oas_mask != 0 {
                return Err(WalkError::AddressSize { level });
            }
            aptable |= pte & (desc::table::APTABLE_NO_UNPRIV | desc::table::APTABLE_RDONLY);
            table = next;
            level += 1;
            continue;
        }
        if level < 3 && !geo.block_allowed(level) {
            return Err(WalkError::Translation { level });
        }
        if level == 3 && pte & desc::TABLE == 0 {
            // Reserved encoding at level 3.
            return Err(WalkError::Translation { level });
        }
        if pte & desc::OUTPUT_ADDR & oas_mask != 0 {
            return Err(WalkError::AddressSize { level });
        }
        let out_base = pte & desc::OUTPUT_ADDR & !low_mask(shift);
        return Ok(WalkLeaf {
            out_base,
            shift,
            level,
            desc: pte,
            aptable,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use physmem::PhysAddr;
    use physmem::Region;

    #[test]
    fn start_levels_follow_the_architecture() {
        assert_eq!(Geometry::stage1_start_level(12, 48), 0);
        assert_eq!(Geometry::stage1_start_level(12, 39), 1);
        assert_eq!(Geometry::stage1_start_level(12, 32), 1);
        assert_eq!(Geometry::stage1_start_level(12, 30), 2);
        assert_eq!(Geometry::stage1_start_level(16, 48), 1);
        assert_eq!(Geometry::stage1_start_level(16, 42), 2);
        assert_eq!(Geometry::stage1_start_level(14, 48), 0);
        assert_eq!(Geometry::stage1_start_level(14, 47), 1);
    }

    #[test]
    fn hand_built_4k_walk_with_block() {
        let mem = PhysMem::new(&[Region::new(PhysAddr::new(0x8000_0000), 0x10_0000)]).unwrap();
        let l1 = 0x8000_0000u64;
        let l2 = 0x8000_1000u64;
        let l3 = 0x8000_2000u64;
        // 39-bit input: start at level 1.
        let geo = Geometry {
            granule_shift: 12,
            input_bits: 39,
            start_level: 1,
            table_base: l1,
            oas: 48,
        };
        mem.write_u64(PhysAddr::new(l1 + 8), l2 | 3).unwrap(); // VA [1G, 2G)
        mem.write_u64(PhysAddr::new(l2 + 8 * 3), 0x4060_0000 | desc::leaf::AF | 1)
            .unwrap(); // 2M block at 0x4060_0000
        mem.write_u64(PhysAddr::new(l2 + 8 * 4), l3 | 3).unwrap();
        mem.write_u64(PhysAddr::new(l3 + 8 * 5), 0x9abc_d000 | desc::leaf::AF | 3)
            .unwrap();
        let mut reads = 0;
        let leaf = walk(
            &mem,
            &Steps::new(geo),
            0x4000_0000 + 3 * 0x20_0000 + 0x1234,
            single_stage,
            &mut reads,
        )
        .unwrap();
        assert_eq!(
            (leaf.out_base, leaf.shift, leaf.level),
            (0x4060_0000, 21, 2)
        );
        let leaf = walk(
            &mem,
            &Steps::new(geo),
            0x4000_0000 + 4 * 0x20_0000 + 5 * 0x1000 + 7,
            single_stage,
            &mut reads,
        )
        .unwrap();
        assert_eq!(
            (leaf.out_base, leaf.shift, leaf.level),
            (0x9abc_d000, 12, 3)
        );
        assert_eq!(
            walk(&mem, &Steps::new(geo), 0x1000, single_stage, &mut reads),
            Err(WalkError::Translation { level: 1 })
        );
        assert_eq!(
            walk(&mem, &Steps::new(geo), 1 << 39, single_stage, &mut reads),
            Err(WalkError::Translation { level: 0 })
        );
    }
}

#[cfg(test)]
mod steps_props {
    //! The prepared `walk` must agree with the straightforward `reference_walk` on every
    //! geometry, every table content and every input, faults included, with a single stage
    //! and with a stage-2 table translation that refuses some table addresses.
    use super::*;
    use physmem::Region;
    use proptest::prelude::*;

    const BASE: u64 = 0x8000_0000;
    /// 16 pages: every word holds a descriptor, so walks go deep.
    const SIZE: u64 = 0x1_0000;

    fn splitmix(x: &mut u64) -> u64 {
        *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A descriptor pointing back into the memory (sometimes just outside it, or beyond the
    /// output size), mostly valid, with random attribute bits.
    fn descriptor(rng: &mut u64) -> u64 {
        let r = splitmix(rng);
        let page = (r >> 8) % (SIZE / 0x1000 + 1);
        let high = match (r >> 20) & 7 {
            0 => 1u64 << 47,
            1 => 1u64 << 40,
            _ => 0,
        };
        let ty = match (r >> 24) & 7 {
            0 => 0,
            1 => 2,
            2..=4 => 3,
            _ => 1,
        };
        let attrs = splitmix(rng) & 0xfff0_0000_0000_0ffc;
        (BASE + page * 0x1000) | high | ty | attrs | ((r >> 32) & 0xf000)
    }

    fn geometry() -> impl Strategy<Value = Geometry> {
        (
            prop_oneof![Just(12u32), Just(14), Just(16), Just(13)],
            16u32..67,
            0u32..5,
            0u64..(SIZE / 0x1000 + 2),
            prop_oneof![Just(32u32), Just(40), Just(44), Just(48)],
        )
            .prop_map(|(g, input_bits, start_level, page, oas)| Geometry {
                granule_shift: g,
                input_bits,
                start_level,
                table_base: BASE + page * 0x1000,
                oas,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn walk_agrees_with_reference_walk(
            geo in geometry(),
            seed in any::<u64>(),
            inputs in proptest::collection::vec(any::<u64>(), 32),
        ) {
            let mem = PhysMem::new(&[Region::new(PhysAddr::new(BASE), SIZE)]).unwrap();
            let mut rng = seed;
            for w in 0..SIZE / 8 {
                mem.write_u64(PhysAddr::new(BASE + w * 8), descriptor(&mut rng)).unwrap();
            }
            let steps = Steps::new(geo);
            for &raw in &inputs {
                // Mostly in-range inputs, some beyond.
                let input = if raw & 3 != 0 {
                    raw & low_mask(geo.input_bits.min(64))
                } else {
                    raw
                };
                let (mut a, mut b) = (0u64, 0u64);
                let x = reference_walk(&mem, &geo, input, None, &mut a);
                let y = walk(&mem, &steps, input, single_stage, &mut b);
                prop_assert_eq!(x, y);
                prop_assert_eq!(a, b);
                // Nested: stage 2 refuses table addresses in odd pages and moves none.
                let mut refuse = |t: u64| if t & 0x1000 != 0 { Err(t) } else { Ok(t) };
                let (mut a, mut b) = (0u64, 0u64);
                let x = reference_walk(&mem, &geo, input, Some(&mut refuse), &mut a);
                let y = walk(&mem, &steps, input, refuse, &mut b);
                prop_assert_eq!(x, y);
                prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn the_random_tables_reach_every_level() {
        // The property above is only worth something if its walks go deep: count leaves per
        // level over a fixed sample.
        let mem = PhysMem::new(&[Region::new(PhysAddr::new(BASE), SIZE)]).unwrap();
        let mut rng = 7u64;
        for w in 0..SIZE / 8 {
            mem.write_u64(PhysAddr::new(BASE + w * 8), descriptor(&mut rng))
                .unwrap();
        }
        let geo = Geometry {
            granule_shift: 12,
            input_bits: 48,
            start_level: 0,
            table_base: BASE,
            oas: 48,
        };
        let steps = Steps::new(geo);
        let mut leaves = [0u32; 4];
        for _ in 0..4000 {
            let input = splitmix(&mut rng) & low_mask(48);
            let mut r = 0;
            if let Ok(l) = walk(&mem, &steps, input, single_stage, &mut r) {
                leaves[l.level as usize] += 1;
            }
        }
        assert!(
            leaves[1] > 0 && leaves[2] > 0 && leaves[3] > 0,
            "{leaves:?}"
        );
    }
}
