//! The seed's race under the schedule explorer: a NIC CPU maps and unmaps a page while the
//! shutdown CPU unregisters the SMMU. In Linux-faithful mode the explorer must find both the
//! oops (group pointer already NULL) and the window where the group was read, then freed
//! before its domain was used; in safe mode no interleaving gives anything but success or
//! `DeviceReleased`.

mod common;
use common::*;
use explore::{explore, ExploreOptions, Scenario, Strategy};
use iommu::*;
use std::sync::Arc;

struct Race {
    faithful: bool,
}

impl Scenario for Race {
    type Outcome = Vec<String>;

    fn run(&self) -> Vec<String> {
        let r = rig(CoreConfig {
            linux_faithful: self.faithful,
            ..CoreConfig::default()
        });
        let _mmc = r
            .core
            .probe_device(platform("sdhci-esdhc 2140000.mmc", 0, 0x3a), r.inst)
            .unwrap();
        let nic = r
            .core
            .probe_device(pci("fsl_enetc 0000:00:00.0", 0, 0x429), r.inst)
            .unwrap();
        let core = r.core.clone();
        let cpu1 = smmu_sync::thread::spawn(move || {
            let mut out = Vec::new();
            match core.dma_map_page(nic, paddr(RAM), 1500, DmaDirection::ToDevice) {
                Ok(a) => {
                    out.push("map ok".to_string());
                    let u = core.dma_unmap_page(nic, a, 1500, DmaDirection::ToDevice);
                    out.push(kind(u.err()));
                }
                Err(e) => out.push(kind(Some(e))),
            }
            out
        });
        r.core.unregister(r.inst).unwrap();
        cpu1.join().unwrap_or_else(|_| vec!["panic".to_string()])
    }

    fn violations(&self, outcome: &Vec<String>) -> Vec<String> {
        let mut v = Vec::new();
        for o in outcome {
            match o.as_str() {
                "oops 0x98" | "oops 0xa8" => v.push("oops".to_string()),
                "domain dying" | "use-after-free" => {
                    v.push("group freed under a DMA call".to_string())
                }
                "map ok" | "unmap ok" | "released" => {}
                other => v.push(other.to_string()),
            }
        }
        v
    }
}

fn kind(e: Option<DmaError>) -> String {
    match e {
        None => "unmap ok".into(),
        Some(DmaError::Oops(o)) => format!("oops {:#x}", o.fault_addr),
        Some(DmaError::DomainDying) => "domain dying".into(),
        Some(DmaError::UseAfterFree { .. }) => "use-after-free".into(),
        Some(DmaError::DeviceReleased) => "released".into(),
        Some(e) => format!("unexpected {e:?}"),
    }
}

fn opts() -> ExploreOptions {
    ExploreOptions {
        strategy: Strategy::Dfs {
            preemption_bound: 2,
        },
        runs: 3000,
        seed: 1,
        jobs: 1,
        stop_at_first: false,
        max_steps: 100_000,
    }
}

#[test]
fn faithful_mode_race_is_reachable() {
    let rep = explore(Arc::new(Race { faithful: true }), opts(), &|_, _| {});
    assert!(rep.failures.contains_key("oops"), "{:?}", rep.failures);
    assert!(
        rep.failures.contains_key("group freed under a DMA call"),
        "{:?}",
        rep.failures
    );
    eprintln!("faithful: {} runs, {:?}", rep.runs, rep.failures);
    assert!(!rep.failures.contains_key(explore::PANIC_PROPERTY));
    assert_eq!(rep.failures.len(), 2, "{:?}", rep.failures);
}

#[test]
fn safe_mode_has_no_bad_interleaving() {
    let rep = explore(Arc::new(Race { faithful: false }), opts(), &|_, _| {});
    assert_eq!(rep.failing_runs, 0, "{:?}", rep.first_failure);
    eprintln!("safe: {} runs, exhausted {}", rep.runs, rep.exhausted);
    assert!(rep.runs > 1);
}
