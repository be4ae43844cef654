//! The proptests: a restored core continues as a twin that never left, and restoring only the
//! changed mapping records equals restoring every record.

use super::dump::dump;
use super::ops::{op, step};
use super::*;
use proptest::prelude::*;

fn cfg_strategy() -> impl Strategy<Value = CoreConfig> {
    (any::<bool>(), any::<bool>(), any::<bool>(), 0u8..8).prop_map(
        |(strict, linux_faithful, domains_freed_with_last_member, passthrough)| CoreConfig {
            strict,
            linux_faithful,
            domains_freed_with_last_member,
            passthrough: passthrough == 0,
            fq_size: 4,
            ..CoreConfig::default()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Boot, snapshot, then rounds of abandoned operations each followed by a restore, then a
    /// continuation: the restored core returns what a twin that only booted returns, and ends
    /// with the same state, driver and log.
    #[test]
    fn a_restored_core_continues_as_one_that_never_left(
        cfg in cfg_strategy(),
        boot_maps in prop::collection::vec((0u64..0x40_0000, 1u64..0x3000), 0..24),
        abandoned in prop::collection::vec(prop::collection::vec(op(), 0..24), 1..4),
        cont in prop::collection::vec(op(), 0..32),
    ) {
        let mut a = Rig::new(cfg.clone());
        let mut b = Rig::new(cfg);
        boot(&mut a, &boot_maps);
        boot(&mut b, &boot_maps);
        let saved = a.save();
        prop_assert_eq!(saved.core.mappings(), a.core.dma_domains().iter().map(|d| d.live_mappings()).sum::<usize>());
        for round in &abandoned {
            for op in round {
                step(&mut a, op);
            }
            a.restore(&saved);
            prop_assert_eq!(dump(&a.core), dump(&b.core));
        }
        for op in &cont {
            let (ra, rb) = (step(&mut a, op), step(&mut b, op));
            prop_assert_eq!(ra, rb, "{:?}", op);
        }
        prop_assert_eq!(dump(&a.core), dump(&b.core));
        prop_assert_eq!(a.fake.snapshot(), b.fake.snapshot());
        prop_assert_eq!(a.log.inner.lock().clone(), b.log.inner.lock().clone());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The restore that puts back only the changed mapping records leaves every core, driver
    /// and continuation as the restore that copies every record.
    #[test]
    fn restoring_the_changes_is_restoring_everything(
        cfg in cfg_strategy(),
        boot_maps in prop::collection::vec((0u64..0x40_0000, 1u64..0x3000), 0..48),
        abandoned in prop::collection::vec(prop::collection::vec(op(), 0..32), 1..4),
        cont in prop::collection::vec(op(), 0..32),
    ) {
        let mut a = Rig::new(cfg.clone());
        let mut b = Rig::new(cfg);
        boot(&mut a, &boot_maps);
        boot(&mut b, &boot_maps);
        let (sa, sb) = (a.save(), b.save());
        for round in &abandoned {
            for op in round {
                prop_assert_eq!(step(&mut a, op), step(&mut b, op));
            }
            a.restore_as(&sa, Restore::Changes);
            b.restore_as(&sb, Restore::Whole);
            prop_assert_eq!(dump(&a.core), dump(&b.core));
        }
        for op in &cont {
            prop_assert_eq!(step(&mut a, op), step(&mut b, op), "{:?}", op);
        }
        prop_assert_eq!(dump(&a.core), dump(&b.core));
        prop_assert_eq!(a.fake.snapshot(), b.fake.snapshot());
    }
}
