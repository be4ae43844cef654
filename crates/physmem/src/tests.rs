//! PhysMem's unit tests: sparse reads, backing reuse, region edges, word and byte access, errors.

use super::*;
use crate::bank::SPARE_BACKINGS;
use proptest::prelude::*;

fn mem() -> PhysMem {
    PhysMem::new(&[
        Region::new(PhysAddr::new(0x8000_0000), 0x10_0000),
        Region::new(PhysAddr::new(0x1_0000_0000), 0x4000),
    ])
    .unwrap()
}

proptest! {
    /// `load_word` is `read_u64` with the error folded into `None`, at every address
    /// (both regions, their edges, the gap, unaligned, wrapping).
    #[test]
    fn load_word_agrees_with_read_u64(
        pa in prop_oneof![
            0x7fff_fff0u64..0x8010_0010,
            0xffff_fff0u64..0x1_0000_4010,
            any::<u64>(),
        ],
        v in any::<u64>(),
    ) {
        let m = mem();
        let _ = m.write_u64(PhysAddr::new(pa & !7), v);
        prop_assert_eq!(m.load_word(PhysAddr::new(pa)), m.read_u64(PhysAddr::new(pa)).ok());
    }
}

/// Regions in any order of 0 to 3 (sizes 1..4 frames each, gaps of 0..2 frames), starting at
/// `first`: the reader holds the lowest apart from the rest, so which one is lowest and how
/// many follow matters.
fn regions() -> impl Strategy<Value = Vec<Region>> {
    (
        prop_oneof![Just(0u64), Just(0x8000_0000), Just(u64::MAX - 0xf_ffff)],
        proptest::collection::vec((1u64..4, 0u64..2), 0..4),
        any::<proptest::sample::Index>(),
    )
        .prop_map(|(first, shape, rotate)| {
            let mut at = first & !(FRAME_SIZE - 1);
            let mut regions: Vec<Region> = shape
                .iter()
                .map_while(|&(frames, gap)| {
                    let r = Region::new(PhysAddr::new(at), frames * FRAME_SIZE);
                    at = r.end().checked_add(gap * FRAME_SIZE)?;
                    (r.base.checked_add(r.size).is_some()).then_some(r)
                })
                .collect();
            // PhysMem sorts them: hand them over out of order.
            if !regions.is_empty() {
                let n = rotate.index(regions.len());
                regions.rotate_left(n);
            }
            regions
        })
}

proptest! {
    /// A [`WordReader`] (the first bank held apart) reads what `read_u64`'s bank search reads,
    /// for any layout of 0 to 3 banks: inside each, at and across every edge, in the gaps,
    /// unaligned, and wrapping below the first bank.
    #[test]
    fn word_reader_agrees_with_read_u64(
        regions in regions(),
        probes in proptest::collection::vec((any::<proptest::sample::Index>(), -24i64..24, any::<u64>()), 1..40),
        wild in any::<u64>(),
    ) {
        let m = PhysMem::new(&regions).unwrap();
        let reader = m.reader();
        // Probe near each region's base and end (and anywhere when there is none).
        let mut edges: Vec<u64> = regions.iter().flat_map(|r| [r.base.as_u64(), r.end()]).collect();
        edges.push(wild);
        for (i, (edge, delta, v)) in probes.into_iter().enumerate() {
            let pa = PhysAddr::new(edges[edge.index(edges.len())].wrapping_add_signed(delta));
            // Distinct values, so a read of the wrong word shows.
            let _ = m.write_u64(PhysAddr::new(pa.as_u64() & !7), v ^ i as u64);
            prop_assert_eq!(reader.load_word(pa), m.read_u64(pa).ok(), "pa {:#x}", pa);
        }
        prop_assert_eq!(reader.load_word(PhysAddr::new(wild)), m.read_u64(PhysAddr::new(wild)).ok());
    }
}

#[test]
fn unwritten_memory_reads_zero_and_stays_sparse() {
    let m = mem();
    assert_eq!(m.read_u64(PhysAddr::new(0x8000_0008)).unwrap(), 0);
    let mut b = [0xffu8; 16];
    m.read_bytes(PhysAddr::new(0x8000_1003), &mut b).unwrap();
    assert_eq!(b, [0; 16]);
}

fn spare_of_size(size: u64) -> bool {
    let words = (size >> 3) as usize;
    SPARE_BACKINGS
        .lock()
        .unwrap()
        .iter()
        .any(|b| b.words.len() == words)
}

#[test]
fn a_reused_backing_reads_zero_everywhere_the_last_user_wrote() {
    // A size no other test uses, so the spare seen is this test's.
    let size = 0x40_0000 + 0x5000;
    let base = PhysAddr::new(0x9000_0000);
    let m = PhysMem::new(&[Region::new(base, size)]).unwrap();
    let at = |off: u64| PhysAddr::new(base.as_u64() + off);
    m.write_u64(at(0x8), u64::MAX).unwrap();
    m.write_bytes(at(0x1ffd), &[0xab; 7]).unwrap();
    m.frame(at(0x3000)).unwrap()[511].store(5, Ordering::Relaxed);
    let _ = m.compare_exchange_u64(at(size - 8), 0, 3).unwrap();
    drop(m);
    assert!(
        spare_of_size(size),
        "a lightly written bank is kept for reuse"
    );
    let again = PhysMem::new(&[Region::new(base, size)]).unwrap();
    assert!(!spare_of_size(size), "the new bank took the spare");
    for off in (0..size).step_by(8) {
        assert_eq!(again.read_u64(at(off)).unwrap(), 0, "word at +{off:#x}");
    }
    for b in &again.banks {
        assert!(b.written.iter().all(|w| w.load(Ordering::Relaxed) == 0));
    }
}

#[test]
fn a_mostly_written_backing_is_given_back() {
    let size = 0x6000;
    let base = PhysAddr::new(0x9000_0000);
    let m = PhysMem::new(&[Region::new(base, size)]).unwrap();
    m.write_u64(base, 1).unwrap();
    drop(m);
    assert!(!spare_of_size(size));
}

#[test]
fn large_regions_are_cheap_and_edges_work() {
    // 8 GiB of DRAM (reserved, not touched) plus a small region.
    let m = PhysMem::new(&[
        Region::new(PhysAddr::new(0x8_0000_0000), 8 << 30),
        Region::new(PhysAddr::new(0x1000), 0x3000),
    ])
    .unwrap();
    m.write_u64(PhysAddr::new(0x8_0000_0000 + (8 << 30) - 8), 9)
        .unwrap();
    m.write_u64(PhysAddr::new(0x3ff8), 7).unwrap();
    assert_eq!(m.read_u64(PhysAddr::new(0x3ff8)).unwrap(), 7);
    assert_eq!(
        m.read_u64(PhysAddr::new(0x8_0000_0000 + (8 << 30) - 8))
            .unwrap(),
        9
    );
    assert!(m.write_u64(PhysAddr::new(0x4000), 1).is_err());
}

#[test]
fn word_round_trip_and_cmpxchg() {
    let m = mem();
    m.write_u64(PhysAddr::new(0x8000_0010), 0xdead_beef_0000_0003)
        .unwrap();
    assert_eq!(
        m.read_u64(PhysAddr::new(0x8000_0010)).unwrap(),
        0xdead_beef_0000_0003
    );
    assert_eq!(
        m.compare_exchange_u64(PhysAddr::new(0x8000_0010), 1, 2)
            .unwrap(),
        Err(0xdead_beef_0000_0003)
    );
    assert_eq!(
        m.compare_exchange_u64(PhysAddr::new(0x8000_0010), 0xdead_beef_0000_0003, 2)
            .unwrap(),
        Ok(0xdead_beef_0000_0003)
    );
    assert_eq!(m.read_u64(PhysAddr::new(0x8000_0010)).unwrap(), 2);
}

#[test]
fn errors_name_the_problem() {
    let m = mem();
    assert_eq!(
        m.read_u64(PhysAddr::new(0x8000_0004)),
        Err(PhysError::Unaligned {
            pa: PhysAddr::new(0x8000_0004)
        })
    );
    assert_eq!(
        m.write_u64(PhysAddr::new(0x10), 1),
        Err(PhysError::Unbacked {
            pa: PhysAddr::new(0x10),
            len: 8
        })
    );
    // Straddling the end of a region is unbacked, not silently truncated.
    assert_eq!(
        m.write_bytes(PhysAddr::new(0x1_0000_3ffc), &[1; 8]),
        Err(PhysError::Unbacked {
            pa: PhysAddr::new(0x1_0000_3ffc),
            len: 8
        })
    );
    assert!(matches!(
        PhysMem::new(&[
            Region::new(PhysAddr::new(0), 0x2000),
            Region::new(PhysAddr::new(0x1000), 0x1000)
        ]),
        Err(PhysError::BadRegion { .. })
    ));
    assert!(matches!(
        PhysMem::new(&[Region::new(PhysAddr::new(0x10), 0x1000)]),
        Err(PhysError::BadRegion { .. })
    ));
    assert!(matches!(
        PhysMem::new(&[Region::new(PhysAddr::new(0), 32 << 30)]),
        Err(PhysError::BadRegion { .. })
    ));
    assert_eq!(
        PhysMem::new(&[Region::new(PhysAddr::new(0x1000), 0)])
            .unwrap_err()
            .to_string(),
        "bad memory region base 0x1000 size 0x0: empty"
    );
}

#[test]
fn bytes_and_words_agree_little_endian() {
    let m = mem();
    m.write_bytes(PhysAddr::new(0x8000_0001), &[0x11, 0x22, 0x33])
        .unwrap();
    assert_eq!(
        m.read_u64(PhysAddr::new(0x8000_0000)).unwrap(),
        0x0000_0000_3322_1100
    );
    m.write_u32(PhysAddr::new(0x8000_0004), 0xaabbccdd).unwrap();
    assert_eq!(
        m.read_u64(PhysAddr::new(0x8000_0000)).unwrap(),
        0xaabb_ccdd_3322_1100
    );
    assert_eq!(m.read_u32(PhysAddr::new(0x8000_0002)).unwrap(), 0xccdd_3322);
    m.zero(PhysAddr::new(0x8000_0000), 8).unwrap();
    assert_eq!(m.read_u64(PhysAddr::new(0x8000_0000)).unwrap(), 0);
}

proptest! {
    /// Random byte writes agree with a plain byte array.
    #[test]
    fn byte_writes_match_a_flat_model(
        ops in proptest::collection::vec((0u64..0x3000, proptest::collection::vec(any::<u8>(), 0..40)), 1..40)
    ) {
        let m = mem();
        let base = 0x8000_0000u64;
        let mut model = vec![0u8; 0x3100];
        for (off, data) in &ops {
            m.write_bytes(PhysAddr::new(base + off), data).unwrap();
            model[*off as usize..*off as usize + data.len()].copy_from_slice(data);
        }
        let mut got = vec![0u8; model.len()];
        m.read_bytes(PhysAddr::new(base), &mut got).unwrap();
        prop_assert_eq!(got, model);
    }
}

proptest! {
    /// `zero` skips frames nobody wrote: whatever mix of writes (bytes, words, through a
    /// frame) and zeroing happens, memory reads as a plain byte array would.
    #[test]
    fn zeroing_skips_only_frames_that_are_zero(
        ops in prop::collection::vec((0u8..4, 0u64..4 * FRAME_SIZE, 1u64..6000, any::<u8>()), 1..40)
    ) {
        let base = 0x8000_0000u64;
        let size = 4 * FRAME_SIZE;
        let m = PhysMem::new(&[Region::new(PhysAddr::new(base), size)]).unwrap();
        let mut model = vec![0u8; size as usize];
        for (kind, off, len, v) in ops {
            let len = len.min(size - off);
            match kind {
                0 => {
                    m.write_bytes(PhysAddr::new(base + off), &vec![v | 1; len as usize]).unwrap();
                    model[off as usize..(off + len) as usize].fill(v | 1);
                }
                1 => {
                    m.zero(PhysAddr::new(base + off), len).unwrap();
                    model[off as usize..(off + len) as usize].fill(0);
                }
                2 => {
                    let at = off & !7;
                    m.write_u64(PhysAddr::new(base + at), u64::from(v) | 0x100).unwrap();
                    model[at as usize..at as usize + 8]
                        .copy_from_slice(&(u64::from(v) | 0x100).to_le_bytes());
                }
                _ => {
                    let f = m.frame(PhysAddr::new(base + off)).unwrap();
                    let w = ((off % FRAME_SIZE) / 8) as usize;
                    f[w].store(u64::from(v) + 1, Ordering::Release);
                    let at = (off & !(FRAME_SIZE - 1)) as usize + w * 8;
                    model[at..at + 8].copy_from_slice(&(u64::from(v) + 1).to_le_bytes());
                }
            }
        }
        let mut got = vec![0u8; size as usize];
        m.read_bytes(PhysAddr::new(base), &mut got).unwrap();
        prop_assert_eq!(got, model);
    }
}
