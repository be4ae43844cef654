//! A group's lifetime is its reference count, as in Linux (the kobject of
//! `group->devices_kobj`): each device holds a reference from its probe's `device_group` until
//! it leaves the group, and `iommu_group_get` holds one until `iommu_group_put`. The group is
//! freed when the last reference goes, not when its device list empties. Who frees its
//! domains follows the release: the group's own release (v6.5 and before), or the release that
//! empties the device list (`iommu_deinit_device`, v6.6 on), after which a joining device
//! allocates a new default domain.

mod common;
use common::*;
use explore::{explore, ExploreOptions, Scenario, Strategy};
use iommu::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const GPU: &str = "etnaviv-gpu f0c0000.gpu";
const ETNAVIV: &str = "etnaviv etnaviv";

fn cfg(domains_freed_with_last_member: bool, claim_puts: bool) -> CoreConfig {
    CoreConfig {
        linux_faithful: true,
        domains_freed_with_last_member,
        claim_owner_puts_group_on_error: claim_puts,
        ..CoreConfig::default()
    }
}

/// A leaked `iommu_group_get` reference (a NULL-owner claim before a6a9a5da6808) keeps the
/// group alive after its last device left: its number stays taken and the next device of
/// another stream gets the next one. Before v6.6 its default domain lives with it; from v6.6
/// the last device's release freed the domain already.
#[test]
fn a_leaked_reference_keeps_the_group_but_not_always_its_domain() {
    for by_last_member in [false, true] {
        let r = rig(cfg(by_last_member, false));
        let gpu = r.core.probe_device(platform(GPU, 8, 0x3e), r.inst).unwrap();
        assert_eq!(r.core.group_of(gpu), Some(0));
        assert_eq!(r.fake.live_domains(), 1);
        assert!(r.core.claim_dma_owner(gpu, None).is_err());
        assert_eq!(r.core.group_refs_outstanding(0), Some(1));

        r.core.release_device(gpu);
        assert_eq!(r.core.group_of(gpu), None);
        assert_eq!(r.core.groups(), [0], "the leaked reference holds group 0");
        assert_eq!(r.core.group_members(0), []);
        assert_eq!(r.core.stats().groups_freed, 0);
        let freed = r.fake.counters.domains_freed.load(Ordering::Relaxed);
        assert_eq!(
            freed,
            u64::from(by_last_member),
            "by_last_member {by_last_member}"
        );
        assert_eq!(r.fake.live_domains(), usize::from(!by_last_member));

        let sata = r
            .core
            .probe_device(platform("ahci-qoriq 3200000.sata", 5, 0x3c), r.inst)
            .unwrap();
        assert_eq!(r.core.group_of(sata), Some(1));
    }
}

/// Without a leak the last put frees the group with its number, and the next device reuses it.
/// A device of the same stream joining the group while it lives shares its default domain.
#[test]
fn the_last_reference_frees_the_group() {
    for by_last_member in [false, true] {
        let r = rig(cfg(by_last_member, true));
        let gpu = r.core.probe_device(platform(GPU, 8, 0x3e), r.inst).unwrap();
        let etnaviv = r
            .core
            .probe_device(platform(ETNAVIV, 9, 0x3e), r.inst)
            .unwrap();
        assert_eq!(r.core.group_members(0), [gpu, etnaviv]);
        assert!(r.core.claim_dma_owner(gpu, None).is_err());
        assert_eq!(r.core.group_refs_outstanding(0), Some(0));
        r.core.release_device(gpu);
        assert_eq!(r.core.group_members(0), [etnaviv]);
        assert_eq!(r.fake.live_domains(), 1, "etnaviv still uses the domain");
        r.core.release_device(etnaviv);
        assert!(r.core.groups().is_empty());
        assert_eq!(r.core.stats().groups_freed, 1);
        assert_eq!(r.fake.live_domains(), 0);
        let again = r
            .core
            .probe_device(platform(ETNAVIV, 9, 0x3e), r.inst)
            .unwrap();
        assert_eq!(r.core.group_of(again), Some(0));
    }
}

/// Worked example 3 in the core: the GPU is released while etnaviv, which shares its stream
/// ID and so its group, probes and maps a page. etnaviv holds the group from `device_group`
/// on, so the GPU's release never frees it under etnaviv; the mapping always succeeds.
struct ProbeVsRelease {
    cfg: CoreConfig,
}

impl Scenario for ProbeVsRelease {
    type Outcome = Vec<String>;

    fn run(&self) -> Vec<String> {
        let r = rig(self.cfg.clone());
        let gpu = r.core.probe_device(platform(GPU, 8, 0x3e), r.inst).unwrap();
        let gpu_domain = r.core.default_domain(gpu).unwrap().id();
        let core = r.core.clone();
        let remover = smmu_sync::thread::spawn(move || core.release_device(gpu));
        // The remover may run first.
        smmu_sync::sched_point(smmu_sync::Point::Kernel);
        let mut out = Vec::new();
        match r.core.probe_device(platform(ETNAVIV, 9, 0x3e), r.inst) {
            Err(e) => out.push(format!("probe: {e}")),
            Ok(etnaviv) => {
                match r
                    .core
                    .dma_map_page(etnaviv, paddr(RAM), 4096, DmaDirection::ToDevice)
                {
                    Ok(_) => {
                        let shared =
                            r.core.default_domain(etnaviv).map(|d| d.id()) == Some(gpu_domain);
                        out.push("mapped".to_string());
                        out.push(
                            if shared {
                                "the GPU's domain"
                            } else {
                                "a new domain"
                            }
                            .to_string(),
                        );
                    }
                    Err(e) => out.push(format!("dma_map_page: {e}")),
                }
            }
        }
        if remover.join().is_err() {
            out.push("panic".to_string());
        }
        out
    }

    fn violations(&self, outcome: &Vec<String>) -> Vec<String> {
        outcome
            .iter()
            .filter(|o| !matches!(o.as_str(), "mapped" | "the GPU's domain" | "a new domain"))
            .cloned()
            .collect()
    }

    fn classify(&self, outcome: &Vec<String>) -> Vec<String> {
        outcome.iter().skip(1).take(1).cloned().collect()
    }
}

fn dfs() -> ExploreOptions {
    ExploreOptions {
        strategy: Strategy::Dfs {
            preemption_bound: 2,
        },
        runs: 100_000,
        seed: 1,
        jobs: 1,
        stop_at_first: false,
        max_steps: 100_000,
    }
}

#[test]
fn a_joining_device_is_never_left_with_a_freed_domain() {
    let v5_14 = CoreConfig {
        probe_serialised: false,
        default_domain_under_group_mutex: false,
        attach_under_group_mutex: false,
        ..cfg(false, true)
    };
    // The unserialised probe of v5.14 with v6.6's domain lifetime: not a release, but the
    // combination that opens the window where etnaviv holds the group, is not on its list yet,
    // and the GPU's release frees the domains.
    let unserialised_v6_6 = CoreConfig {
        domains_freed_with_last_member: true,
        ..v5_14.clone()
    };
    // (era, config, runs, runs where etnaviv shares the GPU's domain, runs with a new one)
    for (era, cfg, runs, shared, new) in [
        ("v5.14", v5_14, 22, 20, 2),
        (
            "v5.14 locks, v6.6 domain lifetime",
            unserialised_v6_6,
            22,
            16,
            6,
        ),
        ("v6.1", cfg(false, true), 31, 28, 3),
        ("v6.13", cfg(true, true), 31, 28, 3),
    ] {
        let rep = explore(Arc::new(ProbeVsRelease { cfg }), dfs(), &|_, _| {});
        assert!(rep.exhausted, "{era}");
        assert_eq!(rep.failing_runs, 0, "{era}: {:?}", rep.first_failure);
        assert_eq!(rep.runs, runs, "{era}");
        let count = |class: &str| rep.outcomes.get(class).copied().unwrap_or(0);
        assert_eq!(count("the GPU's domain"), shared, "{era}");
        assert_eq!(count("a new domain"), new, "{era}");
    }
}
