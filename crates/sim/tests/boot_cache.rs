//! The explorer's booted-machine cache against booting for every schedule: with
//! `BootCache::Reuse` a worker boots once and restores the booted machine in place before each
//! later schedule; every output must be byte-identical to `BootCache::FreshEachRun`'s.

use explore::{ExploreOptions, Scenario, Strategy};
use sim::scenario::{
    restores_on_this_thread, BootCache, KernelBehaviour, MachineSetupError, Property, RebootConfig,
    RebootOutcome, RebootScenario, ReplayToken, ScheduleRef, Trigger,
};
use std::sync::Arc;

const MAX_STEPS: usize = 2_000_000;

type Outcome = Result<RebootOutcome, MachineSetupError>;

/// The reboot scenario, with every run's whole outcome (log, verdict, timeline, MMIO log)
/// fingerprinted into its outcome classes: the report's class counts then say, run by run,
/// whether two explorations produced the same bytes.
struct Fingerprinted(RebootScenario);

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Scenario for Fingerprinted {
    type Outcome = Outcome;
    fn run(&self) -> Outcome {
        self.0.run()
    }
    fn violations(&self, o: &Outcome) -> Vec<String> {
        self.0.violations(o)
    }
    fn exercised(&self, o: &Outcome) -> bool {
        self.0.exercised(o)
    }
    fn classify(&self, o: &Outcome) -> Vec<String> {
        let mut c = self.0.classify(o);
        c.push(format!("run {:016x}", fnv(&format!("{o:?}"))));
        c
    }
}

/// The machines the cache serves: the SMMUv2 one (the built-in KBox) and the SMMUv3 one
/// (QEMU's virt board with a flooded PCI function at 00:01.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MachineKind {
    V2,
    V3,
}

fn scenario(
    machine: MachineKind,
    trigger: Trigger,
    kernel: KernelBehaviour,
    cache: BootCache,
) -> RebootScenario {
    let mut config = match machine {
        MachineKind::V2 => RebootConfig::new(kernel, sim::kbox_a230_ls()),
        MachineKind::V3 => {
            let mut b = sim::Board::from_dtb(&lab_fixtures::qemu_virt_smmuv3_dtb()).unwrap();
            b.add_pci_function(&"00:01.0=e1000e".parse().unwrap())
                .unwrap();
            let mut c = RebootConfig::new(kernel, b);
            c.traffic = vec!["0000:00:01.0".into()];
            c
        }
    };
    config.trigger = trigger;
    config.mmio_log = true;
    RebootScenario {
        config,
        properties: Property::DEFAULT.to_vec(),
        boot_cache: cache,
    }
}

/// Everything one exploration shows: the report (failure counts, every run's fingerprint,
/// the first failure's whole outcome and schedule), the first failure's replay token and what
/// replaying that token gives.
fn explored(
    machine: MachineKind,
    trigger: Trigger,
    kernel: KernelBehaviour,
    strategy: Strategy,
    seed: u64,
    cache: BootCache,
) -> String {
    let scn = Arc::new(Fingerprinted(scenario(machine, trigger, kernel, cache)));
    let rep = explore::explore(
        scn.clone(),
        ExploreOptions {
            strategy,
            runs: 12,
            seed,
            jobs: 2,
            stop_at_first: false,
            max_steps: MAX_STEPS,
        },
        &|_, _| {},
    );
    let replayed = rep.first_failure.as_ref().map(|f| {
        let token = ReplayToken {
            trigger,
            kernel,
            schedule: ScheduleRef::Sparse(f.schedule.clone()),
        };
        let parsed: ReplayToken = token.to_string().parse().expect("the token parses");
        let replay = || {
            parsed
                .schedule
                .replay(
                    Arc::new(scenario(machine, trigger, kernel, cache)),
                    MAX_STEPS,
                )
                .expect("the token fits")
                .outcome
        };
        // Twice on this thread: with the cache the second replay starts from a restore.
        let restores = restores_on_this_thread();
        let (again, twice) = (replay(), replay());
        if cache == BootCache::Reuse {
            assert!(
                restores_on_this_thread() > restores,
                "the cache was not used"
            );
        }
        assert_eq!(format!("{again:?}"), format!("{twice:?}"));
        format!("{token}\n{again:?}")
    });
    format!("{rep:?}\n{replayed:?}")
}

/// Byte-identical explorations of `machine`, with and without the cache, over every trigger,
/// policy, strategy and several seeds (two workers each, so each worker's cache is exercised).
fn the_cache_changes_no_byte(machine: MachineKind) {
    for trigger in [
        Trigger::Reboot,
        Trigger::Kexec,
        Trigger::UnbindSmmu,
        Trigger::CrashKexec,
    ] {
        for kernel in [
            KernelBehaviour::Linux61,
            KernelBehaviour::Linux62,
            KernelBehaviour::Quiesce,
        ] {
            for strategy in [Strategy::Random, Strategy::Pct { depth: 3 }] {
                for seed in [1, 7] {
                    let run = |cache| explored(machine, trigger, kernel, strategy, seed, cache);
                    let fresh = run(BootCache::FreshEachRun);
                    let reused = run(BootCache::Reuse);
                    assert!(
                        fresh == reused,
                        "{machine:?} {trigger:?} {kernel:?} {strategy:?} seed {seed}:\n{fresh}\n---\n{reused}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_cache_changes_no_byte_of_any_exploration() {
    the_cache_changes_no_byte(MachineKind::V2);
}

/// The same on the SMMUv3 machine: its snapshot (arm-smmu-v3, the smmuv3 model, the bus
/// recorder, the flooded function) restored in place changes no byte either.
#[test]
fn the_cache_changes_no_byte_of_any_smmuv3_exploration() {
    the_cache_changes_no_byte(MachineKind::V3);
}
