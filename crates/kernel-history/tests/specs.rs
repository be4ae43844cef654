//! Kernel specs: presets, additions and removals, every error, round trips, and the switches a
//! kernel sets in the real layers.

use arm_smmu::ShutdownPolicy;
use iommu::fake::FakeDriver;
use iommu::{Bus, CoreConfig, DeviceDesc, DmaDirection, DmaError, IommuCore};
use kernel_history::{Fix, KernelSpec, KernelSpecError, NoCodePath, Preset, SmmuOff, Switches};
use klog::MemLog;
use physmem::{FrameAllocator, PhysMem, Region};
use proptest::prelude::*;
use smmu_addr::{DmaAddr, PhysAddr};
use std::sync::Arc;

const SEED: Fix = Fix::DontUnregisterOnShutdown;
const BUS: Fix = Fix::MoveBusSetupToRegistration;
/// Patch 2/2 of the seed's series, for arm-smmu-v3.
const V3: Fix = Fix::V3DontUnregisterOnShutdown;

#[test]
fn presets_are_the_fixes_each_release_contains() {
    let fixes = |s: &str| KernelSpec::parse(s).unwrap().fixes();
    let before_v61: Vec<Fix> =
        Fix::ALL[..Fix::ALL.iter().position(|f| *f == BUS).unwrap()].to_vec();
    assert_eq!(
        fixes("v5.14"),
        [
            Fix::V3KdumpAbortTransactions,
            Fix::SplitBlkUnmapRace,
            Fix::AvoidZeroTlbiWrites,
            Fix::V3KdumpKeepSmmu
        ]
    );
    assert_eq!(
        fixes("v5.16"),
        [
            Fix::V3KdumpAbortTransactions,
            Fix::SplitBlkUnmapRace,
            Fix::AvoidZeroTlbiWrites,
            Fix::V3KdumpKeepSmmu,
            Fix::GroupCreationRace,
            Fix::DefaultDomainAllocRace,
            Fix::UnlockOnGroupError
        ]
    );
    assert!(!fixes("v5.18").contains(&Fix::MapSgResultCheck));
    assert_eq!(fixes("v6.0"), before_v61);
    assert_eq!(fixes("v6.1"), [before_v61.clone(), vec![BUS]].concat());
    assert_eq!(
        fixes("v6.2"),
        [
            before_v61.clone(),
            vec![
                BUS,
                SEED,
                V3,
                Fix::ClaimDmaOwnerRefcount,
                Fix::IovaAllocOverflow
            ]
        ]
        .concat()
    );
    assert_eq!(fixes("v6.12"), fixes("v6.2"));
    assert_eq!(
        fixes("v6.13"),
        [
            fixes("v6.2"),
            vec![
                Fix::DeferClientsUntilSmmuBound,
                Fix::RemoveSplitOnUnmap,
                Fix::ConcatPgdMaxEntries
            ]
        ]
        .concat()
    );
    assert_eq!(KernelSpec::parse("current").unwrap().preset, Preset::V6_13);
    assert!(KernelSpec::parse("v6.2").unwrap().is_linux());
}

#[test]
fn additions_and_removals() {
    let k = KernelSpec::parse("v6.1+ce31e6ca68bd").unwrap();
    assert!(k.contains(BUS) && k.contains(SEED));
    let k = KernelSpec::parse("v6.2-ce31e6ca68bd").unwrap();
    assert!(k.contains(BUS) && !k.contains(SEED) && k.contains(V3));
    let k = KernelSpec::parse("v6.1+32ea2c57dc21").unwrap();
    assert!(k.contains(V3) && !k.contains(SEED));
    let k =
        KernelSpec::parse("v6.0+57365a04c921+ce31e6ca68bd+32ea2c57dc21+a6a9a5da6808+dcdb3ba7e2a8")
            .unwrap();
    assert_eq!(k.fixes(), KernelSpec::parse("v6.2").unwrap().fixes());
    let k = KernelSpec::parse("v6.2-57365a04c921+quiesce+guarded_dma_domain").unwrap();
    let v62 = KernelSpec::parse("v6.2").unwrap().fixes();
    assert_eq!(
        k.fixes(),
        [
            v62.into_iter().filter(|f| *f != BUS).collect::<Vec<_>>(),
            vec![Fix::Quiesce, Fix::GuardedDmaDomain]
        ]
        .concat()
    );
    assert!(!k.is_linux());
    // Canonical printing: removals and additions in history order.
    assert_eq!(
        k.to_string(),
        "v6.2-57365a04c921+quiesce+guarded_dma_domain"
    );
    let k = KernelSpec::parse("v6.2+guarded_dma_domain-57365a04c921").unwrap();
    assert_eq!(k.to_string(), "v6.2-57365a04c921+guarded_dma_domain");
}

#[test]
fn commit_ids_match_as_short_full_or_uppercase() {
    assert_eq!(Fix::lookup("ce31e6ca68bd"), Some(SEED));
    assert_eq!(Fix::lookup("CE31E6CA68BD"), Some(SEED));
    assert_eq!(
        Fix::lookup("ce31e6ca68bd7639bd3e5ef97be215031842bbab"),
        Some(SEED)
    );
    assert_eq!(Fix::lookup("ce31e6ca68bd7"), Some(SEED));
    assert_eq!(
        Fix::lookup("ce31e6ca68b"),
        None,
        "11 hex digits are too short"
    );
    assert_eq!(Fix::lookup("ce31e6ca68be"), None);
    assert_eq!(Fix::lookup("Quiesce"), None, "our names are exact");
    for f in Fix::ALL {
        assert_eq!(Fix::lookup(f.id()), Some(f));
    }
}

#[test]
fn every_error_is_typed() {
    use KernelSpecError as E;
    assert_eq!(KernelSpec::parse(""), Err(E::Empty));
    assert_eq!(KernelSpec::parse("  "), Err(E::Empty));
    assert_eq!(
        KernelSpec::parse("v5.19+ce31e6ca68bd"),
        Err(E::UnknownPreset {
            name: "v5.19".into()
        })
    );
    assert_eq!(
        KernelSpec::parse("+ce31e6ca68bd"),
        Err(E::UnknownPreset { name: "".into() })
    );
    assert_eq!(
        KernelSpec::parse("v6.1+"),
        Err(E::EmptyTerm {
            spec: "v6.1+".into(),
            sign: '+'
        })
    );
    assert_eq!(
        KernelSpec::parse("v6.1+-ce31e6ca68bd"),
        Err(E::EmptyTerm {
            spec: "v6.1+-ce31e6ca68bd".into(),
            sign: '+'
        })
    );
    assert_eq!(
        KernelSpec::parse("v6.1+2c3d273eabe8"),
        Err(E::UnknownFix {
            name: "2c3d273eabe8".into()
        })
    );
    assert_eq!(
        KernelSpec::parse("v6.1+quiesce+quiesce"),
        Err(E::Duplicate { fix: Fix::Quiesce })
    );
    assert_eq!(
        KernelSpec::parse("v6.2-ce31e6ca68bd+ce31e6ca68bd"),
        Err(E::Duplicate { fix: SEED })
    );
    assert_eq!(
        KernelSpec::parse("v6.2+ce31e6ca68bd"),
        Err(E::AlreadyInPreset {
            preset: Preset::V6_2,
            fix: SEED
        })
    );
    assert_eq!(
        KernelSpec::parse("v6.1-ce31e6ca68bd"),
        Err(E::NotInPreset {
            preset: Preset::V6_1,
            fix: SEED
        })
    );
    assert_eq!(
        KernelSpec::parse("v6.0-quiesce"),
        Err(E::NotInPreset {
            preset: Preset::V6_0,
            fix: Fix::Quiesce
        })
    );
    // The messages name the problem and what is known.
    let msg = KernelSpec::parse("v6.1+deadbeefcafe")
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "unknown fix 'deadbeefcafe': the model knows b63b3439b856, 85c7a0f1ef62, 4e4abae311e4, 3f54c447df34, b1a1347912a7, 211ff31b3d33, 53f613134984, 556f99ac8866, d7061627d701, b54240ad4943, a3884774d731, ac9a5d522bb8, 57365a04c921, ce31e6ca68bd, 32ea2c57dc21, a6a9a5da6808, dcdb3ba7e2a8, 229e6ee43d2a, 33729a5fc0ca, d71fa842d33c, quiesce, guarded_dma_domain"
    );
    let msg = KernelSpec::parse("v6.1-ce31e6ca68bd")
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "v6.1 does not contain ce31e6ca68bd (\"iommu/arm-smmu: Don't unregister on shutdown\"), so it cannot be removed"
    );
    let msg = KernelSpec::parse("linux-6.3").unwrap_err().to_string();
    assert_eq!(
        msg,
        "unknown kernel version 'linux' (known: v5.14, v5.16, v5.18, v6.0, v6.1, v6.2, v6.12, v6.13, current)"
    );
}

#[test]
fn switches_one_fix_one_code_path() {
    let sw = |s: &str| Switches::of(&KernelSpec::parse(s).unwrap());
    // arm-smmu's page-table factory as the kernel sets it up (on Linux's input checks).
    let tables = |s: &str| sw(s).lpae_tables(arm_smmu::LpaeTables::LINUX);
    let v60 = sw("v6.0");
    let v61 = sw("v6.1");
    let v62 = sw("v6.2");
    assert!(!v60.unregister_releases_devices && v61.unregister_releases_devices);
    assert_eq!(v60.shutdown_policy(), Ok(ShutdownPolicy::Linux61));
    assert_eq!(v61.shutdown_policy(), Ok(ShutdownPolicy::Linux61));
    assert_eq!(v62.shutdown_policy(), Ok(ShutdownPolicy::Linux62));
    assert_eq!(
        sw("v6.2+quiesce").shutdown_policy(),
        Ok(ShutdownPolicy::Quiesce)
    );
    assert_eq!(
        sw("v6.1+quiesce").shutdown_policy(),
        Err(NoCodePath::RemoveWithBlockedStreams)
    );
    // Each fix, toggled alone on every preset, changes exactly one switch.
    for preset in Preset::ALL {
        let base = KernelSpec::preset(preset);
        let before = Switches::of(&base);
        for fix in Fix::ALL {
            let sign = if base.contains(fix) { '-' } else { '+' };
            let after = Switches::of(&KernelSpec::parse(&format!("{preset}{sign}{fix}")).unwrap());
            let changed = [
                before.unregister_releases_devices != after.unregister_releases_devices,
                before.shutdown_runs_remove != after.shutdown_runs_remove,
                before.v3_shutdown_runs_remove != after.v3_shutdown_runs_remove,
                before.smmu_off != after.smmu_off,
                before.unguarded_dma_domain != after.unguarded_dma_domain,
                before.map_sg_signed_result_check != after.map_sg_signed_result_check,
                before.zero_tlbi_writes != after.zero_tlbi_writes,
                before.partial_unmap != after.partial_unmap,
                before.split_race != after.split_race,
                before.pgd_run_bound != after.pgd_run_bound,
                before.iova_anchor_retry_overflows != after.iova_anchor_retry_overflows,
                before.group_lookup_under_stream_map_mutex
                    != after.group_lookup_under_stream_map_mutex,
                before.unlock_on_group_conflict != after.unlock_on_group_conflict,
                before.default_domain_under_group_mutex != after.default_domain_under_group_mutex,
                before.attach_under_group_mutex != after.attach_under_group_mutex,
                before.probe_serialised != after.probe_serialised,
                before.claim_owner_puts_group_on_error != after.claim_owner_puts_group_on_error,
                before.defer_client_until_bound != after.defer_client_until_bound,
                before.iova_domain_init_under_cookie_mutex
                    != after.iova_domain_init_under_cookie_mutex,
                before.fq_teardown_waits_for_timer != after.fq_teardown_waits_for_timer,
                before.v3_kdump_aborts_before_disable != after.v3_kdump_aborts_before_disable,
                before.v3_kdump_keeps_smmu != after.v3_kdump_keeps_smmu,
            ];
            assert_eq!(
                changed.iter().filter(|c| **c).count(),
                1,
                "{preset}{sign}{fix}"
            );
        }
    }
    assert_eq!(sw("v6.2+quiesce").smmu_off, SmmuOff::BlockStreams);
    // 33729a5fc0ca: pgtable refuses a partial unmap of a block from v6.13.
    use pgtable::PartialUnmap;
    assert_eq!(sw("v6.12").partial_unmap, PartialUnmap::Split);
    assert_eq!(sw("v6.13").partial_unmap, PartialUnmap::Refuse);
    assert_eq!(sw("v6.13-33729a5fc0ca").partial_unmap, PartialUnmap::Split);
    assert_eq!(
        tables("v6.12+33729a5fc0ca").partial_unmap,
        PartialUnmap::Refuse
    );
    // 85c7a0f1ef62 (v4.20): every preset has it; removing it brings back the loser's
    // report-only path, through arm-smmu's page-table factory.
    use pgtable::SplitRace;
    assert_eq!(sw("v5.14").split_race, SplitRace::UnmapFromWinner);
    assert_eq!(
        tables("v6.12-85c7a0f1ef62").split_race,
        SplitRace::ReportWithoutClearing
    );
    // d71fa842d33c: the concatenated-PGD bound from v6.13, through arm-smmu's table factory.
    use pgtable::PgdRunBound;
    assert_eq!(sw("v6.12").pgd_run_bound, PgdRunBound::TableMinusIndex);
    assert_eq!(sw("v6.13").pgd_run_bound, PgdRunBound::WithinPage);
    assert_eq!(
        tables("v6.12+d71fa842d33c").pgd_run_bound,
        PgdRunBound::WithinPage
    );
    assert_eq!(
        tables("v6.13-d71fa842d33c").pgd_run_bound,
        PgdRunBound::TableMinusIndex
    );
    // arm-smmu-v3: 32ea2c57dc21 is its own switch.
    // (Qualified, not imported: arm_smmu::ShutdownPolicy has the same variant names.)
    assert_eq!(
        v61.v3_shutdown_policy(),
        Ok(arm_smmu_v3::ShutdownPolicy::Linux61)
    );
    assert_eq!(
        v62.v3_shutdown_policy(),
        Ok(arm_smmu_v3::ShutdownPolicy::Linux62)
    );
    assert_eq!(
        sw("v6.2-32ea2c57dc21").v3_shutdown_policy(),
        Ok(arm_smmu_v3::ShutdownPolicy::Linux61)
    );
    assert_eq!(
        sw("v6.2+quiesce").v3_shutdown_policy(),
        Ok(arm_smmu_v3::ShutdownPolicy::Quiesce)
    );
    assert_eq!(
        sw("v6.2-32ea2c57dc21+quiesce").v3_shutdown_policy(),
        Err(NoCodePath::V3RemoveWithBlockedStreams)
    );
}

#[test]
fn legacy_names_are_the_three_behaviours() {
    let k = |n: &str| Switches::of(&KernelSpec::from_legacy_name(n).unwrap());
    assert_eq!(
        k("linux-6.1").shutdown_policy(),
        Ok(ShutdownPolicy::Linux61)
    );
    assert_eq!(
        k("linux-6.2").shutdown_policy(),
        Ok(ShutdownPolicy::Linux62)
    );
    assert_eq!(k("quiesce").shutdown_policy(), Ok(ShutdownPolicy::Quiesce));
    assert!(k("linux-6.1").unguarded_dma_domain && k("linux-6.2").unguarded_dma_domain);
    assert!(!k("quiesce").unguarded_dma_domain);
    assert!(KernelSpec::from_legacy_name("v6.1").is_none());
}

/// A device on a fake IOMMU, mapped once, then its instance unregisters: what the next
/// `dma_map_page` does under the kernel's core switches.
fn map_after_unregister(spec: &str) -> (Vec<String>, Result<DmaAddr, DmaError>) {
    let kernel = KernelSpec::parse(spec).unwrap();
    let mem = Arc::new(PhysMem::new(&[Region::new(PhysAddr::new(0x8000_0000), 16 << 20)]).unwrap());
    let coherent =
        Arc::new(FrameAllocator::new(mem.clone(), PhysAddr::new(0x8080_0000), 8 << 20).unwrap());
    let log = Arc::new(MemLog::new());
    let cfg = Switches::of(&kernel).core_config(CoreConfig::default());
    let core = IommuCore::new(cfg, mem, coherent, log.clone());
    let inst = core.register(Arc::new(FakeDriver::new("fake-iommu")));
    let desc = DeviceDesc::new("fsl_enetc 0000:00:00.0", Bus::Pci, 0, &[0x29]);
    let enetc = core.probe_device(desc, inst).unwrap();
    let iova = core
        .dma_map_page(
            enetc,
            PhysAddr::new(0x8000_1000),
            1500,
            DmaDirection::ToDevice,
        )
        .unwrap();
    core.dma_unmap_page(enetc, iova, 1500, DmaDirection::ToDevice)
        .unwrap();
    core.unregister(inst).unwrap();
    let r = core.dma_map_page(
        enetc,
        PhysAddr::new(0x8000_1000),
        1500,
        DmaDirection::ToDevice,
    );
    (log.lines(), r)
}

#[test]
fn the_bus_setup_commit_switches_the_real_core() {
    const REMOVED: &str = "fsl_enetc 0000:00:00.0: Removing from iommu group 0";
    // Before 57365a04c921 unregister leaves the device in its group: DMA keeps translating.
    let (log, r) = map_after_unregister("v6.0");
    assert!(!log.iter().any(|l| l.ends_with(REMOVED)), "{log:?}");
    assert!(
        matches!(r, Ok(iova) if iova != DmaAddr::new(0x8000_1000)),
        "{r:?}"
    );
    // After it the device leaves its group, and the unguarded read is the seed's oops.
    let (log, r) = map_after_unregister("v6.1");
    assert!(log.iter().any(|l| l.ends_with(REMOVED)), "{log:?}");
    match r {
        Err(DmaError::Oops(oops)) => assert_eq!(oops.fault_addr, 0x98),
        other => panic!("expected the seed's oops, got {other:?}"),
    }
    // guarded_dma_domain: the same release is a typed error, not an oops.
    let (_, r) = map_after_unregister("v6.1+guarded_dma_domain");
    assert!(
        matches!(r, Err(ref e) if !matches!(e, DmaError::Oops(_))),
        "{r:?}"
    );
}

fn term() -> impl Strategy<Value = (bool, Fix)> {
    (any::<bool>(), prop::sample::select(Fix::ALL.to_vec()))
}

proptest! {
    /// Any spec that parses prints canonically, and the canonical form parses to the same
    /// kernel; its fixes are the preset's, minus removals, plus additions.
    #[test]
    fn specs_round_trip(preset in prop::sample::select(Preset::ALL.to_vec()),
                        terms in prop::collection::vec(term(), 0..5)) {
        let mut spec = preset.name().to_string();
        for (add, fix) in &terms {
            spec.push(if *add { '+' } else { '-' });
            spec.push_str(fix.id());
        }
        if let Ok(k) = KernelSpec::parse(&spec) {
            let again = KernelSpec::parse(&k.to_string()).unwrap();
            prop_assert_eq!(&again, &k);
            for fix in Fix::ALL {
                let added = terms.iter().any(|(a, f)| *a && *f == fix);
                let removed = terms.iter().any(|(a, f)| !*a && *f == fix);
                let expect = (preset.fixes().contains(&fix) && !removed) || added;
                prop_assert_eq!(k.contains(fix), expect);
            }
        }
    }
}

/// The IOVA rcache depot follows the release: v6.1's array of 32 magazines, v6.12's list.
#[test]
fn the_iova_depot_follows_the_release() {
    use iommu::iova::IovaDepot;
    for (spec, depot) in [
        ("v6.0", IovaDepot::Array),
        ("v6.1", IovaDepot::Array),
        ("v6.2", IovaDepot::Array),
        ("v6.12", IovaDepot::List),
        ("v6.13", IovaDepot::List),
        ("v5.14", IovaDepot::Array),
        ("v6.1+ce31e6ca68bd", IovaDepot::Array),
    ] {
        let k = KernelSpec::parse(spec).unwrap();
        assert_eq!(Switches::of(&k).iova_depot, depot, "{spec}");
        let cfg = Switches::of(&k).core_config(CoreConfig::default());
        assert_eq!(cfg.iova_depot, depot, "{spec}");
    }
}

/// Who frees a group's domains follows the release: v6.5 and before free them with the group
/// (`iommu_group_release`), v6.6 on (aa0958570f24) when the last device leaves it.
#[test]
fn group_domains_are_freed_by_the_last_member_from_v6_6() {
    for (spec, by_last_member) in [
        ("v5.14", false),
        ("v6.0", false),
        ("v6.1", false),
        ("v6.2", false),
        ("v6.1+ce31e6ca68bd", false),
        ("v6.12", true),
        ("v6.13", true),
    ] {
        let k = KernelSpec::parse(spec).unwrap();
        let sw = Switches::of(&k);
        assert_eq!(sw.domains_freed_with_last_member, by_last_member, "{spec}");
        let cfg = sw.core_config(CoreConfig::default());
        assert_eq!(cfg.domains_freed_with_last_member, by_last_member, "{spec}");
    }
}

/// Whether a release prints `Removing from iommu group N` follows the release: up to v6.3 it
/// does (`iommu_group_remove_device`), from dba9ca9d41f5 (v6.4) it does not; whatever fixes
/// a spec adds.
#[test]
fn the_release_prints_its_removal_line_up_to_v6_3() {
    use iommu::ReleaseSteps::{Deinit, DriverThenGroup};
    for (spec, steps) in [
        ("v5.14", DriverThenGroup),
        ("v6.1", DriverThenGroup),
        ("v6.2", DriverThenGroup),
        ("v6.1+ce31e6ca68bd", DriverThenGroup),
        ("v6.12", Deinit),
        ("v6.13", Deinit),
    ] {
        let k = KernelSpec::parse(spec).unwrap();
        let sw = Switches::of(&k);
        assert_eq!(sw.release_steps, steps, "{spec}");
        let cfg = sw.core_config(CoreConfig::default());
        assert_eq!(cfg.release_steps, steps, "{spec}");
        assert_eq!(cfg.release_steps.prints_removal(), steps == DriverThenGroup);
    }
}

/// 0046a4337eae (v6.5) took the attach out of `iommu_group_add_device`: every preset before
/// v6.12 attaches a device joining a group that has a domain at the join.
#[test]
fn the_join_attaches_to_the_groups_domain_up_to_v6_4() {
    for (spec, attaches) in [
        ("v5.14", true),
        ("v6.1", true),
        ("v6.2", true),
        ("v6.1+ce31e6ca68bd", true),
        ("v6.12", false),
        ("v6.13", false),
    ] {
        let k = KernelSpec::parse(spec).unwrap();
        let sw = Switches::of(&k);
        assert_eq!(sw.join_attaches_to_group_domain, attaches, "{spec}");
        let cfg = sw.core_config(CoreConfig::default());
        assert_eq!(cfg.join_attaches_to_group_domain, attaches, "{spec}");
    }
}
